#pragma once
// Views and targets of "Learning Features by Watching Objects Move" (Pathak
// et al., CVPR 2017): one frame in, the moving-object mask of that frame out.
// The pseudo-mask travels as the image's last channel (the motion method's
// training set appends it, motion.hpp), so the geometric ops move it with
// the pixels exactly, and photometric ops touch the image channels only:
//
//   in    = [frame (C channels) | mask (1 channel, 0 / 1)]           (N, C + 1, H, W) in [0, 1]
//   crop  = random resized crop + horizontal flip of all C + 1 channels   (N, C + 1, S, S)
//   view  = normalize(colour jitter(crop[:C]))                       (N, C, S, S)
//   soft_targets row c * N + i = the mean of crop[C] over grid cell c = gy * G + gx
//     of image i (s x s pixels, s = S / G): the fraction of the cell that moves
//   eval_transform = resize + centre crop + normalize of the first C channels
//
// Contract: make_views takes C + 1 channels (the mask last), eval_transform C
// or C + 1 (the mask is dropped), values in [0, 1]; S divisible by G.
//
// Design choices, one line each:
//   - the mask rides in the image tensor: no second tensor through the data
//     layer, and every geometric op (bilinear crop resampling included) moves
//     it exactly as it moves the pixels;
//   - soft targets (the cell's moving fraction) rather than a thresholded
//     bit: the resampled mask is fractional at object edges anyway;
//   - brightness and contrast jitter only (p 0.8, 0.4 each): the frame's
//     colours say nothing of the mask, and the paper's training used standard
//     crops and flips of video frames;
//   - the crop keeps at least half the frame (scale 0.5..1): smaller crops of
//     small frames often hold no moving object at all.
#include <algorithm>
#include <cstdint>
#include <span>

#include "../core/concepts.hpp"
#include "color.hpp"
#include "pipeline.hpp"
#include "presets.hpp"

namespace ssl::augment {

struct motion_views_config {
    std::size_t size = 28;        ///< S: crop height and width
    std::size_t grid = 7;         ///< G: target cells per side (S % G == 0)
    std::size_t channels = 1;     ///< C: the frame's channels (1 or 3); the input has one more, the mask
    double crop_min_scale = 0.5;  ///< smallest area fraction of the random crop
    double jitter = 0.4;          ///< brightness and contrast jitter strength (0: none)
    // The segmentation that makes the pseudo-masks (video::segment_options),
    // kept here so a checkpoint (and --resume) rebuilds the same training set.
    std::size_t flow_window = 2;     ///< matching windows (2w + 1)^2
    std::size_t flow_search = 3;     ///< displacements in [-R, R]^2
    double motion_threshold = 0.75;  ///< residual motion in pixels per frame
    double min_area = 0.02;          ///< smallest kept component, fraction of the frame
    double min_texture = 0.15;       ///< windows flatter than this are not matched
};

class motion_views {
public:
    static constexpr const char* name = "motion_views";
    using config_type = motion_views_config;

    explicit motion_views(const config_type& c = {}) : cfg_(c) {
        require(c.size > 0 && c.grid > 0 && c.size % c.grid == 0, "motion_views: size ", c.size,
                " must be a positive multiple of grid ", c.grid);
        require(c.channels == 1 || c.channels == 3, "motion_views: channels must be 1 or 3, got ", c.channels);
        require(c.crop_min_scale > 0 && c.crop_min_scale <= 1, "motion_views: crop_min_scale must be in (0, 1]");
        require(c.jitter >= 0 && c.jitter < 1, "motion_views: jitter must be in [0, 1), got ", c.jitter);
        geometric_.add(random_resized_crop{.height = c.size, .width = c.size, .scale = {c.crop_min_scale, 1.0}});
        geometric_.add(horizontal_flip{.p = 0.5});
        if (c.jitter > 0) photometric_.add(color_jitter{.brightness = c.jitter, .contrast = c.jitter, .p = 0.8});
        photometric_.add(default_normalize(c.channels));
        eval_.add(resize{.shorter_side = c.size});
        eval_.add(center_crop{.height = c.size, .width = c.size});
        eval_.add(default_normalize(c.channels));
    }
    const config_type& config() const noexcept { return cfg_; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        const std::size_t C = cfg_.channels;
        check(images, false);
        const tensor<float> crop = geometric_.apply(images, ids, seed, epoch, 0);  // (N, C + 1, S, S)
        const std::size_t n = crop.dim(0), S = cfg_.size, hw = S * S;
        tensor<float> frame({n, C, S, S});
        for (std::size_t i = 0; i < n; ++i)
            std::copy_n(crop.data() + i * (C + 1) * hw, C * hw, frame.data() + i * C * hw);
        for (auto& v : frame) v = std::clamp(v, 0.0f, 1.0f);
        view_batch<float> vb;
        vb.views.push_back(photometric_.apply(frame, ids, seed, epoch, 1));
        vb.soft_targets = targets(crop);
        return vb;
    }

