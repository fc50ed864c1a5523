# cli/eval_finetune (issue 21): `ssl eval --protocol finetune` on a copy of a
# run's checkpoint (in WORK, so the run's own eval_last.* stay as the other
# tests left them), 300 eval images of 10 classes: 1 % labels no class and is
# skipped with a line, 10 % is a table row and a row of eval_last.json / .csv.
#   cmake -DSSL=ssl -DRUN=RUN_DIR -DWORK=DIR -P test_finetune.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
file(COPY ${RUN}/last.safetensors DESTINATION ${WORK})
execute_process(COMMAND ${SSL} eval --checkpoint ${WORK}/last.safetensors --eval-limit 300 --protocol finetune
                        --finetune-fractions 0.01,0.1 --finetune-epochs 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}exit code ${rc}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ssl eval --protocol finetune failed")
endif()
foreach(want "fine-tuning: 1 % of the labels skipped \\(it leaves a class of the eval train set without a labelled image\\)"
        "\nfinetune +10% labels \\(30 images\\), 2 epochs +[0-9]+\\.[0-9][0-9]\n")
  if(NOT out MATCHES "${want}")
    message(FATAL_ERROR "the output lacks '${want}'")
  endif()
endforeach()
file(READ ${WORK}/eval_last.json j)
string(JSON protocols GET "${j}" protocols)
string(JSON rows LENGTH "${j}" finetune rows)
string(JSON skipped GET "${j}" finetune skipped_fractions 0)
string(JSON images GET "${j}" finetune rows 0 images)
string(JSON epochs GET "${j}" finetune rows 0 epochs)
string(JSON steps GET "${j}" finetune rows 0 steps)
string(JSON top1 GET "${j}" finetune rows 0 test_top1)
if(NOT protocols STREQUAL "finetune" OR NOT rows EQUAL 1 OR NOT skipped EQUAL 0.01 OR NOT images EQUAL 30
   OR NOT epochs EQUAL 2 OR NOT steps EQUAL 2 OR top1 LESS 0 OR top1 GREATER 1)
  message(FATAL_ERROR "eval_last.json: protocols ${protocols}, ${rows} finetune rows, skipped ${skipped}, "
                      "${images} images, ${epochs} epochs, ${steps} steps, test top-1 ${top1}")
endif()
file(READ ${WORK}/eval_last.csv csv)
if(NOT csv MATCHES "\ntrained,finetune,\"10% labels \\(30 images\\), 2 epochs\",[0-9]+\\.[0-9][0-9],\n")
  message(FATAL_ERROR "eval_last.csv lacks the finetune row:\n${csv}")
endif()
message("finetune: all checks passed")
