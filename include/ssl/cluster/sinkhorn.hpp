#pragma once
// Sinkhorn-Knopp self-labelling, the label step of SeLa (Asano, Rupprecht &
// Vedaldi, "Self-labelling via simultaneous clustering and representation
// learning", ICLR 2020): pseudo-labels for N samples in K equal-sized
// clusters from the network's predictions.
//
//   auto r = ssl::cluster::sinkhorn_labels(logits, {.lambda = 25});   // logits (N, K)
//   r.labels[i] in [0, K), r.error, r.iterations, r.converged
//
// Input: logits or log-probabilities L (N, K), float or double (the same result:
// Q is invariant to a per-row shift; pass probabilities as their logarithm).
// In double, find Q = diag(alpha) P^lambda diag(beta), P^lambda_ij = exp(lambda L_ij),
// with every row summing to 1 (a sample is one unit of mass) and every column
// to N/K (equal clusters), by rounds (`iterations`) of
//   beta = (N/K) / (K^T alpha),  alpha = 1 / (K beta)     (from beta = 1; rows exact)
// until error = max_j |(column sum_j of Q) / (N/K) - 1| < tolerance, checked at
// round 0 and every check_every rounds, or max_iterations (converged false).
// labels_i = argmax_j Q_ij (the lowest j on ties), int64; `plan` (keep_plan) is
// Q (N, K). Several heads: the vector overload labels each (N, K_h) on its own.
// Errors: shape_error for a rank other than 2; value_error for K < 2, N < K
// (no K equal non-empty clusters), a non-finite input, lambda <= 0,
// tolerance <= 0, check_every = 0 or max_iterations = 0.
//
// Choices:
//  - Stop on the column error, the constraint's own quantity, which does not grow
//    with N (SeLa: sum_i |c_i / c_new_i - 1| over the sample scalings); tolerance
//    0.1 as SeLa. The error comes free from the next round's K^T alpha.
//  - Kernel K_ij = exp(lambda L_ij - u_i - v_j), u_i the row max of lambda L, v_j
//    the column max of lambda L - u: K <= 1 with a 1 in every row and column, so
//    no overflow (lambda 25 on logits of range 40 is e^1000) and no zero line.
//  - A scaling outside [1e-50, 1e50] is absorbed into u, v and the kernel
//    recomputed from L (log-domain stabilization, Schmitzer 2019).
//  - Fixed row blocks over ssl::parallel_for, summed in order: thread-count
//    independent. Cost: N K doubles, N K exp per (re)computation, 2 N K
//    multiply-adds per round.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"

