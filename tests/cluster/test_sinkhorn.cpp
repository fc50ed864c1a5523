#include <doctest/doctest.h>

#include <ssl/cluster/sinkhorn.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/core/thread_pool.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace test_sinkhorn {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::cluster::sinkhorn_labels;

namespace {

// Random logits scale * z, plus `bias` on column 0 (a collapsed predictor favours one cluster).
tensor<float> random_logits(std::size_t n, std::size_t k, double scale, double bias, std::uint64_t seed) {
    ssl::philox g(seed, 6);
    tensor<float> l({n, k});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < k; ++j) l.at(i, j) = static_cast<float>(scale * g.normal() + (j == 0 ? bias : 0));
    return l;
}

std::vector<double> col_sums(const tensor<double>& q) {
    std::vector<double> s(q.dim(1), 0.0);
    for (std::size_t i = 0; i < q.dim(0); ++i)
        for (std::size_t j = 0; j < q.dim(1); ++j) s[j] += q.at(i, j);
    return s;
}

std::vector<std::size_t> counts(const std::vector<std::int64_t>& labels, std::size_t k) {
    std::vector<std::size_t> c(k, 0);
    for (auto l : labels) {
        REQUIRE(l >= 0);
        REQUIRE(static_cast<std::size_t>(l) < k);
        ++c[static_cast<std::size_t>(l)];
    }
    return c;
}

}  // namespace

TEST_CASE("sinkhorn: a hand-checked 2 x 2 case") {
    // P = [[0.9, 0.1], [0.8, 0.2]]: both samples prefer cluster 0. With rows and columns summing to 1,
    // Q = [[q, 1-q], [1-q, q]], and diagonal scaling keeps the cross ratio:
    // q^2 / (1-q)^2 = (0.9 * 0.2) / (0.1 * 0.8) = 2.25 -> q = 0.6 (lambda = 1);
    // with lambda = 2 the ratio is squared: q / (1-q) = 2.25 -> q = 9/13.
    auto logp = tensor<double>::from({2, 2}, {std::log(0.9), std::log(0.1), std::log(0.8), std::log(0.2)});
    auto r = sinkhorn_labels(logp, {.lambda = 1, .tolerance = 1e-12, .check_every = 1, .keep_plan = true});
    CHECK(r.converged);
    CHECK(r.error < 1e-12);
    CHECK(r.labels == std::vector<std::int64_t>{0, 1});
    REQUIRE(r.plan.shape() == ssl::shape_t{2, 2});
    CHECK(r.plan.at(0, 0) == doctest::Approx(0.6).epsilon(1e-10));
    CHECK(r.plan.at(0, 1) == doctest::Approx(0.4).epsilon(1e-10));
    CHECK(r.plan.at(1, 0) == doctest::Approx(0.4).epsilon(1e-10));
    CHECK(r.plan.at(1, 1) == doctest::Approx(0.6).epsilon(1e-10));
    auto r2 = sinkhorn_labels(logp, {.lambda = 2, .tolerance = 1e-12, .check_every = 1, .keep_plan = true});
    CHECK(r2.plan.at(0, 0) == doctest::Approx(9.0 / 13).epsilon(1e-10));
    CHECK(r2.plan.at(1, 0) == doctest::Approx(4.0 / 13).epsilon(1e-10));
    // logits (log-probabilities plus any per-row constant) give the same plan
    auto logits = tensor<double>::from({2, 2}, {std::log(0.9) + 7, std::log(0.1) + 7, std::log(0.8) - 3, std::log(0.2) - 3});
    auto r3 = sinkhorn_labels(logits, {.lambda = 1, .tolerance = 1e-12, .check_every = 1, .keep_plan = true});
    for (std::size_t i = 0; i < 4; ++i) CHECK(r3.plan[i] == doctest::Approx(r.plan[i]).epsilon(1e-10));
}

TEST_CASE("sinkhorn: the plan has uniform column marginals within the tolerance and exact row marginals") {
    auto l = random_logits(600, 12, 1.0, 1.5, 1);
    for (double tol : {0.1, 1e-3}) {
        auto r = sinkhorn_labels(l, {.tolerance = tol, .keep_plan = true});
        CHECK(r.converged);
        CHECK(r.error < tol);
        CHECK(r.iterations % 10 == 0);  // checked every 10 rounds
        const auto cs = col_sums(r.plan);
        double worst = 0;
        for (double c : cs) worst = std::max(worst, std::abs(c / 50.0 - 1));
        CHECK(worst == doctest::Approx(r.error).epsilon(1e-6));
        for (std::size_t i = 0; i < 600; ++i) {
            double s = 0;
            for (std::size_t j = 0; j < 12; ++j) s += r.plan.at(i, j);
            CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
        }
        // labels are the row-wise arg-max of the plan
        for (std::size_t i = 0; i < 600; ++i) {
            const double* q = r.plan.data() + i * 12;
            CHECK(r.labels[i] == std::max_element(q, q + 12) - q);
        }
    }
}

