#pragma once
// Clips of real objects in motion, for "Learning Features by Watching Objects
// Move" (motion.hpp) where no video can be downloaded: real images (e.g.
// Fashion-MNIST items) as sprites, each with its own velocity (some still),
// over a textured background that pans with a camera, with sensor noise and
// a global brightness flicker, so that brightness alone does not find the
// object and a still camera is not assumed.
//
//   frame_t(p) = clamp(g_t * compose(background(p + c_t), sprites_t)(p) + o_t + n_t(p), 0, 1)
//   c_t = c_0 + t * camera velocity; a still sprite moves with the background,
//   a moving one by its own velocity, bouncing off the frame's edges
//   truth_t(p) = 1 where a sprite moving against the background covers p (alpha > 1/2)
//
// Contract: `sprites` is a set of images (N, C, h, w) whose objects are bright
// on a dark background (Fashion-MNIST, MNIST); clip i of a seed is the same
// on every machine (Philox(seed, i)). The truth masks are for measuring the
// pseudo-masks (segment.hpp) and for the bounds of bench/README.md; the
// method never sees them.
//
// Design choices, one line each:
//   - a sprite's alpha is its own intensity (x 4, clipped): the item's
//     silhouette, with soft edges, no hand-made mask;
//   - the background is smooth value noise at three octaves plus a few
//     oriented stripes, spanning the sprites' brightness range, so block
//     matching finds texture everywhere;
//   - velocities are whole pixels per frame (integer block matching resolves
//     them exactly; sub-pixel motion would blur the bound we report);
//   - a still sprite belongs to the background in the truth (nothing in a
//     frame pair tells it apart) and is drawn behind the moving ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../data/dataset.hpp"

