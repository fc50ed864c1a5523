// The jigsaw pretext's parts (augment/jigsaw.hpp): the maximal-Hamming
// permutation set and the tile geometry (cells, gaps, slots, labels).
#include <doctest/doctest.h>

#include <ssl/augment/jigsaw.hpp>

#include <set>

namespace test_jigsaw {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using ssl::augment::permutation9;

std::size_t min_distance_to(const permutation9& p, const std::vector<permutation9>& set, std::size_t upto) {
    std::size_t d = 10;
    for (std::size_t j = 0; j < upto; ++j) d = std::min(d, ssl::augment::hamming(p, set[j]));
    return d;
}

}  // namespace

TEST_CASE("maximal_hamming_permutations: distinct, greedy max-min, deterministic per seed, cached") {
    const auto& p = ssl::augment::maximal_hamming_permutations(100, 0);
    REQUIRE(p.size() == 100);
    std::set<permutation9> unique(p.begin(), p.end());
    CHECK(unique.size() == 100);
    for (const auto& q : p) {
        permutation9 s = q;
        std::sort(s.begin(), s.end());
        CHECK(s == permutation9{0, 1, 2, 3, 4, 5, 6, 7, 8});  // each is a permutation of the 9 cells
    }
    // The greedy property: the k-th choice is as far from the first k as any
    // permutation of 9! is (checked by brute force for the first choices).
    permutation9 q{0, 1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<std::size_t> best(6, 0);
    do
        for (std::size_t k = 1; k < best.size(); ++k) best[k] = std::max(best[k], min_distance_to(q, p, k));
    while (std::next_permutation(q.begin(), q.end()));
    for (std::size_t k = 1; k < best.size(); ++k) CHECK(min_distance_to(p[k], p, k) == best[k]);
    CHECK(best[1] == 9);  // a derangement of the first exists
    std::size_t dmin = 10;
    for (std::size_t a = 0; a < p.size(); ++a) dmin = std::min(dmin, min_distance_to(p[a], p, a));
    MESSAGE("100 permutations: minimal pairwise Hamming distance ", dmin);
    CHECK(dmin >= 6);
    CHECK(&ssl::augment::maximal_hamming_permutations(100, 0) == &p);  // cached
    const auto& other = ssl::augment::maximal_hamming_permutations(100, 1);
    CHECK(other != p);
    CHECK_THROWS_AS(ssl::augment::maximal_hamming_permutations(1), ssl::value_error);
}

TEST_CASE("jigsaw_tiles: slot r of sample i is a tile of cell perm[r], inside the cell; labels; spec; determinism") {
    // A 48x48 image whose 3x3 cells are constant 0.05 + 0.1 * cell: with the
    // whole image kept (scale 1), no jitter and no normalisation every tile
    // is constant, and its value names the cell it came from.
    const std::size_t n = 5;
    ssl::tensor<float> img({n, 1, 48, 48});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t y = 0; y < 48; ++y)
            for (std::size_t x = 0; x < 48; ++x) img.at(i, 0, y, x) = 0.05f + 0.1f * float((y / 16) * 3 + x / 16);
    ssl::augment::jigsaw_tiles jt({.size = 28, .channels = 1, .grid = 48, .crop_min_scale = 1.0, .permutations = 30,
                                   .jitter = 0, .tile_normalize = false});
    CHECK(jt.cell() == 16);
    CHECK(jt.tile() == 14);  // round(16 * 64 / 75)
    std::vector<std::size_t> ids{3, 1, 4, 1, 5};
    auto vb = jt.make_views(img, ids, 7, 2);
    REQUIRE(vb.views.size() == 1);
    CHECK(vb.views[0].shape() == ssl::shape_t{9 * n, 1, 14, 14});
    REQUIRE(vb.specs.size() == 1);
    CHECK(vb.specs[0].copies == 9);
    CHECK(vb.specs[0].grid_rows == 3);
    REQUIRE(vb.labels.size() == n);
    vb.ids = ids;
    CHECK_NOTHROW(vb.validate(n));
    for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(vb.labels[i] >= 0);
        REQUIRE(vb.labels[i] < 30);
        const auto& p = jt.permutations()[static_cast<std::size_t>(vb.labels[i])];
        for (std::size_t r = 0; r < 9; ++r) {
            const float want = 0.05f + 0.1f * float(p[r]);
            const float* t = vb.views[0].data() + (r * n + i) * 14 * 14;
            for (std::size_t k = 0; k < 14 * 14; ++k) REQUIRE(t[k] == doctest::Approx(want).epsilon(1e-5));
        }
    }
    // Samples 1 and 3 have the same id: the same draws.
    CHECK(vb.labels[1] == vb.labels[3]);
    auto again = jt.make_views(img, ids, 7, 2);
    CHECK(std::equal(again.views[0].begin(), again.views[0].end(), vb.views[0].begin()));
    CHECK(again.labels == vb.labels);
    auto other_epoch = jt.make_views(img, ids, 7, 3);
    CHECK(other_epoch.labels != vb.labels);
}

