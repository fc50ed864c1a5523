#pragma once
// The loss of PIRL (Misra & van der Maaten, "Self-Supervised Learning of
// Pretext-Invariant Representations", CVPR 2020, eq. 3-5), against a memory
// bank of the images' embeddings (target::memory_bank):
//   L = lambda L_NCE(m_I, g(v_It)) + (1 - lambda) L_NCE(m_I, f(v_I))       (5)
// m_I the memory of image I, the positive; f(v_I) the image's 128-d unit
// embedding, g(v_It) its jigsaw tiles' (both L2-normalised); L_NCE the NCE of
// eq. 3-4 with s(a, b) = cos(a, b) / tau and m negatives m_I' from the bank:
//   L_NCE(m_I, v) = -log h(m_I, v) - sum_{I'} log(1 - h(m_I', v)),
//   h(m, v) = P / (P + m / N),  P = exp(m . v / tau) / Z,
// which is InstDisc's nce<T> (loss/nce.hpp) without its proximal term.
//
// Contract of pirl_nce::compute(online, targets, views): online[0] = f(v_I)
// (N, d), online[1] = g(v_It) (N, d) (head::group makes one row per sample);
// targets = the memory bank's batch (positives = the batch's ids, m noise
// indices per sample). Gradients for both views: (1 - lambda) dL_NCE/df and
// lambda dL_NCE/dg. Metrics: nce_f, nce_g (the two terms), pos_sim (mean
// m_I . f(v_I), as instance_nce's) and pos_sim_g (mean m_I . g(v_It): the
// invariance PIRL trains for).
//
// Choices:
// - One Z for both terms ("loss.z"), estimated from f: the bank holds f's and
//   g must land where f does; with a Z of its own g settles opposite its
//   memories (mean m_I . g(v_It) -0.7 against +0.9 with f's Z, 10 epochs on
//   512 Fashion-MNIST images, every-batch Z). VISSL shares one Z as well.
// - Z follows nce_config::z's schedule (loss/nce.hpp; until_filled by
//   default: re-estimated until every bank row holds a feature, then fixed).
// - No proximal term: PIRL has none.
// - Both terms score the same noise rows: one draw of negatives per image and
//   step, the paper's D_N.
// - The mixing is written once, pirl_nce_terms<T>: float for the policy,
//   double for gradient checks.
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/tensor.hpp"
#include "../target_update/memory_bank.hpp"
#include "nce.hpp"

