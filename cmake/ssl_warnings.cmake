# Flags for ssl's own tests, examples and benchmarks (not forced on users of
# the header-only ssl::ssl target).
add_library(ssl_dev_flags INTERFACE)
target_compile_options(ssl_dev_flags INTERFACE -Wall -Wextra -Wno-unused-parameter)
if(SSL_NATIVE)
  target_compile_options(ssl_dev_flags INTERFACE -march=native)
endif()
