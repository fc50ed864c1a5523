#include <doctest/doctest.h>

#include <ssl/nn/flatten.hpp>
#include <ssl/nn/l2_normalize.hpp>
#include <ssl/nn/linear.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_linear {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;
using namespace ssl::nn;

TEST_CASE("linear: y = x W^T + b") {
    linear<double> l({3, 2});
    l.weight().value.assign(tensor<double>::from({2, 3}, {1, 2, 3, 4, 5, 6}));
    l.bias().value.assign(tensor<double>::from({2}, {0.5, -1}));
    auto y = l.forward(tensor<double>::from({1, 3}, {1, 0, -1})).out;
    CHECK(y[0] == doctest::Approx(1 - 3 + 0.5));
    CHECK(y[1] == doctest::Approx(4 - 6 - 1));
    CHECK_THROWS_AS(l.forward(tensor<double>({2, 4})), ssl::shape_error);
    linear<float> d({128, 10});
    const double bound = 1 / std::sqrt(128.0);
    for (float v : d.weight().value) CHECK(std::abs(v) <= bound);
}

TEST_CASE("flatten: zero-copy reshape") {
    flatten<float> f;
    auto x = ref::random<float>({2, 3, 2, 2}, 1);
    auto [y, c] = f.forward(x);
    CHECK(y.shape() == shape_t{2, 12});
    CHECK(y.shares_storage_with(x));
    CHECK(f.backward(c, y).shape() == x.shape());
}

TEST_CASE("l2_normalize: unit rows, zero rows stay finite") {
    l2_normalize<double> n;
    auto x = tensor<double>::from({2, 2}, {3, 4, 0, 0});
    auto y = n.forward(x).out;
    CHECK(y[0] == doctest::Approx(0.6));
    CHECK(y[1] == doctest::Approx(0.8));
    CHECK(y[2] == 0.0);
    CHECK(std::isfinite(y[3]));
    CHECK_THROWS_AS(n.forward(tensor<double>({2, 2, 2})), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("linear, flatten and l2_normalize gradchecks") {
        linear<double> l({5, 3});
        auto r1 = ssl::testing::gradcheck(l, ref::random<double>({4, 5}, 2));
        CHECK_MESSAGE(r1.ok, r1.str());
        linear<double> nb({5, 3, false});
        auto r2 = ssl::testing::gradcheck(nb, ref::random<double>({4, 5}, 3));
        CHECK_MESSAGE(r2.ok, r2.str());
        flatten<double> f;
        auto r3 = ssl::testing::gradcheck(f, ref::random<double>({2, 3, 2}, 4));
        CHECK_MESSAGE(r3.ok, r3.str());
        l2_normalize<double> n;
        auto r4 = ssl::testing::gradcheck(n, ref::random<double>({3, 6}, 5));
        CHECK_MESSAGE(r4.ok, r4.str());
    }
}

}  // namespace test_linear
