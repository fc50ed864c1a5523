#include <doctest/doctest.h>

#include <ssl/backbone/convnet.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

namespace test_convnet {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;

static_assert(ssl::layer<ssl::convnet<float>>);
static_assert(ssl::layer<ssl::convnet_ln<float>>);

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

TEST_CASE("convnet_ln: layer norm in place of batch norm; a sample's features do not depend on the batch") {
    ssl::convnet_ln<float> net({.in_channels = 1, .width = 4, .seed = 2});
    std::vector<std::string> params, buffers;
    net.for_each_parameter([&](const std::string& n, auto&) { params.push_back(n); }, "");
    net.for_each_buffer([&](const std::string& n, auto&) { buffers.push_back(n); }, "");
    CHECK(params.size() == 20);  // the convnet's names: conv and norm weight / bias
    CHECK(params[2] == "features.1.weight");
    CHECK(buffers.empty());      // no running statistics
    CHECK(std::string(net.name()) == "convnet_ln");
    // in training mode too, a sample's output is the same alone or in a batch
    // (batch norm would mix the batch's statistics in)
    const auto x = ref::random<float>({5, 1, 8, 8}, 4);
    const auto all = net.forward(x).out;
    const auto one = net.forward(x.slice(3, 4)).out;
    for (std::size_t k = 0; k < 16; ++k) CHECK(one[k] == doctest::Approx(all.at(3, k)).epsilon(1e-5));
    ssl::convnet<float> bn({.in_channels = 1, .width = 4, .seed = 2});
    const auto ball = bn.forward(x).out, bone = bn.forward(x.slice(0, 2)).out;
    double d = 0;
    for (std::size_t k = 0; k < 16; ++k) d = std::max(d, double(std::abs(bone[k] - ball[k])));
    CHECK(d > 1e-4);
    CHECK_THROWS_WITH_AS(net.forward(ref::random<float>({3, 1, 4, 4}, 1)),
                         doctest::Contains("convnet_ln: images must be at least 8x8"), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("convnet_ln gradcheck") {
        ssl::convnet_ln<double> net({.in_channels = 2, .width = 2, .seed = 1});
        auto r = ssl::testing::gradcheck(net, ref::random<double>({2, 2, 8, 8}, 3), {.max_checks_per_tensor = 6});
        CHECK_MESSAGE(r.ok, r.str());
    }

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
