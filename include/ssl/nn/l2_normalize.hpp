#pragma once
// Row-wise L2 normalization of (N, D): y = x / max(||x||, eps), as
// torch.nn.functional.normalize(x, dim=1); the layer form of
// ssl::ops::normalize_rows and its backward.
#include "../ops/rows.hpp"
#include "activation.hpp"

namespace ssl::nn {

template <class T = float>
class l2_normalize : public stateless {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> y;      // (N, D) output
        tensor<T> norm;   // (N,) ||x||, before the eps floor
    };
    explicit l2_normalize(double eps = 1e-12) : eps_(eps) { require(eps > 0, "l2_normalize: eps must be positive"); }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        check_rank(x, 2, "l2_normalize", "(N, D)");
        auto r = ops::normalize_rows_with_norms(x, eps_);
        return {r.y, cache_type{r.y, std::move(r.norms)}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        check_same_shape(dy, c.y, "l2_normalize backward (gradient vs output)");
        return ops::normalize_rows_backward(c.y, c.norm, dy, eps_);
    }

private:
    double eps_;
};

}  // namespace ssl::nn
