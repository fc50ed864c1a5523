#include <doctest/doctest.h>

#include <ssl/data/holdout.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace test_holdout {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

/// A labelled set of one-pixel images whose pixel is the image's index, with
/// `counts[c]` images of class c (in class order, as an image folder is).
ssl::data::image_dataset set_of(const std::vector<std::size_t>& counts, bool names = true) {
    ssl::data::image_dataset d;
    std::size_t n = 0;
    for (auto c : counts) n += c;
    d.images = ssl::tensor<std::uint8_t>({n, 1, 1, 1});
    for (std::size_t c = 0, i = 0; c < counts.size(); ++c)
        for (std::size_t k = 0; k < counts[c]; ++k, ++i) {
            d.images[i] = static_cast<std::uint8_t>(i);
            d.labels.push_back(static_cast<std::int64_t>(c));
        }
    d.num_classes = counts.size();
    if (names)
        for (std::size_t c = 0; c < counts.size(); ++c) d.class_names.push_back("class" + std::to_string(c));
    d.name = "toy";
    d.source = "/data/toy";
    return d;
}

std::string error_of(const ssl::data::image_dataset& d, double f) {
    try {
        ssl::data::stratified_holdout(d, f, 0, "--holdout");
    } catch (const ssl::value_error& e) {
        return e.what();
    }
    FAIL("threw nothing");
    return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("holdout: stratified, seeded, a partition in increasing order") {
    const auto d = set_of({10, 20, 5, 0, 3});  // class 3 has no image: in neither part, no error
    const auto s = ssl::data::stratified_holdout(d, 0.2, 7);
    CHECK(s.train.size() + s.held_out.size() == d.size());
    CHECK(std::is_sorted(s.train.begin(), s.train.end()));
    CHECK(std::is_sorted(s.held_out.begin(), s.held_out.end()));
    std::vector<std::size_t> all = s.train;
    all.insert(all.end(), s.held_out.begin(), s.held_out.end());
    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == i);
    // round(0.2 * n) per class: 2 of 10, 4 of 20, 1 of 5, 1 of 3 (0.6 rounds up)
    std::vector<std::size_t> held(5, 0);
    for (auto i : s.held_out) ++held[static_cast<std::size_t>(d.labels[i])];
    CHECK(held == std::vector<std::size_t>{2, 4, 1, 0, 1});
    // the same seed gives the same split; another seed another
    const auto again = ssl::data::stratified_holdout(d, 0.2, 7);
    CHECK(again.held_out == s.held_out);
    CHECK(again.train == s.train);
    bool differs = false;
    for (std::uint64_t seed = 8; seed < 12 && !differs; ++seed)
        differs = ssl::data::stratified_holdout(d, 0.2, seed).held_out != s.held_out;
    CHECK(differs);
    // the subsets it names stay class-sorted
    const auto test = d.subset(s.held_out);
    CHECK(std::is_sorted(test.labels.begin(), test.labels.end()));
    CHECK(test.num_classes == 5);
}

TEST_CASE("holdout: every class's images are drawn, not only its first") {
    const auto d = set_of({100});
    std::vector<int> seen(100, 0);
    for (std::uint64_t seed = 0; seed < 20; ++seed)
        for (auto i : ssl::data::stratified_holdout(d, 0.1, seed).held_out) ++seen[i];
    const auto never = std::count(seen.begin(), seen.end(), 0);
    CHECK(never < 40);  // 20 draws of 10: about 12 never drawn
    CHECK(*std::max_element(seen.begin(), seen.end()) < 10);
}

TEST_CASE("holdout: bad input names the option, the set, the class and the counts") {
    const auto d = set_of({10, 1});
    CHECK(contains(error_of(d, 0.5), "--holdout 0.5: class 'class1' of image_dataset 'toy' (/data/toy) has 1 image; a "
                                     "held-out split needs at least 2 per class"));
    const auto e = set_of({10, 4}, false);
    CHECK(contains(error_of(e, 0.1), "--holdout 0.1: class 1 of image_dataset 'toy' (/data/toy) has 4 images, and 0.1 "
                                     "of them rounds to none held out, which leaves the class out of the evaluation"));
    CHECK(contains(error_of(e, 0.9), "class 1 of image_dataset 'toy' (/data/toy) has 4 images, and 0.9 of them rounds "
                                     "to all 4 held out, which leaves none to learn from"));
    for (double f : {0.0, 1.0, -0.5, 2.0, std::nan("")})
        CHECK(contains(error_of(e, f), "--holdout: the fraction to hold out must be in (0, 1)"));
    auto u = set_of({4});
    u.labels.clear();
    u.num_classes = 0;
    u.class_names.clear();
    CHECK(contains(error_of(u, 0.5), "image_dataset 'toy' (/data/toy) is unlabelled; a stratified held-out split "
                                     "needs a class per image"));
}

}  // namespace test_holdout
