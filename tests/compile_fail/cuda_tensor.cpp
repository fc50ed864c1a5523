// Must not compile: the CUDA backend is not built, and saying so is the job
// of a static_assert with a sentence (checked by ctest's PASS_REGULAR_EXPRESSION).
#include <ssl/core/tensor.hpp>
int main() { ssl::tensor<float, ssl::cuda> t; }
