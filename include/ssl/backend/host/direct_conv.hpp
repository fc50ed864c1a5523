#pragma once
// Direct ("implicit GEMM") convolution for any kernel, stride and padding,
// forward and backward, on blocks of L images held as vector lanes (L = 16
// in float with 64-byte vectors, as in winograd.hpp).
//
// A block's input is interleaved into a zero-padded buffer
//   Z[c][row][col][lane]   (rows h + 2 pad, columns w + 2 pad)
// so that the input pixel a kernel tap (c, ki, kj) reads for output pixel
// (oh, ow) is one contiguous vector Z[c][oh s + ki][ow s + kj][:], for all L
// images at once. The convolution is then a product without an im2col
// matrix: a register block of MB output channels x NP output pixels of one
// row accumulates W[co][k] * Z-vector over k = (c, ki, kj), the weights
// broadcast from memory. im2col writes and reads the input kh kw times
// (9x for 3x3); here it is interleaved once and read from cache.
//
// Backward, per block, with the output gradient interleaved the same way
// (DY[co][p][lane], p = oh wo + ow):
//   dW[co][k] += sum over p and lanes of DY[co][p] * Z[k at p]   (vector
//               accumulators, summed across lanes at the end)
//   dZ[k at p] += sum over co of W[co][k] * DY[co][p]             (scatter-add
//               into a padded buffer; its interior is the input gradient)
// Lanes past the block's last image hold zeros in Z and DY, so they add
// nothing to dW; their outputs are never written back.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "im2col.hpp"      // conv_geometry
#include "small_gemm.hpp"  // vreg, vload, vstore
#include "winograd.hpp"    // interleave, deinterleave, lane_count

