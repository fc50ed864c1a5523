// Exemplar-CNN's transformations (augment/exemplar.hpp): the affine op's
// geometry (identity, exact translations, rotation direction, the mapping on
// a linear ramp), its draws, hsv_power, and the policy's keying.
#include <doctest/doctest.h>

#include <ssl/augment/exemplar.hpp>

#include "helpers.hpp"

namespace test_exemplar_augment {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

namespace aug = ssl::augment;
using aug_test::dims;
using aug_test::image;
using aug_test::same;

aug::random_affine affine(std::size_t side) { return {.height = side, .width = side}; }

/// The image value a(x, y) = 0.1 + 0.02 x + 0.03 y (+ 0.01 c) on pixel centres.
ssl::tensor<float> ramp(std::size_t c, std::size_t h, std::size_t w) {
    ssl::tensor<float> t({c, h, w});
    for (std::size_t k = 0; k < c; ++k)
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x)
                t.at(k, y, x) = float(0.1 + 0.02 * double(x) + 0.03 * double(y) + 0.01 * double(k));
    return t;
}

}  // namespace

TEST_CASE("random_affine: identity parameters give the input (its centre when the output is smaller), bit for bit") {
    for (std::size_t c : {1u, 3u}) {
        const auto img = image(c, 12, 12, 5);
        CHECK(same(aug::apply_op(affine(12), img, {}), img));
        auto rep = affine(12);
        rep.border = aug::border_mode::replicate;
        CHECK(same(aug::apply_op(rep, img, {}), img));
        // A 20x20 window, a 12x12 output: the central 12x12.
        const auto big = image(c, 20, 20, 6);
        const auto out = aug::apply_op(affine(12), big, {});
        REQUIRE(out.shape() == ssl::shape_t{c, 12, 12});
        bool centre = true;
        for (std::size_t k = 0; k < c; ++k)
            for (std::size_t y = 0; y < 12; ++y)
                for (std::size_t x = 0; x < 12; ++x) centre = centre && out.at(k, y, x) == big.at(k, y + 4, x + 4);
        CHECK(centre);
    }
}

TEST_CASE("random_affine: a pure integer translation moves pixels exactly; outside reads the reflection or the edge") {
    const auto img = image(2, 10, 14, 7);
    const long tx = 3, ty = -2;
    for (auto border : {aug::border_mode::reflect, aug::border_mode::replicate}) {
        auto op = aug::random_affine{.height = 10, .width = 14, .border = border};
        const auto out = aug::apply_op(op, img, {.angle = 0, .scale = 1, .tx = double(tx), .ty = double(ty)});
        const auto index = [&](long i, std::size_t n) {
            if (border == aug::border_mode::reflect) return aug::detail::reflect_index(i, n);
            return std::size_t(std::clamp<long>(i, 0, long(n) - 1));
        };
        bool exact = true;
        for (std::size_t k = 0; k < 2; ++k)
            for (std::size_t y = 0; y < 10; ++y)
                for (std::size_t x = 0; x < 14; ++x)
                    exact = exact && out.at(k, y, x) == img.at(k, index(long(y) - ty, 10), index(long(x) - tx, 14));
        CHECK(exact);
    }
    // Rotation by 0 with a translation is the translation alone.
    const auto a = aug::apply_op(affine(10), image(1, 10, 10, 8), {.angle = 0, .scale = 1, .tx = 2, .ty = 1});
    const auto b = aug::apply_op(affine(10), image(1, 10, 10, 8), {.angle = -0.0, .scale = 1, .tx = 2, .ty = 1});
    CHECK(same(a, b));
    CHECK(a.at(0, 5, 5) == image(1, 10, 10, 8).at(0, 4, 3));
}

