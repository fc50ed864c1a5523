#pragma once
// The losses of InstDisc (Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning
// via Non-Parametric Instance Discrimination", CVPR 2018) against a memory
// bank V (N, d) of unit rows (target_update/memory_bank.hpp), a constant (no
// gradient). f_b (B, d): the batch's online features (the head's L2-normalized
// output); i_b: their instance indices; tau: the temperature.
//
// nce<T>, noise-contrastive estimation, eq. (5)-(7), with j_bk the m noise
// indices of sample b (drawn by the memory bank) and P_n = 1 / N:
//   h(i, f) = P(i | f) / (P(i | f) + m P_n),   P(i | f) = exp(v_i . f / tau) / Z
//   l_b = -log h(i_b, f_b) - sum_k log(1 - h(j_bk, f_b)) + lambda ||f_b - v_{i_b}||^2
//   dL/df_b = [(h_pos - 1) v_{i_b} + sum_k h_k v_{j_bk}] / (tau B) + 2 lambda (f_b - v_{i_b}) / B
// with L = mean_b l_b. Passed z <= 0, Z = N mean_{b,k} exp(v_{j_bk} . f_b / tau)
// is estimated from this batch (eq. 7) and written back; Z is a constant in
// the gradient, also on the batch that estimates it.
// nonparametric_softmax<T>, eq. (2), exact over all N rows:
//   l_b = -log( exp(v_{i_b} . f_b / tau) / sum_j exp(v_j . f_b / tau) ) + lambda ||f_b - v_{i_b}||^2
//   dL/df_b = [sum_j p_bj v_j - v_{i_b}] / (tau B) + 2 lambda (f_b - v_{i_b}) / B.
// The proximal term (sec. 3.3, eq. 8-9) holds f near the instance's memory
// v_{i_b} (for unit rows, 2 lambda (1 - f . v)) while the bank's momentum
// update moves the memory toward f: the paper's proximal-point iteration.
// lambda: 30 for nce (the paper's), 0 for the softmax; 0 turns it off.
//
// Choices:
//  - Z from the noise terms only (the paper's; the authors' code adds the positive).
//  - The proximal term only where has_memory[i_b] (the bank's flags): a row is
//    random before its first visit, and a pull of 2 lambda = 60 toward it teaches noise.
//  - instance_nce owns Z ("loss.z", checkpointed) and by default re-estimates it
//    every batch until every row holds a feature (z_estimate::until_filled): a Z
//    from the random bank saturates the noise terms later (bench/README.md, InstDisc).
//  - nce streams each sample's noise rows, 64 at a time and prefetched: no
//    (B, m, d) tensor; scores in T, loss sums in double.
//  - The softmax walks the bank in blocks (online log-sum-exp: at most B x block
//    scores alive) over a fixed split merged in order: thread-count independent.
// Policies (one view, target::bank_targets<float>): instance_nce = nce<float>
// (ssl::instdisc), instance_softmax = nonparametric_softmax<float> (ssl::instdisc_full_softmax).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../target_update/memory_bank.hpp"

