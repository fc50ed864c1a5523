#include <doctest/doctest.h>

#include <cmath>

#include <ssl/nn/layer_norm.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_layer_norm {

using ssl::tensor;
using ssl::nn::layer_norm;

TEST_CASE("layer_norm: per sample over (C, H, W): mean 0, variance 1 / (1 + eps / var); affine per channel") {
    layer_norm<double> ln({3});
    ln.weight().value.assign(ref::random<double>({3}, 5, 0.5, 2.0));
    ln.bias().value.assign(ref::random<double>({3}, 6));
    auto x = ref::random<double>({4, 3, 5, 2}, 1, -3.0, 7.0);
    auto y = ln.forward(x).out;
    for (std::size_t n = 0; n < 4; ++n) {
        double m = 0, v = 0;
        for (std::size_t i = 0; i < 30; ++i) m += x[n * 30 + i];
        m /= 30;
        for (std::size_t i = 0; i < 30; ++i) v += (x[n * 30 + i] - m) * (x[n * 30 + i] - m);
        v /= 30;
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t i = 0; i < 10; ++i) {
                const std::size_t k = n * 30 + c * 10 + i;
                const double expect = (x[k] - m) / std::sqrt(v + 1e-5) * ln.weight().value[c] + ln.bias().value[c];
                CHECK(y[k] == doctest::Approx(expect).epsilon(1e-12));
            }
    }
}

TEST_CASE("layer_norm: a sample's output does not depend on the batch; train and eval agree") {
    layer_norm<float> ln({4});
    auto x = ref::random<float>({5, 4, 3, 3}, 2, -1.0, 4.0);
    auto all = ln.forward(x).out;
    auto one = ln.forward(x.slice(2, 3)).out;
    for (std::size_t i = 0; i < one.numel(); ++i) CHECK(one[i] == all[2 * 36 + i]);
    ln.train(false);
    CHECK(ref::max_abs_diff(ln.forward(x).out, all) == 0.0);
}

TEST_CASE("layer_norm: (N, C) rows, non-affine, float far from zero") {
    layer_norm<float> ln({6, 1e-5, false});
    auto x = ref::random<float>({3, 6}, 3, 1000.0 - 2.0, 1000.0 + 2.0);
    auto y = ln.forward(x).out;
    for (std::size_t n = 0; n < 3; ++n) {
        double m = 0, v = 0;
        for (std::size_t c = 0; c < 6; ++c) m += x[n * 6 + c];
        m /= 6;
        for (std::size_t c = 0; c < 6; ++c) v += (x[n * 6 + c] - m) * (x[n * 6 + c] - m);
        v /= 6;
        for (std::size_t c = 0; c < 6; ++c)
            CHECK(y[n * 6 + c] == doctest::Approx((x[n * 6 + c] - m) / std::sqrt(v + 1e-5)).epsilon(1e-4));
    }
    std::size_t params = 0;
    ln.for_each_parameter([&](const std::string&, auto&) { ++params; }, "");
    CHECK(params == 0);
}

TEST_CASE("layer_norm: bad configuration and input; parameter names") {
    CHECK_THROWS_AS(layer_norm<float>({0}), ssl::value_error);
    CHECK_THROWS_AS(layer_norm<float>({3, 0.0}), ssl::value_error);
    layer_norm<float> ln({3});
    CHECK_THROWS_AS(ln.forward(tensor<float>({2, 4, 2, 2})), ssl::shape_error);
    CHECK_THROWS_AS(ln.forward(tensor<float>({2, 3, 2})), ssl::shape_error);
    auto r = ln.forward(tensor<float>::zeros({2, 3, 2, 2}));
    for (auto v : r.out) CHECK(v == 0.0f);  // constant input: 0 / sqrt(eps), no NaN
    CHECK_THROWS_AS(ln.backward(r.cache, tensor<float>({2, 3, 2, 1})), ssl::shape_error);
    std::vector<std::string> names;
    ln.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "encoder.ln1");
    CHECK(names == std::vector<std::string>{"encoder.ln1.weight", "encoder.ln1.bias"});
}

TEST_SUITE("gradcheck") {
    TEST_CASE("layer_norm gradcheck: (N, C, H, W) and (N, C), affine and not") {
        for (bool affine : {true, false}) {
            CAPTURE(affine);
            layer_norm<double> ln({3, 1e-5, affine});
            if (affine) {
                ln.weight().value.assign(ref::random<double>({3}, 5, 0.5, 2.0));
                ln.bias().value.assign(ref::random<double>({3}, 6));
            }
            auto r4 = ssl::testing::gradcheck(ln, ref::random<double>({3, 3, 2, 3}, 8));
            CHECK_MESSAGE(r4.ok, r4.str());
            auto r2 = ssl::testing::gradcheck(ln, ref::random<double>({4, 3}, 9));
            CHECK_MESSAGE(r2.ok, r2.str());
        }
    }
}

}  // namespace test_layer_norm
