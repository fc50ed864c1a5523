#pragma once
// Instance cross entropy over a sharded cosine classifier: the loss of
// "Train a One-Million-Way Instance Classifier for Unsupervised Visual
// Representation Learning", Liu, Huang, Pan, Wang, Xu, Jin, AAAI 2021
// (arXiv 2102.04848): every image of the data set is its own class, the
// classifier is an N-way cosine softmax, and each label is smoothed over its
// few hardest negative classes only.
//
// Inputs: features F (B, D), NOT normalised (the loss L2-normalises them and
// backpropagates through it); weights W (N, D) as S shards of R rows (shard s
// holds classes [s R, s R + R_s), the last may be shorter; owned by the
// loss policy loss/instance_classifier.hpp); the label y_i (instance id) of every
// row. With u_i = f_i / ||f_i||, v_j = w_j / ||w_j|| (norm floor eps, as
// F.normalize), temperature tau and k = min(top_k, N - 1):
//   z_ij = u_i . v_j / tau,   H_i = the k classes j != y_i with the largest z_ij (ties to the smaller j)
//   q_ij = 1 - eps_s at j = y_i,  eps_s / k for j in H_i,  0 otherwise
//   L    = 1/B sum_i ( logsumexp_j z_ij - sum_j q_ij z_ij ).
// k = 0 or smoothing = 0 is the plain cross entropy. With H_i held fixed (as
// autograd treats top-k), p = softmax_j(z_i), G_ij = s (p_ij - q_ij), s = grad_scale (1/B default):
//   dL/du_i = 1/tau sum_j G_ij v_j,  dL/dv_j = 1/tau sum_i G_ij u_i,
//   dL/df_i = (dL/du_i - u_i (u_i . dL/du_i)) / ||f_i||, likewise dL/dw_j.
// dL/dF is returned; dL/dW is ADDED into each shard's grad (the optimizer
// zeroes grads every step and updates the shards with the network). A
// non-finite input gives a NaN loss (the trainer stops and reports it), not an
// exception. Policy: loss::instance_classifier (loss/instance_classifier.hpp).
//
// Choices:
//  - Smoothing only over the k hardest classes (the paper's): over all N - 1 it
//    is nothing at N = 10^6; this stops the loss pushing apart near-duplicates.
//  - No B x N logits: per shard, tiles of block_columns classes (one GEMM each);
//    pass 1 for the log-sum-exp, true logit and k hardest (a bounded heap per
//    row), pass 2 recomputes the logits for dU and dV.
//  - Fixed column groups (min(32, tiles) per shard) merged in order: results do
//    not depend on the thread count.
//  - Scratch independent of N (scratch_bytes; bench/README.md, instance
//    classifier); sums over classes in double, GEMMs in T.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../dist/communicator.hpp"
#include "../nn/parameter.hpp"

