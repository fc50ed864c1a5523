#pragma once
// Split-brain's loss (Zhang, Isola & Efros, "Split-Brain Autoencoders",
// CVPR 2017, eq. 3 and sec. 3.2): a cross entropy over quantized values for
// each half, summed. Half 1 classifies ab into Q_ab bins, half 2 L into Q_L
// bins, at the same R locations:
//
//   L = 1/R sum_r [ -log softmax(z_ab,r)[q_ab,r]  -  log softmax(z_L,r)[q_L,r] ]
//   dL/dz_ab,r = (softmax z_ab,r - onehot q_ab,r) / R, likewise for z_L,r
//
// Contract: one view; online[0] is (R, Q_ab + Q_L) logits (ab bins, then L
// bins: head::split_hypercolumns' layout); view_batch::soft_targets is
// (R, 2): q_ab and q_L as floats holding class indices (augment::
// split_brain_views makes them); an index outside its classes is a
// value_error. Metrics: ab_ce, l_ce (each half's mean cross entropy) and
// ab_top1, l_top1 (% of rows whose arg max is the target bin).
//
// Design choices, one line each:
//   - the two terms weigh 1 each, as the paper's sum of the halves' losses;
//   - hard targets without class rebalancing (the paper's split-brain loss);
//   - log-softmax with the max subtracted, in double per row.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/concepts.hpp"

namespace ssl::loss {

struct split_brain_ce_config {
    std::size_t ab_bins = 261;  ///< Q_ab: in-gamut ab bins (color::ab_gamut_bins().count())
    std::size_t l_bins = 100;   ///< Q_L: lightness bins
};

class split_brain_ce {
public:
    /// dist/data_parallel.hpp: a mean over rows that are independent, the same
    /// number per image (equal slices: the global batch's mean).
    static constexpr bool data_parallel = true;
    using config_type = split_brain_ce_config;
    explicit split_brain_ce(const config_type& c = {}) : cfg_(c) {
        require(c.ab_bins >= 2 && c.l_bins >= 2, "split_brain_ce: needs at least 2 bins per half, got ab ", c.ab_bins,
                ", L ", c.l_bins);
    }
    const config_type& config() const noexcept { return cfg_; }

    /// The loss of logits z (R, Q_ab + Q_L) against targets y (R, 2); grad (R, Q_ab + Q_L).
    template <class T>
    loss_output<T> operator()(const tensor<T>& z, const tensor<T>& y) const {
        const std::size_t Qa = cfg_.ab_bins, Ql = cfg_.l_bins, W = Qa + Ql;
        check_rank(z, 2, "split_brain_ce", "(rows, ab bins + L bins) logits");
        require<shape_error>(z.dim(1) == W, "split_brain_ce: logits ", z.shape().str(), " need ", Qa, " + ", Ql, " = ",
                             W, " columns (ab bins, then L bins)");
        require<shape_error>(y.rank() == 2 && y.dim(0) == z.dim(0) && y.dim(1) == 2, "split_brain_ce: targets ",
                             y.shape().str(), " do not fit logits ", z.shape().str(),
                             " (want (rows, 2): the ab bin and the L bin of each row)");
        const std::size_t R = z.dim(0);
        require<shape_error>(R > 0, "split_brain_ce: no rows");
        loss_output<T> out;
        tensor<T> g(z.shape());
        double ce[2] = {0, 0};
        std::size_t top[2] = {0, 0};
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t part = 0; part < 2; ++part) {  // 0: ab, 1: L
                const std::size_t Q = part == 0 ? Qa : Ql, off = part == 0 ? 0 : Qa;
                const double yv = static_cast<double>(y[r * 2 + part]);
                require(yv >= 0 && yv < static_cast<double>(Q) && yv == std::floor(yv), "split_brain_ce: row ", r,
                        " has ", part == 0 ? "ab" : "L", " target ", yv, ", not a class index in 0..", Q - 1);
                const auto q = static_cast<std::size_t>(yv);
                const T* zr = z.data() + r * W + off;
                T* gr = g.data() + r * W + off;
                double mx = -INFINITY;
                std::size_t am = 0;
                for (std::size_t k = 0; k < Q; ++k) {
                    mx = std::max(mx, static_cast<double>(zr[k]));
                    if (zr[k] > zr[am]) am = k;
                }
                double s = 0;
                for (std::size_t k = 0; k < Q; ++k) s += std::exp(static_cast<double>(zr[k]) - mx);
                const double lse = mx + std::log(s);
                ce[part] += lse - static_cast<double>(zr[q]);
                top[part] += am == q;
                for (std::size_t k = 0; k < Q; ++k)
                    gr[k] = static_cast<T>((std::exp(static_cast<double>(zr[k]) - lse) - (k == q ? 1.0 : 0.0)) /
                                           static_cast<double>(R));
            }
        const double Rd = static_cast<double>(R);
        out.value = (ce[0] + ce[1]) / Rd;
        out.grads.push_back(std::move(g));
        out.metrics = {{"ab_ce", ce[0] / Rd},
                       {"l_ce", ce[1] / Rd},
                       {"ab_top1", 100.0 * static_cast<double>(top[0]) / Rd},
                       {"l_top1", 100.0 * static_cast<double>(top[1]) / Rd}};
        return out;
    }

    /// The method-level policy: one view, targets in view_batch::soft_targets.
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>& vb) const {
        require(online.size() == 1, "split_brain_ce: needs 1 view, got ", online.size());
        require(vb.soft_targets.defined(), "split_brain_ce: the view batch has no soft_targets (the ab and L bins); "
                "use augment::split_brain_views");
        return (*this)(online[0], vb.soft_targets);
    }

private:
    config_type cfg_;
};

}  // namespace ssl::loss
