// Writes ssl::augment's outputs for tests/peer/torchvision_augment_check.py:
//
//   augment_ops DIR  ->  DIR/fixed.safetensors, DIR/dist.safetensors
//
// Test images (tensors "image/<name>", (C, H, W), values k / 255): dense
// textures (sinusoids plus noise, some pixels at 0 and 1) and sparse thin
// anti-aliased strokes on black, 28 x 28 1-channel and 32 / 64 px
// 3-channel.
//
// fixed.safetensors: for every case, the op applied with FIXED parameters;
// tensor "out/<case>" and metadata "case/<case>" = JSON {"image", "op": the
// op's config, "params": the drawn parameters}. The checker redoes each
// case with torchvision.transforms.functional.
//
// dist.safetensors: for every case a pipeline (JSON in metadata
// "dist/<case>") applied DRAWS times with random parameters (sample i drawn
// from op_rng(seed 7, epoch 0, sample i, view 0, op k); DRAWS is 2000 for
// single ops, 1000 for whole recipes); tensor "stats/<case>" (DRAWS, 7): per draw the statistics of output o (input x)
//   mean, std, changed (fraction of |o - x| > 1e-6; NaN when the sizes
//   differ), at_min (fraction within 1e-5 of min o), at_max (within 1e-5 of
//   max o), gray (3 channels equal within 1e-6: 1 or 0; NaN for 1 channel),
//   fg (fraction of o > mean o)
// "params/<case>" (DRAWS, P): the parameters every op drew (params_values,
// op after op), and "replay/<case>" (REPLAYS, C, H, W): the outputs of the
// first REPLAYS draws. The checker replays those draws with
// torchvision.transforms.functional (exact composition), then draws the same
// pipelines with torchvision's random transforms and compares the means of
// the statistics (and of the crop boxes' geometry).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <ssl/augment/pipeline.hpp>
#include <ssl/augment/policies.hpp>
#include <ssl/augment/presets.hpp>
#include <ssl/io/safetensors.hpp>

namespace {

namespace A = ssl::augment;
using ssl::tensor;

constexpr std::size_t draws = 2000;         // per single-op case
constexpr std::size_t pipeline_draws = 1000;  // per whole-recipe case (torchvision is slow on them)
constexpr std::size_t replays = 20;            // draws whose outputs are written for an exact replay

float quantize(double v) { return static_cast<float>(std::round(std::clamp(v, 0.0, 1.0) * 255.0) / 255.0); }

/// Dense texture: two sinusoids per channel plus uniform noise, clamped.
tensor<float> texture(std::size_t c, std::size_t h, std::size_t w, std::uint64_t seed) {
    ssl::philox g(seed, 1);
    tensor<float> t({c, h, w});
    for (std::size_t k = 0; k < c; ++k) {
        const double fx = g.uniform(0.2, 0.9), fy = g.uniform(0.2, 0.9), ph = g.uniform(0, 6.3);
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x) {
                const double v = 0.5 + 0.3 * std::sin(fx * static_cast<double>(x) + ph) *
                                           std::cos(fy * static_cast<double>(y) - 0.5 * ph) +
                                 g.uniform(-0.3, 0.3);
                t.data()[(k * h + y) * w + x] = quantize(v);
            }
    }
    return t;
}

