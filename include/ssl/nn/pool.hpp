#pragma once
// Pooling over NCHW: max pool, average pool (count_include_pad = true, as
// PyTorch's default), and global average pool (N, C, H, W) -> (N, C).
#include <cstdint>
#include <limits>

#include "activation.hpp"

namespace ssl::nn {

struct pool_config {
    std::size_t kernel = 2;
    std::size_t stride = 0;   ///< 0 means stride = kernel
    std::size_t padding = 0;
};

namespace detail {
struct pool_geometry {
    std::size_t n, c, h, w, ho, wo, k, s, p;
};
inline pool_geometry pool_shape(const shape_t& s, const pool_config& cfg, const char* who) {
    require<shape_error>(s.rank() == 4, who, ": expected a rank-4 tensor (N, C, H, W), got shape ", s.str());
    const std::size_t k = cfg.kernel, st = cfg.stride ? cfg.stride : cfg.kernel, p = cfg.padding;
    require(k > 0, who, ": kernel must be positive");
    require(2 * p <= k, who, ": padding ", p, " must be at most half the kernel ", k);
    require<shape_error>(s[2] + 2 * p >= k && s[3] + 2 * p >= k, who, ": input ", s.str(), " is smaller than the ",
                         k, "x", k, " window");
    return {s[0], s[1], s[2], s[3], (s[2] + 2 * p - k) / st + 1, (s[3] + 2 * p - k) / st + 1, k, st, p};
}
}  // namespace detail

template <class T = float>
class max_pool2d : public stateless {
public:
    using value_type = T;
    struct cache_type {
        shape_t in_shape;
        tensor<std::int32_t> argmax;  // flat index into the input plane, per output
    };
    max_pool2d() = default;
    explicit max_pool2d(const pool_config& c) : cfg_(c) { require(c.kernel > 0, "max_pool2d: kernel must be positive"); }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        const auto g = detail::pool_shape(x.shape(), cfg_, "max_pool2d");
        tensor<T> y({g.n, g.c, g.ho, g.wo});
        tensor<std::int32_t> am({g.n, g.c, g.ho, g.wo});
        parallel_for(g.n * g.c, [&](std::size_t plane, std::size_t) {
            const T* p = x.data() + plane * g.h * g.w;
            T* q = y.data() + plane * g.ho * g.wo;
            std::int32_t* a = am.data() + plane * g.ho * g.wo;
            for (std::size_t oh = 0; oh < g.ho; ++oh)
                for (std::size_t ow = 0; ow < g.wo; ++ow) {
                    T best = -std::numeric_limits<T>::infinity();
                    std::int32_t bi = -1;
                    for (std::size_t i = 0; i < g.k; ++i) {
                        const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * g.s + i) - static_cast<std::ptrdiff_t>(g.p);
                        if (ih < 0 || ih >= static_cast<std::ptrdiff_t>(g.h)) continue;
                        for (std::size_t j = 0; j < g.k; ++j) {
                            const std::ptrdiff_t iw = static_cast<std::ptrdiff_t>(ow * g.s + j) - static_cast<std::ptrdiff_t>(g.p);
                            if (iw < 0 || iw >= static_cast<std::ptrdiff_t>(g.w)) continue;
                            const T v = p[ih * static_cast<std::ptrdiff_t>(g.w) + iw];
                            if (v > best || bi < 0 || v != v) {  // NaN propagates, as in PyTorch
                                best = v;
                                bi = static_cast<std::int32_t>(ih * static_cast<std::ptrdiff_t>(g.w) + iw);
                                if (v != v) goto done;
                            }
                        }
                    }
                done:
                    q[oh * g.wo + ow] = best;
                    a[oh * g.wo + ow] = bi;
                }
        });
        return {std::move(y), cache_type{x.shape(), std::move(am)}};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        require<shape_error>(dy.shape() == c.argmax.shape(), "max_pool2d backward: gradient shape ", dy.shape().str(),
                             " does not match output shape ", c.argmax.shape().str());
        tensor<T> dx = tensor<T>::zeros(c.in_shape);
        const std::size_t planes = c.in_shape[0] * c.in_shape[1], hw = c.in_shape[2] * c.in_shape[3];
        const std::size_t ohw = dy.numel() / (planes ? planes : 1);
        parallel_for(planes, [&](std::size_t plane, std::size_t) {
            T* o = dx.data() + plane * hw;
            const T* d = dy.data() + plane * ohw;
            const std::int32_t* a = c.argmax.data() + plane * ohw;
            for (std::size_t i = 0; i < ohw; ++i) o[a[i]] += d[i];
        });
        return dx;
    }

private:
    pool_config cfg_{};
};

