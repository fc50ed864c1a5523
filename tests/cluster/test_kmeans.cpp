#include <doctest/doctest.h>

#include <ssl/cluster/kmeans.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/core/thread_pool.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <vector>

namespace test_kmeans {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::cluster::kmeans;
using ssl::cluster::kmeans_assign;
using ssl::cluster::kmeans_init;

namespace {

struct blobs {
    tensor<float> x;
    std::vector<std::int64_t> truth;
};

// `c` Gaussian blobs in `d` dims, centres of norm `radius` at random directions,
// noise `sigma` per coordinate, points in a shuffled order.
blobs make_blobs(std::size_t c, std::size_t per, std::size_t d, double radius, double sigma, std::uint64_t seed) {
    ssl::philox g(seed, 3);
    std::vector<std::vector<double>> centre(c, std::vector<double>(d));
    for (auto& v : centre) {
        double s = 0;
        for (auto& e : v) e = g.normal(), s += e * e;
        for (auto& e : v) e *= radius / std::sqrt(s);
    }
    const std::size_t n = c * per;
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    for (std::size_t i = n; i-- > 1;) std::swap(order[i], order[static_cast<std::size_t>(g.below(i + 1))]);
    blobs b{tensor<float>({n, d}), std::vector<std::int64_t>(n)};
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t cl = order[i] % c;
        b.truth[i] = static_cast<std::int64_t>(cl);
        for (std::size_t j = 0; j < d; ++j) b.x.at(i, j) = static_cast<float>(centre[cl][j] + sigma * g.normal());
    }
    return b;
}

tensor<float> random_points(std::size_t n, std::size_t d, std::uint64_t seed) {
    ssl::philox g(seed, 5);
    tensor<float> x({n, d});
    for (auto& v : x) v = static_cast<float>(g.normal());
    return x;
}

// True when a and b are the same partition (equal up to a relabelling).
bool same_partition(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
    if (a.size() != b.size()) return false;
    std::map<std::int64_t, std::int64_t> ab, ba;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto [it, fresh] = ab.emplace(a[i], b[i]);
        if (!fresh && it->second != b[i]) return false;
        auto [jt, fresh2] = ba.emplace(b[i], a[i]);
        if (!fresh2 && jt->second != a[i]) return false;
    }
    return true;
}

// sum_i |x_i - mean of i's group|^2 in double.
double partition_objective(const tensor<float>& x, const std::vector<std::int64_t>& labels, std::size_t k) {
    const std::size_t n = x.dim(0), d = x.dim(1);
    std::vector<double> mean(k * d, 0.0), cnt(k, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<std::size_t>(labels[i]);
        cnt[c] += 1;
        for (std::size_t j = 0; j < d; ++j) mean[c * d + j] += x.at(i, j);
    }
    for (std::size_t c = 0; c < k; ++c)
        for (std::size_t j = 0; j < d; ++j) mean[c * d + j] /= std::max(cnt[c], 1.0);
    double obj = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) {
            const double e = x.at(i, j) - mean[static_cast<std::size_t>(labels[i]) * d + j];
            obj += e * e;
        }
    return obj;
}

double sqdist(const tensor<float>& x, std::size_t i, const tensor<float>& c, std::size_t j) {
    const std::size_t d = x.dim(1);
    const float* a = x.data() + i * d;
    const float* b = c.data() + j * d;
    double s = 0;
    for (std::size_t t = 0; t < d; ++t) {
        const double e = static_cast<double>(a[t]) - b[t];
        s += e * e;
    }
    return s;
}

bool bitwise_equal(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

struct thread_guard {
    std::size_t saved = ssl::num_threads();
    ~thread_guard() { ssl::set_num_threads(saved); }
};

}  // namespace

