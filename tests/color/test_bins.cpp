#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include <ssl/color/bins.hpp>

namespace test_bins {

using namespace ssl::color;

TEST_CASE("ab_gamut: 261 in-gamut bins of the 10-unit grid, a in [-90, 100], b in [-110, 90]") {
    const ab_gamut& g = ab_gamut_bins();
    CHECK(g.count() == 261);
    double amin = 1e9, amax = -1e9, bmin = 1e9, bmax = -1e9;
    std::set<std::pair<int, int>> seen;
    for (std::size_t k = 0; k < g.count(); ++k) {
        const auto [a, b] = g.centre(k);
        amin = std::min(amin, a), amax = std::max(amax, a), bmin = std::min(bmin, b), bmax = std::max(bmax, b);
        const auto c = ab_gamut::cell(a, b);
        CHECK(g.bin_of_cell(c.first, c.second) == int(k));
        CHECK(seen.insert(c).second);
        if (k > 0) CHECK(g.centre(k - 1) < g.centre(k));  // ordered by a, then b
    }
    CHECK(amin == -90.0);
    CHECK(amax == 100.0);
    CHECK(bmin == -110.0);
    CHECK(bmax == 90.0);
    CHECK(&g == &ab_gamut_bins());  // computed once
}

TEST_CASE("ab_gamut: every 8-bit sRGB colour (cube sampled every 3rd code, and its edges) lands in an in-gamut bin") {
    const ab_gamut& g = ab_gamut_bins();
    std::set<int> used;
    std::size_t colours = 0;
    for (int r = 0; r < 256; r += 3)
        for (int gg = 0; gg < 256; gg += 3)
            for (int b = 0; b < 256; b += 3) {
                const lab c = srgb_to_lab({r / 255.0, gg / 255.0, b / 255.0});
                const auto [i, j] = ab_gamut::cell(c.a, c.b);
                const int k = g.bin_of_cell(i, j);
                REQUIRE(k >= 0);
                used.insert(k);
                ++colours;
            }
    CHECK(colours == 86 * 86 * 86);
    CHECK(used.size() > 200);  // most bins are reached from the interior sample too
    // the primaries' bins
    for (rgb c : {rgb{1, 0, 0}, rgb{0, 1, 0}, rgb{0, 0, 1}, rgb{0.5, 0.5, 0.5}}) {
        const lab l = srgb_to_lab(c);
        const auto [a, b] = g.centre(g.bin_of(l.a, l.b));
        CHECK(std::abs(a - l.a) <= 5.0);
        CHECK(std::abs(b - l.b) <= 5.0);
    }
}

TEST_CASE("ab_gamut: out-of-gamut (a, b) maps to the nearest in-gamut centre; non-finite refused") {
    const ab_gamut& g = ab_gamut_bins();
    CHECK(g.bin_of_cell(13, 0) == -1);
    const auto [a, b] = g.centre(g.bin_of(127.0, 0.0));
    CHECK(a >= 90.0);
    for (std::size_t k = 0; k < g.count(); ++k) {  // nothing nearer
        const auto c = g.centre(k);
        CHECK(std::hypot(c.first - 127.0, c.second) >= std::hypot(a - 127.0, b) - 1e-12);
    }
    CHECK_THROWS_AS(g.bin_of(std::nan(""), 0.0), ssl::value_error);
}

TEST_CASE("uniform_bins and lightness_bins: edges, centres, the closed top, refusals") {
    const auto L = lightness_bins();
    CHECK(L.count == 100);
    CHECK(L.bin_of(0.0) == 0);
    CHECK(L.bin_of(0.999) == 0);
    CHECK(L.bin_of(1.0) == 1);
    CHECK(L.bin_of(99.5) == 99);
    CHECK(L.bin_of(100.0) == 99);
    CHECK(L.centre(0) == doctest::Approx(0.5));
    CHECK(L.centre(99) == doctest::Approx(99.5));
    CHECK_THROWS_AS(L.bin_of(100.5), ssl::value_error);
    CHECK_THROWS_AS(L.bin_of(-0.1), ssl::value_error);
    CHECK_THROWS_AS(L.bin_of(std::nan("")), ssl::value_error);
    const uniform_bins h(8, 0.0, 1.0);
    CHECK(h.bin_of(0.124) == 0);
    CHECK(h.bin_of(0.125) == 1);
    CHECK(h.bin_of(0.99999) == 7);
    CHECK_THROWS_AS(uniform_bins(0, 0.0, 1.0), ssl::value_error);
    CHECK_THROWS_AS(uniform_bins(4, 1.0, 1.0), ssl::value_error);
    CHECK(lightness_bins(20).width() == doctest::Approx(5.0));
}

}  // namespace test_bins
