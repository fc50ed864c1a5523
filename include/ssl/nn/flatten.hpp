#pragma once
// (N, ...) -> (N, prod(...)), zero-copy.
#include "activation.hpp"

namespace ssl::nn {

template <class T = float>
class flatten : public stateless {
public:
    using value_type = T;
    struct cache_type {
        shape_t in_shape;
    };
    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        require<shape_error>(x.rank() >= 1, "flatten: needs at least a batch dimension, got shape ", x.shape().str());
        const std::size_t n = x.dim(0);
        return {x.reshape({n, n ? x.numel() / n : 0}), cache_type{x.shape()}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        require<shape_error>(dy.numel() == c.in_shape.numel(), "flatten backward: gradient shape ", dy.shape().str(),
                             " does not match input ", c.in_shape.str());
        return dy.reshape(c.in_shape);
    }
};

}  // namespace ssl::nn
