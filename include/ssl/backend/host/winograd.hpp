#pragma once
// Winograd F(m x m, 3x3) convolution (Lavin & Gray 2016, "Fast Algorithms
// for Convolutional Neural Networks") for 3x3, stride 1, padding 1
// convolutions on NCHW images, with its exact adjoints for the backward
// pass, in two variants: F(2x2, 3x3) (m = 2, the default) and F(4x4, 3x3)
// (m = 4, opt-in).
//
// One m x m output tile needs an a x a input tile d (a = m + 2) and the
// 3x3 filter g:
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A          ((.) = element-wise)
// Over channels the element-wise product becomes, for each of the a*a
// positions p of the transformed tile, one GEMM:
//   M_p (Cout x T) = U_p (Cout x Cin) * V_p (Cin x T)    T = number of tiles
// with U = G g G^T (weights), V = B^T d B (inputs). F(2x2): 16 multiplies
// per 4 outputs (2.25x fewer than the direct 9 per output); F(4x4): 36 per
// 16 (4x fewer).
//
// Backward is the adjoint of each stage:
//   dM_p = A dY A^T (per tile),  dU_p += dM_p V_p^T,  dV_p = U_p^T dM_p,
//   dx += B dV B^T (tiles overlap by 2: scatter-add),  dg = G^T dU G.
//
// Why F(2x2) is the default: its B^T and A^T have entries 0 and +-1 only,
// so a constant input region transforms exactly to one non-zero position
// (c - c = 0 and c + c = 2c hold in float) and every output of the region
// gets exactly the same value, as im2col and the direct path give.
// F(4x4)'s transforms (4, -5, 2, 8) round: inside a constant image its
// outputs differ by ~7.5e-6 relative in a pattern that repeats with the
// tiles, which the batch norms that follow amplify where the true variance
// is near zero (thin strokes on black: SimCLR kNN 77.3 with F(4x4) against
// 83.0 without Winograd, glyphs-c, 3 seeds; bench/README.md, issue 24).
//
// Layouts: U[p][co][ci], V[p][ci][t], M[p][co][t], t = (image, tile row,
// tile column) over a group of images.
#include <Eigen/Core>
#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>

#include "small_gemm.hpp"  // vreg, transpose_lanes

