# Flags for ssl's own tests, examples and benchmarks (not forced on users of
# the header-only ssl::ssl target).
add_library(ssl_dev_flags INTERFACE)
# -Wno-maybe-uninitialized: GCC 12 reports false positives inside its own
# avx512fintrin.h for every Eigen GEMM compiled with -march=native.
target_compile_options(ssl_dev_flags INTERFACE -Wall -Wextra -Wno-unused-parameter -Wno-maybe-uninitialized
  -Wno-missing-field-initializers)  # designated initializers name only what differs from the defaults
if(SSL_NATIVE)
  target_compile_options(ssl_dev_flags INTERFACE -march=native)
endif()
