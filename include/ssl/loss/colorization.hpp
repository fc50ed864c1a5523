#pragma once
// Colorization's loss (Larsson, Maire & Shakhnarovich, ECCV 2016, sec. 3.2,
// eq. for the hue/chroma model; used as a proxy task in their CVPR 2017
// paper): KL divergence between the target histograms y and the predicted
// distributions softmax(z), per location, the hue term weighted by the
// window's mean chroma (hue means little where there is no colour):
//
//   L = 1/R sum_r [ KL(y_C,r || softmax z_C,r) + lambda_H w_r KL(y_H,r || softmax z_H,r) ]
//   KL(y || q) = sum_k y_k (log y_k - log q_k),  0 log 0 = 0
//   dL/dz_C,r = (softmax z_C,r - y_C,r) / R,  dL/dz_H,r = lambda_H w_r (softmax z_H,r - y_H,r) / R
//
// Contract: one view; online[0] is (R, 2B) logits (hue bins, then chroma
// bins: head::hypercolumn's layout); view_batch::soft_targets is (R, 2B + 1):
// y_H, y_C (rows summing to 1) and w (augment::colorization_views makes them).
// Metrics: the mean unweighted hue_kl and chroma_kl, and hue_top1 / chroma_top1
// (% of rows whose predicted mode is the target histogram's mode).
//
// Design choices, one line each:
//   - lambda_H = 5, the paper's; w = the window's mean chroma in [0, 1];
//   - the KL, not the cross entropy: the same gradient, but 0 at a perfect
//     prediction, so the logged value reads as a divergence;
//   - log-softmax with the max subtracted, in double per row.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/concepts.hpp"

namespace ssl::loss {

struct colorization_kl_config {
    std::size_t bins = 8;     ///< B: hue bins = chroma bins
    double hue_weight = 5.0;  ///< lambda_H
};

class colorization_kl {
public:
    /// dist/data_parallel.hpp: a mean over rows that are independent, the same
    /// number per image (equal slices: the global batch's mean).
    static constexpr bool data_parallel = true;
    using config_type = colorization_kl_config;
    explicit colorization_kl(const config_type& c = {}) : cfg_(c) {
        require(c.bins >= 2, "colorization_kl: needs at least 2 bins, got ", c.bins);
        require(c.hue_weight >= 0, "colorization_kl: hue_weight must be non-negative, got ", c.hue_weight);
    }
    const config_type& config() const noexcept { return cfg_; }

    /// The loss of logits z (R, 2B) against targets y (R, 2B + 1); grad (R, 2B).
    template <class T>
    loss_output<T> operator()(const tensor<T>& z, const tensor<T>& y) const {
        const std::size_t B = cfg_.bins;
        check_rank(z, 2, "colorization_kl", "(rows, 2 * bins) logits");
        require<shape_error>(z.dim(1) == 2 * B, "colorization_kl: logits ", z.shape().str(), " need 2 * ", B,
                             " = ", 2 * B, " columns (hue bins, then chroma bins)");
        require<shape_error>(y.rank() == 2 && y.dim(0) == z.dim(0) && y.dim(1) == 2 * B + 1,
                             "colorization_kl: targets ", y.shape().str(), " do not fit logits ", z.shape().str(),
                             " (want (rows, 2 * bins + 1): hue histogram, chroma histogram, hue weight)");
        const std::size_t R = z.dim(0);
        require<shape_error>(R > 0, "colorization_kl: no rows");
        loss_output<T> out;
        tensor<T> g(z.shape());
        double total = 0, kl_h = 0, kl_c = 0;
        std::size_t top_h = 0, top_c = 0;
        std::vector<double> q(B);
        for (std::size_t r = 0; r < R; ++r) {
            const double w = static_cast<double>(y[r * (2 * B + 1) + 2 * B]);
            for (std::size_t part = 0; part < 2; ++part) {  // 0 hue, 1 chroma
                const T* zr = z.data() + r * 2 * B + part * B;
                const T* yr = y.data() + r * (2 * B + 1) + part * B;
                T* gr = g.data() + r * 2 * B + part * B;
                double mx = -INFINITY;
                for (std::size_t k = 0; k < B; ++k) mx = std::max(mx, static_cast<double>(zr[k]));
                double s = 0;
                for (std::size_t k = 0; k < B; ++k) s += std::exp(static_cast<double>(zr[k]) - mx);
                const double lse = mx + std::log(s);
                double kl = 0;
                std::size_t am_z = 0, am_y = 0;
                for (std::size_t k = 0; k < B; ++k) {
                    const double logq = static_cast<double>(zr[k]) - lse, yk = static_cast<double>(yr[k]);
                    q[k] = std::exp(logq);
                    if (yk > 0) kl += yk * (std::log(yk) - logq);
                    if (zr[k] > zr[am_z]) am_z = k;
                    if (yr[k] > yr[am_y]) am_y = k;
                }
                const double scale = (part == 0 ? cfg_.hue_weight * w : 1.0) / static_cast<double>(R);
                for (std::size_t k = 0; k < B; ++k)
                    gr[k] = static_cast<T>(scale * (q[k] - static_cast<double>(yr[k])));
                if (part == 0) {
                    kl_h += kl;
                    top_h += am_z == am_y;
                    total += cfg_.hue_weight * w * kl;
                } else {
                    kl_c += kl;
                    top_c += am_z == am_y;
                    total += kl;
                }
            }
        }
        const double Rd = static_cast<double>(R);
        out.value = total / Rd;
        out.grads.push_back(std::move(g));
        out.metrics = {{"hue_kl", kl_h / Rd},
                       {"chroma_kl", kl_c / Rd},
                       {"hue_top1", 100.0 * static_cast<double>(top_h) / Rd},
                       {"chroma_top1", 100.0 * static_cast<double>(top_c) / Rd}};
        return out;
    }

    /// The method-level policy: one view, targets in view_batch::soft_targets.
    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>& vb) const {
        require(online.size() == 1, "colorization_kl: needs 1 view, got ", online.size());
        require(vb.soft_targets.defined(), "colorization_kl: the view batch has no soft_targets (the hue / chroma "
                "histograms); use augment::colorization_views");
        return (*this)(online[0], vb.soft_targets);
    }

private:
    config_type cfg_;
};

}  // namespace ssl::loss
