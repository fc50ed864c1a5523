#pragma once
// Winograd F(4x4, 3x3) convolution (Lavin & Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks") for 3x3, stride 1, padding 1 convolutions
// on NCHW images, with its exact adjoints for the backward pass.
//
// One 4x4 output tile needs a 6x6 input tile d and the 3x3 filter g:
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A          ((.) = element-wise)
// Over channels the element-wise product becomes, for each of the 36
// positions p of the 6x6 transformed tile, one GEMM:
//   M_p (Cout x T) = U_p (Cout x Cin) * V_p (Cin x T)    T = number of tiles
// with U = G g G^T (weights), V = B^T d B (inputs). 36 multiplies per 16
// outputs instead of 144: 4x fewer FLOPs than im2col + GEMM.
//
// Backward is the adjoint of each stage:
//   dM_p = A dY A^T (per tile),  dU_p += dM_p V_p^T,  dV_p = U_p^T dM_p,
//   dx += B dV B^T (tiles overlap: scatter-add),  dg = G^T dU G.
//
// Layouts: U[p][co][ci], V[p][ci][t], M[p][co][t], t = (image, tile row,
// tile column) over a group of images.
#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstring>

namespace ssl::backend::host::winograd {

/// Set to false to make conv2d use im2col + GEMM for every convolution
/// (for comparisons and tests of the two paths against each other).
inline bool enabled = true;

constexpr std::size_t m = 4, a = 6, npos = a * a;

struct tiling {
    std::size_t h, w;    // image (= output) size
    std::size_t th, tw;  // tiles per column / row
    std::size_t per_image() const { return th * tw; }
};
inline tiling make_tiling(std::size_t h, std::size_t w) { return {h, w, (h + m - 1) / m, (w + m - 1) / m}; }

namespace detail {

template <class T>
inline constexpr T sixth = T(1) / T(6);
template <class T>
inline constexpr T t12 = T(1) / T(12);
template <class T>
inline constexpr T t24 = T(1) / T(24);

// 1-d transforms on 6 (or 4, 3) values read with stride si, written with stride so.
template <class T>
inline void bt6(const T* d, std::size_t si, T* o, std::size_t so) {  // o = B^T d
    const T d0 = d[0], d1 = d[si], d2 = d[2 * si], d3 = d[3 * si], d4 = d[4 * si], d5 = d[5 * si];
    o[0] = T(4) * d0 - T(5) * d2 + d4;
    o[so] = -T(4) * (d1 + d2) + d3 + d4;
    o[2 * so] = T(4) * (d1 - d2) - d3 + d4;
    o[3 * so] = T(2) * (d3 - d1) - d2 + d4;
    o[4 * so] = T(2) * (d1 - d3) - d2 + d4;
    o[5 * so] = T(4) * d1 - T(5) * d3 + d5;
}
template <class T>
inline void b6(const T* v, std::size_t si, T* o, std::size_t so) {  // o = B v (adjoint of bt6)
    const T v0 = v[0], v1 = v[si], v2 = v[2 * si], v3 = v[3 * si], v4 = v[4 * si], v5 = v[5 * si];
    o[0] = T(4) * v0;
    o[so] = T(4) * (v2 - v1) + T(2) * (v4 - v3) + T(4) * v5;
    o[2 * so] = -T(5) * v0 - T(4) * (v1 + v2) - v3 - v4;
    o[3 * so] = v1 - v2 + T(2) * (v3 - v4) - T(5) * v5;
    o[4 * so] = v0 + v1 + v2 + v3 + v4;
    o[5 * so] = v5;
}
template <class T>
inline void at6(const T* v, std::size_t si, T* o, std::size_t so) {  // o (4) = A^T v (6)
    const T v0 = v[0], v1 = v[si], v2 = v[2 * si], v3 = v[3 * si], v4 = v[4 * si], v5 = v[5 * si];
    const T s12 = v1 + v2, d12 = v1 - v2, s34 = v3 + v4, d34 = v3 - v4;
    o[0] = v0 + s12 + s34;
    o[so] = d12 + T(2) * d34;
    o[2 * so] = s12 + T(4) * s34;
    o[3 * so] = d12 + T(8) * d34 + v5;
}
template <class T>
inline void a6(const T* g, std::size_t si, T* o, std::size_t so) {  // o (6) = A g (4), adjoint of at6
    const T g0 = g[0], g1 = g[si], g2 = g[2 * si], g3 = g[3 * si];
    o[0] = g0;
    o[so] = g0 + g1 + g2 + g3;
    o[2 * so] = g0 - g1 + g2 - g3;
    o[3 * so] = g0 + T(2) * g1 + T(4) * g2 + T(8) * g3;
    o[4 * so] = g0 - T(2) * g1 + T(4) * g2 - T(8) * g3;
    o[5 * so] = g3;
}
template <class T>
inline void g3(const T* g, std::size_t si, T* o, std::size_t so) {  // o (6) = G g (3)
    const T g0 = g[0], g1 = g[si], g2 = g[2 * si];
    o[0] = g0 * T(0.25);
    o[so] = -(g0 + g1 + g2) * sixth<T>;
    o[2 * so] = -(g0 - g1 + g2) * sixth<T>;
    o[3 * so] = g0 * t24<T> + g1 * t12<T> + g2 * sixth<T>;
    o[4 * so] = g0 * t24<T> - g1 * t12<T> + g2 * sixth<T>;
    o[5 * so] = g2;
}
template <class T>
inline void gt6(const T* u, std::size_t si, T* o, std::size_t so) {  // o (3) = G^T u (6), adjoint of g3
    const T u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si], u4 = u[4 * si], u5 = u[5 * si];
    o[0] = u0 * T(0.25) - (u1 + u2) * sixth<T> + (u3 + u4) * t24<T>;
    o[so] = (u2 - u1) * sixth<T> + (u3 - u4) * t12<T>;
    o[2 * so] = (u3 + u4 - u1 - u2) * sixth<T> + u5;
}

}  // namespace detail

