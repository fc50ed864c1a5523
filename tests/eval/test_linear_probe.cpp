#include <doctest/doctest.h>

#include <ssl/core/rng.hpp>
#include <ssl/eval.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace test_linear_probe {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::eval::linear_probe;

namespace {

struct dataset {
    tensor<float> train, test;
    std::vector<std::int64_t> train_y, test_y;
};

// Gaussian blobs (std `noise`) around random centres of norm `spread`,
// shifted by an offset and scaled per dimension so standardization matters.
dataset make_blobs(std::size_t classes, std::size_t dim, std::size_t per_train, std::size_t per_test, double spread,
                   double noise, std::uint64_t seed) {
    ssl::philox g(seed, 3);
    std::vector<std::vector<double>> centre(classes, std::vector<double>(dim));
    for (auto& c : centre) {
        double s = 0;
        for (auto& v : c) v = g.normal(), s += v * v;
        for (auto& v : c) v *= spread / std::sqrt(s);
    }
    dataset out;
    auto fill = [&](tensor<float>& x, std::vector<std::int64_t>& y, std::size_t per) {
        x = tensor<float>({classes * per, dim});
        for (std::size_t i = 0; i < classes * per; ++i) {
            const std::size_t c = i % classes;
            y.push_back(static_cast<std::int64_t>(c));
            for (std::size_t j = 0; j < dim; ++j)
                x.at(i, j) = static_cast<float>((centre[c][j] + noise * g.normal()) * (1.0 + static_cast<double>(j)) + 5.0);
        }
    };
    fill(out.train, out.train_y, per_train);
    fill(out.test, out.test_y, per_test);
    return out;
}

}  // namespace

TEST_CASE("linear_probe: linearly separable data is fitted perfectly and converges") {
    auto d = make_blobs(4, 6, 50, 30, 8.0, 0.5, 1);
    auto r = linear_probe(d.train, d.train_y, d.test, d.test_y);
    CHECK(r.converged);
    CHECK(r.train_top1 == 1.0);
    CHECK(r.test_top1 == 1.0);
    CHECK(r.iterations > 0);
    CHECK(r.iterations <= 500);
    CHECK(r.loss < 0.1);
    CHECK(r.classifier.num_outputs() == 4);
    CHECK(r.classifier.dim() == 6);
    CHECK(r.classifier.predict(d.test) == d.test_y);
    // the classifier standardizes with the train statistics it stores
    double m0 = 0;
    for (std::size_t i = 0; i < d.train.dim(0); ++i) m0 += d.train.at(i, 0);
    CHECK(r.classifier.mean()[0] == doctest::Approx(m0 / static_cast<double>(d.train.dim(0))).epsilon(1e-12));
    CHECK(r.classifier.scale()[5] > r.classifier.scale()[0]);
    CHECK(r.stop == ssl::eval::probe_stop::gradient_tolerance);
    // double features give the same fit (the probe computes in double either way)
    auto rd = linear_probe(ssl::cast<double>(d.train), d.train_y, ssl::cast<double>(d.test), d.test_y);
    CHECK(rd.iterations == r.iterations);
    CHECK(rd.loss == doctest::Approx(r.loss).epsilon(1e-12));
}

