#include <doctest/doctest.h>

#include <ssl/nn/activation.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_activation {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;

TEST_CASE("relu: values and mask") {
    ssl::nn::relu<float> r;
    auto x = tensor<float>::from({1, 4}, {-1.0f, 0.0f, 2.0f, -0.5f});
    auto [y, c] = r.forward(x);
    CHECK(y[0] == 0.0f);
    CHECK(y[1] == 0.0f);
    CHECK(y[2] == 2.0f);
    auto dx = r.backward(c, tensor<float>::full({1, 4}, 3.0f));
    CHECK(dx[0] == 0.0f);
    CHECK(dx[2] == 3.0f);
    CHECK_THROWS_AS(r.backward(c, tensor<float>({4})), ssl::shape_error);
    // large tensors go through the parallel path
    auto big = ref::random<float>({70000}, 3);
    auto yb = r.forward(big).out;
    for (std::size_t i = 0; i < big.numel(); i += 997) CHECK(yb[i] == std::max(big[i], 0.0f));
}

TEST_SUITE("gradcheck") {
    TEST_CASE("relu gradcheck") {
        ssl::nn::relu<double> r;
        auto rep = ssl::testing::gradcheck(r, ref::random<double>({3, 2, 4, 4}, 1));
        CHECK_MESSAGE(rep.ok, rep.str());
        CHECK(rep.checked == 96);
    }
}

}  // namespace test_activation