TEST_CASE("random_affine: +90 degrees turns counter-clockwise (rotate90{-1}), 180 is rotate90{2}") {
    const auto img = image(3, 9, 9, 9);
    const auto ccw = aug::apply_op(affine(9), img, {.angle = 90, .scale = 1});
    CHECK(aug_test::max_abs_diff(ccw, aug::apply_op(aug::rotate90{.k = -1}, img, {})) < 1e-5);
    const auto half = aug::apply_op(affine(9), img, {.angle = 180, .scale = 1});
    CHECK(aug_test::max_abs_diff(half, aug::apply_op(aug::rotate90{.k = 2}, img, {})) < 1e-5);
    // A bright pixel right of the centre goes above it.
    auto dot = aug_test::constant(1, 9, 9, 0.0f);
    dot.at(0, 4, 7) = 1.0f;
    const auto up = aug::apply_op(affine(9), dot, {.angle = 90, .scale = 1});
    CHECK(up.at(0, 1, 4) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("random_affine: scale, rotation and translation map output centres to c_in + R(-a) (o - t) / s") {
    // Bilinear sampling of a linear ramp is exact inside the image, so every
    // output pixel whose source lies inside shows the ramp at its source point.
    const auto img = ramp(2, 24, 24);
    const aug::random_affine::params q{.angle = 17, .scale = 1.3, .tx = 1.7, .ty = -2.2};
    const auto out = aug::apply_op(affine(16), img, q);
    const double r = q.angle * std::numbers::pi / 180, cs = std::cos(r), sn = std::sin(r);
    std::size_t checked = 0;
    double worst = 0;
    for (std::size_t y = 0; y < 16; ++y)
        for (std::size_t x = 0; x < 16; ++x) {
            const double dx = double(x) + 0.5 - 8 - q.tx, dy = double(y) + 0.5 - 8 - q.ty;
            const double sx = 12 + (cs * dx - sn * dy) / q.scale - 0.5, sy = 12 + (sn * dx + cs * dy) / q.scale - 0.5;
            if (sx < 0 || sy < 0 || sx > 23 || sy > 23) continue;
            for (std::size_t k = 0; k < 2; ++k) {
                const double want = 0.1 + 0.02 * sx + 0.03 * sy + 0.01 * double(k);
                worst = std::max(worst, std::abs(double(out.at(k, y, x)) - want));
            }
            ++checked;
        }
    CHECK(checked == 256);  // a 16-px output of a 24-px window at scale 1.3 stays inside
    CHECK(worst < 1e-5);
    // Scale > 1 enlarges: the ramp's slope along x shrinks by 1 / scale.
    const auto zoom = aug::apply_op(affine(16), img, {.angle = 0, .scale = 2});
    CHECK(double(zoom.at(0, 8, 9) - zoom.at(0, 8, 8)) == doctest::Approx(0.01).epsilon(1e-3));
    // A convex combination: values stay in [0, 1] whatever the parameters.
    const aug::random_affine::params wide{.angle = -19, .scale = 0.7, .tx = -3, .ty = 3};
    CHECK(aug_test::in_unit_range(aug::apply_op(affine(16), image(3, 20, 20, 3), wide), 1e-6));
}

TEST_CASE("random_affine: draws within the paper's ranges, spread over them, keyed by (seed, epoch, sample, ...)") {
    const auto op = affine(16);
    const aug::image_dims in{1, 24, 24};
    double tmin = 1e9, tmax = -1e9, smin = 1e9, smax = -1e9, amin = 1e9, amax = -1e9;
    for (std::uint64_t s = 0; s < 4000; ++s) {
        const auto q = aug::draw_params(op, in, 11, 2, s, 0, 0);
        tmin = std::min({tmin, q.tx, q.ty});
        tmax = std::max({tmax, q.tx, q.ty});
        smin = std::min(smin, q.scale);
        smax = std::max(smax, q.scale);
        amin = std::min(amin, q.angle);
        amax = std::max(amax, q.angle);
    }
    CHECK(tmin >= -0.2 * 16);
    CHECK(tmax <= 0.2 * 16);
    CHECK(tmin < -0.19 * 16);
    CHECK(tmax > 0.19 * 16);
    CHECK(smin >= 0.7);
    CHECK(smax <= 1.4);
    CHECK(smin < 0.71);
    CHECK(smax > 1.39);
    CHECK(amin >= -20);
    CHECK(amax <= 20);
    CHECK(amin < -19.8);
    CHECK(amax > 19.8);
    CHECK(aug::draw_params(op, in, 11, 2, 5, 0, 0) == aug::draw_params(op, in, 11, 2, 5, 0, 0));
    CHECK(!(aug::draw_params(op, in, 11, 2, 5, 0, 0) == aug::draw_params(op, in, 11, 3, 5, 0, 0)));
    CHECK(!(aug::draw_params(op, in, 11, 2, 5, 0, 0) == aug::draw_params(op, in, 12, 2, 5, 0, 0)));
    // Config errors name the field.
    CHECK_THROWS_AS((aug::random_affine{.height = 0, .width = 4}.validate()), ssl::value_error);
    CHECK_THROWS_AS((aug::random_affine{.height = 4, .width = 4, .scale = {1.4, 0.7}}.validate()), ssl::value_error);
    CHECK_THROWS_AS((aug::random_affine{.height = 4, .width = 4, .degrees = 200}.validate()), ssl::value_error);
    CHECK_THROWS_AS((aug::random_affine{.height = 4, .width = 4, .translate = -0.1}.validate()), ssl::value_error);
}

TEST_CASE("hsv_power: the identity, V^power * factor + offset on one channel, gray stays gray, draws in range") {
    const aug::hsv_power op;
    const auto gray = image(1, 8, 8, 2);
    CHECK(same(aug::apply_op(op, gray, {.active = true}), gray));
    aug::hsv_power::params q{.active = true};
    q.v = {.power = 2.0f, .factor = 1.2f, .offset = -0.05f};
    const auto out = aug::apply_op(op, gray, q);
    bool ok = true;
    for (std::size_t i = 0; i < gray.numel(); ++i)
        ok = ok && std::abs(out[i] - std::clamp(gray[i] * gray[i] * 1.2f - 0.05f, 0.0f, 1.0f)) < 1e-6f;
    CHECK(ok);
    // A 3-channel gray image: S = 0 stays 0 without an offset (0 to any
    // power), V changes, so the result is gray with every channel the
    // transformed value.
    ssl::tensor<float> rgb({3, 8, 8});
    for (std::size_t k = 0; k < 3; ++k) std::copy(gray.begin(), gray.end(), rgb.data() + k * 64);
    q.s = {.power = 0.5f, .factor = 1.4f, .offset = 0.0f};
    const auto o3 = aug::apply_op(op, rgb, q);
    ok = true;
    for (std::size_t i = 0; i < 64; ++i)
        ok = ok && std::abs(o3[i] - out[i]) < 1e-6f && o3[i] == o3[64 + i] && o3[i] == o3[128 + i];
    CHECK(ok);
    // A colour pixel keeps its hue: (0.8, 0.4, 0.2) has V 0.8, S 0.75; S
    // halved gives (0.8, 0.6, 0.5). A gray pixel whose S is raised takes
    // hue 0 (red), as in the paper's HSV arithmetic.
    ssl::tensor<float> px({3, 1, 2});
    const float rgb_px[3] = {0.8f, 0.4f, 0.2f};
    for (std::size_t k = 0; k < 3; ++k) {
        px.at(k, 0, 0) = rgb_px[k];
        px.at(k, 0, 1) = 0.5f;
    }
    aug::hsv_power::params sat{.active = true};
    sat.s = {.power = 1.0f, .factor = 0.5f, .offset = 0.0f};
    const auto half = aug::apply_op(op, px, sat);
    CHECK(half.at(0, 0, 0) == doctest::Approx(0.8));
    CHECK(half.at(1, 0, 0) == doctest::Approx(0.6));
    CHECK(half.at(2, 0, 0) == doctest::Approx(0.5));
    CHECK(half.at(0, 0, 1) == 0.5f);  // gray: S = 0 stays 0
    CHECK(half.at(1, 0, 1) == 0.5f);
    sat.s = {.power = 1.0f, .factor = 1.0f, .offset = 0.2f};
    const auto tint = aug::apply_op(op, px, sat);
    CHECK(tint.at(0, 0, 1) == doctest::Approx(0.5));
    CHECK(tint.at(1, 0, 1) == doctest::Approx(0.4));
    CHECK(tint.at(2, 0, 1) == doctest::Approx(0.4));
    const auto drawn = aug::draw_params(op, {3, 8, 8}, 1, 0, 3, 0, 2);
    CHECK(aug_test::in_unit_range(aug::apply_op(op, image(3, 8, 8, 4), drawn)));
    std::size_t below = 0;
    bool in_range = true;
    for (std::uint64_t s = 0; s < 2000; ++s) {
        const auto d = aug::draw_params(op, {1, 8, 8}, 1, 0, s, 0, 2);
        in_range = in_range && d.active;
        for (const auto& c : {d.s, d.v})
            in_range = in_range && c.power >= 0.25f && c.power <= 4.0f && c.factor >= 0.7f && c.factor <= 1.4f &&
                       std::abs(c.offset) <= 0.1f;
        below += d.v.power < 1.0f;
    }
    CHECK(in_range);
    CHECK(below > 900);  // log-uniform: the identity is the median
    CHECK(below < 1100);
    CHECK_THROWS_AS((aug::hsv_power{.power = {0, 4}}.validate()), ssl::value_error);
}

TEST_CASE("exemplar_views: one view of (N, C, size, size) from larger windows, the ops keyed like a pipeline") {
    const aug::exemplar_views ev({.size = 16, .channels = 1});
    const auto windows = aug_test::batch(4, 1, 24, 24, 3);
    const std::vector<std::size_t> ids{7, 2, 9, 4};
    const auto vb = ev.make_views(windows, ids, 5, 1);
    REQUIRE(vb.views.size() == 1);
    CHECK(vb.views[0].shape() == ssl::shape_t{4, 1, 16, 16});
    CHECK(vb.labels.empty());
    CHECK(vb.specs.empty());
    // The documented contract: op k draws from op_rng(seed, epoch, id, 0, k),
    // applied in the order affine, jitter, hsv_power, normalize.
    const auto w1 = aug_test::item(windows, 1);
    auto x = aug::apply_op(ev.affine(), w1, aug::draw_params(ev.affine(), dims(w1), 5, 1, 2, 0, 0));
    x = aug::apply_op(ev.jitter(), x, aug::draw_params(ev.jitter(), dims(x), 5, 1, 2, 0, 1));
    x = aug::apply_op(ev.power(), x, aug::draw_params(ev.power(), dims(x), 5, 1, 2, 0, 2));
    x = aug::apply_op(aug::default_normalize(1), x, {});
    CHECK(same(aug_test::item(vb.views[0], 1), x));
    // A sample's view does not depend on its batch or position.
    const std::vector<std::size_t> one{2};
    const auto alone = ev.make_views(windows.slice(1, 2).clone(), one, 5, 1);
    CHECK(same(aug_test::item(alone.views[0], 0), aug_test::item(vb.views[0], 1)));
    CHECK(!same(ev.make_views(windows, ids, 5, 2).views[0], vb.views[0]));
    CHECK(!same(ev.make_views(windows, ids, 6, 1).views[0], vb.views[0]));
    // K versions per class: epoch e and e + K show the same transformation.
    const aug::exemplar_views k3({.size = 16, .channels = 1, .transforms_per_class = 3});
    CHECK(same(k3.make_views(windows, ids, 5, 1).views[0], k3.make_views(windows, ids, 5, 4).views[0]));
    CHECK(!same(k3.make_views(windows, ids, 5, 1).views[0], k3.make_views(windows, ids, 5, 2).views[0]));
    // Evaluation: whole images resized to the patch side, normalised.
    CHECK(ev.eval_transform(aug_test::batch(2, 1, 28, 28)).shape() == ssl::shape_t{2, 1, 16, 16});
    // Colour patches; a channel mismatch is an error.
    const aug::exemplar_views rgb({.size = 8, .channels = 3});
    CHECK(rgb.make_views(aug_test::batch(3, 3, 12, 12), std::vector<std::size_t>{0, 1, 2}, 1, 0).views[0].shape() ==
          ssl::shape_t{3, 3, 8, 8});
    CHECK_THROWS_AS(rgb.make_views(windows, ids, 5, 1), ssl::shape_error);
    CHECK_THROWS_AS(aug::exemplar_views({.size = 16, .channels = 2}), ssl::value_error);
}

}  // namespace test_exemplar_augment
