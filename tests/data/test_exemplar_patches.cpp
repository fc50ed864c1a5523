// Exemplar-CNN's seed patches (data/exemplar_patches.hpp): the gradient score,
// textured places chosen over flat ones, the per-image limit, the windows'
// bytes and labels, determinism, and the errors.
#include <doctest/doctest.h>

#include <ssl/data/exemplar_patches.hpp>

#include <set>

namespace test_exemplar_patches {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

namespace data = ssl::data;

/// n images (1, h, w): the left half flat gray, the right half a 0/255
/// checkerboard when `textured` (every pair inside it scores 1), entirely
/// flat otherwise. Labels i % 3.
data::image_dataset half_textured(std::size_t n, std::size_t h, std::size_t w, std::vector<bool> textured) {
    data::image_dataset d;
    d.images = ssl::tensor<std::uint8_t>({n, 1, h, w});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x)
                d.images.at(i, 0, y, x) =
                    textured[i] && x >= w / 2 ? std::uint8_t((x + y) % 2 ? 255 : 0) : std::uint8_t(100 + i);
    for (std::size_t i = 0; i < n; ++i) d.labels.push_back(std::int64_t(i % 3));
    d.num_classes = 3;
    d.name = "half-textured";
    return d;
}

/// Random noise images (c, h, w).
data::image_dataset noise(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::uint64_t seed = 2) {
    data::image_dataset d;
    d.images = ssl::tensor<std::uint8_t>({n, c, h, w});
    ssl::philox g(seed, 5);
    for (auto& v : d.images) v = std::uint8_t(g.below(256));
    d.name = "noise";
    return d;
}

}  // namespace

TEST_CASE("exemplar seeds: the score is the mean squared finite difference inside the patch") {
    // One 1x3x3 image: an edge between column 0 and 1, nothing else. With
    // p = 2 and no context every position is a candidate.
    data::image_dataset d;
    d.images = ssl::tensor<std::uint8_t>({1, 1, 3, 3});
    for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 3; ++x) d.images.at(0, 0, y, x) = x == 0 ? 0 : 255;
    const data::exemplar_patches_config c{.count = 1, .patch_size = 2, .context = 1.0, .candidates = 100,
                                          .quantile = 0};
    CHECK(data::exemplar_window_size(c) == 2);
    const auto s = data::select_exemplar_seeds(d, c);
    REQUIRE(s.size() == 1);
    // The patches at left 0 hold the edge: 2 horizontal pairs of 1^2 out of
    // 2 * 2 * 1 = 4 pairs; the patches at left 1 are flat (score 0: dropped).
    CHECK(s[0].left == 0);
    CHECK(s[0].score == doctest::Approx(0.5));
    // Only two places have a gradient.
    CHECK_THROWS_AS(data::select_exemplar_seeds(d, {.count = 3, .patch_size = 2, .context = 1.0, .per_image = 4,
                                                    .candidates = 100, .quantile = 0}),
                    ssl::value_error);
    CHECK(data::select_exemplar_seeds(d, {.count = 2, .patch_size = 2, .context = 1.0, .per_image = 4,
                                          .candidates = 100, .quantile = 0})
              .size() == 2);
}

TEST_CASE("exemplar seeds: textured places over flat ones, flat images never, at most per_image per image") {
    // Six 32x32 images, textured on their right half except images 1 and 4.
    const auto d = half_textured(6, 32, 32, {true, false, true, true, false, true});
    const data::exemplar_patches_config c{.count = 4, .patch_size = 8, .per_image = 1, .candidates = 64,
                                          .quantile = 0.25, .seed = 3};
    const std::size_t s = data::exemplar_window_size(c), m = (s - 8) / 2;
    CHECK(s == 12);
    const auto seeds = data::select_exemplar_seeds(d, c);
    REQUIRE(seeds.size() == 4);
    std::set<std::size_t> images;
    for (const auto& e : seeds) {
        CHECK(e.image != 1);
        CHECK(e.image != 4);
        CHECK(e.left + m >= 16);  // the whole seed patch lies in the textured half
        CHECK(e.score == 1.0);
        images.insert(e.image);
    }
    CHECK(images.size() == 4);  // one per image
    for (std::size_t k = 1; k < seeds.size(); ++k) CHECK(seeds[k - 1].image < seeds[k].image);  // pool order
    // Asking for more than the textured images can give at one per image.
    CHECK_THROWS_AS(data::select_exemplar_seeds(d, {.count = 5, .patch_size = 8, .per_image = 1, .candidates = 64,
                                                    .quantile = 0.25}),
                    ssl::value_error);
    // Several per image: distinct places, none overlapping another of its
    // image by more than half a patch in both axes.
    const auto many = data::select_exemplar_seeds(noise(3, 1, 32, 32), {.count = 9, .patch_size = 8, .per_image = 3,
                                                                        .candidates = 32, .quantile = 0});
    REQUIRE(many.size() == 9);
    for (std::size_t a = 0; a < many.size(); ++a)
        for (std::size_t b = a + 1; b < many.size(); ++b)
            if (many[a].image == many[b].image) {
                const auto dy = many[a].top > many[b].top ? many[a].top - many[b].top : many[b].top - many[a].top;
                const auto dx = many[a].left > many[b].left ? many[a].left - many[b].left : many[b].left - many[a].left;
                CHECK((2 * dy >= 8 || 2 * dx >= 8));
            }
}

