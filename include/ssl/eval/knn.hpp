#pragma once
// Weighted k-nearest-neighbour classification of frozen features, the
// protocol of InstDisc (Wu et al. 2018) used by most SSL papers:
//   1. train and query features are L2-normalized (rows, norm floored at 1e-12:
//      ssl::ops::normalize_rows);
//   2. each query's cosine similarity s to every train feature;
//   3. its k most similar train features (k clamped to the train set size)
//      vote for their class with weight exp(s / T);
//   4. prediction = the class with the largest summed vote (lowest class
//      index on ties); top-5 is correct when the true class is among the five
//      largest sums (ranked the same way), reported when there are >= 5 classes.
// Memory stays bounded: queries are taken `block_size` at a time (default
// 1024) and split into tasks of 32..256 queries over ssl::parallel_for; a
// task computes its similarities against 1024 train samples at a time (one
// Eigen GEMM into a cache-resident tile, at most 256 x 1024) and folds them
// into a candidate list of at most 2k entries per query (a SIMD scan skips
// runs of similarities that are all at or below the query's k-th best so
// far, which after the first tiles is nearly all of them), so no more than
// (threads x 256 x 1024) similarities and (threads x 256 x 2k) candidates
// exist at once, whatever N_train. Votes are taken as
// exp((s - s_max) / T) with s_max the query's largest neighbour similarity:
// the same arg-max, no overflow at small T. Each query is handled on its
// own, so results do not depend on the number of threads or the block size;
// among train samples of equal similarity at the k-th place the lower index
// wins.
//
//   auto r = ssl::eval::knn_evaluate(train_f, train_y, test_f, test_y, {.k = 200, .temperature = 0.1});
//   r.top1, *r.top5, r.predictions
//
// Labels are int64 in [0, C), C = knn_config::num_classes or, when that is 0,
// 1 + the largest label seen (train or test).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../ops/rows.hpp"
#include "metrics.hpp"