namespace ssl::loss {

struct instance_ce_config {
    double temperature = 0.15;         ///< tau > 0 (the paper's value)
    std::size_t top_k = 10;            ///< hardest wrong classes sharing the smoothing mass (0: none)
    double smoothing = 0.2;            ///< epsilon in [0, 1): label mass moved off the true class (the paper's value)
    double eps = 1e-12;                ///< norm floor of the L2 normalisations
    std::size_t block_columns = 256;   ///< classes per logits tile (one GEMM); memory only, not the result's value
};

/// The classifier sharded over the ranks of a communicator (hybrid parallel,
/// the paper's section 3.1): each rank holds some shards only (shard q of the
/// call holds classes [first[q], first[q] + rows_q) of `instances` in all,
/// possibly none), the features and labels are the rank's rows of the global
/// batch (rank r: rows [r b, (r + 1) b)). Every rank then computes, for ITS
/// classes and EVERY row: pass 1, merged by an allreduce of the row maxima and
/// of the rescaled exp-sums, an allreduce of the true logits and an allgather
/// of each rank's k hardest; pass 2, whose weight gradient stays on the rank
/// (scaled to the global batch's mean: grad_scale / P) and whose feature
/// gradient is reduce-scattered back to the rows' ranks (scaled as P x the
/// global mean, as every data-parallel loss: the replicated parameters'
/// gradients are averaged over the ranks). value, correct and hardest are of
/// this rank's rows. Bytes each rank sends per call (payload):
///   20 + 4 b D + 8 b + 24 B + 16 B kh + 4 B D   (B = P b, kh = max(k, 1), float).
struct instance_ce_ranks {
    dist::communicator* comm = nullptr;  ///< the P ranks (null or one rank: one process with this layout)
    std::span<const std::size_t> first;  ///< the first class of each of this rank's shards
    std::size_t instances = 0;           ///< N: classes over all ranks
};

/// Per-call options.
struct instance_ce_options {
    double grad_scale = 0;   ///< dL/dz = grad_scale (p - q); 0: 1/B (the gradient of the mean)
    bool weight_grad = true; ///< add dL/dW into the shards' grad
    const instance_ce_ranks* ranks = nullptr;  ///< hybrid parallel: the shards over ranks; null: all shards here
};

template <class T = float>
struct instance_ce_result {
    double value = 0;                   ///< mean loss over the B rows
    tensor<T> grad_features;            ///< dL/dF (B, D), scaled by grad_scale (1/B: of the mean)
    std::size_t correct = 0;            ///< rows whose true class has a strictly larger logit than every other
    std::size_t k = 0;                  ///< hardest classes per row (min(top_k, N - 1))
    std::vector<std::int64_t> hardest;  ///< (B, k) row-major: each row's hardest wrong classes, best first
    std::size_t instances = 0;          ///< N, the number of classes of the shards
    std::size_t scratch_bytes = 0;      ///< temporary memory the call allocated (independent of N)
};

template <class T = float>
class instance_ce {
    static_assert(std::is_floating_point_v<T>, "ssl::loss::instance_ce<T> needs a floating-point T (float or double)");

public:
    using value_type = T;
    /// Column groups per shard: the fixed decomposition that makes the result
    /// independent of the number of threads.
    static constexpr std::size_t groups = 32;

    explicit instance_ce(const instance_ce_config& c = {}) : cfg_(c) {
        require<value_error>(std::isfinite(c.temperature) && c.temperature > 0,
                             "instance_ce: temperature must be finite and > 0, got ", c.temperature);
        require<value_error>(c.smoothing >= 0 && c.smoothing < 1, "instance_ce: smoothing must be in [0, 1), got ",
                             c.smoothing);
        require<value_error>(c.eps > 0, "instance_ce: eps must be > 0, got ", c.eps);
        require<value_error>(c.block_columns > 0, "instance_ce: block_columns must be positive");
    }
    const instance_ce_config& config() const noexcept { return cfg_; }

