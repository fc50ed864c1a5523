// Colorization (colorization.hpp) end to end: the views and targets, the
// config's measured taps, and the KL falling through the trainer on colour
// images whose colour follows their texture.
#include <doctest/doctest.h>

#include <cmath>

#include <ssl/backbone/convnet.hpp>
#include <ssl/colorization.hpp>
#include <ssl/trainer.hpp>

namespace test_colorization_method {

/// n colour images, 32 x 32: a vertical boundary at a random column; left of
/// it horizontal stripes in red, right of it vertical stripes in blue, with
/// random lightness and noise. Colour is readable from texture, not from
/// lightness alone.
ssl::data::image_dataset striped(std::size_t n, std::uint64_t seed) {
    ssl::data::image_dataset d;
    d.images = ssl::tensor<std::uint8_t>({n, 3, 32, 32});
    d.name = "striped";
    ssl::philox g(seed, 1);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t cut = 8 + g.below(16);
        const double base = g.uniform(0.3, 0.7);
        for (std::size_t y = 0; y < 32; ++y)
            for (std::size_t x = 0; x < 32; ++x) {
                const bool left = x < cut;
                const double s = 0.25 * std::sin(2.1 * double(left ? y : x)) + g.uniform(-0.05, 0.05);
                const double v = std::clamp(base + s, 0.05, 0.95);
                const double r = left ? v : 0.3 * v, gg = 0.3 * v, b = left ? 0.3 * v : v;
                const double rgb[3] = {r, gg, b};
                for (std::size_t c = 0; c < 3; ++c)
                    d.images[((i * 3 + c) * 32 + y) * 32 + x] = static_cast<std::uint8_t>(std::lround(rgb[c] * 255));
            }
    }
    return d;
}

TEST_CASE("colorization_views: L view, targets per grid cell in row c * N + i, eval on L; bad input refused") {
    ssl::augment::colorization_views a({.size = 16, .grid = 4, .bins = 6, .radius = 2});
    ssl::tensor<float> img({2, 3, 20, 20});
    for (std::size_t i = 0; i < img.numel(); ++i) img[i] = 0.0f;
    for (std::size_t q = 0; q < 400; ++q) img[q] = 1.0f;              // image 0 red
    for (std::size_t q = 0; q < 400; ++q) img[1200 + 800 + q] = 1.0f;  // image 1 blue
    const std::size_t ids[2] = {0, 1};
    auto vb = a.make_views(img, ids, 1, 0);
    REQUIRE(vb.views.size() == 1);
    CHECK(vb.views[0].shape() == ssl::shape_t{2, 1, 16, 16});
    CHECK(vb.views[0][0] == doctest::Approx(53.2408 / 100 - 0.5).epsilon(1e-3));  // red's L*
    REQUIRE(vb.soft_targets.shape() == ssl::shape_t{16 * 2, 13});
    for (std::size_t c = 0; c < 16; ++c) {
        CHECK(vb.soft_targets[(c * 2 + 0) * 13 + 0] == doctest::Approx(1.0));  // image 0: hue 0 -> bin 0
        CHECK(vb.soft_targets[(c * 2 + 1) * 13 + 4] == doctest::Approx(1.0));  // image 1: hue 2/3 -> bin 4 of 6
        CHECK(vb.soft_targets[(c * 2 + 1) * 13 + 6 + 5] == doctest::Approx(1.0));  // chroma 1 -> last bin
        CHECK(vb.soft_targets[(c * 2 + 1) * 13 + 12] == doctest::Approx(1.0));     // weight: mean chroma
    }
    auto e = a.eval_transform(img);
    CHECK(e.shape() == ssl::shape_t{2, 1, 16, 16});
    auto gray = a.eval_transform(ssl::tensor<float>::full({1, 1, 20, 20}, 0.5f));
    CHECK(gray[0] == doctest::Approx(53.3889 / 100 - 0.5).epsilon(1e-3));
    img[7] = 255.0f;
    CHECK_THROWS_AS(a.make_views(img, ids, 1, 0), ssl::value_error);
    CHECK_THROWS_AS(ssl::augment::colorization_views({.size = 30, .grid = 4}), ssl::value_error);
}

