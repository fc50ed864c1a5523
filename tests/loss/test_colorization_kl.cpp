#include <doctest/doctest.h>

#include <cmath>

#include <ssl/loss/colorization.hpp>

#include "nn/reference.hpp"

namespace test_colorization_kl {

using ssl::tensor;
using ssl::loss::colorization_kl;

/// Random targets: histograms (some bins exactly 0) and weights in [0, 1].
tensor<double> targets(std::size_t rows, std::size_t B, std::uint64_t seed) {
    auto t = ref::random<double>({rows, 2 * B + 1}, seed, 0.0, 1.0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t part = 0; part < 2; ++part) {
            double s = 0;
            for (std::size_t k = 0; k < B; ++k) {
                double& v = t[r * (2 * B + 1) + part * B + k];
                if (v < 0.3) v = 0;
                s += v;
            }
            if (s == 0) t[r * (2 * B + 1) + part * B] = s = 1;
            for (std::size_t k = 0; k < B; ++k) t[r * (2 * B + 1) + part * B + k] /= s;
        }
    return t;
}

double reference(const tensor<double>& z, const tensor<double>& y, std::size_t B, double lambda) {
    const std::size_t R = z.dim(0);
    double L = 0;
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t part = 0; part < 2; ++part) {
            double s = 0;
            for (std::size_t k = 0; k < B; ++k) s += std::exp(z[r * 2 * B + part * B + k]);
            double kl = 0;
            for (std::size_t k = 0; k < B; ++k) {
                const double yk = y[r * (2 * B + 1) + part * B + k];
                const double q = std::exp(z[r * 2 * B + part * B + k]) / s;
                if (yk > 0) kl += yk * std::log(yk / q);
            }
            L += (part == 0 ? lambda * y[r * (2 * B + 1) + 2 * B] : 1.0) * kl;
        }
    return L / double(R);
}

TEST_CASE("colorization_kl: value is the chroma KL plus the chroma-weighted hue KL; 0 at a perfect prediction") {
    colorization_kl loss({4, 5.0});
    const auto y = targets(7, 4, 1);
    const auto z = ref::random<double>({7, 8}, 2, -3.0, 3.0);
    auto r = loss(z, y);
    CHECK(r.value == doctest::Approx(reference(z, y, 4, 5.0)).epsilon(1e-12));
    REQUIRE(r.metrics.size() == 4);
    CHECK(r.metrics[0].first == "hue_kl");
    // logits = log y (+ any constant per part) predict y exactly: KL 0, gradient 0
    const auto yp = targets(3, 4, 5);
    tensor<double> zp({3, 8});
    for (std::size_t row = 0; row < 3; ++row)
        for (std::size_t k = 0; k < 8; ++k) zp[row * 8 + k] = std::log(std::max(yp[row * 9 + k], 1e-300)) + 0.7;
    auto p = loss(zp, yp);
    CHECK(std::abs(p.value) < 1e-12);
    for (auto g : p.grads[0]) CHECK(std::abs(g) < 1e-12);
    CHECK(p.metrics[2].second == 100.0);  // hue_top1
}

TEST_CASE("colorization_kl: a window without chroma (w = 0) leaves the hue logits without gradient") {
    colorization_kl loss({3, 5.0});
    auto y = targets(2, 3, 3);
    y[0 * 7 + 6] = 0.0;
    const auto z = ref::random<double>({2, 6}, 4);
    auto r = loss(z, y);
    for (std::size_t k = 0; k < 3; ++k) CHECK(r.grads[0][k] == 0.0);  // row 0, hue
    bool chroma_moves = false;
    for (std::size_t k = 3; k < 6; ++k) chroma_moves = chroma_moves || r.grads[0][k] != 0.0;
    CHECK(chroma_moves);
}

TEST_CASE("colorization_kl: bad shapes and configs refused; compute needs soft targets") {
    colorization_kl loss({4, 5.0});
    CHECK_THROWS_AS(loss(tensor<float>({3, 7}), tensor<float>({3, 9})), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>({3, 8}), tensor<float>({3, 8})), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>({3, 8}), tensor<float>({2, 9})), ssl::shape_error);
    CHECK_THROWS_AS(colorization_kl({1, 5.0}), ssl::value_error);
    CHECK_THROWS_AS(colorization_kl({4, -1.0}), ssl::value_error);
    ssl::view_batch<float> vb;
    vb.views.push_back(tensor<float>({2, 1, 4, 4}));
    CHECK_THROWS_AS(loss.compute({tensor<float>::zeros({2, 8})}, {}, vb), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("colorization_kl gradient against central differences (double)") {
        for (double lambda : {5.0, 0.0, 1.3}) {
            colorization_kl loss({5, lambda});
            const auto y = targets(6, 5, 7);
            auto z = ref::random<double>({6, 10}, 8, -2.0, 2.0);
            const auto g = loss(z, y).grads[0];
            double worst = 0;
            for (std::size_t i = 0; i < z.numel(); ++i) {
                const double v = z[i], eps = 1e-6;
                z[i] = v + eps;
                const double lp = loss(z, y).value;
                z[i] = v - eps;
                const double lm = loss(z, y).value;
                z[i] = v;
                worst = std::max(worst, std::abs((lp - lm) / (2 * eps) - g[i]));
            }
            CAPTURE(lambda);
            CHECK(worst < 1e-8);
        }
    }
}

}  // namespace test_colorization_kl