namespace detail {
/// K[p][k] = G[i][a] * G[j][b] for p = (i, j), k = (a, b): U[p] = sum_k K[p][k] g[k].
template <class T>
struct weight_table {
    T k[npos][9];
    weight_table() {
        for (std::size_t k9 = 0; k9 < 9; ++k9) {
            T g[9] = {}, t[18], u[36];
            g[k9] = T(1);
            for (std::size_t c = 0; c < 3; ++c) g3(g + c, 3, t + c, 3);
            for (std::size_t r = 0; r < 6; ++r) g3(t + r * 3, 1, u + r * 6, 1);
            for (std::size_t p = 0; p < npos; ++p) k[p][k9] = u[p];
        }
    }
    static const weight_table& get() {
        static const weight_table w;
        return w;
    }
};
}  // namespace detail

/// U[p][co][ci] = (G g G^T)[p] for the filters w (co, ci, 3, 3), rows [co0, co1).
/// Vectorized over ci: for each output row the 9 taps are transposed into
/// scratch (9 * ci), then each position is a 9-term combination.
template <class T>
void transform_weights(const T* w, std::size_t co, std::size_t ci, std::size_t co0, std::size_t co1, T* U,
                       T* scratch /* 9 * ci */) {
    const auto& K = detail::weight_table<T>::get();
    for (std::size_t o = co0; o < co1; ++o) {
        const T* src = w + o * ci * 9;
        for (std::size_t i = 0; i < ci; ++i)
            for (std::size_t k = 0; k < 9; ++k) scratch[k * ci + i] = src[i * 9 + k];
        for (std::size_t p = 0; p < npos; ++p) {
            T* dst = U + (p * co + o) * ci;
            std::fill(dst, dst + ci, T(0));
            for (std::size_t k = 0; k < 9; ++k) {
                const T c = K.k[p][k];
                if (c == T(0)) continue;
                const T* s = scratch + k * ci;
                for (std::size_t i = 0; i < ci; ++i) dst[i] += c * s[i];
            }
        }
    }
}