namespace ssl::loss {

struct pirl_nce_config {
    double temperature = 0.07;                ///< tau (the paper: 0.07)
    double lambda = 0.5;                      ///< weight of the tiles' term L_NCE(m_I, g(v_It)) (the paper: 0.5)
    z_estimate z = z_estimate::until_filled;  ///< when Z is estimated (from f, for both terms)
};

template <class T = float>
struct pirl_nce_result {
    double value = 0;  ///< lambda nce_g + (1 - lambda) nce_f
    double nce_f = 0, nce_g = 0;
    double pos_sim_f = 0, pos_sim_g = 0;  ///< mean m_I . f(v_I), mean m_I . g(v_It)
    tensor<T> grad_f, grad_g;             ///< dL/df, dL/dg, (N, d) each
};

/// Eq. 5 for features f, g (N, d) against the bank (M, d): positives are the
/// bank rows of the N samples, noise N * m indices (row b's at [b m, (b+1) m)).
/// z: Z of both terms, estimated from f and written back when <= 0 (nce<T>'s
/// rule); a constant in the gradient.
template <class T>
pirl_nce_result<T> pirl_nce_terms(const nce<T>& loss, double lambda, const tensor<T>& f, const tensor<T>& g,
                                  const tensor<T>& bank, std::span<const std::size_t> positives,
                                  std::span<const std::uint32_t> noise, double& z) {
    require<value_error>(std::isfinite(lambda) && lambda >= 0 && lambda <= 1, "pirl_nce: lambda must be in [0, 1], got ",
                         lambda);
    require<value_error>(loss.config().proximal == 0, "pirl_nce: PIRL's NCE has no proximal term, got lambda_prox ",
                         loss.config().proximal);
    require<shape_error>(f.shape() == g.shape(), "pirl_nce: the image's embedding has shape ", f.shape().str(),
                         " but the tiles' has ", g.shape().str(), " (one row per sample each)");
    auto rf = loss(f, bank, positives, noise, z);  // estimates Z from f when z <= 0
    auto rg = loss(g, bank, positives, noise, z);
    pirl_nce_result<T> r;
    r.nce_f = rf.value;
    r.nce_g = rg.value;
    r.value = lambda * rg.value + (1 - lambda) * rf.value;
    r.pos_sim_f = rf.mean_positive_similarity;
    r.pos_sim_g = rg.mean_positive_similarity;
    r.grad_f = std::move(rf.grad);
    r.grad_g = std::move(rg.grad);
    const T wf = static_cast<T>(1 - lambda), wg = static_cast<T>(lambda);
    for (auto& x : r.grad_f) x *= wf;
    for (auto& x : r.grad_g) x *= wg;
    return r;
}

/// PIRL's loss as a method-level policy on the memory bank's batch.
class pirl_nce {
public:
    /// dist/data_parallel.hpp: rows are independent given Z, Z's estimate (from
    /// f) is averaged over the ranks, the bank is replicated (target::memory_bank).
    static constexpr bool data_parallel = true;
    using config_type = pirl_nce_config;
    explicit pirl_nce(const pirl_nce_config& c = {})
        : cfg_(c), loss_({.temperature = c.temperature, .proximal = 0, .z = c.z}), z_({1}, 0.0) {
        require<value_error>(std::isfinite(c.lambda) && c.lambda >= 0 && c.lambda <= 1,
                             "pirl_nce: lambda must be in [0, 1], got ", c.lambda);
    }
    const pirl_nce_config& config() const noexcept { return cfg_; }
    /// NCE's normalizing constant, both terms' (0 until a batch has estimated it).
    double z() const noexcept { return z_[0]; }

    loss_output<float> compute(const std::vector<tensor<float>>& online, const target::bank_targets<float>& t,
                               const view_batch<float>& vb) {
        require(online.size() == 2, "pirl_nce: needs 2 views (the image's f(v_I), the tiles' g(v_It)), got ",
                online.size());
        require<shape_error>(vb.views.size() != 2 || vb.spec(1).branch == 1,
                             "pirl_nce: view 1 must be the tiles (branch 1), got branch ", vb.spec(1).branch);
        require(t.bank != nullptr, "pirl_nce: the targets have no memory bank");
        require(t.negatives > 0, "pirl_nce: the memory bank drew no noise samples (memory_bank_config.negatives "
                "is 0); set negatives > 0");
        if (cfg_.z == z_estimate::every_batch || (cfg_.z == z_estimate::until_filled && !t.filled)) z_[0] = 0;
        if (dist::communicator* c = dist::active(); c && !(z_[0] > 0)) {  // the global batch's estimate
            const double local = loss_.estimate_z(online[0], *t.bank, t.noise);
            z_[0] = c->sum(local) / static_cast<double>(c->size());
            if (!(std::isfinite(z_[0]) && z_[0] > 0)) {  // the same on every rank: all report it, none re-estimates
                z_[0] = 0;
                const double nan = std::numeric_limits<double>::quiet_NaN();
                return {nan,
                        {tensor<float>::zeros(online[0].shape()), tensor<float>::zeros(online[1].shape())},
                        {{"nce_f", nan}, {"nce_g", nan}, {"pos_sim", nan}, {"pos_sim_g", nan}}};
            }
        }
        auto r = pirl_nce_terms(loss_, cfg_.lambda, online[0], online[1], *t.bank, t.ids, t.noise, z_[0]);
        return {r.value,
                {std::move(r.grad_f), std::move(r.grad_g)},
                {{"nce_f", r.nce_f}, {"nce_g", r.nce_g}, {"pos_sim", r.pos_sim_f}, {"pos_sim_g", r.pos_sim_g}}};
    }
    template <class F>
    void for_each_state(F&& f, const std::string& prefix) {
        f(join_name(prefix, "z"), z_);
    }

private:
    pirl_nce_config cfg_;
    nce<float> loss_;
    tensor<double> z_;  // (1,)
};

}  // namespace ssl::loss