/// Sparse strokes: `count` segments ~1.5 px wide (value 1 within half a pixel
/// of the segment, falling to 0 one pixel further), colored for 3 channels.
tensor<float> strokes(std::size_t c, std::size_t h, std::size_t w, std::size_t count, std::uint64_t seed) {
    ssl::philox g(seed, 2);
    tensor<float> t({c, h, w});
    for (auto& v : t) v = 0;
    for (std::size_t s = 0; s < count; ++s) {
        const double H = static_cast<double>(h), W = static_cast<double>(w);
        const double x0 = g.uniform(0.25 * W, 0.75 * W), y0 = g.uniform(0.25 * H, 0.75 * H);
        const double x1 = std::clamp(x0 + g.uniform(-0.3, 0.3) * W, 1.0, W - 2);
        const double y1 = std::clamp(y0 + g.uniform(-0.3, 0.3) * H, 1.0, H - 2);
        double color[3] = {1, 1, 1};
        if (c == 3) {
            for (double& v : color) v = g.uniform(0.1, 1.0);
            color[g.below(3)] = 1.0;
        }
        const double dx = x1 - x0, dy = y1 - y0, len2 = std::max(dx * dx + dy * dy, 1e-9);
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x) {
                const double px = static_cast<double>(x) + 0.5, py = static_cast<double>(y) + 0.5;
                const double u = std::clamp(((px - x0) * dx + (py - y0) * dy) / len2, 0.0, 1.0);
                const double d = std::hypot(px - x0 - u * dx, py - y0 - u * dy);
                const double a = std::clamp(1.5 - d, 0.0, 1.0);
                for (std::size_t k = 0; k < c; ++k) {
                    float& o = t.data()[(k * h + y) * w + x];
                    o = std::max(o, quantize(a * color[k]));
                }
            }
    }
    return t;
}

// ---- JSON of op configs and params (the checker builds torchvision calls from it) ----

std::string num(double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}
std::string pair(double a, double b) { return "[" + num(a) + ", " + num(b) + "]"; }
std::string list(const std::vector<double>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + num(v[i]);
    return s + "]";
}

std::string config_json(const A::op& o) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            std::string s = "{\"op\": \"" + std::string(T::name) + "\"";
            if constexpr (std::is_same_v<T, A::random_resized_crop>)
                s += ", \"size\": " + pair(double(x.height), double(x.width)) + ", \"scale\": " +
                     pair(x.scale.lo, x.scale.hi) + ", \"ratio\": " + pair(x.ratio.lo, x.ratio.hi);
            else if constexpr (std::is_same_v<T, A::horizontal_flip> || std::is_same_v<T, A::random_grayscale>)
                s += ", \"p\": " + num(x.p);
            else if constexpr (std::is_same_v<T, A::color_jitter>)
                s += ", \"brightness\": " + num(x.brightness) + ", \"contrast\": " + num(x.contrast) +
                     ", \"saturation\": " + num(x.saturation) + ", \"hue\": " + num(x.hue) + ", \"p\": " + num(x.p);
            else if constexpr (std::is_same_v<T, A::gaussian_blur>)
                s += ", \"p\": " + num(x.p) + ", \"sigma\": " + pair(x.sigma.lo, x.sigma.hi) +
                     ", \"kernel_size\": " + num(double(x.kernel_size));
            else if constexpr (std::is_same_v<T, A::solarize>)
                s += ", \"threshold\": " + num(x.threshold) + ", \"p\": " + num(x.p);
            else if constexpr (std::is_same_v<T, A::normalize>)
                s += ", \"mean\": " + list(x.mean) + ", \"std\": " + list(x.stddev);
            else
                throw std::runtime_error("config_json: " + std::string(T::name) + " is not covered by the peer check");
            return s + "}";
        },
        o);
}

/// An op's drawn parameters as numbers (the checker's params_dict reads them back):
///   random_resized_crop: top, left, height, width;  horizontal_flip: flip;
///   color_jitter: active, order[0..3], brightness, contrast, saturation, hue;
///   random_grayscale, solarize: active;  gaussian_blur: active, sigma;  normalize: none.
std::vector<double> params_values(const A::crop_box& b) {
    return {double(b.top), double(b.left), double(b.height), double(b.width)};
}
std::vector<double> params_values(const A::horizontal_flip::params& q) { return {double(q.flip)}; }
std::vector<double> params_values(const A::color_jitter::params& q) {
    return {double(q.active), double(q.order[0]), double(q.order[1]), double(q.order[2]), double(q.order[3]),
            q.brightness, q.contrast, q.saturation, q.hue};
}
std::vector<double> params_values(const A::random_grayscale::params& q) { return {double(q.active)}; }
std::vector<double> params_values(const A::solarize::params& q) { return {double(q.active)}; }
std::vector<double> params_values(const A::gaussian_blur::params& q) { return {double(q.active), q.sigma}; }
std::vector<double> params_values(const A::normalize::params&) { return {}; }
template <class Q>
std::vector<double> params_values(const Q&) {
    throw std::runtime_error("params_values: an op not covered by the peer check");
}

