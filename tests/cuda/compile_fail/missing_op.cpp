// Must not compile: conv2d has no CUDA version yet, and the error says so in
// a sentence (checked by ctest's PASS_REGULAR_EXPRESSION).
#include <ssl/backend/cuda/ops.hpp>
int main() {
    ssl::tensor<float, ssl::cuda> x, w;
    ssl::ops::conv2d(x, w);
}
