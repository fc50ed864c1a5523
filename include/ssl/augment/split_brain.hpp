#pragma once
// Split-brain views and targets (Zhang, Isola & Efros, "Split-Brain
// Autoencoders", CVPR 2017, sec. 3.2): the image in CIE Lab, whole; the
// network's half 1 sees L and predicts ab, half 2 sees ab and predicts L,
// each as a classification over quantized values at the cells of a grid.
//
//   crop  = random resized crop + horizontal flip of the sRGB image   (N, 3, S, S) in [0, 1]
//   view  = [L / 50 - 1, a / 100, b / 100] of the crop                (N, 3, S, S), channel 0 for half 1
//   soft_targets row c * N + i = [q_ab, q_L] of grid cell c = gy * G + gx
//     of image i: the class indices (as floats) of the cell's mean Lab
//     colour over its s x s pixels (s = S / G): q_ab = the in-gamut ab bin
//     (color::ab_gamut_bins(), 261 bins of the 10-unit grid), q_L = the
//     lightness bin (color::lightness_bins(l_bins), uniform on [0, 100])
//   eval_transform = resize + centre crop, then the Lab view            (N, 3, S, S)
//
// Contract: images (N, C, H, W) in [0, 1]. make_views needs colour (C = 3):
// a 1-channel (grey) image has a = b = 0 everywhere, so half 1 would have one
// target and half 2 a constant input; it is a value_error saying so.
// eval_transform takes C = 3, or C = 1 as a grey image (L from the grey
// value, a = b = 0), so a model trained on colour can embed grey sets.
// S divisible by G.
//
// Design choices, one line each:
//   - targets from the cell's mean Lab colour (the paper's downsampled
//     targets), at the grid the head reads (head/hypercolumn.hpp);
//   - hard targets (cross entropy over bins), no class rebalancing, as the
//     split-brain paper's classification loss;
//   - no photometric jitter: it would change the colours the targets describe;
//   - channels scaled to about [-1, 1] (L / 50 - 1, ab / 100); each half's
//     first convolution is followed by batch norm, so the scale is a detail;
//   - the crop keeps at least half the image (scale 0.5..1) by default, as
//     colorization's: small crops of small images hold few colours.
#include <algorithm>
#include <cstdint>
#include <span>

#include "../color/bins.hpp"
#include "../color/lab.hpp"
#include "../core/concepts.hpp"
#include "pipeline.hpp"

namespace ssl::augment {

struct split_brain_views_config {
    std::size_t size = 32;        ///< S: crop height and width
    std::size_t grid = 8;         ///< G: target cells per side (S % G == 0)
    std::size_t l_bins = 100;     ///< lightness bins (the paper: 100, width 1)
    double crop_min_scale = 0.5;  ///< smallest area fraction of the random crop
};

class split_brain_views {
public:
    static constexpr const char* name = "split_brain_views";
    using config_type = split_brain_views_config;

    explicit split_brain_views(const config_type& c = {}) : cfg_(c) {
        require(c.size > 0 && c.grid > 0 && c.size % c.grid == 0, "split_brain_views: size ", c.size,
                " must be a positive multiple of grid ", c.grid);
        require(c.l_bins >= 2, "split_brain_views: needs at least 2 lightness bins, got ", c.l_bins);
        require(c.crop_min_scale > 0 && c.crop_min_scale <= 1, "split_brain_views: crop_min_scale must be in (0, 1]");
        train_.add(random_resized_crop{.height = c.size, .width = c.size, .scale = {c.crop_min_scale, 1.0}});
        train_.add(horizontal_flip{.p = 0.5});
        eval_.add(resize{.shorter_side = c.size});
        eval_.add(center_crop{.height = c.size, .width = c.size});
    }
    const config_type& config() const noexcept { return cfg_; }
    /// Classes of each target: (in-gamut ab bins, lightness bins).
    std::size_t ab_classes() const { return color::ab_gamut_bins().count(); }
    std::size_t l_classes() const noexcept { return cfg_.l_bins; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        check(images, false);
        const tensor<float> lab = color::srgb_to_lab(clamp01(train_.apply(images, ids, seed, epoch, 0)));
        view_batch<float> vb;
        vb.views.push_back(scaled(lab));
        vb.soft_targets = targets(lab);
        return vb;
    }
    tensor<float> eval_transform(const tensor<float>& images) const {
        check(images, true);
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        tensor<float> x = clamp01(eval_.apply(images, ids, 0, 0, 0));
        if (x.dim(1) == 1) x = gray_to_rgb(x);
        return scaled(color::srgb_to_lab(x));
    }

