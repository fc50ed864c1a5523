#include <doctest/doctest.h>

#include <ssl/core/thread_pool.hpp>
#include <ssl/loss/info_nce.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <vector>

namespace test_info_nce {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::loss::info_nce;
using ssl::loss::info_nce_config;

namespace {

struct naive_result {
    double value = 0;
    std::size_t correct = 0;
};

// Full (B, K + 1) logits, -log softmax at index 0, plain loops (raw indexing:
// tensor::at checks its index and is slow in loops this long).
naive_result naive_info_nce(const tensor<double>& q, const tensor<double>& k, const tensor<double>& queue, double tau) {
    const std::size_t B = q.dim(0), d = q.dim(1), K = queue.dim(0);
    naive_result r;
    for (std::size_t i = 0; i < B; ++i) {
        const double* qi = q.data() + i * d;
        double n = 0;
        for (std::size_t j = 0; j < d; ++j) n += qi[j] * qi[j];
        n = std::sqrt(n);
        std::vector<double> l(K + 1, 0.0);
        for (std::size_t j = 0; j < d; ++j) l[0] += qi[j] / n * k[i * d + j];
        for (std::size_t m = 0; m < K; ++m)
            for (std::size_t j = 0; j < d; ++j) l[m + 1] += qi[j] / n * queue[m * d + j];
        double denom = 0, best_neg = -INFINITY;
        for (std::size_t m = 0; m <= K; ++m) denom += std::exp(l[m] / tau);
        for (std::size_t m = 1; m <= K; ++m) best_neg = std::max(best_neg, l[m]);
        r.value += -std::log(std::exp(l[0] / tau) / denom);
        r.correct += l[0] > best_neg;
    }
    r.value /= static_cast<double>(B);
    return r;
}

tensor<double> unit_rows(tensor<double> t) {
    const std::size_t n = t.dim(0), d = t.dim(1);
    for (std::size_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += t[i * d + j] * t[i * d + j];
        for (std::size_t j = 0; j < d; ++j) t[i * d + j] /= std::sqrt(s);
    }
    return t;
}

}  // namespace

TEST_CASE("info_nce: values and gradient by hand (tau = 1)") {
    // q = [(2,0), (0,1)] -> u0 = (1,0), u1 = (0,1); keys k0 = (1,0), k1 = (0,1);
    // queue Q = [(0,1), (-1,0)].
    //   row 0 logits: [u0.k0, u0.Q0, u0.Q1] = [1, 0, -1]:  l0 = -1 + log(e + 1 + 1/e)
    //   row 1 logits: [u1.k1, u1.Q0, u1.Q1] = [1, 1,  0]:  l1 = -1 + log(2e + 1)
    // Top-1: row 0 hits; row 1's positive ties with Q0: a miss.
    // Gradients, with p the softmax of each row and the 1/B = 1/2 of the mean:
    //   dL/du0 = (1/2) ((p00 - 1)(1,0) + p01 (0,1) + p02 (-1,0)); minus its
    //   component along u0 = (1,0) and divided by |q0| = 2: dL/dq0 = (0, p01 / 4).
    //   dL/du1 = (1/2) ((p10 - 1)(0,1) + p11 (0,1) + p12 (-1,0)); along u1 removed,
    //   |q1| = 1: dL/dq1 = (-p12 / 2, 0) with p12 = 1 / (2e + 1).
    const double e = std::exp(1.0);
    auto q = tensor<double>::from({2, 2}, {2, 0, 0, 1});
    auto k = tensor<double>::from({2, 2}, {1, 0, 0, 1});
    auto Q = tensor<double>::from({2, 2}, {0, 1, -1, 0});
    auto r = info_nce<double>({.temperature = 1.0})(q, k, Q);
    const double l0 = -1 + std::log(e + 1 + 1 / e), l1 = -1 + std::log(2 * e + 1);
    CHECK(r.value == doctest::Approx((l0 + l1) / 2).epsilon(1e-14));
    CHECK(r.correct == 1);
    CHECK(r.accuracy == 0.5);
    const double p01 = 1 / (e + 1 + 1 / e), p12 = 1 / (2 * e + 1);
    CHECK(std::abs(r.grad_q.at(0, 0)) < 1e-15);
    CHECK(r.grad_q.at(0, 1) == doctest::Approx(p01 / 4).epsilon(1e-14));
    CHECK(r.grad_q.at(1, 0) == doctest::Approx(-p12 / 2).epsilon(1e-14));
    CHECK(std::abs(r.grad_q.at(1, 1)) < 1e-15);
}

TEST_CASE("info_nce: temperature 0.2 by hand, MoCo v2's default") {
    // One query along its key, K = 3 negatives at cosines 0.5, 0, -0.5:
    //   L = -log( e^{1/0.2} / (e^{1/0.2} + e^{0.5/0.2} + e^0 + e^{-0.5/0.2}) ).
    info_nce<double> loss;
    CHECK(loss.config().temperature == 0.2);
    const double h = std::sqrt(0.75);
    auto q = tensor<double>::from({1, 2}, {3, 0});
    auto k = tensor<double>::from({1, 2}, {1, 0});
    auto Q = tensor<double>::from({3, 2}, {0.5, h, 0, 1, -0.5, -h});
    const double expect = -std::log(std::exp(5.0) / (std::exp(5.0) + std::exp(2.5) + 1 + std::exp(-2.5)));
    auto r = loss(q, k, Q);
    CHECK(r.value == doctest::Approx(expect).epsilon(1e-13));
    CHECK(r.correct == 1);
}

TEST_CASE("info_nce: equals the naive full-matrix computation (blocks with remainders, several tau)") {
    for (std::size_t B : {1u, 5u, 70u}) {
        for (std::size_t K : {1u, 7u, 1100u}) {
            auto q = ssl::testing::random_tensor({B, 6}, 10 + B + K);
            auto k = unit_rows(ssl::testing::random_tensor({B, 6}, 20 + B + K));
            auto Q = unit_rows(ssl::testing::random_tensor({K, 6}, 30 + B + K));
            for (double tau : {0.07, 0.2, 1.0}) {
                auto n = naive_info_nce(q, k, Q, tau);
                // default blocks (128 x 1024: K = 1100 leaves a remainder) and small ones (16 rows x 300 or 4 keys: B = 70, K = 7 and K = 1100 leave remainders)
                auto a = info_nce<double>({.temperature = tau})(q, k, Q);
                auto b = info_nce<double>({.temperature = tau, .block_rows = 16, .block_keys = K > 100 ? 300u : 4u})(q, k, Q);
                CAPTURE(B);
                CAPTURE(K);
                CAPTURE(tau);
                CHECK(a.value == doctest::Approx(n.value).epsilon(1e-12));
                CHECK(b.value == doctest::Approx(n.value).epsilon(1e-12));
                CHECK(a.correct == n.correct);
                CHECK(b.correct == n.correct);
                double worst = 0;  // blocking changes the order of sums only
                for (std::size_t i = 0; i < q.numel(); ++i)
                    worst = std::max(worst, std::abs(b.grad_q[i] - a.grad_q[i]) / std::max(std::abs(a.grad_q[i]), 1e-3));
                CHECK(worst < 1e-10);
            }
        }
    }
}

TEST_CASE("info_nce: float agrees with double; results do not depend on the thread count") {
    auto q = ssl::testing::random_tensor({40, 16}, 1);
    auto k = unit_rows(ssl::testing::random_tensor({40, 16}, 2));
    auto Q = unit_rows(ssl::testing::random_tensor({3000, 16}, 3));
    auto rd = info_nce<double>()(q, k, Q);
    info_nce<float> lf({.block_rows = 16, .block_keys = 512});
    auto qf = ssl::cast<float>(q), kf = ssl::cast<float>(k), Qf = ssl::cast<float>(Q);
    auto rf = lf(qf, kf, Qf);
    CHECK(rf.value == doctest::Approx(rd.value).epsilon(1e-5));
    CHECK(rf.correct == rd.correct);
    for (std::size_t i = 0; i < q.numel(); ++i)
        CHECK(rf.grad_q[i] == doctest::Approx(rd.grad_q[i]).epsilon(1e-4).scale(1e-4));
    const std::size_t threads = ssl::num_threads();
    ssl::set_num_threads(1);
    auto r1 = lf(qf, kf, Qf);
    ssl::set_num_threads(3);
    auto r3 = lf(qf, kf, Qf);
    ssl::set_num_threads(threads);
    CHECK(r1.value == rf.value);
    CHECK(r3.value == rf.value);
    bool same = true;
    for (std::size_t i = 0; i < q.numel(); ++i) same = same && r1.grad_q[i] == rf.grad_q[i] && r3.grad_q[i] == rf.grad_q[i];
    CHECK(same);
}

TEST_CASE("info_nce: scale invariant in q, gradient orthogonal to q; keys and queue are constants") {
    auto q = ssl::testing::random_tensor({6, 5}, 3);
    auto k = unit_rows(ssl::testing::random_tensor({6, 5}, 4));
    auto Q = unit_rows(ssl::testing::random_tensor({9, 5}, 5));
    info_nce<double> loss({.temperature = 0.3});
    auto a = loss(q, k, Q);
    auto s = q.clone();
    for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t j = 0; j < 5; ++j) s.at(i, j) *= 0.2 + static_cast<double>(i);
    auto b = loss(s, k, Q);
    CHECK(b.value == doctest::Approx(a.value).epsilon(1e-12));
    for (std::size_t i = 0; i < 6; ++i) {
        double dot = 0;
        for (std::size_t j = 0; j < 5; ++j) {
            dot += a.grad_q.at(i, j) * q.at(i, j);
            CHECK(b.grad_q.at(i, j) * (0.2 + static_cast<double>(i)) ==
                  doctest::Approx(a.grad_q.at(i, j)).epsilon(1e-9).scale(1e-12));
        }
        CHECK(std::abs(dot) < 1e-12);
    }
    // The result has a gradient for q only, and the inputs are not modified.
    auto k0 = k.clone(), Q0 = Q.clone();
    loss(q, k, Q);
    for (std::size_t i = 0; i < k.numel(); ++i) CHECK(k[i] == k0[i]);
    for (std::size_t i = 0; i < Q.numel(); ++i) CHECK(Q[i] == Q0[i]);
}

