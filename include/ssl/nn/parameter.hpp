#pragma once
// Trainable parameters and the naming convention shared by every module.
//
// A module exposes
//   template <class F> void for_each_parameter(F&& f, const std::string& prefix);
//       f(const std::string& name, parameter<T>&) for every trainable tensor
//   template <class F> void for_each_buffer(F&& f, const std::string& prefix);
//       f(const std::string& name, tensor<U>&) for state that is not trained
//       (running statistics; U may be T or std::int64_t)
//   void train(bool on); bool training() const;
// Names follow PyTorch's state_dict ("layer1.0.bn1.running_mean"), so
// checkpoints load into torchvision models.
#include <string>
#include <string_view>
#include <vector>

#include "../core/tensor.hpp"

namespace ssl {

/// What a parameter is, for optimizers that treat kinds differently (LARS
/// excludes biases and normalization parameters from adaptation and decay).
enum class param_role { weight, bias, norm };

template <class T>
struct parameter {
    tensor<T> value;  ///< the weights
    tensor<T> grad;   ///< accumulated gradient (backward adds into it)
    param_role role = param_role::weight;
    /// False for a part of a model-parallel layer held by one rank only (a
    /// shard of the hybrid-parallel instance classifier): data parallelism
    /// neither broadcasts nor averages it, and its gradient is complete on
    /// its rank.
    bool replicated = true;

    parameter() = default;
    parameter(shape_t s, param_role r) : value(tensor<T>::zeros(s)), grad(tensor<T>::zeros(s)), role(r) {}
    void zero_grad() noexcept { grad.zero(); }
};

/// "prefix.name", or "name" at the top level.
inline std::string join_name(const std::string& prefix, std::string_view name) {
    if (prefix.empty()) return std::string(name);
    std::string s = prefix;
    s += '.';
    s += name;
    return s;
}

/// What a layer's forward returns: the output and what its backward needs.
/// Holding the cache outside the layer lets one layer run on several inputs
/// in one step (PIRL, Jigsaw) without the second call clobbering the first.
template <class T, class Cache>
struct forward_result {
    tensor<T> out;
    Cache cache;
};

/// Zeroes the gradient of every parameter of a module.
template <class M>
void zero_grad(M& m) {
    m.for_each_parameter([](const std::string&, auto& p) { p.zero_grad(); }, "");
}

/// Number of trainable scalars in a module.
template <class M>
std::size_t parameter_count(M& m) {
    std::size_t n = 0;
    m.for_each_parameter([&](const std::string&, auto& p) { n += p.value.numel(); }, "");
    return n;
}

}  // namespace ssl

namespace ssl {

/// A copy of a module with its own storage: parameters, gradients and buffers
/// are cloned (a plain copy would share them, as tensor copies do).
template <class M>
M deep_copy(const M& m) {
    M c = m;
    c.for_each_parameter(
        [](const std::string&, auto& p) {
            p.value = p.value.clone();
            p.grad = p.grad.clone();
        },
        "");
    c.for_each_buffer([](const std::string&, auto& t) { t = t.clone(); }, "");
    return c;
}

/// The parameters of a module, in visiting order.
template <class T, class M>
std::vector<parameter<T>*> parameter_list(M& m) {
    std::vector<parameter<T>*> v;
    m.for_each_parameter([&](const std::string&, parameter<T>& p) { v.push_back(&p); }, "");
    return v;
}

}  // namespace ssl
