#include <doctest/doctest.h>

#include <cmath>

#include <ssl/color/hue_chroma.hpp>
#include <ssl/core/rng.hpp>

namespace test_hue_chroma {

using namespace ssl::color;

TEST_CASE("hsv_hue_chroma: primaries, secondaries, grays (Python colorsys.rgb_to_hsv's hue, chroma = max - min)") {
    struct row {
        rgb c;
        double hue, chroma;
    };
    for (auto [c, h, ch] : {row{{1, 0, 0}, 0.0, 1.0}, row{{1, 1, 0}, 1.0 / 6, 1.0}, row{{0, 1, 0}, 2.0 / 6, 1.0},
                            row{{0, 1, 1}, 3.0 / 6, 1.0}, row{{0, 0, 1}, 4.0 / 6, 1.0}, row{{1, 0, 1}, 5.0 / 6, 1.0},
                            row{{0.5, 0.25, 0.25}, 0.0, 0.25}, row{{0.2, 0.4, 0.3}, 5.0 / 12, 0.2},
                            row{{0.6, 0.2, 0.4}, 11.0 / 12, 0.4}, row{{0.3, 0.3, 0.3}, 0.0, 0.0},
                            row{{0, 0, 0}, 0.0, 0.0}, row{{1, 1, 1}, 0.0, 0.0}}) {
        CAPTURE(c.r);
        CAPTURE(c.g);
        CAPTURE(c.b);
        const hue_chroma v = hsv_hue_chroma(c);
        CHECK(v.hue == doctest::Approx(h).epsilon(1e-12));
        CHECK(v.chroma == doctest::Approx(ch).epsilon(1e-12));
    }
}

TEST_CASE("hsv_hue_chroma: hue in [0, 1), and from_hue_chroma inverts it at the HSL lightness") {
    ssl::philox g(2, 2);
    double worst = 0;
    for (int i = 0; i < 20000; ++i) {
        const rgb c{g.uniform(0, 1), g.uniform(0, 1), g.uniform(0, 1)};
        const hue_chroma v = hsv_hue_chroma(c);
        REQUIRE(v.hue >= 0.0);
        REQUIRE(v.hue < 1.0);
        const double l = (std::max({c.r, c.g, c.b}) + std::min({c.r, c.g, c.b})) / 2;
        const rgb back = from_hue_chroma(v.hue, v.chroma, l);
        worst = std::max({worst, std::abs(back.r - c.r), std::abs(back.g - c.g), std::abs(back.b - c.b)});
    }
    CHECK(worst < 1e-12);
    CHECK(hsv_hue_chroma({1, 0, 1e-17}).hue < 1.0);  // wraps below 1
}

TEST_CASE("hue_chroma: out-of-range input refused") {
    CHECK_THROWS_AS(hsv_hue_chroma({1.2, 0, 0}), ssl::value_error);
    CHECK_THROWS_AS(hsv_hue_chroma({0, -0.1, 0}), ssl::value_error);
    CHECK_THROWS_AS(from_hue_chroma(1.0, 0.1, 0.5), ssl::value_error);
    CHECK_THROWS_AS(from_hue_chroma(0.2, 0.5, 0.9), ssl::value_error);  // chroma 0.5 does not fit lightness 0.9
    CHECK_THROWS_AS(from_hue_chroma(0.2, 0.1, 1.5), ssl::value_error);
}

}  // namespace test_hue_chroma
