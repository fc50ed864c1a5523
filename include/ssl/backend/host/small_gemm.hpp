#pragma once
// C = A * B for a short, thin A (few rows and columns) and a long B: the
// Winograd GEMMs of narrow layers (M_p = U_p V_p with U_p Cout x Cin, both
// <= ~64, and V_p Cin x tiles). A general GEMM (Eigen's gebp) packs both
// operands into panels first; at Cin = 16 the packing costs as much as the
// multiply. Here B's rows are read in place, a block of MB rows of C x NB
// columns stays in vector registers over the whole k loop, and A's entries
// are broadcast from memory. All matrices row-major with leading dimensions.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ssl::backend::host {

namespace detail {
/// One SIMD register of T (64 bytes: AVX-512; the compiler splits it on
/// narrower targets).
template <class T>
struct vreg_of {
    typedef T type __attribute__((vector_size(64)));
};
template <class T>
using vreg = typename vreg_of<T>::type;
template <class T>
inline constexpr std::size_t vreg_lanes = 64 / sizeof(T);

/// The widest vector register of the target (AVX-512: 64 bytes, AVX /
/// AVX2: 32, SSE / NEON: 16). Register-blocked kernels keep their
/// accumulators in these: GCC lowers a 64-byte vreg on a narrower target to
/// pieces that it spills to the stack and moves through general registers
/// (the AVX2 build spent 43 % of a ResNet-18 step in small_gemm's 4 x 1
/// block that way; issue 18).
#if defined(__AVX512F__)
#define SSL_NATIVE_VECTOR_BYTES 64
#elif defined(__AVX__)
#define SSL_NATIVE_VECTOR_BYTES 32
#else
#define SSL_NATIVE_VECTOR_BYTES 16
#endif
template <class T>
struct nreg_of {
    typedef T type __attribute__((vector_size(SSL_NATIVE_VECTOR_BYTES)));
};
template <class T>
using nreg = typename nreg_of<T>::type;
template <class T>
inline constexpr std::size_t nreg_lanes = SSL_NATIVE_VECTOR_BYTES / sizeof(T);

// through references, not by value: returning a 64-byte vector changes the
// ABI on targets without AVX-512 (GCC's -Wpsabi); V: vreg<T> or nreg<T>.
// An unaligned, may_alias vector type, not std::memcpy: GCC turned a loop
// of memcpy loads (a tile's NP input vectors) into a copy loop through a
// stack array, and the tile's accumulators then lived on the stack too
// (the AVX2 direct convolution at 15-20 GFLOP/s; issue 18).
template <class T, class V>
struct unaligned_of {
    typedef T type __attribute__((vector_size(sizeof(V)), aligned(alignof(T)), may_alias));
};
template <class T, class V>
[[gnu::always_inline]] inline void vload(V& v, const T* p) {
    v = *reinterpret_cast<const typename unaligned_of<T, V>::type*>(p);
}
template <class T, class V>
[[gnu::always_inline]] inline void vstore(T* p, const V& v) {
    *reinterpret_cast<typename unaligned_of<T, V>::type*>(p) = v;
}

/// The integer vector of the same shape as vreg<T> (shuffle masks).
template <class T>
struct vmask_of {
    using index = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    typedef index type __attribute__((vector_size(64)));
};

/// One level of a transposed reduction: x and y each hold L / W sums of W
/// lanes (accumulator a at lanes [a W, (a + 1) W)); the result holds the
/// 2 L / W accumulators of x then y, each summed down to W / 2 lanes.
template <class T, std::size_t W>
inline void fold_lanes(const vreg<T>& x, const vreg<T>& y, vreg<T>& out) {
    constexpr std::size_t L = vreg_lanes<T>, H = W / 2;
    using mask = typename vmask_of<T>::type;
    using index = typename vmask_of<T>::index;
    static constexpr auto first = [] {
        std::array<index, L> m{};
        for (std::size_t j = 0; j < L; ++j) m[j] = static_cast<index>(j / H * W + j % H);
        return m;
    }();
    mask a, b;
    std::memcpy(&a, first.data(), sizeof(a));
    b = a + static_cast<index>(H);
    out = __builtin_shuffle(x, y, a) + __builtin_shuffle(x, y, b);
}

/// Levels W, W / 2, ..., 2 over r[0..count): r[0] ends with count sums.
template <class T, std::size_t W>
inline void fold_levels(vreg<T>* r, std::size_t count) {
    count /= 2;
    for (std::size_t i = 0; i < count; ++i) fold_lanes<T, W>(r[2 * i], r[2 * i + 1], r[i]);
    if constexpr (W > 2) fold_levels<T, W / 2>(r, count);
}

/// out[i] = the sum of the lanes of v[i], i < n: L vectors at a time folded
/// pairwise (log2 L levels of two shuffles and an add per pair: ~3 operations
/// per vector instead of a horizontal sum of each).
template <class T, class V>
inline void lane_sums(const V* v, std::size_t n, T* out) {
    constexpr std::size_t L = sizeof(V) / sizeof(T);
    if constexpr (L != vreg_lanes<T> || SSL_NATIVE_VECTOR_BYTES != 64) {
        // GCC lowers the 64-byte two-input shuffles to scalar code on
        // narrower targets: plain sums there (and for native vectors)
        for (std::size_t i = 0; i < n; ++i) {
            T s = 0;
            for (std::size_t l = 0; l < L; ++l) s += v[i][l];
            out[i] = s;
        }
        return;
    } else {
    for (std::size_t g = 0; g < n; g += L) {
        const std::size_t m = std::min(L, n - g);
        vreg<T> r[L];
        for (std::size_t i = 0; i < L; ++i) r[i] = i < m ? v[g + i] : vreg<T>{};
        fold_levels<T, L>(r, L);
        T tmp[L];
        vstore<T>(tmp, r[0]);
        std::copy(tmp, tmp + m, out + g);
    }
    }
}

/// One stage of an L x L transpose held in L vectors (row i in r[i]): rows
/// i and i + D (bit D of i clear) swap their off-diagonal D x D blocks, which
/// swaps bit D of every element's row and column index.
template <class T, std::size_t D>
inline void transpose_stage(vreg<T>* r) {
    constexpr std::size_t L = vreg_lanes<T>;
    using mask = typename vmask_of<T>::type;
    using index = typename vmask_of<T>::index;
    static constexpr auto masks = [] {
        std::array<index, 2 * L> m{};  // first, then second row of a pair
        for (std::size_t j = 0; j < L; ++j) {
            m[j] = static_cast<index>((j & D) == 0 ? j : L + j - D);
            m[L + j] = static_cast<index>((j & D) == 0 ? j + D : L + j);
        }
        return m;
    }();
    mask first, second;
    std::memcpy(&first, masks.data(), sizeof(first));
    std::memcpy(&second, masks.data() + L, sizeof(second));
    for (std::size_t i = 0; i < L; ++i)
        if ((i & D) == 0) {
            const vreg<T> a = r[i], b = r[i + D];
            r[i] = __builtin_shuffle(a, b, first);
            r[i + D] = __builtin_shuffle(a, b, second);
        }
    if constexpr (D > 1) transpose_stage<T, D / 2>(r);
}
/// r[j][i] = r[i][j] for the L x L matrix in r[0..L): log2 L stages of
/// two-input shuffles (vpermt2ps with AVX-512).
template <class T>
inline void transpose_lanes(vreg<T>* r) {
    transpose_stage<T, vreg_lanes<T> / 2>(r);
}

/// C[0..MB) x [0..NV * lanes) = A[0..MB) x [0..k) * B[0..k) x [same columns)
/// (lanes of the native vector).
template <class T, std::size_t MB, std::size_t NV>
inline void small_gemm_block(const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc,
                             std::size_t k) {
    constexpr std::size_t L = nreg_lanes<T>;
    nreg<T> acc[MB][NV];
    for (std::size_t i = 0; i < MB; ++i)
        for (std::size_t j = 0; j < NV; ++j) acc[i][j] = nreg<T>{};
    for (std::size_t kk = 0; kk < k; ++kk) {
        nreg<T> b[NV];
        for (std::size_t j = 0; j < NV; ++j) vload<T>(b[j], B + kk * ldb + j * L);
        for (std::size_t i = 0; i < MB; ++i) {
            const T a = A[i * lda + kk];
            for (std::size_t j = 0; j < NV; ++j) acc[i][j] += a * b[j];
        }
    }
    for (std::size_t i = 0; i < MB; ++i)
        for (std::size_t j = 0; j < NV; ++j) vstore<T>(C + i * ldc + j * L, acc[i][j]);
}

/// Register blocking: MB rows x NV native vectors of accumulators. AVX-512
/// (32 registers): 8 x 2; 16 registers (AVX2, SSE): 6 x 2 (12 accumulators,
/// 2 rows of B and a broadcast).
#if defined(__AVX512F__)
inline constexpr std::size_t gemm_rows = 8, gemm_vectors = 2;
#else
inline constexpr std::size_t gemm_rows = 6, gemm_vectors = 2;
#endif

/// All m rows of C for the NV * lanes columns at B, C: blocks of gemm_rows
/// rows, then 4, then 1 (the k x NV * lanes panel of B stays in L1 meanwhile).
template <class T, std::size_t NV>
inline void small_gemm_panel(const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc,
                             std::size_t m, std::size_t k) {
    std::size_t i = 0;
    for (; i + gemm_rows <= m; i += gemm_rows)
        small_gemm_block<T, gemm_rows, NV>(A + i * lda, lda, B, ldb, C + i * ldc, ldc, k);
    for (; i + 4 <= m; i += 4) small_gemm_block<T, 4, NV>(A + i * lda, lda, B, ldb, C + i * ldc, ldc, k);
    for (; i < m; ++i) small_gemm_block<T, 1, NV>(A + i * lda, lda, B, ldb, C + i * ldc, ldc, k);
}
}  // namespace detail

/// C (m x n) = A (m x k) * B (k x n); row-major, leading dimensions lda,
/// ldb, ldc; C must not overlap A or B. Meant for m, k <= ~64; any n.
template <class T>
void small_gemm(const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, std::size_t m,
                std::size_t k, std::size_t n) {
    constexpr std::size_t L = detail::nreg_lanes<T>;
    std::size_t j = 0;
    constexpr std::size_t NV = detail::gemm_vectors;
    for (; j + NV * L <= n; j += NV * L) detail::small_gemm_panel<T, NV>(A, lda, B + j, ldb, C + j, ldc, m, k);
    if constexpr (NV > 1)
        for (; j + L <= n; j += L) detail::small_gemm_panel<T, 1>(A, lda, B + j, ldb, C + j, ldc, m, k);
    for (; j < n; ++j)  // the last < lanes columns
        for (std::size_t i = 0; i < m; ++i) {
            T s = 0;
            for (std::size_t kk = 0; kk < k; ++kk) s += A[i * lda + kk] * B[kk * ldb + j];
            C[i * ldc + j] = s;
        }
}

}  // namespace ssl::backend::host