namespace ssl::backend::host::winograd {

/// Whether conv2d uses Winograd for 3x3 / stride 1 / padding 1
/// convolutions (false: the direct or im2col path), and which output tile:
/// 2 (F(2x2, 3x3), the default: constant regions stay exactly constant) or
/// 4 (F(4x4, 3x3): fewer multiplies, ~10x the rounding of im2col, not
/// constant-preserving; `ssl train --winograd 4`).
inline bool enabled = true;
inline std::size_t output_tile = 2;

/// Sets both from one number, as the programs' `--winograd N` takes it:
/// 0 (off), 2 or 4. Returns false (and changes nothing) for any other.
inline bool select(std::size_t tile) {
    if (tile != 0 && tile != 2 && tile != 4) return false;
    enabled = tile != 0;
    if (tile != 0) output_tile = tile;
    return true;
}

/// The transforms of one variant: m outputs per tile side, a = m + 2 inputs.
template <std::size_t M>
struct variant;

template <std::size_t M>
inline constexpr std::size_t npos_of = variant<M>::a * variant<M>::a;

struct tiling {
    std::size_t h, w;    // image (= output) size
    std::size_t th, tw;  // tiles per column / row
    std::size_t m;       // output tile side
    std::size_t per_image() const { return th * tw; }
};
inline tiling make_tiling(std::size_t h, std::size_t w, std::size_t m) {
    return {h, w, (h + m - 1) / m, (w + m - 1) / m, m};
}

namespace detail {
template <class T>
inline constexpr T sixth = T(1) / T(6);
template <class T>
inline constexpr T t12 = T(1) / T(12);
template <class T>
inline constexpr T t24 = T(1) / T(24);
}  // namespace detail

// 1-d transforms read with stride si and write with stride so:
//   bt: o (a) = B^T d (a)      b: o (a) = B v (a), the adjoint of bt
//   at: o (m) = A^T v (a)      a_: o (a) = A g (m), the adjoint of at
//   g:  o (a) = G g (3)        gt: o (3) = G^T u (a), the adjoint of g
template <>
struct variant<4> {
    static constexpr std::size_t m = 4, a = 6;
    template <class T>
    [[gnu::always_inline]] static void bt(const T* d, std::size_t si, T* o, std::size_t so) {
        const T d0 = d[0], d1 = d[si], d2 = d[2 * si], d3 = d[3 * si], d4 = d[4 * si], d5 = d[5 * si];
        o[0] = T(4) * d0 - T(5) * d2 + d4;
        o[so] = -T(4) * (d1 + d2) + d3 + d4;
        o[2 * so] = T(4) * (d1 - d2) - d3 + d4;
        o[3 * so] = T(2) * (d3 - d1) - d2 + d4;
        o[4 * so] = T(2) * (d1 - d3) - d2 + d4;
        o[5 * so] = T(4) * d1 - T(5) * d3 + d5;
    }
    template <class T>
    [[gnu::always_inline]] static void b(const T* v, std::size_t si, T* o, std::size_t so) {
        const T v0 = v[0], v1 = v[si], v2 = v[2 * si], v3 = v[3 * si], v4 = v[4 * si], v5 = v[5 * si];
        o[0] = T(4) * v0;
        o[so] = T(4) * (v2 - v1) + T(2) * (v4 - v3) + T(4) * v5;
        o[2 * so] = -T(5) * v0 - T(4) * (v1 + v2) - v3 - v4;
        o[3 * so] = v1 - v2 + T(2) * (v3 - v4) - T(5) * v5;
        o[4 * so] = v0 + v1 + v2 + v3 + v4;
        o[5 * so] = v5;
    }
    template <class T>
    [[gnu::always_inline]] static void at(const T* v, std::size_t si, T* o, std::size_t so) {
        const T v0 = v[0], v1 = v[si], v2 = v[2 * si], v3 = v[3 * si], v4 = v[4 * si], v5 = v[5 * si];
        const T s12 = v1 + v2, d12 = v1 - v2, s34 = v3 + v4, d34 = v3 - v4;
        o[0] = v0 + s12 + s34;
        o[so] = d12 + T(2) * d34;
        o[2 * so] = s12 + T(4) * s34;
        o[3 * so] = d12 + T(8) * d34 + v5;
    }
    template <class T>
    [[gnu::always_inline]] static void a_(const T* g, std::size_t si, T* o, std::size_t so) {
        const T g0 = g[0], g1 = g[si], g2 = g[2 * si], g3 = g[3 * si];
        o[0] = g0;
        o[so] = g0 + g1 + g2 + g3;
        o[2 * so] = g0 - g1 + g2 - g3;
        o[3 * so] = g0 + T(2) * g1 + T(4) * g2 + T(8) * g3;
        o[4 * so] = g0 - T(2) * g1 + T(4) * g2 - T(8) * g3;
        o[5 * so] = g3;
    }
    template <class T>
    static void g(const T* g, std::size_t si, T* o, std::size_t so) {
        using namespace detail;
        const T g0 = g[0], g1 = g[si], g2 = g[2 * si];
        o[0] = g0 * T(0.25);
        o[so] = -(g0 + g1 + g2) * sixth<T>;
        o[2 * so] = -(g0 - g1 + g2) * sixth<T>;
        o[3 * so] = g0 * t24<T> + g1 * t12<T> + g2 * sixth<T>;
        o[4 * so] = g0 * t24<T> - g1 * t12<T> + g2 * sixth<T>;
        o[5 * so] = g2;
    }
    template <class T>
    static void gt(const T* u, std::size_t si, T* o, std::size_t so) {
        using namespace detail;
        const T u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si], u4 = u[4 * si], u5 = u[5 * si];
        o[0] = u0 * T(0.25) - (u1 + u2) * sixth<T> + (u3 + u4) * t24<T>;
        o[so] = (u2 - u1) * sixth<T> + (u3 - u4) * t12<T>;
        o[2 * so] = (u3 + u4 - u1 - u2) * sixth<T> + u5;
    }
};