TEST_CASE("kmeans: well-separated blobs are recovered exactly (k-means++ and random restarts)") {
    auto b = make_blobs(8, 40, 16, 20.0, 0.5, 1);
    const double truth_obj = partition_objective(b.x, b.truth, 8);
    SUBCASE("k-means++") {
        auto r = kmeans(b.x, {.k = 8, .seed = 3, .init = kmeans_init::kmeans_plus_plus});
        CHECK(same_partition(r.assignments, b.truth));
        CHECK(r.objective == doctest::Approx(truth_obj).epsilon(1e-9));
        CHECK(r.reseeded == 0);
        CHECK(r.centroids.shape() == ssl::shape_t{8, 16});
        CHECK(r.cluster_sizes == std::vector<std::int64_t>(8, 40));
        // converged to a fixed point long before 20 iterations: the loop stopped there
        CHECK(r.iterations < 20);
        CHECK(r.objectives.size() == r.iterations + 1);
        CHECK(r.objectives.back() == r.objective);
    }
    SUBCASE("random sampling, best of 10 restarts") {
        auto r = kmeans(b.x, {.k = 8, .restarts = 10, .seed = 5});
        CHECK(same_partition(r.assignments, b.truth));
        CHECK(r.objective == doctest::Approx(truth_obj).epsilon(1e-9));
    }
    // the centroids are the cluster means
    auto r = kmeans(b.x, {.k = 8, .seed = 3, .init = kmeans_init::kmeans_plus_plus});
    for (std::size_t c = 0; c < 8; ++c)
        for (std::size_t j = 0; j < 16; ++j) {
            double m = 0;
            for (std::size_t i = 0; i < b.x.dim(0); ++i)
                if (r.assignments[i] == static_cast<std::int64_t>(c)) m += b.x.at(i, j);
            CHECK(r.centroids.at(c, j) == doctest::Approx(m / 40).epsilon(1e-5));
        }
}

TEST_CASE("kmeans: assignments are the nearest centroids and the objective is their exact sum") {
    auto x = random_points(3000, 8, 7);
    // k > 1024 exercises the tiling over centroids, 3000 rows the tiling over points
    auto r = kmeans(x, {.k = 1100, .iterations = 3, .seed = 1});
    double obj = 0;
    for (std::size_t i = 0; i < x.dim(0); ++i) {
        const double mine = sqdist(x, i, r.centroids, static_cast<std::size_t>(r.assignments[i]));
        double best = std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < 1100; ++c) best = std::min(best, sqdist(x, i, r.centroids, c));
        CHECK(mine <= best + 1e-4 * (1 + best));  // float GEMM distances: near-ties may go either way
        obj += mine;
    }
    CHECK(r.objective == doctest::Approx(obj).epsilon(1e-10));
    // kmeans_assign gives the same
    auto a = kmeans_assign(x, r.centroids);
    CHECK(a.assignments == r.assignments);
    CHECK(a.objective == r.objective);
    // ties go to the lower centroid index
    auto pts = tensor<float>::from({2, 2}, {0, 0, 2, 0});
    auto cen = tensor<float>::from({3, 2}, {1, 0, 1, 0, 5, 5});  // centroids 0 and 1 coincide
    CHECK(kmeans_assign(pts, cen).assignments == std::vector<std::int64_t>{0, 0});
}

TEST_CASE("kmeans: Lloyd iterations never raise the objective") {
    auto x = random_points(2000, 12, 9);
    auto r = kmeans(x, {.k = 30, .iterations = 15, .seed = 2});
    REQUIRE(r.objectives.size() >= 2);
    for (std::size_t t = 1; t < r.objectives.size(); ++t)
        CHECK(r.objectives[t] <= r.objectives[t - 1] * (1 + 1e-12));
    CHECK(r.objective < r.objectives.front());
    // tolerance: stop as soon as an iteration gains less than 10 %
    auto early = kmeans(x, {.k = 30, .iterations = 15, .seed = 2, .tolerance = 0.1});
    CHECK(early.iterations < 15);
    CHECK(early.objectives.size() == early.iterations + 1);
    const auto& o = early.objectives;
    CHECK(o[o.size() - 2] - o.back() <= 0.1 * o[o.size() - 2]);
    for (std::size_t t = 1; t + 1 < o.size(); ++t) CHECK(o[t - 1] - o[t] > 0.1 * o[t - 1]);
}

