# cli tests: copies checkpoint IN to OUT with its metadata entry "ssl.config"
# edited by ssl_test_metadata (OP: set ARG, erase, remove ARG, put ARG VALUE,
# clear; then optionally KEY2 with OP2 and ARG2), then runs
# `ssl eval` on the copy and prints what it said. Fails when ssl eval
# accepts a damaged config (OP set / remove); the test's pass expression
# checks the message.
execute_process(COMMAND ${TOOL} ${IN} ${OUT} ssl.config ${OP} ${ARG} ${VALUE} RESULT_VARIABLE rc)
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
execute_process(COMMAND ${SSL} eval --checkpoint ${OUT} --eval-limit 256
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "ssl eval accepted the edited checkpoint")
endif()
