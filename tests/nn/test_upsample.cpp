#include <doctest/doctest.h>

#include <cmath>

#include <ssl/nn/upsample.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_upsample {

using ssl::tensor;
using ssl::nn::upsample_bilinear2d;

/// The map by its definition, per output element in double (PyTorch's
/// align_corners=False source coordinate, clamped at 0 and at the last row).
tensor<double> reference(const tensor<double>& x, std::size_t ho, std::size_t wo) {
    const std::size_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    tensor<double> y({n, c, ho, wo});
    auto src = [](std::size_t d, std::size_t in, std::size_t out) {
        const double s = std::max((double(d) + 0.5) * double(in) / double(out) - 0.5, 0.0);
        const std::size_t i0 = std::min<std::size_t>(std::size_t(std::floor(s)), in - 1);
        const std::size_t i1 = std::min(i0 + 1, in - 1);
        return std::tuple{i0, i1, s - double(i0)};
    };
    for (std::size_t b = 0; b < n; ++b)
        for (std::size_t k = 0; k < c; ++k)
            for (std::size_t oy = 0; oy < ho; ++oy)
                for (std::size_t ox = 0; ox < wo; ++ox) {
                    auto [y0, y1, ly] = src(oy, h, ho);
                    auto [x0, x1, lx] = src(ox, w, wo);
                    if (y1 == y0) ly = 0;
                    if (x1 == x0) lx = 0;
                    y.at(b, k, oy, ox) = (1 - ly) * ((1 - lx) * x.at(b, k, y0, x0) + lx * x.at(b, k, y0, x1)) +
                                         ly * ((1 - lx) * x.at(b, k, y1, x0) + lx * x.at(b, k, y1, x1));
                }
    return y;
}

TEST_CASE("upsample_bilinear2d: 2x2 -> 4x4 is PyTorch's F.interpolate(bilinear, align_corners=False)") {
    // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]),
    //     scale_factor=2, mode="bilinear", align_corners=False)
    upsample_bilinear2d<double> up({0, 0, 2});
    auto y = up.forward(tensor<double>::from({1, 1, 2, 2}, {1, 2, 3, 4})).out;
    const double expect[16] = {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0};
    REQUIRE(y.shape() == ssl::shape_t{1, 1, 4, 4});
    for (std::size_t i = 0; i < 16; ++i) CHECK(y[i] == doctest::Approx(expect[i]).epsilon(1e-15));
}

TEST_CASE("upsample_bilinear2d: sizes up, down, same and odd ratios match the definition; constants stay constant") {
    const auto x = ref::random<double>({2, 3, 5, 4}, 1);
    for (auto [ho, wo] : {std::pair<std::size_t, std::size_t>{10, 8}, {7, 9}, {5, 4}, {3, 2}, {1, 1}, {13, 4}}) {
        CAPTURE(ho);
        CAPTURE(wo);
        upsample_bilinear2d<double> up({ho, wo});
        auto y = up.forward(x).out;
        CHECK(ref::max_abs_diff(y, reference(x, ho, wo)) < 1e-14);
    }
    upsample_bilinear2d<double> same({5, 4});
    CHECK(ref::max_abs_diff(same.forward(x).out, x) == 0.0);  // identity at the same size
    upsample_bilinear2d<float> up({11, 17});
    auto y = up.forward(tensor<float>::full({1, 2, 3, 5}, 0.37f)).out;
    for (auto v : y) CHECK(v == doctest::Approx(0.37f).epsilon(1e-6));
}

TEST_CASE("upsample_bilinear2d: a linear ramp is reproduced away from the clamped borders") {
    // x[i, j] = 2 i - j; at output (d_y, d_x) with factor 4 the source
    // coordinate is (d + 0.5) / 4 - 0.5 inside [0, in - 1]
    tensor<double> x({1, 1, 6, 6});
    for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t j = 0; j < 6; ++j) x.at(0, 0, i, j) = 2.0 * double(i) - double(j);
    upsample_bilinear2d<double> up({0, 0, 4});
    auto y = up.forward(x).out;
    for (std::size_t oy = 2; oy < 22; ++oy)
        for (std::size_t ox = 2; ox < 22; ++ox) {
            const double sy = (double(oy) + 0.5) / 4 - 0.5, sx = (double(ox) + 0.5) / 4 - 0.5;
            CHECK(y.at(0, 0, oy, ox) == doctest::Approx(2 * sy - sx).epsilon(1e-13));
        }
}

TEST_CASE("upsample_bilinear2d: bad configuration and input") {
    CHECK_THROWS_AS(upsample_bilinear2d<float>(ssl::nn::upsample_config{}), ssl::value_error);
    CHECK_THROWS_AS(upsample_bilinear2d<float>({4, 0}), ssl::value_error);
    upsample_bilinear2d<float> up({0, 0, 2});
    CHECK_THROWS_AS(up.forward(tensor<float>({2, 3})), ssl::shape_error);
    CHECK_THROWS_AS(up.forward(tensor<float>({1, 1, 0, 3})), ssl::shape_error);
    auto r = up.forward(tensor<float>::zeros({1, 2, 3, 3}));
    CHECK_THROWS_AS(up.backward(r.cache, tensor<float>({1, 2, 3, 3})), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("upsample_bilinear2d gradcheck: factor 2, odd sizes up and down") {
        for (auto cfg : {ssl::nn::upsample_config{0, 0, 2}, ssl::nn::upsample_config{7, 5},
                         ssl::nn::upsample_config{2, 3}}) {
            upsample_bilinear2d<double> up(cfg);
            auto r = ssl::testing::gradcheck(up, ref::random<double>({2, 2, 4, 3}, 3));
            CHECK_MESSAGE(r.ok, r.str());
        }
    }
}

}  // namespace test_upsample
