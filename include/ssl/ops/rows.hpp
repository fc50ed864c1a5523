#pragma once
// ssl::ops: the row operations that losses, target updates and evaluation
// share, each written once. This is the seam a backend implements: these are
// the host versions for tensor<T> (T float or double); the CUDA backend will
// implement the same functions for tensor<T, ssl::cuda>.
//
//   normalize_rows(x, eps)                 y_i = x_i / max(||x_i||, eps)   (F.normalize)
//   normalize_rows_with_norms(x, eps)      the same and the norms ||x_i||
//   normalize_rows_backward(y, norms, dy)  dL/dx from dL/dy
//   normalize_rows_inplace(x, eps)         for callers that own the buffer
//   gather_rows(src, ids)                  out_b = src_{ids[b]}
//   scatter_add_rows(dst, ids, src, s)     dst_{ids[b]} += s src_b
//   row_logsumexp / row_softmax / row_log_softmax(x)
//   topk_rows(x, k)                        the k largest of each row
//   axpby(a, x, b, y)                      y <- a x + b y (EMA updates)
//
// Pointer versions of the per-row kernels (normalize_row, normalize_row_backward,
// row_logsumexp(p, k)) serve loops over buffers a caller owns (Eigen
// matrices, double accumulators); they check nothing.
//
// Conventions: sums (norms, dot products, exp sums) are accumulated in double
// in index order, results are rounded to T once. Large inputs are split by
// rows over ssl::parallel_for (a static split, every row computed whole by one
// thread), so results are bitwise the same at any thread count. The per-row
// kernels are [[gnu::noinline]]: with -march=native the compiler fuses
// a * b + c into an FMA or not depending on the code around an inlined copy,
// so one compiled copy per type is what keeps a row's bits the same at every
// call site and thread count (a call per row costs nothing next to the row).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <numeric>
#include <ranges>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"

