#include <doctest/doctest.h>

#include <ssl/loss/cross_entropy.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <vector>

namespace test_cross_entropy {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;

TEST_CASE("cross_entropy: value by hand") {
    ssl::loss::cross_entropy<double> ce;
    auto z = tensor<double>::from({2, 3}, {1, 2, 3, 0, 0, 0});
    std::vector<std::int64_t> y{2, 0};
    auto r = ce(z, y);
    const double l0 = -(3 - std::log(std::exp(1) + std::exp(2) + std::exp(3)));
    const double l1 = std::log(3.0);
    CHECK(r.value == doctest::Approx((l0 + l1) / 2));
    CHECK(r.correct == 2);  // sample 0: arg-max 2 == label; sample 1 ties: first arg-max 0 == label
    // gradient rows sum to zero
    CHECK(r.grad[0] + r.grad[1] + r.grad[2] == doctest::Approx(0).scale(1));
    ssl::loss::cross_entropy<double> smooth({.label_smoothing = 0.3});
    auto s = smooth(tensor<double>::from({1, 2}, {0, 0}), std::vector<std::int64_t>{1});
    CHECK(s.value == doctest::Approx(std::log(2.0)));  // uniform prediction: smoothing does not matter
}

TEST_CASE("cross_entropy: bad input") {
    ssl::loss::cross_entropy<float> ce;
    auto z = tensor<float>::zeros({2, 3});
    CHECK_THROWS_AS(ce(z, std::vector<std::int64_t>{0}), ssl::shape_error);
    CHECK_THROWS_AS(ce(z, std::vector<std::int64_t>{0, 3}), ssl::value_error);
    CHECK_THROWS_AS(ce(z, std::vector<std::int64_t>{-1, 0}), ssl::value_error);
    auto bad = tensor<float>::zeros({1, 2});
    bad[0] = NAN;
    CHECK_THROWS_AS(ce(bad, std::vector<std::int64_t>{0}), ssl::value_error);
    CHECK_THROWS_AS(ssl::loss::cross_entropy<float>({.label_smoothing = 1.0}), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("cross_entropy gradcheck, with and without smoothing") {
        for (double s : {0.0, 0.2}) {
            ssl::loss::cross_entropy<double> ce({.label_smoothing = s});
            auto z = ssl::testing::random_tensor({4, 5}, 3, -2, 2);
            std::vector<std::int64_t> y{0, 4, 2, 2};
            auto g = ce(z, y).grad;
            ssl::testing::gradcheck_report rep;
            ssl::testing::check_entries(rep, "logits", z.data(), g.data(), z.numel(), [&] { return ce(z, y).value; }, {});
            CHECK_MESSAGE(rep.ok, rep.str());
            CHECK(rep.checked == 20);
        }
    }
}

}  // namespace test_cross_entropy
