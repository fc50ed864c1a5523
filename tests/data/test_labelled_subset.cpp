// data/labelled_subset.hpp: S4L's labelled subset is stratified, seeded,
// reproducible, and refuses what would leave a class (or the set) without labels.
#include <doctest/doctest.h>

#include <ssl/data/labelled_subset.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace test_labelled_subset {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

/// `counts[c]` one-pixel images of class c, classes interleaved (image i has
/// class i mod K while every class still has images), named "class<c>".
ssl::data::image_dataset set_of(const std::vector<std::size_t>& counts) {
    ssl::data::image_dataset d;
    std::vector<std::size_t> left = counts;
    std::size_t n = 0;
    for (auto c : counts) n += c;
    d.images = ssl::tensor<std::uint8_t>({n, 1, 1, 1});
    for (std::size_t i = 0; i < n;)
        for (std::size_t c = 0; c < counts.size(); ++c)
            if (left[c] > 0) {
                --left[c];
                d.labels.push_back(static_cast<std::int64_t>(c));
                ++i;
            }
    d.num_classes = counts.size();
    for (std::size_t c = 0; c < counts.size(); ++c) d.class_names.push_back("class" + std::to_string(c));
    d.name = "toy";
    return d;
}

std::vector<std::size_t> per_class(const ssl::data::image_dataset& d, const std::vector<std::size_t>& idx) {
    std::vector<std::size_t> c(d.num_classes, 0);
    for (auto i : idx) ++c[static_cast<std::size_t>(d.labels[i])];
    return c;
}

}  // namespace

TEST_CASE("labelled_subset: round(fraction * n_c) of every class, sorted and distinct") {
    const auto d = set_of({100, 200, 50, 0, 30});  // class 3 has no image: no error
    const auto s = ssl::data::labelled_subset(d, 0.1, 7);
    CHECK(std::is_sorted(s.begin(), s.end()));
    CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
    CHECK(per_class(d, s) == std::vector<std::size_t>{10, 20, 5, 0, 3});
    const auto one = ssl::data::labelled_subset(set_of({100, 200, 150}), 0.01, 7);
    CHECK(per_class(set_of({100, 200, 150}), one) == std::vector<std::size_t>{1, 2, 2});  // 1.5 rounds up
    CHECK(ssl::data::labelled_subset(d, 1.0, 7).size() == d.size());
}

TEST_CASE("labelled_subset: the same seed gives the same subset, another seed another one") {
    const auto d = set_of({100, 100, 100});
    const auto a = ssl::data::labelled_subset(d, 0.1, 42);
    CHECK(a == ssl::data::labelled_subset(d, 0.1, 42));
    CHECK(a != ssl::data::labelled_subset(d, 0.1, 43));
    CHECK(a != ssl::data::labelled_subset(d, 0.2, 42));
    // seeded but not the first images of each class
    const std::vector<std::size_t> first{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(std::vector<std::size_t>(a.begin(), a.begin() + 10) != first);
}

TEST_CASE("labelled_subset: refuses a class without labels, an unlabelled set and a bad fraction, with a sentence") {
    const auto d = set_of({100, 20});
    CHECK_THROWS_WITH_AS(ssl::data::labelled_subset(d, 0.01, 0, "--labelled-fraction"),
                         doctest::Contains("--labelled-fraction 0.01: class 'class1' of image_dataset 'toy' has 20 "
                                           "images, and 0.01 of them rounds to none labelled, which leaves the class "
                                           "without a label"),
                         ssl::value_error);
    auto unlabelled = d;
    unlabelled.labels.clear();
    unlabelled.num_classes = 0;
    unlabelled.class_names.clear();
    CHECK_THROWS_WITH_AS(ssl::data::labelled_subset(unlabelled, 0.1, 0, "--labelled-fraction"),
                         doctest::Contains("image_dataset 'toy' has no labels; a semi-supervised run needs a class"),
                         ssl::value_error);
    for (double f : {0.0, -0.1, 1.5, std::nan("")})
        CHECK_THROWS_WITH_AS(ssl::data::labelled_subset(d, f, 0, "--labelled-fraction"),
                             doctest::Contains("the fraction of labelled images must be in (0, 1]"), ssl::value_error);
}

}  // namespace test_labelled_subset