namespace ssl::ops {

/// A contiguous range of integer row ids (std::vector, std::span, tensor<int64_t>...).
template <class R>
concept row_ids = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                  std::integral<std::remove_cv_t<std::ranges::range_value_t<R>>>;

namespace detail {

/// Inputs of at least this many elements are split over the thread pool.
inline constexpr std::size_t parallel_min_elements = std::size_t{1} << 16;

/// fn(r0, r1) over blocks of rows [r0, r1) covering [0, n): one block when
/// n * row_cost is small, else up to 4 blocks per thread. A row is always
/// handled whole by one call, so per-row results do not depend on the split.
template <class F>
void for_row_blocks(std::size_t n, std::size_t row_cost, F&& fn) {
    if (n == 0) return;
    const std::size_t blocks = std::min(n, 4 * num_threads());
    if (n < 2 || n * std::max<std::size_t>(row_cost, 1) < parallel_min_elements || blocks < 2) {
        fn(std::size_t{0}, n);
        return;
    }
    parallel_for(blocks, [&](std::size_t b, std::size_t) { fn(b * n / blocks, (b + 1) * n / blocks); });
}

/// o[0, d) += scale * s[0, d), in double, rounded to T.
template <class T>
[[gnu::noinline]] void add_scaled_row(T* o, const T* s, std::size_t d, double scale) {
    for (std::size_t j = 0; j < d; ++j) o[j] = static_cast<T>(static_cast<double>(o[j]) + scale * s[j]);
}

/// y[0, n) = a x + b y in T.
template <class T>
[[gnu::noinline]] void axpby_kernel(T a, const T* x, T b, T* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] = a * x[i] + b * y[i];
}

inline void check_eps(double eps, const char* who) {
    require<value_error>(eps > 0 && std::isfinite(eps), who, ": eps must be finite and > 0, got ", eps);
}

template <class T>
void check_rows(const tensor<T>& x, const char* who, const char* what) {
    require<shape_error>(x.rank() == 2, who, ": expected ", what, " of rank 2 (N, D), got shape ", x.shape().str());
}

/// Checks every id against [0, n) before anything is read or written.
template <class R>
void check_ids(const R& ids, std::size_t n, const char* who, const shape_t& table) {
    std::size_t b = 0;
    for (const auto id : ids) {
        bool ok;
        if constexpr (std::is_signed_v<std::remove_cv_t<decltype(id)>>)
            ok = id >= 0 && static_cast<std::make_unsigned_t<std::remove_cv_t<decltype(id)>>>(id) < n;
        else
            ok = id < n;
        if (!ok)
            throw shape_error(ssl::detail::cat(who, ": id ", +id, " at position ", b, " is outside [0, ", n,
                                               ") for rows of a tensor of shape ", table.str()));
        ++b;
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// L2 normalization of rows

/// Squared L2 norm of v[0, d), summed in double in index order.
template <class T>
[[gnu::noinline]] double squared_norm(const T* v, std::size_t d) {
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(v[j]) * v[j];
    return s;
}

/// y[0, d) = x / max(||x||, eps) (y may be x); returns ||x||, unclamped (NaN
/// when x holds NaN). A zero row stays zero.
template <class T>
[[gnu::noinline]] double normalize_row(const T* x, T* y, std::size_t d, double eps = 1e-12) {
    const double norm = std::sqrt(squared_norm(x, d));
    const double den = norm >= eps ? norm : eps;
    for (std::size_t j = 0; j < d; ++j) y[j] = static_cast<T>(x[j] / den);
    return norm;
}

/// v[0, d) = v / max(||v||, eps) in place; returns ||v|| before.
template <class T>
double normalize_row(T* v, std::size_t d, double eps = 1e-12) {
    return normalize_row(static_cast<const T*>(v), v, d, eps);
}

/// Backward of normalize_row for one row: with y = x / max(||x||, eps) and
/// norm = ||x||, dx = (dy - y (y . dy)) / ||x||, or dy / eps where the floor
/// applied (||x|| < eps: the map is x / eps, linear); a NaN norm gives NaN.
/// dy may be double (a caller's accumulator) while y and dx are T.
template <class T, class G>
[[gnu::noinline]] void normalize_row_backward(const T* y, const G* dy, T* dx, std::size_t d, double norm,
                                              double eps = 1e-12) {
    if (norm < eps) {
        const double inv = 1.0 / eps;
        for (std::size_t j = 0; j < d; ++j) dx[j] = static_cast<T>(dy[j] * inv);
        return;
    }
    const double inv = 1.0 / norm;
    double dot = 0;
    for (std::size_t j = 0; j < d; ++j) dot += static_cast<double>(y[j]) * dy[j];
    for (std::size_t j = 0; j < d; ++j) dx[j] = static_cast<T>((dy[j] - y[j] * dot) * inv);
}

template <class T>
struct normalized_rows {
    tensor<T> y;      ///< (N, D): x_i / max(||x_i||, eps)
    tensor<T> norms;  ///< (N,): ||x_i|| before the floor (what normalize_rows_backward takes)
};

/// y_i = x_i / max(||x_i||, eps) and the norms ||x_i||; x (N, D).
template <class T>
normalized_rows<T> normalize_rows_with_norms(const tensor<T>& x, double eps = 1e-12) {
    static_assert(std::is_floating_point_v<T>, "ssl::ops::normalize_rows needs float or double");
    detail::check_rows(x, "normalize_rows", "x");
    detail::check_eps(eps, "normalize_rows");
    const std::size_t n = x.dim(0), d = x.dim(1);
    normalized_rows<T> r{tensor<T>(x.shape()), tensor<T>({n})};  // (N, D), (N,)
    detail::for_row_blocks(n, d, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t i = r0; i < r1; ++i)
            r.norms[i] = static_cast<T>(normalize_row(x.data() + i * d, r.y.data() + i * d, d, eps));
    });
    return r;
}

/// y_i = x_i / max(||x_i||, eps), x (N, D) -> (N, D); a zero row stays zero.
template <class T>
tensor<T> normalize_rows(const tensor<T>& x, double eps = 1e-12) {
    return normalize_rows_with_norms(x, eps).y;
}

/// x_i <- x_i / max(||x_i||, eps) in x's own storage, x (N, D). For buffers
/// the caller owns: every tensor sharing that storage sees the change.
template <class T>
void normalize_rows_inplace(tensor<T>& x, double eps = 1e-12) {
    static_assert(std::is_floating_point_v<T>, "ssl::ops::normalize_rows_inplace needs float or double");
    detail::check_rows(x, "normalize_rows_inplace", "x");
    detail::check_eps(eps, "normalize_rows_inplace");
    const std::size_t d = x.dim(1);
    detail::for_row_blocks(x.dim(0), d, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t i = r0; i < r1; ++i) normalize_row(x.data() + i * d, d, eps);
    });
}

