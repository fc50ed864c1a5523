#pragma once
// Geometric ops: random resized crop, center crop, resize, horizontal flip,
// rotation by quarter turns.
//
// Resampling is bilinear with antialiasing: output pixel o of an axis of
// length `len` resized to `out` takes the input pixels j of the crop with
// weights tri((j + 0.5 - (o + 0.5) * s) / max(s, 1)), s = len / out,
// tri(t) = max(0, 1 - |t|), normalized to sum 1; taps outside the crop are
// dropped. This is the filter of PIL and of torchvision's default
// `antialias=True`; it equals plain bilinear (half-pixel centers) when
// upscaling except within half an input pixel of the border, and it is the
// exact identity when the sizes match. Weights are nonnegative, so values in
// [0, 1] stay in [0, 1] up to float rounding.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <ostream>
#include <string_view>

#include "image.hpp"

namespace ssl::augment {

/// A crop rectangle in input pixels.
struct crop_box {
    std::size_t top = 0, left = 0, height = 0, width = 0;
    friend bool operator==(const crop_box&, const crop_box&) = default;
};
inline std::ostream& operator<<(std::ostream& os, const crop_box& b) {
    return os << "crop_box{top=" << b.top << ", left=" << b.left << ", height=" << b.height << ", width=" << b.width
              << '}';
}

namespace detail {

/// Filter taps of one axis (see the header comment); returns the row stride
/// of `w`. Output o reads inputs first[o] .. first[o] + count[o] - 1.
inline std::size_t axis_weights(std::size_t len, std::size_t out, std::vector<std::size_t>& first,
                                std::vector<std::size_t>& count, std::vector<float>& w) {
    const double scale = static_cast<double>(len) / static_cast<double>(out);
    const double support = std::max(scale, 1.0);
    const std::size_t stride = static_cast<std::size_t>(std::ceil(2.0 * support)) + 1;
    grow(first, out);
    grow(count, out);
    grow(w, out * stride);
    const long last = static_cast<long>(len) - 1;
    auto tri = [&](long j, double center) {
        const double t = (static_cast<double>(j) + 0.5 - center) / support;
        return std::max(0.0, 1.0 - std::abs(t));
    };
    for (std::size_t o = 0; o < out; ++o) {
        const double center = (static_cast<double>(o) + 0.5) * scale;
        long j0 = std::max(0L, static_cast<long>(std::ceil(center - support - 0.5)));
        long j1 = std::min(last, static_cast<long>(std::floor(center + support - 0.5)));
        while (j0 < j1 && tri(j0, center) == 0.0) ++j0;
        while (j1 > j0 && tri(j1, center) == 0.0) --j1;
        double sum = 0;
        for (long j = j0; j <= j1; ++j) sum += tri(j, center);
        first[o] = static_cast<std::size_t>(j0);
        count[o] = static_cast<std::size_t>(j1 - j0 + 1);
        for (long j = j0; j <= j1; ++j)
            w[o * stride + static_cast<std::size_t>(j - j0)] = static_cast<float>(tri(j, center) / sum);
    }
    return stride;
}

/// Resamples `box` of `in` to the size of `out` (same channels), separably:
/// rows first into ws.tmp, then columns.
inline void resample(const_image_ref in, const crop_box& box, image_ref out, workspace& ws) {
    const std::size_t C = in.dims.c, W = in.dims.w, oh = out.dims.h, ow = out.dims.w, bh = box.height;
    const std::size_t sx = axis_weights(box.width, ow, ws.fx, ws.nx, ws.wx);
    const std::size_t sy = axis_weights(bh, oh, ws.fy, ws.ny, ws.wy);
    grow(ws.tmp, C * bh * ow);
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < bh; ++y) {
            const float* row = in.plane(c) + (box.top + y) * W + box.left;
            float* t = ws.tmp.data() + (c * bh + y) * ow;
            for (std::size_t o = 0; o < ow; ++o) {
                const float* wv = ws.wx.data() + o * sx;
                const float* src = row + ws.fx[o];
                float s = 0;
                for (std::size_t k = 0; k < ws.nx[o]; ++k) s += wv[k] * src[k];
                t[o] = s;
            }
        }
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t o = 0; o < oh; ++o) {
            float* dst = out.plane(c) + o * ow;
            std::fill(dst, dst + ow, 0.0f);
            const float* wv = ws.wy.data() + o * sy;
            for (std::size_t k = 0; k < ws.ny[o]; ++k)
                detail::axpy(dst, wv[k], ws.tmp.data() + (c * bh + ws.fy[o] + k) * ow, ow);
        }
}

inline void check_size(std::string_view op, std::size_t h, std::size_t w) {
    require(h > 0 && w > 0, op, ": output size ", h, "x", w, " must be positive (height and width)");
}

}  // namespace detail

