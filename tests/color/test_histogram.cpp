#include <doctest/doctest.h>

#include <cmath>

#include <ssl/color/histogram.hpp>

namespace test_histogram {

using namespace ssl::color;
using ssl::tensor;

tensor<float> solid(std::size_t n, std::size_t h, std::size_t w, rgb c) {
    tensor<float> t({n, 3, h, w});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t q = 0; q < h * w; ++q) {
            t[i * 3 * h * w + q] = float(c.r);
            t[i * 3 * h * w + h * w + q] = float(c.g);
            t[i * 3 * h * w + 2 * h * w + q] = float(c.b);
        }
    return t;
}
tensor<std::int64_t> at(std::initializer_list<std::int64_t> yx) {
    return tensor<std::int64_t>::from({1, yx.size() / 2, 2}, yx);
}

TEST_CASE("local histograms: a solid colour, a gray, and a window across a red | blue edge") {
    auto red = local_hue_chroma_histograms(solid(1, 12, 12, {1, 0, 0}), at({5, 5, 3, 8}));
    REQUIRE(red.hue.shape() == ssl::shape_t{2, 8});
    for (std::size_t r = 0; r < 2; ++r) {
        CHECK(red.hue[r * 8 + 0] == 1.0f);     // hue 0 -> bin 0
        CHECK(red.chroma[r * 8 + 7] == 1.0f);  // chroma 1 -> the last bin
        CHECK(red.hue_weight[r] == 1.0f);
    }
    auto gray = local_hue_chroma_histograms(solid(1, 9, 9, {0.4, 0.4, 0.4}), at({4, 4}));
    for (std::size_t k = 0; k < 8; ++k) CHECK(gray.hue[k] == doctest::Approx(1.0 / 8));  // uniform: hue undefined
    CHECK(gray.chroma[0] == 1.0f);
    CHECK(gray.hue_weight[0] == 0.0f);  // and no weight
    // columns 0..9 red, 10..15 blue; window centred at column 10 covers 7..13:
    // 3 red columns, 4 blue (hue 2/3 -> bin 5)
    auto img = solid(1, 16, 16, {1, 0, 0});
    for (std::size_t y = 0; y < 16; ++y)
        for (std::size_t x = 10; x < 16; ++x) {
            img[y * 16 + x] = 0.0f;
            img[2 * 256 + y * 16 + x] = 1.0f;
        }
    auto edge = local_hue_chroma_histograms(img, at({8, 10}));
    CHECK(edge.hue[0] == doctest::Approx(3.0 / 7));
    CHECK(edge.hue[5] == doctest::Approx(4.0 / 7));
    CHECK(edge.chroma[7] == 1.0f);
}

TEST_CASE("local histograms: hue votes weighted by chroma, chroma votes counted; matches a direct count") {
    // random image; the reference recomputes every window with hsv_hue_chroma
    tensor<double> img({2, 3, 10, 11});
    ssl::philox g(4, 4);
    for (auto& v : img) v = g.uniform(0, 1);
    const histogram_config cfg{5, 2};
    auto loc = sample_locations(2, 10, 11, 6, 2, 99);
    auto t = local_hue_chroma_histograms(img, loc, cfg);
    REQUIRE(t.hue.shape() == ssl::shape_t{12, 5});
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t p = 0; p < 6; ++p) {
            const auto y = loc[(i * 6 + p) * 2], x = loc[(i * 6 + p) * 2 + 1];
            double hh[5] = {}, ch[5] = {}, cs = 0;
            for (auto yy = y - 2; yy <= y + 2; ++yy)
                for (auto xx = x - 2; xx <= x + 2; ++xx) {
                    const std::size_t q = std::size_t(yy) * 11 + std::size_t(xx);
                    const auto v = hsv_hue_chroma({img[i * 330 + q], img[i * 330 + 110 + q], img[i * 330 + 220 + q]});
                    hh[std::min<std::size_t>(std::size_t(v.hue * 5), 4)] += v.chroma;
                    ch[std::min<std::size_t>(std::size_t(v.chroma * 5), 4)] += 1;
                    cs += v.chroma;
                }
            const std::size_t row = i * 6 + p;
            double sh = 0, sc = 0;
            for (std::size_t k = 0; k < 5; ++k) {
                CHECK(t.hue[row * 5 + k] == doctest::Approx(hh[k] / cs).epsilon(1e-12));
                CHECK(t.chroma[row * 5 + k] == doctest::Approx(ch[k] / 25).epsilon(1e-12));
                sh += t.hue[row * 5 + k];
                sc += t.chroma[row * 5 + k];
            }
            CHECK(sh == doctest::Approx(1.0));
            CHECK(sc == doctest::Approx(1.0));
            CHECK(t.hue_weight[row] == doctest::Approx(cs / 25).epsilon(1e-12));
        }
}