namespace ssl::loss {

/// When instance_nce estimates NCE's normalizing constant Z.
enum class z_estimate {
    first_batch,   ///< once, from the first batch, then fixed (the paper's text)
    until_filled,  ///< from every batch until every instance has a memory, then fixed
    every_batch    ///< from every batch, for the whole run
};

struct nce_config {
    double temperature = 0.07;  ///< tau (the paper: 0.07; 0.1 for CIFAR-size images)
    double proximal = 30;       ///< lambda of the proximal term (sec. 3.3); 0: off
    z_estimate z = z_estimate::until_filled;  ///< when instance_nce estimates Z
};

struct nonparametric_softmax_config {
    double temperature = 0.07;  ///< tau
    double proximal = 0;        ///< lambda of the proximal term (the paper pairs it with NCE)
};

template <class T = float>
struct nce_result {
    double value = 0;               ///< mean over the batch of the whole loss
    double nce = 0;                 ///< its NCE part (mean)
    double proximal = 0;            ///< its proximal part lambda ||f - v||^2 (mean)
    double z = 0;                   ///< the normalizing constant used
    double mean_positive_similarity = 0;  ///< mean_b v_{i_b} . f_b
    tensor<T> grad;                 ///< dL/df, (B, d)
};

template <class T = float>
struct nonparametric_softmax_result {
    double value = 0;     ///< mean over the batch of the whole loss
    double nll = 0;       ///< its -log P(i | f) part (mean)
    double proximal = 0;  ///< its proximal part (mean)
    double mean_positive_similarity = 0;
    tensor<T> grad;       ///< dL/df, (B, d)
};

namespace detail {

template <class T>
using vec_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

template <class T>
inline T dot(const T* a, const T* b, std::size_t d) noexcept {
    return vec_map<T>(a, static_cast<Eigen::Index>(d)).dot(vec_map<T>(b, static_cast<Eigen::Index>(d)));
}

inline void prefetch_bytes(const void* p, std::size_t bytes) noexcept {
#if defined(__GNUC__)
    const char* c = static_cast<const char*>(p);
    for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 1);
#else
    (void)p;
    (void)bytes;
#endif
}

inline double softplus(double x) noexcept { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
inline double sigmoid(double x) noexcept {
    if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1.0 + e);
}

template <class T>
void check_bank_inputs(const char* who, const tensor<T>& f, const tensor<T>& bank, std::span<const std::size_t> pos) {
    check_rank(f, 2, who, "(B, d) for the features");
    check_rank(bank, 2, who, "(N, d) for the memory bank");
    require<shape_error>(f.dim(1) == bank.dim(1), who, ": features of shape ", f.shape().str(),
                         " against a bank of shape ", bank.shape().str(), " (the widths differ)");
    require<shape_error>(f.dim(0) >= 1 && f.dim(1) >= 1, who, ": empty features, shape ", f.shape().str());
    require<shape_error>(pos.size() == f.dim(0), who, ": ", pos.size(), " instance ids for ", f.dim(0), " features");
    const std::size_t n = bank.dim(0);
    for (std::size_t i : pos)
        require<shape_error>(i < n, who, ": instance ", i, " is out of range for a bank of ", n, " rows");
}

template <class T>
void check_memory_flags(const char* who, const tensor<T>& bank, std::span<const std::uint8_t> has_memory) {
    require<shape_error>(has_memory.empty() || has_memory.size() == bank.dim(0), who, ": ", has_memory.size(),
                         " has-memory flags for a bank of ", bank.dim(0), " rows");
}

}  // namespace detail

template <class T = float>
class nce {
    static_assert(std::is_floating_point_v<T>, "ssl::loss::nce<T> needs a floating-point T (float or double)");

public:
    using value_type = T;
    static constexpr std::size_t chunk = 64;     ///< noise rows scored together
    static constexpr std::size_t prefetch = 32;  ///< rows fetched ahead of the one being scored

    explicit nce(const nce_config& c = {}) : cfg_(c) {
        require<value_error>(std::isfinite(c.temperature) && c.temperature > 0,
                             "nce: temperature must be finite and > 0, got ", c.temperature);
        require<value_error>(std::isfinite(c.proximal) && c.proximal >= 0,
                             "nce: the proximal weight lambda must be finite and >= 0, got ", c.proximal);
    }
    const nce_config& config() const noexcept { return cfg_; }

    /// Z = N mean_{b,k} exp(v_{j_bk} . f_b / tau) over the batch's noise.
    double estimate_z(const tensor<T>& f, const tensor<T>& bank, std::span<const std::uint32_t> noise) const {
        const std::size_t B = f.dim(0), d = f.dim(1), n = bank.dim(0), m = noise.size() / B;
        const double inv_tau = 1.0 / cfg_.temperature;
        std::vector<double> part(B);
        parallel_for(B, [&](std::size_t b, std::size_t) {
            const T* fb = f.data() + b * d;
            const std::uint32_t* nb = noise.data() + b * m;
            double s = 0;
            for (std::size_t k = 0; k < m; ++k) {
                if (k + prefetch < m)
                    detail::prefetch_bytes(bank.data() + std::size_t{nb[k + prefetch]} * d, d * sizeof(T));
                s += std::exp(static_cast<double>(detail::dot(bank.data() + std::size_t{nb[k]} * d, fb, d)) * inv_tau);
            }
            part[b] = s;
        });
        double total = 0;
        for (double s : part) total += s;
        return static_cast<double>(n) * total / static_cast<double>(B * m);
    }