namespace ssl::video {

struct synthetic_clip_options {
    std::size_t clips = 100;
    std::size_t frames = 8;          ///< T per clip
    std::size_t size = 28;           ///< frames are size x size, grey
    std::size_t max_sprites = 2;     ///< 1..max_sprites sprites per clip
    std::size_t sprite_min = 14;     ///< sprite side, drawn in [sprite_min, sprite_max]
    std::size_t sprite_max = 20;
    double still_probability = 0.25; ///< a sprite does not move (at least one per clip moves)
    std::size_t max_speed = 2;       ///< sprite velocity components in [-max_speed, max_speed] pixels per frame
    std::size_t camera_speed = 1;    ///< camera velocity components in [-camera_speed, camera_speed]
    double noise = 0.03;             ///< std of the per-pixel Gaussian noise
    double flicker = 0.1;            ///< gain in [1 - f, 1 + f], offset in [-f / 2, f / 2] per frame
    std::uint64_t seed = 0;
};

struct synthetic_clip {
    std::vector<tensor<std::uint8_t>> frames;  ///< T of (1, size, size)
    std::vector<tensor<std::uint8_t>> truth;   ///< T of (size, size), 0 / 1: moving sprites
};

namespace detail {

/// Smooth value noise on a (H, W) canvas: bilinear interpolation of a random
/// lattice of `cell` pixels, three octaves, plus stripes; values in [0, 1].
inline std::vector<float> texture(std::size_t H, std::size_t W, philox& g) {
    std::vector<double> acc(H * W, 0.0);
    double amp = 1.0, total = 0;
    for (std::size_t cell : {6u, 3u, 1u}) {
        const std::size_t gh = H / cell + 2, gw = W / cell + 2;
        std::vector<double> lat(gh * gw);
        for (auto& v : lat) v = g.uniform(0.0, 1.0);
        for (std::size_t y = 0; y < H; ++y)
            for (std::size_t x = 0; x < W; ++x) {
                const double fy = static_cast<double>(y) / static_cast<double>(cell),
                             fx = static_cast<double>(x) / static_cast<double>(cell);
                const std::size_t y0 = static_cast<std::size_t>(fy), x0 = static_cast<std::size_t>(fx);
                const double ty = fy - static_cast<double>(y0), tx = fx - static_cast<double>(x0);
                const double v = (1 - ty) * ((1 - tx) * lat[y0 * gw + x0] + tx * lat[y0 * gw + x0 + 1]) +
                                 ty * ((1 - tx) * lat[(y0 + 1) * gw + x0] + tx * lat[(y0 + 1) * gw + x0 + 1]);
                acc[y * W + x] += amp * v;
            }
        total += amp;
        amp *= 0.7;
    }
    const double angle = g.uniform(0.0, 3.14159265358979), period = g.uniform(5.0, 11.0), phase = g.uniform(0.0, 6.3);
    std::vector<float> out(H * W);
    double lo = INFINITY, hi = -INFINITY;
    for (std::size_t k = 0; k < H * W; ++k) {
        const double x = static_cast<double>(k % W), y = static_cast<double>(k / W);
        const double stripe = 0.15 * std::sin(6.28318530718 * (x * std::cos(angle) + y * std::sin(angle)) / period + phase);
        acc[k] = acc[k] / total + stripe;
        lo = std::min(lo, acc[k]), hi = std::max(hi, acc[k]);
    }
    for (std::size_t k = 0; k < H * W; ++k) out[k] = static_cast<float>(0.05 + 0.9 * (acc[k] - lo) / std::max(hi - lo, 1e-9));
    return out;
}

/// Image i of `d` (channel mean) resized to side x side bilinearly, in [0, 1].
inline std::vector<float> sprite_image(const data::image_dataset& d, std::size_t i, std::size_t side) {
    const std::size_t C = d.channels(), h = d.height(), w = d.width();
    const std::uint8_t* p = d.images.data() + i * d.image_bytes();
    std::vector<float> out(side * side);
    for (std::size_t y = 0; y < side; ++y)
        for (std::size_t x = 0; x < side; ++x) {
            const double sy = std::clamp((static_cast<double>(y) + 0.5) * static_cast<double>(h) / static_cast<double>(side) - 0.5, 0.0, static_cast<double>(h - 1));
            const double sx = std::clamp((static_cast<double>(x) + 0.5) * static_cast<double>(w) / static_cast<double>(side) - 0.5, 0.0, static_cast<double>(w - 1));
            const std::size_t y0 = static_cast<std::size_t>(sy), x0 = static_cast<std::size_t>(sx);
            const std::size_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
            const double ty = sy - static_cast<double>(y0), tx = sx - static_cast<double>(x0);
            double v = 0;
            for (std::size_t c = 0; c < C; ++c) {
                const std::uint8_t* q = p + c * h * w;
                v += (1 - ty) * ((1 - tx) * q[y0 * w + x0] + tx * q[y0 * w + x1]) + ty * ((1 - tx) * q[y1 * w + x0] + tx * q[y1 * w + x1]);
            }
            out[y * side + x] = static_cast<float>(v / (255.0 * static_cast<double>(C)));
        }
    return out;
}

}  // namespace detail

/// Clip `index` of the set described by `o`, its sprites drawn from `sprites`.
inline synthetic_clip make_synthetic_clip(const data::image_dataset& sprites, const synthetic_clip_options& o,
                                          std::size_t index) {
    require(!sprites.empty(), "video::make_synthetic_clip: the sprite set is empty");
    require(o.frames >= 2, "video::synthetic_clip_options: frames must be >= 2, got ", o.frames);
    require(o.size >= 8, "video::synthetic_clip_options: size must be >= 8, got ", o.size);
    require(o.max_sprites >= 1, "video::synthetic_clip_options: max_sprites must be >= 1");
    require(o.sprite_min >= 2 && o.sprite_min <= o.sprite_max && o.sprite_max <= o.size,
            "video::synthetic_clip_options: need 2 <= sprite_min <= sprite_max <= size, got ", o.sprite_min, ", ",
            o.sprite_max, ", ", o.size);
    require(o.still_probability >= 0 && o.still_probability <= 1, "video::synthetic_clip_options: still_probability must be in [0, 1]");
    require(o.max_speed >= 1, "video::synthetic_clip_options: max_speed must be >= 1");
    require(o.noise >= 0 && o.flicker >= 0 && o.flicker < 1, "video::synthetic_clip_options: noise >= 0, flicker in [0, 1)");
    philox g(o.seed, 0x6d6f74696f6eULL + index);  // "motion"
    const std::size_t S = o.size, T = o.frames;
    const long cam = static_cast<long>(o.camera_speed);
    auto draw = [&](long lim) { return static_cast<long>(g.below(static_cast<std::uint64_t>(2 * lim + 1))) - lim; };
    const long cvx = cam ? draw(cam) : 0, cvy = cam ? draw(cam) : 0;
    const std::size_t margin = o.camera_speed * T + 1;
    const std::size_t canvas = S + 2 * margin;
    const auto bg = detail::texture(canvas, canvas, g);

    // positions and velocities in the frame's coordinates: the background
    // moves by -camera per frame, a still sprite with it, a moving sprite by
    // its own frame velocity (bouncing off the frame's edges)
    struct sprite {
        std::vector<float> img;
        std::size_t side;
        long x, y, vx, vy;  ///< frame position and frame velocity
        bool still;
    };
    std::vector<sprite> sp(1 + g.below(o.max_sprites));
    bool any_moving = false;
    for (std::size_t k = 0; k < sp.size(); ++k) {
        auto& s = sp[k];
        s.side = o.sprite_min + g.below(o.sprite_max - o.sprite_min + 1);
        s.img = detail::sprite_image(sprites, g.below(sprites.size()), s.side);
        s.x = static_cast<long>(g.below(S - s.side + 1));
        s.y = static_cast<long>(g.below(S - s.side + 1));
        s.still = g.uniform(0.0, 1.0) < o.still_probability && (any_moving || k + 1 < sp.size());
        s.vx = -cvx, s.vy = -cvy;
        while (!s.still && s.vx == -cvx && s.vy == -cvy) {  // it must move against the background
            s.vx = draw(static_cast<long>(o.max_speed));
            s.vy = draw(static_cast<long>(o.max_speed));
        }
        any_moving = any_moving || !s.still;
    }
    // the still sprites first: a moving object passes in front of them
    std::stable_sort(sp.begin(), sp.end(), [](const sprite& a, const sprite& b) { return a.still && !b.still; });
    synthetic_clip clip;
    std::vector<float> f(S * S);
    std::vector<std::uint8_t> truth(S * S);
    for (std::size_t t = 0; t < T; ++t) {
        const long ox = static_cast<long>(margin) + cvx * static_cast<long>(t), oy = static_cast<long>(margin) + cvy * static_cast<long>(t);
        for (std::size_t y = 0; y < S; ++y)
            for (std::size_t x = 0; x < S; ++x)
                f[y * S + x] = bg[static_cast<std::size_t>(oy + static_cast<long>(y)) * canvas + static_cast<std::size_t>(ox + static_cast<long>(x))];
        std::fill(truth.begin(), truth.end(), 0);
        for (auto& s : sp) {
            // moving against the background (a bounce can make a sprite still for a while)
            const bool moving = s.vx != -cvx || s.vy != -cvy;
            for (std::size_t y = 0; y < s.side; ++y)
                for (std::size_t x = 0; x < s.side; ++x) {
                    const long fy = s.y + static_cast<long>(y), fx = s.x + static_cast<long>(x);
                    if (fy < 0 || fx < 0 || fy >= static_cast<long>(S) || fx >= static_cast<long>(S)) continue;
                    const float v = s.img[y * s.side + x], a = std::min(1.0f, 4.0f * v);
                    const std::size_t q = static_cast<std::size_t>(fy) * S + static_cast<std::size_t>(fx);
                    f[q] = (1 - a) * f[q] + a * v;
                    if (a > 0.5f) truth[q] = moving;
                }
            s.x += s.vx, s.y += s.vy;
            if (s.still) continue;  // it drifts with the background, out of the frame if it must
            const long lim = static_cast<long>(S - s.side);
            if (s.x < 0 || s.x > lim) s.vx = -s.vx, s.x = std::clamp(s.x, 0L, lim);
            if (s.y < 0 || s.y > lim) s.vy = -s.vy, s.y = std::clamp(s.y, 0L, lim);
        }
        const double gain = 1 + o.flicker * g.uniform(-1.0, 1.0), off = 0.5 * o.flicker * g.uniform(-1.0, 1.0);
        tensor<std::uint8_t> fr({1, S, S});
        for (std::size_t k = 0; k < S * S; ++k) {
            const double v = std::clamp(gain * f[k] + off + o.noise * g.normal(), 0.0, 1.0);
            fr[k] = static_cast<std::uint8_t>(std::lround(v * 255.0));
        }
        tensor<std::uint8_t> tr({S, S});
        std::copy(truth.begin(), truth.end(), tr.data());
        clip.frames.push_back(std::move(fr));
        clip.truth.push_back(std::move(tr));
    }
    return clip;
}

}  // namespace ssl::video