namespace ssl::eval {

struct knn_config {
    std::size_t k = 200;            ///< neighbours (clamped to the train set size)
    double temperature = 0.1;       ///< T of the vote weight exp(s / T)
    std::size_t block_size = 1024;  ///< queries handled per parallel round
    std::size_t num_classes = 0;    ///< 0: 1 + the largest label
};

struct knn_result {
    double top1 = 0;                         ///< fraction of queries predicted right
    std::optional<double> top5;              ///< top-5 accuracy, when num_classes >= 5
    std::vector<std::int64_t> predictions;   ///< predicted class of each query
    std::size_t k = 0;                       ///< neighbours used (after clamping)
    std::size_t num_classes = 0;
};

namespace detail {

/// Throws unless the feature row's norm (from ops::normalize_row) is finite.
inline void check_feature_norm(double norm, const char* who, const char* set, std::size_t row) {
    require<value_error>(std::isfinite(norm), who, ": ", set, " feature vector ", row, " contains NaN or Inf");
}

inline constexpr std::size_t knn_min_group_rows = 32;   // queries per task, at least
inline constexpr std::size_t knn_max_group_rows = 256;  // and at most
inline constexpr std::size_t knn_tile_cols = 1024;      // train samples per GEMM (a 1 MiB float tile)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // __m512 etc. as template arguments
/// Calls consider(j) for every j of each run of 4 SIMD packets of s[0, n) that holds a value > thr
/// (thr re-read after each such run: consider may raise it); returns where the runs ended.
template <class T, class F>
std::size_t scan_above(const T* s, std::size_t n, const T& thr, F&& consider) {
    using namespace Eigen::internal;
    using P = typename packet_traits<T>::type;
    constexpr std::size_t L = packet_traits<T>::size, W = 4 * L;
    std::size_t j = 0;
#if EIGEN_VERSION_AT_LEAST(3, 4, 0)  // pcmp_lt / predux_any for every packet type
    if constexpr (L > 1) {
        P t = pset1<P>(thr);
        for (; j + W <= n; j += W) {
            const P m = por(por(pcmp_lt(t, ploadu<P>(s + j)), pcmp_lt(t, ploadu<P>(s + j + L))),
                            por(pcmp_lt(t, ploadu<P>(s + j + 2 * L)), pcmp_lt(t, ploadu<P>(s + j + 3 * L))));
            if (!predux_any(m)) continue;
            for (std::size_t jj = j; jj < j + W; ++jj) consider(jj);
            t = pset1<P>(thr);
        }
    }
#endif
    return j;
}
#pragma GCC diagnostic pop

struct knn_raw {
    std::vector<std::int64_t> predictions;
    std::size_t top1_hits = 0, top5_hits = 0, k = 0, classes = 0;
};

template <class T>
knn_raw knn_run(const tensor<T>& train, std::span<const std::int64_t> train_labels, const tensor<T>& queries,
                std::span<const std::int64_t> query_labels, const knn_config& cfg, const char* who) {
    static_assert(std::is_floating_point_v<T>, "ssl::eval kNN needs floating-point features (float or double)");
    check_rank(train, 2, who, "(N_train, D) for the train features");
    check_rank(queries, 2, who, "(N_query, D) for the query features");
    const std::size_t nt = train.dim(0), d = train.dim(1), nq = queries.dim(0);
    require<shape_error>(queries.dim(1) == d, who, ": feature dimensions differ: train ", train.shape().str(),
                         ", queries ", queries.shape().str());
    require<shape_error>(nt > 0, who, ": the train set is empty (shape ", train.shape().str(), ")");
    require<shape_error>(nq > 0, who, ": the query set is empty (shape ", queries.shape().str(), ")");
    require<shape_error>(d > 0, who, ": features have dimension 0");
    require<shape_error>(train_labels.size() == nt, who, ": ", train_labels.size(), " train labels for train features ",
                         train.shape().str());
    require<shape_error>(query_labels.empty() || query_labels.size() == nq, who, ": ", query_labels.size(),
                         " query labels for query features ", queries.shape().str());
    require<value_error>(cfg.k >= 1, who, ": k must be >= 1");
    require<value_error>(std::isfinite(cfg.temperature) && cfg.temperature > 0, who,
                         ": temperature must be finite and > 0, got ", cfg.temperature);
    require<value_error>(cfg.block_size >= 1, who, ": block_size must be >= 1");
    std::size_t classes = detail::check_labels(train_labels, who, "train", cfg.num_classes);
    classes = std::max(classes, detail::check_labels(query_labels, who, "query", cfg.num_classes));
    if (cfg.num_classes) classes = cfg.num_classes;

    knn_raw out;
    out.k = std::min(cfg.k, nt);
    out.classes = classes;
    out.predictions.assign(nq, 0);
    const std::size_t k = out.k;
    const double inv_t = 1.0 / cfg.temperature;

    const auto D = static_cast<Eigen::Index>(d);
    // Normalized train features, column-major: Eigen packs a tile of them for
    // its GEMM kernel by plain copies instead of transposes.
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> X;
    {
        const auto xn = ops::normalize_rows_with_norms(train);
        for (std::size_t i = 0; i < nt; ++i) check_feature_norm(static_cast<double>(xn.norms[i]), who, "train", i);
        X = as_matrix(xn.y);
    }
    const std::size_t block = std::min(cfg.block_size, nq);
    matrix<T> Q(static_cast<Eigen::Index>(block), D);
    std::vector<unsigned char> hit1(nq, 0), hit5(nq, 0);
    using entry = std::pair<T, std::size_t>;
    // the ranking of neighbours: larger similarity first, then the lower train index
    auto better = [](const entry& a, const entry& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };

    for (std::size_t q0 = 0; q0 < nq; q0 += block) {
        const std::size_t qb = std::min(block, nq - q0);
        // queries per task: up to 256 (the GEMM's efficiency), fewer so that every thread has work
        const std::size_t group =
            std::clamp<std::size_t>((qb + num_threads() - 1) / num_threads(), knn_min_group_rows, knn_max_group_rows);
        const std::size_t tasks = (qb + group - 1) / group;
        parallel_for(tasks, [&](std::size_t t, std::size_t) {
            const std::size_t r0 = t * group, r1 = std::min(qb, r0 + group), nr = r1 - r0;
            const auto e0 = static_cast<Eigen::Index>(r0), er = static_cast<Eigen::Index>(nr);
            for (std::size_t i = r0; i < r1; ++i)
                check_feature_norm(ops::normalize_row(queries.data() + (q0 + i) * d, Q.data() + i * d, d), who,
                                   "query", q0 + i);
            const std::size_t tile = std::min(knn_tile_cols, nt);
            matrix<T> S(er, static_cast<Eigen::Index>(tile));
            // Per query: candidates above `thr`, the k-th best similarity so far. When 2k
            // have gathered, nth_element keeps the best k (amortized O(1) per candidate).
            std::vector<std::vector<entry>> cand(nr);
            std::vector<T> thr(nr, -std::numeric_limits<T>::infinity());
            for (auto& c : cand) c.reserve(2 * k);
            auto keep_best = [&](std::size_t i) {
                auto& c = cand[i];
                std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(k - 1), c.end(), better);
                c.resize(k);
                thr[i] = c[k - 1].first;
            };
            for (std::size_t c0 = 0; c0 < nt; c0 += tile) {
                const std::size_t nc = std::min(tile, nt - c0);
                S.leftCols(static_cast<Eigen::Index>(nc)).noalias() =
                    Q.middleRows(e0, er) *
                    X.middleRows(static_cast<Eigen::Index>(c0), static_cast<Eigen::Index>(nc)).transpose();
                for (std::size_t i = 0; i < nr; ++i) {
                    const T* s = S.data() + i * tile;
                    auto& c = cand[i];
                    // strictly above: an equal, later train sample ranks after the k-th kept one
                    auto consider = [&](std::size_t j) {
                        if (s[j] > thr[i]) {
                            c.emplace_back(s[j], c0 + j);
                            if (c.size() == 2 * k) keep_best(i);
                        }
                    };
                    // 4 SIMD packets at a time: most runs hold nothing above the k-th best so far
                    const std::size_t j = scan_above(s, nc, thr[i], consider);
                    for (std::size_t jj = j; jj < nc; ++jj) consider(jj);
                }
            }
            for (std::size_t i = 0; i < nr; ++i)
                if (cand[i].size() > k) keep_best(i);
            std::vector<double> votes(classes);
            for (std::size_t i = 0; i < nr; ++i) {
                const auto& h = cand[i];
                double smax = -INFINITY;
                for (const auto& e : h) smax = std::max(smax, static_cast<double>(e.first));
                std::fill(votes.begin(), votes.end(), 0.0);
                for (const auto& e : h)
                    votes[static_cast<std::size_t>(train_labels[e.second])] +=
                        std::exp((static_cast<double>(e.first) - smax) * inv_t);
                std::size_t best = 0;
                for (std::size_t c = 1; c < classes; ++c)
                    if (votes[c] > votes[best]) best = c;
                const std::size_t qi = q0 + r0 + i;
                out.predictions[qi] = static_cast<std::int64_t>(best);
                if (!query_labels.empty()) {
                    const auto y = static_cast<std::size_t>(query_labels[qi]);
                    hit1[qi] = best == y;
                    std::size_t rank = 0;  // classes ranked before y
                    for (std::size_t c = 0; c < classes; ++c)
                        rank += votes[c] > votes[y] || (votes[c] == votes[y] && c < y);
                    hit5[qi] = rank < 5;
                }
            }
        });
    }
    for (std::size_t i = 0; i < nq; ++i) out.top1_hits += hit1[i], out.top5_hits += hit5[i];
    return out;
}

}  // namespace detail

