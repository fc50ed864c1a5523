#include <doctest/doctest.h>

#include "augment/helpers.hpp"

#include <cmath>

namespace test_geometry {  // each file in its own namespace: an area builds as one unity translation unit

using namespace aug_test;
using aug::crop_box;

TEST_CASE("random_resized_crop: shape, range, determinism of the drawn box") {
    const auto img = image(3, 40, 30);
    const aug::random_resized_crop op{.height = 16, .width = 20};
    const auto box = aug::draw_params(op, dims(img), 7, 0, 5, 0);
    CHECK(box == aug::draw_params(op, dims(img), 7, 0, 5, 0));
    CHECK_FALSE(box == aug::draw_params(op, dims(img), 7, 0, 5, 1));
    CHECK_FALSE(box == aug::draw_params(op, dims(img), 7, 1, 5, 0));
    CHECK_FALSE(box == aug::draw_params(op, dims(img), 7, 0, 6, 0));
    const auto out = aug::apply_op(op, img, box);
    CHECK(out.shape() == ssl::shape_t{3, 16, 20});
    CHECK(in_unit_range(out, 1e-6));
}

TEST_CASE("random_resized_crop: scale (1,1) and ratio (1,1) on a square image is a resize of the whole image") {
    const auto img = image(1, 24, 24, 3);
    const aug::random_resized_crop whole{.height = 24, .width = 24, .scale = {1, 1}, .ratio = {1, 1}};
    for (std::uint64_t s = 0; s < 5; ++s) {
        const auto box = aug::draw_params(whole, dims(img), 11, 0, s, 0);
        CHECK(box == crop_box{0, 0, 24, 24});
        CHECK(same(aug::apply_op(whole, img, box), img));  // identity when sizes match
    }
    const aug::random_resized_crop smaller{.height = 10, .width = 10, .scale = {1, 1}, .ratio = {1, 1}};
    const auto box = aug::draw_params(smaller, dims(img), 11, 0, 0, 0);
    CHECK(same(aug::apply_op(smaller, img, box), aug::apply_op(aug::resize{.height = 10, .width = 10}, img, {})));
}

TEST_CASE("random_resized_crop: the box is resampled exactly (crop of a region equals resize of that region)") {
    const auto img = image(2, 20, 20, 5);
    const crop_box box{3, 4, 8, 8};
    const aug::random_resized_crop op{.height = 8, .width = 8};
    const auto out = aug::apply_op(op, img, box);
    for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t y = 0; y < 8; ++y)
            for (std::size_t x = 0; x < 8; ++x) REQUIRE(out.at(c, y, x) == img.at(c, 3 + y, 4 + x));
    CHECK_THROWS_AS(aug::apply_op(op, img, crop_box{15, 0, 8, 8}), ssl::value_error);
    CHECK_THROWS_AS(aug::apply_op(op, img, crop_box{0, 0, 0, 8}), ssl::value_error);
}

