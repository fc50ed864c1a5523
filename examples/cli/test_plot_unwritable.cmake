# cli test: a run whose plot cannot be written (OUT/plot.svg is a directory)
# warns and trains on; it leaves no temporary file, and removes the stale
# temporary file of a process that no longer runs (pid 4194305 is above
# Linux's largest, 2^22).
#   cmake -DSSL=ssl -DOUT=dir -P test_plot_unwritable.cmake
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT}/plot.svg)
file(WRITE ${OUT}/plot.svg/keep "a directory where the plot would go")
file(WRITE ${OUT}/last.safetensors.tmp.4194305 "the temporary file of a killed run")
execute_process(COMMAND ${SSL} train --method rotnet --width 4 --data synthetic --batch 32 --epochs 2
  --train-limit 64 --eval-limit 256 --eval-every 1 --out ${OUT} --no-progress
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the run failed (${rc}): the plot is not worth a run")
endif()
string(FIND "${err}" "warning: the plot is not written" at)
if(at EQUAL -1)
  message(FATAL_ERROR "no warning that the plot is not written")
endif()
string(FIND "${err}" "removed '${OUT}/last.safetensors.tmp.4194305'" at)
if(at EQUAL -1)
  message(FATAL_ERROR "no word of the stale temporary file removed")
endif()
file(GLOB left "${OUT}/*.tmp*")
if(left)
  message(FATAL_ERROR "temporary files left behind: ${left}")
endif()
if(NOT EXISTS ${OUT}/last.safetensors OR NOT EXISTS ${OUT}/backbone.safetensors)
  message(FATAL_ERROR "the run's checkpoints are missing")
endif()
