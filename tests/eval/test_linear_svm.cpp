#include <doctest/doctest.h>

#include <ssl/core/rng.hpp>
#include <ssl/eval.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace test_linear_svm {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
namespace ev = ssl::eval;

namespace {

struct blobs {
    tensor<float> train, test;
    std::vector<std::int64_t> train_y, test_y;
};

// Gaussian blobs of std `noise` around random centres of norm `spread`, plus an offset.
blobs make_blobs(std::size_t classes, std::size_t dim, std::size_t per_train, std::size_t per_test, double spread,
                 double noise, std::uint64_t seed) {
    ssl::philox g(seed, 7);
    std::vector<std::vector<double>> centre(classes, std::vector<double>(dim));
    for (auto& c : centre) {
        double s = 0;
        for (auto& v : c) v = g.normal(), s += v * v;
        for (auto& v : c) v *= spread / std::sqrt(s);
    }
    blobs out;
    auto fill = [&](tensor<float>& x, std::vector<std::int64_t>& y, std::size_t per) {
        x = tensor<float>({classes * per, dim});
        for (std::size_t i = 0; i < classes * per; ++i) {
            const std::size_t c = i % classes;
            y.push_back(static_cast<std::int64_t>(c));
            for (std::size_t j = 0; j < dim; ++j) x.at(i, j) = static_cast<float>(centre[c][j] + noise * g.normal() + 0.5);
        }
    };
    fill(out.train, out.train_y, per_train);
    fill(out.test, out.test_y, per_test);
    return out;
}

std::vector<std::size_t> all_rows(std::size_t n) {
    std::vector<std::size_t> r(n);
    for (std::size_t i = 0; i < n; ++i) r[i] = i;
    return r;
}

}  // namespace

TEST_CASE("linear_svm: linearly separable classes are fitted and predicted perfectly") {
    const auto d = make_blobs(5, 16, 40, 20, 6.0, 0.3, 1);
    const auto r = ev::linear_svm_evaluate(d.train, d.train_y, d.test, d.test_y);
    CHECK(r.train_top1 == 1.0);
    CHECK(r.test_top1 == 1.0);
    CHECK(r.converged);
    CHECK(r.cv.top1[r.cv.best] == 1.0);
    CHECK(r.model.classes().size() == 5);
    // fixed cost, no normalization: the same
    const auto f = ev::linear_svm_fit(d.train, d.train_y, {.cost = 1.0, .l2_normalize = false});
    CHECK(f.train_top1 == 1.0);
    CHECK(ev::top1_accuracy(f.model.predict(d.test), d.test_y) == 1.0);
}

TEST_CASE("linear_svm: dual coordinate descent lowers the dual pass by pass and closes the duality gap") {
    const auto d = make_blobs(3, 8, 60, 1, 1.0, 1.0, 2);  // overlapping: many support vectors
    const auto x = ev::detail::svm_prepare(d.train, true, "test", "train");
    const auto rows = all_rows(d.train.dim(0));
    std::vector<signed char> y(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) y[i] = d.train_y[i] == 1 ? 1 : -1;
    for (double cost : {0.01, 1.0, 30.0}) {
        CAPTURE(cost);
        const ev::svm_config cfg{.cost = cost, .tolerance = 1e-9, .max_iterations = 100000, .bias = 1.0};
        const auto fit = ev::svm_solve_binary(x, rows, y, cfg);
        REQUIRE(fit.converged);
        REQUIRE(fit.dual_history.size() == fit.iterations);
        REQUIRE(fit.iterations >= 2);
        for (std::size_t i = 1; i < fit.dual_history.size(); ++i)
            CHECK(fit.dual_history[i] <= fit.dual_history[i - 1] + 1e-12 * std::fabs(fit.dual_history[i - 1]));
        for (double a : fit.alpha) CHECK(a >= 0);
        const double f = ev::svm_dual(x, rows, y, fit.alpha, cost, 1.0);
        CHECK(f == doctest::Approx(fit.dual_history.back()).epsilon(1e-10));
        const double p = ev::svm_primal(x, rows, y, fit.w, cost, 1.0);
        // weak duality P(w) >= -f(alpha); at convergence they meet
        CHECK(p + f >= -1e-9 * std::fabs(p));
        CHECK(p + f <= 1e-6 * std::fabs(p));
        // KKT: alpha_i = 2C max(0, 1 - y_i w^T x_i)
        const std::size_t dim = static_cast<std::size_t>(x.cols());
        for (std::size_t i = 0; i < rows.size(); i += 7) {
            const double m = 1.0 - y[i] * (ev::detail::svm_dot(x.data() + i * dim, fit.w.data(), dim) + fit.w[dim]);
            CHECK(fit.alpha[i] == doctest::Approx(2 * cost * std::max(0.0, m)).epsilon(1e-4).scale(1));
        }
    }
}

