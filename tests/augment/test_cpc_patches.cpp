// CPC's patch grid (augment/cpc.hpp): the geometry per image size, where
// every patch comes from (positions, the 50 % overlap, the jitter), the row
// layout of the view, evaluation's patches, and images too small for a grid.
#include <doctest/doctest.h>

#include <ssl/augment/cpc.hpp>

#include <cmath>
#include <set>

namespace test_cpc_patches {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using ssl::augment::cpc_patches;

/// n images (1, S, S) whose pixel (y, x) holds (y S + x + 1) / (S S + 1) + 0.001 i:
/// every pixel of every image is unique, so a patch tells where it came from.
ssl::tensor<float> coded_images(std::size_t n, std::size_t S) {
    ssl::tensor<float> img({n, 1, S, S});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t y = 0; y < S; ++y)
            for (std::size_t x = 0; x < S; ++x)
                img.at(i, 0, y, x) = float(y * S + x + 1) / float(S * S + 1) * 0.5f + 0.01f * float(i);
    return img;
}

/// The pixel value before normalisation (default_normalize for 1 channel).
float raw(float v) { return v * 0.3530f + 0.2860f; }

/// Where the top-left pixel of a patch came from in a coded canvas of side S
/// (the patch's first value decoded), for image i.
std::pair<std::size_t, std::size_t> origin_of(float first, std::size_t S, std::size_t i) {
    const double v = (double(raw(first)) - 0.01 * double(i)) / 0.5 * double(S * S + 1) - 1.0;
    const auto k = static_cast<std::size_t>(std::lround(v));
    return {k / S, k % S};
}

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}

}  // namespace

TEST_CASE("cpc_geometry: 7x7 half-overlapping patches; canvas per image size; the paper's 64 px at 256") {
    auto g = ssl::augment::cpc_geometry(28, 7);  // Fashion-MNIST: resized to 32
    CHECK(g.canvas == 32);
    CHECK(g.patch == 8);
    CHECK(g.stride == 4);
    CHECK(g.jitter == 1);
    CHECK(g.origin(6) + g.patch == g.canvas);  // the grid covers the canvas exactly
    g = ssl::augment::cpc_geometry(32, 7);
    CHECK((g.canvas == 32 && g.patch == 8 && g.stride == 4));
    g = ssl::augment::cpc_geometry(96, 7);  // STL-10
    CHECK((g.canvas == 96 && g.patch == 24 && g.stride == 12 && g.jitter == 3));
    g = ssl::augment::cpc_geometry(256, 7);  // the paper's 7x7 grid of 64-px patches at stride 32
    CHECK((g.canvas == 256 && g.patch == 64 && g.stride == 32 && g.jitter == 8));
    g = ssl::augment::cpc_geometry(500, 7);  // larger images are brought down to 256
    CHECK((g.canvas == 256 && g.patch == 64));
    g = ssl::augment::cpc_geometry(28, 3);
    CHECK((g.canvas == 28 && g.patch == 14 && g.stride == 7));
    g = ssl::augment::cpc_geometry(28, 7, 0.0);
    CHECK(g.jitter == 0);
}

TEST_CASE("cpc_geometry: an image too small for the grid is refused with a sentence naming what fits") {
    CHECK_THROWS_WITH_AS(ssl::augment::cpc_geometry(16, 7),
                         "cpc_patches: images of 16 px are too small for a 7x7 grid of half-overlapping patches: it "
                         "gives 4-px patches (canvas 16, stride 2), and patches need at least 8 px; use a grid of at "
                         "most 4x4 for these images, or images of at least 25 px",
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::augment::cpc_geometry(8, 3), doctest::Contains("use images of at least 13 px"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::augment::cpc_geometry(28, 1), doctest::Contains("no row below another"),
                         ssl::value_error);
    // the policy refuses at construction, before any batch
    CHECK_THROWS_WITH_AS(cpc_patches({.size = 16, .channels = 1, .grid = 7}), doctest::Contains("too small"),
                         ssl::value_error);
    // 25 px is the smallest side for 7x7 (canvas 32)
    CHECK(ssl::augment::cpc_geometry(25, 7).patch == 8);
}

TEST_CASE("cpc_patches: row (r g + c) N + i is patch (r, c) of sample i, at (4 r, 4 c); 50 % overlap; spec") {
    // 32-px images (the canvas: no resize), the whole image kept, no flip,
    // no jitter of any kind: every patch is an exact window of its image.
    const std::size_t n = 3, S = 32, g = 7, p = 8;
    cpc_patches a({.size = S, .channels = 1, .grid = g, .crop_min_scale = 1.0, .flip = 0.0, .position_jitter = 0.0,
                   .jitter = 0.0});
    const auto img = coded_images(n, S);
    const std::vector<std::size_t> ids{4, 9, 2};
    auto vb = a.make_views(img, ids, 7, 0);
    REQUIRE(vb.views.size() == 1);
    REQUIRE(vb.specs.size() == 1);
    CHECK(vb.specs[0].copies == 49);
    CHECK(vb.specs[0].grid_rows == 7);
    CHECK(vb.specs[0].grid_cols == 7);
    CHECK(vb.labels.empty());
    vb.ids = ids;
    vb.validate(n);
    const auto& v = vb.views[0];
    REQUIRE(v.shape() == ssl::shape_t{g * g * n, 1, p, p});
    for (std::size_t r = 0; r < g; ++r)
        for (std::size_t c = 0; c < g; ++c)
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t row = (r * g + c) * n + i;
                double worst = 0;
                for (std::size_t y = 0; y < p; ++y)
                    for (std::size_t x = 0; x < p; ++x)
                        worst = std::max(worst, double(std::abs(raw(v.at(row, 0, y, x)) - img.at(i, 0, 4 * r + y, 4 * c + x))));
                CAPTURE(r);
                CAPTURE(c);
                CAPTURE(i);
                CHECK(worst < 1e-5);
            }
    // neighbours share half their pixels: the bottom half of (r, c) is the top
    // half of (r + 1, c), the right half of (r, c) the left half of (r, c + 1)
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t y = 0; y < p / 2; ++y)
            for (std::size_t x = 0; x < p; ++x) {
                CHECK(v.at((0 * g + 2) * n + i, 0, y + p / 2, x) == v.at((1 * g + 2) * n + i, 0, y, x));
                CHECK(v.at((3 * g + 0) * n + i, 0, x, y + p / 2) == v.at((3 * g + 1) * n + i, 0, x, y));
            }
    // evaluation: the same nominal grid, without augmentation
    const auto e = a.eval_transform(img);
    CHECK(a.eval_copies() == 49);
    REQUIRE(e.shape() == v.shape());
    double d = 0;
    for (std::size_t k = 0; k < e.numel(); ++k) d = std::max(d, double(std::abs(e[k] - v[k])));
    CHECK(d < 1e-6);
}