// F(2x2, 3x3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], A^T = [1 1 1 0; 0 1 -1 -1].
template <>
struct variant<2> {
    static constexpr std::size_t m = 2, a = 4;
    template <class T>
    [[gnu::always_inline]] static void bt(const T* d, std::size_t si, T* o, std::size_t so) {
        const T d0 = d[0], d1 = d[si], d2 = d[2 * si], d3 = d[3 * si];
        o[0] = d0 - d2;
        o[so] = d1 + d2;
        o[2 * so] = d2 - d1;
        o[3 * so] = d1 - d3;
    }
    template <class T>
    [[gnu::always_inline]] static void b(const T* v, std::size_t si, T* o, std::size_t so) {
        const T v0 = v[0], v1 = v[si], v2 = v[2 * si], v3 = v[3 * si];
        o[0] = v0;
        o[so] = v1 - v2 + v3;
        o[2 * so] = v1 + v2 - v0;
        o[3 * so] = -v3;
    }
    template <class T>
    [[gnu::always_inline]] static void at(const T* v, std::size_t si, T* o, std::size_t so) {
        const T v0 = v[0], v1 = v[si], v2 = v[2 * si], v3 = v[3 * si];
        o[0] = v0 + v1 + v2;
        o[so] = v1 - v2 - v3;
    }
    template <class T>
    [[gnu::always_inline]] static void a_(const T* g, std::size_t si, T* o, std::size_t so) {
        const T g0 = g[0], g1 = g[si];
        o[0] = g0;
        o[so] = g0 + g1;
        o[2 * so] = g0 - g1;
        o[3 * so] = -g1;
    }
    template <class T>
    static void g(const T* g, std::size_t si, T* o, std::size_t so) {
        const T g0 = g[0], g1 = g[si], g2 = g[2 * si];
        o[0] = g0;
        o[so] = (g0 + g1 + g2) * T(0.5);
        o[2 * so] = (g0 - g1 + g2) * T(0.5);
        o[3 * so] = g2;
    }
    template <class T>
    static void gt(const T* u, std::size_t si, T* o, std::size_t so) {
        const T u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si];
        o[0] = u0 + (u1 + u2) * T(0.5);
        o[so] = (u1 - u2) * T(0.5);
        o[2 * so] = (u1 + u2) * T(0.5) + u3;
    }
};

