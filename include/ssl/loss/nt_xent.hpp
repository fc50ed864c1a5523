#pragma once
// NT-Xent, the normalized temperature-scaled cross entropy of SimCLR
// (Chen et al. 2020, eq. 1).
//
// Inputs z1, z2 (N, D): projections of two augmented views of the same N
// images, NOT normalized (the loss L2-normalizes each row itself and
// backpropagates through the normalization). Stack them as the 2N rows
//   u_a = z_a / max(||z_a||, eps),  a = 0..2N-1  (z1 rows first, then z2),
// with cosine similarities s_ab = u_a . u_b. The positive of anchor a is the
// other view of the same image, p(a) = (a + N) mod 2N; the other 2N - 2
// samples are its negatives. With temperature tau,
//   l_a = -log( exp(s_a,p(a) / tau) / sum_{b != a} exp(s_ab / tau) ),
//   L   = 1/(2N) sum_a l_a.
// Gradient: with P_ab the softmax over b != a of s_ab / tau (P_aa = 0),
//   dL/ds_ab = (P_ab - [b == p(a)]) / (2N tau) =: G_ab,
//   dL/dU    = (G + G^T) U,
//   dL/dz_a  = (dL/du_a - u_a (u_a . dL/du_a)) / ||z_a||.
// The (2N, 2N) similarity matrix is one Eigen GEMM, split by row blocks over
// ssl::parallel_for; each row's log-sum-exp subtracts the row maximum, and
// everything past the GEMMs is accumulated in double. Results do not depend
// on the number of threads.
//
// Negatives from all ranks (data parallel, dist/communicator.hpp): with a
// communicator of P > 1 ranks each holding n = N / P pairs (rank r the rows
// [r n, (r+1) n) of z1 and z2), the normalized rows are all-gathered, so every
// anchor sees the 2N - 2 negatives of the global batch as in one process.
// Each rank computes only its own 2n anchors' rows G_r (2n, 2N) of G (scaled
// by 1/(2n tau): its local mean loss L_r, and mean_r L_r = L); the gradient at
// the gathered rows, G_r^T U_r, is the adjoint of the gather: a reduce-scatter
// (sum) brings every rank the contributions of all ranks' anchors to its own
// rows, which is added to G_r U. A rank thus holds d(P L)/dz of its rows (as
// every data-parallel policy does; dist/data_parallel.hpp averages parameter
// gradients over the ranks). Keeping only the local block of the gathered
// gradient, or an allreduce in its place, are the bugs lightly #1528 and
// solo-learn #206 fixed; tests/dist checks P ranks against one process.
//
// `accuracy` is SimCLR's "contrastive accuracy": the fraction of the 2N
// anchors whose positive has a strictly larger similarity than every
// negative (a tie counts as a miss).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../dist/communicator.hpp"
#include "../ops/rows.hpp"

namespace ssl::loss {

struct nt_xent_config {
    double temperature = 0.5;  ///< tau > 0 (SimCLR: 0.5 on CIFAR-10, 0.1 on ImageNet with large batches)
    double eps = 1e-12;        ///< norm floor of the internal L2 normalization (as F.normalize)
};

template <class T = float>
struct nt_xent_result {
    double value = 0;         ///< mean loss over the 2N anchors (distributed: over this rank's 2n)
    tensor<T> grad_z1;        ///< dL/dz1, (N, D)
    tensor<T> grad_z2;        ///< dL/dz2, (N, D)
    std::size_t correct = 0;  ///< anchors (of 2N; distributed: of this rank's 2n) whose positive is ranked first
    double accuracy = 0;      ///< correct / (2N) (distributed: / (2n))
};

template <class T = float>
class nt_xent {
    static_assert(std::is_floating_point_v<T>, "ssl::loss::nt_xent<T> needs a floating-point T (float or double)");

public:
    using value_type = T;
    explicit nt_xent(const nt_xent_config& c = {}) : cfg_(c) {
        require<value_error>(std::isfinite(c.temperature) && c.temperature > 0,
                             "nt_xent: temperature must be finite and > 0, got ", c.temperature);
        require<value_error>(c.eps > 0, "nt_xent: eps must be > 0, got ", c.eps);
    }
    const nt_xent_config& config() const noexcept { return cfg_; }

    /// This rank's pairs z1, z2 (n, D) of a global batch of n x P pairs spread
    /// over the ranks of `comm` (null or one rank: the one-process loss below).
    nt_xent_result<T> operator()(const tensor<T>& z1, const tensor<T>& z2, dist::communicator* comm) const {
        if (!comm || comm->size() == 1) return (*this)(z1, z2);
        return distributed(z1, z2, *comm);
    }

