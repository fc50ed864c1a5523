#pragma once
// Learning features by watching objects move: Pathak, Girshick, Dollár,
// Darrell & Hariharan, CVPR 2017. Unsupervised motion segmentation of video
// gives each frame a pseudo-mask of its moving objects; a network learns to
// predict that mask from the single, still frame, so it must learn what
// objects look like:
//
//   L = 1/R sum_r BCE(sigma(z_r), m_r)     z = hypercolumn head on the trunk's taps, m = pseudo-mask
//                                           (loss/mask_bce.hpp)
//
// Parts: video::segment_clip (video/segment.hpp: block-matching flow, a
// robust affine camera fit, residual motion, agreement over neighbouring
// frames, connected components) makes the pseudo-masks once, before training
// (the paper's uNLC masks were also computed offline); motion_training_set
// appends them to the frames as a last channel; augment::motion_views
// (crop and flip move frame and mask together), head::hypercolumn (one
// logit per grid cell), loss::mask_bce, target::none. Evaluation embeds
// single images (the mask channel, when present, is dropped).
//
// Differences from the paper, each for a reason: the segmentation is block
// matching + affine camera fit instead of uNLC (no optical-flow or NLC
// dependency; the clips of bench/README.md have a panning camera, which the
// affine fit removes); the mask is predicted on a G x G grid by a
// hypercolumn head instead of AlexNet's fc layers at 56 x 56 (small images;
// the same head as colorization); frames are small (28 px), as the
// Fashion-MNIST evaluation.
#include <string>
#include <vector>

#include "augment/motion.hpp"
#include "backbone/resnet.hpp"
#include "colorization.hpp"  // default_hypercolumn_taps, the hypercolumn config's JSON fields
#include "data/clips.hpp"
#include "head/hypercolumn.hpp"
#include "io/config_json.hpp"
#include "loss/mask_bce.hpp"
#include "method.hpp"
#include "video/segment.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using motion = method<Backbone, augment::motion_views, head::hypercolumn<float>, loss::mask_bce, target::none>;

struct motion_options {
    std::size_t size = 28;      ///< crop size S
    std::size_t grid = 7;       ///< G x G predicted cells
    std::size_t hidden = 256;   ///< the hypercolumn head's fc width
    double dropout = 0.5;
    double pos_weight = 1.0;
    std::vector<std::string> taps;  ///< empty: default_hypercolumn_taps
};

/// The full config: the taps' channels measured by one forward of a zero
/// image through the backbone (as colorization_config).
template <class Backbone = resnet18<float>>
typename motion<Backbone>::config motion_config(typename Backbone::options_type backbone, const motion_options& o = {}) {
    typename motion<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {.size = o.size, .grid = o.grid, .channels = backbone.in_channels};
    c.loss = {.pos_weight = o.pos_weight};
    Backbone probe(backbone);
    probe.train(false);
    c.head.taps = o.taps.empty() ? default_hypercolumn_taps(probe.tap_names()) : o.taps;
    auto r = probe.forward_taps(tensor<float>::zeros({1, backbone.in_channels, o.size, o.size}), c.head.taps);
    for (const auto& t : r.taps) c.head.tap_channels.push_back(t.dim(1));
    c.head.grid = o.grid;
    c.head.hidden = o.hidden;
    c.head.dropout = o.dropout;
    c.head.outputs = 1;
    return c;
}

/// The segmentation settings a config carries (augment::motion_views_config).
inline video::segment_options segment_options_of(const augment::motion_views_config& c) {
    video::segment_options s;
    s.window = c.flow_window, s.search = c.flow_search, s.threshold = c.motion_threshold;
    s.min_area = c.min_area, s.min_texture = c.min_texture;
    return s;
}

/// What motion_training_set did, for the user.
struct motion_masks_report {
    std::size_t clips = 0, frames = 0;
    double foreground = 0;  ///< mean fraction of pixels marked moving
};

/// The frames of a clip set (data::load_clip_folder: labels = clips) with
/// their pseudo-masks appended as a last channel (0 / 255): the set
/// motion<...> trains on. `masks`, when given, replaces the segmentation
/// (one (H, W) 0 / 1 mask per frame: the bounds of bench/README.md).
inline data::image_dataset motion_training_set(const data::image_dataset& clips, const video::segment_options& seg,
                                               motion_masks_report* report = nullptr,
                                               const std::vector<tensor<std::uint8_t>>* masks = nullptr) {
    const auto ranges = data::clip_ranges(clips, "motion_training_set");
    const std::size_t N = clips.size(), C = clips.channels(), H = clips.height(), W = clips.width(), hw = H * W;
    require(!masks || masks->size() == N, "motion_training_set: ", masks ? masks->size() : 0, " masks for ", N,
            " frames");
    data::image_dataset out;
    out.images = tensor<std::uint8_t>({N, C + 1, H, W});
    out.name = "motion frames";
    out.source = clips.source;
    std::size_t fg = 0;
    for (const auto& [a, b] : ranges) {
        std::vector<tensor<std::uint8_t>> m;
        if (masks) {
            m.assign(masks->begin() + static_cast<long>(a), masks->begin() + static_cast<long>(b));
        } else {
            require(b - a >= 2, "motion_training_set: clip '",
                    clips.class_names.empty() ? std::to_string(clips.labels[a]) : clips.class_names[static_cast<std::size_t>(clips.labels[a])],
                    "' has ", b - a, " frame (a clip needs at least 2 to show motion; --train-limit may have cut it)");
            std::vector<tensor<float>> grey;
            for (std::size_t i = a; i < b; ++i) {
                tensor<float> g({H, W});
                const std::uint8_t* p = clips.images.data() + i * C * hw;
                for (std::size_t k = 0; k < hw; ++k) {
                    float v = 0;
                    for (std::size_t c = 0; c < C; ++c) v += p[c * hw + k];
                    g[k] = v / (255.0f * static_cast<float>(C));
                }
                grey.push_back(std::move(g));
            }
            m = video::segment_clip(grey, seg);
        }
        for (std::size_t i = a; i < b; ++i) {
            const auto& mi = m[i - a];
            require<shape_error>(mi.numel() == hw, "motion_training_set: mask of frame ", i, " has ", mi.numel(),
                                 " pixels, the frame ", hw);
            std::uint8_t* dst = out.images.data() + i * (C + 1) * hw;
            std::copy_n(clips.images.data() + i * C * hw, C * hw, dst);
            for (std::size_t k = 0; k < hw; ++k) {
                dst[C * hw + k] = mi[k] ? 255 : 0;
                fg += mi[k] != 0;
            }
        }
    }
    if (report) *report = {ranges.size(), N, N ? static_cast<double>(fg) / static_cast<double>(N * hw) : 0.0};
    return out;
}

}  // namespace ssl

namespace ssl::io {
template <>
struct config_fields<augment::motion_views_config> {
    using S = augment::motion_views_config;
    static constexpr auto list = std::tuple{field("size", &S::size), field("grid", &S::grid),
                                            field("channels", &S::channels),
                                            field("crop_min_scale", &S::crop_min_scale), field("jitter", &S::jitter),
                                            field("flow_window", &S::flow_window), field("flow_search", &S::flow_search),
                                            field("motion_threshold", &S::motion_threshold),
                                            field("min_area", &S::min_area), field("min_texture", &S::min_texture)};
};
template <>
struct config_fields<loss::mask_bce_config> {
    using S = loss::mask_bce_config;
    static constexpr auto list = std::tuple{field("pos_weight", &S::pos_weight)};
};
}  // namespace ssl::io