// ---- the files ----

struct writer {
    ssl::io::safetensors_file file;
    std::vector<std::pair<std::string, tensor<float>>> images;

    const tensor<float>& image(const std::string& name) const {
        for (const auto& [n, t] : images)
            if (n == name) return t;
        throw std::runtime_error("no image " + name);
    }
};

template <class Op>
void fixed_case(writer& w, const std::string& name, const std::string& img, const Op& op,
                const typename Op::params& q) {
    const tensor<float>& in = w.image(img);
    w.file.tensors["out/" + name] = ssl::io::to_stored(A::apply_op(op, in, q));
    w.file.metadata["case/" + name] = "{\"image\": \"" + img + "\", \"op\": " + config_json(A::op(op)) +
                                      ", \"params\": " + list(params_values(q)) + "}";
}

void fixed_cases(writer& w) {
    for (const auto& [img, t] : w.images) {
        const std::size_t C = t.dim(0), H = t.dim(1), W = t.dim(2);
        // Crops resized to the image size (upscaling, as in training), to half
        // of it (downscaling: antialias matters), and mixed.
        struct crop_case {
            const char* tag;
            A::crop_box box;
            std::size_t oh, ow;
        };
        const std::vector<crop_case> crops = {
            {"up_small", {2, 3, H / 3, W / 2}, H, W},
            {"up_large", {H / 8, W / 16, 3 * H / 4, 7 * W / 8}, H, W},
            {"identity", {0, 0, H, W}, H, W},
            {"down_half", {0, 0, H, W}, H / 2, W / 2},
            {"down_odd", {1, 2, H - 3, W - 5}, H / 3 + 1, W / 2 - 1},
            {"mixed", {0, W / 3, H, W / 3}, H / 2, W},
        };
        for (const auto& c : crops)
            fixed_case(w, img + "/crop_" + c.tag, img,
                       A::random_resized_crop{.height = c.oh, .width = c.ow}, c.box);
        fixed_case(w, img + "/hflip", img, A::horizontal_flip{}, {true});
        for (const float f : {0.6f, 1.4f}) {
            const std::string tag = f < 1 ? "0.6" : "1.4";
            auto single = [&](const char* what, std::uint8_t which) {
                A::color_jitter::params q;
                q.active = true;  // the other factors are the identity, which apply skips
                if (which == 0) q.brightness = f;
                if (which == 1) q.contrast = f;
                if (which == 2) q.saturation = f;
                fixed_case(w, img + "/" + what + "_" + tag, img, A::color_jitter{}, q);
            };
            single("brightness", 0);
            single("contrast", 1);
            single("saturation", 2);
        }
        for (const float h : {-0.1f, 0.07f, 0.45f}) {
            A::color_jitter::params q;
            q.active = true;
            q.hue = h;
            fixed_case(w, img + "/hue_" + num(h), img, A::color_jitter{}, q);
        }
        // The four adjustments together, in two orders.
        for (const auto& order : {std::array<std::uint8_t, 4>{3, 2, 1, 0}, std::array<std::uint8_t, 4>{1, 0, 3, 2}}) {
            A::color_jitter::params q{.active = true, .order = order, .brightness = 1.3f, .contrast = 0.7f,
                                      .saturation = 1.25f, .hue = 0.05f};
            fixed_case(w, img + "/jitter_" + std::to_string(order[0]) + std::to_string(order[1]) +
                              std::to_string(order[2]) + std::to_string(order[3]),
                       img, A::color_jitter{}, q);
        }
        fixed_case(w, img + "/grayscale", img, A::random_grayscale{}, {true});
        const A::gaussian_blur blur10{};  // kernel: 10% of the shorter side, odd, >= 3
        for (const float s : {0.5f, 1.5f}) fixed_case(w, img + "/blur_" + num(s), img, blur10, {true, s});
        fixed_case(w, img + "/blur_k9_2", img, A::gaussian_blur{.kernel_size = 9}, {true, 2.0f});
        // SimCLR's ImageNet kernel (10% of 224 px, odd) with a small sigma: ssl drops the taps below 1e-10.
        fixed_case(w, img + "/blur_k23_0.15", img, A::gaussian_blur{.kernel_size = 23}, {true, 0.15f});
        fixed_case(w, img + "/solarize_0.5", img, A::solarize{.threshold = 0.5}, {true});
        fixed_case(w, img + "/solarize_0.3", img, A::solarize{.threshold = 0.3}, {true});
        fixed_case(w, img + "/normalize", img, A::default_normalize(C), {});
    }
}