TEST_CASE("jigsaw_tiles: tiles are normalised per tile and channel; the gap offset varies within the cell") {
    const std::size_t n = 8;
    ssl::tensor<float> img({n, 3, 32, 32});
    for (std::size_t k = 0; k < img.numel(); ++k) img[k] = float((k * 2654435761u) % 1000) / 1000.0f;
    ssl::augment::jigsaw_tiles jt({.size = 32, .channels = 3, .grid = 48, .permutations = 10});
    std::vector<std::size_t> ids(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = i;
    auto vb = jt.make_views(img, ids, 1, 0);
    const std::size_t hw = 14 * 14;
    for (std::size_t t = 0; t < 9 * n; ++t)
        for (std::size_t c = 0; c < 3; ++c) {
            const float* v = vb.views[0].data() + (t * 3 + c) * hw;
            double s = 0, ss = 0;
            for (std::size_t k = 0; k < hw; ++k) s += v[k], ss += double(v[k]) * v[k];
            CHECK(s / hw == doctest::Approx(0).epsilon(1e-4).scale(1));
            CHECK(ss / hw == doctest::Approx(1).epsilon(1e-3));
        }
    // Evaluation: whole images at the tiles' pixel scale, standardised like them.
    auto e = jt.eval_transform(img);
    CHECK(e.shape() == ssl::shape_t{n, 3, 48, 48});
    for (std::size_t c = 0; c < 3 * n; ++c) {
        const float* v = e.data() + c * 48 * 48;
        double s = 0, ss = 0;
        for (std::size_t k = 0; k < 48 * 48; ++k) s += v[k], ss += double(v[k]) * v[k];
        CHECK(s / (48 * 48) == doctest::Approx(0).epsilon(1e-4).scale(1));
        CHECK(ss / (48 * 48) == doctest::Approx(1).epsilon(1e-3));
    }
    CHECK_THROWS_AS(ssl::augment::jigsaw_tiles({.channels = 2}), ssl::value_error);
    CHECK_THROWS_AS(ssl::augment::jigsaw_tiles({.grid = 48, .tile = 17}), ssl::value_error);
    CHECK_THROWS_AS(jt.make_views(ssl::tensor<float>({2, 1, 32, 32}), std::vector<std::size_t>{0, 1}, 0, 0),
                    ssl::shape_error);
}

TEST_CASE("jigsaw_tiles: eval_tiles evaluates an image as its 9 centred, unshuffled tiles") {
    const std::size_t n = 3;
    ssl::tensor<float> img({n, 1, 48, 48});  // already at the grid side: the resize is the identity
    for (std::size_t k = 0; k < img.numel(); ++k) img[k] = float((k * 2654435761u) % 1000) / 1000.0f;
    ssl::augment::jigsaw_tiles whole({.size = 48, .channels = 1, .grid = 48, .permutations = 10, .tile_normalize = false});
    ssl::augment::jigsaw_tiles tiles(
        {.size = 48, .channels = 1, .grid = 48, .permutations = 10, .tile_normalize = false, .eval_tiles = true});
    CHECK(whole.eval_copies() == 1);
    CHECK(tiles.eval_copies() == 9);
    const auto sq = whole.eval_transform(img);  // the normalised grid the tiles are cut from
    const auto e = tiles.eval_transform(img);
    REQUIRE(e.shape() == ssl::shape_t{9 * n, 1, 14, 14});
    // row r * N + i: cell r (row-major) of image i, the tile centred in its 16-px cell (offset 1)
    for (std::size_t r = 0; r < 9; ++r)
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t y = 0; y < 14; ++y)
                for (std::size_t x = 0; x < 14; ++x)
                    REQUIRE(e.data()[((r * n + i) * 14 + y) * 14 + x] ==
                            sq.data()[(i * 48 + (r / 3) * 16 + 1 + y) * 48 + (r % 3) * 16 + 1 + x]);
    // with tile_normalize each tile is standardised on its own, as in training
    ssl::augment::jigsaw_tiles norm({.size = 48, .channels = 1, .grid = 48, .permutations = 10, .eval_tiles = true});
    const auto en = norm.eval_transform(img);
    for (std::size_t t = 0; t < 9 * n; ++t) {
        double s = 0, ss = 0;
        for (std::size_t k = 0; k < 196; ++k) s += en.data()[t * 196 + k], ss += double(en.data()[t * 196 + k]) * en.data()[t * 196 + k];
        CHECK(s / 196 == doctest::Approx(0).epsilon(1e-4).scale(1));
        CHECK(ss / 196 == doctest::Approx(1).epsilon(1e-3));
    }
}

}  // namespace test_jigsaw
