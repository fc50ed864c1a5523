#include <doctest/doctest.h>

#include <ssl/loss.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>

namespace test_cosine {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::loss::cosine;

TEST_CASE("cosine (BYOL) loss: values and gradient by hand") {
    // Row 0: p = (1,0), z = (1,1): cos = 1/sqrt2, loss 2 - sqrt2.
    // Row 1: p = (0,2), z = (0,-1): cos = -1, loss 4.
    // Mean: (6 - sqrt2) / 2.
    // dL/dp_i = -2/N (z_hat - c p_hat) / ||p||:
    //   row 0: -1 * ((h, h) - h (1, 0)) / 1 = (0, -h),  h = 1/sqrt2
    //   row 1: (z_hat - c p_hat) = (0,-1) + (0,1) = 0: antipodal is stationary.
    auto p = tensor<double>::from({2, 2}, {1, 0, 0, 2});
    auto z = tensor<double>::from({2, 2}, {1, 1, 0, -1});
    auto r = cosine<double>()(p, z);
    const double h = 1 / std::sqrt(2.0);
    CHECK(r.value == doctest::Approx((6 - std::sqrt(2.0)) / 2).epsilon(1e-14));
    CHECK(r.mean_cosine == doctest::Approx((h - 1) / 2).epsilon(1e-14));
    CHECK(r.grad_p.at(0, 0) == doctest::Approx(0).scale(1));
    CHECK(r.grad_p.at(0, 1) == doctest::Approx(-h).epsilon(1e-14));
    CHECK(r.grad_p.at(1, 0) == doctest::Approx(0).scale(1));
    CHECK(r.grad_p.at(1, 1) == doctest::Approx(0).scale(1));
    CHECK_FALSE(r.grad_z.defined());  // z is a stop-gradient unless asked
    // dL/dz_i = -2/N (p_hat - c z_hat) / ||z||: row 0: -((1,0) - h (h,h)) / sqrt2 = (-h/2, h/2)
    auto rz = cosine<double>({.target_grad = true})(p, z);
    REQUIRE(rz.grad_z.defined());
    CHECK(rz.grad_z.at(0, 0) == doctest::Approx(-h / 2).epsilon(1e-14));
    CHECK(rz.grad_z.at(0, 1) == doctest::Approx(h / 2).epsilon(1e-14));
    CHECK(rz.value == r.value);
}

TEST_CASE("cosine loss: equals ||p_hat - z_hat||^2, perfect alignment gives 0, scale invariance") {
    auto p = ssl::testing::random_tensor({6, 5}, 1);
    auto z = ssl::testing::random_tensor({6, 5}, 2);
    cosine<double> loss;
    auto r = loss(p, z);
    double direct = 0;
    for (std::size_t i = 0; i < 6; ++i) {
        double np = 0, nz = 0;
        for (std::size_t j = 0; j < 5; ++j) np += p.at(i, j) * p.at(i, j), nz += z.at(i, j) * z.at(i, j);
        for (std::size_t j = 0; j < 5; ++j) {
            const double dlt = p.at(i, j) / std::sqrt(np) - z.at(i, j) / std::sqrt(nz);
            direct += dlt * dlt;
        }
    }
    CHECK(r.value == doctest::Approx(direct / 6).epsilon(1e-13));
    CHECK(r.value >= 0);
    CHECK(r.value <= 4);

    // p = 3 z: cos = 1, loss 0 and zero gradient (the minimum)
    auto p3 = z.clone();
    for (auto& v : p3) v *= 3;
    auto a = loss(p3, z);
    CHECK(a.value == doctest::Approx(0).scale(1));
    CHECK(a.mean_cosine == doctest::Approx(1));
    for (auto g : a.grad_p) CHECK(std::abs(g) < 1e-14);

    // scaling p by c leaves the loss, divides the gradient by c
    auto p7 = p.clone();
    for (auto& v : p7) v *= 7;
    auto b = loss(p7, z);
    CHECK(b.value == doctest::Approx(r.value).epsilon(1e-13));
    for (std::size_t i = 0; i < p.numel(); ++i) CHECK(b.grad_p[i] * 7 == doctest::Approx(r.grad_p[i]).epsilon(1e-12));
}

TEST_CASE("cosine loss: BYOL symmetrization is two calls with the views swapped") {
    auto p1 = ssl::testing::random_tensor({4, 3}, 3), p2 = ssl::testing::random_tensor({4, 3}, 4);
    auto z1 = ssl::testing::random_tensor({4, 3}, 5), z2 = ssl::testing::random_tensor({4, 3}, 6);
    ssl::loss::byol_loss<double> loss;
    const double sym = loss(p1, z2).value + loss(p2, z1).value;
    const double swapped = loss(p2, z1).value + loss(p1, z2).value;
    CHECK(sym == swapped);
    CHECK(sym >= 0);
    CHECK(sym <= 8);
}

TEST_CASE("cosine loss: float agrees with double; bad input") {
    auto p = ssl::testing::random_tensor({5, 4}, 7), z = ssl::testing::random_tensor({5, 4}, 8);
    auto rd = cosine<double>()(p, z);
    auto rf = cosine<float>()(ssl::cast<float>(p), ssl::cast<float>(z));
    CHECK(rf.value == doctest::Approx(rd.value).epsilon(1e-6));
    for (std::size_t i = 0; i < p.numel(); ++i) CHECK(rf.grad_p[i] == doctest::Approx(rd.grad_p[i]).epsilon(1e-5).scale(1e-3));

    cosine<float> loss;
    auto a = tensor<float>::full({3, 2}, 1.f);
    CHECK_THROWS_AS(loss(a, tensor<float>::full({3, 3}, 1.f)), ssl::shape_error);
    CHECK_THROWS_AS(loss(a, tensor<float>::full({2, 2}, 1.f)), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>::zeros({6}), tensor<float>::zeros({6})), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>::zeros({0, 2}), tensor<float>::zeros({0, 2})), ssl::shape_error);
    auto bad = a.clone();
    bad[3] = NAN;
    CHECK_THROWS_AS(loss(bad, a), ssl::value_error);
    CHECK_THROWS_AS(cosine<float>({.eps = 0}), ssl::value_error);
    // a zero prediction is floored, not a NaN: cos = 0, loss 2
    auto zero = tensor<float>::zeros({3, 2});
    auto r = loss(zero, a);
    CHECK(r.value == doctest::Approx(2.0));
    for (auto g : r.grad_p) CHECK(std::isfinite(g));
}

TEST_SUITE("gradcheck") {
    TEST_CASE("cosine loss gradcheck: p (and z when asked)") {
        for (std::uint64_t seed : {11u, 12u, 13u}) {
            cosine<double> loss({.target_grad = true});
            auto p = ssl::testing::random_tensor({4, 6}, seed);
            auto z = ssl::testing::random_tensor({4, 6}, seed + 100);
            auto r = loss(p, z);
            ssl::testing::gradcheck_report rep;
            auto f = [&] { return loss(p, z).value; };
            ssl::testing::check_entries(rep, "p", p.data(), r.grad_p.data(), p.numel(), f, {});
            ssl::testing::check_entries(rep, "z", z.data(), r.grad_z.data(), z.numel(), f, {});
            CHECK_MESSAGE(rep.ok, rep.str());
            CHECK(rep.checked == 48);
        }
    }
}

}  // namespace test_cosine
