// Motion segmentation (video/segment.hpp) and the synthetic clips
// (video/synthetic_clips.hpp): known flows recovered exactly, the camera fit
// robust to a moving object, the masks of generated clips against their truth.
#include <doctest/doctest.h>

#include <cmath>

#include <ssl/video/segment.hpp>
#include <ssl/video/synthetic_clips.hpp>

#include "video/discs.hpp"

namespace test_video_segment {

using ssl::tensor;

/// A random texture frame (H, W) in [0, 1], smooth enough to match.
tensor<float> texture(std::size_t H, std::size_t W, std::uint64_t seed) {
    ssl::philox g(seed, 3);
    tensor<float> f({H, W});
    for (auto& v : f) v = g.uniform();
    tensor<float> s({H, W});
    for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x) {
            float a = 0;
            for (std::size_t j = 0; j < 2; ++j)
                for (std::size_t i = 0; i < 2; ++i) a += f[std::min(H - 1, y + j) * W + std::min(W - 1, x + i)];
            s[y * W + x] = a / 4;
        }
    return s;
}

/// `f` shifted by (dx, dy): out(p) = f(p - d), the border repeated.
tensor<float> shifted(const tensor<float>& f, long dx, long dy) {
    const long H = static_cast<long>(f.dim(0)), W = static_cast<long>(f.dim(1));
    tensor<float> o(f.shape());
    for (long y = 0; y < H; ++y)
        for (long x = 0; x < W; ++x)
            o[static_cast<std::size_t>(y * W + x)] = f[static_cast<std::size_t>(std::clamp(y - dy, 0L, H - 1) * W + std::clamp(x - dx, 0L, W - 1))];
    return o;
}

using ssl_test::discs;

TEST_CASE("block_flow recovers a global integer shift exactly, and ignores a brightness flicker") {
    const auto a = texture(24, 24, 1);
    for (auto [dx, dy] : {std::pair{2L, -1L}, std::pair{0L, 0L}, std::pair{-3L, 3L}}) {
        auto b = shifted(a, dx, dy);
        for (auto& v : b) v = 0.7f * v + 0.2f;  // gain and offset: the standardisation removes them
        const auto f = ssl::video::block_flow(a, b);
        std::size_t right = 0, inner = 0;
        for (std::size_t y = 4; y < 20; ++y)
            for (std::size_t x = 4; x < 20; ++x) {
                ++inner;
                right += f.dx[y * 24 + x] == float(dx) && f.dy[y * 24 + x] == float(dy);
            }
        CHECK(right == inner);
        const auto cam = ssl::video::fit_camera_motion(f);
        CHECK(cam.u(12, 12) == doctest::Approx(double(dx)).epsilon(0.02));
        CHECK(cam.v(12, 12) == doctest::Approx(double(dy)).epsilon(0.02));
    }
}

TEST_CASE("the camera fit is robust to a moving object; segment_clip finds the object, not the pan") {
    // background pans by (1, 0) per frame; a 10 x 10 textured square moves by (-2, 1)
    const auto bg = texture(40, 60, 2), obj = texture(10, 10, 9);
    std::vector<tensor<float>> frames;
    std::vector<tensor<std::uint8_t>> truth;
    for (long t = 0; t < 4; ++t) {
        tensor<float> f({32, 32});
        tensor<std::uint8_t> m = tensor<std::uint8_t>::zeros({32, 32});
        for (long y = 0; y < 32; ++y)
            for (long x = 0; x < 32; ++x) f[static_cast<std::size_t>(y * 32 + x)] = bg[static_cast<std::size_t>((y + 4) * 60 + x + 4 + t)];
        const long ox = 18 - 2 * t, oy = 8 + t;
        for (long y = 0; y < 10; ++y)
            for (long x = 0; x < 10; ++x) {
                f[static_cast<std::size_t>((oy + y) * 32 + ox + x)] = obj[static_cast<std::size_t>(y * 10 + x)];
                m[static_cast<std::size_t>((oy + y) * 32 + ox + x)] = 1;
            }
        frames.push_back(f);
        truth.push_back(m);
    }
    const auto f = ssl::video::block_flow(frames[1], frames[2]);
    const auto cam = ssl::video::fit_camera_motion(f);
    CHECK(cam.u(16, 16) == doctest::Approx(-1.0).epsilon(0.05));  // the background moves left as the camera pans right
    CHECK(std::abs(cam.v(16, 16)) < 0.1);
    const auto masks = ssl::video::segment_clip(frames);
    REQUIRE(masks.size() == 4);
    const double iou = ssl::video::mask_iou(masks, truth);
    MESSAGE("square over a panning texture: IoU ", iou);
    CHECK(iou > 0.7);
}

