#include <doctest/doctest.h>

#include <ssl/nn/pool.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_pool {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;
using namespace ssl::nn;

TEST_CASE("max_pool2d: values, padding, argmax routing") {
    auto x = tensor<float>::from({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
    max_pool2d<float> p({2, 2, 0});
    auto [y, c] = p.forward(x);
    CHECK(y.shape() == shape_t{1, 1, 2, 2});
    CHECK(y[0] == 6.0f);
    CHECK(y[3] == 16.0f);
    auto dx = p.backward(c, tensor<float>::from({1, 1, 2, 2}, {1, 2, 3, 4}));
    CHECK(dx.at(0, 0, 1, 1) == 1.0f);
    CHECK(dx.at(0, 0, 3, 3) == 4.0f);
    CHECK(dx.at(0, 0, 0, 0) == 0.0f);
    // torchvision's stem pool: kernel 3, stride 2, padding 1: 4x4 -> 2x2
    max_pool2d<float> stem({3, 2, 1});
    auto ys = stem.forward(x).out;
    CHECK(ys.shape() == shape_t{1, 1, 2, 2});
    CHECK(ys[0] == 6.0f);   // window rows -1..1, cols -1..1
    CHECK(ys[3] == 16.0f);
    CHECK_THROWS_AS(max_pool2d<float>({2, 2, 2}).forward(x), ssl::value_error);
    CHECK_THROWS_AS(p.forward(tensor<float>({1, 4, 4})), ssl::shape_error);
}

TEST_CASE("avg_pool2d: count_include_pad like PyTorch") {
    auto x = tensor<float>::from({1, 1, 2, 2}, {1, 2, 3, 4});
    avg_pool2d<float> p({2, 1, 1});  // kernel 2, stride 1, pad 1 -> 3x3
    auto y = p.forward(x).out;
    CHECK(y.shape() == shape_t{1, 1, 3, 3});
    CHECK(y.at(0, 0, 0, 0) == doctest::Approx(1.0 / 4));
    CHECK(y.at(0, 0, 1, 1) == doctest::Approx(10.0 / 4));
    CHECK(y.at(0, 0, 2, 1) == doctest::Approx(7.0 / 4));
}

TEST_CASE("global_avg_pool2d: mean over H, W") {
    auto x = tensor<float>::from({1, 2, 1, 3}, {1, 2, 3, 10, 20, 30});
    global_avg_pool2d<float> g;
    auto [y, c] = g.forward(x);
    CHECK(y.shape() == shape_t{1, 2});
    CHECK(y[0] == doctest::Approx(2.0));
    CHECK(y[1] == doctest::Approx(20.0));
    auto dx = g.backward(c, tensor<float>::from({1, 2}, {3, 6}));
    CHECK(dx[0] == doctest::Approx(1.0));
    CHECK(dx[5] == doctest::Approx(2.0));
    CHECK_THROWS_AS(g.backward(c, tensor<float>({2, 2})), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("pooling gradchecks") {
        auto x = ref::random<double>({2, 3, 5, 5}, 4);
        max_pool2d<double> m1({2, 2, 0}), m2({3, 2, 1});
        avg_pool2d<double> a1({2, 2, 0}), a2({3, 1, 1});
        global_avg_pool2d<double> g;
        for (auto* rep : {new ssl::testing::gradcheck_report(ssl::testing::gradcheck(m1, x)),
                          new ssl::testing::gradcheck_report(ssl::testing::gradcheck(m2, x)),
                          new ssl::testing::gradcheck_report(ssl::testing::gradcheck(a1, x)),
                          new ssl::testing::gradcheck_report(ssl::testing::gradcheck(a2, x)),
                          new ssl::testing::gradcheck_report(ssl::testing::gradcheck(g, x))}) {
            CHECK_MESSAGE(rep->ok, rep->str());
            CHECK(rep->checked == x.numel());
            delete rep;
        }
    }
}

}  // namespace test_pool