    /// f (B, d) features, bank (N, d), positives: the B bank rows of the
    /// samples, noise: B * m indices (row b's at [b m, (b + 1) m)), z: the
    /// normalizing constant (estimated from this batch and written back when
    /// z <= 0 or not finite). has_memory (N flags, optional): the proximal
    /// term is applied to sample b only when has_memory[positives[b]] != 0,
    /// i.e. when its bank row holds an earlier feature of the instance (eq. 8
    /// compares with the previous iteration's feature; before the first
    /// visit the row is the random initialization). Empty: every row counts.
    nce_result<T> operator()(const tensor<T>& f, const tensor<T>& bank, std::span<const std::size_t> positives,
                             std::span<const std::uint32_t> noise, double& z,
                             std::span<const std::uint8_t> has_memory = {}) const {
        detail::check_bank_inputs("nce", f, bank, positives);
        detail::check_memory_flags("nce", bank, has_memory);
        const std::size_t B = f.dim(0), d = f.dim(1), n = bank.dim(0);
        require<shape_error>(!noise.empty() && noise.size() % B == 0, "nce: ", noise.size(),
                             " noise indices do not give each of the ", B,
                             " samples the same number (> 0) of noise samples");
        const std::size_t m = noise.size() / B;
        for (std::uint32_t j : noise)
            require<shape_error>(j < n, "nce: noise index ", j, " is out of range for a bank of ", n, " rows");
        if (!(z > 0) || !std::isfinite(z)) {
            z = estimate_z(f, bank, noise);
            require<value_error>(std::isfinite(z) && z > 0, "nce: the estimate of Z is ", z,
                                 " (features contain NaN or Inf, or the temperature is too small)");
        }
        const double tau = cfg_.temperature, inv_tau = 1.0 / tau, lambda = cfg_.proximal;
        // x = s / tau - c, c = log Z + log(m P_n) = log Z + log(m / N).
        const double c = std::log(z) + std::log(static_cast<double>(m) / static_cast<double>(n));
        const T inv_tau_t = static_cast<T>(inv_tau), c_t = static_cast<T>(c);
        const double gscale = 1.0 / static_cast<double>(B);

        nce_result<T> r;
        r.z = z;
        r.grad = tensor<T>({B, d});
        std::vector<double> loss_nce(B), loss_prox(B), pos_sim(B);
        using arr = Eigen::Array<T, Eigen::Dynamic, 1>;
        parallel_for(B, [&](std::size_t b, std::size_t) {
            const T* fb = f.data() + b * d;
            const T* vp = bank.data() + positives[b] * d;
            const std::uint32_t* nb = noise.data() + b * m;
            Eigen::Matrix<T, Eigen::Dynamic, 1> g = Eigen::Matrix<T, Eigen::Dynamic, 1>::Zero(static_cast<Eigen::Index>(d));
            arr x(static_cast<Eigen::Index>(chunk)), e(static_cast<Eigen::Index>(chunk)), h(static_cast<Eigen::Index>(chunk));
            double lb = 0;
            // the positive
            const double sp = static_cast<double>(detail::dot(vp, fb, d));
            const double xp = sp * inv_tau - c;
            lb += detail::softplus(-xp);
            const double cp = (detail::sigmoid(xp) - 1.0) * inv_tau;
            g += static_cast<T>(cp) * detail::vec_map<T>(vp, static_cast<Eigen::Index>(d));
            // the noise, `chunk` rows at a time
            for (std::size_t k0 = 0; k0 < m; k0 += chunk) {
                const std::size_t kn = std::min(chunk, m - k0);
                const auto K = static_cast<Eigen::Index>(kn);
                for (std::size_t k = 0; k < kn; ++k) {
                    if (k0 + k + prefetch < m)
                        detail::prefetch_bytes(bank.data() + std::size_t{nb[k0 + k + prefetch]} * d, d * sizeof(T));
                    x[static_cast<Eigen::Index>(k)] = detail::dot(bank.data() + std::size_t{nb[k0 + k]} * d, fb, d);
                }
                auto xs = x.head(K);
                xs = xs * inv_tau_t - c_t;
                // e = exp(-|x|); softplus(x) = max(x, 0) + log1p(e); sigmoid(x) = x >= 0 ? 1/(1+e) : e/(1+e)
                e.head(K) = (-xs.abs()).exp();
                lb += static_cast<double>((xs.max(T(0)) + e.head(K).log1p()).sum());
                h.head(K) = (xs >= T(0)).select(T(1) / (T(1) + e.head(K)), e.head(K) / (T(1) + e.head(K))) * inv_tau_t;
                for (std::size_t k = 0; k < kn; ++k)
                    g += h[static_cast<Eigen::Index>(k)] *
                         detail::vec_map<T>(bank.data() + std::size_t{nb[k0 + k]} * d, static_cast<Eigen::Index>(d));
            }
            // the proximal term lambda ||f - v_i||^2
            double prox = 0;
            if (lambda > 0 && (has_memory.empty() || has_memory[positives[b]] != 0)) {
                for (std::size_t j = 0; j < d; ++j) {
                    const double diff = static_cast<double>(fb[j]) - static_cast<double>(vp[j]);
                    prox += diff * diff;
                    g[static_cast<Eigen::Index>(j)] += static_cast<T>(2.0 * lambda * diff);
                }
                prox *= lambda;
            }
            T* o = r.grad.data() + b * d;
            for (std::size_t j = 0; j < d; ++j) o[j] = static_cast<T>(g[static_cast<Eigen::Index>(j)] * gscale);
            loss_nce[b] = lb;
            loss_prox[b] = prox;
            pos_sim[b] = sp;
        });
        for (std::size_t b = 0; b < B; ++b) {
            r.nce += loss_nce[b];
            r.proximal += loss_prox[b];
            r.mean_positive_similarity += pos_sim[b];
        }
        r.nce *= gscale;
        r.proximal *= gscale;
        r.mean_positive_similarity *= gscale;
        r.value = r.nce + r.proximal;
        require<value_error>(std::isfinite(r.value), "nce: the loss is not finite (the features contain NaN or Inf)");
        return r;
    }

private:
    nce_config cfg_;
};

