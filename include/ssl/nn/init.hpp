#pragma once
// Parameter initialization, matching PyTorch's defaults:
//   nn.Conv2d / nn.Linear weights: kaiming_uniform_(a = sqrt(5)),
//       i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); biases U(-1/sqrt(fan_in), ...)
//   torchvision ResNet convs: kaiming_normal_(mode = fan_out, relu),
//       i.e. N(0, 2 / fan_out); batch norm weight 1, bias 0.
#include <cmath>
#include <cstdint>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"

namespace ssl::init {

template <class T>
void uniform(tensor<T>& t, double lo, double hi, philox& g) {
    for (auto& v : t) v = static_cast<T>(g.uniform(lo, hi));
}
template <class T>
void normal(tensor<T>& t, double mean, double std, philox& g) {
    for (auto& v : t) v = static_cast<T>(mean + std * g.normal());
}
/// PyTorch's default for Conv2d/Linear weights and biases: U(-b, b), b = 1/sqrt(fan_in).
template <class T>
void pytorch_default(tensor<T>& t, std::size_t fan_in, philox& g) {
    const double b = fan_in ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    uniform(t, -b, b, g);
}
/// kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2/fan_out).
template <class T>
void kaiming_normal_fan_out(tensor<T>& t, std::size_t fan_out, philox& g) {
    normal(t, 0.0, std::sqrt(2.0 / static_cast<double>(fan_out)), g);
}

}  // namespace ssl::init