TEST_CASE("kmeans: an empty cluster is re-seeded by splitting the largest one") {
    // three blobs A (-10, 0), B (10, 0), C (0, 30); initial centroids: the A/B midpoint, C, and a
    // point far from everything, which gets no point in the first assignment
    ssl::philox g(4, 4);
    tensor<float> x({90, 2});
    std::vector<std::int64_t> truth(90);
    const float cx[3] = {-10, 10, 0}, cy[3] = {0, 0, 30};
    for (std::size_t i = 0; i < 90; ++i) {
        truth[i] = static_cast<std::int64_t>(i % 3);
        x.at(i, 0) = cx[i % 3] + static_cast<float>(0.5 * g.normal());
        x.at(i, 1) = cy[i % 3] + static_cast<float>(0.5 * g.normal());
    }
    auto init = tensor<float>::from({3, 2}, {0, 0, 0, 30, 500, -500});
    auto first = kmeans_assign(x, init);
    CHECK(std::count(first.assignments.begin(), first.assignments.end(), 2) == 0);  // really empty
    auto r = kmeans(x, init, {.k = 3});
    CHECK(r.reseeded == 1);
    CHECK(same_partition(r.assignments, truth));
    for (auto s : r.cluster_sizes) CHECK(s == 30);
    CHECK(r.objective == doctest::Approx(partition_objective(x, truth, 3)).epsilon(1e-9));

    SUBCASE("more clusters than distinct points: the empty ones stay empty, nothing breaks") {
        // 12 points at 3 distinct positions, k = 5: two clusters must stay empty, and a
        // cluster of coinciding points is not split (its halves would tie)
        tensor<float> y({12, 3});
        for (std::size_t i = 0; i < 12; ++i)
            for (std::size_t j = 0; j < 3; ++j) y.at(i, j) = static_cast<float>((i % 3) * 10 + j);
        for (std::uint64_t seed = 0; seed < 4; ++seed) {
            auto q = kmeans(y, {.k = 5, .iterations = 6, .seed = seed});
            std::size_t nonempty = 0;
            std::int64_t total = 0;
            for (auto s : q.cluster_sizes) nonempty += s > 0, total += s;
            CHECK(nonempty == 3);
            CHECK(total == 12);
            CHECK(q.objective < 1e-9);  // every point sits on a centroid
        }
    }
    SUBCASE("random init on data with heavy duplicates ends with no empty cluster") {
        // 60 copies of one point plus 20 distinct points, k = 10: the sampled init
        // almost surely holds duplicate centroids, so the first update finds empty clusters
        tensor<float> y({80, 4});
        ssl::philox h(8, 8);
        for (std::size_t i = 0; i < 80; ++i)
            for (std::size_t j = 0; j < 4; ++j) y.at(i, j) = i < 60 ? 1.0f : static_cast<float>(5 * h.normal());
        auto q = kmeans(y, {.k = 10, .seed = 2});
        CHECK(q.reseeded >= 1);
        for (auto s : q.cluster_sizes) CHECK(s > 0);
    }
}

TEST_CASE("kmeans: restarts keep the best objective") {
    auto x = random_points(1500, 6, 11);
    auto r = kmeans(x, {.k = 25, .iterations = 8, .restarts = 5, .seed = 9});
    REQUIRE(r.restart_objectives.size() == 5);
    const auto best = std::min_element(r.restart_objectives.begin(), r.restart_objectives.end());
    CHECK(r.objective == *best);
    CHECK(r.restart == static_cast<std::size_t>(best - r.restart_objectives.begin()));
    CHECK(std::set<double>(r.restart_objectives.begin(), r.restart_objectives.end()).size() > 1);
    // restart 0 is the run with restarts = 1
    auto one = kmeans(x, {.k = 25, .iterations = 8, .restarts = 1, .seed = 9});
    CHECK(one.objective == r.restart_objectives[0]);
    CHECK(kmeans_assign(x, r.centroids).objective == r.objective);
}

