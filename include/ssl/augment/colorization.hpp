#pragma once
// Colorization's views and targets (Larsson, Maire & Shakhnarovich, CVPR 2017,
// "Colorization as a proxy task for visual understanding"): the network sees
// lightness only and predicts, at the centres of a G x G grid of the crop,
// the local hue and chroma histograms of the colour it cannot see.
//
//   crop  = random resized crop + horizontal flip of the sRGB image     (N, 3, S, S) in [0, 1]
//   view  = L(crop) / 100 - 0.5                                          (N, 1, S, S)
//   soft_targets row c * N + i = [y_H | y_C | w] of grid cell c of image i,
//     the (2r + 1)^2 window histograms (color/histogram.hpp, clipped at the
//     border) centred on pixel (gy * s + s / 2, gx * s + s / 2), s = S / G
//   eval_transform = resize + centre crop, then L / 100 - 0.5            (N, 1, S, S)
//
// Contract: images (N, C, H, W) in [0, 1], C = 3 (sRGB) or 1 (gray: a gray
// image, whose targets are all chroma 0 and teach nothing of colour, but
// whose L view is well defined, so grayscale sets can still be evaluated);
// S divisible by G.
//
// Design choices, one line each:
//   - no photometric jitter: it would change the colours the targets describe;
//   - lightness is CIE L* (the paper's input), centred by 0.5 and not scaled further;
//   - the crop keeps at least half the image (scale 0.5..1): small crops of
//     small images hold few colours;
//   - input outside [0, 1] (or NaN) is a value_error; what resampling leaves a
//     rounding error outside [0, 1] is clamped before the colour conversion.
#include <algorithm>
#include <cstdint>
#include <span>

#include "../color/histogram.hpp"
#include "../color/lab.hpp"
#include "../core/concepts.hpp"
#include "pipeline.hpp"

namespace ssl::augment {

struct colorization_views_config {
    std::size_t size = 32;        ///< S: crop height and width
    std::size_t grid = 8;         ///< G: target cells per side (S % G == 0)
    std::size_t bins = 8;         ///< hue bins = chroma bins
    std::size_t radius = 3;       ///< histogram window (2 radius + 1)^2
    double crop_min_scale = 0.5;  ///< smallest area fraction of the random crop
};

class colorization_views {
public:
    static constexpr const char* name = "colorization_views";
    using config_type = colorization_views_config;

    explicit colorization_views(const config_type& c = {}) : cfg_(c) {
        require(c.size > 0 && c.grid > 0 && c.size % c.grid == 0, "colorization_views: size ", c.size,
                " must be a positive multiple of grid ", c.grid);
        require(c.bins >= 2, "colorization_views: needs at least 2 bins");
        require(c.crop_min_scale > 0 && c.crop_min_scale <= 1, "colorization_views: crop_min_scale must be in (0, 1]");
        train_.add(random_resized_crop{.height = c.size, .width = c.size, .scale = {c.crop_min_scale, 1.0}});
        train_.add(horizontal_flip{.p = 0.5});
        eval_.add(resize{.shorter_side = c.size});
        eval_.add(center_crop{.height = c.size, .width = c.size});
    }
    const config_type& config() const noexcept { return cfg_; }
    std::size_t target_width() const noexcept { return 2 * cfg_.bins + 1; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        check_range(images);
        const tensor<float> rgb = as_rgb(train_.apply(images, ids, seed, epoch, 0));
        view_batch<float> vb;
        vb.views.push_back(lightness(rgb));
        vb.soft_targets = targets(rgb);
        return vb;
    }
    tensor<float> eval_transform(const tensor<float>& images) const {
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        check_range(images);
        return lightness(as_rgb(eval_.apply(images, ids, 0, 0, 0)));
    }

    /// (N, 2B + 1) per grid cell, rows c * N + i (see the header comment).
    tensor<float> targets(const tensor<float>& rgb) const {
        const std::size_t n = rgb.dim(0), G = cfg_.grid, s = cfg_.size / G, cells = G * G, W = 2 * cfg_.bins + 1;
        require<shape_error>(rgb.dim(2) == cfg_.size && rgb.dim(3) == cfg_.size, "colorization_views: crops ",
                             rgb.shape().str(), " are not ", cfg_.size, "x", cfg_.size);
        tensor<std::int64_t> loc({n, cells, 2});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t c = 0; c < cells; ++c) {
                loc[(i * cells + c) * 2] = static_cast<std::int64_t>((c / G) * s + s / 2);
                loc[(i * cells + c) * 2 + 1] = static_cast<std::int64_t>((c % G) * s + s / 2);
            }
        const auto h = color::local_hue_chroma_histograms(rgb, loc, {cfg_.bins, cfg_.radius, true});
        const std::size_t B = cfg_.bins;
        tensor<float> t({cells * n, W});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t c = 0; c < cells; ++c) {
                const std::size_t src = i * cells + c, dst = c * n + i;
                for (std::size_t k = 0; k < B; ++k) {
                    t[dst * W + k] = h.hue[src * B + k];
                    t[dst * W + B + k] = h.chroma[src * B + k];
                }
                t[dst * W + 2 * B] = h.hue_weight[src];
            }
        return t;
    }

    /// sRGB crops (N, 3, S, S) -> L / 100 - 0.5 (N, 1, S, S).
    static tensor<float> lightness(const tensor<float>& rgb) {
        const tensor<float> lab = color::srgb_to_lab(rgb);
        const std::size_t n = rgb.dim(0), hw = rgb.dim(2) * rgb.dim(3);
        tensor<float> v({n, 1, rgb.dim(2), rgb.dim(3)});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t q = 0; q < hw; ++q) v[i * hw + q] = lab[i * 3 * hw + q] / 100.0f - 0.5f;
        return v;
    }

private:
    /// Images must be in [0, 1]: a 0..255 image is a value_error, not a clamp.
    static void check_range(const tensor<float>& x) {
        for (std::size_t k = 0; k < x.numel(); ++k)
            require(x[k] >= 0.0f && x[k] <= 1.0f, "colorization_views: image value ", x[k], " at index ", k,
                    " is outside [0, 1] (images must be scaled to [0, 1], not 0..255)");
    }
    /// 1 channel -> gray sRGB (3 equal channels); values clamped to [0, 1].
    static tensor<float> as_rgb(const tensor<float>& x) {
        require<shape_error>(x.rank() == 4 && (x.dim(1) == 1 || x.dim(1) == 3),
                             "colorization_views: expected images (N, 1 or 3, H, W), got ", x.shape().str());
        const std::size_t n = x.dim(0), hw = x.dim(2) * x.dim(3), C = x.dim(1);
        tensor<float> o({n, 3, x.dim(2), x.dim(3)});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t ch = 0; ch < 3; ++ch) {
                const float* p = x.data() + (i * C + (C == 1 ? 0 : ch)) * hw;
                float* q = o.data() + (i * 3 + ch) * hw;
                for (std::size_t k = 0; k < hw; ++k) q[k] = std::clamp(p[k], 0.0f, 1.0f);
            }
        return o;
    }

    config_type cfg_;
    pipeline train_, eval_;
};

}  // namespace ssl::augment
