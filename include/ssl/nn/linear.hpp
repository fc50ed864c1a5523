#pragma once
// Fully connected layer y = x W^T + b, x: (N, in), W: (out, in), b: (out,).
#include <string>

#include "../core/views.hpp"
#include "init.hpp"
#include "parameter.hpp"

namespace ssl::nn {

struct linear_config {
    std::size_t in_features = 0;
    std::size_t out_features = 0;
    bool bias = true;
};

template <class T = float>
class linear {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> x;  // (N, in)
    };
    linear() = default;
    explicit linear(const linear_config& c, std::uint64_t seed = 0) : cfg_(c) {
        require(c.in_features > 0 && c.out_features > 0, "linear: features must be positive, got in=", c.in_features,
                " out=", c.out_features);
        weight_ = parameter<T>({c.out_features, c.in_features}, param_role::weight);
        if (c.bias) bias_ = parameter<T>({c.out_features}, param_role::bias);
        philox g(seed, stream_id(0x11EA2, c.in_features, c.out_features));
        init::pytorch_default(weight_.value, c.in_features, g);
        if (c.bias) init::pytorch_default(bias_.value, c.in_features, g);
    }
    const linear_config& config() const noexcept { return cfg_; }
    parameter<T>& weight() noexcept { return weight_; }
    parameter<T>& bias() noexcept { return bias_; }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        check_rank(x, 2, "linear", "(N, in_features)");
        require<shape_error>(x.dim(1) == cfg_.in_features, "linear: input has ", x.dim(1),
                             " features, the layer expects ", cfg_.in_features, " (input shape ", x.shape().str(), ")");
        tensor<T> y({x.dim(0), cfg_.out_features});
        auto Y = as_matrix(y);
        Y.noalias() = as_matrix(x) * as_matrix(weight_.value).transpose();
        if (cfg_.bias) Y.rowwise() += as_vector(bias_.value).transpose();
        return {std::move(y), cache_type{x}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        require<shape_error>(dy.shape() == shape_t{c.x.dim(0), cfg_.out_features}, "linear backward: gradient shape ",
                             dy.shape().str(), " does not match output (", c.x.dim(0), ", ", cfg_.out_features, ")");
        auto dY = as_matrix(dy);
        as_matrix(weight_.grad).noalias() += dY.transpose() * as_matrix(c.x);
        if (cfg_.bias) as_vector(bias_.grad) += dY.colwise().sum().transpose();
        tensor<T> dx(c.x.shape());
        as_matrix(dx).noalias() = dY * as_matrix(weight_.value);
        return dx;
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(join_name(prefix, "weight"), weight_);
        if (cfg_.bias) f(join_name(prefix, "bias"), bias_);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept { training_ = on; }
    bool training() const noexcept { return training_; }

private:
    linear_config cfg_{};
    parameter<T> weight_{}, bias_{};
    bool training_ = true;
};

}  // namespace ssl::nn
