#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include <ssl/color/lab.hpp>
#include <ssl/core/rng.hpp>

namespace test_lab {

using namespace ssl::color;
using ssl::tensor;

void check_lab(lab got, lab want, double tol) {
    CHECK(std::abs(got.L - want.L) <= tol);
    CHECK(std::abs(got.a - want.a) <= tol);
    CHECK(std::abs(got.b - want.b) <= tol);
}

TEST_CASE("srgb_to_lab: published reference pairs (D65)") {
    check_lab(srgb_to_lab({1, 1, 1}), {100, 0, 0}, 1e-12);  // white exactly
    check_lab(srgb_to_lab({0, 0, 0}), {0, 0, 0}, 1e-12);    // black exactly
    // the widely tabulated sRGB primaries (Lindbloom's calculator, D65, 2 deg)
    check_lab(srgb_to_lab({1, 0, 0}), {53.2408, 80.0925, 67.2032}, 1e-3);
    check_lab(srgb_to_lab({0, 1, 0}), {87.7347, -86.1827, 83.1793}, 1e-3);
    check_lab(srgb_to_lab({0, 0, 1}), {32.2970, 79.1875, -107.8602}, 1e-3);
    check_lab(srgb_to_lab({1, 0, 0}), {53.24, 80.09, 67.20}, 5e-3);
    // secondaries and a mid gray (sRGB 0.5 -> L 53.39; grays have a = b = 0)
    check_lab(srgb_to_lab({1, 1, 0}), {97.1393, -21.5537, 94.4780}, 1e-3);
    check_lab(srgb_to_lab({0, 1, 1}), {91.1132, -48.0875, -14.1312}, 1e-3);
    check_lab(srgb_to_lab({1, 0, 1}), {60.3242, 98.2343, -60.8249}, 1e-3);
    check_lab(srgb_to_lab({0.5, 0.5, 0.5}), {53.3889, 0, 0}, 1e-3);
    for (int k = 0; k <= 255; ++k) {  // every 8-bit gray: a = b = 0, L increasing
        const lab g = srgb_to_lab({k / 255.0, k / 255.0, k / 255.0});
        CHECK(std::abs(g.a) < 1e-9);
        CHECK(std::abs(g.b) < 1e-9);
    }
}

TEST_CASE("lab: the matrices are inverse to each other and the white point is M (1, 1, 1)") {
    const auto& m = detail::srgb_to_xyz_matrix;
    const auto& mi = detail::xyz_to_srgb_matrix;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double s = 0;
            for (int k = 0; k < 3; ++k) s += m[i][k] * mi[k][j];
            CHECK(std::abs(s - (i == j ? 1.0 : 0.0)) < 1e-14);
        }
    CHECK(std::abs(detail::white[0] - 0.95047) < 1e-7);
    CHECK(std::abs(detail::white[1] - 1.0) < 2e-7);
    CHECK(std::abs(detail::white[2] - 1.08883) < 1e-7);
}

TEST_CASE("sRGB -> Lab -> sRGB round trip: random colours, both sides of the sRGB and Lab kinks, near black") {
    ssl::philox g(5, 1);
    double worst = 0;
    auto trip = [&](rgb c) {
        const rgb back = lab_to_srgb(srgb_to_lab(c));
        worst = std::max({worst, std::abs(back.r - c.r), std::abs(back.g - c.g), std::abs(back.b - c.b)});
    };
    for (int i = 0; i < 20000; ++i) trip({g.uniform(0, 1), g.uniform(0, 1), g.uniform(0, 1)});
    for (double v : {0.0, 1e-9, 0.001, 0.04045 - 1e-9, 0.04045, 0.04045 + 1e-9, 0.5, 1.0}) trip({v, v * 0.5, 1 - v});
    for (int i = 0; i < 1000; ++i) trip({g.uniform(0, 0.02), g.uniform(0, 0.02), g.uniform(0, 0.02)});  // L < 8: Lab's linear part
    CHECK(worst < 1e-10);
    // and Lab -> sRGB -> Lab for in-gamut Lab colours
    double worst_lab = 0;
    for (int i = 0; i < 20000; ++i) {
        const lab c{g.uniform(0, 100), g.uniform(-128, 128), g.uniform(-128, 128)};
        if (!in_srgb_gamut(c)) continue;
        const lab back = srgb_to_lab(lab_to_srgb_clamped(c));
        worst_lab = std::max({worst_lab, std::abs(back.L - c.L), std::abs(back.a - c.a), std::abs(back.b - c.b)});
    }
    CHECK(worst_lab < 1e-7);
}

