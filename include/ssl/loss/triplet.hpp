#pragma once
// Batch-hard triplet loss with a soft margin: Hermans, Beyer, Leibe, "In
// Defense of the Triplet Loss for Person Re-Identification", 2017 (the
// batch-hard loss with its soft margin), the self-supervised loss of
// S4L-Exemplar (Zhai et al. 2019). For embeddings z_1..z_R with group labels
// g_r (rows of one group are copies of one image):
//     D_ab = sqrt(||z_a - z_b||^2 + eps)
//     L = 1/R sum_a softplus( max_{p != a, g_p = g_a} D_ap - min_{n: g_n != g_a} D_an )
// Every row is an anchor; its hardest positive and hardest negative come
// from the same batch.
//
// Contract: z (R, D) any rows (S4L feeds L2-normalised ones), groups R
// integers; every row needs another row of its group and a row of another
// group (a sentence otherwise). Returns the value, dL/dz and the fraction of
// anchors whose hardest negative is nearer than their hardest positive.
//
// Choices:
//   distance  Euclidean, not squared (the paper's); eps = 1e-12 under the
//             root keeps the gradient finite when two copies coincide
//   Gram      ||z_a||^2 + ||z_b||^2 - 2 z_a.z_b: the products through one
//             GEMM (anchors x all rows), the squared norms in double, clamped at 0
//   ties      the lowest row index wins (the value does not depend on it;
//             the gradient is a valid subgradient either way); over ranks
//             the gathered rows are rank-major, so at an exact tie the row
//             chosen (and the subgradient) can differ from one process's
//   ranks     batch_hard_triplet(z, groups, comm): every rank's anchors
//             against the rows of all ranks (all-gathered), the gradient of
//             the gather reduce-scattered, as NT-Xent (loss/nt_xent.hpp);
//             batch_hard_triplet_step picks it inside a data-parallel step
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/views.hpp"
#include "../dist/communicator.hpp"