    /// features (B, D); shards: the classifier, shard s of shape (R_s, D);
    /// labels: B class indices in [0, N). Adds dL/dW into shards[s]->grad
    /// unless o.weight_grad is false. With o.ranks (hybrid parallel): the
    /// features and labels are this rank's b rows of the global batch, the
    /// shards this rank's part of the classifier (see instance_ce_ranks).
    instance_ce_result<T> operator()(const tensor<T>& features, std::span<parameter<T>* const> shards,
                                     std::span<const std::int64_t> labels, const instance_ce_options& o = {}) const {
        check_rank(features, 2, "instance_ce", "(B, D) features");
        const std::size_t nb = features.dim(0), D = features.dim(1);
        require<shape_error>(nb >= 1 && D >= 1, "instance_ce: empty features ", features.shape().str());
        require<shape_error>(labels.size() == nb, "instance_ce: ", labels.size(), " labels for features of shape ",
                             features.shape().str());
        const instance_ce_ranks* layout = o.ranks;
        dist::communicator* comm = layout && layout->comm && layout->comm->size() > 1 ? layout->comm : nullptr;
        const std::size_t P = comm ? static_cast<std::size_t>(comm->size()) : 1;
        const std::size_t me = comm ? static_cast<std::size_t>(comm->rank()) : 0;
        const std::size_t S = shards.size();
        require<shape_error>(layout || S > 0, "instance_ce: the classifier has no shards");
        require<shape_error>(!layout || layout->first.size() == S, "instance_ce: ",
                             layout ? layout->first.size() : 0, " first classes for ", S, " shards (instance_ce_ranks)");
        // shard_first[s]: the global class of shard s's row 0; one process: s R, R = shard 0's rows
        std::vector<std::size_t> shard_first(S);
        std::size_t N = 0;
        const std::size_t R = S > 0 && shards[0] && shards[0]->value.rank() == 2 ? shards[0]->value.dim(0) : 0;
        for (std::size_t s = 0; s < S; ++s) {
            const parameter<T>* p = shards[s];
            require<shape_error>(p != nullptr && p->value.rank() == 2 && p->value.dim(1) == D && p->value.dim(0) >= 1,
                                 "instance_ce: shard ", s, " has shape ",
                                 p ? p->value.shape().str() : std::string("(null)"), ", expected (rows, ", D, ")");
            const std::size_t r = p->value.dim(0);
            if (layout) {
                shard_first[s] = layout->first[s];
                require<shape_error>(shard_first[s] + r <= layout->instances, "instance_ce: shard ", s, " holds classes [",
                                     shard_first[s], ", ", shard_first[s] + r, ") of only ", layout->instances);
            } else {
                require<shape_error>(s + 1 == S ? r <= R : r == R, "instance_ce: shard ", s, " has ", r,
                                     " rows; every shard but the last must have ", R, " rows (the last at most ", R, ")");
                shard_first[s] = s * R;
                N += r;
            }
            if (o.weight_grad)
                require<shape_error>(p->grad.shape() == p->value.shape(), "instance_ce: shard ", s,
                                     " has a gradient of shape ", p->grad.shape().str(), " for weights of shape ",
                                     p->value.shape().str());
        }
        if (layout) N = layout->instances;
        require<shape_error>(N >= 1, "instance_ce: the classifier has no classes");

        // The global batch: every rank's rows, rank-major (one process: the features themselves).
        const std::size_t B = nb * P;
        tensor<T> gathered;
        const T* fdata = features.data();
        std::vector<std::int64_t> yall(labels.begin(), labels.end());
        if (comm) {
            const std::int64_t here[2] = {static_cast<std::int64_t>(nb), static_cast<std::int64_t>(D)};
            std::vector<std::int64_t> shapes(2 * P);
            comm->allgather(std::span<const std::int64_t>(here, 2), std::span<std::int64_t>(shapes));
            for (std::size_t r = 0; r < P; ++r)
                require<shape_error>(shapes[2 * r] == shapes[0] && shapes[2 * r + 1] == shapes[1], "instance_ce over ",
                                     P, " ranks: rank ", r, " has ", shapes[2 * r], " rows of dimension ",
                                     shapes[2 * r + 1], ", rank 0 ", shapes[0], " of ", shapes[1],
                                     "; every rank needs the same local batch");
            gathered = tensor<T>({B, D});
            comm->allgather(std::span<const T>(features.data(), nb * D), std::span<T>(gathered.data(), B * D));
            fdata = gathered.data();
            yall.resize(B);
            comm->allgather(labels, std::span<std::int64_t>(yall));
        }
        for (std::size_t i = 0; i < B; ++i)  // the same labels, hence the same verdict, on every rank
            require(yall[i] >= 0 && static_cast<std::size_t>(yall[i]) < N, "instance_ce: label ", yall[i], " of sample ",
                    i % nb, comm ? ssl::detail::cat(" of rank ", i / nb) : std::string(), " is outside [0, ", N,
                    ") (the classifier has ", N, " instance classes)");

        const double tau = cfg_.temperature;
        const std::size_t k = std::min<std::size_t>(cfg_.top_k, N - 1);
        const std::size_t kh = std::max<std::size_t>(k, 1);  // kept per row (also gives the best wrong class)
        const double eps_s = k > 0 ? cfg_.smoothing : 0.0;
        const double scale = o.grad_scale != 0 ? o.grad_scale : 1.0 / static_cast<double>(nb);
        std::size_t maxrows = 1;
        for (std::size_t s = 0; s < S; ++s) maxrows = std::max(maxrows, shards[s]->value.dim(0));
        const std::size_t tile = std::min(cfg_.block_columns, maxrows);
        const std::size_t G = std::min(groups, (maxrows + tile - 1) / tile);
        const std::size_t W = num_threads();
        const auto EB = static_cast<Eigen::Index>(B), ED = static_cast<Eigen::Index>(D);

        instance_ce_result<T> res;
        res.k = k;
        res.instances = N;

        // U: normalised features; Us = U / tau (the left factor of every logits GEMM).
        tensor<T> Ut({B, D}), Ust({B, D});
        std::vector<double> fnorm(B);
        std::vector<unsigned char> fclamped(B);
        for (std::size_t i = 0; i < B; ++i) {
            const T* src = fdata + i * D;
            double ss = 0;
            for (std::size_t d = 0; d < D; ++d) ss += static_cast<double>(src[d]) * src[d];
            double nr = std::sqrt(ss);
            fclamped[i] = !(nr >= cfg_.eps);
            if (nr < cfg_.eps) nr = cfg_.eps;
            fnorm[i] = nr;
            for (std::size_t d = 0; d < D; ++d) {
                Ut.data()[i * D + d] = static_cast<T>(src[d] / nr);
                Ust.data()[i * D + d] = static_cast<T>(src[d] / nr / tau);
            }
        }
        const const_matrix_map<T> Us(Ust.data(), EB, ED);

        // Per-worker tile buffers: logits / G (B x tile), normalised rows and
        // their gradient (tile x D), row norms.
        struct worker_buffers {
            tensor<T> z, v, dv;
            std::vector<double> norm;
            std::vector<unsigned char> clamped;
        };
        // Allocated by a worker when it first gets a tile: only the workers
        // that have work (at most min(threads, groups)) hold a block.
        std::vector<worker_buffers> wb(W);
        const auto ready = [&](worker_buffers& b) -> worker_buffers& {
            if (!b.z.defined()) {
                b.z = tensor<T>({B, tile});
                b.v = tensor<T>({tile, D});
                if (o.weight_grad) b.dv = tensor<T>({tile, D});
                b.norm.resize(tile);
                b.clamped.resize(tile);
            }
            return b;
        };
        // Per-group partials: running (max, sum exp) per row, the k best wrong
        // classes per row (a heap), and the group's part of dL/dU.
        struct entry {
            double v;
            std::int64_t j;
        };
        // "a is a harder wrong class than b": larger logit, ties to the smaller index.
        const auto better = [](const entry& a, const entry& b) { return a.v > b.v || (a.v == b.v && a.j < b.j); };
        std::vector<double> gmax(G * B, -std::numeric_limits<double>::infinity()), gsum(G * B, 0.0);
        std::vector<entry> gheap(G * B * kh);
        std::vector<std::size_t> gcount(G * B, 0);
        std::vector<double> ztrue(B, 0.0);
        res.scratch_bytes = 2 * B * D * sizeof(T) + B * (2 * sizeof(double) + 1) +
                            G * B * (2 * sizeof(double) + sizeof(std::size_t) + kh * sizeof(entry));

        // Normalises rows [c0, c0 + n) of a shard into b.v.
        const auto load_rows = [&](const parameter<T>& p, std::size_t c0, std::size_t n, worker_buffers& b) {
            for (std::size_t r = 0; r < n; ++r) {
                const const_vector_map<T> w(p.value.data() + (c0 + r) * D, ED);
                double nr = std::sqrt(static_cast<double>(w.squaredNorm()));
                b.clamped[r] = !(nr >= cfg_.eps);
                if (nr < cfg_.eps) nr = cfg_.eps;
                b.norm[r] = nr;
                vector_map<T>(b.v.data() + r * D, ED) = w * static_cast<T>(1.0 / nr);
            }
        };
        // Logits of the tile into b.z viewed as (B, n): Z = Us V^T.
        const auto logits = [&](std::size_t n, worker_buffers& b) {
            matrix_map<T> Z(b.z.data(), EB, static_cast<Eigen::Index>(n));
            const const_matrix_map<T> V(b.v.data(), static_cast<Eigen::Index>(n), ED);
            Z.noalias() = Us * V.transpose();
            return Z;
        };
        // Calls fn(shard, c0, n, group, worker) for every tile of shard s,
        // tiles split over the groups in contiguous ranges.
        const auto for_each_tile = [&](std::size_t s, auto&& fn) {
            const std::size_t rows = shards[s]->value.dim(0);
            const std::size_t nt = (rows + tile - 1) / tile;
            parallel_for(G, [&](std::size_t g, std::size_t w) {
                for (std::size_t t = g * nt / G; t < (g + 1) * nt / G; ++t) {
                    const std::size_t c0 = t * tile;
                    fn(*shards[s], shard_first[s], c0, std::min(tile, rows - c0), g, ready(wb[w]));
                }
            });
        };

        // Pass 1: log-sum-exp, true-class logits, hardest wrong classes.
        for (std::size_t s = 0; s < S; ++s) {
            for_each_tile(s, [&](const parameter<T>& p, std::size_t base, std::size_t c0, std::size_t n,
                                 std::size_t g, worker_buffers& b) {
                load_rows(p, c0, n, b);
                auto Z = logits(n, b);
                const auto first = static_cast<std::int64_t>(base + c0), last = first + static_cast<std::int64_t>(n);
                for (std::size_t i = 0; i < B; ++i) {
                    const T* z = Z.data() + i * n;
                    const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> row(z, static_cast<Eigen::Index>(n));
                    const T mx = row.maxCoeff();
                    const double st = static_cast<double>((row - mx).exp().sum());
                    double& m = gmax[g * B + i];
                    double& sm = gsum[g * B + i];
                    if (static_cast<double>(mx) > m) {
                        sm = sm * std::exp(m - static_cast<double>(mx)) + st;
                        m = mx;
                    } else {
                        sm += st * std::exp(static_cast<double>(mx) - m);
                    }
                    const std::int64_t y = yall[i];
                    if (y >= first && y < last) ztrue[i] = static_cast<double>(z[y - first]);
                    entry* h = gheap.data() + (g * B + i) * kh;
                    std::size_t& cnt = gcount[g * B + i];
                    double thr = cnt == kh ? h[0].v : -std::numeric_limits<double>::infinity();
                    // Once the heap is full, most tiles hold no better class:
                    // the row maximum says so without a scan. Columns come in
                    // increasing class order within a group, so a tie with the
                    // current worst (a smaller index) is not better.
                    if (!(static_cast<double>(mx) > thr)) continue;
                    for (std::size_t c = 0; c < n; ++c) {
                        if (c % 32 == 0) {  // skip 32 columns at once when none beats the threshold
                            const std::size_t len = std::min<std::size_t>(32, n - c);
                            const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> blk(
                                z + c, static_cast<Eigen::Index>(len));
                            if (!(static_cast<double>(blk.maxCoeff()) > thr)) {
                                c += len - 1;
                                continue;
                            }
                        }
                        if (!(static_cast<double>(z[c]) > thr)) continue;
                        const std::int64_t j = first + static_cast<std::int64_t>(c);
                        if (j == y) continue;
                        const entry e{static_cast<double>(z[c]), j};
                        if (cnt < kh) {
                            h[cnt++] = e;
                            std::push_heap(h, h + cnt, better);
                        } else {
                            std::pop_heap(h, h + kh, better);
                            h[kh - 1] = e;
                            std::push_heap(h, h + kh, better);
                        }
                        if (cnt == kh) thr = h[0].v;
                    }
                }
            });
        }

        // Merge the groups, in order: each row's (max, sum exp) and k best wrong classes here.
        const double ninf = -std::numeric_limits<double>::infinity();
        std::vector<double> rmax(B, ninf), rsum(B, 0.0), cval(B * kh, ninf);
        std::vector<std::int64_t> cidx(B * kh, -1);  // -1: no candidate (fewer than kh classes here)
        {
            std::vector<entry> cand;
            for (std::size_t i = 0; i < B; ++i) {
                double m = ninf, sm = 0;
                cand.clear();
                for (std::size_t g = 0; g < G; ++g) {
                    const double gm = gmax[g * B + i], gs = gsum[g * B + i];
                    if (gs > 0 || !std::isinf(gm)) {
                        if (gm > m) {
                            sm = sm * std::exp(m - gm) + gs;
                            m = gm;
                        } else {
                            sm += gs * std::exp(gm - m);
                        }
                    }
                    const entry* h = gheap.data() + (g * B + i) * kh;
                    cand.insert(cand.end(), h, h + gcount[g * B + i]);
                }
                rmax[i] = m;
                rsum[i] = sm;
                const std::size_t keep = std::min(kh, cand.size());
                std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(), better);
                for (std::size_t r = 0; r < keep; ++r) cval[i * kh + r] = cand[r].v, cidx[i * kh + r] = cand[r].j;
            }
        }
        // Over the ranks (hybrid parallel): the global row max, the sums of exp
        // rescaled to it, the true logit (one rank holds it, the others add 0),
        // and each rank's k best merged: a strict order (value, then the smaller
        // class) makes the global k best a subset of the ranks' k best.
        if (comm) {
            std::vector<double> gmx = rmax;
            comm->allreduce_max(std::span<double>(gmx));
            // a rank without classes adds 0; a NaN stays a NaN
            for (std::size_t i = 0; i < B; ++i) rsum[i] = rsum[i] == 0 ? 0.0 : rsum[i] * std::exp(rmax[i] - gmx[i]);
            rmax = std::move(gmx);
            comm->allreduce_sum(std::span<double>(rsum));
            comm->allreduce_sum(std::span<double>(ztrue));
            std::vector<double> av(P * B * kh);
            std::vector<std::int64_t> aj(P * B * kh);
            comm->allgather(std::span<const double>(cval), std::span<double>(av));
            comm->allgather(std::span<const std::int64_t>(cidx), std::span<std::int64_t>(aj));
            res.scratch_bytes += (B * D + nb * D) * sizeof(T) + P * B * kh * 16;
            std::vector<entry> cand;
            for (std::size_t i = 0; i < B; ++i) {
                cand.clear();
                for (std::size_t q = 0; q < P; ++q)
                    for (std::size_t r = 0; r < kh; ++r)
                        if (const std::size_t at = (q * B + i) * kh + r; aj[at] >= 0) cand.push_back({av[at], aj[at]});
                const std::size_t keep = std::min(kh, cand.size());
                std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(), better);
                for (std::size_t r = 0; r < kh; ++r) {
                    cval[i * kh + r] = r < keep ? cand[r].v : ninf;
                    cidx[i * kh + r] = r < keep ? cand[r].j : -1;
                }
            }
        }
        // lse, the hardest classes and the loss of every row of the global batch.
        std::vector<double> lse(B);
        std::vector<std::int64_t> hard(B * k, 0);
        double total = 0, mine = 0;
        const std::size_t lo = me * nb, hi = lo + nb;  // this rank's rows
        for (std::size_t i = 0; i < B; ++i) {
            lse[i] = rmax[i] + std::log(rsum[i]);
            double l = lse[i] - (1 - eps_s) * ztrue[i];
            for (std::size_t r = 0; r < k && cidx[i * kh + r] >= 0; ++r) {
                hard[i * k + r] = cidx[i * kh + r];
                l -= eps_s / static_cast<double>(k) * cval[i * kh + r];
            }
            total += l;
            if (i >= lo && i < hi) {
                mine += l;
                res.correct += cidx[i * kh] < 0 || ztrue[i] > cval[i * kh];
            }
        }
        res.hardest.assign(hard.begin() + static_cast<std::ptrdiff_t>(lo * k),
                           hard.begin() + static_cast<std::ptrdiff_t>(hi * k));
        res.value = mine / static_cast<double>(nb);
        // NaN/Inf inputs: report, do not backpropagate; over ranks one verdict
        // for all (a rank's own rows may be finite, the step is not)
        bool bad = !std::isfinite(total);
        if (comm) bad = comm->max(static_cast<std::int32_t>(bad)) != 0;
        if (bad) {
            if (comm) res.value = std::numeric_limits<double>::quiet_NaN();
            res.grad_features = tensor<T>::zeros(features.shape());
            return res;
        }