TEST_CASE("sample_locations: inside the margin, reproducible, different per stream and image") {
    auto a = sample_locations(3, 64, 48, 128, 16, 7, 0);
    auto b = sample_locations(3, 64, 48, 128, 16, 7, 0);
    auto c = sample_locations(3, 64, 48, 128, 16, 7, 1);
    bool differ = false, per_image = false;
    for (std::size_t i = 0; i < a.numel(); ++i) {
        CHECK(a[i] == b[i]);
        differ = differ || a[i] != c[i];
    }
    for (std::size_t p = 0; p < 128 * 2; ++p) per_image = per_image || a[p] != a[128 * 2 + p];
    CHECK(differ);
    CHECK(per_image);
    for (std::size_t k = 0; k < a.numel(); k += 2) {
        CHECK(a[k] >= 16);
        CHECK(a[k] < 48);  // rows: [16, 64 - 16)
        CHECK(a[k + 1] >= 16);
        CHECK(a[k + 1] < 32);  // columns: [16, 48 - 16)
    }
    CHECK_THROWS_AS(sample_locations(1, 10, 10, 4, 5, 1), ssl::value_error);
}

TEST_CASE("local histograms: clip = true cuts windows at the border and normalizes by the in-image area") {
    // a corner window of radius 3 at (0, 0) covers 4 x 4 pixels: column 0 red, the rest gray
    auto img = solid(1, 8, 8, {0.5, 0.5, 0.5});
    for (std::size_t y = 0; y < 8; ++y) {
        img[y * 8] = 1.0f;
        img[64 + y * 8] = 0.0f;
        img[128 + y * 8] = 0.0f;
    }
    histogram_config cfg;
    cfg.clip = true;
    auto t = local_hue_chroma_histograms(img, at({0, 0, 7, 7}), cfg);
    CHECK(t.chroma[7] == doctest::Approx(4.0 / 16));   // 4 red pixels of 16
    CHECK(t.chroma[0] == doctest::Approx(12.0 / 16));  // 12 gray
    CHECK(t.hue[0] == doctest::Approx(1.0));           // only the red pixels vote
    CHECK(t.hue_weight[0] == doctest::Approx(4.0 / 16));
    CHECK(t.chroma[8 + 0] == doctest::Approx(1.0));    // (7, 7): all gray
    CHECK_THROWS_AS(local_hue_chroma_histograms(img, at({8, 0}), cfg), ssl::value_error);  // outside the image
}

TEST_CASE("local histograms: bad input refused") {
    auto img = solid(1, 8, 8, {0.2, 0.5, 0.7});
    CHECK_THROWS_AS(local_hue_chroma_histograms(img, at({2, 4})), ssl::value_error);  // window leaves the image (radius 3)
    CHECK_THROWS_AS(local_hue_chroma_histograms(img, at({4, 5})), ssl::value_error);
    CHECK_NOTHROW(local_hue_chroma_histograms(img, at({3, 4})));
    CHECK_THROWS_AS(local_hue_chroma_histograms(tensor<float>::zeros({1, 1, 8, 8}), at({4, 4})), ssl::shape_error);
    CHECK_THROWS_AS(local_hue_chroma_histograms(img, tensor<std::int64_t>::zeros({2, 1, 2})), ssl::shape_error);
    img[5] = 255.0f;  // an 8-bit value in a [0, 1] image
    CHECK_THROWS_AS(local_hue_chroma_histograms(img, at({4, 4})), ssl::value_error);
}

}  // namespace test_histogram
