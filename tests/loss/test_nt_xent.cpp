#include <doctest/doctest.h>

#include <ssl/loss/nt_xent.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <vector>

namespace test_nt_xent {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::loss::nt_xent;

namespace {

// -log softmax over b != a, written with plain loops and no tricks.
double naive_nt_xent(const tensor<double>& z1, const tensor<double>& z2, double tau) {
    const std::size_t n = z1.dim(0), d = z1.dim(1), m = 2 * n;
    std::vector<std::vector<double>> u(m, std::vector<double>(d));
    for (std::size_t a = 0; a < m; ++a) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) {
            const double v = a < n ? z1.at(a, j) : z2.at(a - n, j);
            s += v * v;
        }
        for (std::size_t j = 0; j < d; ++j) u[a][j] = (a < n ? z1.at(a, j) : z2.at(a - n, j)) / std::sqrt(s);
    }
    auto sim = [&](std::size_t a, std::size_t b) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += u[a][j] * u[b][j];
        return s;
    };
    double total = 0;
    for (std::size_t a = 0; a < m; ++a) {
        const std::size_t pos = a < n ? a + n : a - n;
        double denom = 0;
        for (std::size_t b = 0; b < m; ++b)
            if (b != a) denom += std::exp(sim(a, b) / tau);
        total += -std::log(std::exp(sim(a, pos) / tau) / denom);
    }
    return total / static_cast<double>(m);
}

}  // namespace

TEST_CASE("nt_xent: orthonormal pairs by hand") {
    // z1 = z2 = [(1,0), (0,1)]: u0 = u2 = (1,0), u1 = u3 = (0,1).
    // Every anchor: positive similarity 1, its two negatives 0, so
    //   l = -log(e^{1/tau} / (e^{1/tau} + e^0 + e^0)) = log(1 + 2 e^{-1/tau}).
    // tau = 0.5: log(1 + 2 e^{-2}) = log(1.2706706) = 0.2395447.
    auto z = tensor<double>::from({2, 2}, {1, 0, 0, 1});
    auto r = nt_xent<double>()(z, z);
    CHECK(r.value == doctest::Approx(0.2395447).epsilon(1e-6));
    CHECK(r.value == doctest::Approx(std::log(1 + 2 * std::exp(-2.0))));
    CHECK(r.correct == 4);
    CHECK(r.accuracy == 1.0);
}

TEST_CASE("nt_xent: unequal similarities by hand, tau = 1") {
    // z1 = [(1,0), (0,2)], z2 = [(1,1), (-3,0)] normalize to
    //   u0 = (1,0), u1 = (0,1), u2 = (1,1)/sqrt2, u3 = (-1,0); with h = 1/sqrt2:
    //   s01 = 0, s02 = h, s03 = -1, s12 = h, s13 = 0, s23 = -h.
    //   l0 (pos 2) = -h + log(e^0  + e^h + e^-1)
    //   l1 (pos 3) = -0 + log(e^0  + e^h + e^0)
    //   l2 (pos 0) = -h + log(e^h  + e^h + e^-h)
    //   l3 (pos 1) = -0 + log(e^-1 + e^0 + e^-h)
    // Contrastive accuracy: anchor 0 (h > 0, -1) and 3 (0 > -1, -h) rank their
    // positive first; anchor 1 (0 vs h) does not, anchor 2 ties (h vs h): a miss.
    auto z1 = tensor<double>::from({2, 2}, {1, 0, 0, 2});
    auto z2 = tensor<double>::from({2, 2}, {1, 1, -3, 0});
    const double h = 1 / std::sqrt(2.0);
    const double l0 = -h + std::log(1 + std::exp(h) + std::exp(-1.0));
    const double l1 = std::log(2 + std::exp(h));
    const double l2 = -h + std::log(2 * std::exp(h) + std::exp(-h));
    const double l3 = std::log(std::exp(-1.0) + 1 + std::exp(-h));
    auto r = nt_xent<double>({.temperature = 1.0})(z1, z2);
    CHECK(r.value == doctest::Approx((l0 + l1 + l2 + l3) / 4).epsilon(1e-12));
    CHECK(r.correct == 2);
    CHECK(r.accuracy == 0.5);
}