        // Pass 2: G = s (p - q) tile by tile; weight grads and dL/dU.
        std::vector<tensor<T>> dUg(G);
        for (auto& t : dUg) t = tensor<T>::zeros({B, D});
        res.scratch_bytes += G * B * D * sizeof(T);
        const T keep_true = static_cast<T>((1 - eps_s) * scale), keep_hard = static_cast<T>(k ? eps_s / k * scale : 0);
        for (std::size_t s = 0; s < S; ++s) {
            for_each_tile(s, [&](parameter<T>& p, std::size_t base, std::size_t c0, std::size_t n, std::size_t g,
                                 worker_buffers& b) {
                load_rows(p, c0, n, b);
                auto Z = logits(n, b);
                const auto first = static_cast<std::int64_t>(base + c0), last = first + static_cast<std::int64_t>(n);
                for (std::size_t i = 0; i < B; ++i) {
                    T* z = Z.data() + i * n;
                    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> row(z, static_cast<Eigen::Index>(n));
                    row = (row - static_cast<T>(lse[i])).exp() * static_cast<T>(scale);
                    const std::int64_t y = yall[i];
                    if (y >= first && y < last) z[y - first] -= keep_true;
                    for (std::size_t r = 0; r < k; ++r) {
                        const std::int64_t j = hard[i * k + r];
                        if (j >= first && j < last) z[j - first] -= keep_hard;
                    }
                }
                const const_matrix_map<T> V(b.v.data(), static_cast<Eigen::Index>(n), ED);
                if (o.weight_grad) {
                    matrix_map<T> dV(b.dv.data(), static_cast<Eigen::Index>(n), ED);
                    dV.noalias() = Z.transpose() * Us;  // dL/dv_j = 1/tau sum_i G_ij u_i
                    for (std::size_t r = 0; r < n; ++r) {
                        const T* v = b.v.data() + r * D;
                        const T* dv = b.dv.data() + r * D;
                        T* gw = p.grad.data() + (c0 + r) * D;
                        double dot = 0;
                        if (!b.clamped[r])
                            for (std::size_t d = 0; d < D; ++d) dot += static_cast<double>(v[d]) * dv[d];
                        // hybrid parallel: the shards' gradient is of the global mean, never averaged
                        const double inv = 1.0 / b.norm[r] / static_cast<double>(P);
                        for (std::size_t d = 0; d < D; ++d) gw[d] += static_cast<T>((dv[d] - v[d] * dot) * inv);
                    }
                }
                matrix_map<T> dU(dUg[g].data(), EB, ED);
                dU.noalias() += Z * V;  // tau * dL/du_i, this group's part
            });
        }