TEST_CASE("sinkhorn: labels are balanced even when the predictions are not") {
    const std::size_t n = 2000, k = 10;
    auto l = random_logits(n, k, 1.0, 3.0, 2);  // cluster 0 wins the plain arg-max almost always
    std::size_t plain0 = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t best = 0;
        for (std::size_t j = 1; j < k; ++j)
            if (l.at(i, j) > l.at(i, best)) best = j;
        plain0 += best == 0;
    }
    CHECK(plain0 > n / 2);
    auto r = sinkhorn_labels(l, {.tolerance = 0.01});
    for (auto c : counts(r.labels, k)) {
        CHECK(c >= 160);  // N/K = 200 each
        CHECK(c <= 240);
    }
}

TEST_CASE("sinkhorn: large lambda and large logits do not overflow") {
    // lambda * logit range ~ 25 * 200 and 1000 * 40: e^5000 and e^40000 if done naively
    auto wide = random_logits(500, 20, 30.0, 0.0, 3);
    auto r = sinkhorn_labels(wide, {.lambda = 25, .max_iterations = 5000, .keep_plan = true});
    CHECK(r.converged);
    CHECK(r.error < 0.1);
    for (double q : r.plan) CHECK(std::isfinite(q));
    for (auto c : counts(r.labels, 20)) CHECK(c > 0);
    auto narrow = random_logits(500, 20, 5.0, 0.0, 3);
    auto s = sinkhorn_labels(narrow, {.lambda = 1000, .max_iterations = 10000});
    CHECK(s.converged);
    CHECK(s.error < 0.1);
    // an almost hard assignment (entropic regularization 1 / (1000 * 30)) converges very slowly, but
    // stays finite all along
    auto t = sinkhorn_labels(wide, {.lambda = 1000, .max_iterations = 300, .keep_plan = true});
    CHECK(std::isfinite(t.error));
    for (double q : t.plan) CHECK(std::isfinite(q));
    counts(t.labels, 20);
}

TEST_CASE("sinkhorn: max_iterations bounds the work; the error is then reported as is") {
    auto l = random_logits(400, 8, 3.0, 4.0, 4);
    auto r = sinkhorn_labels(l, {.tolerance = 1e-9, .max_iterations = 7});
    CHECK_FALSE(r.converged);
    CHECK(r.iterations == 7);
    CHECK(r.error >= 1e-9);
    CHECK(std::isfinite(r.error));
    // check_every = 1 stops at the first round under the tolerance
    auto a = sinkhorn_labels(l, {.tolerance = 0.05, .check_every = 1});
    auto b = sinkhorn_labels(l, {.tolerance = 0.05, .check_every = 10});
    CHECK(a.converged);
    CHECK(b.iterations >= a.iterations);
    CHECK(b.iterations < a.iterations + 10);
}

TEST_CASE("sinkhorn: the same bits at any thread count; several heads") {
    const std::size_t saved = ssl::num_threads();
    auto l = random_logits(3000, 16, 1.0, 1.0, 5);  // 3 row blocks
    ssl::set_num_threads(1);
    auto a = sinkhorn_labels(l, {.keep_plan = true});
    ssl::set_num_threads(3);
    auto b = sinkhorn_labels(l, {.keep_plan = true});
    ssl::set_num_threads(saved);
    CHECK(a.labels == b.labels);
    CHECK(a.iterations == b.iterations);
    CHECK(std::memcmp(a.plan.data(), b.plan.data(), a.plan.numel() * sizeof(double)) == 0);

    auto l2 = random_logits(3000, 5, 1.0, 0.0, 6);
    auto heads = sinkhorn_labels(std::vector<tensor<float>>{l, l2});
    REQUIRE(heads.size() == 2);
    CHECK(heads[0].labels == a.labels);
    CHECK(heads[1].labels == sinkhorn_labels(l2).labels);
    CHECK_THROWS_AS(sinkhorn_labels(std::vector<tensor<float>>{l, random_logits(10, 5, 1, 0, 7)}), ssl::shape_error);
    CHECK_THROWS_AS(sinkhorn_labels(std::vector<tensor<float>>{}), ssl::value_error);
}

TEST_CASE("sinkhorn: bad input is rejected") {
    auto l = random_logits(10, 3, 1.0, 0.0, 8);
    CHECK_THROWS_AS(sinkhorn_labels(random_logits(10, 1, 1, 0, 1)), ssl::value_error);  // K < 2
    CHECK_THROWS_AS(sinkhorn_labels(random_logits(3, 5, 1, 0, 1)), ssl::value_error);   // N < K
    CHECK_THROWS_AS(sinkhorn_labels(tensor<float>({12})), ssl::shape_error);
    CHECK_THROWS_AS(sinkhorn_labels(l, {.lambda = 0}), ssl::value_error);
    CHECK_THROWS_AS(sinkhorn_labels(l, {.lambda = std::numeric_limits<double>::infinity()}), ssl::value_error);
    CHECK_THROWS_AS(sinkhorn_labels(l, {.tolerance = 0}), ssl::value_error);
    CHECK_THROWS_AS(sinkhorn_labels(l, {.check_every = 0}), ssl::value_error);
    CHECK_THROWS_AS(sinkhorn_labels(l, {.max_iterations = 0}), ssl::value_error);
    auto bad = l.clone();
    bad.at(4, 2) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(sinkhorn_labels(bad), doctest::Contains("logit (4, 2)"), ssl::value_error);
}

}  // namespace test_sinkhorn