TEST_CASE("lab: chroma and hue angle (LCh)") {
    const lch red = to_lch(srgb_to_lab({1, 0, 0}));
    CHECK(std::abs(red.C - 104.55) < 0.01);                           // tabulated C*ab of sRGB red
    CHECK(std::abs(red.h * 180 / std::numbers::pi - 40.00) < 0.01);  // and h_ab = 40.00 degrees
    const lch blue = to_lch(srgb_to_lab({0, 0, 1}));
    CHECK(std::abs(blue.h * 180 / std::numbers::pi - 306.29) < 0.01);  // hue in [0, 360)
    const lch gray = to_lch(srgb_to_lab({0.3, 0.3, 0.3}));
    CHECK(gray.C < 1e-9);
    CHECK(gray.h >= 0);
    CHECK(gray.h < 2 * std::numbers::pi);
    const lab back = from_lch(to_lch({40, -20, 30}));
    CHECK(std::abs(back.a + 20) < 1e-12);
    CHECK(std::abs(back.b - 30) < 1e-12);
}

TEST_CASE("lab: out-of-range input is refused with a sentence; out-of-gamut Lab is reported and clamped") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (rgb bad : {rgb{-0.01, 0, 0}, rgb{0, 1.01, 0}, rgb{0, 0, 255}, rgb{nan, 0, 0}}) {
        CHECK_THROWS_AS(srgb_to_lab(bad), ssl::value_error);
    }
    try {
        srgb_to_lab(rgb{0.2, 128.0, 0.1});
        FAIL("no error");
    } catch (const ssl::value_error& e) {
        CHECK(std::string(e.what()).find("0..255") != std::string::npos);
    }
    CHECK_THROWS_AS(lab_to_srgb(lab{101, 0, 0}), ssl::value_error);
    CHECK_THROWS_AS(lab_to_srgb(lab{-1, 0, 0}), ssl::value_error);
    CHECK_THROWS_AS(lab_to_srgb(lab{50, nan, 0}), ssl::value_error);
    CHECK(!in_srgb_gamut({50, 120, 0}));
    CHECK(!in_srgb_gamut({100, 0, 50}));
    CHECK(in_srgb_gamut({50, 0, 0}));
    const rgb c = lab_to_srgb_clamped({50, 120, 0});
    for (double v : {c.r, c.g, c.b}) {
        CHECK(v >= 0.0);
        CHECK(v <= 1.0);
    }
}

TEST_CASE("lab: images (3, H, W) and (N, 3, H, W) convert per pixel; a bad pixel is named") {
    tensor<float> img({2, 3, 2, 2});
    ssl::philox g(3, 3);
    for (auto& v : img) v = static_cast<float>(g.uniform(0, 1));
    auto L = srgb_to_lab(img);
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t q = 0; q < 4; ++q) {
            const lab want = srgb_to_lab(rgb{img[n * 12 + q], img[n * 12 + 4 + q], img[n * 12 + 8 + q]});
            CHECK(std::abs(L[n * 12 + q] - want.L) < 1e-4);
            CHECK(std::abs(L[n * 12 + 4 + q] - want.a) < 1e-4);
            CHECK(std::abs(L[n * 12 + 8 + q] - want.b) < 1e-4);
        }
    auto back = lab_to_srgb(L);
    for (std::size_t i = 0; i < img.numel(); ++i) CHECK(std::abs(back[i] - img[i]) < 1e-5);
    auto one = srgb_to_lab(img.slice(1, 2).reshape({3, 2, 2}));
    for (std::size_t i = 0; i < 12; ++i) CHECK(one[i] == L[12 + i]);
    img[12 + 4 + 3] = 1.5f;  // image 1, G plane, pixel 3
    try {
        srgb_to_lab(img);
        FAIL("no error");
    } catch (const ssl::value_error& e) {
        CHECK(std::string(e.what()).find("image 1, pixel 3") != std::string::npos);
    }
    CHECK_THROWS_AS(srgb_to_lab(tensor<float>({1, 4, 2, 2})), ssl::shape_error);
    CHECK_THROWS_AS(srgb_to_lab(tensor<float>({3, 2})), ssl::shape_error);
}

}  // namespace test_lab