/// dw (co, ci, 3, 3) += G^T dU[p] G, rows [co0, co1) (the adjoint of transform_weights).
template <class T>
void weight_adjoint_add(const T* dU, std::size_t co, std::size_t ci, std::size_t co0, std::size_t co1, T* dw,
                        T* scratch /* 9 * ci */) {
    const auto& K = detail::weight_table<T>::get();
    for (std::size_t o = co0; o < co1; ++o) {
        std::fill(scratch, scratch + 9 * ci, T(0));
        for (std::size_t p = 0; p < npos; ++p) {
            const T* src = dU + (p * co + o) * ci;
            for (std::size_t k = 0; k < 9; ++k) {
                const T c = K.k[p][k];
                if (c == T(0)) continue;
                T* d = scratch + k * ci;
                for (std::size_t i = 0; i < ci; ++i) d[i] += c * src[i];
            }
        }
        T* dst = dw + o * ci * 9;
        for (std::size_t i = 0; i < ci; ++i)
            for (std::size_t k = 0; k < 9; ++k) dst[i * 9 + k] += scratch[k * ci + i];
    }
}

namespace detail {
/// L values of T processed together; the element-wise operators compile to
/// SIMD instructions, so every 1-d transform above runs on L tiles at once.
template <class T, std::size_t L>
struct lanes {
    T v[L];
    lanes() = default;
    lanes(T s) {  // broadcast (implicit: the transforms write T(4) * d)
        for (std::size_t i = 0; i < L; ++i) v[i] = s;
    }
    friend lanes operator+(const lanes& a, const lanes& b) {
        lanes r;
        for (std::size_t i = 0; i < L; ++i) r.v[i] = a.v[i] + b.v[i];
        return r;
    }
    friend lanes operator-(const lanes& a, const lanes& b) {
        lanes r;
        for (std::size_t i = 0; i < L; ++i) r.v[i] = a.v[i] - b.v[i];
        return r;
    }
    friend lanes operator*(const lanes& a, const lanes& b) {
        lanes r;
        for (std::size_t i = 0; i < L; ++i) r.v[i] = a.v[i] * b.v[i];
        return r;
    }
    friend lanes operator-(const lanes& a) {
        lanes r;
        for (std::size_t i = 0; i < L; ++i) r.v[i] = -a.v[i];
        return r;
    }
};
template <class T>
inline constexpr std::size_t lane_count = 64 / sizeof(T);

/// Copies cnt <= lane_count<T> values; the full case is one fixed-size (vector) copy.
template <class T>
inline void copy_lanes(T* dst, const T* src, std::size_t cnt) {
    if (cnt == lane_count<T>)
        std::memcpy(dst, src, lane_count<T> * sizeof(T));
    else
        for (std::size_t l = 0; l < cnt; ++l) dst[l] = src[l];
}

/// Where tile t of a group lives: image, tile row, tile column.
struct tile_pos {
    std::size_t img, a, b;
};
inline tile_pos locate(std::size_t t, const tiling& tl) {
    const std::size_t r = t % tl.per_image();
    return {t / tl.per_image(), r / tl.tw, r % tl.tw};
}
}  // namespace detail

/// Elements of scratch that transform_input / input_adjoint need for a group
/// of g_count images: one zero-padded plane per image.
inline std::size_t scratch_size(const tiling& tl, std::size_t g_count) {
    return g_count * (m * tl.th + 2) * (m * tl.tw + 2);
}

