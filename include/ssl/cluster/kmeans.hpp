#pragma once
// k-means (Lloyd's algorithm) on the host, the clustering step of DeepCluster
// (Caron et al. 2018) and of faiss's `Kmeans`, written for speed:
//
//   auto r = ssl::cluster::kmeans(features, {.k = 1000, .iterations = 20, .seed = 0});
//   r.centroids (k, d), r.assignments[i], r.objective, r.objectives, r.cluster_sizes
//
// Features x (N, d) float or double, 1 <= k <= N.
//   init: random_sample (k distinct points, uniform), kmeans_plus_plus (D^2
//     sampling, Arthur & Vassilvitskii 2007) or the caller's centroids.
//   Lloyd: `iterations` x (assign a_i = argmin_c |x_i - c|^2, ties to the lower
//     index; each centroid = the mean of its points), then one last assignment:
//     `assignments` are the nearest centroids of the returned `centroids`, and
//     objective = sum_i |x_i - c_{a_i}|^2 is theirs, exact in double.
//     objectives[t]: after t updates ([0]: the init; faiss's `obj`: the first `iterations`).
//   Empty clusters: after an update each (in index order) takes half the points
//     of the largest cluster not all on one point (lowest index on ties), both
//     centroids moved by +/- delta_j = split_eps (|c_j| + rms(c)) in alternating
//     signs; `reseeded` counts these. With fewer than k distinct points a cluster
//     must stay empty (`cluster_sizes` shows it).
//   spherical: centroids L2-normalized after each update (zero stays zero);
//     cosine k-means when the features are normalized too.
//   Stops early at an exact fixed point (no change after an update without
//     re-seeding: the same result as running on), and with tolerance > 0 once an
//     iteration lowers the objective by <= tolerance x objective.
//   restarts: whole runs on init streams philox(seed, stream_id(kmeans_stream, r));
//     the lowest final objective wins (the earlier on ties), all in restart_objectives.
// Errors: value_error for k = 0, k > N, a non-finite feature or initial centroid,
// restarts = 0, tolerance < 0; shape_error for features not (N, d) with N, d >= 1,
// initial centroids not (k, d). iterations = 0: the init and one assignment.
//
// Choices:
//  - random_sample init by default, as faiss (k-means++ costs about k/10 Lloyd
//    iterations of memory traffic); empty clusters split as faiss and DeepCluster.
//  - No N x k distances: tiles of 256 points x 1024 centroids, one GEMM adds
//    -2 x c^T onto a cached |c|^2 buffer, a SIMD scan keeps the arg-min.
//  - The update counting-sorts points by cluster and sums each in index order
//    (double), clusters over threads: no per-thread k x d partials, no atomics.
//  - Fixed tile sizes and sum orders: bitwise the same result at any thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../ops/rows.hpp"

