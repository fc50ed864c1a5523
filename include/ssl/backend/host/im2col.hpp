#pragma once
// im2col / col2im for NCHW images, over a group of images at once so small
// feature maps still give the GEMM enough columns.
//   col: (C * KH * KW, G * HO * WO), row r = (c, ki, kj), column = (g, ho, wo)
#include <algorithm>
#include <cstddef>
#include <cstring>

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

/// Fills col (rows x (g_count * HO*WO), row-major) from g_count images that
/// start at x (each C*H*W contiguous).
template <class T>
void im2col(const T* x, std::size_t g_count, const conv_geometry& q, T* col) {
    const std::size_t ncols = g_count * q.hw_out();
    const std::ptrdiff_t H = static_cast<std::ptrdiff_t>(q.h), W = static_cast<std::ptrdiff_t>(q.w);
    for (std::size_t c = 0; c < q.c; ++c)
        for (std::size_t ki = 0; ki < q.kh; ++ki)
            for (std::size_t kj = 0; kj < q.kw; ++kj) {
                T* row = col + ((c * q.kh + ki) * q.kw + kj) * ncols;
                for (std::size_t g = 0; g < g_count; ++g) {
                    const T* img = x + (g * q.c + c) * q.hw_in();
                    T* out = row + g * q.hw_out();
                    for (std::size_t oh = 0; oh < q.ho; ++oh) {
                        const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * q.stride + ki) - static_cast<std::ptrdiff_t>(q.pad);
                        T* o = out + oh * q.wo;
                        if (ih < 0 || ih >= H) {
                            std::fill(o, o + q.wo, T(0));
                            continue;
                        }
                        const T* src = img + ih * W;
                        const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(kj) - static_cast<std::ptrdiff_t>(q.pad);
                        if (q.stride == 1) {
                            // valid ow: 0 <= ow + off < W
                            const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, -off);
                            const std::ptrdiff_t hi = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(q.wo), W - off);
                            std::fill(o, o + lo, T(0));
                            if (hi > lo) std::memcpy(o + lo, src + lo + off, static_cast<std::size_t>(hi - lo) * sizeof(T));
                            std::fill(o + std::max(hi, lo), o + q.wo, T(0));
                        } else {
                            for (std::size_t ow = 0; ow < q.wo; ++ow) {
                                const std::ptrdiff_t iw = static_cast<std::ptrdiff_t>(ow * q.stride) + off;
                                o[ow] = (iw >= 0 && iw < W) ? src[iw] : T(0);
                            }
                        }
                    }
                }
            }
}

/// Adds col (rows x (g_count * HO*WO)) back into g_count images at dx
/// (which the caller zeroes first).
template <class T>
void col2im_add(const T* col, std::size_t g_count, const conv_geometry& q, T* dx) {
    const std::size_t ncols = g_count * q.hw_out();
    const std::ptrdiff_t H = static_cast<std::ptrdiff_t>(q.h), W = static_cast<std::ptrdiff_t>(q.w);
    for (std::size_t c = 0; c < q.c; ++c)
        for (std::size_t ki = 0; ki < q.kh; ++ki)
            for (std::size_t kj = 0; kj < q.kw; ++kj) {
                const T* row = col + ((c * q.kh + ki) * q.kw + kj) * ncols;
                for (std::size_t g = 0; g < g_count; ++g) {
                    T* img = dx + (g * q.c + c) * q.hw_in();
                    const T* in = row + g * q.hw_out();
                    for (std::size_t oh = 0; oh < q.ho; ++oh) {
                        const std::ptrdiff_t ih = static_cast<std::ptrdiff_t>(oh * q.stride + ki) - static_cast<std::ptrdiff_t>(q.pad);
                        if (ih < 0 || ih >= H) continue;
                        const T* r = in + oh * q.wo;
                        T* dst = img + ih * W;
                        const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(kj) - static_cast<std::ptrdiff_t>(q.pad);
                        if (q.stride == 1) {
                            const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, -off);
                            const std::ptrdiff_t hi = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(q.wo), W - off);
                            for (std::ptrdiff_t ow = lo; ow < hi; ++ow) dst[ow + off] += r[ow];
                        } else {
                            for (std::size_t ow = 0; ow < q.wo; ++ow) {
                                const std::ptrdiff_t iw = static_cast<std::ptrdiff_t>(ow * q.stride) + off;
                                if (iw >= 0 && iw < W) dst[iw] += r[ow];
                            }
                        }
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