/// V[p][c][t] for the g_count images at x (each C x H x W), padding 1.
/// ldv: the row length of V (at least the group's tile count).
template <class T>
void transform_input(const T* x, std::size_t g_count, std::size_t C, const tiling& tl, T* V, std::size_t ldv,
                     T* scratch /* scratch_size(tl, g_count) */) {
    constexpr std::size_t L = detail::lane_count<T>;
    using vec = detail::lanes<T, L>;
    const std::size_t ph = m * tl.th + 2, pw = m * tl.tw + 2, nt = g_count * tl.per_image(), plane = C * ldv;
    std::fill(scratch, scratch + g_count * ph * pw, T(0));  // borders stay zero
    vec d[36], t[36], o[36];
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t g = 0; g < g_count; ++g) {
            const T* src = x + (g * C + c) * tl.h * tl.w;
            T* dst = scratch + g * ph * pw + pw + 1;
            for (std::size_t r = 0; r < tl.h; ++r) std::memcpy(dst + r * pw, src + r * tl.w, tl.w * sizeof(T));
        }
        for (std::size_t t0 = 0; t0 < nt; t0 += L) {
            const std::size_t cnt = std::min(L, nt - t0);
            for (std::size_t l = 0; l < cnt; ++l) {
                const auto q = detail::locate(t0 + l, tl);
                const T* src = scratch + q.img * ph * pw + q.a * m * pw + q.b * m;
                for (std::size_t i = 0; i < 6; ++i)
                    for (std::size_t j = 0; j < 6; ++j) d[i * 6 + j].v[l] = src[i * pw + j];
            }
            for (std::size_t l = cnt; l < L; ++l)
                for (std::size_t k = 0; k < 36; ++k) d[k].v[l] = T(0);
            for (std::size_t j = 0; j < 6; ++j) detail::bt6(d + j, 6, t + j, 6);          // t = B^T d
            for (std::size_t i = 0; i < 6; ++i) detail::bt6(t + i * 6, 1, o + i * 6, 1);  // o = t B
            T* out = V + c * ldv + t0;
            for (std::size_t p = 0; p < npos; ++p) detail::copy_lanes(out + p * plane, o[p].v, cnt);
        }
    }
}

/// y (g_count images, C x H x W) = A^T M A, cropped to H x W.
template <class T>
void transform_output(const T* M, std::size_t g_count, std::size_t C, const tiling& tl, std::size_t ldm, T* y) {
    constexpr std::size_t L = detail::lane_count<T>;
    using vec = detail::lanes<T, L>;
    const std::size_t nt = g_count * tl.per_image(), plane = C * ldm, hw = tl.h * tl.w;
    vec in[36], t[24], o[16];
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t t0 = 0; t0 < nt; t0 += L) {
            const std::size_t cnt = std::min(L, nt - t0);
            const T* src = M + c * ldm + t0;
            for (std::size_t p = 0; p < npos; ++p) {
                detail::copy_lanes(in[p].v, src + p * plane, cnt);
                for (std::size_t l = cnt; l < L; ++l) in[p].v[l] = T(0);
            }
            for (std::size_t j = 0; j < 6; ++j) detail::at6(in + j, 6, t + j, 6);        // t (4x6) = A^T M
            for (std::size_t i = 0; i < 4; ++i) detail::at6(t + i * 6, 1, o + i * 4, 1);  // o = t A
            for (std::size_t l = 0; l < cnt; ++l) {
                const auto q = detail::locate(t0 + l, tl);
                T* dst = y + (q.img * C + c) * hw;
                const std::size_t r0 = q.a * m, c0 = q.b * m;
                const std::size_t nr = std::min(m, tl.h - r0), nc = std::min(m, tl.w - c0);
                for (std::size_t i = 0; i < nr; ++i)
                    for (std::size_t j = 0; j < nc; ++j) dst[(r0 + i) * tl.w + c0 + j] = o[i * 4 + j].v[l];
            }
        }
}

