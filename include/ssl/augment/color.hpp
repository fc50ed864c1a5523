#pragma once
// Color ops: color jitter (brightness, contrast, saturation, hue in a random
// order), random grayscale, solarize. Images have 1 or 3 channels with values
// in [0, 1]; every op keeps them there.
//
// Grayscale is L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as PIL's
// convert("L")); torchvision's tensor path uses 0.2989 for R, whose weights
// sum to 0.9999, so that a gray image would not map onto itself.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string_view>
#include <utility>

#include "image.hpp"

namespace ssl::augment {

// ---- in-place adjustments (torchvision.transforms.functional semantics) ----

/// x -> clamp(f * x, 0, 1).
inline void adjust_brightness(image_ref img, float f) {
    const std::size_t n = img.dims.numel();
    for (std::size_t i = 0; i < n; ++i) img.data[i] = detail::clamp01(f * img.data[i]);
}

/// Mean of the grayscale image (of the single channel for 1-channel images).
inline double gray_mean(const_image_ref img) {
    const std::size_t hw = img.dims.h * img.dims.w;
    double s = 0;
    if (img.dims.c == 3) {
        const float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
        for (std::size_t i = 0; i < hw; ++i) s += static_cast<double>(detail::luma(r[i], g[i], b[i]));
    } else {
        for (std::size_t i = 0; i < img.dims.numel(); ++i) s += static_cast<double>(img.data[i]);
        return s / static_cast<double>(img.dims.numel());
    }
    return s / static_cast<double>(hw);
}

/// x -> clamp(f * x + (1 - f) * m, 0, 1), m the mean of the grayscale image.
inline void adjust_contrast(image_ref img, float f) {
    const float m = static_cast<float>(gray_mean(const_image_ref{img.data, img.dims}));
    const float b = (1.0f - f) * m;
    const std::size_t n = img.dims.numel();
    for (std::size_t i = 0; i < n; ++i) img.data[i] = detail::clamp01(f * img.data[i] + b);
}

/// x -> clamp(f * x + (1 - f) * gray(x), 0, 1) per pixel; no-op for 1 channel.
inline void adjust_saturation(image_ref img, float f) {
    if (img.dims.c != 3) return;
    const std::size_t hw = img.dims.h * img.dims.w;
    float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
    const float f1 = 1.0f - f;
    for (std::size_t i = 0; i < hw; ++i) {
        const float l = f1 * detail::luma(r[i], g[i], b[i]);
        r[i] = detail::clamp01(f * r[i] + l);
        g[i] = detail::clamp01(f * g[i] + l);
        b[i] = detail::clamp01(f * b[i] + l);
    }
}

/// Shifts the hue by `shift` (a fraction of the color circle, in [-0.5, 0.5])
/// through HSV, as torchvision's adjust_hue; no-op for 1 channel.
inline void adjust_hue(image_ref img, float shift) {
    if (img.dims.c != 3) return;
    const std::size_t hw = img.dims.h * img.dims.w;
    float *R = img.plane(0), *G = img.plane(1), *B = img.plane(2);
    for (std::size_t i = 0; i < hw; ++i) {
        const float r = R[i], g = G[i], b = B[i];
        const float v = std::max(r, std::max(g, b)), mn = std::min(r, std::min(g, b));
        const float chroma = v - mn;
        if (chroma == 0.0f) continue;  // gray: no hue, unchanged
        const float s = chroma / v;
        float h;  // in sixths of the circle
        if (v == r)
            h = (g - b) / chroma;
        else if (v == g)
            h = 2.0f + (b - r) / chroma;
        else
            h = 4.0f + (r - g) / chroma;
        float hf = h / 6.0f + shift;  // fraction of the circle
        hf -= std::floor(hf);
        const float h6 = hf * 6.0f;
        const float sector = std::floor(h6);
        const float f = h6 - sector;
        const float p = detail::clamp01(v * (1.0f - s));
        const float q = detail::clamp01(v * (1.0f - s * f));
        const float t = detail::clamp01(v * (1.0f - s * (1.0f - f)));
        switch (static_cast<int>(sector) % 6) {
            case 0: R[i] = v; G[i] = t; B[i] = p; break;
            case 1: R[i] = q; G[i] = v; B[i] = p; break;
            case 2: R[i] = p; G[i] = v; B[i] = t; break;
            case 3: R[i] = p; G[i] = q; B[i] = v; break;
            case 4: R[i] = t; G[i] = p; B[i] = v; break;
            default: R[i] = v; G[i] = p; B[i] = q; break;
        }
    }
}

// ---- ops ----------------------------------------------------------------

/// torchvision ColorJitter wrapped in RandomApply(p): with probability p,
/// brightness, contrast, saturation and hue adjustments in a random order,
/// factors uniform in [max(0, 1 - b), 1 + b] (the same for contrast and
/// saturation) and a hue shift uniform in [-hue, hue], hue <= 0.5. A factor
/// configured 0 is the identity. Saturation and hue do nothing to 1-channel
/// images. Defaults are torchvision's (all 0: the identity) with p = 1.
struct color_jitter {
    double brightness = 0, contrast = 0, saturation = 0, hue = 0;
    double p = 1.0;

