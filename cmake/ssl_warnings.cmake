# Flags for ssl's own tests, examples and benchmarks (not forced on users of
# the header-only ssl::ssl target).
# ssl_warning_flags: the warnings alone, for programs that choose their own
# -march (the per-level ssl programs of SSL_CPU_LEVELS, the launcher).
add_library(ssl_warning_flags INTERFACE)
# -Wno-maybe-uninitialized: GCC 12 reports false positives inside its own
# avx512fintrin.h for every Eigen GEMM compiled with -march=native.
target_compile_options(ssl_warning_flags INTERFACE -Wall -Wextra -Wno-unused-parameter -Wno-maybe-uninitialized
  -Wno-missing-field-initializers)  # designated initializers name only what differs from the defaults
# ssl_dev_flags: the warnings and, with SSL_NATIVE, -march=native.
add_library(ssl_dev_flags INTERFACE)
target_link_libraries(ssl_dev_flags INTERFACE ssl_warning_flags)
if(SSL_NATIVE)
  target_compile_options(ssl_dev_flags INTERFACE -march=native)
endif()

# SSL_EXTERN_TEMPLATES: conv2d and batch norm (with the Winograd, direct and
# GEMM kernels under them) for float and double are compiled once, in
# cmake/instances/, and every test, example and benchmark that links
# ssl_dev_flags declares them extern instead of compiling them again (a
# sixth of the backbone tests' compile time; bench/README "Build time").
# Users of the header-only ssl::ssl are not affected.
option(SSL_EXTERN_TEMPLATES "Compile ssl's heaviest layers once for its own tests and programs" ON)
if(SSL_EXTERN_TEMPLATES)
  add_library(ssl_instances STATIC ${PROJECT_SOURCE_DIR}/cmake/instances/float.cpp
                                   ${PROJECT_SOURCE_DIR}/cmake/instances/double.cpp)
  target_link_libraries(ssl_instances PUBLIC ssl::ssl PRIVATE ssl_warning_flags)
  if(SSL_NATIVE)
    target_compile_options(ssl_instances PRIVATE -march=native)
  endif()
  target_compile_definitions(ssl_instances INTERFACE SSL_EXTERN_TEMPLATES)
  target_link_libraries(ssl_dev_flags INTERFACE ssl_instances)
endif()
