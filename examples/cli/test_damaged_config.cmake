# cli tests: copies checkpoint IN to OUT with its metadata entry "ssl.config"
# edited by ssl_test_metadata (OP: set ARG, erase, remove ARG), then runs
# `ssl eval` on the copy and prints what it said. Fails when ssl eval
# accepts a damaged config (OP set / remove); the test's pass expression
# checks the message.
execute_process(COMMAND ${TOOL} ${IN} ${OUT} ssl.config ${OP} ${ARG} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ssl_test_metadata ${OP} failed (${rc})")
endif()
execute_process(COMMAND ${SSL} eval --checkpoint ${OUT} --eval-limit 256
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "ssl eval accepted the edited checkpoint")
endif()
