# cli/report* (issue 21): `ssl report` on a run's directory, or on a copy of
# it with a part missing or damaged. cmake -DSSL=ssl -DRUN=RUN_DIR -DCASE=... -P test_report.cmake
#   CASE=ok          report.html holds the settings, the tables and every figure
#                    inlined, and references nothing outside itself
#   CASE=no_metrics  a copy without metrics.csv (the run's error is printed)
#   CASE=bad_json    a copy with a corrupt eval_bad.json
#   CASE=wrong_json  a copy with an eval_wrong.json of the wrong shape
#   COPY=DIR         where the copies go
function(run_report dir)
  execute_process(COMMAND ${SSL} report ${dir} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}exit code ${rc}")
  set(rc ${rc} PARENT_SCOPE)
endfunction()

if(CASE STREQUAL "ok")
  run_report(${RUN})
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ssl report failed")
  endif()
  file(READ ${RUN}/report.html page)
  foreach(want "<!DOCTYPE html>" "<td>method</td>" "<td>train.batch</td>" "<h3>eval_last.json</h3>"
          "<td>lowshot</td>" "<td>layers</td>" "id=\"fig-plot\"" "id=\"fig-eval_last-lowshot\""
          "id=\"fig-eval_last-layers\"" "id=\"fig-eval_last-retrieval\"" "id=\"fig-eval_last-map\"")
    string(FIND "${page}" "${want}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "report.html lacks '${want}'")
    endif()
  endforeach()
  # 8 test images and 5 neighbours each, all embedded
  # (the match stops before ";base64,": a ";" would split it into two list items)
  string(REGEX MATCHALL "href=\"data:image/png" tiles "${page}")
  string(FIND "${page}" "href=\"data:image/png;base64,iVBORw0KGgo" png)
  if(png EQUAL -1)
    message(FATAL_ERROR "report.html embeds no PNG")
  endif()
  list(LENGTH tiles n)
  if(NOT n EQUAL 48)
    message(FATAL_ERROR "report.html has ${n} embedded images, expected 48")
  endif()
  # self-contained: the only URL is the SVG namespace
  string(REGEX MATCHALL "(https?|file|ftp)://[^\"' <>]*" urls "${page}")
  list(REMOVE_ITEM urls "http://www.w3.org/2000/svg")
  if(urls)
    message(FATAL_ERROR "report.html references ${urls}")
  endif()
  string(REGEX MATCHALL "src=" srcs "${page}")
  if(srcs)
    message(FATAL_ERROR "report.html has src= attributes")
  endif()
  message("report: all checks passed")
else()
  file(REMOVE_RECURSE ${COPY})
  file(MAKE_DIRECTORY ${COPY})
  file(COPY ${RUN}/last.safetensors ${RUN}/metrics.csv DESTINATION ${COPY})
  if(CASE STREQUAL "no_metrics")
    file(REMOVE ${COPY}/metrics.csv)
  elseif(CASE STREQUAL "bad_json")
    file(WRITE ${COPY}/eval_bad.json "{\"encoder\": \"trained\", ")
  elseif(CASE STREQUAL "wrong_json")
    file(WRITE ${COPY}/eval_wrong.json "{\"encoder\": \"trained\", \"knn\": 3}")
  endif()
  run_report(${COPY})
endif()