TEST_CASE("info_nce: top-1 of the positive among K + 1, and the loss prefers aligned keys") {
    // Queries equal to their keys, the queue far away: every positive is first.
    auto k = unit_rows(ssl::testing::random_tensor({8, 4}, 6, 0.5, 1.0));  // all in the positive orthant
    auto Q = unit_rows(ssl::testing::random_tensor({20, 4}, 7, -1.0, -0.5));  // all in the negative orthant
    info_nce<double> loss;
    auto good = loss(k, k, Q);
    CHECK(good.correct == 8);
    CHECK(good.accuracy == 1.0);
    // Queries equal to a queue row: that negative beats the positive.
    auto qbad = tensor<double>({8, 4});
    for (std::size_t i = 0; i < 8; ++i)
        for (std::size_t j = 0; j < 4; ++j) qbad.at(i, j) = Q.at(i, j);
    auto bad = loss(qbad, k, Q);
    CHECK(bad.correct == 0);
    CHECK(bad.value > good.value);
    CHECK(good.value > 0);
}

TEST_CASE("info_nce: bad input") {
    info_nce<float> loss;
    auto q = tensor<float>::full({4, 3}, 1.f);
    CHECK_THROWS_AS(loss(q, tensor<float>::zeros({4, 2}), tensor<float>::zeros({5, 3})), ssl::shape_error);
    CHECK_THROWS_AS(loss(q, tensor<float>::zeros({3, 3}), tensor<float>::zeros({5, 3})), ssl::shape_error);
    CHECK_THROWS_AS(loss(q, q, tensor<float>::zeros({5, 2})), ssl::shape_error);
    CHECK_THROWS_AS(loss(q, q, tensor<float>::zeros({0, 3})), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>::zeros({12}), tensor<float>::zeros({12}), tensor<float>::zeros({5, 3})),
                    ssl::shape_error);
    auto nan = q.clone();
    nan[2] = NAN;
    CHECK_THROWS_AS(loss(nan, q, tensor<float>::full({5, 3}, 0.5f)), ssl::value_error);
    CHECK_THROWS_AS(info_nce<float>({.temperature = 0}), ssl::value_error);
    CHECK_THROWS_AS(info_nce<float>({.temperature = -1}), ssl::value_error);
    CHECK_THROWS_AS(info_nce<float>({.temperature = INFINITY}), ssl::value_error);
    CHECK_THROWS_AS(info_nce<float>({.block_rows = 0}), ssl::value_error);
    // a zero query is allowed (normalization floored at eps) and gives log(K + 1) when all logits are 0
    auto r = loss(tensor<float>::zeros({2, 3}), tensor<float>::full({2, 3}, 0.5f), tensor<float>::full({5, 3}, 0.5f));
    CHECK(r.value == doctest::Approx(std::log(6.0)));
    CHECK(r.correct == 0);
}