/// The per-draw statistics of the header comment.
void draw_stats(A::image_dims in_dims, const float* x, A::image_dims od, const float* o, double* s) {
    const std::size_t n = od.numel(), hw = od.h * od.w;
    double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
        sum += o[i];
        lo = std::min(lo, double(o[i]));
        hi = std::max(hi, double(o[i]));
    }
    const double mean = sum / double(n);
    std::size_t at_min = 0, at_max = 0, fg = 0, changed = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = double(o[i]) - mean;
        sq += d * d;
        at_min += double(o[i]) <= lo + 1e-5;
        at_max += double(o[i]) >= hi - 1e-5;
        fg += double(o[i]) > mean;
        if (in_dims == od) changed += std::abs(double(o[i]) - double(x[i])) > 1e-6;
    }
    double gray = std::numeric_limits<double>::quiet_NaN();
    if (od.c == 3) {
        gray = 1;
        for (std::size_t i = 0; i < hw; ++i)
            if (std::abs(o[i] - o[hw + i]) > 1e-6f || std::abs(o[i] - o[2 * hw + i]) > 1e-6f) gray = 0;
    }
    s[0] = mean;
    s[1] = std::sqrt(sq / double(n));
    s[2] = in_dims == od ? double(changed) / double(n) : std::numeric_limits<double>::quiet_NaN();
    s[3] = double(at_min) / double(n);
    s[4] = double(at_max) / double(n);
    s[5] = gray;
    s[6] = double(fg) / double(n);
}

/// The parameters every op of `p` draws for draw i, concatenated (params_values).
std::vector<double> drawn_params(const A::pipeline& p, A::image_dims in, std::size_t i) {
    std::vector<double> row;
    for (std::size_t k = 0; k < p.size(); ++k)
        std::visit(
            [&](const auto& x) {
                ssl::philox g = A::op_rng(7, 0, i, 0, k);
                const auto v = params_values(x.draw(g, in));
                row.insert(row.end(), v.begin(), v.end());
                in = x.output_dims(in);
            },
            p.ops()[k]);
    return row;
}