namespace ssl::backend::host::direct {

/// Set to false to make conv2d use im2col + GEMM where it would use this
/// path (for comparisons and tests of the two paths against each other).
inline bool enabled = true;

/// Images per block (= vector lanes).
template <class T>
inline constexpr std::size_t block_images = winograd::detail::lane_count<T>;

/// Register blocking: MB output channels (or kernel rows) x NP pixels of
/// native-vector accumulators. AVX-512 has 32 vector registers: 8 x 3
/// accumulators plus the NP loads; 16 registers (AVX2, SSE): 6 x 2 (12
/// accumulators, 2 loads, 1 broadcast; measured against 4 x 3 on an AVX2
/// EPYC, bench/README.md). The weight gradient's tiles are
/// weight_rows_block output channels x 2 kernel rows (AVX-512 8 x 3). On narrower targets a
/// tile runs once per native slice of the block's lanes (two 8-float halves
/// with AVX2) instead of on 64-byte vectors, which GCC would spill (issue
/// 18).
#if defined(__AVX512F__)
inline constexpr std::size_t rows_block = 8, pixels_block = 3, weight_rows_block = 8;
#else
inline constexpr std::size_t rows_block = 6, pixels_block = 2, weight_rows_block = 6;
#endif

/// The padded, interleaved geometry of a block.
struct layout {
    std::size_t hp, wp;  // padded rows and columns
    std::size_t P;       // output pixels ho * wo
    std::size_t K;       // c * kh * kw
};
inline layout make_layout(const conv_geometry& q) {
    return {q.h + 2 * q.pad, q.w + 2 * q.pad, q.ho * q.wo, q.c * q.kh * q.kw};
}

/// Elements of the padded input buffer Z (and of dZ) of one block.
template <class T>
inline std::size_t padded_size(const conv_geometry& q) {
    const auto lo = make_layout(q);
    return q.c * lo.hp * lo.wp * block_images<T>;
}
/// Elements of the unpadded plane scratch F of one block.
template <class T>
inline std::size_t plane_scratch_size(const conv_geometry& q) {
    return std::max(q.h * q.w, q.ho * q.wo) * block_images<T>;
}
/// Elements of the interleaved output (or output gradient) of one block.
template <class T>
inline std::size_t output_size(const conv_geometry& q, std::size_t co) {
    return co * q.ho * q.wo * block_images<T>;
}

namespace detail {
using host::detail::nreg;
using host::detail::vload;
using host::detail::vreg;
using host::detail::vstore;

/// Offset (in vectors) of kernel row k = (c, ki, kj) in Z, relative to the
/// window origin of an output pixel.
inline std::size_t tap_offset(std::size_t k, const conv_geometry& q, const layout& lo) {
    const std::size_t kk = q.kh * q.kw, c = k / kk, ki = k % kk / q.kw, kj = k % q.kw;
    return (c * lo.hp + ki) * lo.wp + kj;
}

/// Y[i][j] (i < MB output channels of a row block, j < NP pixels of one
/// row) = sum over k of W[i][k] * Z[k at pixel j]; Wp: the block's packed
/// panel (Wp[k * MB + i] = W[i][k], pack_rows); z: Z at the window origin of
/// pixel 0; pixel j's origin is j * stride columns further; ldy: Y's pixels
/// per channel.
template <class T, std::size_t MB, std::size_t NP>
inline void forward_tile(const T* Wp, const T* z, const conv_geometry& q, const layout& lo, T* y, std::size_t ldy) {
    constexpr std::size_t L = host::detail::vreg_lanes<T>, NL = host::detail::nreg_lanes<T>;
    const std::size_t step = q.stride * L, plane = lo.hp * lo.wp * L;
    for (std::size_t h = 0; h < L; h += NL) {  // native slices of the lanes (one with AVX-512)
        nreg<T> acc[MB][NP];
        for (std::size_t i = 0; i < MB; ++i)
            for (std::size_t j = 0; j < NP; ++j) acc[i][j] = nreg<T>{};
        std::size_t k = 0;
        for (std::size_t c = 0; c < q.c; ++c)
            for (std::size_t ki = 0; ki < q.kh; ++ki) {
                const T* zr = z + c * plane + ki * lo.wp * L + h;
                for (std::size_t kj = 0; kj < q.kw; ++kj, ++k) {
                    nreg<T> b[NP];
                    for (std::size_t j = 0; j < NP; ++j) vload<T>(b[j], zr + kj * L + j * step);
                    for (std::size_t i = 0; i < MB; ++i) {
                        const T a = Wp[k * MB + i];
                        for (std::size_t j = 0; j < NP; ++j) acc[i][j] += a * b[j];
                    }
                }
            }
        for (std::size_t i = 0; i < MB; ++i)
            for (std::size_t j = 0; j < NP; ++j) vstore<T>(y + (i * ldy + j) * L + h, acc[i][j]);
    }
}

/// dZ[k0 + i at pixel j] += sum over co of Wt[k0 + i][co] * DY[co][pixel j]
/// for i < MB kernel rows, j < NP pixels of one row; Wtp: W^T packed by
/// pack_rows (the panel of rows k0.. at Wtp + k0 * co); dz: dZ at the window
/// origin of pixel 0, dy: DY at pixel 0.
template <class T, std::size_t MB, std::size_t NP>
inline void input_tile(const T* Wtp, std::size_t co, const T* dy, std::size_t k0, const conv_geometry& q,
                       const layout& lo, T* dz) {
    constexpr std::size_t L = host::detail::vreg_lanes<T>, NL = host::detail::nreg_lanes<T>;
    const std::size_t step = q.stride * L;
    const T* panel = Wtp + k0 * co;
    for (std::size_t h = 0; h < L; h += NL) {  // native slices of the lanes (one with AVX-512)
        nreg<T> acc[MB][NP];
        for (std::size_t i = 0; i < MB; ++i)
            for (std::size_t j = 0; j < NP; ++j) acc[i][j] = nreg<T>{};
        for (std::size_t o = 0; o < co; ++o) {
            nreg<T> b[NP];
            for (std::size_t j = 0; j < NP; ++j) vload<T>(b[j], dy + (o * lo.P + j) * L + h);
            for (std::size_t i = 0; i < MB; ++i) {
                const T a = panel[o * MB + i];
                for (std::size_t j = 0; j < NP; ++j) acc[i][j] += a * b[j];
            }
        }
        for (std::size_t i = 0; i < MB; ++i) {
            T* d = dz + tap_offset(k0 + i, q, lo) * L + h;
            for (std::size_t j = 0; j < NP; ++j) {
                nreg<T> v;
                vload<T>(v, d + j * step);
                v += acc[i][j];
                vstore<T>(d + j * step, v);
            }
        }
    }
}

/// dW[i][j] += sum over pixels and lanes of DY[i][p] * Z[k0 + j at p] for
/// i < MB output channels, j < NK kernel rows.
template <class T, std::size_t MB, std::size_t NK>
inline void weight_tile(const T* DY, const T* Z, std::size_t k0, const conv_geometry& q, const layout& lo, T* dW) {
    constexpr std::size_t L = host::detail::vreg_lanes<T>, NL = host::detail::nreg_lanes<T>;
    nreg<T> acc[MB * NK];  // (i, j) at i * NK + j, summed over the native slices of the lanes too
    for (auto& a : acc) a = nreg<T>{};
    std::size_t off[NK];
    for (std::size_t j = 0; j < NK; ++j) off[j] = tap_offset(k0 + j, q, lo) * L;
    // the native slices outermost: GCC unrolls an inner slice loop and then
    // spills the second slice's loads
    for (std::size_t h = 0; h < L; h += NL) {
        std::size_t p = 0;
        for (std::size_t oh = 0; oh < q.ho; ++oh)
            for (std::size_t ow = 0; ow < q.wo; ++ow, ++p) {
                const T* z = Z + (oh * q.stride * lo.wp + ow * q.stride) * L + h;
                nreg<T> b[NK];  // the NK input vectors held, the MB gradient rows one at a time
                for (std::size_t j = 0; j < NK; ++j) vload<T>(b[j], z + off[j]);
                for (std::size_t i = 0; i < MB; ++i) {
                    nreg<T> a;
                    vload<T>(a, DY + (i * lo.P + p) * L + h);
                    for (std::size_t j = 0; j < NK; ++j) acc[i * NK + j] += a * b[j];
                }
            }
    }
    T s[MB * NK];
    host::detail::lane_sums<T>(acc, MB * NK, s);
    for (std::size_t i = 0; i < MB; ++i)
        for (std::size_t j = 0; j < NK; ++j) dW[i * lo.K + k0 + j] += s[i * NK + j];
}

/// Calls f(std::integral_constant<std::size_t, NP>) for runs of pixels of
/// one output row: pixels_block at a time, then one at a time; f gets the
/// first column too.
template <class F>
inline void for_pixel_runs(std::size_t wo, F&& f) {
    std::size_t ow = 0;
    for (; ow + pixels_block <= wo; ow += pixels_block) f(std::integral_constant<std::size_t, pixels_block>{}, ow);
    for (; ow < wo; ++ow) f(std::integral_constant<std::size_t, 1>{}, ow);
}
/// Calls f(std::integral_constant<std::size_t, MB>, r0) over rows [0, m):
/// RB (rows_block by default) at a time, then 4, then 1.
template <std::size_t RB = rows_block, class F>
inline void for_row_blocks(std::size_t m, F&& f) {
    std::size_t r = 0;
    for (; r + RB <= m; r += RB) f(std::integral_constant<std::size_t, RB>{}, r);
    if constexpr (RB > 4)
        for (; r + 4 <= m; r += 4) f(std::integral_constant<std::size_t, 4>{}, r);
    for (; r < m; ++r) f(std::integral_constant<std::size_t, 1>{}, r);
}
}  // namespace detail

/// Wp (rows x cols) = A (rows x cols, row-major) repacked by the row blocks
/// the tiles use (for_row_blocks): the block of MB rows at r0 becomes a
/// cols x MB panel at Wp + r0 * cols, so a tile's MB broadcasts per column
/// come from one place (one pointer, not MB row pointers: the AVX2 tiles
/// ran out of general registers and reloaded them from the stack).
template <class T>
void pack_rows(const T* A, std::size_t rows, std::size_t cols, T* Wp) {
    detail::for_row_blocks(rows, [&](auto mb, std::size_t r0) {
        constexpr std::size_t MB = decltype(mb)::value;
        T* panel = Wp + r0 * cols;
        for (std::size_t c = 0; c < cols; ++c)
            for (std::size_t i = 0; i < MB; ++i) panel[c * MB + i] = A[(r0 + i) * cols + c];
    });
}

/// Z (padded_size) = the block's n_img <= L images (each C x H x W at x),
/// interleaved, with their padding. Z's padding ring must already be zero
/// (zero Z once; blocks only rewrite the interior). F: plane_scratch_size.
template <class T>
void pad_interleave(const T* x, std::size_t n_img, const conv_geometry& q, T* Z, T* F) {
    constexpr std::size_t L = block_images<T>;
    const auto lo = make_layout(q);
    const std::size_t hw = q.h * q.w;
    const T* src[L];
    for (std::size_t c = 0; c < q.c; ++c) {
        for (std::size_t l = 0; l < L; ++l) src[l] = l < n_img ? x + (l * q.c + c) * hw : nullptr;
        winograd::detail::interleave(src, hw, F);
        T* zc = Z + c * lo.hp * lo.wp * L;
        for (std::size_t r = 0; r < q.h; ++r)
            std::memcpy(zc + ((r + q.pad) * lo.wp + q.pad) * L, F + r * q.w * L, q.w * L * sizeof(T));
    }
}

/// D (output_size) = the block's n_img images of g (each C' x HO x WO),
/// interleaved (lanes past n_img zero).
template <class T>
void interleave_output(const T* g, std::size_t n_img, std::size_t co, const conv_geometry& q, T* D) {
    constexpr std::size_t L = block_images<T>;
    const std::size_t P = q.ho * q.wo;
    const T* src[L];
    for (std::size_t o = 0; o < co; ++o) {
        for (std::size_t l = 0; l < L; ++l) src[l] = l < n_img ? g + (l * co + o) * P : nullptr;
        winograd::detail::interleave(src, P, D + o * P * L);
    }
}

/// Output rows per chunk of forward: the chunk's interleaved output
/// (co x rows x WO vectors) stays within ~128 KB, in L2 until it is
/// deinterleaved.
template <class T>
inline std::size_t chunk_rows(const conv_geometry& q, std::size_t co) {
    const std::size_t row_bytes = co * q.wo * block_images<T> * sizeof(T);
    return std::clamp<std::size_t>((std::size_t{128} << 10) / std::max<std::size_t>(row_bytes, 1), 1, q.ho);
}
/// Elements of forward's interleaved output chunk.
template <class T>
inline std::size_t chunk_size(const conv_geometry& q, std::size_t co) {
    return co * chunk_rows<T>(q, co) * q.wo * block_images<T>;
}

/// y (the block's n_img images, co x HO x WO) = W (co x K, row-major)
/// applied to Z, a chunk of output rows at a time through Y (chunk_size);
/// Wp: W packed by pack_rows(W, co, K).
template <class T>
void forward(const T* Wp, std::size_t co, const T* Z, const conv_geometry& q, std::size_t n_img, T* y, T* Y) {
    constexpr std::size_t L = block_images<T>;
    const auto lo = make_layout(q);
    const std::size_t rows = chunk_rows<T>(q, co);
    T* dst[L];
    for (std::size_t r0 = 0; r0 < q.ho; r0 += rows) {
        const std::size_t r1 = std::min(q.ho, r0 + rows), pc = (r1 - r0) * q.wo;
        for (std::size_t oh = r0; oh < r1; ++oh)
            detail::for_pixel_runs(q.wo, [&](auto np, std::size_t ow) {
                const T* z = Z + (oh * q.stride * lo.wp + ow * q.stride) * L;
                T* yc = Y + ((oh - r0) * q.wo + ow) * L;
                detail::for_row_blocks(co, [&](auto mb, std::size_t o0) {
                    detail::forward_tile<T, decltype(mb)::value, decltype(np)::value>(Wp + o0 * lo.K, z, q, lo,
                                                                                        yc + o0 * pc * L, pc);
                });
            });
        for (std::size_t o = 0; o < co; ++o) {
            for (std::size_t l = 0; l < L; ++l) dst[l] = l < n_img ? y + (l * co + o) * lo.P + r0 * q.wo : nullptr;
            winograd::detail::deinterleave(Y + o * pc * L, pc, dst, false);
        }
    }
}

/// dZ (padded_size, zeroed by the caller) += the input gradient of DY
/// (output_size, interleaved); Wtp: W^T (K x co) packed by
/// pack_rows(W^T, K, co).
template <class T>
void input_grad(const T* Wtp, std::size_t co, const T* DY, const conv_geometry& q, T* dZ) {
    constexpr std::size_t L = block_images<T>;
    const auto lo = make_layout(q);
    for (std::size_t oh = 0; oh < q.ho; ++oh)
        detail::for_pixel_runs(q.wo, [&](auto np, std::size_t ow) {
            T* dz = dZ + (oh * q.stride * lo.wp + ow * q.stride) * L;
            const T* dy = DY + (oh * q.wo + ow) * L;
            detail::for_row_blocks(lo.K, [&](auto mb, std::size_t k0) {
                detail::input_tile<T, decltype(mb)::value, decltype(np)::value>(Wtp, co, dy, k0, q, lo, dz);
            });
        });
}

/// dW (co x K, row-major) += the weight gradient of DY against Z.
template <class T>
void weight_grad(const T* DY, std::size_t co, const T* Z, const conv_geometry& q, T* dW) {
    const auto lo = make_layout(q);
    constexpr std::size_t NK = weight_rows_block > 6 ? 3 : 2;  // kernel rows per tile (MB = 8: 24 accumulators; 6: 12)
    detail::for_row_blocks<weight_rows_block>(co, [&](auto mb, std::size_t o0) {
        constexpr std::size_t MB = decltype(mb)::value;
        const T* dy = DY + o0 * lo.P * block_images<T>;
        T* dw = dW + o0 * lo.K;
        std::size_t k = 0;
        for (; k + NK <= lo.K; k += NK) detail::weight_tile<T, MB, NK>(dy, Z, k, q, lo, dw);
        for (; k < lo.K; ++k) detail::weight_tile<T, MB, 1>(dy, Z, k, q, lo, dw);
    });
}

/// dx (the block's n_img images, C x H x W) = the interior of dZ; overwrites
/// dx, or adds to it when accumulate is true. F: plane_scratch_size.
template <class T>
void finish_input_grad(const T* dZ, std::size_t n_img, const conv_geometry& q, T* dx, bool accumulate, T* F) {
    constexpr std::size_t L = block_images<T>;
    const auto lo = make_layout(q);
    const std::size_t hw = q.h * q.w;
    T* dst[L];
    for (std::size_t c = 0; c < q.c; ++c) {
        const T* zc = dZ + c * lo.hp * lo.wp * L;
        for (std::size_t r = 0; r < q.h; ++r)
            std::memcpy(F + r * q.w * L, zc + ((r + q.pad) * lo.wp + q.pad) * L, q.w * L * sizeof(T));
        for (std::size_t l = 0; l < L; ++l) dst[l] = l < n_img ? dx + (l * q.c + c) * hw : nullptr;
        winograd::detail::deinterleave(F, hw, dst, accumulate);
    }
}

}  // namespace ssl::backend::host::direct