TEST_CASE("cpc_patches: jittered patches stay within 1 px of their place and inside the canvas; reproducible") {
    const std::size_t n = 4, S = 32, g = 7;
    cpc_patches a({.size = S, .channels = 1, .grid = g, .crop_min_scale = 1.0, .flip = 0.0, .jitter = 0.0});
    REQUIRE(a.geometry().jitter == 1);
    const auto img = coded_images(n, S);
    const auto ids = iota(n);
    const auto v = a.make_views(img, ids, 11, 2).views[0];
    std::set<std::pair<long, long>> offsets;
    for (std::size_t r = 0; r < g; ++r)
        for (std::size_t c = 0; c < g; ++c)
            for (std::size_t i = 0; i < n; ++i) {
                const auto [oy, ox] = origin_of(v.at((r * g + c) * n + i, 0, 0, 0), S, i);
                const long dy = long(oy) - long(4 * r), dx = long(ox) - long(4 * c);
                CHECK(std::abs(dy) <= 1);
                CHECK(std::abs(dx) <= 1);
                CHECK(oy + 8 <= S);
                CHECK(ox + 8 <= S);
                offsets.insert({dy, dx});
            }
    CHECK(offsets.size() == 9);  // every offset in [-1, 1]^2 occurs
    // the same (seed, epoch, ids) give the same patches, whatever the batch
    const auto again = a.make_views(img, ids, 11, 2).views[0];
    CHECK(std::equal(v.begin(), v.end(), again.begin()));
    const std::vector<std::size_t> one{2};
    const auto single = a.make_views(img.slice(2, 3), one, 11, 2).views[0];
    for (std::size_t k = 0; k < g * g; ++k)
        CHECK(std::equal(single.data() + k * 64, single.data() + (k + 1) * 64, v.data() + (k * n + 2) * 64));
    // another epoch draws other patches
    const auto other = a.make_views(img, ids, 11, 3).views[0];
    CHECK(!std::equal(v.begin(), v.end(), other.begin()));
}

TEST_CASE("cpc_patches: 28-px images are resized to the 32-px canvas; colour dropping keeps one channel") {
    cpc_patches a({.size = 28, .channels = 1});
    ssl::tensor<float> img({2, 1, 28, 28});
    for (std::size_t k = 0; k < img.numel(); ++k) img[k] = float(k % 17) / 17.0f;
    const auto ids = iota(2);
    CHECK(a.make_views(img, ids, 1, 0).views[0].shape() == ssl::shape_t{98, 1, 8, 8});
    CHECK(a.eval_transform(img).shape() == ssl::shape_t{98, 1, 8, 8});
    CHECK_THROWS_AS(a.make_views(ssl::tensor<float>({2, 3, 28, 28}), ids, 1, 0), ssl::shape_error);

    cpc_patches rgb({.size = 32, .channels = 3, .color_drop = 1.0});
    ssl::tensor<float> col({2, 3, 32, 32});
    for (std::size_t k = 0; k < col.numel(); ++k) col[k] = 0.2f + 0.6f * float((k * 7) % 23) / 23.0f;
    const auto v = rgb.make_views(col, ids, 5, 0).views[0];
    std::set<std::size_t> kept;
    for (std::size_t row = 0; row < v.dim(0); ++row) {
        std::size_t nonzero = 0, which = 0;
        for (std::size_t ch = 0; ch < 3; ++ch) {
            bool any = false;
            for (std::size_t k = 0; k < 64; ++k) any = any || v.at(row, ch, k / 8, k % 8) != 0.0f;
            if (any) ++nonzero, which = ch;
        }
        CHECK(nonzero == 1);
        kept.insert(which);
    }
    CHECK(kept.size() == 3);
    // evaluation drops nothing
    const auto e = rgb.eval_transform(col);
    for (std::size_t ch = 0; ch < 3; ++ch) CHECK(e.at(0, ch, 3, 3) != 0.0f);
}

}  // namespace test_cpc_patches
