#pragma once
// Bilinear upsampling (resizing) of NCHW maps, PyTorch's
// F.interpolate(x, size=(H_out, W_out), mode="bilinear", align_corners=False):
// for an output coordinate d (per axis, in_size / out_size = r)
//
//   s  = max(r * (d + 0.5) - 0.5, 0)          half-pixel centres
//   i0 = floor(s), i1 = min(i0 + 1, in - 1), l = s - i0
//   y  = (1 - l) * x[i0] + l * x[i1]           (separably over rows and columns)
//
// Contract: input (N, C, H, W), output (N, C, H_out, W_out); backward
// scatters dy with the same weights (the transpose), so the layer is linear
// and its gradient exact. Used by colorization's and split-brain's
// hypercolumns (taps brought to the input's resolution) and by dense heads.
//
// Design choices, one line each:
//   - align_corners = False only: it is PyTorch's default and what the papers'
//     Caffe/PyTorch code upsamples with; corners-aligned is a different map.
//   - the size is given (out_h, out_w) or as an integer factor; a factor uses
//     r = 1 / factor, which PyTorch's size= and scale_factor= paths agree on.
//   - downsampling with this formula is allowed (no antialiasing, as PyTorch).
//   - per plane, weights precomputed per axis (index pairs + lambdas).
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/thread_pool.hpp"
#include "activation.hpp"

namespace ssl::nn {

struct upsample_config {
    std::size_t out_h = 0;   ///< output height (0: use factor)
    std::size_t out_w = 0;   ///< output width (0: use factor)
    std::size_t factor = 0;  ///< integer scale factor, used when out_h = out_w = 0
};

namespace detail {
/// Per-axis source indices and weights of bilinear resampling, align_corners = False.
struct bilinear_axis {
    std::vector<std::size_t> i0, i1;
    std::vector<double> l1;  // weight of i1; i0 gets 1 - l1

    bilinear_axis() = default;
    bilinear_axis(std::size_t in, std::size_t out) : i0(out), i1(out), l1(out) {
        const double r = static_cast<double>(in) / static_cast<double>(out);
        for (std::size_t d = 0; d < out; ++d) {
            const double s = std::max(r * (static_cast<double>(d) + 0.5) - 0.5, 0.0);
            const auto a = std::min(static_cast<std::size_t>(s), in - 1);
            i0[d] = a;
            i1[d] = std::min(a + 1, in - 1);
            l1[d] = i1[d] == a ? 0.0 : s - static_cast<double>(a);
        }
    }
};
}  // namespace detail

template <class T = float>
class upsample_bilinear2d : public stateless {
public:
    using value_type = T;
    struct cache_type {
        shape_t in_shape;
    };

    upsample_bilinear2d() = default;
    explicit upsample_bilinear2d(const upsample_config& c) : cfg_(c) {
        const bool by_size = c.out_h > 0 || c.out_w > 0;
        require(by_size ? (c.out_h > 0 && c.out_w > 0) : c.factor > 0,
                "upsample_bilinear2d: give both out_h and out_w, or a positive factor; got out_h=", c.out_h,
                " out_w=", c.out_w, " factor=", c.factor);
    }
    const upsample_config& config() const noexcept { return cfg_; }

    /// (H_out, W_out) for an input of height h and width w.
    std::pair<std::size_t, std::size_t> output_size(std::size_t h, std::size_t w) const {
        if (cfg_.out_h) return {cfg_.out_h, cfg_.out_w};
        return {h * cfg_.factor, w * cfg_.factor};
    }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        check_rank(x, 4, "upsample_bilinear2d", "(N, C, H, W)");
        const std::size_t h = x.dim(2), w = x.dim(3);
        require<shape_error>(h > 0 && w > 0, "upsample_bilinear2d: empty input ", x.shape().str());
        const auto [ho, wo] = output_size(h, w);
        const detail::bilinear_axis ay(h, ho), ax(w, wo);
        tensor<T> y({x.dim(0), x.dim(1), ho, wo});
        parallel_for(x.dim(0) * x.dim(1), [&](std::size_t plane, std::size_t) {
            const T* p = x.data() + plane * h * w;
            T* q = y.data() + plane * ho * wo;
            for (std::size_t oy = 0; oy < ho; ++oy) {
                const T* r0 = p + ay.i0[oy] * w;
                const T* r1 = p + ay.i1[oy] * w;
                const T ly = static_cast<T>(ay.l1[oy]), ky = T(1) - ly;
                for (std::size_t ox = 0; ox < wo; ++ox) {
                    const std::size_t a = ax.i0[ox], b = ax.i1[ox];
                    const T lx = static_cast<T>(ax.l1[ox]), kx = T(1) - lx;
                    q[oy * wo + ox] = ky * (kx * r0[a] + lx * r0[b]) + ly * (kx * r1[a] + lx * r1[b]);
                }
            }
        });
        return {std::move(y), cache_type{x.shape()}};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        const std::size_t h = c.in_shape[2], w = c.in_shape[3];
        const auto [ho, wo] = output_size(h, w);
        require<shape_error>(dy.shape() == shape_t{c.in_shape[0], c.in_shape[1], ho, wo},
                             "upsample_bilinear2d backward: gradient shape ", dy.shape().str(),
                             " does not match output shape ", shape_t{c.in_shape[0], c.in_shape[1], ho, wo}.str());
        const detail::bilinear_axis ay(h, ho), ax(w, wo);
        tensor<T> dx = tensor<T>::zeros(c.in_shape);
        parallel_for(c.in_shape[0] * c.in_shape[1], [&](std::size_t plane, std::size_t) {
            T* p = dx.data() + plane * h * w;
            const T* q = dy.data() + plane * ho * wo;
            for (std::size_t oy = 0; oy < ho; ++oy) {
                T* r0 = p + ay.i0[oy] * w;
                T* r1 = p + ay.i1[oy] * w;
                const T ly = static_cast<T>(ay.l1[oy]), ky = T(1) - ly;
                for (std::size_t ox = 0; ox < wo; ++ox) {
                    const std::size_t a = ax.i0[ox], b = ax.i1[ox];
                    const T lx = static_cast<T>(ax.l1[ox]), kx = T(1) - lx, g = q[oy * wo + ox];
                    r0[a] += ky * kx * g;
                    r0[b] += ky * lx * g;
                    r1[a] += ly * kx * g;
                    r1[b] += ly * lx * g;
                }
            }
        });
        return dx;
    }

private:
    upsample_config cfg_{};
};

}  // namespace ssl::nn