TEST_CASE("colorization_config: 1-channel backbone, the taps' channels measured, the paper's defaults") {
    const ssl::convnet_options net{.in_channels = 3, .width = 8, .seed = 1};
    auto c = ssl::colorization_config<ssl::convnet<float>>(net, {.size = 32, .grid = 4, .hidden = 64});
    CHECK(c.backbone.in_channels == 1);
    CHECK(c.head.taps == std::vector<std::string>{"features.2", "features.6", "features.10", "features.13", "features.16"});
    CHECK(c.head.tap_channels == std::vector<std::size_t>{8, 24, 48, 32, 32});
    CHECK(c.head.outputs == 16);
    CHECK(c.loss.hue_weight == 5.0);
    CHECK(c.head.dropout == 0.5);
    const ssl::resnet_options rn{.in_channels = 3, .width = 4, .stem = ssl::stem::cifar, .seed = 1};
    auto r = ssl::colorization_config<ssl::resnet18<float>>(rn, {.size = 32, .grid = 4, .hidden = 32});
    CHECK(r.head.taps == std::vector<std::string>{"relu", "layer1", "layer2", "layer3", "layer4"});
    CHECK(r.head.tap_channels == std::vector<std::size_t>{4, 4, 8, 16, 32});
    CHECK_THROWS_AS(ssl::default_hypercolumn_taps({"conv1", "fc"}), ssl::value_error);
    // the config travels as JSON in checkpoints: taps and channels as arrays
    const auto j = ssl::io::config_to_json(r);
    CHECK(j["head"]["taps"].size() == 5);
    const auto back = ssl::io::config_from_json<decltype(r)>(j, "test");
    CHECK(back.head.taps == r.head.taps);
    CHECK(back.head.tap_channels == r.head.tap_channels);
    CHECK(back.augment.grid == 4);
    CHECK(back.loss.hue_weight == 5.0);
    auto broken = j;
    broken["head"]["tap_channels"] = "8";
    CHECK_THROWS_AS(ssl::io::config_from_json<decltype(r)>(broken, "test"), ssl::io_error);
}

TEST_CASE("colorization learns colour from texture: the KL falls through the trainer; features from L") {
    const auto train = striped(256, 3);
    const ssl::convnet_options net{.in_channels = 3, .width = 8, .seed = 1};
    using M = ssl::colorization<ssl::convnet<float>>;
    M m(ssl::colorization_config<ssl::convnet<float>>(net, {.size = 32, .grid = 4, .hidden = 64, .dropout = 0.2}));
    ssl::trainer_config tc{.epochs = 4, .batch = 32, .lr = 0.05, .seed = 3, .progress = false};
    auto s = ssl::trainer<M>(m, train, tc).fit();
    REQUIRE(s.epoch_loss.size() == 4);
    MESSAGE("colorization on 256 striped colour images: loss per epoch ", s.epoch_loss[0], " ", s.epoch_loss[1], " ",
            s.epoch_loss[2], " ", s.epoch_loss[3]);
    CHECK(std::isfinite(s.first_loss));
    CHECK(s.epoch_loss.back() < 0.6 * s.epoch_loss.front());
    // Beyond the prior: on fresh images the trained network's KL (eval mode)
    // is well below that of the best constant prediction, the batch's mean
    // histograms (what a network blind to texture could at most learn).
    const auto fresh = striped(64, 99);
    std::vector<std::size_t> all(64);
    for (std::size_t i = 0; i < 64; ++i) all[i] = i;
    const auto images = fresh.batch(std::span<const std::size_t>(all.data(), all.size()));
    auto vb = m.augmentation().make_views(images, all, 11, 0);
    m.train(false);
    auto taps = m.backbone().forward_taps(vb.views[0], m.head().tap_names());
    const auto z = m.head().forward_taps(taps.taps, {}, 64).out;
    const auto trained = m.loss()(z, vb.soft_targets);
    const std::size_t B = 8, W = 2 * B + 1, R = vb.soft_targets.dim(0);
    std::vector<double> mean(2 * B, 0.0);
    double wsum = 0;
    for (std::size_t r = 0; r < R; ++r) {
        const double w = vb.soft_targets[r * W + 2 * B];
        wsum += w;
        for (std::size_t k = 0; k < B; ++k) {
            mean[k] += w * vb.soft_targets[r * W + k];  // hue: the loss weights rows by w
            mean[B + k] += vb.soft_targets[r * W + B + k] / double(R);
        }
    }
    ssl::tensor<float> prior({R, 2 * B});
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t k = 0; k < 2 * B; ++k)
            prior[r * 2 * B + k] = float(std::log(std::max(k < B ? mean[k] / wsum : mean[k], 1e-12)));
    const auto best_constant = m.loss()(prior, vb.soft_targets);
    MESSAGE("held-out KL: trained ", trained.value, " (hue ", trained.metrics[0].second, ", hue top-1 ",
            trained.metrics[2].second, " %), best constant ", best_constant.value, " (hue ",
            best_constant.metrics[0].second, ", hue top-1 ", best_constant.metrics[2].second, " %)");
    CHECK(trained.value < 0.7 * best_constant.value);
    CHECK(trained.metrics[2].second > best_constant.metrics[2].second + 20);  // hue mode right far more often
    std::vector<std::size_t> idx{0, 1, 2, 3};
    const auto f = m.embed(train.batch(std::span<const std::size_t>(idx.data(), 4)));
    CHECK(f.shape() == ssl::shape_t{4, m.backbone().output_dim()});
    // parameter names: backbone, then the head's fc layers
    std::vector<std::string> names;
    m.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "");
    CHECK(names.front() == "backbone.features.0.weight");
    CHECK(names.back() == "head.fc2.bias");
}

}  // namespace test_colorization_method
