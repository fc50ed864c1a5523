#pragma once
// InfoNCE against a queue of negatives: MoCo (He, Fan, Wu, Xie, Girshick,
// "Momentum Contrast for Unsupervised Visual Representation Learning",
// CVPR 2020, eq. 1) with MoCo v2's temperature 0.2 (Chen, Fan, Girshick, He,
// "Improved Baselines with Momentum Contrastive Learning", 2020).
//
// Inputs: queries q (B, d), the online head's outputs, NOT normalized (the loss
// L2-normalizes each row and backpropagates through it, as F.normalize); their
// positive keys k (B, d) and the queue Q (K, d) of negatives, used as given
// (unit rows: target::queue normalizes keys when it makes them) and constant
// (the key encoder follows by momentum). With u_i = q_i / max(||q_i||, eps),
//   l_i = [ u_i . k_i,  u_i . Q_1, ..., u_i . Q_K ] / tau     (K + 1 logits, positive at 0)
//   L   = 1/B sum_i ( logsumexp(l_i) - l_i,0 ),   p_ij = softmax(l_i)_j,
//   dL/du_i = ( (p_i0 - 1) k_i + sum_{j>=1} p_ij Q_j ) / (B tau),
//   dL/dq_i = ( dL/du_i - u_i (u_i . dL/du_i) ) / ||q_i||.
// `accuracy`: the positive's logit strictly above every negative's (a tie misses).
// Policy info_nce_queue (MoCo v2): the two views' online outputs and
// target::queue's queue_targets (the batch's keys, the queue before this batch).
//
// Choices:
//  - Asymmetric as the paper (query view 0, key view 1: only view 0 gets a
//    gradient); symmetric = true adds query view 1 against view 0's key and SUMS
//    both, as MoCo's CIFAR-10 demo (and byol_pair); queue_config::symmetric must
//    match (checked).
//  - No (B, K + 1) logits (67 MB at B 256, K 65536): tasks of block_rows queries
//    x block_keys queue rows compute S = U Q_c^T in a per-thread buffer, keep
//    the row max m and sum E, E = exp((S - m) / tau), and A_c = E Q_c; the
//    online-softmax merge
//      lse_i   = log( e^{l_i0} + sum_c sum(E_c,i) e^{m_c,i / tau} ),
//      dL/du_i = ( (p_i0 - 1) k_i + sum_c e^{m_c,i / tau - lse_i} A_c,i ) / (B tau)
//    computes each logit once in two GEMMs (S = U Q^T, E Q), in
//    O(threads x 128 x 1024 + B d K / 1024) memory (timing: bench/README.md, MoCo's InfoNCE).
//  - Block boundaries independent of the thread count, merged in a fixed order:
//    the same results for any number of threads; past the GEMMs and exp, double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../ops/rows.hpp"

namespace ssl::loss {

struct info_nce_config {
    double temperature = 0.2;  ///< tau > 0 (MoCo v2: 0.2 with the MLP head; MoCo v1: 0.07)
    double eps = 1e-12;        ///< norm floor of the queries' L2 normalization (as F.normalize)
    bool symmetric = false;    ///< info_nce_queue only: also view 1 as query against view 0's key (summed)
    std::size_t block_rows = 128;   ///< queries per block (tuning only)
    std::size_t block_keys = 1024;  ///< queue rows per block (tuning only)
};

/// What target::queue hands the loss for one batch.
template <class T = float>
struct queue_targets {
    /// Per view: (B, d) unit-length keys from the key encoder; undefined for
    /// a view the key encoder did not encode (view 0 unless symmetric).
    std::vector<tensor<T>> keys;
    /// (K, d) unit-length negatives: the queue as it was before this batch
    /// (this batch's keys are enqueued by after_step, after the loss). It
    /// aliases the target's live queue: clone() it to keep it past after_step.
    tensor<T> queue;
    /// Data parallel only (P > 1 ranks): per view, the keys of the global
    /// batch (every rank's rows in rank order), which every rank enqueues so
    /// the replicated queues stay identical; `keys` holds this rank's rows of
    /// them. Empty in one process.
    std::vector<tensor<T>> global_keys;
};

template <class T = float>
struct info_nce_result {
    double value = 0;         ///< mean loss over the B queries
    tensor<T> grad_q;         ///< dL/dq, (B, d)
    std::size_t correct = 0;  ///< queries whose positive is ranked first of K + 1
    double accuracy = 0;      ///< correct / B
};

template <class T = float>
class info_nce {
    static_assert(std::is_floating_point_v<T>, "ssl::loss::info_nce<T> needs a floating-point T (float or double)");

public:
    using value_type = T;
    explicit info_nce(const info_nce_config& c = {}) : cfg_(c) {
        require<value_error>(std::isfinite(c.temperature) && c.temperature > 0,
                             "info_nce: temperature must be finite and > 0, got ", c.temperature);
        require<value_error>(c.eps > 0, "info_nce: eps must be > 0, got ", c.eps);
        require<value_error>(c.block_rows > 0 && c.block_keys > 0, "info_nce: block sizes must be positive, got ",
                             c.block_rows, " x ", c.block_keys);
    }
    const info_nce_config& config() const noexcept { return cfg_; }