TEST_CASE("linear_probe: known optimum of a 1-d, 2-class problem") {
    // x = 0: 5 samples, one of class 1;  x = 3: 3 samples, two of class 1.
    // Not separable, so with weight_decay = 0 the maximum-likelihood logistic
    // fit exists and (two distinct x values, two parameters of the logit
    // difference) reproduces the empirical frequencies exactly:
    //   P(1 | 0) = 1/5  -> logit difference log(1/4) = -2 log 2
    //   P(1 | 3) = 2/3  -> logit difference log 2
    // The difference is linear in x: -2 log 2 + x log 2, zero at x = 2,
    // which is the decision boundary.
    auto x = tensor<double>::from({8, 1}, {0, 0, 0, 0, 0, 3, 3, 3});
    std::vector<std::int64_t> y{1, 0, 0, 0, 0, 1, 1, 0};
    auto r = linear_probe(x, y, x, y, {.weight_decay = 0, .max_iterations = 1000, .tolerance = 1e-10});
    CHECK(r.converged);
    auto probe = tensor<double>::from({5, 1}, {0, 3, 2, 1.99, 2.01});
    auto l = r.classifier.logits(probe);
    auto diff = [&](std::size_t i) { return l.at(i, 1) - l.at(i, 0); };
    CHECK(diff(0) == doctest::Approx(-2 * std::log(2.0)).epsilon(1e-7));
    CHECK(diff(1) == doctest::Approx(std::log(2.0)).epsilon(1e-7));
    CHECK(diff(2) == doctest::Approx(0).scale(1e-7));
    auto pred = r.classifier.predict(probe);
    CHECK(pred[0] == 0);
    CHECK(pred[1] == 1);
    CHECK(pred[3] == 0);  // x = 1.99, just left of the boundary
    CHECK(pred[4] == 1);  // x = 2.01
    // the minimum of the mean negative log likelihood:
    //   -(1/8) [log(1/5) + 4 log(4/5) + 2 log(2/3) + log(1/3)]
    const double nll = -(std::log(0.2) + 4 * std::log(0.8) + 2 * std::log(2.0 / 3) + std::log(1.0 / 3)) / 8;
    CHECK(r.loss == doctest::Approx(nll).epsilon(1e-10));
    CHECK(r.train_top1 == doctest::Approx(6.0 / 8));  // predicts 0 at x = 0 and 1 at x = 3
}

TEST_CASE("linear_probe: convergence flag and iteration limit") {
    auto d = make_blobs(3, 5, 40, 10, 3.0, 1.0, 2);
    auto one = linear_probe(d.train, d.train_y, d.test, d.test_y, {.max_iterations = 1});
    CHECK_FALSE(one.converged);
    CHECK(one.stop == ssl::eval::probe_stop::max_iterations);
    CHECK(one.iterations == 1);
    auto none = linear_probe(d.train, d.train_y, d.test, d.test_y, {.max_iterations = 0});
    CHECK_FALSE(none.converged);
    CHECK(none.iterations == 0);
    CHECK(none.loss == doctest::Approx(std::log(3.0)));  // W = 0, b = 0: uniform prediction
    auto full = linear_probe(d.train, d.train_y, d.test, d.test_y);
    CHECK(full.converged);
    CHECK(full.loss < one.loss);
    CHECK(full.gradient_norm < one.gradient_norm);
    // tolerance 0 cannot be met: the loop ends when f stops decreasing in double
    auto exact = linear_probe(d.train, d.train_y, d.test, d.test_y, {.max_iterations = 100000, .tolerance = 0});
    CHECK_FALSE(exact.converged);
    CHECK(exact.stop == ssl::eval::probe_stop::no_progress);
    CHECK(exact.iterations < 100000);
    CHECK(exact.loss <= full.loss);
    CHECK(exact.gradient_norm < 1e-6 * one.gradient_norm);
    // a single class: the gradient is zero at the start, nothing to do
    std::vector<std::int64_t> same(d.train_y.size(), 2);
    auto trivial = linear_probe(d.train, same, d.test, std::vector<std::int64_t>(d.test_y.size(), 2));
    CHECK(trivial.converged);
    CHECK(trivial.iterations == 0);
    CHECK(trivial.test_top1 == 1.0);
}

TEST_CASE("linear_probe: classes missing from the train set, standardization invariance") {
    // labels {0, 3}: the classifier has two outputs and predicts only those labels
    auto d = make_blobs(2, 4, 30, 10, 6.0, 0.5, 3);
    for (auto& v : d.train_y) v *= 3;
    for (auto& v : d.test_y) v *= 3;
    auto r = linear_probe(d.train, d.train_y, d.test, d.test_y);
    CHECK(r.converged);
    CHECK(r.classifier.classes() == std::vector<std::int64_t>{0, 3});
    CHECK(r.test_top1 == 1.0);
    // affine changes of a dimension (same for train and test) do not change the probe
    auto d2 = make_blobs(3, 5, 30, 20, 2.0, 1.0, 4);
    auto a = linear_probe(d2.train, d2.train_y, d2.test, d2.test_y);
    auto t2 = d2.train.clone(), s2 = d2.test.clone();
    for (std::size_t i = 0; i < t2.dim(0); ++i) t2.at(i, 2) = t2.at(i, 2) * 100 - 40;
    for (std::size_t i = 0; i < s2.dim(0); ++i) s2.at(i, 2) = s2.at(i, 2) * 100 - 40;
    auto b = linear_probe(t2, d2.train_y, s2, d2.test_y);
    CHECK(a.classifier.predict(d2.test) == b.classifier.predict(s2));
    CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-6));
}

