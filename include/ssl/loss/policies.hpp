#pragma once
// Method-level loss policies (ssl::loss_policy concept): they receive the
// online outputs of every view, the target outputs (from the target update
// policy; empty for none) and the view batch (pretext labels, specs), and
// return the value and dL/d(online output) per view.
//   contrastive_pair       SimCLR: NT-Xent between the two views' projections
//                          (negatives from all ranks inside a dist::step_scope)
//   byol_pair              BYOL: cos(p0, sg(z1')) + cos(p1, sg(z0')), eq. 2
//                          symmetrised (the sum of both directions)
//   pretext_classification RotNet, Jigsaw: cross entropy on the pretext labels
#include <span>
#include <vector>

#include "../core/concepts.hpp"
#include "cosine.hpp"
#include "cross_entropy.hpp"
#include "nt_xent.hpp"

namespace ssl::loss {

class contrastive_pair {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp
    using config_type = nt_xent_config;
    explicit contrastive_pair(const nt_xent_config& c = {}) : loss_(c) {}
    const nt_xent_config& config() const noexcept { return loss_.config(); }
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>&) const {
        require(online.size() == 2, "contrastive_pair: needs exactly 2 views, got ", online.size());
        auto r = loss_(online[0], online[1], dist::active());
        return {r.value, {std::move(r.grad_z1), std::move(r.grad_z2)}, {{"pos_top1", 100.0 * r.accuracy}}};
    }

private:
    nt_xent<float> loss_;
};

class byol_pair {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp
    using config_type = cosine_config;
    explicit byol_pair(const cosine_config& c = {}) : loss_(c) {}
    const cosine_config& config() const noexcept { return loss_.config(); }
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>& targets,
                               const view_batch<float>&) const {
        require(online.size() == 2 && targets.size() == 2,
                "byol_pair: needs 2 online and 2 target outputs (an EMA target), got ", online.size(), " and ",
                targets.size());
        auto a = loss_(online[0], targets[1]);
        auto b = loss_(online[1], targets[0]);
        return {a.value + b.value,
                {std::move(a.grad_p), std::move(b.grad_p)},
                {{"cos", 0.5 * (a.mean_cosine + b.mean_cosine)}}};
    }

private:
    cosine<float> loss_;
};

class pretext_classification {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp
    using config_type = cross_entropy_config;
    explicit pretext_classification(const cross_entropy_config& c = {}) : loss_(c) {}
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>& vb) const {
        require(online.size() == 1, "pretext_classification: needs 1 view (pretext samples stacked), got ",
                online.size());
        const std::span<const std::int64_t> labels = vb.labels;
        auto r = loss_(online[0], labels);
        const double acc = 100.0 * static_cast<double>(r.correct) / static_cast<double>(labels.size());
        return {r.value, {std::move(r.grad)}, {{"pretext_top1", acc}}};
    }

private:
    cross_entropy<float> loss_;
};

}  // namespace ssl::loss