        for (const auto& b : wb)
            if (b.z.defined())
                res.scratch_bytes += (b.z.numel() + b.v.numel() + b.dv.numel()) * sizeof(T) + b.norm.size() * 9;

        // dL/dU = 1/tau sum_g dU_g (in group order), then through the normalisation;
        // hybrid parallel: every rank's classes contribute to every row, so the
        // rows' sums are reduce-scattered (the adjoint of the features' gather).
        tensor<T> du_here;
        if (comm) {
            tensor<T> du_all({B, D});
            for (std::size_t i = 0; i < B * D; ++i) {
                double acc = 0;
                for (std::size_t g = 0; g < G; ++g) acc += static_cast<double>(dUg[g].data()[i]);
                du_all.data()[i] = static_cast<T>(acc);
            }
            du_here = tensor<T>({nb, D});
            comm->reduce_scatter_sum(std::span<const T>(du_all.data(), B * D), std::span<T>(du_here.data(), nb * D));
            res.scratch_bytes += (B + nb) * D * sizeof(T);
        }
        res.grad_features = tensor<T>({nb, D});
        std::vector<double> du(D);
        for (std::size_t i = 0; i < nb; ++i) {
            const std::size_t gi = lo + i;  // the row in the global batch
            std::fill(du.begin(), du.end(), 0.0);
            if (comm) {
                for (std::size_t d = 0; d < D; ++d) du[d] = static_cast<double>(du_here.data()[i * D + d]);
            } else {
                for (std::size_t g = 0; g < G; ++g) {
                    const T* src = dUg[g].data() + gi * D;
                    for (std::size_t d = 0; d < D; ++d) du[d] += static_cast<double>(src[d]);
                }
            }
            const T* u = Ut.data() + gi * D;
            double dot = 0;
            for (std::size_t d = 0; d < D; ++d) {
                du[d] /= tau;
                if (!fclamped[gi]) dot += static_cast<double>(u[d]) * du[d];
            }
            T* out = res.grad_features.data() + i * D;
            for (std::size_t d = 0; d < D; ++d) out[d] = static_cast<T>((du[d] - u[d] * dot) / fnorm[gi]);
        }
        return res;
    }

private:
    instance_ce_config cfg_;
};

}  // namespace ssl::loss
