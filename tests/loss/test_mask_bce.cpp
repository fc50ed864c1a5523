#include <doctest/doctest.h>

#include <cmath>

#include <ssl/loss/mask_bce.hpp>

#include "nn/reference.hpp"

namespace test_mask_bce {

using ssl::tensor;
using ssl::loss::mask_bce;

double reference(const tensor<double>& z, const tensor<double>& y, double p) {
    double L = 0;
    for (std::size_t r = 0; r < z.numel(); ++r) {
        const double s = 1 / (1 + std::exp(-z[r]));
        L += -p * y[r] * std::log(s) - (1 - y[r]) * std::log(1 - s);
    }
    return L / double(z.numel());
}

TEST_CASE("mask_bce: value is the (weighted) binary cross entropy; metrics") {
    const auto z = ref::random<double>({9, 1}, 1, -4.0, 4.0);
    auto y = ref::random<double>({9, 1}, 2, 0.0, 1.0);
    y[0] = 0, y[1] = 1;
    for (double p : {1.0, 3.0}) {
        mask_bce loss({p});
        CHECK(loss(z, y).value == doctest::Approx(reference(z, y, p)).epsilon(1e-12));
    }
    tensor<double> zz({4, 1}), yy({4, 1});
    zz[0] = 5, zz[1] = -5, zz[2] = 5, zz[3] = -5;
    yy[0] = 1, yy[1] = 0, yy[2] = 0, yy[3] = 1;
    const auto r = mask_bce{}(zz, yy);
    CHECK(r.metrics[0].second == doctest::Approx(50.0));         // pixel_acc: 2 of 4
    CHECK(r.metrics[1].second == doctest::Approx(100.0 / 3.0));  // iou: 1 of {0, 2, 3}
    // extreme logits stay finite
    zz[0] = 800, zz[1] = -800;
    CHECK(std::isfinite(mask_bce{}(zz, yy).value));
}

TEST_SUITE("gradcheck") {
    TEST_CASE("mask_bce: gradient against central differences, soft targets and pos_weight") {
        auto z = ref::random<double>({7, 1}, 3, -3.0, 3.0);
        const auto y = ref::random<double>({7, 1}, 4, 0.0, 1.0);
        mask_bce loss({2.5});
        const auto g = loss(z, y).grads[0];
        for (std::size_t r = 0; r < 7; ++r) {
            const double h = 1e-6, keep = z[r];
            z[r] = keep + h;
            const double up = loss(z, y).value;
            z[r] = keep - h;
            const double down = loss(z, y).value;
            z[r] = keep;
            CHECK(g[r] == doctest::Approx((up - down) / (2 * h)).epsilon(1e-6));
        }
    }
}

TEST_CASE("mask_bce: bad shapes, targets and configs refused; compute needs soft targets") {
    mask_bce loss;
    CHECK_THROWS_AS(loss(tensor<float>({3, 2}), tensor<float>({3, 2})), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>({3, 1}), tensor<float>({2, 1})), ssl::shape_error);
    auto y = tensor<float>::zeros({2, 1});
    y[1] = 1.5f;
    CHECK_THROWS_WITH_AS(loss(tensor<float>::zeros({2, 1}), y), doctest::Contains("outside [0, 1]"), ssl::value_error);
    CHECK_THROWS_AS(mask_bce({0.0}), ssl::value_error);
    ssl::view_batch<float> vb;
    vb.views.push_back(tensor<float>({2, 1, 4, 4}));
    CHECK_THROWS_AS(loss.compute({tensor<float>::zeros({2, 1})}, {}, vb), ssl::value_error);
}

}  // namespace test_mask_bce
