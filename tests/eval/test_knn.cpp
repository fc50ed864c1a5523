#include <doctest/doctest.h>

#include <ssl/core/rng.hpp>
#include <ssl/eval.hpp>

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace test_knn {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::eval::knn_evaluate;
using ssl::eval::knn_predict;

namespace {

struct clusters {
    tensor<float> train, test;
    std::vector<std::int64_t> train_y, test_y;
};

// `classes` Gaussian clusters around random centres of norm 10 (noise 0.5 per
// coordinate): after normalization, same-class cosines are ~0.99 and
// other-class ones near 0.
clusters make_clusters(std::size_t classes, std::size_t dim, std::size_t per_train, std::size_t per_test,
                       std::uint64_t seed) {
    ssl::philox g(seed, 1);
    std::vector<std::vector<double>> centre(classes, std::vector<double>(dim));
    for (auto& c : centre) {
        double s = 0;
        for (auto& v : c) v = g.normal(), s += v * v;
        for (auto& v : c) v *= 10 / std::sqrt(s);
    }
    clusters out;
    auto fill = [&](tensor<float>& x, std::vector<std::int64_t>& y, std::size_t per) {
        x = tensor<float>({classes * per, dim});
        for (std::size_t i = 0; i < classes * per; ++i) {
            const std::size_t c = i % classes;
            y.push_back(static_cast<std::int64_t>(c));
            for (std::size_t j = 0; j < dim; ++j) x.at(i, j) = static_cast<float>(centre[c][j] + 0.5 * g.normal());
        }
    };
    fill(out.train, out.train_y, per_train);
    fill(out.test, out.test_y, per_test);
    return out;
}

}  // namespace

TEST_CASE("knn: well-separated clusters are classified perfectly") {
    auto d = make_clusters(8, 32, 60, 25, 1);
    auto r = knn_evaluate(d.train, d.train_y, d.test, d.test_y);  // k = 200, T = 0.1
    CHECK(r.top1 == 1.0);
    REQUIRE(r.top5.has_value());
    CHECK(*r.top5 == 1.0);
    CHECK(r.k == 200);
    CHECK(r.num_classes == 8);
    CHECK(r.predictions == d.test_y);
    CHECK(knn_predict(d.train, d.train_y, d.test) == d.test_y);
}

TEST_CASE("knn: the exp(s / T) weighting can overrule the majority") {
    // Query q = (1, 0). Train: one class-1 point at cos 1, three class-0 points at cos 0.6.
    // k = 4, T = 0.1: votes class 1 = e^{1/0.1} = 22026, class 0 = 3 e^{0.6/0.1} = 1210 -> class 1.
    // T = 100 (almost a plain majority): class 1 = e^{0.01} = 1.01, class 0 = 3 e^{0.006} = 3.02 -> class 0.
    auto train = tensor<float>::from({4, 2}, {1, 0, 0.6f, 0.8f, 0.6f, -0.8f, 1.2f, 1.6f});
    std::vector<std::int64_t> y{1, 0, 0, 0};
    auto q = tensor<float>::from({1, 2}, {2, 0});
    std::vector<std::int64_t> truth{1};
    auto sharp = knn_evaluate(train, y, q, truth, {.k = 4, .temperature = 0.1});
    CHECK(sharp.predictions[0] == 1);
    CHECK(sharp.top1 == 1.0);
    CHECK_FALSE(sharp.top5.has_value());  // 2 classes
    auto flat = knn_evaluate(train, y, q, truth, {.k = 4, .temperature = 100});
    CHECK(flat.predictions[0] == 0);
    CHECK(flat.top1 == 0.0);
    // k = 1 is the nearest neighbour, whatever T
    CHECK(knn_predict(train, y, q, {.k = 1, .temperature = 100})[0] == 1);
}

TEST_CASE("knn: k larger than the train set is clamped") {
    auto d = make_clusters(3, 8, 4, 5, 2);  // 12 train samples
    auto big = knn_evaluate(d.train, d.train_y, d.test, d.test_y, {.k = 1000});
    auto all = knn_evaluate(d.train, d.train_y, d.test, d.test_y, {.k = 12});
    CHECK(big.k == 12);
    CHECK(big.predictions == all.predictions);
    CHECK(big.top1 == all.top1);
    CHECK(big.top1 == 1.0);
}

TEST_CASE("knn: results do not depend on the query block size; top-5 by hand") {
    auto d = make_clusters(6, 16, 20, 40, 3);
    // Mix the clusters so that mistakes happen: add strong shared noise.
    ssl::philox g(9, 2);
    for (auto& v : d.train) v += static_cast<float>(8 * g.normal());
    for (auto& v : d.test) v += static_cast<float>(8 * g.normal());
    auto a = knn_evaluate(d.train, d.train_y, d.test, d.test_y, {.k = 10});
    auto b = knn_evaluate(d.train, d.train_y, d.test, d.test_y, {.k = 10, .block_size = 7});
    auto c = knn_evaluate(d.train, d.train_y, d.test, d.test_y, {.k = 10, .block_size = 1});
    CHECK(a.predictions == b.predictions);
    CHECK(a.predictions == c.predictions);
    CHECK(a.top1 == b.top1);
    REQUIRE(a.top5.has_value());
    CHECK(*a.top5 == *b.top5);
    CHECK(*a.top5 >= a.top1);
    CHECK(a.top1 < 1.0);  // the noise made it hard

    // Top-5 by hand: 6 classes, query votes for 1 (weight e^10), 2, 3, 4, 5 (each e^{0.5 * 10}),
    // class 0 gets none: it ranks last (6th), so label 0 is a top-5 miss, label 5 a hit.
    auto train = tensor<float>::from({5, 2}, {1, 0, 0.5f, 0.8660254f, 0.5f, 0.8660254f, 0.5f, -0.8660254f,
                                              0.5f, -0.8660254f});
    std::vector<std::int64_t> ty{1, 2, 3, 4, 5};
    auto q = tensor<float>::from({2, 2}, {1, 0, 1, 0});
    std::vector<std::int64_t> qy{0, 5};
    auto r = knn_evaluate(train, ty, q, qy, {.k = 5});
    CHECK(r.predictions == std::vector<std::int64_t>{1, 1});
    CHECK(r.top1 == 0.0);
    REQUIRE(r.top5.has_value());
    CHECK(*r.top5 == 0.5);
}

TEST_CASE("knn: equals a naive sort-everything implementation (several train tiles)") {
    const std::size_t nt = 3000, nq = 60, d = 8, classes = 7, k = 50;
    const double temp = 0.07;
    ssl::philox g(21, 0);
    tensor<double> train({nt, d}), q({nq, d});
    for (auto& v : train) v = g.normal();
    for (auto& v : q) v = g.normal();
    std::vector<std::int64_t> ty(nt), qy(nq);
    for (auto& y : ty) y = static_cast<std::int64_t>(g.below(classes));
    for (auto& y : qy) y = static_cast<std::int64_t>(g.below(classes));
    auto unit = [&](const tensor<double>& x, std::size_t i) {
        std::vector<double> u(d);
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += x.at(i, j) * x.at(i, j);
        for (std::size_t j = 0; j < d; ++j) u[j] = x.at(i, j) / std::sqrt(s);
        return u;
    };
    std::vector<std::vector<double>> train_unit(nt);
    for (std::size_t t = 0; t < nt; ++t) train_unit[t] = unit(train, t);
    std::size_t hits1 = 0, hits5 = 0;
    std::vector<std::int64_t> expected(nq);
    for (std::size_t i = 0; i < nq; ++i) {
        const auto u = unit(q, i);
        std::vector<std::pair<double, std::size_t>> sims;
        for (std::size_t t = 0; t < nt; ++t) {
            const auto& v = train_unit[t];
            double s = 0;
            for (std::size_t j = 0; j < d; ++j) s += u[j] * v[j];
            sims.emplace_back(-s, t);  // ascending: most similar first
        }
        std::sort(sims.begin(), sims.end());
        std::vector<double> votes(classes, 0.0);
        for (std::size_t r = 0; r < k; ++r) votes[static_cast<std::size_t>(ty[sims[r].second])] += std::exp(-sims[r].first / temp);
        std::vector<std::size_t> order(classes);
        for (std::size_t c = 0; c < classes; ++c) order[c] = c;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return votes[a] > votes[b]; });
        expected[i] = static_cast<std::int64_t>(order[0]);
        hits1 += order[0] == static_cast<std::size_t>(qy[i]);
        for (std::size_t r = 0; r < 5; ++r) hits5 += order[r] == static_cast<std::size_t>(qy[i]);
    }
    auto r = knn_evaluate(train, ty, q, qy, {.k = k, .temperature = temp});
    CHECK(r.predictions == expected);
    CHECK(r.top1 == doctest::Approx(static_cast<double>(hits1) / nq));
    REQUIRE(r.top5.has_value());
    CHECK(*r.top5 == doctest::Approx(static_cast<double>(hits5) / nq));
    CHECK(*r.top5 > r.top1);
}

