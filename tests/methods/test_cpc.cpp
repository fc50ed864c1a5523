// CPC v2 (cpc.hpp) end to end: its config, a step through the method, the
// features of a whole image (the mean of its patch features), the encoder
// without batch statistics, and the loss falling on real images.
#include <doctest/doctest.h>

#include "fashion_mnist_subset.hpp"

#include <ssl/backbone/any_backbone.hpp>
#include <ssl/cpc.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/trainer.hpp>

#include <cmath>

namespace test_cpc_method {  // each file in its own namespace: an area builds as one unity translation unit

namespace {
std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}
}  // namespace

TEST_CASE("cpc_config: 7x7 grid of 8-px patches for 28 px, K = 3; config JSON round trip; bad grids") {
    const ssl::convnet_options net{.in_channels = 1, .width = 4, .seed = 1};
    auto c = ssl::cpc_config(net, 28, 1);
    CHECK(c.augment.grid == 7);
    CHECK(c.head.steps == 3);
    CHECK(c.head.layers == 3);
    CHECK(c.loss.temperature == 1.0);
    ssl::cpc<> m(c);
    CHECK(m.augmentation().geometry().patch == 8);
    CHECK(m.eval_copies() == 49);
    CHECK(m.head().out_features() == 4 * m.backbone().output_dim());
    CHECK(ssl::cpc_config(net, 28, 1, {.grid = 3}).head.steps == 2);  // min(3, g - 1)
    const auto j = ssl::io::config_to_json(c);
    const auto back = ssl::io::config_from_json<ssl::cpc<>::config>(j, "test");
    CHECK(ssl::io::config_to_json(back) == j);
    CHECK(j["augment"]["grid"] == 7);
    CHECK(j["head"]["steps"] == 3);
    CHECK_THROWS_WITH_AS(ssl::cpc_config(net, 16, 1), doctest::Contains("images of 16 px are too small for a 7x7 grid"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::cpc_config(net, 28, 1, {.grid = 4, .steps = 4}),
                         "cpc: K = 4 prediction steps on a 4x4 grid: step k predicts the patch k rows below, so K must "
                         "be at most 3",
                         ssl::value_error);
}

TEST_CASE("cpc: a step runs through the patches; embed is the mean of the 49 patch features of the image") {
    const ssl::convnet_options net{.in_channels = 1, .width = 4, .seed = 3};
    ssl::cpc<> m(ssl::cpc_config(net, 28, 1));
    auto data = ssl::data::synthetic({.size = 8, .seed = 2}).to_dataset();
    const auto ids = iota(8);
    const auto images = data.batch(ids);
    auto r = m.train_step(images, ids, {.seed = 1});
    MESSAGE("first CPC loss on 8 images (392 patches): ", r.loss);
    CHECK(std::isfinite(r.loss));
    CHECK(r.loss > 0.5 * std::log(392.0));
    REQUIRE(r.metrics.size() == 1);
    CHECK(r.metrics[0].first == "cpc_top1");
    double g = 0;  // the encoder gets a gradient
    m.backbone().for_each_parameter([&](const std::string&, auto& p) {
        for (float v : p.grad) g += std::abs(v);
    }, "");
    CHECK(g > 0);
    // embed: the encoder on the unaugmented patch grid, averaged per image
    const auto f = m.embed(images, 3);  // chunks of 3 * 4 / 49 -> 1 image
    REQUIRE(f.shape() == ssl::shape_t{8, 16});
    m.backbone().train(false);
    const auto pf = m.backbone().forward(m.augmentation().eval_transform(images)).out;  // (49 * 8, 16)
    double d = 0;
    for (std::size_t i = 0; i < 8; ++i)
        for (std::size_t k = 0; k < 16; ++k) {
            double s = 0;
            for (std::size_t p = 0; p < 49; ++p) s += pf.at(p * 8 + i, k);
            d = std::max(d, std::abs(s / 49.0 - double(f.at(i, k))));
        }
    CHECK(d < 1e-5);
    // chunking does not change the features
    const auto f2 = m.embed(images);
    for (std::size_t k = 0; k < f.numel(); ++k) CHECK(f2[k] == doctest::Approx(f[k]).epsilon(1e-5));
}

TEST_CASE("cpc: the encoder's features of a patch do not depend on the other patches (no batch statistics)") {
    ssl::convnet_ln<float> ln({.in_channels = 1, .width = 4});
    ssl::convnet<float> bn({.in_channels = 1, .width = 4});
    CHECK(ssl::batch_norm_buffer(ln).empty());
    CHECK(ssl::batch_norm_buffer(bn) == "features.1.running_mean");
    ssl::any_backbone<float> any({.arch = "convnet-ln", .in_channels = 1, .width = 4});
    CHECK(ssl::batch_norm_buffer(any).empty());
    ssl::any_backbone<float> r18({.arch = "resnet18", .in_channels = 1, .width = 4});
    CHECK(ssl::batch_norm_buffer(r18) == "bn1.running_mean");
    // through the method: the patches of one image give the same features
    // in training mode whether the batch holds one image or three
    ssl::cpc<> m(ssl::cpc_config(ssl::convnet_options{.in_channels = 1, .width = 4}, 28, 1));
    auto data = ssl::data::synthetic({.size = 3, .seed = 5}).to_dataset();
    const auto ids = iota(3);
    const auto vb = m.augmentation().make_views(data.batch(ids), ids, 4, 0);
    m.backbone().train(true);
    const auto all = m.backbone().forward(vb.views[0]).out;
    const std::vector<std::size_t> one{2};
    const auto vb1 = m.augmentation().make_views(data.batch(one), one, 4, 0);
    const auto alone = m.backbone().forward(vb1.views[0]).out;
    double d = 0;
    for (std::size_t p = 0; p < 49; ++p)
        for (std::size_t k = 0; k < 16; ++k) d = std::max(d, double(std::abs(alone.at(p, k) - all.at(p * 3 + 2, k))));
    CHECK(d < 1e-5);
}

TEST_CASE("cpc learns on real images: the loss falls well below chance") {
    const auto loaded = ssl_test::fashion_mnist_subset(512);
    if (!loaded) return;
    const ssl::convnet_options net{.in_channels = 1, .width = 8, .seed = 1};
    ssl::cpc<> m(ssl::cpc_config(net, 28, 1));
    // Adam without weight decay, as the ssl program's recipe for cpc
    ssl::trainer_config tc{.epochs = 4, .batch = 32, .optimizer = "adam", .lr = 1e-3, .weight_decay = 0, .seed = 3,
                           .progress = false};
    auto s = ssl::trainer<ssl::cpc<>>(m, *loaded, tc).fit();
    REQUIRE(s.epoch_loss.size() == 4);
    MESSAGE("cpc on 512 Fashion-MNIST images: loss per epoch ", s.epoch_loss[0], " ", s.epoch_loss[1], " ",
            s.epoch_loss[2], " ", s.epoch_loss[3], " (chance log(49 * 32) = ", std::log(49.0 * 32.0), ")");
    CHECK(s.epoch_loss.back() < s.epoch_loss.front() - 0.2);
    CHECK(s.epoch_loss.back() < std::log(49.0 * 32.0) - 0.5);
}

}  // namespace test_cpc_method
