#pragma once
// Per-pixel binary cross entropy of "Learning Features by Watching Objects
// Move" (Pathak et al., CVPR 2017, sec. 4: the network predicts the
// moving-object mask of a single frame, a per-pixel foreground / background
// classification), on logits z and soft targets y in [0, 1]:
//
//   L = 1/R sum_r [ -p y_r log sigma(z_r) - (1 - y_r) log(1 - sigma(z_r)) ],  p = pos_weight
//   dL/dz_r = (p y_r (sigma(z_r) - 1) + (1 - y_r) sigma(z_r)) / R
//
// Contract: one view; online[0] is (R, 1) logits (head::hypercolumn with
// outputs 1: row c * N + i is grid cell c of image i); view_batch::soft_targets
// is (R, 1) in [0, 1] (augment::motion_views makes them). Metrics:
// pixel_acc (% of rows where the prediction sigma(z) > 1/2 agrees with y > 1/2)
// and iou (of the predicted and target foreground over the batch, %).
//
// Design choices, one line each:
//   - soft targets: a grid cell half covered by the object has y = 0.5;
//   - pos_weight (default 1, the paper's plain cross entropy) lets a user
//     weigh the rarer foreground up;
//   - log sigma(z) = -softplus(-z), computed stably in double.
#include <algorithm>
#include <cmath>

#include "../core/concepts.hpp"
#include "../dist/communicator.hpp"

namespace ssl::loss {

struct mask_bce_config {
    double pos_weight = 1.0;  ///< p: weight of the foreground term
};

class mask_bce {
public:
    /// dist/data_parallel.hpp: a mean over rows that are independent, the same
    /// number per image (equal slices: the global batch's mean).
    static constexpr bool data_parallel = true;
    using config_type = mask_bce_config;
    explicit mask_bce(const config_type& c = {}) : cfg_(c) {
        require(c.pos_weight > 0 && std::isfinite(c.pos_weight), "mask_bce: pos_weight must be > 0, got ",
                c.pos_weight);
    }
    const config_type& config() const noexcept { return cfg_; }

    template <class T>
    loss_output<T> operator()(const tensor<T>& z, const tensor<T>& y) const {
        require<shape_error>(z.rank() == 2 && z.dim(1) == 1 && z.dim(0) > 0, "mask_bce: logits must be (rows, 1), got ",
                             z.shape().str());
        require<shape_error>(y.shape() == z.shape(), "mask_bce: targets ", y.shape().str(), " do not match logits ",
                             z.shape().str());
        const std::size_t R = z.dim(0);
        const double p = cfg_.pos_weight;
        auto softplus = [](double v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); };
        loss_output<T> out;
        tensor<T> g(z.shape());
        double total = 0;
        std::size_t agree = 0, inter = 0, uni = 0;
        for (std::size_t r = 0; r < R; ++r) {
            const double zr = static_cast<double>(z[r]), yr = static_cast<double>(y[r]);
            require(yr >= 0 && yr <= 1, "mask_bce: target ", yr, " of row ", r, " is outside [0, 1]");
            const double sig = 1 / (1 + std::exp(-zr));
            total += p * yr * softplus(-zr) + (1 - yr) * softplus(zr);
            g[r] = static_cast<T>((p * yr * (sig - 1) + (1 - yr) * sig) / static_cast<double>(R));
            const bool pred = zr > 0, truth = yr > 0.5;
            agree += pred == truth, inter += pred && truth, uni += pred || truth;
        }
        out.value = total / static_cast<double>(R);
        out.grads.push_back(std::move(g));
        // data parallel: IoU is a ratio of the batch's totals, so the ranks' totals
        // are summed (the global batch's IoU on every rank, as one process's)
        double in = static_cast<double>(inter), un = static_cast<double>(uni);
        if (dist::communicator* c = dist::active()) in = c->sum(in), un = c->sum(un);
        out.metrics = {{"pixel_acc", 100.0 * static_cast<double>(agree) / static_cast<double>(R)},
                       {"iou", un > 0 ? 100.0 * in / un : 100.0}};
        return out;
    }

    /// The method-level policy: one view, targets in view_batch::soft_targets.
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>& vb) const {
        require(online.size() == 1, "mask_bce: needs 1 view, got ", online.size());
        require(vb.soft_targets.defined(), "mask_bce: the view batch has no soft_targets (the moving-object masks); "
                "use augment::motion_views");
        return (*this)(online[0], vb.soft_targets);
    }

private:
    config_type cfg_;
};

}  // namespace ssl::loss
