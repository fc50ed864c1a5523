#include <doctest/doctest.h>

#include <ssl/nn/activation.hpp>
#include <ssl/nn/batch_norm.hpp>
#include <ssl/nn/conv2d.hpp>
#include <ssl/nn/flatten.hpp>
#include <ssl/nn/linear.hpp>
#include <ssl/nn/pool.hpp>
#include <ssl/nn/sequential.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_sequential {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using namespace ssl::nn;

template <class T>
using small_net = sequential<conv2d<T>, batch_norm2d<T>, relu<T>, max_pool2d<T>, flatten<T>, linear<T>>;

template <class T>
small_net<T> make_small() {
    return small_net<T>(conv2d<T>({2, 3, 3, 1, 1, true}, 1), batch_norm2d<T>({3}), relu<T>{},
                        max_pool2d<T>({2, 2, 0}), flatten<T>{}, linear<T>({3 * 2 * 2, 5}, 2));
}

static_assert(ssl::layer<small_net<float>>, "sequential models the layer concept");

TEST_CASE("sequential: forward equals chaining the layers by hand; names by position") {
    auto net = make_small<double>();
    auto x = ref::random<double>({3, 2, 4, 4}, 7);
    auto y = net.forward(x).out;
    auto a = net.get<0>().forward(x).out;
    a = net.get<1>().forward(a).out;
    a = net.get<2>().forward(a).out;
    a = net.get<3>().forward(a).out;
    a = net.get<4>().forward(a).out;
    a = net.get<5>().forward(a).out;
    CHECK(ref::max_abs_diff(a, y) < 1e-12);
    std::vector<std::string> names;
    net.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "head");
    CHECK(names == std::vector<std::string>{"head.0.weight", "head.0.bias", "head.1.weight", "head.1.bias",
                                            "head.5.weight", "head.5.bias"});
    net.train(false);
    CHECK_FALSE(net.get<1>().training());
}

TEST_SUITE("gradcheck") {
    TEST_CASE("sequential gradcheck, train and eval") {
        auto net = make_small<double>();
        for (bool train : {true, false}) {
            net.train(train);
            auto rep = ssl::testing::gradcheck(net, ref::random<double>({3, 2, 4, 4}, 8));
            CHECK_MESSAGE(rep.ok, rep.str());
        }
    }
}

}  // namespace test_sequential