TEST_CASE("random_resized_crop: drawn boxes respect the scale and ratio ranges over many draws") {
    const aug::image_dims in{1, 400, 300};
    const double area = 400.0 * 300.0;
    // A range where every first attempt fits: the distribution is the drawn one.
    const aug::random_resized_crop op{.height = 8, .width = 8, .scale = {0.1, 0.3}};
    const int n = 4000;
    double sum_frac = 0, sum_log_ratio = 0;
    int below_mid = 0, wide = 0;
    for (int i = 0; i < n; ++i) {
        const auto b = aug::draw_params(op, in, 3, 1, static_cast<std::uint64_t>(i), 0);
        REQUIRE(b.top + b.height <= in.h);
        REQUIRE(b.left + b.width <= in.w);
        const double frac = double(b.height) * double(b.width) / area;
        const double ratio = double(b.width) / double(b.height);
        REQUIRE(frac >= 0.1 * 0.98);
        REQUIRE(frac <= 0.3 * 1.02);
        REQUIRE(ratio >= 0.75 * 0.99);
        REQUIRE(ratio <= 4.0 / 3.0 * 1.01);
        sum_frac += frac;
        sum_log_ratio += std::log(ratio);
        below_mid += frac < 0.2;
        wide += ratio > 1.0;
    }
    CHECK(sum_frac / n == doctest::Approx(0.2).epsilon(0.03));           // uniform in [0.1, 0.3]
    CHECK(std::abs(sum_log_ratio / n) < 0.01);                           // log-uniform, symmetric
    CHECK(std::abs(double(below_mid) / n - 0.5) < 0.04);
    CHECK(std::abs(double(wide) / n - 0.5) < 0.04);

    // The default range: boxes stay within (0.08, 1) of the area and the ratio range.
    const aug::random_resized_crop def{.height = 8, .width = 8};
    double min_frac = 1, max_frac = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto b = aug::draw_params(def, in, 4, 0, static_cast<std::uint64_t>(i), 2);
        const double frac = double(b.height) * double(b.width) / area;
        const double ratio = double(b.width) / double(b.height);
        REQUIRE(frac >= 0.08 * 0.98);
        REQUIRE(frac <= 1.0);
        REQUIRE(ratio >= 0.75 * 0.99);
        REQUIRE(ratio <= 4.0 / 3.0 * 1.01);
        min_frac = std::min(min_frac, frac);
        max_frac = std::max(max_frac, frac);
    }
    CHECK(min_frac < 0.1);
    CHECK(max_frac > 0.85);
}

TEST_CASE("random_resized_crop: center-crop fallback when no attempt fits") {
    // attempts = 0 goes straight to the fallback: torchvision's central crop
    // clamped to the ratio range.
    const aug::random_resized_crop op{.height = 4, .width = 4, .attempts = 0};
    CHECK(aug::draw_params(op, {1, 100, 50}, 0, 0, 0, 0) == crop_box{16, 0, 67, 50});  // h = round(50 / 0.75)
    CHECK(aug::draw_params(op, {1, 30, 100}, 0, 0, 0, 0) == crop_box{0, 30, 30, 40});  // w = round(30 * 4/3)
    CHECK(aug::draw_params(op, {1, 30, 36}, 0, 0, 0, 0) == crop_box{0, 0, 30, 36});    // ratio inside the range
    // A scale the image cannot hold with that ratio fails every attempt.
    const aug::random_resized_crop impossible{.height = 4, .width = 4, .scale = {1, 1}, .ratio = {2, 2}};
    CHECK(aug::draw_params(impossible, {1, 10, 10}, 0, 0, 0, 0) == crop_box{2, 0, 5, 10});
}