TEST_CASE("nt_xent: equals the naive -log softmax (several N, tau; blocked rows)") {
    for (std::size_t n : {2u, 5u, 40u}) {
        auto z1 = ssl::testing::random_tensor({n, 7}, 10 + n);
        auto z2 = ssl::testing::random_tensor({n, 7}, 20 + n);
        for (double tau : {0.05, 0.2, 0.5, 2.0}) {
            auto r = nt_xent<double>({.temperature = tau})(z1, z2);
            CHECK(r.value == doctest::Approx(naive_nt_xent(z1, z2, tau)).epsilon(1e-12));
        }
    }
}

TEST_CASE("nt_xent: float agrees with double") {
    auto z1 = ssl::testing::random_tensor({16, 8}, 1);
    auto z2 = ssl::testing::random_tensor({16, 8}, 2);
    auto rd = nt_xent<double>({.temperature = 0.1})(z1, z2);
    auto rf = nt_xent<float>({.temperature = 0.1})(ssl::cast<float>(z1), ssl::cast<float>(z2));
    CHECK(rf.value == doctest::Approx(rd.value).epsilon(1e-5));
    CHECK(rf.correct == rd.correct);
    for (std::size_t i = 0; i < z1.numel(); ++i) {
        CHECK(rf.grad_z1[i] == doctest::Approx(rd.grad_z1[i]).epsilon(1e-4).scale(1e-3));
        CHECK(rf.grad_z2[i] == doctest::Approx(rd.grad_z2[i]).epsilon(1e-4).scale(1e-3));
    }
}

TEST_CASE("nt_xent: invariant to the scale of each projection") {
    auto z1 = ssl::testing::random_tensor({6, 5}, 3);
    auto z2 = ssl::testing::random_tensor({6, 5}, 4);
    auto s1 = z1.clone(), s2 = z2.clone();
    std::vector<double> c1(6), c2(6);
    for (std::size_t i = 0; i < 6; ++i) {
        c1[i] = 0.1 + 3.0 * static_cast<double>(i);
        c2[i] = 50.0 / static_cast<double>(i + 1);
        for (std::size_t j = 0; j < 5; ++j) s1.at(i, j) *= c1[i], s2.at(i, j) *= c2[i];
    }
    nt_xent<double> loss({.temperature = 0.3});
    auto a = loss(z1, z2), b = loss(s1, s2);
    CHECK(b.value == doctest::Approx(a.value).epsilon(1e-12));
    CHECK(b.correct == a.correct);
    // L(c z) = L(z)  =>  dL/dz at c z is dL/dz at z divided by c.
    for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t j = 0; j < 5; ++j) {
            CHECK(b.grad_z1.at(i, j) * c1[i] == doctest::Approx(a.grad_z1.at(i, j)).epsilon(1e-9).scale(1e-12));
            CHECK(b.grad_z2.at(i, j) * c2[i] == doctest::Approx(a.grad_z2.at(i, j)).epsilon(1e-9).scale(1e-12));
        }
}

TEST_CASE("nt_xent: perfect alignment with antipodal negatives is the minimum") {
    // N = 2: positives identical, the two images opposite. Each anchor has
    // s_pos = 1 and two negatives at -1, the best any configuration can do:
    //   L* = log(1 + 2 e^{-2/tau}).
    auto z = tensor<double>::from({2, 3}, {0.6, 0.8, 0, -1.2, -1.6, 0});
    for (double tau : {0.1, 0.5, 1.0}) {
        nt_xent<double> loss({.temperature = tau});
        auto r = loss(z, z);
        CHECK(r.value == doctest::Approx(std::log(1 + 2 * std::exp(-2 / tau))).epsilon(1e-12));
        CHECK(r.accuracy == 1.0);
        for (std::size_t i = 0; i < z.numel(); ++i) {
            CHECK(std::abs(r.grad_z1[i]) < 1e-12);
            CHECK(std::abs(r.grad_z2[i]) < 1e-12);
        }
        // any perturbation of either view increases the loss
        for (std::uint64_t seed = 0; seed < 10; ++seed) {
            auto d1 = ssl::testing::random_tensor({2, 3}, 100 + seed, -0.2, 0.2);
            auto d2 = ssl::testing::random_tensor({2, 3}, 200 + seed, -0.2, 0.2);
            auto p1 = z.clone(), p2 = z.clone();
            for (std::size_t i = 0; i < z.numel(); ++i) p1[i] += d1[i], p2[i] += d2[i];
            CHECK(loss(p1, p2).value > r.value);
        }
    }
    // Aligned views beat misaligned ones for the same images.
    auto z1 = ssl::testing::random_tensor({8, 4}, 5);
    auto z2 = ssl::testing::random_tensor({8, 4}, 6);
    nt_xent<double> loss;
    CHECK(loss(z1, z1).value < loss(z1, z2).value);
    CHECK(loss(z1, z1).accuracy == 1.0);
}