namespace ssl::cluster {

struct sinkhorn_config {
    double lambda = 25;                ///< sharpness: P^lambda (SeLa uses 25)
    double tolerance = 0.1;            ///< stop when the column error < tolerance
    std::size_t check_every = 10;      ///< rounds between error checks
    std::size_t max_iterations = 1000; ///< rounds at most
    bool keep_plan = false;            ///< return Q (N x K doubles)
};

struct sinkhorn_result {
    std::vector<std::int64_t> labels;  ///< argmax_j Q_ij per sample (N)
    double error = 0;                  ///< max_j |column sum_j / (N/K) - 1| of the returned Q
    std::size_t iterations = 0;        ///< scaling rounds done
    bool converged = false;            ///< error < tolerance
    tensor<double> plan;               ///< Q (N, K), when keep_plan
};

namespace detail {

inline constexpr std::size_t sinkhorn_block_rows = 1024;

/// K_ij = exp(lambda L_ij - u_i - v_j) for all i, j.
template <class T>
void sinkhorn_kernel(const T* L, std::size_t n, std::size_t k, double lambda, const std::vector<double>& u,
                     const std::vector<double>& v, double* K) {
    parallel_for((n + 255) / 256, [&](std::size_t t, std::size_t) {
        for (std::size_t i = t * 256; i < std::min(n, (t + 1) * 256); ++i)
            for (std::size_t j = 0; j < k; ++j)
                K[i * k + j] = std::exp(lambda * static_cast<double>(L[i * k + j]) - u[i] - v[j]);
    });
}

}  // namespace detail

/// Balanced pseudo-labels from logits or log-probabilities (N, K); see the top of this file.
template <class T>
sinkhorn_result sinkhorn_labels(const tensor<T>& logits, const sinkhorn_config& cfg = {}) {
    static_assert(std::is_floating_point_v<T>, "sinkhorn_labels needs floating-point logits (float or double)");
    constexpr const char* who = "sinkhorn_labels";
    check_rank(logits, 2, who, "(N, K) for the logits");
    const std::size_t n = logits.dim(0), k = logits.dim(1);
    require<value_error>(k >= 2, who, ": need K >= 2 clusters, got logits of shape ", logits.shape().str());
    require<value_error>(n >= k, who, ": ", n, " samples cannot fill ", k, " equal clusters (need N >= K)");
    require<value_error>(std::isfinite(cfg.lambda) && cfg.lambda > 0, who, ": lambda must be finite and > 0, got ",
                         cfg.lambda);
    require<value_error>(std::isfinite(cfg.tolerance) && cfg.tolerance > 0, who,
                         ": tolerance must be finite and > 0, got ", cfg.tolerance);
    require<value_error>(cfg.check_every >= 1, who, ": check_every must be >= 1");
    require<value_error>(cfg.max_iterations >= 1, who, ": max_iterations must be >= 1");
    const T* L = logits.data();
    {
        const std::size_t blocks = (n + detail::sinkhorn_block_rows - 1) / detail::sinkhorn_block_rows;
        std::vector<unsigned char> bad(blocks, 0);
        parallel_for(blocks, [&](std::size_t b, std::size_t) {
            const std::size_t r0 = b * detail::sinkhorn_block_rows,
                              r1 = std::min(n, r0 + detail::sinkhorn_block_rows);
            bad[b] = !Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(L + r0 * k,
                                                                           static_cast<Eigen::Index>((r1 - r0) * k))
                          .isFinite()
                          .all();
        });
        for (std::size_t b = 0; b < blocks; ++b)
            if (bad[b])
                for (std::size_t i = b * detail::sinkhorn_block_rows * k;
                     i < std::min(n, (b + 1) * detail::sinkhorn_block_rows) * k; ++i)
                    require<value_error>(std::isfinite(L[i]), who, ": logit (", i / k, ", ", i % k, ") is ", L[i],
                                         " (logits must be finite)");
    }
    const double lambda = cfg.lambda;
    const double target = static_cast<double>(n) / static_cast<double>(k);  // column mass
    const auto N = static_cast<Eigen::Index>(n), Kc = static_cast<Eigen::Index>(k);
    const std::size_t blocks = (n + detail::sinkhorn_block_rows - 1) / detail::sinkhorn_block_rows;

    // potentials: u_i = max_j lambda L_ij, v_j = max_i (lambda L_ij - u_i)
    std::vector<double> u(n), v(k, -std::numeric_limits<double>::infinity());
    {
        std::vector<std::vector<double>> vpart(blocks);
        parallel_for(blocks, [&](std::size_t b, std::size_t) {
            auto& vp = vpart[b];
            vp.assign(k, -std::numeric_limits<double>::infinity());
            for (std::size_t i = b * detail::sinkhorn_block_rows;
                 i < std::min(n, (b + 1) * detail::sinkhorn_block_rows); ++i) {
                double m = -std::numeric_limits<double>::infinity();
                for (std::size_t j = 0; j < k; ++j) m = std::max(m, lambda * static_cast<double>(L[i * k + j]));
                u[i] = m;
                for (std::size_t j = 0; j < k; ++j)
                    vp[j] = std::max(vp[j], lambda * static_cast<double>(L[i * k + j]) - m);
            }
        });
        for (const auto& vp : vpart)
            for (std::size_t j = 0; j < k; ++j) v[j] = std::max(v[j], vp[j]);
    }
    tensor<double> kernel({n, k});
    detail::sinkhorn_kernel(L, n, k, lambda, u, v, kernel.data());
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> Km(kernel.data(), N, Kc);

    Eigen::VectorXd a(N), b = Eigen::VectorXd::Ones(Kc), col(Kc);
    std::vector<Eigen::VectorXd> part(blocks);
    auto row_update = [&] {  // a = 1 / (K b)
        parallel_for(blocks, [&](std::size_t blk, std::size_t) {
            const auto r0 = static_cast<Eigen::Index>(blk * detail::sinkhorn_block_rows);
            const auto nr = std::min<Eigen::Index>(static_cast<Eigen::Index>(detail::sinkhorn_block_rows), N - r0);
            a.segment(r0, nr).noalias() = Km.middleRows(r0, nr) * b;
            a.segment(r0, nr) = a.segment(r0, nr).cwiseInverse();
        });
    };
    auto col_sums = [&] {  // col = K^T a, partial per fixed row block, added in block order
        parallel_for(blocks, [&](std::size_t blk, std::size_t) {
            const auto r0 = static_cast<Eigen::Index>(blk * detail::sinkhorn_block_rows);
            const auto nr = std::min<Eigen::Index>(static_cast<Eigen::Index>(detail::sinkhorn_block_rows), N - r0);
            part[blk].noalias() = Km.middleRows(r0, nr).transpose() * a.segment(r0, nr);
        });
        col = part[0];
        for (std::size_t blk = 1; blk < blocks; ++blk) col += part[blk];
    };
    auto absorb_if_needed = [&] {
        constexpr double hi = 1e50, lo = 1e-50;
        const bool out = a.maxCoeff() > hi || a.minCoeff() < lo || b.maxCoeff() > hi || b.minCoeff() < lo;
        if (!out) return;
        for (std::size_t i = 0; i < n; ++i) u[i] -= std::log(a[static_cast<Eigen::Index>(i)]);
        for (std::size_t j = 0; j < k; ++j) v[j] -= std::log(b[static_cast<Eigen::Index>(j)]);
        a.setOnes();
        b.setOnes();
        detail::sinkhorn_kernel(L, n, k, lambda, u, v, kernel.data());
    };

    sinkhorn_result r;
    row_update();
    absorb_if_needed();
    for (std::size_t it = 0;; ++it) {
        col_sums();
        if (it % cfg.check_every == 0 || it == cfg.max_iterations) {
            r.error = ((b.array() * col.array()) / target - 1.0).abs().maxCoeff();
            r.iterations = it;
            if (r.error < cfg.tolerance) {
                r.converged = true;
                break;
            }
            if (it == cfg.max_iterations) break;
        }
        b = target * col.cwiseInverse();
        row_update();
        absorb_if_needed();
    }
    require<value_error>(std::isfinite(r.error), who, ": the scaling diverged (error ", r.error, ")");

    r.labels.resize(n);
    parallel_for(blocks, [&](std::size_t blk, std::size_t) {
        for (std::size_t i = blk * detail::sinkhorn_block_rows; i < std::min(n, (blk + 1) * detail::sinkhorn_block_rows);
             ++i) {
            const double* kr = kernel.data() + i * k;
            std::size_t best = 0;
            double bv = kr[0] * b[0];
            for (std::size_t j = 1; j < k; ++j) {
                const double q = kr[j] * b[static_cast<Eigen::Index>(j)];
                if (q > bv) bv = q, best = j;
            }
            r.labels[i] = static_cast<std::int64_t>(best);
        }
    });
    if (cfg.keep_plan) {
        double* q = kernel.data();
        parallel_for(blocks, [&](std::size_t blk, std::size_t) {
            for (std::size_t i = blk * detail::sinkhorn_block_rows;
                 i < std::min(n, (blk + 1) * detail::sinkhorn_block_rows); ++i)
                for (std::size_t j = 0; j < k; ++j)
                    q[i * k + j] *= a[static_cast<Eigen::Index>(i)] * b[static_cast<Eigen::Index>(j)];
        });
        r.plan = kernel;
    }
    return r;
}

/// One labelling per head: heads[h] is (N, K_h); the same as calling sinkhorn_labels on each.
template <class T>
std::vector<sinkhorn_result> sinkhorn_labels(const std::vector<tensor<T>>& heads, const sinkhorn_config& cfg = {}) {
    require<value_error>(!heads.empty(), "sinkhorn_labels: no heads given");
    std::vector<sinkhorn_result> out;
    out.reserve(heads.size());
    for (std::size_t h = 0; h < heads.size(); ++h) {
        require<shape_error>(heads[h].rank() == 2 && heads[0].rank() == 2 && heads[h].dim(0) == heads[0].dim(0),
                             "sinkhorn_labels: head ", h, " has shape ", heads[h].shape().str(), ", head 0 has ",
                             heads[0].shape().str(), " (all heads label the same N samples)");
        out.push_back(sinkhorn_labels(heads[h], cfg));
    }
    return out;
}

}  // namespace ssl::cluster