namespace ssl::cluster {

enum class kmeans_init {
    random_sample,     ///< k distinct points drawn uniformly (faiss's default)
    kmeans_plus_plus,  ///< D^2 sampling
};

struct kmeans_config {
    std::size_t k = 0;                           ///< number of clusters, 1 <= k <= N
    std::size_t iterations = 20;                 ///< Lloyd iterations (assignment + update)
    std::size_t restarts = 1;                    ///< independent runs; the lowest objective is kept
    std::uint64_t seed = 0;                      ///< seeds the init
    kmeans_init init = kmeans_init::random_sample;
    bool spherical = false;                      ///< L2-normalize centroids after each update
    double tolerance = 0;                        ///< > 0: stop when the relative decrease <= tolerance
    double split_eps = 1.0 / 1024;               ///< relative perturbation when splitting a cluster
};

template <class T>
struct kmeans_result {
    tensor<T> centroids;                       ///< (k, d)
    std::vector<std::int64_t> assignments;     ///< nearest centroid of each point (N)
    std::vector<std::int64_t> cluster_sizes;   ///< points per centroid (k)
    double objective = 0;                      ///< sum_i |x_i - c_{a_i}|^2 (final centroids)
    std::vector<double> objectives;            ///< objective of every assignment pass, in order
    std::size_t iterations = 0;                ///< updates done (< config.iterations on early stop)
    std::size_t reseeded = 0;                  ///< empty clusters re-seeded by splitting
    std::size_t restart = 0;                   ///< index of the returned restart
    std::vector<double> restart_objectives;    ///< final objective of every restart
};

/// Nearest centroid of each point and the objective sum_i |x_i - c_{a_i}|^2.
struct kmeans_assignment {
    std::vector<std::int64_t> assignments;
    double objective = 0;
};

/// The stream id family of the k-means inits (restart r uses stream_id(kmeans_stream, r)).
inline constexpr std::uint64_t kmeans_stream = 0x6b6d65616e73ull;  // "kmeans"

namespace detail {

inline constexpr std::size_t kmeans_tile_rows = 256;   // points per assignment task
inline constexpr std::size_t kmeans_tile_cols = 1024;  // centroids per GEMM (256 x 1024 float = 1 MiB)
inline constexpr std::size_t kmeans_block_rows = 4096; // rows per block in the k-means++ and check passes

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // __m512 etc. as template arguments
/// (min_j s[j], the lowest j reaching it), over n >= 1 entries, with Eigen packets.
template <class T>
inline std::pair<T, std::size_t> argmin_row(const T* s, std::size_t n) {
    using namespace Eigen::internal;
    using P = typename packet_traits<T>::type;
    constexpr std::size_t L = packet_traits<T>::size;
    const T inf = std::numeric_limits<T>::infinity();
    T best = inf;
    std::size_t bj = 0, j = 0;
#if EIGEN_VERSION_AT_LEAST(3, 4, 0)  // pcmp_lt / pselect for every packet type
    if constexpr (L > 1) {
        if (n >= 2 * L) {
            // two independent lanes of (running min, its index); indices are held as T,
            // exact because n <= kmeans_tile_cols
            P b0 = pset1<P>(inf), b1 = b0, i0 = pset1<P>(T(0)), i1 = i0;
            P c0 = plset<P>(T(0)), c1 = padd(c0, pset1<P>(T(L)));
            const P step = pset1<P>(T(2 * L));
            for (; j + 2 * L <= n; j += 2 * L) {
                const P v0 = ploadu<P>(s + j), v1 = ploadu<P>(s + j + L);
                const P m0 = pcmp_lt(v0, b0), m1 = pcmp_lt(v1, b1);
                b0 = pselect(m0, v0, b0);
                i0 = pselect(m0, c0, i0);
                b1 = pselect(m1, v1, b1);
                i1 = pselect(m1, c1, i1);
                c0 = padd(c0, step);
                c1 = padd(c1, step);
            }
            alignas(64) T bv[2 * L], bi[2 * L];
            pstoreu(bv, b0);
            pstoreu(bv + L, b1);
            pstoreu(bi, i0);
            pstoreu(bi + L, i1);
            for (std::size_t l = 0; l < 2 * L; ++l) {
                const auto idx = static_cast<std::size_t>(bi[l]);
                if (bv[l] < best || (bv[l] == best && idx < bj)) best = bv[l], bj = idx;
            }
        }
    }
#endif
    for (; j < n; ++j)
        if (s[j] < best) best = s[j], bj = j;
    return {best, bj};
}
#pragma GCC diagnostic pop

/// |x - c|^2 in double, in 8 interleaved partial sums (vectorized; a fixed order).
template <class T>
inline double sq_dist(const T* x, const T* c, std::size_t d) {
    double acc[8] = {};
    std::size_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (std::size_t l = 0; l < 8; ++l) {
            const double e = static_cast<double>(x[j + l]) - static_cast<double>(c[j + l]);
            acc[l] += e * e;
        }
    double tail = 0;
    for (; j < d; ++j) {
        const double e = static_cast<double>(x[j]) - static_cast<double>(c[j]);
        tail += e * e;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

template <class T>
void check_features(const tensor<T>& x, const char* who) {
    static_assert(std::is_floating_point_v<T>, "ssl::cluster needs floating-point features (float or double)");
    check_rank(x, 2, who, "(N, d) for the features");
    require<shape_error>(x.dim(0) >= 1 && x.dim(1) >= 1, who, ": features of shape ", x.shape().str(),
                         " are empty");
    const std::size_t n = x.dim(0), d = x.dim(1);
    const std::size_t blocks = (n + kmeans_block_rows - 1) / kmeans_block_rows;
    std::vector<unsigned char> bad(blocks, 0);
    parallel_for(blocks, [&](std::size_t b, std::size_t) {
        const T* p = x.data() + b * kmeans_block_rows * d;
        const std::size_t m = (std::min(n, (b + 1) * kmeans_block_rows) - b * kmeans_block_rows) * d;
        bad[b] = !Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(p, static_cast<Eigen::Index>(m)).isFinite().all();
    });
    for (std::size_t b = 0; b < blocks; ++b) {
        if (!bad[b]) continue;
        const std::size_t end = std::min(n, (b + 1) * kmeans_block_rows) * d;
        for (std::size_t i = b * kmeans_block_rows * d; i < end; ++i)
            require<value_error>(std::isfinite(x.data()[i]), who, ": feature (", i / d, ", ", i % d, ") is ",
                                 x.data()[i], " (features must be finite)");
    }
}

/// One assignment pass: labels[i] = argmin_c |x_i - c|^2; returns the objective (double, exact).
template <class T>
double assign_pass(const T* xdata, std::size_t n, std::size_t d, const matrix<T>& C, std::int64_t* labels) {
    const std::size_t k = static_cast<std::size_t>(C.rows());
    const auto D = static_cast<Eigen::Index>(d);
    const_matrix_map<T> X(xdata, static_cast<Eigen::Index>(n), D);
    Eigen::Matrix<T, Eigen::Dynamic, 1> cn(static_cast<Eigen::Index>(k));
    for (std::size_t c = 0; c < k; ++c)
        cn[static_cast<Eigen::Index>(c)] = C.row(static_cast<Eigen::Index>(c)).squaredNorm();
    const std::size_t tiles = (n + kmeans_tile_rows - 1) / kmeans_tile_rows;
    const std::size_t kc = std::min(k, kmeans_tile_cols);
    std::vector<matrix<T>> buffers(num_threads());
    std::vector<double> tile_obj(tiles, 0.0);
    parallel_for(tiles, [&](std::size_t t, std::size_t w) {
        const std::size_t r0 = t * kmeans_tile_rows, nr = std::min(kmeans_tile_rows, n - r0);
        auto& S = buffers[w];
        if (S.rows() == 0) S.resize(static_cast<Eigen::Index>(kmeans_tile_rows), static_cast<Eigen::Index>(kc));
        T best[kmeans_tile_rows];
        std::size_t arg[kmeans_tile_rows];
        std::fill(best, best + nr, std::numeric_limits<T>::infinity());
        std::fill(arg, arg + nr, std::size_t{0});
        for (std::size_t c0 = 0; c0 < k; c0 += kc) {
            const std::size_t nc = std::min(kc, k - c0);
            // S = |c|^2 - 2 x c^T: the GEMM adds onto rows holding |c|^2 (no zero fill, no extra pass)
            auto St = S.topLeftCorner(static_cast<Eigen::Index>(nr), static_cast<Eigen::Index>(nc));
            St.rowwise() = cn.segment(static_cast<Eigen::Index>(c0), static_cast<Eigen::Index>(nc)).transpose();
            St.noalias() += T(-2) * X.middleRows(static_cast<Eigen::Index>(r0), static_cast<Eigen::Index>(nr)) *
                            C.middleRows(static_cast<Eigen::Index>(c0), static_cast<Eigen::Index>(nc)).transpose();
            for (std::size_t i = 0; i < nr; ++i) {
                const auto [v, j] = argmin_row(S.data() + i * kc, nc);
                if (v < best[i]) best[i] = v, arg[i] = c0 + j;  // strict: earlier tiles win ties
            }
        }
        double obj = 0;
        for (std::size_t i = 0; i < nr; ++i) {
            labels[r0 + i] = static_cast<std::int64_t>(arg[i]);
            obj += sq_dist(xdata + (r0 + i) * d, C.data() + arg[i] * d, d);
        }
        tile_obj[t] = obj;
    });
    double obj = 0;
    for (double v : tile_obj) obj += v;
    return obj;
}

/// Update: C = means of the clusters (double sums in index order), empty clusters split
/// off the largest. Returns the number of re-seeded clusters; fills sizes.
template <class T>
std::size_t update_pass(const T* xdata, std::size_t n, std::size_t d, const std::vector<std::int64_t>& labels,
                        matrix<T>& C, std::vector<std::int64_t>& sizes, bool spherical, double split_eps,
                        std::vector<std::size_t>& order, std::vector<std::size_t>& offsets) {
    const std::size_t k = static_cast<std::size_t>(C.rows());
    sizes.assign(k, 0);
    for (std::size_t i = 0; i < n; ++i) ++sizes[static_cast<std::size_t>(labels[i])];
    offsets.assign(k + 1, 0);
    for (std::size_t c = 0; c < k; ++c) offsets[c + 1] = offsets[c] + static_cast<std::size_t>(sizes[c]);
    order.resize(n);
    {
        std::vector<std::size_t> pos(offsets.begin(), offsets.end() - 1);
        for (std::size_t i = 0; i < n; ++i) order[pos[static_cast<std::size_t>(labels[i])]++] = i;
    }
    std::vector<std::vector<double>> acc(num_threads());
    std::vector<unsigned char> splittable(k, 0);
    parallel_for(k, [&](std::size_t c, std::size_t w) {
        if (sizes[c] == 0) return;  // re-seeded below
        auto& a = acc[w];
        a.assign(d, 0.0);
        for (std::size_t p = offsets[c]; p < offsets[c + 1]; ++p) {
            if (p + 4 < offsets[c + 1]) {  // rows come in a scattered order: fetch 4 ahead
                const char* ahead = reinterpret_cast<const char*>(xdata + order[p + 4] * d);
                for (std::size_t byte = 0; byte < d * sizeof(T); byte += 64) __builtin_prefetch(ahead + byte);
            }
            const T* x = xdata + order[p] * d;
            for (std::size_t j = 0; j < d; ++j) a[j] += static_cast<double>(x[j]);
        }
        const double inv = 1.0 / static_cast<double>(sizes[c]);
        for (std::size_t j = 0; j < d; ++j) a[j] *= inv;
        // can it be split? not when all its points coincide (then both halves would tie)
        const T* first = xdata + order[offsets[c]] * d;
        splittable[c] = 0;
        for (std::size_t p = offsets[c] + 1; p < offsets[c + 1] && !splittable[c]; ++p)
            splittable[c] = std::memcmp(first, xdata + order[p] * d, d * sizeof(T)) != 0;
        if (spherical) ops::normalize_row(a.data(), d);
        T* dst = C.data() + c * d;
        for (std::size_t j = 0; j < d; ++j) dst[j] = static_cast<T>(a[j]);
    });
    std::size_t reseeded = 0;
    std::vector<double> base(d), up(d), down(d);
    for (std::size_t e = 0; e < k; ++e) {
        if (sizes[e] != 0) continue;
        std::size_t big = k;  // the largest splittable cluster, the lowest index on ties
        for (std::size_t c = 0; c < k; ++c)
            if (splittable[c] && sizes[c] >= 2 && (big == k || sizes[c] > sizes[big])) big = c;
        if (big == k) break;  // fewer distinct points than clusters: nothing left to split
        T* cb = C.data() + big * d;
        double ms = 0;
        for (std::size_t j = 0; j < d; ++j) base[j] = static_cast<double>(cb[j]), ms += base[j] * base[j];
        const double rms = std::sqrt(ms / static_cast<double>(d));
        for (std::size_t j = 0; j < d; ++j) {
            double scale = std::abs(base[j]) + rms;
            if (scale == 0) scale = 1;
            const double delta = (j % 2 == 0 ? split_eps : -split_eps) * scale;
            up[j] = base[j] + delta;
            down[j] = base[j] - delta;
        }
        if (spherical) ops::normalize_row(up.data(), d), ops::normalize_row(down.data(), d);
        T* ce = C.data() + e * d;
        for (std::size_t j = 0; j < d; ++j) ce[j] = static_cast<T>(up[j]), cb[j] = static_cast<T>(down[j]);
        sizes[e] = sizes[big] / 2;
        sizes[big] -= sizes[e];
        splittable[e] = 1;
        ++reseeded;
    }
    return reseeded;
}

template <class T>
void init_random_sample(const T* xdata, std::size_t n, std::size_t d, philox& g, matrix<T>& C) {
    const std::size_t k = static_cast<std::size_t>(C.rows());
    std::vector<std::size_t> perm(n);
    std::iota(perm.begin(), perm.end(), std::size_t{0});
    for (std::size_t i = 0; i < k; ++i) {  // partial Fisher-Yates: the first k of a uniform permutation
        const std::size_t j = i + static_cast<std::size_t>(g.below(n - i));
        std::swap(perm[i], perm[j]);
        std::copy(xdata + perm[i] * d, xdata + (perm[i] + 1) * d, C.data() + i * d);
    }
}

template <class T>
void init_plus_plus(const T* xdata, std::size_t n, std::size_t d, philox& g, matrix<T>& C) {
    const std::size_t k = static_cast<std::size_t>(C.rows());
    const auto D = static_cast<Eigen::Index>(d);
    const std::size_t blocks = (n + kmeans_block_rows - 1) / kmeans_block_rows;
    std::vector<double> dist(n, std::numeric_limits<double>::infinity()), block_sum(blocks, 0.0);
    std::size_t pick = static_cast<std::size_t>(g.below(n));
    for (std::size_t c = 0;; ++c) {
        std::copy(xdata + pick * d, xdata + (pick + 1) * d, C.data() + c * d);
        if (c + 1 == k) break;
        const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> cc(C.data() + c * d, D);
        parallel_for(blocks, [&](std::size_t b, std::size_t) {
            const std::size_t r0 = b * kmeans_block_rows, r1 = std::min(n, r0 + kmeans_block_rows);
            double s = 0;
            for (std::size_t i = r0; i < r1; ++i) {
                const Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> x(xdata + i * d, D);
                dist[i] = std::min(dist[i], static_cast<double>((x - cc).squaredNorm()));
                s += dist[i];
            }
            block_sum[b] = s;
        });
        double total = 0;
        for (double v : block_sum) total += v;
        if (!(total > 0)) {  // every point coincides with a chosen centre
            pick = static_cast<std::size_t>(g.below(n));
            continue;
        }
        double u = g.uniform(0.0, total);
        std::size_t b = 0;
        while (b + 1 < blocks && u >= block_sum[b]) u -= block_sum[b++];
        const std::size_t r0 = b * kmeans_block_rows, r1 = std::min(n, r0 + kmeans_block_rows);
        pick = r1 - 1;
        for (std::size_t i = r0; i < r1; ++i) {
            if (u < dist[i]) {
                pick = i;
                break;
            }
            u -= dist[i];
        }
        // rounding can land on a zero-weight point at the block's end: step back to one with weight
        while (dist[pick] == 0 && pick > r0) --pick;
    }
}

template <class T>
kmeans_result<T> kmeans_run(const tensor<T>& x, const kmeans_config& cfg, const tensor<T>* given, const char* who) {
    check_features(x, who);
    const std::size_t n = x.dim(0), d = x.dim(1), k = cfg.k;
    require<value_error>(k >= 1, who, ": k must be >= 1");
    require<value_error>(k <= n, who, ": k = ", k, " clusters for only ", n, " points (need k <= N)");
    require<value_error>(cfg.restarts >= 1, who, ": restarts must be >= 1");
    require<value_error>(std::isfinite(cfg.tolerance) && cfg.tolerance >= 0, who,
                         ": tolerance must be finite and >= 0, got ", cfg.tolerance);
    require<value_error>(std::isfinite(cfg.split_eps) && cfg.split_eps > 0 && cfg.split_eps < 1, who,
                         ": split_eps must be in (0, 1), got ", cfg.split_eps);
    if (given) {
        require<shape_error>(given->rank() == 2 && given->dim(0) == k && given->dim(1) == d, who,
                             ": initial centroids must be (k, d) = (", k, ", ", d, "), got ", given->shape().str());
        check_features(*given, who);
        require<value_error>(cfg.restarts == 1, who, ": restarts must be 1 with given initial centroids");
    }
    const T* xd = x.data();
    const auto K = static_cast<Eigen::Index>(k), D = static_cast<Eigen::Index>(d);

    kmeans_result<T> best;
    bool have_best = false;
    std::vector<double> finals;
    std::vector<std::int64_t> labels(n), prev(n), sizes;
    std::vector<std::size_t> order, offsets;
    for (std::size_t r = 0; r < cfg.restarts; ++r) {
        matrix<T> C(K, D);
        if (given) {
            std::copy(given->data(), given->data() + k * d, C.data());
        } else {
            philox g(cfg.seed, stream_id(kmeans_stream, r));
            if (cfg.init == kmeans_init::kmeans_plus_plus)
                init_plus_plus(xd, n, d, g, C);
            else
                init_random_sample(xd, n, d, g, C);
        }
        if (cfg.spherical)
            for (std::size_t c = 0; c < k; ++c) ops::normalize_row(C.data() + c * d, d);
        kmeans_result<T> res;
        res.restart = r;
        double obj = assign_pass(xd, n, d, C, labels.data());
        res.objectives.push_back(obj);
        std::size_t last_reseeded = 1;  // no fixed-point test before the first update
        for (std::size_t it = 0; it < cfg.iterations; ++it) {
            last_reseeded = update_pass(xd, n, d, labels, C, sizes, cfg.spherical, cfg.split_eps, order, offsets);
            res.reseeded += last_reseeded;
            ++res.iterations;
            prev.swap(labels);
            const double before = obj;
            obj = assign_pass(xd, n, d, C, labels.data());
            res.objectives.push_back(obj);
            if (last_reseeded == 0 && labels == prev) break;  // fixed point
            if (cfg.tolerance > 0 && before - obj <= cfg.tolerance * before) break;
        }
        res.objective = obj;
        finals.push_back(obj);
        if (!have_best || obj < best.objective) {
            res.assignments = labels;
            res.cluster_sizes.assign(k, 0);
            for (auto a : labels) ++res.cluster_sizes[static_cast<std::size_t>(a)];
            res.centroids = tensor<T>({k, d});
            std::copy(C.data(), C.data() + k * d, res.centroids.data());
            best = std::move(res);
            have_best = true;
        }
    }
    best.restart_objectives = std::move(finals);
    return best;
}

}  // namespace detail

/// k-means of the rows of features (N, d); see the top of this file.
template <class T>
kmeans_result<T> kmeans(const tensor<T>& features, const kmeans_config& cfg) {
    return detail::kmeans_run(features, cfg, static_cast<const tensor<T>*>(nullptr), "kmeans");
}

/// k-means from the given initial centroids (k, d); cfg.init is ignored and cfg.restarts must be 1.
template <class T>
kmeans_result<T> kmeans(const tensor<T>& features, const tensor<T>& initial_centroids, const kmeans_config& cfg) {
    return detail::kmeans_run(features, cfg, &initial_centroids, "kmeans");
}

/// Nearest centroid (k, d) of every row of features (N, d), ties to the lower index.
template <class T>
kmeans_assignment kmeans_assign(const tensor<T>& features, const tensor<T>& centroids) {
    detail::check_features(features, "kmeans_assign");
    detail::check_features(centroids, "kmeans_assign");
    require<shape_error>(centroids.dim(1) == features.dim(1), "kmeans_assign: centroids ", centroids.shape().str(),
                         " and features ", features.shape().str(), " differ in dimension");
    const std::size_t n = features.dim(0), d = features.dim(1);
    matrix<T> C = as_matrix(centroids);
    kmeans_assignment r;
    r.assignments.resize(n);
    r.objective = detail::assign_pass(features.data(), n, d, C, r.assignments.data());
    return r;
}

}  // namespace ssl::cluster