/// dL/dx of y = normalize_rows(x, eps) from y (N, D), norms (N,) = ||x_i||
/// (normalize_rows_with_norms) and dy = dL/dy (N, D); see normalize_row_backward.
template <class T>
tensor<T> normalize_rows_backward(const tensor<T>& y, const tensor<T>& norms, const tensor<T>& dy, double eps = 1e-12) {
    static_assert(std::is_floating_point_v<T>, "ssl::ops::normalize_rows_backward needs float or double");
    detail::check_rows(y, "normalize_rows_backward", "y");
    detail::check_eps(eps, "normalize_rows_backward");
    require<shape_error>(dy.shape() == y.shape(), "normalize_rows_backward: gradient dy ", dy.shape().str(),
                         " differs from the output y ", y.shape().str());
    require<shape_error>(norms.rank() == 1 && norms.dim(0) == y.dim(0), "normalize_rows_backward: norms ",
                         norms.shape().str(), " must be (N,) for y ", y.shape().str());
    const std::size_t n = y.dim(0), d = y.dim(1);
    tensor<T> dx(y.shape());  // (N, D)
    detail::for_row_blocks(n, 2 * d, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t i = r0; i < r1; ++i)
            normalize_row_backward(y.data() + i * d, dy.data() + i * d, dx.data() + i * d, d,
                                   static_cast<double>(norms[i]), eps);
    });
    return dx;
}

// ---------------------------------------------------------------------------
// Row gather / scatter

/// out_b = src_{ids[b]}: src (N, D), B ids in [0, N) -> (B, D).
template <class T, row_ids Ids>
tensor<T> gather_rows(const tensor<T>& src, const Ids& ids) {
    detail::check_rows(src, "gather_rows", "src");
    const std::size_t n = src.dim(0), d = src.dim(1), b = std::ranges::size(ids);
    detail::check_ids(ids, n, "gather_rows", src.shape());
    const auto* id = std::ranges::data(ids);
    tensor<T> out({b, d});  // (B, D)
    detail::for_row_blocks(b, d, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            const T* s = src.data() + static_cast<std::size_t>(id[r]) * d;
            std::copy(s, s + d, out.data() + r * d);
        }
    });
    return out;
}

/// dst_{ids[b]} += scale * src_b: dst (N, D), src (B, D), B ids in [0, N),
/// repeated ids add up (in order b = 0, 1, ...). Sums in double, rounded to T
/// once per row update. All ids are checked before dst is written.
template <class T, row_ids Ids>
void scatter_add_rows(tensor<T>& dst, const Ids& ids, const tensor<T>& src, double scale = 1.0) {
    detail::check_rows(dst, "scatter_add_rows", "dst");
    detail::check_rows(src, "scatter_add_rows", "src");
    const std::size_t n = dst.dim(0), d = dst.dim(1), b = std::ranges::size(ids);
    require<shape_error>(src.dim(0) == b && src.dim(1) == d, "scatter_add_rows: src ", src.shape().str(),
                         " must be (B, D) = (", b, ", ", d, ") for ", b, " ids into dst ", dst.shape().str());
    detail::check_ids(ids, n, "scatter_add_rows", dst.shape());
    const auto* id = std::ranges::data(ids);
    for (std::size_t r = 0; r < b; ++r)  // serial: repeated ids must add in a fixed order
        detail::add_scaled_row(dst.data() + static_cast<std::size_t>(id[r]) * d, src.data() + r * d, d, scale);
}

// ---------------------------------------------------------------------------
// Row log-sum-exp and softmax

/// log sum_j exp(x_j) over x[0, k), k >= 1, shifted by the maximum and summed
/// in double: no overflow for large x. -inf when every x_j is -inf, +inf when
/// one is +inf, NaN when one is NaN.
template <class T>
[[gnu::noinline]] double row_logsumexp(const T* x, std::size_t k) {
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < k; ++j)
        if (static_cast<double>(x[j]) > mx) mx = static_cast<double>(x[j]);
    if (std::isinf(mx)) {  // all -inf, or a +inf: the shift would make NaN
        for (std::size_t j = 0; j < k; ++j)
            if (std::isnan(static_cast<double>(x[j]))) return static_cast<double>(x[j]);
        return mx;
    }
    double se = 0;
    for (std::size_t j = 0; j < k; ++j) se += std::exp(static_cast<double>(x[j]) - mx);
    return mx + std::log(se);
}

namespace detail {
template <class T>
void check_logits(const tensor<T>& x, const char* who) {
    static_assert(std::is_floating_point_v<T>, "ssl::ops row softmax ops need float or double");
    require<shape_error>(x.rank() == 2 && x.dim(1) >= 1, who, ": expected logits (N, K) with K >= 1, got shape ",
                         x.shape().str());
}

/// y_ik = f(x_ik - lse_i) over the rows of x (N, K) -> (N, K), in double.
template <class T, class F>
tensor<T> map_log_softmax(const tensor<T>& x, const char* who, F f) {
    check_logits(x, who);
    const std::size_t n = x.dim(0), k = x.dim(1);
    tensor<T> y(x.shape());  // (N, K)
    for_row_blocks(n, 2 * k, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t i = r0; i < r1; ++i) {
            const T* p = x.data() + i * k;
            T* q = y.data() + i * k;
            const double lse = row_logsumexp(p, k);
            for (std::size_t j = 0; j < k; ++j) q[j] = static_cast<T>(f(static_cast<double>(p[j]) - lse));
        }
    });
    return y;
}
}  // namespace detail

