#include <doctest/doctest.h>

#include "augment/helpers.hpp"

#include <cmath>
#include <vector>

namespace test_blur {  // each file in its own namespace: an area builds as one unity translation unit

using namespace aug_test;

namespace {
std::vector<double> kernel(std::size_t k, double sigma) {
    std::vector<double> w(k);
    double s = 0;
    for (std::size_t i = 0; i < k; ++i) {
        const double x = double(i) - double(k / 2);
        w[i] = std::exp(-x * x / (2 * sigma * sigma));
        s += w[i];
    }
    for (auto& v : w) v /= s;
    return w;
}
double mean(const ssl::tensor<float>& t) {
    double s = 0;
    for (float v : t) s += v;
    return s / double(t.numel());
}
}  // namespace

TEST_CASE("gaussian_blur: the impulse response is the separable Gaussian kernel") {
    ssl::tensor<float> delta = ssl::tensor<float>::zeros({1, 15, 15});
    delta.at(0, 7, 7) = 1.0f;
    const aug::gaussian_blur op{.p = 1.0, .kernel_size = 5};
    const auto out = aug::apply_op(op, delta, {.active = true, .sigma = 1.3f});
    const auto w = kernel(5, 1.3);
    for (std::size_t y = 0; y < 15; ++y)
        for (std::size_t x = 0; x < 15; ++x) {
            const long dy = long(y) - 7, dx = long(x) - 7;
            const double expect = (std::abs(dy) <= 2 && std::abs(dx) <= 2) ? w[dy + 2] * w[dx + 2] : 0.0;
            REQUIRE(out.at(0, y, x) == doctest::Approx(expect).epsilon(1e-5));
        }
}

TEST_CASE("gaussian_blur: reflect padding at the border (edge pixel not repeated)") {
    // A 1-row image: only the horizontal pass matters, then the vertical
    // pass on one row reflects onto itself (weights sum to 1).
    auto row = ssl::tensor<float>::from({1, 1, 4}, {1.0f, 0.0f, 0.0f, 0.0f});
    const aug::gaussian_blur op{.p = 1.0, .kernel_size = 3};
    const auto out = aug::apply_op(op, row, {.active = true, .sigma = 1.0f});
    const auto w = kernel(3, 1.0);
    // out[0] = w0 * x[1] (reflected -1 -> 1) + w1 * x[0] + w2 * x[1]
    CHECK(out[0] == doctest::Approx(w[1]));
    CHECK(out[1] == doctest::Approx(w[0]));
    CHECK(out[2] == doctest::Approx(0.0));
    CHECK(out[3] == doctest::Approx(0.0));
}

TEST_CASE("gaussian_blur: constants stay constant, the mean is kept approximately, range [0, 1]") {
    const aug::gaussian_blur op{.p = 1.0};
    for (float v : {0.0f, 0.37f, 1.0f}) {
        const auto c = constant(3, 20, 17, v);
        const auto out = aug::apply_op(op, c, {.active = true, .sigma = 1.7f});
        for (float x : out) REQUIRE(x == doctest::Approx(v).epsilon(1e-6));
    }
    const auto img = image(3, 32, 32, 8);
    const auto out = aug::apply_op(aug::gaussian_blur{.p = 1.0, .kernel_size = 9}, img, {.active = true, .sigma = 2.0f});
    CHECK(out.shape() == img.shape());
    CHECK(in_unit_range(out, 1e-6));
    CHECK(std::abs(mean(out) - mean(img)) < 0.01);
    CHECK(max_abs_diff(out, img) > 0.05);  // it did blur
    // A kernel wider than the image reflects again and still keeps constants.
    const auto tiny = constant(1, 3, 2, 0.6f);
    const auto t = aug::apply_op(aug::gaussian_blur{.p = 1.0, .kernel_size = 11}, tiny, {.active = true, .sigma = 3.0f});
    for (float x : t) REQUIRE(x == doctest::Approx(0.6).epsilon(1e-6));
    // Not drawn active: the identity.
    CHECK(same(aug::apply_op(op, img, {.active = false, .sigma = 1.0f}), img));
}

TEST_CASE("gaussian_blur: kernel size ~10% of the image, sigma and p drawn in range") {
    const aug::gaussian_blur op{.p = 0.5, .sigma = {0.1, 2.0}};
    CHECK(op.kernel_for({3, 224, 224}) == 23);
    CHECK(op.kernel_for({3, 96, 128}) == 9);
    CHECK(op.kernel_for({1, 28, 28}) == 3);
    CHECK(aug::gaussian_blur{.kernel_size = 7}.kernel_for({3, 224, 224}) == 7);
    int active = 0;
    double lo = 10, hi = 0;
    for (std::uint64_t s = 0; s < 3000; ++s) {
        const auto q = aug::draw_params(op, {3, 32, 32}, 4, 1, s, 0);
        REQUIRE(q.sigma >= 0.1f);
        REQUIRE(q.sigma <= 2.0f);
        lo = std::min(lo, double(q.sigma));
        hi = std::max(hi, double(q.sigma));
        active += q.active;
    }
    CHECK(lo < 0.2);
    CHECK(hi > 1.9);
    CHECK(std::abs(active / 3000.0 - 0.5) < 0.03);
}

TEST_CASE("gaussian_blur: bad configs throw value_error naming the field") {
    CHECK_THROWS_WITH_AS((aug::gaussian_blur{.sigma = {0.0, 2.0}}.validate()),
                         "gaussian_blur: sigma range (0, 2) must be > 0", ssl::value_error);
    CHECK_THROWS_WITH_AS((aug::gaussian_blur{.sigma = {-1.0, 2.0}}.validate()),
                         "gaussian_blur: sigma range (-1, 2) must be > 0", ssl::value_error);
    CHECK_THROWS_AS((aug::gaussian_blur{.sigma = {2.0, 1.0}}.validate()), ssl::value_error);
    CHECK_THROWS_WITH_AS(aug::gaussian_blur{.kernel_size = 4}.validate(),
                         "gaussian_blur: kernel_size = 4 must be odd (or 0 for 10% of the image)", ssl::value_error);
    CHECK_THROWS_AS(aug::gaussian_blur{.p = 1.2}.validate(), ssl::value_error);
}

}  // namespace test_blur