TEST_CASE("info_nce_queue: MoCo v2 is asymmetric; symmetric sums both directions; configurations must agree") {
    auto q0 = ssl::cast<float>(ssl::testing::random_tensor({5, 4}, 41));
    auto q1 = ssl::cast<float>(ssl::testing::random_tensor({5, 4}, 42));
    auto k0 = ssl::cast<float>(unit_rows(ssl::testing::random_tensor({5, 4}, 43)));
    auto k1 = ssl::cast<float>(unit_rows(ssl::testing::random_tensor({5, 4}, 44)));
    auto Q = ssl::cast<float>(unit_rows(ssl::testing::random_tensor({11, 4}, 45)));
    info_nce<float> low;
    ssl::loss::info_nce_queue asym;
    CHECK(asym.config().temperature == 0.2);
    CHECK_FALSE(asym.config().symmetric);
    ssl::loss::queue_targets<float> t{{tensor<float>{}, k1}, Q};
    auto a = asym.compute({q0, q1}, t, {});
    auto ref = low(q0, k1, Q);
    CHECK(a.value == ref.value);
    REQUIRE(a.grads.size() == 2);
    CHECK(a.grads[0].shape() == q0.shape());
    for (std::size_t i = 0; i < q0.numel(); ++i) CHECK(a.grads[0][i] == ref.grad_q[i]);
    CHECK_FALSE(a.grads[1].defined());  // view 1 feeds the key encoder only: no backward
    REQUIRE(a.metrics.size() == 1);
    CHECK(a.metrics[0].first == "pos_top1");
    CHECK(a.metrics[0].second == doctest::Approx(100.0 * ref.accuracy));

    ssl::loss::info_nce_queue sym({.symmetric = true});
    ssl::loss::queue_targets<float> ts{{k0, k1}, Q};
    auto s = sym.compute({q0, q1}, ts, {});
    auto ref2 = low(q1, k0, Q);
    CHECK(s.value == doctest::Approx(ref.value + ref2.value).epsilon(1e-12));
    for (std::size_t i = 0; i < q1.numel(); ++i) CHECK(s.grads[1][i] == ref2.grad_q[i]);
    CHECK(s.metrics[0].second == doctest::Approx(50.0 * (ref.accuracy + ref2.accuracy)));

    CHECK_THROWS_AS(sym.compute({q0, q1}, t, {}), ssl::value_error);    // symmetric loss, asymmetric target
    CHECK_THROWS_AS(asym.compute({q0, q1}, ts, {}), ssl::value_error);  // and the other way round
    CHECK_THROWS_AS(asym.compute({q0}, t, {}), ssl::value_error);
    CHECK_THROWS_AS(asym.compute({q0, q1}, ssl::loss::queue_targets<float>{}, {}), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("info_nce gradcheck: dL/dq, several temperatures and block shapes") {
        for (double tau : {0.07, 0.2, 1.0}) {
            for (std::size_t K : {1u, 6u, 1030u}) {
                for (std::size_t rows : {2u, 64u}) {
                    info_nce<double> loss({.temperature = tau, .block_rows = rows, .block_keys = K > 100 ? 512u : 4u});
                    auto q = ssl::testing::random_tensor({3, 5}, 31 + K);
                    auto k = unit_rows(ssl::testing::random_tensor({3, 5}, 41 + K));
                    auto Q = unit_rows(ssl::testing::random_tensor({K, 5}, 51 + K));
                    auto r = loss(q, k, Q);
                    ssl::testing::gradcheck_report rep;
                    auto f = [&] { return loss(q, k, Q).value; };
                    ssl::testing::check_entries(rep, "q", q.data(), r.grad_q.data(), q.numel(), f, {});
                    INFO("tau ", tau, ", K ", K, ", block rows ", rows);
                    CHECK_MESSAGE(rep.ok, rep.str());
                    CHECK(rep.checked == q.numel());
                }
            }
        }
    }
}

}  // namespace test_info_nce