/// lse_i = log sum_k exp(x_ik): x (N, K), K >= 1 -> (N,) in double (losses
/// subtract it from logits; float would lose the difference).
template <class T>
tensor<double> row_logsumexp(const tensor<T>& x) {
    detail::check_logits(x, "row_logsumexp");
    const std::size_t n = x.dim(0), k = x.dim(1);
    tensor<double> lse({n});  // (N,)
    detail::for_row_blocks(n, k, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t i = r0; i < r1; ++i) lse[i] = row_logsumexp(x.data() + i * k, k);
    });
    return lse;
}

/// log softmax: x_ik - lse_i, x (N, K) -> (N, K).
template <class T>
tensor<T> row_log_softmax(const tensor<T>& x) {
    return detail::map_log_softmax(x, "row_log_softmax", [](double v) { return v; });
}

/// softmax: exp(x_ik - lse_i), x (N, K) -> (N, K); each row sums to 1.
template <class T>
tensor<T> row_softmax(const tensor<T>& x) {
    return detail::map_log_softmax(x, "row_softmax", [](double v) { return std::exp(v); });
}

// ---------------------------------------------------------------------------
// Top-k

template <class T>
struct topk_result {
    tensor<std::int64_t> indices;  ///< (N, k): column of each pick, best first
    tensor<T> values;              ///< (N, k): x at those columns
};

/// The k largest entries of each row of x (N, K), 0 <= k <= K, in decreasing
/// order; equal values rank by the lower column, NaN ranks below everything.
/// Deterministic: the order is a total one.
template <class T>
topk_result<T> topk_rows(const tensor<T>& x, std::size_t k) {
    detail::check_rows(x, "topk_rows", "x");
    const std::size_t n = x.dim(0), K = x.dim(1);
    require<value_error>(k <= K, "topk_rows: k = ", k, " exceeds the ", K, " columns of x ", x.shape().str());
    topk_result<T> r{tensor<std::int64_t>({n, k}), tensor<T>({n, k})};  // (N, k), (N, k)
    if (k == 0) return r;
    detail::for_row_blocks(n, K, [&](std::size_t r0, std::size_t r1) {
        std::vector<std::size_t> idx(K);
        for (std::size_t i = r0; i < r1; ++i) {
            const T* v = x.data() + i * K;
            auto better = [v](std::size_t a, std::size_t b) {
                const bool na = v[a] != v[a], nb = v[b] != v[b];  // NaN
                if (na != nb) return nb;
                if (!na && v[a] != v[b]) return v[a] > v[b];
                return a < b;
            };
            std::iota(idx.begin(), idx.end(), std::size_t{0});
            std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), better);
            for (std::size_t j = 0; j < k; ++j) {
                r.indices[i * k + j] = static_cast<std::int64_t>(idx[j]);
                r.values[i * k + j] = v[idx[j]];
            }
        }
    });
    return r;
}

// ---------------------------------------------------------------------------
// Elementwise update

/// y <- a x + b y elementwise (x and y of the same shape), computed in T with
/// a and b rounded to T: the EMA update target <- m target + (1 - m) online
/// is axpby(1 - m, online, m, target).
template <class T>
void axpby(double a, const tensor<T>& x, double b, tensor<T>& y) {
    static_assert(std::is_floating_point_v<T>, "ssl::ops::axpby needs float or double");
    require<shape_error>(x.shape() == y.shape(), "axpby: x ", x.shape().str(), " and y ", y.shape().str(),
                         " must have the same shape");
    const T at = static_cast<T>(a), bt = static_cast<T>(b);
    const std::size_t n = x.numel();
    // Fixed chunks of 64 K elements (not one per thread): each element is
    // computed by the same code path whatever the thread count.
    const std::size_t chunk = detail::parallel_min_elements, chunks = (n + chunk - 1) / chunk;
    parallel_for(chunks, [&](std::size_t c, std::size_t) {
        const std::size_t i0 = c * chunk;
        detail::axpby_kernel(at, x.data() + i0, bt, y.data() + i0, std::min(chunk, n - i0));
    });
}

}  // namespace ssl::ops