namespace ssl::loss {

template <class T = float>
struct triplet_result {
    double value = 0;
    tensor<T> grad;         ///< dL/dz, (R, D)
    double violated = 0;    ///< fraction of anchors with max D_ap > min D_an
};

namespace detail {

/// The batch-hard terms of anchors [a0, a1) of the rows x (R, D) grouped by
/// `groups`, each divided by `divisor` in the gradient g (R, D, added to);
/// returns the sum of the anchors' softplus terms and counts the violations.
/// Every anchor must have a positive and a negative (the callers check).
/// All rows as anchors: the Gram matrix and its diagonal as always; a block
/// of anchors: their rows of it, the squared norms of all rows in double.
template <class T>
double triplet_anchors(const T* x, std::size_t r, std::size_t d, std::span<const std::int64_t> groups,
                       std::size_t a0, std::size_t a1, double divisor, double eps, T* g, std::size_t& violated) {
    const auto R = static_cast<Eigen::Index>(r), Dd = static_cast<Eigen::Index>(d);
    const auto A = static_cast<Eigen::Index>(a1 - a0);
    const_matrix_map<T> Z(x, R, Dd);
    const bool all = a0 == 0 && a1 == r;
    const matrix<T> G = all ? matrix<T>(Z * Z.transpose())
                            : matrix<T>(Z.middleRows(static_cast<Eigen::Index>(a0), A) * Z.transpose());  // (A, R)
    std::vector<double> sqn(r);
    for (std::size_t b = 0; b < r; ++b) {
        if (all) {
            sqn[b] = static_cast<double>(G(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(b)));
            continue;
        }
        double q = 0;
        for (std::size_t k = 0; k < d; ++k) q += static_cast<double>(x[b * d + k]) * static_cast<double>(x[b * d + k]);
        sqn[b] = q;
    }
    std::vector<double> dist(r);
    double total = 0;
    for (std::size_t a = a0; a < a1; ++a) {
        const auto ga = static_cast<Eigen::Index>(a - a0);
        for (std::size_t b = 0; b < r; ++b) {
            const double sq = sqn[a] + sqn[b] - 2.0 * static_cast<double>(G(ga, static_cast<Eigen::Index>(b)));
            dist[b] = std::sqrt(std::max(sq, 0.0) + eps);
        }
        std::size_t p = r, n = r;
        for (std::size_t b = 0; b < r; ++b) {
            if (b == a) continue;
            if (groups[b] == groups[a]) {
                if (p == r || dist[b] > dist[p]) p = b;
            } else if (n == r || dist[b] < dist[n]) {
                n = b;
            }
        }
        const double dap = dist[p], dan = dist[n], m = dap - dan;
        total += m > 0 ? m + std::log1p(std::exp(-m)) : std::log1p(std::exp(m));  // softplus(m)
        violated += m > 0;
        const double s = 1.0 / (1.0 + std::exp(-m)) / divisor;  // dL/dm
        const double cp = s / dap, cn = s / dan;
        for (std::size_t k = 0; k < d; ++k) {
            const double up = static_cast<double>(x[a * d + k]) - static_cast<double>(x[p * d + k]);
            const double un = static_cast<double>(x[a * d + k]) - static_cast<double>(x[n * d + k]);
            g[a * d + k] += static_cast<T>(cp * up - cn * un);
            g[p * d + k] -= static_cast<T>(cp * up);
            g[n * d + k] += static_cast<T>(cn * un);
        }
    }
    return total;
}

/// Every row needs another row of its group and a row of another group.
inline void check_triplet_groups(std::span<const std::int64_t> groups) {
    std::vector<std::int64_t> sorted(groups.begin(), groups.end());
    std::sort(sorted.begin(), sorted.end());
    require(sorted.empty() || sorted.front() != sorted.back(), "batch_hard_triplet: every row has no negative: all ",
            groups.size(), " rows are of group ", sorted.empty() ? 0 : sorted.front(), "; the batch needs rows of at "
            "least two groups");
    for (std::size_t a = 0; a < groups.size(); ++a) {
        const auto [lo, hi] = std::equal_range(sorted.begin(), sorted.end(), groups[a]);
        require(hi - lo >= 2, "batch_hard_triplet: row ", a, " (group ", groups[a], ") has no positive: every row "
                "needs another row of its group (another copy of its image)");
    }
}

}  // namespace detail

/// The batch-hard soft-margin triplet loss of rows z (R, D) grouped by `groups`.
template <class T>
triplet_result<T> batch_hard_triplet(const tensor<T>& z, std::span<const std::int64_t> groups, double eps = 1e-12) {
    check_rank(z, 2, "batch_hard_triplet", "(R, D) embeddings");
    const std::size_t r = z.dim(0), d = z.dim(1);
    require<shape_error>(groups.size() == r, "batch_hard_triplet: ", groups.size(), " group labels for ", r,
                         " rows of shape ", z.shape().str());
    require<shape_error>(r >= 2 && d >= 1, "batch_hard_triplet: needs at least 2 rows, got ", z.shape().str());
    detail::check_triplet_groups(groups);
    triplet_result<T> out;
    out.grad = tensor<T>::zeros(z.shape());
    std::size_t violated = 0;
    const double total =
        detail::triplet_anchors(z.data(), r, d, groups, 0, r, static_cast<double>(r), eps, out.grad.data(), violated);
    require(std::isfinite(total), "batch_hard_triplet: the loss is not finite (the embeddings contain NaN or Inf)");
    out.value = total / static_cast<double>(r);
    out.violated = static_cast<double>(violated) / static_cast<double>(r);
    return out;
}

/// Data parallel (dist/data_parallel.hpp): this rank's rows z (r, D) are the
/// anchors, their hardest positives and negatives come from the rows of all
/// ranks (all-gathered, rank-major), `groups` numbered across the ranks
/// (copy_groups). The value is the mean over this rank's anchors; the
/// gradient is that of P x the global loss at this rank's rows: the
/// gathered rows' gradient reduce-scattered (the adjoint of the gather), so
/// averaging over the ranks gives one process's gradient. Every rank needs
/// the same r and D (checked by all of them before the gather).
template <class T>
triplet_result<T> batch_hard_triplet(const tensor<T>& z, std::span<const std::int64_t> groups, dist::communicator& comm,
                                     double eps = 1e-12) {
    if (comm.size() == 1) return batch_hard_triplet(z, groups, eps);
    check_rank(z, 2, "batch_hard_triplet", "(R, D) embeddings");
    const std::size_t r = z.dim(0), d = z.dim(1), P = static_cast<std::size_t>(comm.size());
    const std::size_t me = static_cast<std::size_t>(comm.rank()), big = r * P;
    // the group count too: every rank refuses together, none waits in the gather
    const std::int64_t here[3] = {static_cast<std::int64_t>(r), static_cast<std::int64_t>(d),
                                  static_cast<std::int64_t>(groups.size())};
    dist::require_same_on_ranks(comm, here, "batch_hard_triplet", [](std::span<const std::int64_t> s) {
        return ssl::detail::cat(s[0], " rows of dimension ", s[1], " with ", s[2], " group labels");
    });
    require<shape_error>(groups.size() == r, "batch_hard_triplet: ", groups.size(), " group labels for ", r,
                         " rows of shape ", z.shape().str());
    require<shape_error>(r >= 1 && d >= 1, "batch_hard_triplet: needs rows, got ", z.shape().str());
    std::vector<T> all(big * d);
    std::vector<std::int64_t> all_groups(big);
    comm.allgather(std::span<const T>(z.data(), r * d), std::span<T>(all));
    comm.allgather(groups, std::span<std::int64_t>(all_groups));
    // every rank checks all the gathered groups: a row without a positive or a
    // negative is refused on every rank alike, before the reduce-scatter
    detail::check_triplet_groups(all_groups);
    std::vector<T> g(big * d, T(0));
    std::size_t violated = 0;
    const double total = detail::triplet_anchors(all.data(), big, d, std::span<const std::int64_t>(all_groups), me * r,
                                                 (me + 1) * r, static_cast<double>(r), eps, g.data(), violated);
    triplet_result<T> out;
    out.grad = tensor<T>(z.shape());
    comm.reduce_scatter_sum(std::span<const T>(g), std::span<T>(out.grad.data(), r * d));
    // a non-finite loss is reported (the trainer stops every rank), not thrown:
    // the other ranks would wait in their next collective
    out.value = total / static_cast<double>(r);
    out.violated = static_cast<double>(violated) / static_cast<double>(r);
    return out;
}

/// The group of each of `rows` rows that are copies of `samples` samples,
/// copy-major (row k is a copy of sample k % samples), numbered across the
/// ranks of `c` (by default those of the running step, dist::active()):
/// rank q's samples are q samples .. (q + 1) samples - 1, their places in
/// the global batch. Pass the communicator the triplet runs over.
inline std::vector<std::int64_t> copy_groups(std::size_t rows, std::size_t samples,
                                             const dist::communicator* c = dist::active()) {
    require<shape_error>(samples > 0 && rows % samples == 0, "copy_groups: ", rows, " rows are not copies of ",
                         samples, " samples");
    const std::size_t first = c ? static_cast<std::size_t>(c->rank()) * samples : 0;
    std::vector<std::int64_t> g(rows);
    for (std::size_t k = 0; k < rows; ++k) g[k] = static_cast<std::int64_t>(first + k % samples);
    return g;
}

/// The batch-hard triplet loss of the running step: over the ranks of
/// dist::active() when there are several, else this process's rows.
template <class T>
triplet_result<T> batch_hard_triplet_step(const tensor<T>& z, std::span<const std::int64_t> groups) {
    if (dist::communicator* c = dist::active()) return batch_hard_triplet(z, groups, *c);
    return batch_hard_triplet(z, groups);
}

}  // namespace ssl::loss
