# cli tests: copies checkpoint IN to OUT with its metadata entry "ssl.config"
# edited by ssl_test_metadata (OP: set ARG, erase, remove ARG, put ARG VALUE,
# clear, nan; then optionally KEY2 with OP2 and ARG2), then runs
# `ssl eval` (or ACTION) on the copy and prints what it said. Fails when it
# accepts the damaged checkpoint; the test's pass expression checks the
# message.
# KEY: the metadata entry (or, for OP nan, the tensor) edited; default ssl.config.
# ACTION: eval (default), embed or export, run on the copy.
if(NOT DEFINED KEY)
  set(KEY ssl.config)
endif()
if(NOT DEFINED ACTION)
  set(ACTION eval)
endif()
execute_process(COMMAND ${TOOL} ${IN} ${OUT} ${KEY} ${OP} ${ARG} ${VALUE} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ssl_test_metadata ${OP} failed (${rc})")
endif()
# optionally a second edit of the copy: KEY2 OP2 [ARG2]
if(DEFINED KEY2)
  execute_process(COMMAND ${TOOL} ${OUT} ${OUT} ${KEY2} ${OP2} ${ARG2} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ssl_test_metadata ${OP2} ${KEY2} failed (${rc})")
  endif()
endif()
if(ACTION STREQUAL "eval")
  set(args --eval-limit 256)
else()
  set(args --output ${OUT}.${ACTION}.safetensors)
endif()
execute_process(COMMAND ${SSL} ${ACTION} --checkpoint ${OUT} ${args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "ssl ${ACTION} accepted the edited checkpoint")
endif()