    /// q: (B, d) queries (not normalized); k: (B, d) their positive keys;
    /// queue: (K, d) negative keys, K >= 1. Keys and queue are used as given.
    info_nce_result<T> operator()(const tensor<T>& q, const tensor<T>& k, const tensor<T>& queue) const {
        check_rank(q, 2, "info_nce", "(B, d) for the queries");
        check_rank(k, 2, "info_nce", "(B, d) for the positive keys");
        check_rank(queue, 2, "info_nce", "(K, d) for the queue");
        check_same_shape(q, k, "info_nce (queries vs positive keys)");
        const std::size_t B = q.dim(0), d = q.dim(1), K = queue.dim(0);
        require<shape_error>(B >= 1 && d >= 1, "info_nce: empty queries, shape ", q.shape().str());
        require<shape_error>(queue.dim(1) == d, "info_nce: the queue has shape ", queue.shape().str(),
                             ", its rows must have the queries' ", d, " features (queries ", q.shape().str(), ")");
        require<shape_error>(K >= 1, "info_nce: the queue is empty (shape ", queue.shape().str(),
                             "): at least one negative is needed");
        const double tau = cfg_.temperature;
        const auto Ed = static_cast<Eigen::Index>(d);

        // Normalized queries U (B, d), their norms ||q_i||, and the positive logits.
        matrix<T> U(static_cast<Eigen::Index>(B), Ed);
        std::vector<double> norm(B), pos(B);
        for (std::size_t i = 0; i < B; ++i) {
            T* u = U.data() + i * d;
            norm[i] = ops::normalize_row(q.data() + i * d, u, d, cfg_.eps);
            const T* key = k.data() + i * d;
            double p = 0;
            for (std::size_t j = 0; j < d; ++j) p += static_cast<double>(u[j]) * key[j];
            pos[i] = p;
        }

        // Blocks: (row block r, queue chunk c). Per (chunk, row): the row
        // maximum of the raw similarities and sum exp((s - max) / tau); per
        // chunk the partial A_c = E_c Q_c, rows of all chunks stacked.
        const std::size_t R = std::min(cfg_.block_rows, B), C = std::min(cfg_.block_keys, K);
        const std::size_t nr = (B + R - 1) / R, nc = (K + C - 1) / C;
        std::vector<double> cmax(nc * B), csum(nc * B);
        matrix<T> A(static_cast<Eigen::Index>(nc * B), Ed);
        const_matrix_map<T> Q(queue.data(), static_cast<Eigen::Index>(K), Ed);
        std::vector<matrix<T>> work(num_threads());
        const T inv_tau = static_cast<T>(1.0 / tau);
        parallel_for(nr * nc, [&](std::size_t t, std::size_t w) {
            const std::size_t r = t / nc, c = t % nc;
            const std::size_t i0 = r * R, i1 = std::min(B, i0 + R), j0 = c * C, j1 = std::min(K, j0 + C);
            const auto a = static_cast<Eigen::Index>(i1 - i0), b = static_cast<Eigen::Index>(j1 - j0);
            matrix<T>& S = work[w];
            if (S.rows() != static_cast<Eigen::Index>(R) || S.cols() != static_cast<Eigen::Index>(C))
                S.resize(static_cast<Eigen::Index>(R), static_cast<Eigen::Index>(C));
            auto blk = S.topLeftCorner(a, b);
            blk.noalias() = U.middleRows(static_cast<Eigen::Index>(i0), a) *
                            Q.middleRows(static_cast<Eigen::Index>(j0), b).transpose();
            for (Eigen::Index ii = 0; ii < a; ++ii) {
                Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> row(S.data() + ii * S.cols(), b);
                const T mx = row.maxCoeff();
                row = ((row - mx) * inv_tau).exp();
                const std::size_t at = c * B + i0 + static_cast<std::size_t>(ii);
                cmax[at] = static_cast<double>(mx);
                csum[at] = row.template cast<double>().sum();
            }
            A.middleRows(static_cast<Eigen::Index>(c * B + i0), a).noalias() =
                blk * Q.middleRows(static_cast<Eigen::Index>(j0), b);
        });

        // Merge the blocks row by row: loss, top-1, dL/du, dL/dq.
        info_nce_result<T> res;
        res.grad_q = tensor<T>(q.shape());
        std::vector<double> row_loss(B);
        std::vector<unsigned char> row_hit(B);
        const double gscale = 1.0 / (static_cast<double>(B) * tau);
        parallel_for(nr, [&](std::size_t r, std::size_t) {
            std::vector<double> wgt(nc), g(d);
            for (std::size_t i = r * R; i < std::min(B, (r + 1) * R); ++i) {
                double M = pos[i] / tau, neg_max = -INFINITY;
                for (std::size_t c = 0; c < nc; ++c) {
                    M = std::max(M, cmax[c * B + i] / tau);
                    neg_max = std::max(neg_max, cmax[c * B + i]);
                }
                double Z = std::exp(pos[i] / tau - M);
                for (std::size_t c = 0; c < nc; ++c) Z += csum[c * B + i] * std::exp(cmax[c * B + i] / tau - M);
                const double lse = M + std::log(Z);
                row_loss[i] = lse - pos[i] / tau;
                row_hit[i] = pos[i] > neg_max;
                const double p0 = std::exp(pos[i] / tau - lse);
                for (std::size_t c = 0; c < nc; ++c) wgt[c] = std::exp(cmax[c * B + i] / tau - lse);
                const T* key = k.data() + i * d;
                for (std::size_t j = 0; j < d; ++j) g[j] = (p0 - 1.0) * key[j];
                for (std::size_t c = 0; c < nc; ++c) {
                    const T* ar = A.data() + (c * B + i) * d;
                    for (std::size_t j = 0; j < d; ++j) g[j] += wgt[c] * ar[j];
                }
                for (std::size_t j = 0; j < d; ++j) g[j] *= gscale;
                ops::normalize_row_backward(U.data() + i * d, g.data(), res.grad_q.data() + i * d, d, norm[i],
                                            cfg_.eps);
            }
        });
        double total = 0;
        for (std::size_t i = 0; i < B; ++i) {
            total += row_loss[i];
            res.correct += row_hit[i];
        }
        require<value_error>(std::isfinite(total),
                             "info_nce: the loss is not finite (queries, keys or queue contain NaN or Inf)");
        res.value = total / static_cast<double>(B);
        res.accuracy = static_cast<double>(res.correct) / static_cast<double>(B);
        return res;
    }

private:
    info_nce_config cfg_;
};

/// MoCo v2's method-level loss (ssl::loss_policy with queue_targets<float>):
/// InfoNCE of view 0's queries against view 1's keys and the queue (the
/// paper), or the sum of both directions when `symmetric`.
class info_nce_queue {
public:
    /// dist/data_parallel.hpp: no coupling between a batch's rows (the queue
    /// is the one from before the batch), so each rank's mean over its rows,
    /// averaged, is the global mean.
    static constexpr bool data_parallel = true;
    using config_type = info_nce_config;
    explicit info_nce_queue(const info_nce_config& c = {}) : loss_(c) {}
    const info_nce_config& config() const noexcept { return loss_.config(); }
    loss_output<float> compute(const std::vector<tensor<float>>& online, const queue_targets<float>& t,
                               const view_batch<float>&) const {
        require(online.size() == 2, "info_nce_queue: needs exactly 2 views, got ", online.size());
        require(t.keys.size() == 2 && t.keys[1].defined() && t.queue.defined(),
                "info_nce_queue: needs the keys of view 1 and the queue from the target update (ssl::target::queue)");
        const bool sym = loss_.config().symmetric;
        require(t.keys[0].defined() == sym, "info_nce_queue: the loss is ", sym ? "symmetric" : "asymmetric",
                " but the target update ", t.keys[0].defined() ? "encoded" : "did not encode",
                " view 0; set loss.symmetric and target.symmetric to the same value");
        auto a = loss_(online[0], t.keys[1], t.queue);
        if (!sym) return {a.value, {std::move(a.grad_q), tensor<float>{}}, {{"pos_top1", 100.0 * a.accuracy}}};
        auto b = loss_(online[1], t.keys[0], t.queue);
        return {a.value + b.value,
                {std::move(a.grad_q), std::move(b.grad_q)},
                {{"pos_top1", 50.0 * (a.accuracy + b.accuracy)}}};
    }

private:
    info_nce<float> loss_;
};

}  // namespace ssl::loss
