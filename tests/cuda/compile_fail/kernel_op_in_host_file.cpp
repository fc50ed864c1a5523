// Must not compile: relu on CUDA tensors is an ssl kernel, and this file is
// compiled by the host compiler, not nvcc.
#include <ssl/backend/cuda/ops.hpp>
int main() {
    ssl::tensor<float, ssl::cuda> x;
    auto y = ssl::ops::relu(x);
}
