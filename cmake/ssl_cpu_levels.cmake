# SSL_CPU_LEVELS: one ssl program for every x86-64 CPU (README: One binary for
# every x86-64 CPU). The hot code is header-only templates and Eigen, compiled
# into the program with its flags; building the kernels for several
# instruction sets inside one program would give the linker several
# definitions of the same inline functions, of which it keeps one (perhaps the
# AVX-512 one, called from the baseline path). So the whole program is built
# once per x86-64 level, ssl-<level> with -march=<level>, and `ssl` is a small
# launcher, built for the baseline, that runs the highest one the CPU supports
# (examples/cli/launcher.cpp).
#
# Checked here: the levels are x86-64 levels, in order, without repeats
# (ssl_cpu_levels: the cleaned list), the target is x86-64 Linux, the compiler
# takes -march=<level>.
set(ssl_cpu_levels_known x86-64 x86-64-v2 x86-64-v3 x86-64-v4)
set(ssl_cpu_levels "")
if(SSL_CPU_LEVELS)
  if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    message(FATAL_ERROR "SSL_CPU_LEVELS (${SSL_CPU_LEVELS}) is for x86-64 Linux; this build is for "
      "${CMAKE_SYSTEM_NAME} on ${CMAKE_SYSTEM_PROCESSOR}: leave it empty")
  endif()
  foreach(level IN LISTS SSL_CPU_LEVELS)
    if(NOT level IN_LIST ssl_cpu_levels_known)
      string(REPLACE ";" ", " known "${ssl_cpu_levels_known}")
      message(FATAL_ERROR "SSL_CPU_LEVELS: '${level}' is not an x86-64 level (${known})")
    endif()
  endforeach()
  include(CheckCXXCompilerFlag)
  foreach(level IN LISTS ssl_cpu_levels_known)  # in order, once each
    if(level IN_LIST SSL_CPU_LEVELS)
      string(REPLACE "-" "_" id ${level})
      check_cxx_compiler_flag(-march=${level} ssl_has_march_${id})
      if(NOT ssl_has_march_${id})
        message(FATAL_ERROR "SSL_CPU_LEVELS: ${CMAKE_CXX_COMPILER} does not take -march=${level} (GCC 11 or clang 12 do)")
      endif()
      list(APPEND ssl_cpu_levels ${level})
    endif()
  endforeach()
  list(GET ssl_cpu_levels 0 lowest)
  if(NOT lowest STREQUAL "x86-64")
    message(WARNING "SSL_CPU_LEVELS: without x86-64 the ssl program refuses CPUs below ${lowest}")
  endif()
  message(STATUS "ssl: the ssl program is built for ${ssl_cpu_levels}, with a launcher choosing by the CPU")
  if(SSL_NATIVE)
    message(STATUS "ssl: the other programs (train_backbone, tests) still get -march=native (SSL_NATIVE); "
      "-DSSL_NATIVE=OFF for a package")
  endif()
endif()

# ssl_add_cpu_level_programs(TARGET NAME SOURCES src... LIBRARIES lib...)
#   one executable per level of SSL_CPU_LEVELS, TARGET_<level> (dashes as
#   underscores) named NAME-<level>, built with -march=<level> and none of
#   SSL_NATIVE's flags, installed to LIBEXECDIR/NAME; and TARGET, the launcher
#   named NAME, built for the baseline, installed to BINDIR, depending on them
#   all (building TARGET builds the program for every level).
function(ssl_add_cpu_level_programs target name)
  cmake_parse_arguments(arg "" "" "SOURCES;LIBRARIES" ${ARGN})
  set(programs "")
  foreach(level IN LISTS ssl_cpu_levels)
    string(REPLACE "-" "_" id ${level})
    set(program ${target}_${id})
    add_executable(${program} ${arg_SOURCES})
    set_target_properties(${program} PROPERTIES OUTPUT_NAME ${name}-${level})
    target_link_libraries(${program} PRIVATE ssl::ssl ssl_warning_flags ${arg_LIBRARIES})
    # after CMAKE_CXX_FLAGS on the command line: this -march wins over one there
    target_compile_options(${program} PRIVATE -march=${level})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/${name})
    list(APPEND programs ${program})
  endforeach()
  add_executable(${target} ${PROJECT_SOURCE_DIR}/examples/cli/launcher.cpp)
  set_target_properties(${target} PROPERTIES OUTPUT_NAME ${name})
  # the ssl headers only (core/cpu_check.hpp), none of the library's dependencies
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_features(${target} PRIVATE cxx_std_20)
  target_link_libraries(${target} PRIVATE ssl_warning_flags)
  target_compile_options(${target} PRIVATE -march=x86-64 -mtune=generic)
  file(RELATIVE_PATH libexec ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBEXECDIR}/${name})
  string(REPLACE ";" "," levels "${ssl_cpu_levels}")
  target_compile_definitions(${target} PRIVATE SSL_LAUNCHER_NAME="${name}" SSL_LAUNCHER_LEVELS="${levels}"
    SSL_LAUNCHER_LIBEXEC="${libexec}")
  add_dependencies(${target} ${programs})
  install(TARGETS ${target} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()
