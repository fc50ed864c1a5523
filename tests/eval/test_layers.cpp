#include <doctest/doctest.h>

#include <ssl/backbone/resnet.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/eval.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace test_layers {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
namespace ev = ssl::eval;

TEST_CASE("pooled_grid: about 9k dimensions per layer (Goyal et al.'s ResNet-50 sizes)") {
    struct row {
        std::size_t c, h, s;
    };
    // ResNet-50 at 224 px: conv1, res2 .. res5
    for (auto r : {row{64, 112, 12}, row{256, 56, 6}, row{512, 28, 4}, row{1024, 14, 3}, row{2048, 7, 2},
                   // ResNet-18 width 16 on 28 px (CIFAR stem): conv1 .. layer4
                   row{16, 28, 24}, row{32, 14, 14}, row{64, 7, 7}, row{128, 4, 4}, row{9216, 3, 1}, row{20000, 2, 1}}) {
        CAPTURE(r.c);
        const auto g = ev::pooled_grid(r.c, r.h, r.h);
        CHECK(g.h == r.s);
        CHECK(g.w == r.s);
        if (r.c <= ev::layer_dim_budget) CHECK(r.c * g.h * g.w <= ev::layer_dim_budget);
    }
    CHECK(ev::pooled_grid(64, 5, 40).h == 5);  // clamped per side
    CHECK(ev::pooled_grid(64, 5, 40).w == 12);
    CHECK_THROWS_WITH_AS(ev::pooled_grid(0, 4, 4), doctest::Contains("empty map 0x4x4"), ssl::value_error);
}

TEST_CASE("adaptive_avg_pool: PyTorch's overlapping bins") {
    // 1 x 1 x 7 x 5 map of v(r, q) = 10 r + q; 3 x 2 grid: rows [0,3) [2,5) [4,7), cols [0,3) [2,5)
    tensor<double> m({1, 1, 7, 5});
    for (std::size_t r = 0; r < 7; ++r)
        for (std::size_t q = 0; q < 5; ++q) m[r * 5 + q] = 10.0 * static_cast<double>(r) + static_cast<double>(q);
    const auto p = ev::adaptive_avg_pool(m, 3, 2);
    REQUIRE(p.shape() == ssl::shape_t{1, 6});
    const double rows[3] = {10.0, 30.0, 50.0}, cols[2] = {1.0, 3.0};  // bin means of 10 r and of q
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 2; ++j) CHECK(p[i * 2 + j] == doctest::Approx(rows[i] + cols[j]));
    CHECK(ev::adaptive_avg_pool(m, 7, 5).numel() == 35);  // the identity grid
    CHECK_THROWS_WITH_AS(ev::adaptive_avg_pool(m, 8, 2), doctest::Contains("at most the map"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::adaptive_avg_pool(tensor<double>({2, 3}), 1, 1), doctest::Contains("(N, C, H, W)"),
                         ssl::shape_error);
}

TEST_CASE("layer_features: every stage of a ResNet-18, pooled; a 1x1 grid of layer4 is the backbone's output") {
    ssl::resnet18<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 3});
    ssl::philox g(1, 0);
    tensor<float> img({5, 1, 12, 12});
    for (auto& v : img) v = g.uniform();
    const std::vector<std::string> names{"relu", "layer1", "layer2", "layer3", "layer4"};
    const auto f = ev::layer_features(net, img, names, {}, 2);  // chunks of 2, 2 and 1 images
    REQUIRE(f.size() == 5);
    const std::size_t c[5] = {4, 4, 8, 16, 32}, h[5] = {12, 12, 6, 3, 2};
    for (std::size_t l = 0; l < 5; ++l) {
        CAPTURE(names[l]);
        CHECK(f[l].name == names[l]);
        CHECK(f[l].map_shape == ssl::shape_t{c[l], h[l], h[l]});
        CHECK(f[l].pooled.h == h[l]);  // every map here is smaller than its 9k grid
        CHECK(f[l].features.shape() == ssl::shape_t{5, c[l] * h[l] * h[l]});
    }
    CHECK(net.training());  // features in eval mode, then the mode it had is put back
    const auto pooled = ev::layer_features(net, img, {"layer4"}, {}, 3, 32);  // budget 32: a 1 x 1 grid
    net.train(false);
    const auto out = net.forward(img).out;
    REQUIRE(pooled[0].features.shape() == out.shape());
    for (std::size_t i = 0; i < out.numel(); ++i) CHECK(pooled[0].features[i] == doctest::Approx(out[i]).epsilon(1e-5));
    CHECK_THROWS_WITH_AS(ev::layer_features(net, img, {"layer9"}), doctest::Contains("layer9"), ssl::value_error);
}

TEST_CASE("multilayer_probe: one row per layer; a separable layer is fitted") {
    ssl::philox g(2, 0);
    auto make = [&](std::size_t n, std::vector<std::int64_t>& y) {
        ev::layer_feature_set sep{.name = "sep", .map_shape = {2, 1, 1}, .pooled = {1, 1}, .features = tensor<float>({n, 2})};
        ev::layer_feature_set noise{.name = "noise", .map_shape = {3, 1, 1}, .pooled = {1, 1}, .features = tensor<float>({n, 3})};
        for (std::size_t i = 0; i < n; ++i) {
            y.push_back(static_cast<std::int64_t>(i % 2));
            sep.features.at(i, 0) = static_cast<float>((i % 2 ? 5.0 : -5.0) + g.normal());
            sep.features.at(i, 1) = static_cast<float>(g.normal());
            for (std::size_t j = 0; j < 3; ++j) noise.features.at(i, j) = static_cast<float>(g.normal());
        }
        return std::vector<ev::layer_feature_set>{sep, noise};
    };
    std::vector<std::int64_t> y, yt;
    const auto tr = make(60, y), te = make(40, yt);
    const auto rows = ev::multilayer_probe(tr, y, te, yt);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].name == "sep");
    CHECK(rows[0].dim == 2);
    CHECK(rows[0].test_top1 == 1.0);
    CHECK(rows[1].test_top1 < 0.8);  // noise stays near chance
    auto te_bad = te;
    te_bad[1].name = "other";
    CHECK_THROWS_WITH_AS(ev::multilayer_probe(tr, y, te_bad, yt), doctest::Contains("'noise' in the train set and 'other'"),
                         ssl::value_error);
}

}  // namespace test_layers
