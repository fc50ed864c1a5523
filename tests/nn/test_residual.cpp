#include <doctest/doctest.h>

#include <ssl/nn/residual.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_residual {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;
using namespace ssl::nn;

TEST_CASE("residual blocks: shapes and torchvision names") {
    basic_block<float> same({4, 4, 1}), down({4, 8, 2});
    CHECK(same.forward(ref::random<float>({2, 4, 6, 6}, 1)).out.shape() == shape_t{2, 4, 6, 6});
    CHECK(down.forward(ref::random<float>({2, 4, 6, 6}, 1)).out.shape() == shape_t{2, 8, 3, 3});
    std::vector<std::string> names;
    down.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "layer2.0");
    CHECK(names == std::vector<std::string>{"layer2.0.conv1.weight", "layer2.0.bn1.weight", "layer2.0.bn1.bias",
                                            "layer2.0.conv2.weight", "layer2.0.bn2.weight", "layer2.0.bn2.bias",
                                            "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight",
                                            "layer2.0.downsample.1.bias"});
    bottleneck_block<float> b({8, 2, 2});
    CHECK(b.forward(ref::random<float>({2, 8, 5, 5}, 1)).out.shape() == shape_t{2, 8, 3, 3});
    CHECK(b.out_channels() == 8);
    bool has_conv3 = false;
    b.for_each_parameter([&](const std::string& n, auto&) { has_conv3 |= n == "conv3.weight"; }, "");
    CHECK(has_conv3);
    CHECK_THROWS_AS(same.forward(ref::random<float>({2, 3, 6, 6}, 1)), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("basic block gradcheck (identity and downsample shortcut), train and eval") {
        basic_block<double> same({3, 3, 1}, 4), down({3, 4, 2}, 5);
        for (bool train : {true, false}) {
            CAPTURE(train);
            same.train(train);
            down.train(train);
            auto r1 = ssl::testing::gradcheck(same, ref::random<double>({2, 3, 4, 4}, 1));
            CHECK_MESSAGE(r1.ok, r1.str());
            auto r2 = ssl::testing::gradcheck(down, ref::random<double>({2, 3, 5, 5}, 2));
            CHECK_MESSAGE(r2.ok, r2.str());
        }
    }
    TEST_CASE("bottleneck block gradcheck, train and eval") {
        bottleneck_block<double> same({8, 2, 1}, 6), down({4, 2, 2}, 7);
        for (bool train : {true, false}) {
            CAPTURE(train);
            same.train(train);
            down.train(train);
            auto r1 = ssl::testing::gradcheck(same, ref::random<double>({2, 8, 3, 3}, 3), {.max_checks_per_tensor = 40});
            CHECK_MESSAGE(r1.ok, r1.str());
            auto r2 = ssl::testing::gradcheck(down, ref::random<double>({2, 4, 4, 4}, 4), {.max_checks_per_tensor = 40});
            CHECK_MESSAGE(r2.ok, r2.str());
        }
    }
}

}  // namespace test_residual
