#pragma once
// Row-wise L2 normalization of (N, D): y = x / max(||x||, eps), as
// torch.nn.functional.normalize(x, dim=1).
#include <cmath>

#include "activation.hpp"

namespace ssl::nn {

template <class T = float>
class l2_normalize : public stateless {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> y;      // (N, D) output
        tensor<T> norm;   // (N,) max(||x||, eps)
        tensor<std::uint8_t> clamped;  // (N,) 1 where ||x|| < eps
    };
    explicit l2_normalize(double eps = 1e-12) : eps_(eps) { require(eps > 0, "l2_normalize: eps must be positive"); }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        check_rank(x, 2, "l2_normalize", "(N, D)");
        const std::size_t n = x.dim(0), d = x.dim(1);
        cache_type c{tensor<T>(x.shape()), tensor<T>({n}), tensor<std::uint8_t>({n})};
        for (std::size_t i = 0; i < n; ++i) {
            const T* p = x.data() + i * d;
            double s = 0;
            for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(p[j]) * p[j];
            double nr = std::sqrt(s);
            c.clamped[i] = nr < eps_;
            if (nr < eps_) nr = eps_;
            c.norm[i] = static_cast<T>(nr);
            T* q = c.y.data() + i * d;
            for (std::size_t j = 0; j < d; ++j) q[j] = static_cast<T>(p[j] / nr);
        }
        return {c.y, std::move(c)};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        check_same_shape(dy, c.y, "l2_normalize backward (gradient vs output)");
        const std::size_t n = dy.dim(0), d = dy.dim(1);
        tensor<T> dx(dy.shape());
        for (std::size_t i = 0; i < n; ++i) {
            const T* y = c.y.data() + i * d;
            const T* g = dy.data() + i * d;
            T* o = dx.data() + i * d;
            const double inv = 1.0 / c.norm[i];
            if (c.clamped[i]) {
                for (std::size_t j = 0; j < d; ++j) o[j] = static_cast<T>(g[j] * inv);
                continue;
            }
            double dot = 0;
            for (std::size_t j = 0; j < d; ++j) dot += static_cast<double>(y[j]) * g[j];
            for (std::size_t j = 0; j < d; ++j) o[j] = static_cast<T>((g[j] - y[j] * dot) * inv);
        }
        return dx;
    }

private:
    double eps_;
};

}  // namespace ssl::nn