TEST_CASE("exemplar_patches: windows cut at the seeds, source labels kept, deterministic per seed") {
    const auto d = noise(40, 3, 20, 24);
    const data::exemplar_patches_config c{.count = 25, .patch_size = 8, .context = 1.5, .seed = 7};
    const auto seeds = data::select_exemplar_seeds(d, c);
    const auto p = data::exemplar_patches(d, c);
    REQUIRE(p.size() == 25);
    CHECK(p.images.shape() == ssl::shape_t{25, 3, 12, 12});
    CHECK(!p.labelled());  // unlabelled source
    bool bytes = true;
    for (std::size_t i = 0; i < 25; ++i)
        for (std::size_t ch = 0; ch < 3; ++ch)
            for (std::size_t y = 0; y < 12; ++y)
                for (std::size_t x = 0; x < 12; ++x)
                    bytes = bytes && p.images.at(i, ch, y, x) ==
                                         d.images.at(seeds[i].image, ch, seeds[i].top + y, seeds[i].left + x);
    CHECK(bytes);
    // Deterministic per seed, different for another seed.
    CHECK(data::select_exemplar_seeds(d, c) == seeds);
    auto c2 = c;
    c2.seed = 8;
    CHECK(data::select_exemplar_seeds(d, c2) != seeds);
    // Labelled sources keep the source image's class (the surrogate class is the index).
    const auto h = half_textured(6, 32, 32, {true, true, true, true, true, true});
    const auto ph = data::exemplar_patches(h, {.count = 6, .patch_size = 8, .candidates = 16, .quantile = 0});
    REQUIRE(ph.labelled());
    CHECK(ph.num_classes == 3);
    const auto hs = data::select_exemplar_seeds(h, {.count = 6, .patch_size = 8, .candidates = 16, .quantile = 0});
    for (std::size_t i = 0; i < 6; ++i) CHECK(ph.labels[i] == h.labels[hs[i].image]);
}

TEST_CASE("exemplar_patches: errors for patches larger than the images, too many classes, empty sets, bad fields") {
    const auto d = noise(4, 1, 16, 16);
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 2, .patch_size = 20}), ssl::shape_error);
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 2, .patch_size = 12, .context = 1.5}),
                    ssl::shape_error);  // the 18-px window does not fit
    CHECK_NOTHROW(data::exemplar_patches(d, {.count = 2, .patch_size = 12, .context = 1.0}));
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 5, .patch_size = 8}), ssl::value_error);  // 4 images x 1
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 0, .patch_size = 8}), ssl::value_error);
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 2, .patch_size = 1}), ssl::value_error);
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 2, .patch_size = 8, .context = 0.5}), ssl::value_error);
    CHECK_THROWS_AS(data::exemplar_patches(d, {.count = 2, .patch_size = 8, .quantile = 1.0}), ssl::value_error);
    data::image_dataset empty;
    empty.images = ssl::tensor<std::uint8_t>({0, 1, 16, 16});
    CHECK_THROWS_AS(data::exemplar_patches(empty, {.count = 1, .patch_size = 8}), ssl::value_error);
    CHECK_THROWS_AS(data::exemplar_patches(data::image_dataset{}, {.count = 1, .patch_size = 8}), ssl::value_error);
    try {
        data::exemplar_patches(d, {.count = 2, .patch_size = 20});
    } catch (const ssl::error& e) {
        MESSAGE(std::string(e.what()));
        CHECK(std::string(e.what()).find("larger than") != std::string::npos);
    }
}

}  // namespace test_exemplar_patches
