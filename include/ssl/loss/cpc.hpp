#pragma once
// CPC's InfoNCE over a patch grid (van den Oord et al. 2018, eq. 4; Hénaff
// et al. 2019, CPC v2, eq. 2): a prediction zhat_k[i, j] made at patch
// (i, j) for the patch k rows below must pick the true feature z[i + k, j]
// of the same image among the features of every patch of the batch: the
// other positions of the same image and every position of the other images
// are the negatives.
//
//   l_q = zhat_q . z_l / tau   for l over all R C N patch features z_l
//   L   = 1/Q sum_q ( logsumexp_l l_q - l_q,pos(q) )
//
// over the Q = N C sum_k (R - k) queries q = (k, i, j, sample) with
// i + k < R. dL/d zhat_q = sum_l (p_ql - [l = pos(q)]) z_l / (Q tau) and
// dL/dz_l = sum_q (p_ql - [l = pos(q)]) zhat_q / (Q tau), p_q = softmax(l_q):
// the targets z are not held constant (there is no target network); their
// gradient and the predictions' both reach the encoder.
//
// Input: the head's output (R C N, K + 1, D) (head/cpc_context.hpp): slot 0
// of row (r C + c) N + s is z of patch (r, c) of sample s, slot k its
// prediction for the patch k rows below; the grid (R, C) and N come from
// the view's spec and sample count. `accuracy`: the positive's logit
// strictly above all others (a tie misses). tau = 1 is the paper's plain
// dot product.
//
// Choices:
//  - No (Q, R C N) logits (337 M entries at N 256 on a 7x7 grid): blocks of
//    block_rows queries compute their logits against all patches (one GEMM),
//    the softmax row by row in double, and the gradients dzhat = G Z and
//    dZ += G^T zhat of the block (two GEMMs), G the block's
//    (p - onehot) / (Q tau). The blocks are cut into 16 fixed groups, each
//    summing its dZ in block order, summed in group order: the same results
//    at any thread count, memory O(16 R C N D + threads block_rows R C N).
//  - Policy cpc_nce: the single view of augment::cpc_patches through the
//    cpc_context head; data parallel: the negatives are the patches of every
//    rank (all-gathered; their gradient reduce-scattered, as NT-Xent's).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../dist/communicator.hpp"

namespace ssl::loss {

struct cpc_nce_config {
    double temperature = 1.0;     ///< tau > 0 (the paper: 1, plain dot products)
    std::size_t block_rows = 256;  ///< queries per block (tuning only)
};

template <class T = float>
struct cpc_nce_result {
    double value = 0;          ///< mean loss over the Q queries
    tensor<T> grad;            ///< dL/d(head output), (R C N, K + 1, D)
    std::size_t queries = 0;   ///< Q
    std::size_t correct = 0;   ///< queries whose positive ranks first
    double accuracy = 0;       ///< correct / Q
};

template <class T = float>
class cpc_info_nce {
    static_assert(std::is_floating_point_v<T>, "ssl::loss::cpc_info_nce<T> needs a floating-point T");

public:
    static constexpr std::size_t groups = 16;

    explicit cpc_info_nce(const cpc_nce_config& c = {}) : cfg_(c) {
        require<value_error>(c.temperature > 0 && std::isfinite(c.temperature),
                             "cpc_info_nce: temperature must be positive and finite, got ", c.temperature);
        require<value_error>(c.block_rows >= 1, "cpc_info_nce: block_rows must be positive");
    }
    const cpc_nce_config& config() const noexcept { return cfg_; }