TEST_CASE("clean_mask drops small components and fills holes; mask_iou") {
    std::vector<std::uint8_t> m(8 * 8, 0);
    for (std::size_t y = 1; y < 6; ++y)
        for (std::size_t x = 1; x < 6; ++x) m[y * 8 + x] = (y == 3 && x == 3) ? 0 : 1;  // a ring with a hole
    m[7 * 8 + 7] = 1;                                                               // a lone pixel
    ssl::video::clean_mask(m, 8, 8, 2, true);
    CHECK(m[3 * 8 + 3] == 1);
    CHECK(m[7 * 8 + 7] == 0);
    tensor<std::uint8_t> a = tensor<std::uint8_t>::zeros({2, 2}), b = tensor<std::uint8_t>::zeros({2, 2});
    CHECK(ssl::video::mask_iou({a}, {b}) == 1.0);
    a[0] = 1, b[0] = 1, b[1] = 1;
    CHECK(ssl::video::mask_iou({a}, {b}) == doctest::Approx(0.5));
}

TEST_CASE("segment_clip refuses bad clips with a sentence") {
    const auto a = texture(16, 16, 1);
    CHECK_THROWS_WITH_AS(ssl::video::segment_clip({a}), doctest::Contains("at least 2 frames"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::video::segment_clip({a, texture(16, 17, 2)}), doctest::Contains("one size"),
                         ssl::shape_error);
    auto nan = a;
    nan[5] = NAN;
    CHECK_THROWS_WITH_AS(ssl::video::segment_clip({a, nan}), doctest::Contains("not finite"), ssl::value_error);
    CHECK_THROWS_AS(ssl::video::segment_clip({a, a}, {.search = 0}), ssl::value_error);
    CHECK_THROWS_AS(ssl::video::segment_clip({a, a}, {.threshold = 0}), ssl::value_error);
}

TEST_CASE("synthetic clips: deterministic per seed and index, truth only on moving sprites; segmentation IoU") {
    const auto sprites = discs(6);
    const ssl::video::synthetic_clip_options o{.clips = 12, .frames = 6, .size = 28, .seed = 4};
    const auto c0 = ssl::video::make_synthetic_clip(sprites, o, 3), c1 = ssl::video::make_synthetic_clip(sprites, o, 3);
    REQUIRE(c0.frames.size() == 6);
    CHECK(c0.frames[0].shape() == ssl::shape_t{1, 28, 28});
    for (std::size_t t = 0; t < 6; ++t) {
        CHECK(std::equal(c0.frames[t].begin(), c0.frames[t].end(), c1.frames[t].begin()));
        CHECK(std::equal(c0.truth[t].begin(), c0.truth[t].end(), c1.truth[t].begin()));
    }
    const auto other = ssl::video::make_synthetic_clip(sprites, o, 4);
    CHECK(!std::equal(c0.frames[0].begin(), c0.frames[0].end(), other.frames[0].begin()));
    // every clip has a moving sprite: its truth is non-empty in every frame
    std::vector<tensor<std::uint8_t>> all_truth, all_masks;
    for (std::size_t i = 0; i < o.clips; ++i) {
        const auto c = ssl::video::make_synthetic_clip(sprites, o, i);
        std::size_t fg = 0;
        for (const auto& t : c.truth)
            for (auto v : t) fg += v;
        CHECK(fg > 0);
        std::vector<tensor<float>> grey;
        for (const auto& f : c.frames) {
            tensor<float> g({28, 28});
            for (std::size_t k = 0; k < g.numel(); ++k) g[k] = f[k] / 255.0f;
            grey.push_back(g);
        }
        for (auto& m : ssl::video::segment_clip(grey)) all_masks.push_back(std::move(m));
        for (const auto& t : c.truth) all_truth.push_back(t);
    }
    const double iou = ssl::video::mask_iou(all_masks, all_truth);
    MESSAGE("pseudo-mask IoU on 12 synthetic clips of discs: ", iou);
    CHECK(iou > 0.6);
    CHECK_THROWS_AS(ssl::video::make_synthetic_clip(sprites, {.frames = 1}, 0), ssl::value_error);
    CHECK_THROWS_AS(ssl::video::make_synthetic_clip(sprites, {.sprite_min = 30, .sprite_max = 30}, 0), ssl::value_error);
    CHECK_THROWS_AS(ssl::video::make_synthetic_clip(ssl::data::image_dataset{}, o, 0), ssl::value_error);
}

}  // namespace test_video_segment