TEST_CASE("random_resized_crop: bad configs throw value_error naming the field") {
    auto msg = [](const aug::random_resized_crop& op) {
        try {
            op.validate();
        } catch (const ssl::value_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(msg({.height = 8, .width = 8, .scale = {0.9, 0.1}}).find("scale range (0.9, 0.1) is inverted") !=
          std::string::npos);
    CHECK(msg({.height = 8, .width = 8, .ratio = {2, 1}}).find("ratio range (2, 1) is inverted") != std::string::npos);
    CHECK(msg({.height = 0, .width = 8}).find("output size 0x8") != std::string::npos);
    CHECK(msg({.height = 8, .width = 8, .scale = {0, 1}}).find("scale") != std::string::npos);
    CHECK(msg({.height = 8, .width = 8}).empty());
    CHECK_THROWS_AS(aug::draw_params(aug::random_resized_crop{.height = 8, .width = 8}, {1, 0, 5}, 0, 0, 0, 0),
                    ssl::shape_error);
    CHECK_THROWS_AS(aug::apply_op(aug::random_resized_crop{.height = 8, .width = 8}, ssl::tensor<float>({1, 8}), {}),
                    ssl::shape_error);
}

TEST_CASE("resize: antialiased bilinear by hand, shapes, identity, constants") {
    // Upscaling 2 -> 4 is bilinear with half-pixel centers.
    auto row = ssl::tensor<float>::from({1, 1, 2}, {0.0f, 1.0f});
    auto up = aug::apply_op(aug::resize{.height = 1, .width = 4}, row, {});
    CHECK(up[0] == doctest::Approx(0.0));
    CHECK(up[1] == doctest::Approx(0.25));
    CHECK(up[2] == doctest::Approx(0.75));
    CHECK(up[3] == doctest::Approx(1.0));
    // Downscaling 4 -> 2 widens the triangle to 2 input pixels (weights
    // 0.25, 0.75, 0.75, 0.25, cut at the border and renormalized).
    auto checker = ssl::tensor<float>::from({1, 1, 4}, {0.0f, 1.0f, 0.0f, 1.0f});
    auto down = aug::apply_op(aug::resize{.height = 1, .width = 2}, checker, {});
    CHECK(down[0] == doctest::Approx(0.75 / 1.75));
    CHECK(down[1] == doctest::Approx(1.0 / 1.75));

    const auto img = image(3, 30, 20);
    CHECK(same(aug::apply_op(aug::resize{.height = 30, .width = 20}, img, {}), img));
    CHECK(aug::resize{.shorter_side = 10}.output_dims({3, 30, 20}) == aug::image_dims{3, 15, 10});
    CHECK(aug::resize{.shorter_side = 10}.output_dims({3, 20, 30}) == aug::image_dims{3, 10, 15});
    CHECK(aug::resize{.shorter_side = 10}.output_dims({3, 21, 29}) == aug::image_dims{3, 10, 13});  // int(290/21)
    const auto r = aug::apply_op(aug::resize{.shorter_side = 13}, img, {});
    CHECK(r.shape() == ssl::shape_t{3, 19, 13});
    CHECK(in_unit_range(r, 1e-6));
    const auto k = aug::apply_op(aug::resize{.height = 7, .width = 41}, constant(1, 20, 20, 0.3f), {});
    for (float v : k) REQUIRE(v == doctest::Approx(0.3f).epsilon(1e-6));
    CHECK_THROWS_AS(aug::resize{}.validate(), ssl::value_error);
    CHECK_THROWS_AS((aug::resize{.shorter_side = 4, .height = 3, .width = 3}.validate()), ssl::value_error);
    CHECK_THROWS_AS((aug::resize{.height = 3}.validate()), ssl::value_error);
}

TEST_CASE("center_crop: window by hand, Python rounding of the offset, zero padding") {
    ssl::tensor<float> img({1, 5, 5});
    for (std::size_t i = 0; i < 25; ++i) img[i] = float(i) / 25.0f;
    auto c3 = aug::apply_op(aug::center_crop{.height = 3, .width = 3}, img, {});
    CHECK(c3.shape() == ssl::shape_t{1, 3, 3});
    for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 3; ++x) CHECK(c3.at(0, y, x) == img.at(0, y + 1, x + 1));
    // (5 - 2) / 2 = 1.5 rounds to 2 (torchvision: int(round(1.5)) == 2).
    auto c2 = aug::apply_op(aug::center_crop{.height = 2, .width = 2}, img, {});
    CHECK(c2.at(0, 0, 0) == img.at(0, 2, 2));
    // Larger than the image: padded with zeros, left/top gets (out - in) / 2.
    auto small = ssl::tensor<float>::from({1, 2, 2}, {0.1f, 0.2f, 0.3f, 0.4f});
    auto pad = aug::apply_op(aug::center_crop{.height = 5, .width = 4}, small, {});
    CHECK(pad.shape() == ssl::shape_t{1, 5, 4});
    CHECK(pad.at(0, 1, 1) == 0.1f);
    CHECK(pad.at(0, 2, 2) == 0.4f);
    double s = 0;
    for (float v : pad) s += v;
    CHECK(s == doctest::Approx(1.0));
    CHECK_THROWS_AS((aug::center_crop{.height = 0, .width = 3}.validate()), ssl::value_error);
}

TEST_CASE("horizontal_flip: by hand, twice is the identity, p decides") {
    auto img = ssl::tensor<float>::from({1, 2, 3}, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f});
    const aug::horizontal_flip op{.p = 0.5};
    auto f = aug::apply_op(op, img, {.flip = true});
    CHECK(f.at(0, 0, 0) == 0.3f);
    CHECK(f.at(0, 0, 2) == 0.1f);
    CHECK(f.at(0, 1, 0) == 0.6f);
    CHECK(same(aug::apply_op(op, img, {.flip = false}), img));
    const auto big = image(3, 9, 7);
    CHECK(same(aug::apply_op(op, aug::apply_op(op, big, {.flip = true}), {.flip = true}), big));
    CHECK_FALSE(same(aug::apply_op(op, big, {.flip = true}), big));

    int flips = 0, always = 0, never = 0;
    for (std::uint64_t s = 0; s < 2000; ++s) {
        flips += aug::draw_params(aug::horizontal_flip{.p = 0.3}, dims(big), 1, 0, s, 0).flip;
        always += aug::draw_params(aug::horizontal_flip{.p = 1.0}, dims(big), 1, 0, s, 0).flip;
        never += aug::draw_params(aug::horizontal_flip{.p = 0.0}, dims(big), 1, 0, s, 0).flip;
    }
    CHECK(std::abs(flips / 2000.0 - 0.3) < 0.04);
    CHECK(always == 2000);
    CHECK(never == 0);
    CHECK_THROWS_WITH_AS(aug::horizontal_flip{.p = 1.5}.validate(), "horizontal_flip: p = 1.5 is outside [0, 1]",
                         ssl::value_error);
    CHECK_THROWS_AS(aug::horizontal_flip{.p = -0.1}.validate(), ssl::value_error);
    CHECK_THROWS_AS(aug::horizontal_flip{.p = std::nan("")}.validate(), ssl::value_error);
}