template <class T = float>
class avg_pool2d : public stateless {
public:
    using value_type = T;
    struct cache_type {
        shape_t in_shape;
    };
    avg_pool2d() = default;
    explicit avg_pool2d(const pool_config& c) : cfg_(c) { require(c.kernel > 0, "avg_pool2d: kernel must be positive"); }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        const auto g = detail::pool_shape(x.shape(), cfg_, "avg_pool2d");
        tensor<T> y({g.n, g.c, g.ho, g.wo});
        const T inv = T(1) / static_cast<T>(g.k * g.k);
        parallel_for(g.n * g.c, [&](std::size_t plane, std::size_t) {
            const T* p = x.data() + plane * g.h * g.w;
            T* q = y.data() + plane * g.ho * g.wo;
            for (std::size_t oh = 0; oh < g.ho; ++oh)
                for (std::size_t ow = 0; ow < g.wo; ++ow) {
                    T s = 0;
                    window(g, oh, ow, [&](std::size_t idx) { s += p[idx]; });
                    q[oh * g.wo + ow] = s * inv;
                }
        });
        return {std::move(y), cache_type{x.shape()}};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        const auto g = detail::pool_shape(c.in_shape, cfg_, "avg_pool2d");
        require<shape_error>(dy.shape() == shape_t{g.n, g.c, g.ho, g.wo}, "avg_pool2d backward: gradient shape ",
                             dy.shape().str(), " does not match output shape ", shape_t{g.n, g.c, g.ho, g.wo}.str());
        tensor<T> dx = tensor<T>::zeros(c.in_shape);
        const T inv = T(1) / static_cast<T>(g.k * g.k);
        parallel_for(g.n * g.c, [&](std::size_t plane, std::size_t) {
            T* o = dx.data() + plane * g.h * g.w;
            const T* d = dy.data() + plane * g.ho * g.wo;
            for (std::size_t oh = 0; oh < g.ho; ++oh)
                for (std::size_t ow = 0; ow < g.wo; ++ow) {
                    const T v = d[oh * g.wo + ow] * inv;
                    window(g, oh, ow, [&](std::size_t idx) { o[idx] += v; });
                }
        });
        return dx;
    }

private:
    template <class F>
    static void window(const detail::pool_geometry& g, std::size_t oh, std::size_t ow, F&& f) {
        for (std::size_t i = 0; i < g.k; ++i) {
            const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * g.s + i) - static_cast<std::ptrdiff_t>(g.p);
            if (ih < 0 || ih >= static_cast<std::ptrdiff_t>(g.h)) continue;
            for (std::size_t j = 0; j < g.k; ++j) {
                const std::ptrdiff_t iw = static_cast<std::ptrdiff_t>(ow * g.s + j) - static_cast<std::ptrdiff_t>(g.p);
                if (iw < 0 || iw >= static_cast<std::ptrdiff_t>(g.w)) continue;
                f(static_cast<std::size_t>(ih) * g.w + static_cast<std::size_t>(iw));
            }
        }
    }
    pool_config cfg_{};
};

/// (N, C, H, W) -> (N, C): the mean over H and W.
template <class T = float>
class global_avg_pool2d : public stateless {
public:
    using value_type = T;
    struct cache_type {
        shape_t in_shape;
    };
    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        check_rank(x, 4, "global_avg_pool2d", "(N, C, H, W)");
        const std::size_t planes = x.dim(0) * x.dim(1), hw = x.dim(2) * x.dim(3);
        require<shape_error>(hw > 0, "global_avg_pool2d: empty spatial size in ", x.shape().str());
        tensor<T> y({x.dim(0), x.dim(1)});
        const T inv = T(1) / static_cast<T>(hw);
        for (std::size_t i = 0; i < planes; ++i) {
            const T* p = x.data() + i * hw;
            T s = 0;
            for (std::size_t j = 0; j < hw; ++j) s += p[j];
            y[i] = s * inv;
        }
        return {std::move(y), cache_type{x.shape()}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        require<shape_error>(dy.shape() == shape_t{c.in_shape[0], c.in_shape[1]},
                             "global_avg_pool2d backward: gradient shape ", dy.shape().str(), " does not match (",
                             c.in_shape[0], ", ", c.in_shape[1], ")");
        tensor<T> dx(c.in_shape);
        const std::size_t planes = c.in_shape[0] * c.in_shape[1], hw = c.in_shape[2] * c.in_shape[3];
        const T inv = T(1) / static_cast<T>(hw);
        for (std::size_t i = 0; i < planes; ++i) {
            const T v = dy[i] * inv;
            std::fill(dx.data() + i * hw, dx.data() + (i + 1) * hw, v);
        }
        return dx;
    }
};

}  // namespace ssl::nn
