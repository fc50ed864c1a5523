#pragma once
// im2col / col2im for NCHW images, over a group of images at once so small
// feature maps still give the GEMM enough columns.
//   col: (C * KH * KW, G * HO * WO), row r = (c, ki, kj), column = (g, ho, wo)
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

namespace ssl::backend::host {

struct conv_geometry {
    std::size_t c, h, w;         // input channels and size
    std::size_t kh, kw;          // kernel
    std::size_t stride, pad;     // same in both directions
    std::size_t ho, wo;          // output size
    std::size_t rows() const { return c * kh * kw; }
    std::size_t hw_out() const { return ho * wo; }
    std::size_t hw_in() const { return h * w; }
};

namespace detail {
/// Output columns [lo, hi) of a kernel column whose input column
/// ow * stride + off lies inside [0, w); lo <= hi <= wo.
struct valid_cols {
    std::size_t lo, hi;
};
inline valid_cols valid_range(std::ptrdiff_t off, std::size_t stride, std::size_t w, std::size_t wo) {
    const auto s = static_cast<std::ptrdiff_t>(stride), W = static_cast<std::ptrdiff_t>(w);
    const std::ptrdiff_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
    const std::ptrdiff_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1;
    const auto l = static_cast<std::size_t>(std::min<std::ptrdiff_t>(lo, static_cast<std::ptrdiff_t>(wo)));
    return {l, std::max(l, std::min(static_cast<std::size_t>(hi), wo))};
}
/// Calls f(stride) with strides 1 and 2 as compile-time constants
/// (std::integral_constant), so the row loops below vectorize (stride 2: lane
/// permutes instead of scalar loads), any other stride as a plain value.
template <class F>
inline void with_stride(std::size_t stride, F&& f) {
    if (stride == 1)
        f(std::integral_constant<std::size_t, 1>{});
    else if (stride == 2)
        f(std::integral_constant<std::size_t, 2>{});
    else
        f(stride);
}
}  // namespace detail

/// Fills col (rows x (g_count * HO*WO), row-major) from g_count images that
/// start at x (each C*H*W contiguous).
template <class T>
void im2col(const T* x, std::size_t g_count, const conv_geometry& q, T* col) {
    const std::size_t ncols = g_count * q.hw_out();
    const auto H = static_cast<std::ptrdiff_t>(q.h), pad = static_cast<std::ptrdiff_t>(q.pad);
    for (std::size_t c = 0; c < q.c; ++c)
        for (std::size_t ki = 0; ki < q.kh; ++ki)
            for (std::size_t kj = 0; kj < q.kw; ++kj) {
                T* row = col + ((c * q.kh + ki) * q.kw + kj) * ncols;
                const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(kj) - pad;
                // Plain variables, not a structured binding: clang 14 cannot capture one in a lambda.
                const detail::valid_cols range = detail::valid_range(off, q.stride, q.w, q.wo);
                const std::size_t lo = range.lo, hi = range.hi;
                for (std::size_t g = 0; g < g_count; ++g) {
                    const T* img = x + (g * q.c + c) * q.hw_in();
                    T* out = row + g * q.hw_out();
                    for (std::size_t oh = 0; oh < q.ho; ++oh) {
                        const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * q.stride + ki) - pad;
                        T* o = out + oh * q.wo;
                        if (ih < 0 || ih >= H || hi == lo) {
                            std::fill(o, o + q.wo, T(0));
                            continue;
                        }
                        // valid columns read img[ih][lo * stride + off ...]; lo * stride + off >= 0
                        const T* src = img + ih * static_cast<std::ptrdiff_t>(q.w) +
                                       static_cast<std::ptrdiff_t>(lo * q.stride) + off;
                        std::fill(o, o + lo, T(0));
                        detail::with_stride(q.stride, [&](auto st) {
                            for (std::size_t i = 0; i < hi - lo; ++i) o[lo + i] = src[i * st];
                        });
                        std::fill(o + hi, o + q.wo, T(0));
                    }
                }
            }
}

/// Adds col (rows x (g_count * HO*WO)) back into g_count images at dx
/// (which the caller zeroes first).
template <class T>
void col2im_add(const T* col, std::size_t g_count, const conv_geometry& q, T* dx) {
    const std::size_t ncols = g_count * q.hw_out();
    const auto H = static_cast<std::ptrdiff_t>(q.h), pad = static_cast<std::ptrdiff_t>(q.pad);
    for (std::size_t c = 0; c < q.c; ++c)
        for (std::size_t ki = 0; ki < q.kh; ++ki)
            for (std::size_t kj = 0; kj < q.kw; ++kj) {
                const T* row = col + ((c * q.kh + ki) * q.kw + kj) * ncols;
                const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(kj) - pad;
                // Plain variables, not a structured binding: clang 14 cannot capture one in a lambda.
                const detail::valid_cols range = detail::valid_range(off, q.stride, q.w, q.wo);
                const std::size_t lo = range.lo, hi = range.hi;
                if (hi == lo) continue;
                for (std::size_t g = 0; g < g_count; ++g) {
                    T* img = dx + (g * q.c + c) * q.hw_in();
                    const T* in = row + g * q.hw_out();
                    for (std::size_t oh = 0; oh < q.ho; ++oh) {
                        const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * q.stride + ki) - pad;
                        if (ih < 0 || ih >= H) continue;
                        T* dst = img + ih * static_cast<std::ptrdiff_t>(q.w) +
                                 static_cast<std::ptrdiff_t>(lo * q.stride) + off;
                        const T* r = in + oh * q.wo + lo;
                        detail::with_stride(q.stride, [&](auto st) {
                            for (std::size_t i = 0; i < hi - lo; ++i) dst[i * st] += r[i];
                        });
                    }
                }
            }
}

/// How many images to put in one GEMM so it has at least ~`target` columns.
inline std::size_t conv_group_size(std::size_t hw_out, std::size_t batch, std::size_t target = 512) {
    std::size_t g = hw_out >= target ? 1 : (target + hw_out - 1) / hw_out;
    return std::max<std::size_t>(1, std::min(g, batch));
}

}  // namespace ssl::backend::host