TEST_CASE("rotate90: exact quarter turns, four of them are the identity") {
    auto img = ssl::tensor<float>::from({1, 2, 3}, {1, 2, 3, 4, 5, 6});  // [[1 2 3], [4 5 6]]
    auto r1 = aug::apply_op(aug::rotate90{.k = 1}, img, {});
    CHECK(r1.shape() == ssl::shape_t{1, 3, 2});
    // clockwise: [[4 1], [5 2], [6 3]]; pixel (0, 0) goes to the top-right corner.
    CHECK(r1.at(0, 0, 1) == 1);
    CHECK(r1.at(0, 0, 0) == 4);
    CHECK(r1.at(0, 2, 0) == 6);
    CHECK(r1.at(0, 2, 1) == 3);
    auto r2 = aug::apply_op(aug::rotate90{.k = 2}, img, {});
    CHECK(r2.shape() == ssl::shape_t{1, 2, 3});
    CHECK(r2.at(0, 0, 0) == 6);
    CHECK(r2.at(0, 1, 2) == 1);
    auto r3 = aug::apply_op(aug::rotate90{.k = 3}, img, {});
    CHECK(r3.at(0, 2, 0) == 1);  // counter-clockwise: (0, 0) to the bottom-left
    CHECK(same(aug::apply_op(aug::rotate90{.k = -1}, img, {}), r3));
    CHECK(same(aug::apply_op(aug::rotate90{.k = 4}, img, {}), img));

    const auto big = image(3, 8, 5);
    auto x = big;
    for (int i = 0; i < 4; ++i) {
        x = aug::apply_op(aug::rotate90{.k = 1}, x, {});
        if (i < 3) CHECK_FALSE(same(x, big));
    }
    CHECK(same(x, big));
    // Two quarter turns are a flip in both directions.
    auto hv = aug::apply_op(aug::horizontal_flip{}, aug::apply_op(aug::rotate90{.k = 2}, big, {}), {.flip = true});
    for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t y = 0; y < 8; ++y)
            for (std::size_t xx = 0; xx < 5; ++xx) REQUIRE(hv.at(c, y, xx) == big.at(c, 7 - y, xx));
}

}  // namespace test_geometry
