#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>

#include <cmath>

namespace test_synthetic {  // each file in its own namespace: an area builds as one unity translation unit

TEST_CASE("synthetic: deterministic, labelled, class-dependent") {
    ssl::data::synthetic a({.size = 40, .classes = 4, .channels = 2, .height = 12, .width = 10, .seed = 3});
    ssl::data::synthetic b({.size = 40, .classes = 4, .channels = 2, .height = 12, .width = 10, .seed = 3});
    auto x = a.images(0, 8), y = b.images(0, 8);
    CHECK(x.shape() == ssl::shape_t{8, 2, 12, 10});
    for (std::size_t i = 0; i < x.numel(); ++i) REQUIRE(x[i] == y[i]);
    auto one = a.images(5, 6);
    for (std::size_t i = 0; i < one.numel(); ++i) REQUIRE(one[i] == x[5 * 240 + i]);
    CHECK(a.labels(0, 6) == std::vector<std::int64_t>{0, 1, 2, 3, 0, 1});
    double mx = 0;
    for (float v : x) mx = std::max(mx, double(std::abs(v)));
    CHECK(mx < 3.0);
    CHECK(mx > 0.5);
    ssl::data::synthetic c({.size = 40, .classes = 4, .channels = 2, .height = 12, .width = 10, .seed = 4});
    CHECK(c.images(0, 1)[0] != x[0]);
    CHECK_THROWS_AS(a.images(30, 41), ssl::value_error);
    CHECK_THROWS_AS(ssl::data::synthetic({.size = 0}), ssl::value_error);
}

}  // namespace test_synthetic