    /// y: (R C N, K + 1, D) for an R x C grid of n samples. With `comm` (P > 1
    /// data-parallel ranks, each with its n samples) the negatives are the
    /// patches of every rank: Z all-gathered, this rank's queries scored
    /// against all of it, the gathered patches' gradient reduce-scattered (the
    /// adjoint of the gather; the value is the mean over this rank's queries
    /// and the gradient that of P x the global loss at its rows).
    cpc_nce_result<T> operator()(const tensor<T>& y, std::size_t n, std::size_t R, std::size_t C,
                                 dist::communicator* comm = nullptr) const {
        if (comm && comm->size() == 1) comm = nullptr;
        require<shape_error>(y.rank() == 3 && y.dim(1) >= 2,
                             "cpc_info_nce: expected (patches, K + 1, D) (z and K predictions per patch, "
                             "head::cpc_context), got shape ", y.shape().str());
        require<shape_error>(n >= 1 && R * C >= 1 && y.dim(0) == R * C * n, "cpc_info_nce: ", y.dim(0),
                             " patches are not a ", R, "x", C, " grid of ", n, " samples");
        const std::size_t K = y.dim(1) - 1, D = y.dim(2), M = y.dim(0);
        require<shape_error>(K < R, "cpc_info_nce: ", K, " prediction steps on a grid of ", R,
                             " rows: step k needs a row k below, so K must be below ", R);
        require<shape_error>(D >= 1, "cpc_info_nce: features of width 0");
        const double tau = cfg_.temperature;
        const auto Mi = static_cast<Eigen::Index>(M), Di = static_cast<Eigen::Index>(D);
        const std::size_t ranks = comm ? static_cast<std::size_t>(comm->size()) : 1;
        const std::size_t first = comm ? static_cast<std::size_t>(comm->rank()) * M : 0;  // our patches in Za
        if (comm) {  // every rank must agree on the shapes before the gather
            const std::int64_t here[3] = {static_cast<std::int64_t>(M), static_cast<std::int64_t>(K),
                                          static_cast<std::int64_t>(D)};
            dist::require_same_on_ranks(*comm, here, "cpc_info_nce", [](std::span<const std::int64_t> s) {
                return ssl::detail::cat(s[0], " patches with ", s[1], " steps of width ", s[2]);
            });
        }
        const std::size_t Ma = M * ranks;  // the patches scored against: every rank's
        const auto Mai = static_cast<Eigen::Index>(Ma);

        // Z (M, D): every patch's feature; the queries (Q, D) with their row,
        // step and positive.
        matrix<T> Z(Mi, Di);
        for (std::size_t j = 0; j < M; ++j) std::copy_n(y.data() + j * (K + 1) * D, D, Z.data() + j * D);
        matrix<T> Zg;  // data parallel: every rank's Z, rank-major
        if (comm) {
            Zg.resize(Mai, Di);
            comm->allgather(std::span<const T>(Z.data(), M * D), std::span<T>(Zg.data(), Ma * D));
        }
        const matrix<T>& Za = comm ? Zg : Z;
        std::size_t Q = 0;
        for (std::size_t k = 1; k <= K; ++k) Q += (R - k) * C * n;
        std::vector<std::size_t> src(Q), pos(Q), step(Q);
        {
            std::size_t q = 0;
            for (std::size_t k = 1; k <= K; ++k)
                for (std::size_t r = 0; r + k < R; ++r)
                    for (std::size_t c = 0; c < C; ++c)
                        for (std::size_t s = 0; s < n; ++s, ++q) {
                            src[q] = (r * C + c) * n + s;
                            pos[q] = first + ((r + k) * C + c) * n + s;
                            step[q] = k;
                        }
        }
        matrix<T> P(static_cast<Eigen::Index>(Q), Di);
        for (std::size_t q = 0; q < Q; ++q)
            std::copy_n(y.data() + (src[q] * (K + 1) + step[q]) * D, D, P.data() + q * D);

        const std::size_t B = std::min(cfg_.block_rows, Q), blocks = (Q + B - 1) / B;
        const std::size_t G = std::min(groups, blocks);
        std::vector<matrix<T>> dZg(G);
        matrix<T> dP(static_cast<Eigen::Index>(Q), Di);
        std::vector<double> row_loss(Q);
        std::vector<unsigned char> hit(Q);
        const double inv_tau = 1.0 / tau, gscale = 1.0 / (static_cast<double>(Q) * tau);
        parallel_for(G, [&](std::size_t g, std::size_t) {
            const std::size_t b0 = g * blocks / G, b1 = (g + 1) * blocks / G;
            matrix<T>& dz = dZg[g];
            dz = matrix<T>::Zero(Mai, Di);
            matrix<T> S;
            std::vector<double> e(Ma);
            for (std::size_t b = b0; b < b1; ++b) {
                const std::size_t q0 = b * B, q1 = std::min(Q, q0 + B);
                const auto nr = static_cast<Eigen::Index>(q1 - q0), e0 = static_cast<Eigen::Index>(q0);
                S.noalias() = P.middleRows(e0, nr) * Za.transpose();  // (nr, Ma), logits * tau
                for (std::size_t q = q0; q < q1; ++q) {
                    T* s = S.data() + (q - q0) * Ma;
                    const std::size_t p = pos[q];
                    double mx = -INFINITY, neg = -INFINITY;
                    for (std::size_t l = 0; l < Ma; ++l) {
                        const double v = static_cast<double>(s[l]) * inv_tau;
                        mx = std::max(mx, v);
                        if (l != p) neg = std::max(neg, v);
                    }
                    const double lp = static_cast<double>(s[p]) * inv_tau;
                    hit[q] = lp > neg;
                    double se = 0;
                    for (std::size_t l = 0; l < Ma; ++l) se += e[l] = std::exp(static_cast<double>(s[l]) * inv_tau - mx);
                    row_loss[q] = mx + std::log(se) - lp;
                    for (std::size_t l = 0; l < Ma; ++l)
                        s[l] = static_cast<T>((e[l] / se - (l == p ? 1.0 : 0.0)) * gscale);
                }
                dP.middleRows(e0, nr).noalias() = S * Za;
                dz.noalias() += S.transpose() * P.middleRows(e0, nr);
            }
        });

        cpc_nce_result<T> r;
        r.queries = Q;
        double total = 0;
        for (std::size_t q = 0; q < Q; ++q) {
            total += row_loss[q];
            r.correct += hit[q];
        }
        // over ranks a non-finite loss is reported (the trainer stops every
        // rank), not thrown: the other ranks would wait in the reduce-scatter
        require<value_error>(comm || std::isfinite(total),
                             "cpc_info_nce: the loss is not finite (the features or predictions contain NaN or Inf)");
        r.value = total / static_cast<double>(Q);
        r.accuracy = static_cast<double>(r.correct) / static_cast<double>(Q);
        r.grad = tensor<T>::zeros(y.shape());
        for (std::size_t g = 1; g < G; ++g) dZg[0] += dZg[g];
        if (comm) {  // the gathered patches' gradient to their ranks
            matrix<T> mine(Mi, Di);
            comm->reduce_scatter_sum(std::span<const T>(dZg[0].data(), Ma * D), std::span<T>(mine.data(), M * D));
            dZg[0] = std::move(mine);
        }
        for (std::size_t j = 0; j < M; ++j) std::copy_n(dZg[0].data() + j * D, D, r.grad.data() + j * (K + 1) * D);
        for (std::size_t q = 0; q < Q; ++q)
            std::copy_n(dP.data() + q * D, D, r.grad.data() + (src[q] * (K + 1) + step[q]) * D);
        return r;
    }

private:
    cpc_nce_config cfg_;
};

/// The loss policy: one view (the patch grid) through head::cpc_context.
class cpc_nce {
public:
    /// dist/data_parallel.hpp: the negatives are every rank's patches
    /// (cpc_info_nce with the step's communicator), equal queries per rank.
    static constexpr bool data_parallel = true;
    using config_type = cpc_nce_config;
    explicit cpc_nce(const cpc_nce_config& c = {}) : loss_(c) {}
    const cpc_nce_config& config() const noexcept { return loss_.config(); }
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>& vb) const {
        require(online.size() == 1, "cpc_nce: needs 1 view (the patch grid), got ", online.size());
        const view_spec s = vb.spec(0);
        require<shape_error>(s.grid_rows * s.grid_cols > 0, "cpc_nce: the view has no patch grid (view_spec grid_rows "
                             "x grid_cols); CPC needs one (augment::cpc_patches)");
        auto r = loss_(online[0], vb.samples(), s.grid_rows, s.grid_cols, dist::active());
        return {r.value, {std::move(r.grad)}, {{"cpc_top1", 100.0 * r.accuracy}}};
    }

private:
    cpc_info_nce<float> loss_;
};

}  // namespace ssl::loss
