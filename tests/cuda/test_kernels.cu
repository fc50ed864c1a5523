// CUDA backend, nvcc-compiled part: ssl's own kernels (relu forward and
// backward, scale_add) against the host layers / a host loop.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <ssl/backend/cuda/ops.hpp>
#include <ssl/nn/activation.hpp>
#include <vector>

#include "gpu_test.hpp"

namespace {

template <class T>
ssl::tensor<T> host_values(ssl::shape_t s, unsigned seed) {
    auto v = ssl_test::uniform<T>(s.numel(), -1.0, 1.0, seed);
    // Exact zeros, a negative zero and a NaN: the edges of relu.
    if (v.size() > 4) {
        v[0] = T(0);
        v[1] = -T(0);
        v[2] = std::numeric_limits<T>::quiet_NaN();
        v[3] = T(0);
    }
    return ssl::tensor<T>::from(s, std::span<const T>(v));
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

template <class T>
void check_relu(ssl::shape_t s) {
    CAPTURE(s);
    auto x = host_values<T>(s, 31);
    auto dy = host_values<T>(s, 32);
    ssl::nn::relu<T> layer;
    auto [y_host, cache] = layer.forward(x);
    auto dx_host = layer.backward(cache, dy);

    auto y = ssl::ops::relu(ssl::to_device(x));
    auto dx = ssl::ops::relu_backward(y, ssl::to_device(dy));
    auto yh = ssl::to_host(y), dxh = ssl::to_host(dx);
    REQUIRE(yh.shape() == s);
    REQUIRE(dxh.shape() == s);
    // Exact: the same comparison on both sides (NaN -> 0, -0 -> +0).
    std::size_t y_diff = 0, dx_diff = 0;
    for (std::size_t i = 0; i < yh.numel(); ++i) {
        y_diff += !same_bits(yh[i], y_host[i]);
        dx_diff += !same_bits(dxh[i], dx_host[i]);
    }
    CHECK(y_diff == 0);
    CHECK(dx_diff == 0);
}

template <class T>
void check_scale_add(std::size_t n, T a, double tol) {
    CAPTURE(n);
    auto xv = ssl_test::uniform<T>(n, -2.0, 2.0, 41), yv = ssl_test::uniform<T>(n, -2.0, 2.0, 42);
    auto x = ssl::to_device(ssl::tensor<T>::from({n}, std::span<const T>(xv)));
    auto y = ssl::to_device(ssl::tensor<T>::from({n}, std::span<const T>(yv)));
    auto y_alias = y;  // shares storage: sees the update
    ssl::ops::scale_add(a, x, y);
    auto got = ssl::to_host(y_alias);
    std::vector<double> want(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = double(a) * double(xv[i]) + double(yv[i]);
    CHECK(ssl_test::max_rel_error(got, want, n) < tol);
    auto xh = ssl::to_host(x);  // the input is untouched
    CHECK(std::equal(xh.begin(), xh.end(), xv.begin()));
}

}  // namespace

// Sizes: tiny, not a multiple of the block, and more elements than one
// grid-stride pass covers (the grid is capped at 4 blocks per SM).
GPU_TEST_CASE("relu forward and backward match the host layer bit for bit (float)") {
    for (ssl::shape_t s : {ssl::shape_t{5}, ssl::shape_t{3, 7, 11, 13}, ssl::shape_t{8, 64, 56, 56}})
        check_relu<float>(s);
}
GPU_TEST_CASE("relu forward and backward match the host layer bit for bit (double)") {
    check_relu<double>({2, 3, 33, 35});
}

GPU_TEST_CASE("scale_add: y = a x + y within a few ulps of a double host loop") {
    for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{3'000'001}})
        check_scale_add<float>(n, 0.75f, 1e-6);
    check_scale_add<double>(100'003, -1.25, 1e-15);
}

GPU_TEST_CASE("scale_add with x and y the same tensor doubles it") {
    auto y = ssl::cuda_tensor<float>::full({257}, 1.5f);
    ssl::ops::scale_add(1.0f, y, y);
    auto h = ssl::to_host(y);
    CHECK(std::all_of(h.begin(), h.end(), [](float v) { return v == 3.0f; }));
}

GPU_TEST_CASE("kernel ops check shapes and storage") {
    ssl::cuda_tensor<float> a({4, 3}), b({3, 4}), none;
    CHECK_THROWS_AS(ssl::ops::scale_add(1.0f, a, b), ssl::shape_error);
    CHECK_THROWS_AS((void)ssl::ops::relu_backward(a, b), ssl::shape_error);
    CHECK_THROWS_AS((void)ssl::ops::relu(none), ssl::value_error);
    // Empty tensors launch nothing.
    ssl::cuda_tensor<float> e({0, 5});
    CHECK(ssl::ops::relu(e).shape() == ssl::shape_t{0, 5});
}
