#include <doctest/doctest.h>

#include <ssl/nn/conv2d.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_conv2d {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::nn::conv2d;
using ssl::nn::conv2d_config;

namespace {
struct conv_case {
    std::size_t n, c, h, w, co, k, stride, pad;
    bool bias;
};
const conv_case cases[] = {
    {2, 3, 7, 7, 4, 3, 1, 1, true},  {3, 2, 8, 6, 5, 3, 2, 1, false}, {2, 4, 5, 5, 3, 1, 1, 0, true},
    {2, 4, 6, 6, 6, 1, 2, 0, false}, {1, 1, 9, 9, 2, 7, 2, 3, false}, {5, 2, 4, 4, 3, 3, 1, 0, true},
    {40, 2, 3, 3, 3, 3, 1, 1, true},  // many images per GEMM group
    {3, 8, 9, 7, 5, 3, 1, 1, true},   // >= 8 input channels, 3x3/1/1: the Winograd path
    {2, 12, 4, 4, 9, 3, 1, 1, false}, // Winograd with a tile that overhangs the image
};
}  // namespace

TEST_CASE("conv2d: forward matches the naive reference") {
    for (const auto& k : cases) {
        CAPTURE(k.k);
        CAPTURE(k.stride);
        CAPTURE(k.pad);
        conv2d<float> layer(conv2d_config{k.c, k.co, k.k, k.stride, k.pad, k.bias}, 3);
        auto x = ref::random<float>({k.n, k.c, k.h, k.w}, 11);
        auto y = layer.forward(x).out;
        auto expect = ref::conv2d(x, layer.weight().value, k.bias ? &layer.bias().value : nullptr, k.stride, k.pad);
        REQUIRE(y.shape() == expect.shape());
        CHECK(ref::max_abs_diff(y, expect) < 1e-5);
    }
}

TEST_CASE("conv2d: PyTorch default initialization bounds") {
    conv2d<float> layer(conv2d_config{8, 16, 3, 1, 1, true}, 0);
    const double bound = 1.0 / std::sqrt(8.0 * 9.0);
    double mx = 0;
    for (float v : layer.weight().value) mx = std::max(mx, double(std::abs(v)));
    CHECK(mx <= bound);
    CHECK(mx > 0.9 * bound);  // 1152 draws fill the interval
    conv2d<float> same(conv2d_config{8, 16, 3, 1, 1, true}, 0), other(conv2d_config{8, 16, 3, 1, 1, true}, 1);
    CHECK(ref::max_abs_diff(same.weight().value, layer.weight().value) == 0.0);
    CHECK(ref::max_abs_diff(other.weight().value, layer.weight().value) > 0.0);
}

TEST_CASE("conv2d: bad input names the shapes") {
    conv2d<float> layer(conv2d_config{3, 4, 3, 1, 0, true});
    try {
        layer.forward(tensor<float>({2, 5, 8, 8}));
        FAIL("wrong channel count must throw");
    } catch (const ssl::shape_error& e) {
        const std::string m = e.what();
        CHECK(m.find("5 channels") != std::string::npos);
        CHECK(m.find("(2, 5, 8, 8)") != std::string::npos);
    }
    CHECK_THROWS_AS(layer.forward(tensor<float>({2, 3, 8})), ssl::shape_error);
    CHECK_THROWS_AS(layer.forward(tensor<float>({2, 3, 2, 2})), ssl::shape_error);
    auto r = layer.forward(tensor<float>::zeros({2, 3, 8, 8}));
    CHECK_THROWS_AS(layer.backward(r.cache, tensor<float>({2, 4, 5, 5})), ssl::shape_error);
    CHECK_THROWS_AS(conv2d<float>(conv2d_config{0, 4, 3, 1, 0, true}), ssl::value_error);
    CHECK_THROWS_AS(conv2d<float>(conv2d_config{3, 4, 3, 0, 0, true}), ssl::value_error);
}

TEST_CASE("conv2d: two forwards keep separate caches; gradients accumulate") {
    conv2d<double> layer(conv2d_config{2, 3, 3, 1, 1, true}, 5);
    auto x1 = ref::random<double>({2, 2, 5, 5}, 1), x2 = ref::random<double>({3, 2, 8, 8}, 2);
    auto a = layer.forward(x1);
    auto b = layer.forward(x2);  // different size: must not clobber a's cache
    auto dy1 = ref::random<double>(a.out.shape(), 3), dy2 = ref::random<double>(b.out.shape(), 4);
    ssl::zero_grad(layer);
    layer.backward(a.cache, dy1);
    auto g1 = layer.weight().grad.clone();
    layer.backward(b.cache, dy2);
    auto g12 = layer.weight().grad.clone();
    ssl::zero_grad(layer);
    layer.backward(b.cache, dy2);
    for (std::size_t i = 0; i < g1.numel(); ++i) CHECK(g12[i] == doctest::Approx(g1[i] + layer.weight().grad[i]));
    // skipping the input gradient returns an empty tensor but still fills dW
    ssl::zero_grad(layer);
    auto dx = layer.backward(a.cache, dy1, false);
    CHECK_FALSE(dx.defined());
    CHECK(ref::max_abs_diff(layer.weight().grad, g1) < 1e-12);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("conv2d gradcheck: kernels, strides, padding, bias, grouping") {
        for (const auto& k : cases) {
            CAPTURE(k.k);
            CAPTURE(k.stride);
            CAPTURE(k.pad);
            CAPTURE(k.n);
            conv2d<double> layer(conv2d_config{k.c, k.co, k.k, k.stride, k.pad, k.bias}, 9);
            for (bool train : {true, false}) {
                layer.train(train);
                auto rep = ssl::testing::gradcheck(layer, ref::random<double>({k.n, k.c, k.h, k.w}, 21),
                                                   {.max_checks_per_tensor = 60});
                CHECK_MESSAGE(rep.ok, rep.str());
                CHECK(rep.checked > 0);
            }
        }
    }
    TEST_CASE("gradcheck harness catches a wrong gradient") {
        // A layer whose backward is off by a factor must fail the check.
        struct broken : conv2d<double> {
            using conv2d<double>::conv2d;
            tensor<double> backward(const cache_type& c, const tensor<double>& dy) {
                auto dx = conv2d<double>::backward(c, dy);
                for (auto& v : dx) v *= 1.01;
                return dx;
            }
        };
        broken layer(conv2d_config{1, 2, 3, 1, 1, false}, 1);
        auto rep = ssl::testing::gradcheck(layer, ref::random<double>({1, 1, 4, 4}, 2));
        CHECK_FALSE(rep.ok);
        CHECK(rep.failed > 0);
    }
}

}  // namespace test_conv2d
