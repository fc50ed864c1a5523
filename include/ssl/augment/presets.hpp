#pragma once
// Augmentation recipes of the papers, as pipelines whose ops can be changed
// afterwards (pipeline::replace) like any other config.
//
//   simclr_pipeline  SimCLR (Chen et al. 2020, appendix A): random resized
//                    crop, flip 0.5, color jitter (0.4, 0.4, 0.4, 0.1) with
//                    p 0.8, grayscale 0.2, Gaussian blur p 0.5 (only for
//                    images larger than 32 px: the CIFAR recipe drops it),
//                    normalize.
//   byol_pipelines   BYOL (Grill et al. 2020, table 6): the same crop and
//                    flip, jitter (0.4, 0.4, 0.2, 0.1) p 0.8, grayscale 0.2,
//                    blur p 1.0 / 0.1, solarize p 0.0 / 0.2, normalize.
//   eval_pipeline    resize the shorter side, center crop, normalize.
//
// Crop scale: (0.08, 1) as in the papers for images of 32 px and more; for
// smaller outputs (28x28 Fashion-MNIST) the default small-image setting is
// (0.2, 1), since an 8% crop of a 28 px image is about 8x8 pixels.
// Normalization: Fashion-MNIST's mean/std for 1 channel, ImageNet's for 3.
#include "pipeline.hpp"

namespace ssl::augment {

/// Below this output size the crop scale starts at 0.2; at or below it the
/// SimCLR recipe has no blur.
inline constexpr std::size_t small_image_size = 32;

namespace detail {
inline void check_preset(std::string_view what, std::size_t out_size, std::size_t channels) {
    require(out_size > 0, what, ": out_size = ", out_size, " must be positive");
    require(channels == 1 || channels == 3, what, ": channels = ", channels, " must be 1 or 3");
}
}  // namespace detail

/// Per-channel statistics: Fashion-MNIST (0.2860, 0.3530) for 1 channel,
/// ImageNet ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) for 3.
inline normalize default_normalize(std::size_t channels) {
    detail::check_preset("default_normalize", 1, channels);
    if (channels == 1) return {.mean = {0.2860}, .stddev = {0.3530}};
    return {.mean = {0.485, 0.456, 0.406}, .stddev = {0.229, 0.224, 0.225}};
}

/// The random resized crop of the presets: scale (0.08, 1), or (0.2, 1) for
/// outputs smaller than small_image_size.
inline random_resized_crop default_crop(std::size_t out_size) {
    return {.height = out_size,
            .width = out_size,
            .scale = out_size < small_image_size ? range{0.2, 1.0} : range{0.08, 1.0}};
}

inline pipeline simclr_pipeline(std::size_t out_size, std::size_t channels) {
    detail::check_preset("simclr_pipeline", out_size, channels);
    pipeline p;
    p.add(default_crop(out_size));
    p.add(horizontal_flip{.p = 0.5});
    p.add(color_jitter{.brightness = 0.4, .contrast = 0.4, .saturation = 0.4, .hue = 0.1, .p = 0.8});
    p.add(random_grayscale{.p = 0.2});
    if (out_size > small_image_size) p.add(gaussian_blur{.p = 0.5, .sigma = {0.1, 2.0}});
    p.add(default_normalize(channels));
    return p;
}

/// SimCLR's two views: two copies of simclr_pipeline.
inline multi_view simclr_views(std::size_t out_size, std::size_t channels) {
    return multi_view(2, simclr_pipeline(out_size, channels));
}

/// BYOL's asymmetric pair: view 0 always blurred and never solarized,
/// view 1 blurred with p 0.1 and solarized with p 0.2.
inline multi_view byol_pipelines(std::size_t out_size, std::size_t channels) {
    detail::check_preset("byol_pipelines", out_size, channels);
    auto make = [&](double blur_p, double solarize_p) {
        pipeline p;
        p.add(default_crop(out_size));
        p.add(horizontal_flip{.p = 0.5});
        p.add(color_jitter{.brightness = 0.4, .contrast = 0.4, .saturation = 0.2, .hue = 0.1, .p = 0.8});
        p.add(random_grayscale{.p = 0.2});
        p.add(gaussian_blur{.p = blur_p, .sigma = {0.1, 2.0}});
        p.add(solarize{.threshold = 0.5, .p = solarize_p});
        p.add(default_normalize(channels));
        return p;
    };
    return multi_view({make(1.0, 0.0), make(0.1, 0.2)});
}

/// Evaluation: shorter side resized to out_size, central out_size x out_size
/// crop, normalize (the identity plus normalize on out_size-square images).
inline pipeline eval_pipeline(std::size_t out_size, std::size_t channels) {
    detail::check_preset("eval_pipeline", out_size, channels);
    pipeline p;
    p.add(resize{.shorter_side = out_size});
    p.add(center_crop{.height = out_size, .width = out_size});
    p.add(default_normalize(channels));
    return p;
}

}  // namespace ssl::augment