    /// Lab crops (N, 3, S, S) -> (G * G * N, 2): [ab bin, L bin] of each
    /// cell's mean colour, rows c * N + i (see the header comment).
    tensor<float> targets(const tensor<float>& lab) const {
        require<shape_error>(lab.rank() == 4 && lab.dim(1) == 3 && lab.dim(2) == cfg_.size && lab.dim(3) == cfg_.size,
                             "split_brain_views: Lab crops ", lab.shape().str(), " are not (N, 3, ", cfg_.size, ", ",
                             cfg_.size, ")");
        const std::size_t n = lab.dim(0), G = cfg_.grid, s = cfg_.size / G, S = cfg_.size, hw = S * S;
        const auto& ab = color::ab_gamut_bins();
        const color::uniform_bins lb = color::lightness_bins(cfg_.l_bins);
        tensor<float> t({G * G * n, 2});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t gy = 0; gy < G; ++gy)
                for (std::size_t gx = 0; gx < G; ++gx) {
                    double m[3] = {0, 0, 0};
                    for (std::size_t ch = 0; ch < 3; ++ch)
                        for (std::size_t y = gy * s; y < (gy + 1) * s; ++y)
                            for (std::size_t x = gx * s; x < (gx + 1) * s; ++x)
                                m[ch] += static_cast<double>(lab[(i * 3 + ch) * hw + y * S + x]);
                    for (double& v : m) v /= static_cast<double>(s * s);
                    const std::size_t row = (gy * G + gx) * n + i;
                    t[row * 2] = static_cast<float>(ab.bin_of(m[1], m[2]));
                    t[row * 2 + 1] = static_cast<float>(lb.bin_of(std::clamp(m[0], 0.0, 100.0)));
                }
        return t;
    }

    /// Lab (N, 3, H, W) -> the network's input [L / 50 - 1, a / 100, b / 100].
    static tensor<float> scaled(const tensor<float>& lab) {
        const std::size_t n = lab.dim(0), hw = lab.dim(2) * lab.dim(3);
        tensor<float> v(lab.shape());
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t q = 0; q < hw; ++q) {
                v[(i * 3) * hw + q] = lab[(i * 3) * hw + q] / 50.0f - 1.0f;
                v[(i * 3 + 1) * hw + q] = lab[(i * 3 + 1) * hw + q] / 100.0f;
                v[(i * 3 + 2) * hw + q] = lab[(i * 3 + 2) * hw + q] / 100.0f;
            }
        return v;
    }

private:
    /// Shape and range: (N, 3, H, W) (or (N, 1, H, W) for evaluation) in [0, 1].
    static void check(const tensor<float>& x, bool eval) {
        require<shape_error>(x.rank() == 4 && (x.dim(1) == 3 || x.dim(1) == 1),
                             "split_brain_views: expected images (N, 3, H, W), got ", x.shape().str());
        require(eval || x.dim(1) == 3, "split_brain_views: 1-channel (grey) images have no colour: a and b are 0 "
                "everywhere, so the L -> ab half would have one target and the ab -> L half a constant input; "
                "split-brain trains on colour images (3 channels)");
        for (std::size_t k = 0; k < x.numel(); ++k)
            require(x[k] >= 0.0f && x[k] <= 1.0f, "split_brain_views: image value ", x[k], " at index ", k,
                    " is outside [0, 1] (images must be scaled to [0, 1], not 0..255)");
    }
    /// What resampling leaves a rounding error outside [0, 1] is clamped.
    static tensor<float> clamp01(const tensor<float>& x) {
        tensor<float> o(x.shape());
        for (std::size_t k = 0; k < x.numel(); ++k) o[k] = std::clamp(x[k], 0.0f, 1.0f);
        return o;
    }
    static tensor<float> gray_to_rgb(const tensor<float>& x) {
        const std::size_t n = x.dim(0), hw = x.dim(2) * x.dim(3);
        tensor<float> o({n, 3, x.dim(2), x.dim(3)});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t ch = 0; ch < 3; ++ch) std::copy(x.data() + i * hw, x.data() + (i + 1) * hw, o.data() + (i * 3 + ch) * hw);
        return o;
    }

    config_type cfg_;
    pipeline train_, eval_;
};

}  // namespace ssl::augment