void dist_case(writer& w, const std::string& name, const std::string& img, const A::pipeline& p,
               std::size_t draws = ::draws) {
    const tensor<float>& in = w.image(img);
    const A::image_dims id{in.dim(0), in.dim(1), in.dim(2)}, od = p.output_dims(id);
    const std::size_t width = drawn_params(p, id, 0).size();
    tensor<double> st({draws, 7}), params({draws, width});
    tensor<float> replay({replays, od.c, od.h, od.w});
    std::vector<float> out(od.numel());
    A::pipeline::scratch scratch;
    for (std::size_t i = 0; i < draws; ++i) {
        p.apply_one({in.data(), id}, i, 7, 0, 0, {out.data(), od}, scratch);
        draw_stats(id, in.data(), od, out.data(), st.data() + i * 7);
        const auto row = drawn_params(p, id, i);
        std::copy(row.begin(), row.end(), params.data() + i * width);
        if (i < replays) std::copy(out.begin(), out.end(), replay.data() + i * od.numel());
    }
    std::string ops;
    for (const auto& o : p.ops()) ops += (ops.empty() ? "" : ", ") + config_json(o);
    w.file.metadata["dist/" + name] = "{\"image\": \"" + img + "\", \"ops\": [" + ops + "]}";
    w.file.tensors["stats/" + name] = ssl::io::to_stored(st);
    w.file.tensors["params/" + name] = ssl::io::to_stored(params);
    w.file.tensors["replay/" + name] = ssl::io::to_stored(replay);
}

void dist_cases(writer& w) {
    const A::color_jitter jitter{.brightness = 0.4, .contrast = 0.4, .saturation = 0.4, .hue = 0.1, .p = 0.8};
    for (const char* img : {"strokes1_28", "texture1_28", "strokes3_32", "texture3_32", "strokes3_64"}) {
        const auto& t = w.image(img);
        const std::size_t C = t.dim(0), S = t.dim(1);
        const std::string im = img;
        dist_case(w, im + "/crop", im, A::pipeline{A::default_crop(S)});
        dist_case(w, im + "/flip", im, A::pipeline{A::horizontal_flip{.p = 0.5}});
        if (S < 64) dist_case(w, im + "/jitter", im, A::pipeline{jitter});
        dist_case(w, im + "/blur", im, A::pipeline{A::gaussian_blur{.p = 0.5, .sigma = {0.1, 2.0}}});
        dist_case(w, im + "/solarize", im, A::pipeline{A::solarize{.threshold = 0.5, .p = 0.2}});
        if (C == 3) dist_case(w, im + "/grayscale", im, A::pipeline{A::random_grayscale{.p = 0.2}});
        dist_case(w, im + "/simclr", im, A::simclr_pipeline(S, C), pipeline_draws);
        if (im.starts_with("strokes") && S < 64)
            dist_case(w, im + "/byol1", im, A::byol_pipelines(S, C)[1], pipeline_draws);
    }
    // The views `ssl train --method simclr` makes of 28 px images (simclr_config: crop scale (0.5, 1)).
    auto simclr28 = A::two_views({.size = 28, .channels = 1, .crop_min_scale = 0.5}).pipelines()[0];
    dist_case(w, "strokes1_28/simclr_method", "strokes1_28", simclr28, pipeline_draws);
    // Downscaling crops (64 -> 32) and a ratio range where ~10% of draws fall back to the central crop.
    dist_case(w, "texture3_64/crop_to32", "texture3_64",
              A::pipeline{A::random_resized_crop{.height = 32, .width = 32}});
    dist_case(w, "strokes1_28/crop_fallback", "strokes1_28",
              A::pipeline{A::random_resized_crop{.height = 28, .width = 28, .scale = {0.6, 1.0},
                                                 .ratio = {1.0 / 3.0, 3.0}}});
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    writer w;
    w.images = {
        {"strokes1_28", strokes(1, 28, 28, 3, 11)}, {"texture1_28", texture(1, 28, 28, 12)},
        {"strokes3_32", strokes(3, 32, 32, 3, 13)}, {"texture3_32", texture(3, 32, 32, 14)},
        {"strokes3_64", strokes(3, 64, 64, 4, 15)}, {"texture3_64", texture(3, 64, 64, 16)},
    };
    for (const auto& [n, t] : w.images) w.file.tensors["image/" + n] = ssl::io::to_stored(t);
    fixed_cases(w);
    ssl::io::write_safetensors(dir + "/fixed.safetensors", w.file);
    w.file = {};
    dist_cases(w);
    ssl::io::write_safetensors(dir + "/dist.safetensors", w.file);
    std::cout << "written\n";
}