template <class T = float>
class nonparametric_softmax {
    static_assert(std::is_floating_point_v<T>,
                  "ssl::loss::nonparametric_softmax<T> needs a floating-point T (float or double)");

public:
    using value_type = T;
    static constexpr std::size_t block = 1024;  ///< bank rows scored together
    static constexpr std::size_t parts = 64;    ///< at most this many contiguous parts of the bank

    explicit nonparametric_softmax(const nonparametric_softmax_config& c = {}) : cfg_(c) {
        require<value_error>(std::isfinite(c.temperature) && c.temperature > 0,
                             "nonparametric_softmax: temperature must be finite and > 0, got ", c.temperature);
        require<value_error>(std::isfinite(c.proximal) && c.proximal >= 0,
                             "nonparametric_softmax: the proximal weight lambda must be finite and >= 0, got ",
                             c.proximal);
    }
    const nonparametric_softmax_config& config() const noexcept { return cfg_; }

    /// f (B, d) features, bank (N, d), positives: the B bank rows of the
    /// samples; has_memory as for nce (the proximal term only for rows that
    /// hold an earlier feature; empty: all).
    nonparametric_softmax_result<T> operator()(const tensor<T>& f, const tensor<T>& bank,
                                               std::span<const std::size_t> positives,
                                               std::span<const std::uint8_t> has_memory = {}) const {
        detail::check_bank_inputs("nonparametric_softmax", f, bank, positives);
        detail::check_memory_flags("nonparametric_softmax", bank, has_memory);
        const std::size_t B = f.dim(0), d = f.dim(1), n = bank.dim(0);
        const auto EB = static_cast<Eigen::Index>(B), ED = static_cast<Eigen::Index>(d);
        const double tau = cfg_.temperature, lambda = cfg_.proximal;
        const T inv_tau = static_cast<T>(1.0 / tau);
        const std::size_t P = std::min(parts, (n + block - 1) / block);
        auto F = as_matrix(f);
        const_matrix_map<T> V(bank.data(), static_cast<Eigen::Index>(n), ED);

        // Per part p: running max mx (of s / tau), rescaled sum se and
        // weighted sum W = sum_j exp(s_j / tau - mx) v_j.
        std::vector<double> mx(P * B, -std::numeric_limits<double>::infinity()), se(P * B, 0.0);
        std::vector<matrix<T>> W(P);
        std::vector<matrix<T>> scratch(num_threads());
        parallel_for(P, [&](std::size_t p, std::size_t w) {
            const std::size_t r0 = p * n / P, r1 = (p + 1) * n / P;
            matrix<T>& S = scratch[w];
            if (S.rows() != EB || S.cols() != static_cast<Eigen::Index>(block)) S.resize(EB, static_cast<Eigen::Index>(block));
            matrix<T>& Wp = W[p];
            Wp.setZero(EB, ED);
            double* pm = mx.data() + p * B;
            double* ps = se.data() + p * B;
            for (std::size_t q0 = r0; q0 < r1; q0 += block) {
                const auto nb = static_cast<Eigen::Index>(std::min(block, r1 - q0));
                auto Vb = V.middleRows(static_cast<Eigen::Index>(q0), nb);
                auto Sb = S.leftCols(nb);
                Sb.noalias() = F * Vb.transpose();
                for (std::size_t b = 0; b < B; ++b) {
                    auto row = Sb.row(static_cast<Eigen::Index>(b)).array();
                    const double bmax = static_cast<double>(row.maxCoeff()) * static_cast<double>(inv_tau);
                    const double nm = std::max(pm[b], bmax);
                    const double scale = std::exp(pm[b] - nm);  // 0 on the first block
                    row = (row * inv_tau - static_cast<T>(nm)).exp();
                    ps[b] = ps[b] * scale + static_cast<double>(row.sum());
                    if (scale != 1.0) Wp.row(static_cast<Eigen::Index>(b)) *= static_cast<T>(scale);
                    pm[b] = nm;
                }
                Wp.noalias() += Sb * Vb;
            }
        });

        nonparametric_softmax_result<T> r;
        r.grad = tensor<T>({B, d});
        const double gscale = 1.0 / static_cast<double>(B);
        std::vector<double> acc(d);
        for (std::size_t b = 0; b < B; ++b) {
            double M = -std::numeric_limits<double>::infinity();
            for (std::size_t p = 0; p < P; ++p) M = std::max(M, mx[p * B + b]);
            double sum = 0;
            std::fill(acc.begin(), acc.end(), 0.0);
            for (std::size_t p = 0; p < P; ++p) {
                const double a = std::exp(mx[p * B + b] - M);
                sum += se[p * B + b] * a;
                const T* wr = W[p].data() + b * d;
                for (std::size_t j = 0; j < d; ++j) acc[j] += a * static_cast<double>(wr[j]);
            }
            const T* fb = f.data() + b * d;
            const T* vp = bank.data() + positives[b] * d;
            double sp = 0, prox = 0;
            const double lam = has_memory.empty() || has_memory[positives[b]] != 0 ? lambda : 0.0;
            for (std::size_t j = 0; j < d; ++j) sp += static_cast<double>(fb[j]) * vp[j];
            r.nll += M + std::log(sum) - sp / tau;
            r.mean_positive_similarity += sp;
            T* o = r.grad.data() + b * d;
            for (std::size_t j = 0; j < d; ++j) {
                const double diff = static_cast<double>(fb[j]) - static_cast<double>(vp[j]);
                prox += diff * diff;
                o[j] = static_cast<T>(((acc[j] / sum - vp[j]) / tau + 2.0 * lam * diff) * gscale);
            }
            r.proximal += lam * prox;
        }
        r.nll *= gscale;
        r.proximal *= gscale;
        r.mean_positive_similarity *= gscale;
        r.value = r.nll + r.proximal;
        require<value_error>(std::isfinite(r.value),
                             "nonparametric_softmax: the loss is not finite (the features contain NaN or Inf)");
        return r;
    }

private:
    nonparametric_softmax_config cfg_;
};