TEST_CASE("knn: double features, given num_classes") {
    auto d = make_clusters(3, 8, 10, 10, 4);
    auto r = knn_evaluate(ssl::cast<double>(d.train), d.train_y, ssl::cast<double>(d.test), d.test_y,
                          {.k = 5, .num_classes = 7});
    CHECK(r.top1 == 1.0);
    CHECK(r.num_classes == 7);
    CHECK(r.top5.has_value());
}

TEST_CASE("knn: bad input") {
    auto train = tensor<float>::full({4, 3}, 1.f);
    auto test = tensor<float>::full({2, 3}, 1.f);
    std::vector<std::int64_t> y{0, 1, 2, 1}, ty{0, 1};
    CHECK_NOTHROW(knn_evaluate(train, y, test, ty));
    // feature dimensions differ
    CHECK_THROWS_AS(knn_evaluate(train, y, tensor<float>::full({2, 4}, 1.f), ty), ssl::shape_error);
    // empty sets
    CHECK_THROWS_AS(knn_evaluate(tensor<float>::zeros({0, 3}), std::vector<std::int64_t>{}, test, ty), ssl::shape_error);
    CHECK_THROWS_AS(knn_evaluate(train, y, tensor<float>::zeros({0, 3}), std::vector<std::int64_t>{}), ssl::shape_error);
    // rank
    CHECK_THROWS_AS(knn_evaluate(tensor<float>::zeros({12}), y, test, ty), ssl::shape_error);
    // label counts
    CHECK_THROWS_AS(knn_evaluate(train, std::vector<std::int64_t>{0, 1}, test, ty), ssl::shape_error);
    CHECK_THROWS_AS(knn_evaluate(train, y, test, std::vector<std::int64_t>{0}), ssl::shape_error);
    // labels out of range
    CHECK_THROWS_AS(knn_evaluate(train, std::vector<std::int64_t>{0, 1, -1, 1}, test, ty), ssl::value_error);
    CHECK_THROWS_AS(knn_evaluate(train, y, test, std::vector<std::int64_t>{0, -3}), ssl::value_error);
    CHECK_THROWS_AS(knn_evaluate(train, y, test, ty, {.num_classes = 2}), ssl::value_error);  // train label 2
    CHECK_THROWS_AS(knn_evaluate(train, std::vector<std::int64_t>{0, 1, 1, 1}, test, std::vector<std::int64_t>{0, 5},
                                 {.num_classes = 3}),
                    ssl::value_error);
    // bad config
    CHECK_THROWS_AS(knn_evaluate(train, y, test, ty, {.k = 0}), ssl::value_error);
    CHECK_THROWS_AS(knn_evaluate(train, y, test, ty, {.temperature = 0}), ssl::value_error);
    CHECK_THROWS_AS(knn_evaluate(train, y, test, ty, {.block_size = 0}), ssl::value_error);
    // non-finite features
    auto nan = test.clone();
    nan[4] = NAN;
    CHECK_THROWS_AS(knn_evaluate(train, y, nan, ty), ssl::value_error);
}

}  // namespace test_knn