/// torchvision RandomResizedCrop: a crop of random area (fraction `scale` of
/// the image) and aspect ratio (`ratio`, width / height, drawn log-uniformly),
/// resized to (height, width). After `attempts` draws that do not fit, the
/// central crop clamped to the ratio range. Requires 0 < scale.lo <= scale.hi
/// <= 1 (torchvision accepts scale.hi > 1, which only wastes attempts).
struct random_resized_crop {
    std::size_t height = 0;  ///< output height
    std::size_t width = 0;   ///< output width
    range scale{0.08, 1.0};
    range ratio{3.0 / 4.0, 4.0 / 3.0};
    std::size_t attempts = 10;

    using params = crop_box;
    static constexpr std::string_view name = "random_resized_crop";

    void validate() const {
        detail::check_size(name, height, width);
        require(scale.lo <= scale.hi, name, ": scale range ", scale, " is inverted (scale.lo must be <= scale.hi)");
        require(scale.lo > 0 && scale.hi <= 1, name, ": scale range ", scale, " must lie in (0, 1]");
        require(ratio.lo <= ratio.hi, name, ": ratio range ", ratio, " is inverted (ratio.lo must be <= ratio.hi)");
        require(ratio.lo > 0 && std::isfinite(ratio.hi), name, ": ratio range ", ratio, " must be positive and finite");
    }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return {in.c, height, width};
    }
    params draw(philox& g, image_dims in) const {
        const double H = static_cast<double>(in.h), W = static_cast<double>(in.w), area = H * W;
        const double log_lo = std::log(ratio.lo), log_hi = std::log(ratio.hi);
        for (std::size_t a = 0; a < attempts; ++a) {
            const double target = area * g.uniform(scale.lo, scale.hi);
            const double aspect = std::exp(g.uniform(log_lo, log_hi));
            const double w = detail::round_half_even(std::sqrt(target * aspect));
            const double h = detail::round_half_even(std::sqrt(target / aspect));
            if (w > 0 && w <= W && h > 0 && h <= H) {
                const auto hi = static_cast<std::size_t>(h), wi = static_cast<std::size_t>(w);
                const auto top = static_cast<std::size_t>(g.below(in.h - hi + 1));
                const auto left = static_cast<std::size_t>(g.below(in.w - wi + 1));
                return {top, left, hi, wi};
            }
        }
        return center_fallback(in);
    }
    /// The box used when every attempt failed (torchvision's fallback).
    crop_box center_fallback(image_dims in) const {
        const double in_ratio = static_cast<double>(in.w) / static_cast<double>(in.h);
        std::size_t h = in.h, w = in.w;
        if (in_ratio < ratio.lo)
            h = static_cast<std::size_t>(detail::round_half_even(static_cast<double>(w) / ratio.lo));
        else if (in_ratio > ratio.hi)
            w = static_cast<std::size_t>(detail::round_half_even(static_cast<double>(h) * ratio.hi));
        h = std::clamp<std::size_t>(h, 1, in.h);
        w = std::clamp<std::size_t>(w, 1, in.w);
        return {(in.h - h) / 2, (in.w - w) / 2, h, w};
    }
    void apply(const_image_ref in, const params& box, image_ref out, workspace& ws) const {
        require(box.height > 0 && box.width > 0 && box.top + box.height <= in.dims.h &&
                    box.left + box.width <= in.dims.w,
                name, ": ", box, " is empty or outside the image of shape ", in.dims);
        detail::resample(in, box, out, ws);
    }
    void describe(std::ostream& os) const {
        os << name << "(size=" << height << "x" << width << ", scale=" << scale << ", ratio=" << ratio
           << ", attempts=" << attempts << ')';
    }
};

/// torchvision CenterCrop: the central (height, width) window, offsets
/// rounded like Python's round(); an image smaller than the window is padded
/// with zeros first, as torchvision does.
struct center_crop {
    std::size_t height = 0, width = 0;

    struct params {};
    static constexpr std::string_view name = "center_crop";

    void validate() const { detail::check_size(name, height, width); }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return {in.c, height, width};
    }
    params draw(philox&, image_dims) const { return {}; }
    /// Offset of the window's first row / column in the input (negative:
    /// padding).
    static long offset(std::size_t in, std::size_t out) {
        if (out > in) return -static_cast<long>((out - in) / 2);
        return static_cast<long>(detail::round_half_even(static_cast<double>(in - out) / 2.0));
    }
    void apply(const_image_ref in, const params&, image_ref out, workspace&) const {
        const long top = offset(in.dims.h, height), left = offset(in.dims.w, width);
        const long H = static_cast<long>(in.dims.h), W = static_cast<long>(in.dims.w);
        for (std::size_t c = 0; c < in.dims.c; ++c)
            for (std::size_t y = 0; y < height; ++y) {
                float* dst = out.plane(c) + y * width;
                const long sy = top + static_cast<long>(y);
                for (std::size_t x = 0; x < width; ++x) {
                    const long sx = left + static_cast<long>(x);
                    dst[x] = (sy >= 0 && sy < H && sx >= 0 && sx < W)
                                 ? in.at(c, static_cast<std::size_t>(sy), static_cast<std::size_t>(sx))
                                 : 0.0f;
                }
            }
    }
    void describe(std::ostream& os) const { os << name << "(size=" << height << "x" << width << ')'; }
};