// Class 0 at x = 1, class 1 at x = 2 (1-d, not normalized), m of each in a
// fold's train set. With both squared hinges active (always, at finite C) the
// class-1-vs-rest optimum solves a 2x2 system: with a = 2 C m,
//   w = a (1 + 2a) / (1 + 7a + a^2),  b = -3 a^2 / (1 + 7a + a^2),
// so x = 1 scores w + b = a (1 - a) / (...): class 0 is right iff a > 1, i.e.
// C > 1 / (2m); below that the SVMs predict class 1 everywhere (50 %).
TEST_CASE("linear_svm: the 1-d closed form, and cross-validation picks the smallest cost that separates") {
    const std::size_t per_class = 48, folds = 3, m = per_class * (folds - 1) / folds;  // 32
    tensor<double> x({2 * per_class, 1});
    std::vector<std::int64_t> y(2 * per_class);
    for (std::size_t i = 0; i < 2 * per_class; ++i) {
        y[i] = static_cast<std::int64_t>(i % 2);
        x[i] = 1.0 + static_cast<double>(i % 2);
    }
    const ev::svm_config base{.tolerance = 1e-10, .max_iterations = 100000, .bias = 1.0, .l2_normalize = false};
    SUBCASE("the binary solver reaches the closed form") {
        for (double cost : {0.003, 0.02, 0.5, 4.0}) {
            CAPTURE(cost);
            const double a = 2 * cost * static_cast<double>(per_class), den = 1 + 7 * a + a * a;
            ev::svm_config c = base;
            c.cost = cost;
            const auto f = ev::linear_svm_fit(x, y, c);
            REQUIRE(f.converged);
            const auto& w = f.model.weight();
            CHECK(w(1, 0) == doctest::Approx(a * (1 + 2 * a) / den).epsilon(1e-6));
            CHECK(f.model.bias()[1] == doctest::Approx(-3 * a * a / den).epsilon(1e-6));
            CHECK(w(0, 0) == doctest::Approx(-w(1, 0)).epsilon(1e-6));  // the mirror problem
        }
    }
    SUBCASE("3-fold CV") {
        const ev::svm_cv_config cv{.costs = {1.0, 0.001, 0.003, 0.01, 0.012, 0.02, 0.05}, .folds = folds,
                                   .fold_seed = 5, .svm = base};
        const auto r = ev::svm_cross_validate(x, y, cv);
        REQUIRE(r.costs.size() == 7);
        std::size_t expected = r.costs.size();
        for (std::size_t i = 0; i < r.costs.size(); ++i) {
            CAPTURE(r.costs[i]);
            const double a = 2 * r.costs[i] * static_cast<double>(m);
            const double acc = a > 1 ? 1.0 : 0.5;
            CHECK(r.top1[i] == doctest::Approx(acc));
            if (acc == 1.0 && expected == r.costs.size()) expected = i;
        }
        CHECK(r.best == expected);
        CHECK(r.cost() == doctest::Approx(0.02));  // 1 / (2m) = 0.0156 lies between 0.012 and 0.02
    }
}

