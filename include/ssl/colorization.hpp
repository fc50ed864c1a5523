#pragma once
// Colorization as a proxy task: Larsson, Maire & Shakhnarovich, "Colorization
// as a Proxy Task for Visual Understanding", CVPR 2017 (the model of their
// "Learning Representations for Automatic Colorization", ECCV 2016). The
// network sees lightness only; a hypercolumn head on its intermediate maps
// predicts, per location, the distribution of hue and of chroma around it;
// KL divergence to the local histograms, the hue term weighted by chroma:
//
//   L = 1/R sum_r KL(y_C || softmax z_C) + lambda_H w_r KL(y_H || softmax z_H)   (loss/colorization.hpp)
//
// Parts: augment::colorization_views (L view, histogram targets on a grid),
// head::hypercolumn (taps resized to the grid, fc + relu + dropout, logits),
// loss::colorization_kl, target::none. The backbone takes 1 channel (L);
// evaluation (embed, kNN, linear probe) feeds it the L channel, so colour and
// grayscale sets can both be probed.
//
// Differences from the paper, each for a reason: a G x G grid of locations
// instead of 128 random pixels per image (head/hypercolumn.hpp), small
// images (32 px crops instead of 224), the hypercolumn from the relu outputs
// of every stage of the chosen backbone (default_hypercolumn_taps), hidden
// width 1024 as the paper unless the config says less.
#include <string>
#include <vector>

#include "augment/colorization.hpp"
#include "backbone/resnet.hpp"
#include "head/hypercolumn.hpp"
#include "io/config_json.hpp"
#include "loss/colorization.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using colorization = method<Backbone, augment::colorization_views, head::hypercolumn<float>, loss::colorization_kl,
                            target::none>;

/// The taps a hypercolumn reads by default, from the backbone's tap names:
/// resnet: relu (the stem), layer1 .. layer4; convnet: the five relu outputs.
inline std::vector<std::string> default_hypercolumn_taps(const std::vector<std::string>& names) {
    auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    if (has("layer4")) return {"relu", "layer1", "layer2", "layer3", "layer4"};
    if (has("features.16")) return {"features.2", "features.6", "features.10", "features.13", "features.16"};
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    throw value_error("default_hypercolumn_taps: no default for a backbone with taps " + all +
                      "; name the taps in the head config");
}

struct colorization_options {
    std::size_t size = 32;      ///< crop size S
    std::size_t grid = 8;       ///< G x G target cells
    std::size_t bins = 8;       ///< hue = chroma bins (the authors' code: 8; the ECCV paper: 32)
    std::size_t hidden = 1024;  ///< fc width (the paper: 1024)
    double dropout = 0.5;
    double hue_weight = 5.0;
    std::vector<std::string> taps;  ///< empty: default_hypercolumn_taps
};

/// The full config: backbone in_channels set to 1 (it sees L), the taps'
/// channels measured by one forward of a zero image through the backbone.
template <class Backbone = resnet18<float>>
typename colorization<Backbone>::config colorization_config(typename Backbone::options_type backbone,
                                                           const colorization_options& o = {}) {
    typename colorization<Backbone>::config c;
    backbone.in_channels = 1;
    c.backbone = backbone;
    c.augment = {.size = o.size, .grid = o.grid, .bins = o.bins};
    c.loss = {.bins = o.bins, .hue_weight = o.hue_weight};
    Backbone probe(backbone);
    probe.train(false);
    c.head.taps = o.taps.empty() ? default_hypercolumn_taps(probe.tap_names()) : o.taps;
    auto r = probe.forward_taps(tensor<float>::zeros({1, 1, o.size, o.size}), c.head.taps);
    for (const auto& t : r.taps) c.head.tap_channels.push_back(t.dim(1));
    c.head.grid = o.grid;
    c.head.hidden = o.hidden;
    c.head.dropout = o.dropout;
    c.head.outputs = 2 * o.bins;
    return c;
}

}  // namespace ssl

// The policies' configs as JSON (io/config_json.hpp), so checkpoints carry them.
namespace ssl::io {
template <>
struct config_fields<augment::colorization_views_config> {
    using S = augment::colorization_views_config;
    static constexpr auto list = std::tuple{field("size", &S::size), field("grid", &S::grid), field("bins", &S::bins),
                                            field("radius", &S::radius), field("crop_min_scale", &S::crop_min_scale)};
};
template <>
struct config_fields<head::hypercolumn_config> {
    using S = head::hypercolumn_config;
    static constexpr auto list =
        std::tuple{field("taps", &S::taps),     field("tap_channels", &S::tap_channels), field("grid", &S::grid),
                   field("hidden", &S::hidden), field("dropout", &S::dropout),           field("outputs", &S::outputs)};
};
template <>
struct config_fields<loss::colorization_kl_config> {
    using S = loss::colorization_kl_config;
    static constexpr auto list = std::tuple{field("bins", &S::bins), field("hue_weight", &S::hue_weight)};
};
}  // namespace ssl::io