    tensor<float> eval_transform(const tensor<float>& images) const {
        check(images, true);
        const std::size_t C = cfg_.channels, n = images.dim(0), hw = images.dim(2) * images.dim(3);
        tensor<float> x = images;
        if (images.dim(1) == C + 1) {
            x = tensor<float>({n, C, images.dim(2), images.dim(3)});
            for (std::size_t i = 0; i < n; ++i)
                std::copy_n(images.data() + i * (C + 1) * hw, C * hw, x.data() + i * C * hw);
        }
        std::vector<std::size_t> ids(n);
        for (std::size_t i = 0; i < n; ++i) ids[i] = i;
        return eval_.apply(x, ids, 0, 0, 0);
    }

    /// Crops (N, C + 1, S, S) -> (G * G * N, 1): the mask's mean over each
    /// cell, rows c * N + i (see the header comment).
    tensor<float> targets(const tensor<float>& crop) const {
        const std::size_t C = cfg_.channels, S = cfg_.size, G = cfg_.grid, s = S / G, hw = S * S;
        require<shape_error>(crop.rank() == 4 && crop.dim(1) == C + 1 && crop.dim(2) == S && crop.dim(3) == S,
                             "motion_views: crops ", crop.shape().str(), " are not (N, ", C + 1, ", ", S, ", ", S, ")");
        const std::size_t n = crop.dim(0);
        tensor<float> t({G * G * n, 1});
        for (std::size_t i = 0; i < n; ++i) {
            const float* m = crop.data() + (i * (C + 1) + C) * hw;
            for (std::size_t gy = 0; gy < G; ++gy)
                for (std::size_t gx = 0; gx < G; ++gx) {
                    double sum = 0;
                    for (std::size_t y = gy * s; y < (gy + 1) * s; ++y)
                        for (std::size_t x = gx * s; x < (gx + 1) * s; ++x) sum += m[y * S + x];
                    t[(gy * G + gx) * n + i] = static_cast<float>(std::clamp(sum / static_cast<double>(s * s), 0.0, 1.0));
                }
        }
        return t;
    }

private:
    void check(const tensor<float>& x, bool eval) const {
        const std::size_t C = cfg_.channels;
        require<shape_error>(x.rank() == 4 && (x.dim(1) == C + 1 || (eval && x.dim(1) == C)), "motion_views: expected ",
                             eval ? "frames (N, C, H, W) or " : "", "frames with their mask as the last channel (N, ",
                             C + 1, ", H, W), got ", x.shape().str(),
                             eval ? "" : " (the motion method's training set appends the pseudo-masks: train on "
                                         "--data clips:DIR)");
        for (std::size_t k = 0; k < x.numel(); ++k)
            require(x[k] >= 0.0f && x[k] <= 1.0f, "motion_views: value ", x[k], " at index ", k,
                    " is outside [0, 1] (images must be scaled to [0, 1], not 0..255)");
    }

    config_type cfg_;
    pipeline geometric_, photometric_, eval_;
};

}  // namespace ssl::augment
