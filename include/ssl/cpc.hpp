#pragma once
// Contrastive Predictive Coding v2: Hénaff, Srinivas, De Fauw, Razavi,
// Doersch, Eslami & van den Oord, "Data-Efficient Image Recognition with
// Contrastive Predictive Coding", ICML 2020 (arXiv 1905.09272, 2019); CPC v1:
// van den Oord, Li & Vinyals 2018. Each image is a g x g grid of overlapping
// patches, each augmented on its own (augment/cpc.hpp); the encoder f maps
// every patch to a vector z[i, j] = f(x[i, j]) (the backbone, run on the
// patches as a batch); a masked, row-causal context network gives c[i, j]
// from rows <= i, and linear maps predict the features k = 1 .. K rows below,
// zhat_k = W_k c (head/cpc_context.hpp); InfoNCE makes each prediction pick
// its true patch among every patch of the batch, the other positions of its
// image and all positions of the other images (loss/cpc.hpp):
//
//   L = -1/Q sum_{k, i, j, n} log softmax_l( zhat_k[i, j, n] . z_l / tau )[z[i + k, j, n]]
//
// Parts: augment::cpc_patches (one view of g^2 N patches, spec grid g x g),
// head::cpc_context (z passed through, and K predictions per patch),
// loss::cpc_nce, target::none.
//
// The encoder must not normalise with batch statistics: batch norm shares
// statistics between the patches of one image (they are in one batch), which
// lets the InfoNCE task be solved through them; CPC v2 uses layer norm. The
// default backbone is convnet_ln (backbone/convnet.hpp: the small AlexNet-
// style convnet with layer norm in place of every batch norm, any patch of
// 8 px and more); `ssl train --method cpc` refuses a backbone with batch
// norm, naming its first running statistic (batch_norm_buffer below). The
// alias itself takes any backbone.
//
// Evaluation: an image's features are the mean of the encoder's features of
// its g^2 unaugmented patches (cpc_patches::eval_copies; method::embed), as
// CPC's linear evaluation pools the grid of patch features.
//
// Differences from the paper, each for a reason: a small convnet with layer
// norm instead of ResNet-161 (CPU budgets, 8-px patches); a context network
// of 3 masked 3x3 convolutions instead of 12 masked residual blocks (a 7x7
// grid); predictions from above only (the paper also predicts upwards and
// sideways with more context networks); K = 3 steps on a 7x7 grid.
#include <string>

#include "augment/cpc.hpp"
#include "backbone/convnet.hpp"
#include "head/cpc_context.hpp"
#include "io/config_json.hpp"
#include "loss/cpc.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = convnet_ln<float>>
using cpc = method<Backbone, augment::cpc_patches, head::cpc_context<float>, loss::cpc_nce, target::none>;

struct cpc_options {
    std::size_t grid = 7;          ///< patches per side
    std::size_t steps = 0;         ///< K, prediction steps; 0: min(3, grid - 1)
    double temperature = 1.0;      ///< tau (the paper: 1)
    std::size_t context_layers = 3;
    std::size_t context_hidden = 0;  ///< 0: the encoder's width
};

/// The config for images of `size` px with `channels` channels: the patch
/// geometry of augment/cpc.hpp (a grid the images are too small for, or K
/// not below the grid, is a value_error with a sentence).
template <class Backbone = convnet_ln<float>>
typename cpc<Backbone>::config cpc_config(const typename Backbone::options_type& backbone, std::size_t size,
                                          std::size_t channels, const cpc_options& o = {}) {
    (void)augment::cpc_geometry(size, o.grid);  // refuses a grid the images are too small for
    const std::size_t steps = o.steps ? o.steps : std::min<std::size_t>(3, o.grid - 1);
    require<value_error>(steps < o.grid, "cpc: K = ", steps, " prediction steps on a ", o.grid, "x", o.grid,
                         " grid: step k predicts the patch k rows below, so K must be at most ", o.grid - 1);
    typename cpc<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {.size = size, .channels = channels, .grid = o.grid};
    c.head = {.hidden = o.context_hidden, .layers = o.context_layers, .steps = steps};
    c.loss = {.temperature = o.temperature};
    return c;
}

/// The name of the backbone's first batch-norm running statistic, or ""
/// when it has none (what `ssl train --method cpc` refuses; see above).
template <class Backbone>
std::string batch_norm_buffer(Backbone& b) {
    std::string found;
    b.for_each_buffer(
        [&](const std::string& name, auto&) {
            if (found.empty() && name.find("running_") != std::string::npos) found = name;
        },
        "");
    return found;
}

}  // namespace ssl

// The policies' configs as JSON (io/config_json.hpp), so checkpoints carry them.
namespace ssl::io {
template <>
struct config_fields<augment::cpc_patches_config> {
    using S = augment::cpc_patches_config;
    static constexpr auto list =
        std::tuple{field("size", &S::size),           field("channels", &S::channels),
                   field("grid", &S::grid),           field("crop_min_scale", &S::crop_min_scale),
                   field("flip", &S::flip),           field("position_jitter", &S::position_jitter),
                   field("jitter", &S::jitter),       field("color_drop", &S::color_drop)};
};
template <>
struct config_fields<head::cpc_context_config> {
    using S = head::cpc_context_config;
    static constexpr auto list = std::tuple{field("hidden", &S::hidden), field("layers", &S::layers),
                                            field("kernel", &S::kernel), field("steps", &S::steps)};
};
template <>
struct config_fields<loss::cpc_nce_config> {
    using S = loss::cpc_nce_config;
    static constexpr auto list =
        std::tuple{field("temperature", &S::temperature), field("block_rows", &S::block_rows)};
};
}  // namespace ssl::io
