// Builds against the installed package and runs one training step.
#include <ssl/ssl.hpp>

#include <cstdio>

int main() {
    ssl::resnet18<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    auto x = ssl::tensor<float>::full({2, 1, 8, 8}, 0.25f);
    for (std::size_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 13) / 13.0f;
    auto [y, cache] = net.forward(x);
    net.backward(cache, ssl::tensor<float>::full(y.shape(), 1.0f), false);
    if (y.dim(0) != 2 || y.dim(1) != net.feature_dim()) return 1;
    std::printf("consumer ok: features %zu x %zu\n", y.dim(0), y.dim(1));
    return 0;
}