    enum adjustment : std::uint8_t { brightness_adj = 0, contrast_adj = 1, saturation_adj = 2, hue_adj = 3 };
    struct params {
        bool active = false;
        std::array<std::uint8_t, 4> order{0, 1, 2, 3};
        float brightness = 1, contrast = 1, saturation = 1, hue = 0;
    };
    static constexpr std::string_view name = "color_jitter";

    void validate() const {
        require(brightness >= 0, name, ": brightness = ", brightness, " must be >= 0");
        require(contrast >= 0, name, ": contrast = ", contrast, " must be >= 0");
        require(saturation >= 0, name, ": saturation = ", saturation, " must be >= 0");
        require(hue >= 0 && hue <= 0.5, name, ": hue = ", hue, " must be in [0, 0.5]");
        detail::check_probability(name, p);
    }
    image_dims output_dims(image_dims in) const {
        detail::check_color_channels(name, in);
        return in;
    }
    params draw(philox& g, image_dims) const {
        params q;
        q.active = g.uniform() < p;
        for (std::size_t i = 3; i > 0; --i) std::swap(q.order[i], q.order[g.below(i + 1)]);
        auto factor = [&](double x) { return static_cast<float>(g.uniform(std::max(0.0, 1.0 - x), 1.0 + x)); };
        q.brightness = factor(brightness);
        q.contrast = factor(contrast);
        q.saturation = factor(saturation);
        q.hue = static_cast<float>(g.uniform(-hue, hue));
        return q;
    }
    void apply(const_image_ref in, const params& q, image_ref out, workspace&) const {
        std::memcpy(out.data, in.data, in.dims.numel() * sizeof(float));
        if (!q.active) return;
        // An identity factor (1, or a hue shift of 0) is skipped, as
        // torchvision skips an unset one: the HSV round trip is not exact.
        for (auto a : q.order) switch (a) {
                case brightness_adj:
                    if (q.brightness != 1.0f) adjust_brightness(out, q.brightness);
                    break;
                case contrast_adj:
                    if (q.contrast != 1.0f) adjust_contrast(out, q.contrast);
                    break;
                case saturation_adj:
                    if (q.saturation != 1.0f) adjust_saturation(out, q.saturation);
                    break;
                default:
                    if (q.hue != 0.0f) adjust_hue(out, q.hue);
                    break;
            }
    }
    void describe(std::ostream& os) const {
        os << name << "(brightness=" << brightness << ", contrast=" << contrast << ", saturation=" << saturation
           << ", hue=" << hue << ", p=" << p << ')';
    }
};

/// torchvision RandomGrayscale: with probability p, every channel becomes
/// the grayscale image (3 channels stay 3); 1-channel images are unchanged.
struct random_grayscale {
    double p = 0.1;

    struct params {
        bool active = false;
    };
    static constexpr std::string_view name = "random_grayscale";

    void validate() const { detail::check_probability(name, p); }
    image_dims output_dims(image_dims in) const {
        detail::check_color_channels(name, in);
        return in;
    }
    params draw(philox& g, image_dims) const { return {g.uniform() < p}; }
    void apply(const_image_ref in, const params& q, image_ref out, workspace&) const {
        if (!q.active || in.dims.c != 3) {
            std::memcpy(out.data, in.data, in.dims.numel() * sizeof(float));
            return;
        }
        const std::size_t hw = in.dims.h * in.dims.w;
        const float *r = in.plane(0), *g = in.plane(1), *b = in.plane(2);
        float *o0 = out.plane(0), *o1 = out.plane(1), *o2 = out.plane(2);
        for (std::size_t i = 0; i < hw; ++i) o0[i] = o1[i] = o2[i] = detail::luma(r[i], g[i], b[i]);
    }
    void describe(std::ostream& os) const { os << name << "(p=" << p << ')'; }
};

/// torchvision RandomSolarize: with probability p, x -> 1 - x where
/// x >= threshold.
struct solarize {
    double threshold = 0.5;
    double p = 0.5;

    struct params {
        bool active = false;
    };
    static constexpr std::string_view name = "solarize";

    void validate() const {
        require(threshold >= 0 && threshold <= 1, name, ": threshold = ", threshold, " is outside [0, 1]");
        detail::check_probability(name, p);
    }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return in;
    }
    params draw(philox& g, image_dims) const { return {g.uniform() < p}; }
    void apply(const_image_ref in, const params& q, image_ref out, workspace&) const {
        const std::size_t n = in.dims.numel();
        if (!q.active) {
            std::memcpy(out.data, in.data, n * sizeof(float));
            return;
        }
        const float t = static_cast<float>(threshold);
        for (std::size_t i = 0; i < n; ++i) out.data[i] = in.data[i] >= t ? 1.0f - in.data[i] : in.data[i];
    }
    void describe(std::ostream& os) const { os << name << "(threshold=" << threshold << ", p=" << p << ')'; }
};

}  // namespace ssl::augment