/// dM[p][c][t] = (A dY A^T)[p], dY taken as zero outside H x W.
template <class T>
void output_adjoint(const T* dy, std::size_t g_count, std::size_t C, const tiling& tl, std::size_t ldm, T* dM) {
    constexpr std::size_t L = detail::lane_count<T>;
    using vec = detail::lanes<T, L>;
    const std::size_t nt = g_count * tl.per_image(), plane = C * ldm, hw = tl.h * tl.w;
    vec gt[16], t[24], o[36];
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t t0 = 0; t0 < nt; t0 += L) {
            const std::size_t cnt = std::min(L, nt - t0);
            for (std::size_t l = 0; l < L; ++l) {
                if (l >= cnt) {
                    for (std::size_t k = 0; k < 16; ++k) gt[k].v[l] = T(0);
                    continue;
                }
                const auto q = detail::locate(t0 + l, tl);
                const T* src = dy + (q.img * C + c) * hw;
                const std::size_t r0 = q.a * m, c0 = q.b * m;
                const std::size_t nr = std::min(m, tl.h - r0), nc = std::min(m, tl.w - c0);
                for (std::size_t i = 0; i < 4; ++i)
                    for (std::size_t j = 0; j < 4; ++j)
                        gt[i * 4 + j].v[l] = (i < nr && j < nc) ? src[(r0 + i) * tl.w + c0 + j] : T(0);
            }
            for (std::size_t j = 0; j < 4; ++j) detail::a6(gt + j, 4, t + j, 4);        // t (6x4) = A g
            for (std::size_t i = 0; i < 6; ++i) detail::a6(t + i * 4, 1, o + i * 6, 1);  // o = t A^T
            T* out = dM + c * ldm + t0;
            for (std::size_t p = 0; p < npos; ++p) detail::copy_lanes(out + p * plane, o[p].v, cnt);
        }
}

/// dx (g_count images, C x H x W) = sum over tiles of B dV B^T (overwrites dx).
template <class T>
void input_adjoint(const T* dV, std::size_t g_count, std::size_t C, const tiling& tl, std::size_t ldv, T* dx,
                   T* scratch /* scratch_size(tl, g_count) */) {
    constexpr std::size_t L = detail::lane_count<T>;
    using vec = detail::lanes<T, L>;
    const std::size_t ph = m * tl.th + 2, pw = m * tl.tw + 2, nt = g_count * tl.per_image(), plane = C * ldv;
    vec v[36], t[36], o[36];
    for (std::size_t c = 0; c < C; ++c) {
        std::fill(scratch, scratch + g_count * ph * pw, T(0));
        for (std::size_t t0 = 0; t0 < nt; t0 += L) {
            const std::size_t cnt = std::min(L, nt - t0);
            const T* src = dV + c * ldv + t0;
            for (std::size_t p = 0; p < npos; ++p) {
                detail::copy_lanes(v[p].v, src + p * plane, cnt);
                for (std::size_t l = cnt; l < L; ++l) v[p].v[l] = T(0);
            }
            for (std::size_t j = 0; j < 6; ++j) detail::b6(v + j, 6, t + j, 6);          // t = B v
            for (std::size_t i = 0; i < 6; ++i) detail::b6(t + i * 6, 1, o + i * 6, 1);  // o = t B^T
            for (std::size_t l = 0; l < cnt; ++l) {
                const auto q = detail::locate(t0 + l, tl);
                T* dst = scratch + q.img * ph * pw + q.a * m * pw + q.b * m;
                for (std::size_t i = 0; i < 6; ++i)
                    for (std::size_t j = 0; j < 6; ++j) dst[i * pw + j] += o[i * 6 + j].v[l];
            }
        }
        for (std::size_t g = 0; g < g_count; ++g) {
            const T* src = scratch + g * ph * pw + pw + 1;
            T* out = dx + (g * C + c) * tl.h * tl.w;
            for (std::size_t r = 0; r < tl.h; ++r) std::memcpy(out + r * tl.w, src + r * pw, tl.w * sizeof(T));
        }
    }
}

}  // namespace ssl::backend::host::winograd