/// InstDisc's loss as a method-level policy: NCE of the single view's
/// features against the memory bank's positives and noise. It owns Z (state
/// "loss.z", checkpointed) and estimates it per config.z: until_filled
/// re-estimates while the batch says the bank is not yet full. Metrics: nce,
/// prox, pos_sim (mean cosine of a feature and its own memory).
class instance_nce {
public:
    /// dist/data_parallel.hpp: rows are independent given Z, and Z's estimate
    /// is averaged over the ranks (equal local batches: the global batch's mean).
    static constexpr bool data_parallel = true;
    using config_type = nce_config;
    explicit instance_nce(const nce_config& c = {}) : loss_(c), z_({1}, 0.0) {}
    const nce_config& config() const noexcept { return loss_.config(); }
    /// NCE's normalizing constant (0 until a batch has estimated it).
    double z() const noexcept { return z_[0]; }
    loss_output<float> compute(const std::vector<tensor<float>>& online, const target::bank_targets<float>& t,
                               const view_batch<float>&) {
        require(online.size() == 1, "instance_nce: needs exactly 1 view, got ", online.size());
        require(t.bank != nullptr, "instance_nce: the targets have no memory bank");
        require(t.negatives > 0, "instance_nce: the memory bank drew no noise samples (memory_bank_config.negatives "
                "is 0, which is for the full softmax); set negatives > 0 (the paper: 4096)");
        const z_estimate when = loss_.config().z;
        if (when == z_estimate::every_batch || (when == z_estimate::until_filled && !t.filled)) z_[0] = 0;
        if (dist::communicator* c = dist::active(); c && !(z_[0] > 0)) {
            const double local = loss_.estimate_z(online[0], *t.bank, t.noise);
            z_[0] = c->sum(local) / static_cast<double>(c->size());
            if (!(std::isfinite(z_[0]) && z_[0] > 0)) {  // the same on every rank: all report it, none re-estimates
                z_[0] = 0;
                const double nan = std::numeric_limits<double>::quiet_NaN();
                return {nan, {tensor<float>::zeros(online[0].shape())}, {{"nce", nan}, {"prox", nan}, {"pos_sim", nan}}};
            }
        }
        auto r = loss_(online[0], *t.bank, t.ids, t.noise, z_[0], t.has_memory);
        return {r.value,
                {std::move(r.grad)},
                {{"nce", r.nce}, {"prox", r.proximal}, {"pos_sim", r.mean_positive_similarity}}};
    }
    template <class F>
    void for_each_state(F&& f, const std::string& prefix) {
        f(join_name(prefix, "z"), z_);
    }

private:
    nce<float> loss_;
    tensor<double> z_;  // (1,)
};

/// InstDisc's exact non-parametric softmax (eq. 2) over the whole bank as a
/// method-level policy.
class instance_softmax {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp: rows independent, the bank replicated
    using config_type = nonparametric_softmax_config;
    explicit instance_softmax(const nonparametric_softmax_config& c = {}) : loss_(c) {}
    const nonparametric_softmax_config& config() const noexcept { return loss_.config(); }
    loss_output<float> compute(const std::vector<tensor<float>>& online, const target::bank_targets<float>& t,
                               const view_batch<float>&) const {
        require(online.size() == 1, "instance_softmax: needs exactly 1 view, got ", online.size());
        require(t.bank != nullptr, "instance_softmax: the targets have no memory bank");
        auto r = loss_(online[0], *t.bank, t.ids, t.has_memory);
        std::vector<std::pair<std::string, double>> metrics{{"nll", r.nll}, {"pos_sim", r.mean_positive_similarity}};
        if (loss_.config().proximal > 0) metrics.emplace_back("prox", r.proximal);
        return {r.value, {std::move(r.grad)}, std::move(metrics)};
    }

private:
    nonparametric_softmax<float> loss_;
};

}  // namespace ssl::loss
