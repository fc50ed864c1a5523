# cmake -P script: install ssl to WORK_DIR/prefix, build tests/consumer against it, run it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  message("${out}")
endfunction()
run(${CMAKE_COMMAND} -S ${SSL_SOURCE_DIR} -B ${WORK_DIR}/ssl-build -G ${GENERATOR}
    -DSSL_BUILD_TESTS=OFF -DSSL_BUILD_EXAMPLES=OFF -DSSL_BUILD_BENCH=OFF -DSSL_ENABLE_CUDA=OFF
    -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/ssl-build)
if(NOT EXISTS ${WORK_DIR}/prefix/include/ssl/ssl.hpp)
  message(FATAL_ERROR "install did not put include/ssl/ssl.hpp under the prefix")
endif()
run(${CMAKE_COMMAND} -S ${SSL_SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/consumer-build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run(${WORK_DIR}/consumer-build/consumer)