TEST_CASE("linear_svm: stratified folds are balanced and seeded") {
    std::vector<std::int64_t> y;
    for (int c = 0; c < 4; ++c)
        for (int i = 0; i < 10 + c; ++i) y.push_back(c);
    const auto f = ev::stratified_folds(y, 3, 9);
    CHECK(f == ev::stratified_folds(y, 3, 9));
    CHECK(f != ev::stratified_folds(y, 3, 10));
    for (int c = 0; c < 4; ++c) {
        std::vector<std::size_t> count(3, 0);
        for (std::size_t i = 0; i < y.size(); ++i)
            if (y[i] == c) ++count[f[i]];
        CHECK(*std::max_element(count.begin(), count.end()) - *std::min_element(count.begin(), count.end()) <= 1);
    }
    y.push_back(7);  // one sample of class 7
    CHECK_THROWS_WITH_AS(ev::stratified_folds(y, 3, 0), doctest::Contains("class 7 has 1 samples, fewer than the 3 folds"),
                         ssl::value_error);
}

TEST_CASE("linear_svm: results do not depend on the thread count") {
    const auto d = make_blobs(4, 12, 30, 10, 1.0, 1.0, 3);
    const std::size_t before = ssl::num_threads();
    ssl::set_num_threads(1);
    const auto a = ev::svm_cross_validate(d.train, d.train_y);
    const auto fa = ev::linear_svm_fit(d.train, d.train_y, {.cost = 0.3});
    ssl::set_num_threads(std::max<std::size_t>(before, 2));
    const auto b = ev::svm_cross_validate(d.train, d.train_y);
    const auto fb = ev::linear_svm_fit(d.train, d.train_y, {.cost = 0.3});
    ssl::set_num_threads(before);
    CHECK(a.top1 == b.top1);
    CHECK(a.best == b.best);
    CHECK(fa.model.weight() == fb.model.weight());
}

TEST_CASE("linear_svm: bad input is named") {
    const auto d = make_blobs(3, 4, 6, 2, 3.0, 0.1, 4);
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(tensor<float>({0, 4}), std::vector<std::int64_t>{}),
                         doctest::Contains("empty train features"), ssl::shape_error);
    auto bad_y = d.train_y;
    bad_y[3] = -2;
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(d.train, bad_y), doctest::Contains("train label -2 at index 3 is negative"),
                         ssl::value_error);
    auto test_y = d.test_y;
    test_y[1] = -1;
    CHECK_THROWS_WITH_AS(ev::linear_svm_evaluate(d.train, d.train_y, d.test, test_y),
                         doctest::Contains("test label -1 at index 1"), ssl::value_error);
    auto nan_x = d.train.clone();
    nan_x.at(5, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(nan_x, d.train_y), doctest::Contains("train feature (5, 2) is nan"),
                         ssl::value_error);
    auto inf_test = d.test.clone();
    inf_test.at(1, 0) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(d.train, d.train_y).model.predict(inf_test),
                         doctest::Contains("scored feature (1, 0) is inf"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(d.train, std::vector<std::int64_t>(5, 0)),
                         doctest::Contains("5 train labels for 18 feature rows"), ssl::shape_error);
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(d.train, d.train_y, {.cost = 0}), doctest::Contains("cost C must be finite and > 0"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::svm_cross_validate(d.train, d.train_y, {.costs = {}}), doctest::Contains("cost grid is empty"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::linear_svm_evaluate(d.train, d.train_y, tensor<float>({2, 3}), d.test_y),
                         doctest::Contains("feature dimensions differ"), ssl::shape_error);
    CHECK_THROWS_WITH_AS(ev::linear_svm_fit(d.train, d.train_y).model.predict(tensor<float>({2, 3})),
                         doctest::Contains("for a model of dimension 4"), ssl::shape_error);
}

}  // namespace test_linear_svm