TEST_CASE("linear_probe: bad input") {
    auto x = tensor<float>::full({4, 3}, 1.f);
    std::vector<std::int64_t> y{0, 1, 0, 1};
    CHECK_NOTHROW(linear_probe(x, y, x, y));
    CHECK_THROWS_AS(linear_probe(x, y, tensor<float>::full({4, 2}, 1.f), y), ssl::shape_error);
    CHECK_THROWS_AS(linear_probe(x, std::vector<std::int64_t>{0, 1}, x, y), ssl::shape_error);
    CHECK_THROWS_AS(linear_probe(x, y, x, std::vector<std::int64_t>{0}), ssl::shape_error);
    CHECK_THROWS_AS(linear_probe(tensor<float>::zeros({0, 3}), std::vector<std::int64_t>{}, x, y), ssl::shape_error);
    CHECK_THROWS_AS(linear_probe(x, y, tensor<float>::zeros({0, 3}), std::vector<std::int64_t>{}), ssl::shape_error);
    CHECK_THROWS_AS(linear_probe(tensor<float>::zeros({12}), y, x, y), ssl::shape_error);
    CHECK_THROWS_AS(linear_probe(x, std::vector<std::int64_t>{0, -1, 0, 1}, x, y), ssl::value_error);
    CHECK_THROWS_AS(linear_probe(x, y, x, std::vector<std::int64_t>{0, 1, -2, 1}), ssl::value_error);
    CHECK_THROWS_AS(linear_probe(x, y, x, y, {.weight_decay = -1}), ssl::value_error);
    CHECK_THROWS_AS(linear_probe(x, y, x, y, {.tolerance = NAN}), ssl::value_error);
    CHECK_THROWS_AS(linear_probe(x, y, x, y, {.history = 0}), ssl::value_error);
    auto nan = x.clone();
    nan[5] = NAN;
    CHECK_THROWS_AS(linear_probe(nan, y, x, y), ssl::value_error);
    // the trained classifier checks what it is given
    auto r = linear_probe(x, y, x, y);
    CHECK_THROWS_AS(r.classifier.predict(tensor<float>::zeros({2, 4})), ssl::shape_error);
    CHECK_THROWS_AS(ssl::eval::linear_classifier().predict(x), ssl::shape_error);
    // the objective checks its labels
    CHECK_THROWS_AS(ssl::eval::softmax_regression<double>(ssl::cast<double>(x), y, 1, 0.0), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("linear probe objective gradcheck (W and b), one chunk and several") {
        for (std::size_t n : {std::size_t{7}, 2 * ssl::eval::softmax_regression<double>::chunk_rows + 5}) {
            for (double wd : {0.0, 0.3}) {
                const std::size_t d = n < 100 ? 3 : 2, k = 4;
                auto x = ssl::testing::random_tensor({n, d}, 5 + n, -2, 2);
                std::vector<std::int64_t> y(n);
                for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<std::int64_t>((i * 7 + i / 3) % k);
                ssl::eval::softmax_regression<double> f(x, y, k, wd);
                auto theta = ssl::testing::random_tensor({f.num_parameters()}, 9, -1, 1);
                std::vector<double> g(f.num_parameters()), scratch(f.num_parameters());
                f(theta.span(), g);
                ssl::testing::gradcheck_report rep;
                ssl::testing::check_entries(rep, "theta", theta.data(), g.data(), theta.numel(),
                                            [&] { return f(theta.span(), scratch); }, {});
                INFO("n ", n, ", weight decay ", wd);
                CHECK_MESSAGE(rep.ok, rep.str());
                CHECK(rep.checked == f.num_parameters());
            }
        }
    }
}

}  // namespace test_linear_probe
