#include <doctest/doctest.h>

#include <ssl/core/rng.hpp>
#include <ssl/eval.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace test_lowshot {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
namespace ev = ssl::eval;

namespace {

// classes c = 0..k-1 with 10 + 3c samples each, interleaved
std::vector<std::int64_t> uneven_labels(std::size_t k) {
    std::vector<std::int64_t> y;
    for (std::size_t round = 0; round < 10 + 3 * k; ++round)
        for (std::size_t c = 0; c < k; ++c)
            if (round < 10 + 3 * c) y.push_back(static_cast<std::int64_t>(c));
    return y;
}

// well-separated blobs: class c around 10 e_c
void separable(std::size_t classes, std::size_t per, std::uint64_t seed, tensor<float>& x, std::vector<std::int64_t>& y) {
    ssl::philox g(seed, 1);
    x = tensor<float>({classes * per, classes});
    y.clear();
    for (std::size_t i = 0; i < classes * per; ++i) {
        const std::size_t c = i % classes;
        y.push_back(static_cast<std::int64_t>(c));
        for (std::size_t j = 0; j < classes; ++j) x.at(i, j) = static_cast<float>((j == c ? 10.0 : 0.0) + g.normal());
    }
}

}  // namespace

TEST_CASE("lowshot_draw: stratified, seeded, reproducible") {
    const auto y = uneven_labels(4);
    for (std::size_t k : {1, 2, 7, 10}) {
        CAPTURE(k);
        const auto a = ev::lowshot_draw(y, k, 3, 0);
        CHECK(a.size() == 4 * k);
        CHECK(std::is_sorted(a.begin(), a.end()));
        CHECK(std::adjacent_find(a.begin(), a.end()) == a.end());  // no index twice
        std::vector<std::size_t> count(4, 0);
        for (auto i : a) ++count[static_cast<std::size_t>(y[i])];
        for (auto c : count) CHECK(c == k);
        CHECK(a == ev::lowshot_draw(y, k, 3, 0));  // the same draw again
        if (k < 10) {
            CHECK(a != ev::lowshot_draw(y, k, 3, 1));  // another draw
            CHECK(a != ev::lowshot_draw(y, k, 4, 0));  // another seed
        }
    }
    // every image of a class can be drawn: over many draws of 1, all 10 of class 0 appear
    std::vector<int> seen(y.size(), 0);
    for (std::size_t d = 0; d < 200; ++d)
        for (auto i : ev::lowshot_draw(y, 1, 0, d)) seen[i] = 1;
    std::size_t class0 = 0;
    for (std::size_t i = 0; i < y.size(); ++i) class0 += y[i] == 0 && seen[i];
    CHECK(class0 == 10);
}

TEST_CASE("lowshot_draw: k larger than the smallest class, k = 0 and bad labels are refused") {
    const auto y = uneven_labels(3);  // class 0 has 10 images
    CHECK_THROWS_WITH_AS(ev::lowshot_draw(y, 11, 0, 0),
                         doctest::Contains("k = 11 images per class, but class 0 has only 10 labelled images; use k <= 10"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::lowshot_draw(y, 0, 0, 0), doctest::Contains("k must be >= 1"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::lowshot_draw(std::vector<std::int64_t>{}, 1, 0, 0), doctest::Contains("no labelled images"),
                         ssl::shape_error);
    CHECK_THROWS_WITH_AS(ev::lowshot_draw(std::vector<std::int64_t>{0, 1, -4}, 1, 0, 0),
                         doctest::Contains("label -4 at index 2 is negative"), ssl::value_error);
}

TEST_CASE("lowshot_evaluate: separable classes reach 100 % from one image per class, with the SVM and the probe") {
    tensor<float> x, xt;
    std::vector<std::int64_t> y, yt;
    separable(4, 20, 1, x, y);
    separable(4, 10, 2, xt, yt);
    for (auto clf : {ev::lowshot_classifier::svm, ev::lowshot_classifier::probe}) {
        const auto r = ev::lowshot_evaluate(x, y, xt, yt, {.shots = {1, 4, 16}, .draws = 3, .classifier = clf});
        REQUIRE(r.rows.size() == 3);
        for (const auto& row : r.rows) {
            CAPTURE(row.shots);
            CHECK(row.top1.size() == 3);
            CHECK(row.mean == 1.0);
            CHECK(row.std == 0.0);
        }
    }
    CHECK_THROWS_WITH_AS(ev::lowshot_evaluate(x, y, xt, yt, {.shots = {21}}),
                         doctest::Contains("k = 21 images per class, but class 0 has only 20"), ssl::value_error);
    auto bad = x.clone();
    bad.at(0, 0) = std::nanf("");
    CHECK_THROWS_WITH_AS(ev::lowshot_evaluate(bad, y, xt, yt, {.shots = {20}, .draws = 1}),
                         doctest::Contains("(0, 0) is nan"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::lowshot_evaluate(tensor<float>({0, 4}), std::vector<std::int64_t>{}, xt, yt),
                         doctest::Contains("empty train features"), ssl::shape_error);
}

TEST_CASE("lowshot: mean and sample standard deviation") {
    const std::vector<double> v{0.5, 0.7, 0.9};
    const auto [m, s] = ev::mean_std(v);
    CHECK(m == doctest::Approx(0.7));
    CHECK(s == doctest::Approx(0.2));  // sqrt((0.04 + 0 + 0.04) / 2)
    CHECK(ev::mean_std(std::vector<double>{0.3}).second == 0.0);
}

}  // namespace test_lowshot