TEST_CASE("kmeans: deterministic for a seed, and the same at any thread count") {
    thread_guard guard;
    auto x = random_points(5000, 20, 13);  // 20 tiles of 256 points
    const ssl::cluster::kmeans_config cfg{.k = 40, .iterations = 6, .restarts = 2, .seed = 4};
    ssl::set_num_threads(2);
    auto a = kmeans(x, cfg);
    auto b = kmeans(x, cfg);
    CHECK(bitwise_equal(a.centroids, b.centroids));
    CHECK(a.assignments == b.assignments);
    CHECK(a.objectives == b.objectives);
    for (std::size_t t : {1, 3}) {
        ssl::set_num_threads(t);
        auto c = kmeans(x, cfg);
        CHECK(bitwise_equal(a.centroids, c.centroids));
        CHECK(a.assignments == c.assignments);
        CHECK(a.objectives == c.objectives);
    }
    ssl::set_num_threads(3);
    auto pp1 = kmeans(x, {.k = 40, .iterations = 3, .seed = 4, .init = kmeans_init::kmeans_plus_plus});
    ssl::set_num_threads(1);
    auto pp2 = kmeans(x, {.k = 40, .iterations = 3, .seed = 4, .init = kmeans_init::kmeans_plus_plus});
    CHECK(bitwise_equal(pp1.centroids, pp2.centroids));
    // another seed gives another result
    auto other = kmeans(x, {.k = 40, .iterations = 6, .restarts = 2, .seed = 5});
    CHECK_FALSE(bitwise_equal(a.centroids, other.centroids));
}

TEST_CASE("kmeans: spherical centroids have unit norm") {
    auto b = make_blobs(5, 30, 10, 1.0, 0.05, 17);
    for (std::size_t i = 0; i < b.x.dim(0); ++i) {  // points on the unit sphere
        double s = 0;
        for (std::size_t j = 0; j < 10; ++j) s += b.x.at(i, j) * b.x.at(i, j);
        for (std::size_t j = 0; j < 10; ++j) b.x.at(i, j) = static_cast<float>(b.x.at(i, j) / std::sqrt(s));
    }
    auto r = kmeans(b.x, {.k = 5, .seed = 1, .init = kmeans_init::kmeans_plus_plus, .spherical = true});
    for (std::size_t c = 0; c < 5; ++c) {
        double s = 0;
        for (std::size_t j = 0; j < 10; ++j) s += r.centroids.at(c, j) * r.centroids.at(c, j);
        CHECK(std::sqrt(s) == doctest::Approx(1.0).epsilon(1e-6));
    }
    CHECK(same_partition(r.assignments, b.truth));
}

TEST_CASE("kmeans: double features work too") {
    auto xf = random_points(400, 5, 21);
    tensor<double> x({400, 5});
    for (std::size_t i = 0; i < xf.numel(); ++i) x[i] = xf[i];
    auto r = kmeans(x, {.k = 7, .seed = 1});
    CHECK(r.centroids.shape() == ssl::shape_t{7, 5});
    CHECK(r.assignments.size() == 400);
}

TEST_CASE("kmeans: bad input is rejected") {
    auto x = random_points(10, 3, 1);
    CHECK_THROWS_AS(kmeans(x, {.k = 0}), ssl::value_error);
    CHECK_THROWS_AS(kmeans(x, {.k = 11}), ssl::value_error);
    CHECK_THROWS_AS(kmeans(x, {.k = 2, .restarts = 0}), ssl::value_error);
    CHECK_THROWS_AS(kmeans(x, {.k = 2, .tolerance = -1}), ssl::value_error);
    auto bad = x.clone();
    bad.at(7, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(kmeans(bad, {.k = 2}), doctest::Contains("feature (7, 1)"), ssl::value_error);
    bad.at(7, 1) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(kmeans(bad, {.k = 2}), ssl::value_error);
    CHECK_THROWS_AS(kmeans(tensor<float>({30}), {.k = 2}), ssl::shape_error);
    CHECK_THROWS_AS(kmeans(tensor<float>({2, 3, 5}), {.k = 2}), ssl::shape_error);
    CHECK_THROWS_AS(kmeans(tensor<float>({0, 3}), {.k = 1}), ssl::shape_error);
    CHECK_THROWS_AS(kmeans(x, tensor<float>({3, 2}), {.k = 3}), ssl::shape_error);
    CHECK_THROWS_AS(kmeans(x, tensor<float>({3, 3}, 0.0f), {.k = 3, .restarts = 2}), ssl::value_error);
    CHECK_THROWS_AS(kmeans_assign(x, tensor<float>({3, 4})), ssl::shape_error);
}

}  // namespace test_kmeans
