// Learning by watching objects move (motion.hpp) end to end: the mask rides
// through crops and flips with its frame, the pseudo-masks join the frames,
// and the network learns to predict them from a single frame.
#include <doctest/doctest.h>

#include <cmath>

#include <ssl/backbone/convnet.hpp>
#include <ssl/motion.hpp>
#include <ssl/trainer.hpp>
#include <ssl/video/synthetic_clips.hpp>

#include "video/discs.hpp"

namespace test_motion_method {

using ssl::tensor;

using ssl_test::discs;

/// `clips` synthetic clips as load_clip_folder returns them, and their truth masks.
std::pair<ssl::data::image_dataset, std::vector<tensor<std::uint8_t>>> clip_set(std::size_t clips, std::uint64_t seed) {
    const auto sprites = discs(8);
    const ssl::video::synthetic_clip_options o{.clips = clips, .frames = 6, .size = 28, .seed = seed};
    ssl::data::image_dataset d;
    d.images = tensor<std::uint8_t>({clips * 6, 1, 28, 28});
    d.name = ssl::data::clip_set_name;
    d.num_classes = clips;
    std::vector<tensor<std::uint8_t>> truth;
    for (std::size_t c = 0; c < clips; ++c) {
        const auto clip = ssl::video::make_synthetic_clip(sprites, o, c);
        for (std::size_t t = 0; t < 6; ++t) {
            std::copy(clip.frames[t].begin(), clip.frames[t].end(), d.images.data() + (c * 6 + t) * 784);
            d.labels.push_back(static_cast<std::int64_t>(c));
            truth.push_back(clip.truth[t]);
        }
    }
    return {d, truth};
}

TEST_CASE("motion_views: the mask follows the frame through crop and flip exactly; eval drops it") {
    ssl::augment::motion_views a({.size = 16, .grid = 4, .channels = 1, .jitter = 0});
    // frame == mask: a blocky 0 / 1 pattern; after the geometric ops the
    // target of each cell must be the cell mean of the (de-normalised) view
    tensor<float> img({3, 2, 24, 24});
    ssl::philox g(1, 2);
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t y = 0; y < 24; ++y)
            for (std::size_t x = 0; x < 24; ++x) {
                const float v = ((y / 6 + x / 4 + i) % 3 == 0) ? 1.0f : 0.0f;
                img[((i * 2 + 0) * 24 + y) * 24 + x] = v;
                img[((i * 2 + 1) * 24 + y) * 24 + x] = v;
            }
    const std::size_t ids[3] = {0, 1, 2};
    const auto vb = a.make_views(img, ids, 7, 1);
    REQUIRE(vb.views.size() == 1);
    CHECK(vb.views[0].shape() == ssl::shape_t{3, 1, 16, 16});
    REQUIRE(vb.soft_targets.shape() == ssl::shape_t{16 * 3, 1});
    const auto norm = ssl::augment::default_normalize(1);
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t c = 0; c < 16; ++c) {
            double m = 0;
            for (std::size_t y = (c / 4) * 4; y < (c / 4) * 4 + 4; ++y)
                for (std::size_t x = (c % 4) * 4; x < (c % 4) * 4 + 4; ++x)
                    m += std::clamp(vb.views[0][(i * 16 + y) * 16 + x] * norm.stddev[0] + norm.mean[0], 0.0, 1.0);
            CHECK(vb.soft_targets[c * 3 + i] == doctest::Approx(m / 16).epsilon(1e-4));
        }
    // the same frames without their masks evaluate to the same tensor
    tensor<float> frames({3, 1, 24, 24});
    for (std::size_t i = 0; i < 3; ++i) std::copy_n(img.data() + i * 2 * 576, 576, frames.data() + i * 576);
    const auto e1 = a.eval_transform(img), e2 = a.eval_transform(frames);
    CHECK(e1.shape() == ssl::shape_t{3, 1, 16, 16});
    CHECK(std::equal(e1.begin(), e1.end(), e2.begin()));
    CHECK_THROWS_WITH_AS(a.make_views(frames, ids, 7, 1), doctest::Contains("clips:DIR"), ssl::shape_error);
    img[5] = 2.0f;
    CHECK_THROWS_AS(a.make_views(img, ids, 7, 1), ssl::value_error);
    CHECK_THROWS_AS(ssl::augment::motion_views({.size = 30, .grid = 4}), ssl::value_error);
    CHECK_THROWS_AS(ssl::augment::motion_views({.channels = 2}), ssl::value_error);
}

