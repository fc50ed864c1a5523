#include <doctest/doctest.h>

#include "augment/helpers.hpp"

#include <algorithm>
#include <set>

namespace test_color {  // each file in its own namespace: an area builds as one unity translation unit

using namespace aug_test;

namespace {
aug::image_ref ref(ssl::tensor<float>& t) { return {t.data(), dims(t)}; }
}  // namespace

TEST_CASE("adjust_brightness: factor 1 is the identity, otherwise scaled and clamped") {
    const auto img = image(3, 6, 5);
    auto a = img.clone();
    aug::adjust_brightness(ref(a), 1.0f);
    CHECK(same(a, img));
    auto b = ssl::tensor<float>::from({1, 1, 3}, {0.2f, 0.5f, 0.8f});
    aug::adjust_brightness(ref(b), 2.0f);
    CHECK(b[0] == doctest::Approx(0.4));
    CHECK(b[1] == 1.0f);
    CHECK(b[2] == 1.0f);
    aug::adjust_brightness(ref(b), 0.5f);
    CHECK(b[0] == doctest::Approx(0.2));
}

TEST_CASE("adjust_contrast: blends with the mean of the grayscale image") {
    auto g = ssl::tensor<float>::from({1, 2, 2}, {0.2f, 0.4f, 0.6f, 0.8f});  // mean 0.5
    auto a = g.clone();
    aug::adjust_contrast(ref(a), 2.0f);
    CHECK(a[0] == 0.0f);  // 2 * 0.2 - 0.5 = -0.1, clamped
    CHECK(a[1] == doctest::Approx(0.3));
    CHECK(a[2] == doctest::Approx(0.7));
    CHECK(a[3] == 1.0f);
    auto z = g.clone();
    aug::adjust_contrast(ref(z), 0.0f);
    for (float v : z) CHECK(v == doctest::Approx(0.5));
    // 3 channels: the mean is that of 0.299 R + 0.587 G + 0.114 B.
    auto rgb = ssl::tensor<float>::from({3, 1, 2}, {1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f});
    CHECK(aug::gray_mean({rgb.data(), dims(rgb)}) == doctest::Approx((0.299 + 0.587) / 2));
    aug::adjust_contrast(ref(rgb), 0.0f);
    for (float v : rgb) CHECK(v == doctest::Approx((0.299 + 0.587) / 2));
    const auto img = image(3, 5, 5);
    auto same1 = img.clone();
    aug::adjust_contrast(ref(same1), 1.0f);
    CHECK(max_abs_diff(same1, img) < 1e-6);
}

TEST_CASE("adjust_saturation: 0 gives the grayscale image, 1 the image, 1 channel untouched") {
    auto px = ssl::tensor<float>::from({3, 1, 1}, {0.9f, 0.3f, 0.1f});
    aug::adjust_saturation(ref(px), 0.0f);
    const double l = 0.299 * 0.9 + 0.587 * 0.3 + 0.114 * 0.1;
    for (float v : px) CHECK(v == doctest::Approx(l));
    const auto img = image(3, 5, 4);
    auto a = img.clone();
    aug::adjust_saturation(ref(a), 1.0f);
    CHECK(max_abs_diff(a, img) < 1e-6);
    const auto mono = image(1, 5, 4);
    auto m = mono.clone();
    aug::adjust_saturation(ref(m), 0.0f);
    CHECK(same(m, mono));
}

TEST_CASE("adjust_hue: rotates the color circle, keeps max and min per pixel") {
    auto red = ssl::tensor<float>::from({3, 1, 1}, {1.0f, 0.0f, 0.0f});
    auto cyan = red.clone();
    aug::adjust_hue(ref(cyan), 0.5f);
    CHECK(cyan[0] == doctest::Approx(0.0).epsilon(1e-6));
    CHECK(cyan[1] == doctest::Approx(1.0));
    CHECK(cyan[2] == doctest::Approx(1.0));
    auto green = red.clone();
    aug::adjust_hue(ref(green), 1.0f / 3.0f);
    CHECK(std::abs(green[0]) < 1e-5);
    CHECK(green[1] == doctest::Approx(1.0));
    CHECK(std::abs(green[2]) < 1e-5);
    auto blue = red.clone();
    aug::adjust_hue(ref(blue), -1.0f / 3.0f);
    CHECK(std::abs(blue[0]) < 1e-5);
    CHECK(std::abs(blue[1]) < 1e-5);
    CHECK(blue[2] == doctest::Approx(1.0));

    const auto img = image(3, 6, 6, 4);
    auto h = img.clone();
    aug::adjust_hue(ref(h), 0.2f);
    CHECK(max_abs_diff(h, img) > 0.05);
    for (std::size_t i = 0; i < 36; ++i) {
        const float mx0 = std::max({img[i], img[36 + i], img[72 + i]}), mn0 = std::min({img[i], img[36 + i], img[72 + i]});
        const float mx1 = std::max({h[i], h[36 + i], h[72 + i]}), mn1 = std::min({h[i], h[36 + i], h[72 + i]});
        REQUIRE(mx1 == doctest::Approx(mx0).epsilon(1e-5));
        REQUIRE(mn1 == doctest::Approx(mn0).epsilon(1e-5));
    }
    aug::adjust_hue(ref(h), -0.2f);
    CHECK(max_abs_diff(h, img) < 1e-5);
    auto z = img.clone();
    aug::adjust_hue(ref(z), 0.0f);
    CHECK(max_abs_diff(z, img) < 1e-5);
    auto gray = constant(3, 2, 2, 0.4f);
    aug::adjust_hue(ref(gray), 0.3f);
    CHECK(same(gray, constant(3, 2, 2, 0.4f)));
}

TEST_CASE("color_jitter: drawn factors, order and probability") {
    const aug::color_jitter op{.brightness = 0.4, .contrast = 0.3, .saturation = 0.2, .hue = 0.1, .p = 0.8};
    std::set<std::array<std::uint8_t, 4>> orders;
    int active = 0;
    const int n = 3000;
    for (int i = 0; i < n; ++i) {
        const auto q = aug::draw_params(op, {3, 8, 8}, 5, 2, static_cast<std::uint64_t>(i), 1);
        REQUIRE(q.brightness >= 0.6f);
        REQUIRE(q.brightness <= 1.4f);
        REQUIRE(q.contrast >= 0.7f);
        REQUIRE(q.contrast <= 1.3f);
        REQUIRE(q.saturation >= 0.8f);
        REQUIRE(q.saturation <= 1.2f);
        REQUIRE(q.hue >= -0.1f);
        REQUIRE(q.hue <= 0.1f);
        auto sorted = q.order;
        std::sort(sorted.begin(), sorted.end());
        REQUIRE(sorted == std::array<std::uint8_t, 4>{0, 1, 2, 3});
        orders.insert(q.order);
        active += q.active;
    }
    CHECK(orders.size() == 24);
    CHECK(std::abs(double(active) / n - 0.8) < 0.03);
    // Brightness 1.5 draws from [0, 2.5] (the lower end clamped at 0).
    const auto big = aug::draw_params(aug::color_jitter{.brightness = 1.5}, {1, 4, 4}, 0, 0, 0, 0);
    CHECK(big.brightness >= 0.0f);
    CHECK(big.brightness <= 2.5f);
    // All factors 0: the identity.
    const auto img = image(3, 7, 7);
    const aug::color_jitter none{};
    CHECK(same(aug::apply_op(none, img, aug::draw_params(none, dims(img), 1, 1, 1, 1)), img));
}

TEST_CASE("color_jitter: apply is the adjustments in the drawn order, output in [0, 1]") {
    const auto img = image(3, 9, 8, 6);
    const aug::color_jitter op{.brightness = 0.8, .contrast = 0.8, .saturation = 0.8, .hue = 0.3, .p = 1.0};
    aug::color_jitter::params q;
    q.active = true;
    q.order = {3, 1, 0, 2};
    q.brightness = 1.3f;
    q.contrast = 0.6f;
    q.saturation = 1.7f;
    q.hue = -0.2f;
    auto manual = img.clone();
    aug::adjust_hue(ref(manual), -0.2f);
    aug::adjust_contrast(ref(manual), 0.6f);
    aug::adjust_brightness(ref(manual), 1.3f);
    aug::adjust_saturation(ref(manual), 1.7f);
    CHECK(same(aug::apply_op(op, img, q), manual));
    q.order = {0, 1, 2, 3};
    CHECK_FALSE(same(aug::apply_op(op, img, q), manual));  // the order matters
    q.active = false;
    CHECK(same(aug::apply_op(op, img, q), img));

    for (std::uint64_t s = 0; s < 50; ++s) {
        const auto out = aug::apply_op(op, img, aug::draw_params(op, dims(img), 9, 0, s, 0));
        REQUIRE(out.shape() == img.shape());
        REQUIRE(in_unit_range(out));
    }
    // One channel: saturation and hue do nothing.
    const auto mono = image(1, 6, 6);
    q = {};
    q.active = true;
    q.saturation = 0.0f;
    q.hue = 0.4f;
    CHECK(same(aug::apply_op(op, mono, q), mono));
    q.brightness = 0.5f;
    auto half = mono.clone();
    aug::adjust_brightness(ref(half), 0.5f);
    CHECK(same(aug::apply_op(op, mono, q), half));
    CHECK_THROWS_AS(aug::apply_op(op, image(2, 4, 4), q), ssl::shape_error);
}

TEST_CASE("color_jitter: bad configs throw value_error naming the field") {
    CHECK_THROWS_WITH_AS(aug::color_jitter{.brightness = -0.1}.validate(), "color_jitter: brightness = -0.1 must be >= 0",
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(aug::color_jitter{.contrast = -1}.validate(), "color_jitter: contrast = -1 must be >= 0",
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(aug::color_jitter{.saturation = -2}.validate(), "color_jitter: saturation = -2 must be >= 0",
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(aug::color_jitter{.hue = 0.6}.validate(), "color_jitter: hue = 0.6 must be in [0, 0.5]",
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(aug::color_jitter{.p = 2}.validate(), "color_jitter: p = 2 is outside [0, 1]", ssl::value_error);
    CHECK_NOTHROW(aug::color_jitter{.brightness = 0.4, .contrast = 0.4, .saturation = 0.4, .hue = 0.5}.validate());
}

TEST_CASE("random_grayscale: gray stays gray, 3 channels kept, 1 channel untouched") {
    const aug::random_grayscale op{.p = 0.2};
    ssl::tensor<float> gray({3, 5, 5});
    const auto g1 = image(1, 5, 5);
    for (std::size_t c = 0; c < 3; ++c) std::copy(g1.begin(), g1.end(), gray.data() + c * 25);
    CHECK(same(aug::apply_op(op, gray, {.active = true}), gray));

    auto px = ssl::tensor<float>::from({3, 1, 2}, {1.0f, 0.2f, 0.0f, 0.4f, 0.0f, 0.6f});
    auto out = aug::apply_op(op, px, {.active = true});
    CHECK(out.shape() == ssl::shape_t{3, 1, 2});
    for (std::size_t c = 0; c < 3; ++c) {
        CHECK(out.at(c, 0, 0) == doctest::Approx(0.299));
        CHECK(out.at(c, 0, 1) == doctest::Approx(0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6));
    }
    CHECK(same(aug::apply_op(op, px, {.active = false}), px));
    CHECK(same(aug::apply_op(op, g1, {.active = true}), g1));
    int n = 0;
    for (std::uint64_t s = 0; s < 3000; ++s) n += aug::draw_params(op, {3, 4, 4}, 2, 0, s, 0).active;
    CHECK(std::abs(n / 3000.0 - 0.2) < 0.03);
    CHECK_THROWS_AS(aug::random_grayscale{.p = 1.01}.validate(), ssl::value_error);
    CHECK_THROWS_AS(aug::apply_op(op, image(4, 3, 3), {.active = true}), ssl::shape_error);
}

TEST_CASE("solarize: x -> 1 - x at and above the threshold") {
    const aug::solarize op{.threshold = 0.5, .p = 0.2};
    auto img = ssl::tensor<float>::from({1, 1, 5}, {0.1f, 0.49f, 0.5f, 0.7f, 1.0f});
    auto out = aug::apply_op(op, img, {.active = true});
    CHECK(out[0] == 0.1f);
    CHECK(out[1] == 0.49f);
    CHECK(out[2] == 0.5f);
    CHECK(out[3] == doctest::Approx(0.3));
    CHECK(out[4] == 0.0f);
    CHECK(same(aug::apply_op(op, img, {.active = false}), img));
    const auto big = image(3, 6, 6);
    CHECK(in_unit_range(aug::apply_op(op, big, {.active = true})));
    auto t2 = aug::apply_op(aug::solarize{.threshold = 0.8}, img, {.active = true});
    CHECK(t2[3] == 0.7f);
    CHECK(t2[4] == 0.0f);
    int n = 0;
    for (std::uint64_t s = 0; s < 3000; ++s) n += aug::draw_params(op, {1, 4, 4}, 2, 0, s, 0).active;
    CHECK(std::abs(n / 3000.0 - 0.2) < 0.03);
    CHECK_THROWS_AS(aug::solarize{.threshold = 1.5}.validate(), ssl::value_error);
    CHECK_THROWS_AS(aug::solarize{.p = -1}.validate(), ssl::value_error);
}

}  // namespace test_color
