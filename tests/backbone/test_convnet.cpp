#include <doctest/doctest.h>

#include <ssl/backbone/convnet.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

namespace test_convnet {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;

static_assert(ssl::layer<ssl::convnet<float>>);

TEST_CASE("convnet: shapes, names, bad input") {
    ssl::convnet<float> net({.in_channels = 1, .width = 8});
    auto y = net.forward(ref::random<float>({3, 1, 28, 28}, 1)).out;
    CHECK(y.shape() == shape_t{3, 32});
    CHECK(net.feature_dim() == 32);
    std::vector<std::string> names;
    net.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "");
    CHECK(names.front() == "features.0.weight");
    CHECK(names.back() == "features.15.bias");
    CHECK(names.size() == 20);
    CHECK_THROWS_AS(net.forward(ref::random<float>({3, 3, 28, 28}, 1)), ssl::shape_error);
    CHECK_THROWS_AS(net.forward(ref::random<float>({3, 1, 4, 4}, 1)), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("convnet gradcheck, train and eval") {
        ssl::convnet<double> net({.in_channels = 2, .width = 2});
        for (bool train : {true, false}) {
            net.train(train);
            auto r = ssl::testing::gradcheck(net, ref::random<double>({2, 2, 9, 9}, 3), {.max_checks_per_tensor = 6});
            CHECK_MESSAGE(r.ok, r.str());
        }
    }
}

}  // namespace test_convnet