TEST_CASE("nt_xent: gradient sums to zero along each row's own direction") {
    // The loss is scale invariant, so dL/dz_a is orthogonal to z_a.
    auto z1 = ssl::testing::random_tensor({5, 4}, 7);
    auto z2 = ssl::testing::random_tensor({5, 4}, 8);
    auto r = nt_xent<double>({.temperature = 0.2})(z1, z2);
    for (std::size_t i = 0; i < 5; ++i) {
        double d1 = 0, d2 = 0;
        for (std::size_t j = 0; j < 4; ++j) d1 += r.grad_z1.at(i, j) * z1.at(i, j), d2 += r.grad_z2.at(i, j) * z2.at(i, j);
        CHECK(std::abs(d1) < 1e-12);
        CHECK(std::abs(d2) < 1e-12);
    }
}

TEST_CASE("nt_xent: bad input") {
    nt_xent<float> loss;
    auto a = tensor<float>::zeros({4, 3});
    auto one = tensor<float>::full({1, 3}, 1.f);
    CHECK_THROWS_AS(loss(a, tensor<float>::zeros({4, 2})), ssl::shape_error);
    CHECK_THROWS_AS(loss(a, tensor<float>::zeros({3, 3})), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>::zeros({12}), tensor<float>::zeros({12})), ssl::shape_error);
    CHECK_THROWS_AS(loss(one, one), ssl::shape_error);  // N = 1: no negatives
    CHECK_THROWS_AS(loss(tensor<float>::zeros({4, 0}), tensor<float>::zeros({4, 0})), ssl::shape_error);
    auto bad = tensor<float>::full({2, 2}, 1.f);
    bad[1] = NAN;
    CHECK_THROWS_AS(loss(bad, bad), ssl::value_error);
    CHECK_THROWS_AS(nt_xent<float>({.temperature = 0}), ssl::value_error);
    CHECK_THROWS_AS(nt_xent<float>({.temperature = -0.5}), ssl::value_error);
    CHECK_THROWS_AS(nt_xent<float>({.temperature = INFINITY}), ssl::value_error);
    // zero rows are allowed (normalization floored at eps, as F.normalize) and give a finite loss
    auto r = loss(a, a);
    CHECK(std::isfinite(r.value));
    CHECK(r.value == doctest::Approx(std::log(7.0)));  // all 2N - 1 = 7 similarities 0: -log(1 / 7)
    CHECK(r.correct == 0);                              // ties are misses
}

TEST_SUITE("gradcheck") {
    TEST_CASE("nt_xent gradcheck: z1 and z2, several temperatures") {
        for (double tau : {0.07, 0.2, 0.5, 1.0}) {
            for (std::size_t n : {2u, 4u}) {
                nt_xent<double> loss({.temperature = tau});
                auto z1 = ssl::testing::random_tensor({n, 5}, 31 + n);
                auto z2 = ssl::testing::random_tensor({n, 5}, 41 + n);
                auto r = loss(z1, z2);
                ssl::testing::gradcheck_report rep;
                auto f = [&] { return loss(z1, z2).value; };
                ssl::testing::check_entries(rep, "z1", z1.data(), r.grad_z1.data(), z1.numel(), f, {});
                ssl::testing::check_entries(rep, "z2", z2.data(), r.grad_z2.data(), z2.numel(), f, {});
                INFO("tau ", tau, ", N ", n);
                CHECK_MESSAGE(rep.ok, rep.str());
                CHECK(rep.checked == 2 * n * 5);
            }
        }
    }
}

}  // namespace test_nt_xent