namespace detail {
/// K[p][k] = G[i][a] * G[j][b] for p = (i, j), k = (a, b): U[p] = sum_k K[p][k] g[k].
template <class T, std::size_t M>
struct weight_table {
    static constexpr std::size_t A = variant<M>::a, P = A * A;
    T k[P][9];
    weight_table() {
        for (std::size_t k9 = 0; k9 < 9; ++k9) {
            T g[9] = {}, t[3 * A], u[P];
            g[k9] = T(1);
            for (std::size_t c = 0; c < 3; ++c) variant<M>::g(g + c, 3, t + c, 3);
            for (std::size_t r = 0; r < A; ++r) variant<M>::g(t + r * 3, 1, u + r * A, 1);
            for (std::size_t p = 0; p < P; ++p) k[p][k9] = u[p];
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
template <class T, std::size_t M>
void transform_weights(const T* w, std::size_t co, std::size_t ci, std::size_t co0, std::size_t co1, T* U,
                       T* scratch /* 9 * ci */) {
    const auto& K = detail::weight_table<T, M>::get();
    for (std::size_t o = co0; o < co1; ++o) {
        const T* src = w + o * ci * 9;
        for (std::size_t i = 0; i < ci; ++i)
            for (std::size_t k = 0; k < 9; ++k) scratch[k * ci + i] = src[i * 9 + k];
        for (std::size_t p = 0; p < npos_of<M>; ++p) {
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
template <class T, std::size_t M>
void weight_adjoint_add(const T* dU, std::size_t co, std::size_t ci, std::size_t co0, std::size_t co1, T* dw,
                        T* scratch /* 9 * ci */) {
    const auto& K = detail::weight_table<T, M>::get();
    for (std::size_t o = co0; o < co1; ++o) {
        std::fill(scratch, scratch + 9 * ci, T(0));
        for (std::size_t p = 0; p < npos_of<M>; ++p) {
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
/// L values of T processed together, one GCC vector (a native register
/// when L is slice_lanes<T>): every 1-d transform above runs on L tiles at
/// once. (An array T[L] with element loops, as before, left the tile's
/// values in stack memory on AVX2; issue 18.)
template <class T, std::size_t L>
struct lanes {
    typedef T vec_t __attribute__((vector_size(L * sizeof(T))));
    vec_t v;
    lanes() = default;
    lanes(T s) : v(vec_t{} + s) {}  // broadcast (implicit: the transforms write T(4) * d)
    static lanes of(vec_t x) {
        lanes r;
        r.v = x;
        return r;
    }
    friend lanes operator+(const lanes& a, const lanes& b) { return of(a.v + b.v); }
    friend lanes operator-(const lanes& a, const lanes& b) { return of(a.v - b.v); }
    friend lanes operator*(const lanes& a, const lanes& b) { return of(a.v * b.v); }
    friend lanes operator-(const lanes& a) { return of(-a.v); }
};
template <class T>
inline constexpr std::size_t lane_count = 64 / sizeof(T);
/// Lanes the tile transforms work on at a time: the target's own vector
/// (all 16 floats with AVX-512; 8 with AVX2, twice per block). On 64-byte
/// lanes an AVX2 build kept a tile's 16-48 values in pairs of registers
/// and spilled most of them (issue 18).
template <class T>
inline constexpr std::size_t slice_lanes = host::detail::nreg_lanes<T>;

/// A full vector of lanes from / to memory (one fixed-size copy).
template <class T, std::size_t L>
[[gnu::always_inline]] inline void load(lanes<T, L>& v, const T* src) {
    host::detail::vload(v.v, src);
}
template <class T, std::size_t L>
[[gnu::always_inline]] inline void store(T* dst, const lanes<T, L>& v) {
    host::detail::vstore(dst, v.v);
}
// Eigen's packet types carry alignment attributes that GCC drops (and warns
// about) when they are template arguments; harmless here (unaligned loads).
// (Eigen's AVX-512 ptranspose, which GCC 12 also reports as using its own
// _mm512_undefined_ps() uninitialized, is not used with AVX-512.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// One L x L block: out[j * L + l] = src[l][j0 + j] for j, l < L (null
/// src[l]: zeros). With AVX-512 one register transpose (transpose_lanes);
/// elsewhere Eigen's p x p packet transposes (p = the native vector width;
/// GCC lowers the 64-byte shuffles poorly without AVX-512).
template <class T>
[[gnu::always_inline]] inline void transpose_in(const T* const* src, std::size_t j0, T* out) {
    constexpr std::size_t L = lane_count<T>;
#if defined(__AVX512F__)
    host::detail::vreg<T> r[L];
    for (std::size_t l = 0; l < L; ++l)
        if (src[l])
            host::detail::vload<T>(r[l], src[l] + j0);
        else
            r[l] = host::detail::vreg<T>{};
    host::detail::transpose_lanes<T>(r);
    for (std::size_t j = 0; j < L; ++j) host::detail::vstore<T>(out + j * L, r[j]);
#else
    using namespace Eigen::internal;
    using P = typename packet_traits<T>::type;
    constexpr std::size_t p = unpacket_traits<P>::size;
    static_assert(L % p == 0, "the lane count must be a multiple of the packet size");
    for (std::size_t bi = 0; bi < L; bi += p)      // lanes (images) bi .. bi + p
        for (std::size_t bj = 0; bj < L; bj += p) {  // pixels j0 + bj .. + p
            PacketBlock<P, static_cast<int>(p)> kb;
            for (std::size_t r = 0; r < p; ++r)
                kb.packet[r] = src[bi + r] ? ploadu<P>(src[bi + r] + j0 + bj) : pset1<P>(T(0));
            ptranspose(kb);
            for (std::size_t r = 0; r < p; ++r) pstoreu(out + (bj + r) * L + bi, kb.packet[r]);
        }
#endif
}
/// The inverse for one block: dst[l][j0 + j] = in[j * L + l] (+= when
/// accumulate) for the lanes whose dst[l] is not null.
template <class T>
[[gnu::always_inline]] inline void transpose_out(const T* in, T* const* dst, std::size_t j0, bool accumulate) {
    constexpr std::size_t L = lane_count<T>;
#if defined(__AVX512F__)
    host::detail::vreg<T> r[L];
    for (std::size_t j = 0; j < L; ++j) host::detail::vload<T>(r[j], in + j * L);
    host::detail::transpose_lanes<T>(r);  // r[l]: lane l, pixels j0 ..
    for (std::size_t l = 0; l < L; ++l) {
        T* d = dst[l];
        if (!d) continue;
        d += j0;
        if (accumulate) {
            host::detail::vreg<T> v;
            host::detail::vload<T>(v, d);
            r[l] += v;
        }
        host::detail::vstore<T>(d, r[l]);
    }
#else
    using namespace Eigen::internal;
    using P = typename packet_traits<T>::type;
    constexpr std::size_t p = unpacket_traits<P>::size;
    for (std::size_t bi = 0; bi < L; bi += p)
        for (std::size_t bj = 0; bj < L; bj += p) {
            PacketBlock<P, static_cast<int>(p)> kb;
            for (std::size_t r = 0; r < p; ++r) kb.packet[r] = ploadu<P>(in + (bj + r) * L + bi);
            ptranspose(kb);  // packet r: lane bi + r, pixels j0 + bj ..
            for (std::size_t r = 0; r < p; ++r) {
                T* d = dst[bi + r];
                if (!d) continue;
                d += j0 + bj;
                pstoreu(d, accumulate ? padd(ploadu<P>(d), kb.packet[r]) : kb.packet[r]);
            }
        }
#endif
}
/// dst[j * L + l] = src[l][j] for j < count, l < L (L = lane_count<T>): the
/// same run of pixels of L images interleaved, one vector per pixel. A null
/// src[l] gives zeros. Whole runs of L pixels are register transposes; the
/// last count % L pixels go through a zero-padded block on the stack (one
/// transpose, not L scalar copies per pixel).
template <class T>
void interleave(const T* const* src, std::size_t count, T* dst) {
    constexpr std::size_t L = lane_count<T>;
    std::size_t j0 = 0;
    for (; j0 + L <= count; j0 += L) transpose_in(src, j0, dst + j0 * L);
    if (j0 == count) return;
    const std::size_t t = count - j0;
    alignas(64) T tmp[L][L];
    alignas(64) T out[L * L];
    const T* rows[L];
    for (std::size_t l = 0; l < L; ++l) {
        rows[l] = src[l] ? tmp[l] : nullptr;
        if (!src[l]) continue;
        std::memcpy(tmp[l], src[l] + j0, t * sizeof(T));
        std::fill(tmp[l] + t, tmp[l] + L, T(0));
    }
    transpose_in(rows, 0, out);
    std::memcpy(dst + j0 * L, out, t * L * sizeof(T));
}
/// The inverse: dst[l][j] = src[j * L + l] (+= when accumulate) for the
/// lanes whose dst[l] is not null.
template <class T>
void deinterleave(const T* src, std::size_t count, T* const* dst, bool accumulate) {
    constexpr std::size_t L = lane_count<T>;
    std::size_t j0 = 0;
    for (; j0 + L <= count; j0 += L) transpose_out(src + j0 * L, dst, j0, accumulate);
    if (j0 == count) return;
    const std::size_t t = count - j0;
    alignas(64) T in[L * L];
    alignas(64) T tmp[L][L];
    std::memcpy(in, src + j0 * L, t * L * sizeof(T));
    std::fill(in + t * L, in + L * L, T(0));
    T* rows[L];
    for (std::size_t l = 0; l < L; ++l) rows[l] = dst[l] ? tmp[l] : nullptr;
    transpose_out(in, rows, 0, false);
    for (std::size_t l = 0; l < L; ++l) {
        T* d = dst[l];
        if (!d) continue;
        d += j0;
        if (accumulate)
            for (std::size_t j = 0; j < t; ++j) d[j] += tmp[l][j];
        else
            std::memcpy(d, tmp[l], t * sizeof(T));
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
template <class T, std::size_t L>
inline void add_to(T* dst, const lanes<T, L>& v) {
    lanes<T, L> d;
    load(d, dst);
    store(dst, d + v);
}
}  // namespace detail

// The tile transforms run on lane_count<T> images at once (a "block": 16
// images in float): lane l of every vector is image l of the block, at the
// same tile. Each image plane is first transposed into an interleaved,
// zero-padded buffer Z[row][column][lane], so that the 6x6 (or 4x4) window
// of a tile is 36 (16) contiguous vector loads, and V / M columns are
// written as whole vectors. Columns of V and M inside a block:
//   t = ((a * tw + b) * L + l)     tile row a, tile column b, lane (image) l
// and a block of images always has L lanes (lanes past the last image hold
// zeros, so the GEMMs compute zeros there and the output side skips them).
// A "chunk" is the tile rows [a0, a1) of one block: its columns are the
// contiguous range starting at a0 * tw * L.

/// Images per block (= vector lanes).
template <class T>
inline constexpr std::size_t block_images = detail::lane_count<T>;

/// Columns of V / M for tile rows [a0, a1) of one block.
template <class T>
inline std::size_t chunk_columns(const tiling& tl, std::size_t a0, std::size_t a1) {
    return (a1 - a0) * tl.tw * block_images<T>;
}

/// Elements of the scratch that transform_input / transform_output /
/// output_adjoint need for chunks of up to `rows` tile rows: the padded
/// interleaved window, then the unpadded interleaved image rows.
template <class T>
inline std::size_t scratch_size(const tiling& tl, std::size_t rows) {
    return 2 * (tl.m * rows + 2) * (tl.m * tl.tw + 2) * block_images<T>;
}

/// Elements of the scratch input_adjoint_finish needs: one interleaved plane.
template <class T>
inline std::size_t finish_scratch_size(const tiling& tl) {
    return tl.h * tl.w * block_images<T>;
}

/// Elements of the per-block accumulator of input_adjoint (C padded planes, interleaved).
template <class T>
inline std::size_t accumulator_size(const tiling& tl, std::size_t C) {
    return C * (tl.m * tl.th + 2) * (tl.m * tl.tw + 2) * block_images<T>;
}

/// V[p][c][t] for tile rows [a0, a1) of the block at x (n_img <= L images,
/// each C x H x W; padding 1). ldv: the row length of V.
template <class T, std::size_t M>
void transform_input(const T* x, std::size_t n_img, std::size_t C, const tiling& tl, std::size_t a0, std::size_t a1,
                     T* V, std::size_t ldv, T* Z /* scratch_size(tl, a1 - a0) */) {
    constexpr std::size_t m = M, A = variant<M>::a, npos = A * A;
    assert(tl.m == M);
    constexpr std::size_t L = detail::lane_count<T>, NL = detail::slice_lanes<T>;
    using vec = detail::lanes<T, NL>;
    const std::size_t pw = m * tl.tw + 2, rows = m * (a1 - a0) + 2, plane = C * ldv, hw = tl.h * tl.w;
    const std::size_t r_lo = m * a0;  // padded row of Z's first row; image row = padded row - 1
    vec d[A * A], t[A * A], o[A * A];
    // borders, rows past the image and lanes past n_img stay zero; every
    // channel rewrites the same other positions
    std::fill(Z, Z + rows * pw * L, T(0));
    T* F = Z + rows * pw * L;  // the image rows of the window, interleaved, unpadded
    // image rows [i0, i1) fall inside the window (padded row = image row + 1)
    const std::size_t i0 = r_lo == 0 ? 0 : r_lo - 1, i1 = std::min(r_lo + rows - 1, tl.h);
    const T* src[L];
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t l = 0; l < L; ++l) src[l] = l < n_img ? x + (l * C + c) * hw + i0 * tl.w : nullptr;
        if (i1 > i0) detail::interleave(src, (i1 - i0) * tl.w, F);
        for (std::size_t i = i0; i < i1; ++i)
            std::memcpy(Z + ((i + 1 - r_lo) * pw + 1) * L, F + (i - i0) * tl.w * L, tl.w * L * sizeof(T));
        T* out = V + c * ldv;
        for (std::size_t a = a0; a < a1; ++a)
            for (std::size_t b = 0; b < tl.tw; ++b, out += L) {
                for (std::size_t h = 0; h < L; h += NL) {  // native slices of the lanes
                    const T* z = Z + ((a - a0) * m * pw + b * m) * L + h;
                    for (std::size_t i = 0; i < A; ++i)
                        for (std::size_t j = 0; j < A; ++j) detail::load(d[i * A + j], z + (i * pw + j) * L);
                    for (std::size_t j = 0; j < A; ++j) variant<M>::bt(d + j, A, t + j, A);          // t = B^T d
                    for (std::size_t i = 0; i < A; ++i) variant<M>::bt(t + i * A, 1, o + i * A, 1);  // o = t B
                    for (std::size_t p = 0; p < npos; ++p) detail::store(out + p * plane + h, o[p]);
                }
            }
    }
}

/// y (the block's n_img images, C x H x W), rows of tile rows [a0, a1) = A^T M A, cropped to H x W.
template <class T, std::size_t M>
void transform_output(const T* Mt, std::size_t n_img, std::size_t C, const tiling& tl, std::size_t a0, std::size_t a1,
                      std::size_t ldm, T* y, T* Z /* scratch_size(tl, a1 - a0) */) {
    constexpr std::size_t m = M, A = variant<M>::a, npos = A * A;
    assert(tl.m == M);
    constexpr std::size_t L = detail::lane_count<T>, NL = detail::slice_lanes<T>;
    using vec = detail::lanes<T, NL>;
    const std::size_t zw = m * tl.tw, plane = C * ldm, hw = tl.h * tl.w;
    const std::size_t r0 = m * a0, r1 = std::min(m * a1, tl.h);
    vec in[A * A], t[m * A], o[m * m];
    for (std::size_t c = 0; c < C; ++c) {
        const T* src = Mt + c * ldm;
        for (std::size_t a = a0; a < a1; ++a)
            for (std::size_t b = 0; b < tl.tw; ++b, src += L) {
                for (std::size_t h = 0; h < L; h += NL) {  // native slices of the lanes
                    for (std::size_t p = 0; p < npos; ++p) detail::load(in[p], src + p * plane + h);
                    for (std::size_t j = 0; j < A; ++j) variant<M>::at(in + j, A, t + j, A);        // t (m x a) = A^T M
                    for (std::size_t i = 0; i < m; ++i) variant<M>::at(t + i * A, 1, o + i * m, 1);  // o = t A
                    T* z = Z + ((a - a0) * m * zw + b * m) * L + h;
                    for (std::size_t i = 0; i < m; ++i)
                        for (std::size_t j = 0; j < m; ++j) detail::store(z + (i * zw + j) * L, o[i * m + j]);
                }
            }
        if (r1 > r0) {
            T* F = Z + m * (a1 - a0) * zw * L;
            for (std::size_t r = r0; r < r1; ++r)
                std::memcpy(F + (r - r0) * tl.w * L, Z + (r - r0) * zw * L, tl.w * L * sizeof(T));
            T* dst[L];
            for (std::size_t l = 0; l < L; ++l) dst[l] = l < n_img ? y + (l * C + c) * hw + r0 * tl.w : nullptr;
            detail::deinterleave(F, (r1 - r0) * tl.w, dst, false);
        }
    }
}

/// dM[p][c][t] = (A dY A^T)[p] for tile rows [a0, a1) of the block at dy,
/// dY taken as zero outside H x W.
template <class T, std::size_t M>
void output_adjoint(const T* dy, std::size_t n_img, std::size_t C, const tiling& tl, std::size_t a0, std::size_t a1,
                    std::size_t ldm, T* dM, T* Z /* scratch_size(tl, a1 - a0) */) {
    constexpr std::size_t m = M, A = variant<M>::a, npos = A * A;
    assert(tl.m == M);
    constexpr std::size_t L = detail::lane_count<T>, NL = detail::slice_lanes<T>;
    using vec = detail::lanes<T, NL>;
    const std::size_t zw = m * tl.tw, plane = C * ldm, hw = tl.h * tl.w;
    const std::size_t r0 = m * a0, r1 = std::min(m * a1, tl.h), zrows = m * (a1 - a0);
    vec gt[m * m], t[m * A], o[A * A];
    std::fill(Z, Z + zrows * zw * L, T(0));  // positions outside the images stay zero
    for (std::size_t c = 0; c < C; ++c) {
        if (r1 > r0) {
            T* F = Z + zrows * zw * L;
            const T* src[L];
            for (std::size_t l = 0; l < L; ++l) src[l] = l < n_img ? dy + (l * C + c) * hw + r0 * tl.w : nullptr;
            detail::interleave(src, (r1 - r0) * tl.w, F);
            for (std::size_t r = r0; r < r1; ++r)
                std::memcpy(Z + (r - r0) * zw * L, F + (r - r0) * tl.w * L, tl.w * L * sizeof(T));
        }
        T* out = dM + c * ldm;
        for (std::size_t a = a0; a < a1; ++a)
            for (std::size_t b = 0; b < tl.tw; ++b, out += L) {
                for (std::size_t h = 0; h < L; h += NL) {  // native slices of the lanes
                    const T* z = Z + ((a - a0) * m * zw + b * m) * L + h;
                    for (std::size_t i = 0; i < m; ++i)
                        for (std::size_t j = 0; j < m; ++j) detail::load(gt[i * m + j], z + (i * zw + j) * L);
                    for (std::size_t j = 0; j < m; ++j) variant<M>::a_(gt + j, m, t + j, m);        // t (a x m) = A g
                    for (std::size_t i = 0; i < A; ++i) variant<M>::a_(t + i * m, 1, o + i * A, 1);  // o = t A^T
                    for (std::size_t p = 0; p < npos; ++p) detail::store(out + p * plane + h, o[p]);
                }
            }
    }
}

/// acc (the block's C interleaved padded planes) = sum over the tiles of
/// rows [a0, a1) of B dV B^T (tiles overlap by two rows / columns: a
/// scatter-add). acc needs no zeroing: a position's first tile stores, later
/// ones add, which holds when a block's chunks come in order of a0 from 0.
/// input_adjoint_finish then writes dx.
template <class T, std::size_t M>
void input_adjoint(const T* dV, std::size_t C, const tiling& tl, std::size_t a0, std::size_t a1, std::size_t ldv,
                   T* acc /* accumulator_size(tl, C) */) {
    constexpr std::size_t m = M, A = variant<M>::a, npos = A * A;
    assert(tl.m == M);
    constexpr std::size_t L = detail::lane_count<T>, NL = detail::slice_lanes<T>;
    using vec = detail::lanes<T, NL>;
    const std::size_t ph = m * tl.th + 2, pw = m * tl.tw + 2, plane = C * ldv;
    vec v[A * A], t[A * A], o[A * A];
    for (std::size_t c = 0; c < C; ++c) {
        const T* src = dV + c * ldv;
        T* accc = acc + c * ph * pw * L;
        for (std::size_t a = a0; a < a1; ++a)
            for (std::size_t b = 0; b < tl.tw; ++b, src += L) {
                for (std::size_t h = 0; h < L; h += NL) {  // native slices of the lanes
                    for (std::size_t p = 0; p < npos; ++p) detail::load(v[p], src + p * plane + h);
                    for (std::size_t j = 0; j < A; ++j) variant<M>::b(v + j, A, t + j, A);          // t = B v
                    for (std::size_t i = 0; i < A; ++i) variant<M>::b(t + i * A, 1, o + i * A, 1);  // o = t B^T
                    T* z = accc + (a * m * pw + b * m) * L + h;
                    // rows 0-1 were written by tile row a - 1, columns 0-1 by tile column b - 1
                    for (std::size_t i = 0; i < A; ++i)
                        for (std::size_t j = 0; j < A; ++j) {
                            T* zz = z + (i * pw + j) * L;
                            if ((i >= 2 || a == 0) && (j >= 2 || b == 0))
                                detail::store(zz, o[i * A + j]);
                            else
                                detail::add_to(zz, o[i * A + j]);
                        }
                }
            }
    }
}

/// dx (the block's n_img images, C x H x W) = the interior of acc;
/// overwrites dx, or adds to it when accumulate is true.
template <class T>
void input_adjoint_finish(const T* acc, std::size_t n_img, std::size_t C, const tiling& tl, T* dx, bool accumulate,
                          T* F /* finish_scratch_size(tl) */) {
    constexpr std::size_t L = detail::lane_count<T>;
    const std::size_t m = tl.m, ph = m * tl.th + 2, pw = m * tl.tw + 2, hw = tl.h * tl.w;
    T* dst[L];
    for (std::size_t c = 0; c < C; ++c) {
        const T* accc = acc + c * ph * pw * L;
        for (std::size_t r = 0; r < tl.h; ++r)  // the interior rows, unpadded
            std::memcpy(F + r * tl.w * L, accc + ((r + 1) * pw + 1) * L, tl.w * L * sizeof(T));
        for (std::size_t l = 0; l < L; ++l) dst[l] = l < n_img ? dx + (l * C + c) * hw : nullptr;
        detail::deinterleave(F, hw, dst, accumulate);
    }
}

}  // namespace ssl::backend::host::winograd