/// torchvision Resize: with `shorter_side` set, the shorter side becomes
/// that length and the longer one int(shorter_side * long / short); with
/// `height` and `width` set instead, exactly that size. Antialiased bilinear.
struct resize {
    std::size_t shorter_side = 0;
    std::size_t height = 0, width = 0;

    struct params {};
    static constexpr std::string_view name = "resize";

    void validate() const {
        const bool by_side = shorter_side > 0, by_size = height > 0 || width > 0;
        require(by_side != by_size, name, ": set either shorter_side (got ", shorter_side,
                ") or height and width (got ", height, "x", width, "), exactly one of them");
        if (by_size) detail::check_size(name, height, width);
    }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        if (shorter_side == 0) return {in.c, height, width};
        const std::size_t s = shorter_side;
        if (in.w <= in.h) return {in.c, std::max<std::size_t>(1, s * in.h / in.w), s};
        return {in.c, s, std::max<std::size_t>(1, s * in.w / in.h)};
    }
    params draw(philox&, image_dims) const { return {}; }
    void apply(const_image_ref in, const params&, image_ref out, workspace& ws) const {
        detail::resample(in, {0, 0, in.dims.h, in.dims.w}, out, ws);
    }
    void describe(std::ostream& os) const {
        if (shorter_side)
            os << name << "(shorter_side=" << shorter_side << ')';
        else
            os << name << "(size=" << height << "x" << width << ')';
    }
};

/// torchvision RandomHorizontalFlip: mirrors left-right with probability p.
struct horizontal_flip {
    double p = 0.5;

    struct params {
        bool flip = false;
    };
    static constexpr std::string_view name = "horizontal_flip";

    void validate() const { detail::check_probability(name, p); }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return in;
    }
    params draw(philox& g, image_dims) const { return {g.uniform() < p}; }
    void apply(const_image_ref in, const params& q, image_ref out, workspace&) const {
        const std::size_t W = in.dims.w, rows = in.dims.c * in.dims.h;
        if (!q.flip) {
            std::memcpy(out.data, in.data, in.dims.numel() * sizeof(float));
            return;
        }
        for (std::size_t r = 0; r < rows; ++r) {
            const float* src = in.data + r * W;
            float* dst = out.data + r * W;
            for (std::size_t x = 0; x < W; ++x) dst[x] = src[W - 1 - x];
        }
    }
    void describe(std::ostream& os) const { os << name << "(p=" << p << ')'; }
};

/// Rotation by k quarter turns *clockwise* (k may be negative; taken mod 4),
/// exact (a permutation of pixels). Pixel (0, 0) goes to the top-right corner
/// for k = 1. torchvision's rotate(img, 90 * k) turns counter-clockwise, so
/// it equals rotate90{-k}. For RotNet the direction only names the classes.
struct rotate90 {
    int k = 1;

    struct params {};
    static constexpr std::string_view name = "rotate90";

    /// k reduced to 0, 1, 2 or 3.
    int turns() const noexcept { return ((k % 4) + 4) % 4; }
    void validate() const {}
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return turns() % 2 ? image_dims{in.c, in.w, in.h} : in;
    }
    params draw(philox&, image_dims) const { return {}; }
    void apply(const_image_ref in, const params&, image_ref out, workspace&) const {
        const std::size_t H = in.dims.h, W = in.dims.w, t = static_cast<std::size_t>(turns());
        const std::size_t oh = t % 2 ? W : H, ow = t % 2 ? H : W;
        for (std::size_t c = 0; c < in.dims.c; ++c) {
            const float* src = in.plane(c);
            float* dst = out.plane(c);
            for (std::size_t i = 0; i < oh; ++i)
                for (std::size_t j = 0; j < ow; ++j) {
                    std::size_t y = i, x = j;  // source pixel of output (i, j)
                    switch (t) {
                        case 1: y = H - 1 - j; x = i; break;
                        case 2: y = H - 1 - i; x = W - 1 - j; break;
                        case 3: y = j; x = W - 1 - i; break;
                        default: break;
                    }
                    dst[i * ow + j] = src[y * W + x];
                }
        }
    }
    void describe(std::ostream& os) const { os << name << "(k=" << k << ')'; }
};

}  // namespace ssl::augment