TEST_CASE("motion_training_set: pseudo-masks as the last channel, near the truth; other sets refused") {
    auto [clips, truth] = clip_set(6, 3);
    ssl::motion_masks_report rep;
    const auto t = ssl::motion_training_set(clips, {}, &rep);
    CHECK(t.images.shape() == ssl::shape_t{36, 2, 28, 28});
    CHECK(rep.clips == 6);
    CHECK(rep.frames == 36);
    CHECK(rep.foreground > 0.02);
    std::vector<tensor<std::uint8_t>> masks;
    for (std::size_t i = 0; i < 36; ++i) {
        CHECK(std::equal(clips.images.data() + i * 784, clips.images.data() + (i + 1) * 784, t.images.data() + i * 2 * 784));
        tensor<std::uint8_t> m({28, 28});
        for (std::size_t k = 0; k < 784; ++k) {
            const auto v = t.images[(i * 2 + 1) * 784 + k];
            CHECK((v == 0 || v == 255));
            m[k] = v != 0;
        }
        masks.push_back(m);
    }
    const double iou = ssl::video::mask_iou(masks, truth);
    MESSAGE("pseudo-masks of 6 clips against their truth: IoU ", iou);
    CHECK(iou > 0.5);
    // given masks replace the segmentation (the bounds of bench/README.md)
    const auto tt = ssl::motion_training_set(clips, {}, nullptr, &truth);
    CHECK(tt.images[(5 * 2 + 1) * 784 + 400] == (truth[5][400] ? 255 : 0));
    auto folder = clips;
    folder.name = "photos";
    CHECK_THROWS_WITH_AS(ssl::motion_training_set(folder, {}), doctest::Contains("clips:DIR"), ssl::value_error);
}

TEST_CASE("motion_config: one logit per cell, taps measured, JSON round trip with the segmentation settings") {
    const ssl::convnet_options net{.in_channels = 1, .width = 8, .seed = 1};
    auto c = ssl::motion_config<ssl::convnet<float>>(net, {.size = 28, .grid = 7, .hidden = 32});
    CHECK(c.head.outputs == 1);
    CHECK(c.head.taps.size() == 5);
    CHECK(c.augment.channels == 1);
    c.augment.motion_threshold = 1.5;
    const auto j = ssl::io::config_to_json(c);
    const auto back = ssl::io::config_from_json<decltype(c)>(j, "test");
    CHECK(back.augment.motion_threshold == 1.5);
    CHECK(back.head.tap_channels == c.head.tap_channels);
    CHECK(ssl::segment_options_of(back.augment).threshold == 1.5);
}

TEST_CASE("motion learns to segment moving objects from one frame: held-out BCE below the best constant") {
    const auto [clips, truth] = clip_set(24, 5);
    const auto train = ssl::motion_training_set(clips, {});
    const ssl::convnet_options net{.in_channels = 1, .width = 8, .seed = 1};
    using M = ssl::motion<ssl::convnet<float>>;
    M m(ssl::motion_config<ssl::convnet<float>>(net, {.size = 28, .grid = 7, .hidden = 64, .dropout = 0.1}));
    ssl::trainer_config tc{.epochs = 6, .batch = 32, .lr = 0.05, .seed = 3, .progress = false};
    auto s = ssl::trainer<M>(m, train, tc).fit();
    MESSAGE("motion on 144 frames: loss per epoch ", s.epoch_loss.front(), " -> ", s.epoch_loss.back());
    CHECK(std::isfinite(s.first_loss));
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    // fresh clips, true masks: the trained network against the best constant (the foreground rate)
    const auto [fresh, ftruth] = clip_set(8, 77);
    const auto test = ssl::motion_training_set(fresh, {}, nullptr, &ftruth);
    std::vector<std::size_t> all(test.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    const auto x = test.batch(std::span<const std::size_t>(all.data(), all.size()));
    ssl::augment::motion_views centre({.size = 28, .grid = 7, .channels = 1, .crop_min_scale = 1.0, .jitter = 0});
    const auto targets = centre.targets(x);  // whole frames: the crop of scale 1 at the frame's size is the frame
    m.train(false);
    auto taps = m.backbone().forward_taps(m.augmentation().eval_transform(x), m.head().tap_names());
    const auto z = m.head().forward_taps(taps.taps, {}, test.size()).out;
    const auto trained = m.loss()(z, targets);
    double rate = 0;
    for (auto v : targets) rate += v;
    rate /= double(targets.numel());
    const auto constant = m.loss()(tensor<float>::full(z.shape(), float(std::log(rate / (1 - rate)))), targets);
    MESSAGE("held-out BCE against the true masks: trained ", trained.value, " (IoU ", trained.metrics[1].second,
            " %), best constant ", constant.value);
    CHECK(trained.value < 0.9 * constant.value);
    CHECK(trained.metrics[1].second > 20.0);
}

}  // namespace test_motion_method