/// Predicted class of each query (N_query, D) from the labelled train set (N_train, D).
template <class T>
std::vector<std::int64_t> knn_predict(const tensor<T>& train_features, std::span<const std::int64_t> train_labels,
                                      const tensor<T>& queries, const knn_config& cfg = {}) {
    return detail::knn_run(train_features, train_labels, queries, {}, cfg, "knn_predict").predictions;
}

/// Weighted kNN accuracy of the test set against the train set.
template <class T>
knn_result knn_evaluate(const tensor<T>& train_features, std::span<const std::int64_t> train_labels,
                        const tensor<T>& test_features, std::span<const std::int64_t> test_labels,
                        const knn_config& cfg = {}) {
    require<shape_error>(test_features.rank() != 2 || test_labels.size() == test_features.dim(0), "knn_evaluate: ",
                         test_labels.size(), " test labels for test features ", test_features.shape().str());
    auto raw = detail::knn_run(train_features, train_labels, test_features, test_labels, cfg, "knn_evaluate");
    knn_result r;
    const double nq = static_cast<double>(raw.predictions.size());
    r.top1 = static_cast<double>(raw.top1_hits) / nq;
    if (raw.classes >= 5) r.top5 = static_cast<double>(raw.top5_hits) / nq;
    r.predictions = std::move(raw.predictions);
    r.k = raw.k;
    r.num_classes = raw.classes;
    return r;
}

}  // namespace ssl::eval