    /// z1, z2: (N, D) projections of the two views, N >= 2.
    nt_xent_result<T> operator()(const tensor<T>& z1, const tensor<T>& z2) const {
        check_rank(z1, 2, "nt_xent", "(N, D) for z1");
        check_rank(z2, 2, "nt_xent", "(N, D) for z2");
        check_same_shape(z1, z2, "nt_xent (z1 vs z2)");
        const std::size_t n = z1.dim(0), d = z1.dim(1), m = 2 * n;
        require<shape_error>(n >= 2, "nt_xent: needs N >= 2 pairs (so that every anchor has negatives), got shape ",
                             z1.shape().str());
        require<shape_error>(d >= 1, "nt_xent: empty feature dimension, shape ", z1.shape().str());
        const double tau = cfg_.temperature;
        const auto E = static_cast<Eigen::Index>(m);

        // Normalized rows U (2N, D) and their norms ||z_a||.
        matrix<T> U(E, static_cast<Eigen::Index>(d));
        std::vector<double> norm(m);
        for (std::size_t a = 0; a < m; ++a) {
            const T* src = a < n ? z1.data() + a * d : z2.data() + (a - n) * d;
            norm[a] = ops::normalize_row(src, U.data() + a * d, d, cfg_.eps);
        }

        // S = U U^T and, row by row, G = dL/dS. Row blocks run in parallel.
        matrix<T> S(E, E);
        std::vector<double> row_loss(m);
        std::vector<unsigned char> row_hit(m);
        const std::size_t rows_per_task = std::max<std::size_t>(16, (m + 4 * num_threads() - 1) / (4 * num_threads()));
        const std::size_t tasks = (m + rows_per_task - 1) / rows_per_task;
        const double gscale = 1.0 / (static_cast<double>(m) * tau);
        parallel_for(tasks, [&](std::size_t t, std::size_t) {
            const std::size_t r0 = t * rows_per_task, r1 = std::min(m, r0 + rows_per_task);
            const auto nr = static_cast<Eigen::Index>(r1 - r0), e0 = static_cast<Eigen::Index>(r0);
            S.middleRows(e0, nr).noalias() = U.middleRows(e0, nr) * U.transpose();
            std::vector<double> p(m);
            for (std::size_t a = r0; a < r1; ++a) {
                T* s = S.data() + a * m;  // row a; overwritten with G_a
                const std::size_t pos = (a + n) % m;
                double mx = -INFINITY, neg_mx = -INFINITY;
                for (std::size_t b = 0; b < m; ++b) {
                    if (b == a) continue;
                    mx = std::max(mx, static_cast<double>(s[b]));
                    if (b != pos) neg_mx = std::max(neg_mx, static_cast<double>(s[b]));
                }
                row_hit[a] = static_cast<double>(s[pos]) > neg_mx;
                double se = 0;
                for (std::size_t b = 0; b < m; ++b) {
                    p[b] = b == a ? 0.0 : std::exp((s[b] - mx) / tau);
                    se += p[b];
                }
                const double lse = mx / tau + std::log(se);
                row_loss[a] = lse - s[pos] / tau;
                for (std::size_t b = 0; b < m; ++b)
                    s[b] = static_cast<T>((p[b] / se - (b == pos ? 1.0 : 0.0)) * gscale);
                s[a] = T(0);
            }
        });

        // dU = (G + G^T) U, then back through the normalization.
        matrix<T> dU(E, static_cast<Eigen::Index>(d));
        parallel_for(tasks, [&](std::size_t t, std::size_t) {
            const std::size_t r0 = t * rows_per_task, r1 = std::min(m, r0 + rows_per_task);
            const auto nr = static_cast<Eigen::Index>(r1 - r0), e0 = static_cast<Eigen::Index>(r0);
            dU.middleRows(e0, nr).noalias() = S.middleRows(e0, nr) * U;
            dU.middleRows(e0, nr).noalias() += S.middleCols(e0, nr).transpose() * U;
        });

        nt_xent_result<T> r;
        r.grad_z1 = tensor<T>(z1.shape());
        r.grad_z2 = tensor<T>(z2.shape());
        double total = 0;
        for (std::size_t a = 0; a < m; ++a) {
            total += row_loss[a];
            r.correct += row_hit[a];
            T* o = a < n ? r.grad_z1.data() + a * d : r.grad_z2.data() + (a - n) * d;
            ops::normalize_row_backward(U.data() + a * d, dU.data() + a * d, o, d, norm[a], cfg_.eps);
        }
        require<value_error>(std::isfinite(total), "nt_xent: the loss is not finite (z1 or z2 contain NaN or Inf)");
        r.value = total / static_cast<double>(m);
        r.accuracy = static_cast<double>(r.correct) / static_cast<double>(m);
        return r;
    }

private:
    nt_xent_result<T> distributed(const tensor<T>& z1, const tensor<T>& z2, dist::communicator& comm) const {
        check_rank(z1, 2, "nt_xent", "(n, D) for z1");
        check_rank(z2, 2, "nt_xent", "(n, D) for z2");
        check_same_shape(z1, z2, "nt_xent (z1 vs z2)");
        const std::size_t n = z1.dim(0), d = z1.dim(1), m = 2 * n, P = static_cast<std::size_t>(comm.size());
        const std::size_t big = m * P, me = static_cast<std::size_t>(comm.rank());
        // every rank must agree on the shapes before the gather
        const std::int64_t shape_here[2] = {static_cast<std::int64_t>(n), static_cast<std::int64_t>(d)};
        dist::require_same_on_ranks(comm, shape_here, "nt_xent", [](std::span<const std::int64_t> s) {
            return ssl::detail::cat(s[0], " pairs of dimension ", s[1]);
        });
        require<shape_error>(n * P >= 2 && d >= 1, "nt_xent over ", P, " ranks: needs N >= 2 pairs in all and D >= 1, got ",
                             n, " x ", d, " per rank");
        const double tau = cfg_.temperature;
        using rmat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        // local rows [z1; z2] normalized, then all ranks' rows, rank-major:
        // row q of Ua is rank q / 2n's local row q % 2n
        rmat U(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(d));
        std::vector<double> norm(m);
        for (std::size_t a = 0; a < m; ++a) {
            const T* src = a < n ? z1.data() + a * d : z2.data() + (a - n) * d;
            norm[a] = ops::normalize_row(src, U.data() + a * d, d, cfg_.eps);
        }
        rmat Ua(static_cast<Eigen::Index>(big), static_cast<Eigen::Index>(d));
        comm.allgather(std::span<const T>(U.data(), m * d), std::span<T>(Ua.data(), big * d));
        // this rank's anchors against every row: S (2n, 2nP), overwritten by G_r
        rmat S = U * Ua.transpose();
        std::vector<double> row_loss(m);
        std::vector<unsigned char> row_hit(m);
        const double gscale = 1.0 / (static_cast<double>(m) * tau);
        parallel_for(m, [&](std::size_t a, std::size_t) {
            T* s = S.data() + a * big;
            const std::size_t self = me * m + a, pos = me * m + (a + n) % m;
            double mx = -INFINITY, neg_mx = -INFINITY;
            for (std::size_t b = 0; b < big; ++b) {
                if (b == self) continue;
                mx = std::max(mx, static_cast<double>(s[b]));
                if (b != pos) neg_mx = std::max(neg_mx, static_cast<double>(s[b]));
            }
            row_hit[a] = static_cast<double>(s[pos]) > neg_mx;
            std::vector<double> p(big);
            double se = 0;
            for (std::size_t b = 0; b < big; ++b) {
                p[b] = b == self ? 0.0 : std::exp((s[b] - mx) / tau);
                se += p[b];
            }
            row_loss[a] = mx / tau + std::log(se) - s[pos] / tau;
            for (std::size_t b = 0; b < big; ++b) s[b] = static_cast<T>((p[b] / se - (b == pos ? 1.0 : 0.0)) * gscale);
            s[self] = T(0);
        });
        // d L_r / d Ua = G_r^T U (to every rank's rows), reduce-scattered; plus G_r Ua at our rows
        rmat dUa = S.transpose() * U;
        rmat dU(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(d));
        comm.reduce_scatter_sum(std::span<const T>(dUa.data(), big * d), std::span<T>(dU.data(), m * d));
        dU.noalias() += S * Ua;

        nt_xent_result<T> r;
        r.grad_z1 = tensor<T>(z1.shape());
        r.grad_z2 = tensor<T>(z2.shape());
        double total = 0;
        for (std::size_t a = 0; a < m; ++a) {
            total += row_loss[a];
            r.correct += row_hit[a];
            T* o = a < n ? r.grad_z1.data() + a * d : r.grad_z2.data() + (a - n) * d;
            ops::normalize_row_backward(U.data() + a * d, dU.data() + a * d, o, d, norm[a], cfg_.eps);
        }
        // a non-finite loss is reported (the trainer stops every rank), not thrown
        // here: the other ranks would wait in their next collective
        r.value = total / static_cast<double>(m);
        r.accuracy = static_cast<double>(r.correct) / static_cast<double>(m);
        return r;
    }

    nt_xent_config cfg_;
};

}  // namespace ssl::loss
