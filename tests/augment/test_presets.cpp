#include <doctest/doctest.h>

#include "augment/helpers.hpp"

#include <numeric>
#include <vector>

namespace test_presets {  // each file in its own namespace: an area builds as one unity translation unit

using namespace aug_test;
using names_t = std::vector<std::string_view>;

TEST_CASE("simclr_pipeline: the op list of the recipe") {
    const auto small = aug::simclr_pipeline(28, 1);
    CHECK(small.names() ==
          names_t{"random_resized_crop", "horizontal_flip", "color_jitter", "random_grayscale", "normalize"});
    REQUIRE(small.find<aug::random_resized_crop>() != nullptr);
    const auto& crop = *small.find<aug::random_resized_crop>();
    CHECK(crop.height == 28);
    CHECK(crop.width == 28);
    CHECK(crop.scale == aug::range{0.2, 1.0});  // the small-image setting
    CHECK(crop.ratio == aug::range{0.75, 4.0 / 3.0});
    CHECK(small.find<aug::horizontal_flip>()->p == 0.5);
    const auto& cj = *small.find<aug::color_jitter>();
    CHECK(cj.brightness == 0.4);
    CHECK(cj.contrast == 0.4);
    CHECK(cj.saturation == 0.4);
    CHECK(cj.hue == 0.1);
    CHECK(cj.p == 0.8);
    CHECK(small.find<aug::random_grayscale>()->p == 0.2);
    CHECK(small.find<aug::normalize>()->mean.size() == 1);

    // CIFAR size: paper's crop scale, still no blur.
    const auto cifar = aug::simclr_pipeline(32, 3);
    CHECK(cifar.find<aug::random_resized_crop>()->scale == aug::range{0.08, 1.0});
    CHECK(cifar.find<aug::gaussian_blur>() == nullptr);
    // ImageNet size: blur p 0.5, sigma (0.1, 2), kernel 10% of the image.
    const auto big = aug::simclr_pipeline(224, 3);
    CHECK(big.names() == names_t{"random_resized_crop", "horizontal_flip", "color_jitter", "random_grayscale",
                                 "gaussian_blur", "normalize"});
    const auto& blur = *big.find<aug::gaussian_blur>();
    CHECK(blur.p == 0.5);
    CHECK(blur.sigma == aug::range{0.1, 2.0});
    CHECK(blur.kernel_for({3, 224, 224}) == 23);
    CHECK(big.find<aug::normalize>()->mean == std::vector<double>{0.485, 0.456, 0.406});
    CHECK(big.find<aug::normalize>()->stddev == std::vector<double>{0.229, 0.224, 0.225});

    const auto views = aug::simclr_views(28, 1);
    CHECK(views.size() == 2);
    CHECK(views[1].names() == small.names());
}

TEST_CASE("byol_pipelines: the asymmetric pair") {
    const auto mv = aug::byol_pipelines(32, 3);
    REQUIRE(mv.size() == 2);
    const names_t expect{"random_resized_crop", "horizontal_flip", "color_jitter", "random_grayscale",
                         "gaussian_blur",       "solarize",        "normalize"};
    CHECK(mv[0].names() == expect);
    CHECK(mv[1].names() == expect);
    CHECK(mv[0].find<aug::gaussian_blur>()->p == 1.0);
    CHECK(mv[1].find<aug::gaussian_blur>()->p == 0.1);
    CHECK(mv[0].find<aug::solarize>()->p == 0.0);
    CHECK(mv[1].find<aug::solarize>()->p == 0.2);
    CHECK(mv[1].find<aug::solarize>()->threshold == 0.5);
    for (std::size_t v = 0; v < 2; ++v) {
        const auto& cj = *mv[v].find<aug::color_jitter>();
        CHECK(cj.brightness == 0.4);
        CHECK(cj.contrast == 0.4);
        CHECK(cj.saturation == 0.2);
        CHECK(cj.hue == 0.1);
        CHECK(cj.p == 0.8);
        CHECK(mv[v].find<aug::random_grayscale>()->p == 0.2);
        CHECK(mv[v].find<aug::random_resized_crop>()->scale == aug::range{0.08, 1.0});
    }
    CHECK(aug::byol_pipelines(28, 1)[0].find<aug::random_resized_crop>()->scale == aug::range{0.2, 1.0});
}

TEST_CASE("presets run on batches of 1 and 3 channels") {
    std::vector<std::size_t> ids(4);
    std::iota(ids.begin(), ids.end(), 0);
    for (std::size_t c : {1u, 3u}) {
        const auto x = batch(4, c, 28, 28);
        const auto s = aug::simclr_views(28, c).apply(x, ids, 1, 0);
        REQUIRE(s.size() == 2);
        CHECK(s[0].shape() == ssl::shape_t{4, c, 28, 28});
        CHECK_FALSE(same(s[0], s[1]));
        const auto b = aug::byol_pipelines(24, c).apply(x, ids, 1, 0);
        CHECK(b[1].shape() == ssl::shape_t{4, c, 24, 24});
    }
}

TEST_CASE("eval_pipeline: resize, center crop, normalize") {
    const auto p = aug::eval_pipeline(28, 1);
    CHECK(p.names() == names_t{"resize", "center_crop", "normalize"});
    CHECK(p.find<aug::resize>()->shorter_side == 28);
    // On a 28x28 image it is normalize alone.
    const auto x = batch(3, 1, 28, 28);
    const std::vector<std::size_t> ids{0, 1, 2};
    const auto out = p.apply(x, ids, 0, 0, 0);
    const auto norm = aug::pipeline{aug::default_normalize(1)}.apply(x, ids, 0, 0, 0);
    CHECK(same(out, norm));
    CHECK(out[0] == doctest::Approx((x[0] - 0.2860) / 0.3530).epsilon(1e-5));
    // Deterministic: no random op.
    CHECK(same(out, p.apply(x, ids, 5, 9, 1)));
    // A larger, non-square image: shorter side then the central square.
    const auto big = aug::eval_pipeline(32, 3).apply(batch(2, 3, 48, 40), std::vector<std::size_t>{0, 1}, 0, 0, 0);
    CHECK(big.shape() == ssl::shape_t{2, 3, 32, 32});
}

TEST_CASE("presets reject bad arguments") {
    CHECK_THROWS_WITH_AS(aug::simclr_pipeline(0, 3), "simclr_pipeline: out_size = 0 must be positive", ssl::value_error);
    CHECK_THROWS_WITH_AS(aug::simclr_pipeline(28, 2), "simclr_pipeline: channels = 2 must be 1 or 3", ssl::value_error);
    CHECK_THROWS_AS(aug::byol_pipelines(28, 4), ssl::value_error);
    CHECK_THROWS_AS(aug::eval_pipeline(0, 1), ssl::value_error);
    CHECK_THROWS_AS(aug::default_normalize(2), ssl::value_error);
}

}  // namespace test_presets
