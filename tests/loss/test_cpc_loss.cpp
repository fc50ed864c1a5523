// CPC's InfoNCE over the patch grid (loss/cpc.hpp) against a naive
// reference written from the formula, by finite differences, across block
// sizes and thread counts, and its policy's view of the batch.
#include <doctest/doctest.h>

#include <ssl/core/thread_pool.hpp>
#include <ssl/loss/cpc.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>

namespace test_cpc_loss {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using ssl::tensor;
using ssl::loss::cpc_info_nce;

tensor<double> random_output(std::size_t rows, std::size_t slots, std::size_t D, std::uint64_t seed, double scale = 1.0) {
    return ssl::testing::random_tensor({rows, slots, D}, seed, -scale, scale);
}

struct naive_result {
    double value = 0;
    tensor<double> grad;
    std::size_t correct = 0, queries = 0;
};

/// The loss written as in the paper, one query at a time: for every step k,
/// grid row r with r + k < R, column c and sample s, the prediction at (r, c)
/// scores every patch feature of the batch; the true one is (r + k, c) of s.
naive_result naive(const tensor<double>& y, std::size_t n, std::size_t R, std::size_t C, double tau) {
    const std::size_t K = y.dim(1) - 1, D = y.dim(2), M = R * C * n;
    naive_result out;
    out.grad = tensor<double>::zeros(y.shape());
    auto z = [&](std::size_t l, std::size_t d) { return y.at(l, 0, d); };
    std::vector<std::tuple<std::size_t, std::size_t, std::size_t>> qs;  // (row of the query, k, positive)
    for (std::size_t k = 1; k <= K; ++k)
        for (std::size_t r = 0; r + k < R; ++r)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t s = 0; s < n; ++s) qs.emplace_back((r * C + c) * n + s, k, ((r + k) * C + c) * n + s);
    out.queries = qs.size();
    const double Q = double(qs.size());
    for (auto [j, k, pos] : qs) {
        std::vector<double> logit(M);
        for (std::size_t l = 0; l < M; ++l) {
            double dot = 0;
            for (std::size_t d = 0; d < D; ++d) dot += y.at(j, k, d) * z(l, d);
            logit[l] = dot / tau;
        }
        const double mx = *std::max_element(logit.begin(), logit.end());
        double se = 0;
        for (double v : logit) se += std::exp(v - mx);
        out.value += (mx + std::log(se) - logit[pos]) / Q;
        bool best = true;
        for (std::size_t l = 0; l < M; ++l)
            if (l != pos && logit[l] >= logit[pos]) best = false;
        out.correct += best;
        for (std::size_t l = 0; l < M; ++l) {
            const double g = (std::exp(logit[l] - mx) / se - (l == pos ? 1.0 : 0.0)) / (tau * Q);
            for (std::size_t d = 0; d < D; ++d) {
                out.grad.at(j, k, d) += g * z(l, d);      // d/d zhat
                out.grad.at(l, 0, d) += g * y.at(j, k, d);  // d/d z_l
            }
        }
    }
    return out;
}

/// The loss as a layer with a scalar output, for gradcheck.
struct as_layer {
    using value_type = double;
    using cache_type = tensor<double>;
    cpc_info_nce<double> loss;
    std::size_t n, R, C;
    ssl::forward_result<double, cache_type> forward(const tensor<double>& y) {
        auto r = loss(y, n, R, C);
        tensor<double> v({1});
        v[0] = r.value;
        return {v, r.grad};
    }
    tensor<double> backward(const cache_type& g, const tensor<double>& dy) {
        tensor<double> dx = g.clone();
        for (auto& v : dx) v *= dy[0];
        return dx;
    }
    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
};

}  // namespace

TEST_CASE("cpc_info_nce equals the naive reference: value, both gradients, accuracy (double and float)") {
    for (auto [n, R, C, K, D, tau] : {std::tuple{2, 4, 3, 2, 3, 1.0}, std::tuple{3, 5, 5, 3, 4, 0.5},
                                      std::tuple{1, 2, 2, 1, 2, 2.0}, std::tuple{4, 7, 7, 3, 5, 1.0}}) {
        CAPTURE(n);
        CAPTURE(R);
        CAPTURE(K);
        const std::size_t rows = std::size_t(R * C * n);
        const auto y = random_output(rows, std::size_t(K + 1), std::size_t(D), 17 + std::size_t(R), 1.5);
        const auto want = naive(y, std::size_t(n), std::size_t(R), std::size_t(C), tau);
        cpc_info_nce<double> loss({.temperature = tau, .block_rows = 5});
        const auto got = loss(y, std::size_t(n), std::size_t(R), std::size_t(C));
        CHECK(got.queries == want.queries);
        CHECK(got.value == doctest::Approx(want.value).epsilon(1e-12));
        CHECK(got.correct == want.correct);
        double d = 0;
        for (std::size_t k = 0; k < y.numel(); ++k) d = std::max(d, std::abs(got.grad[k] - want.grad[k]));
        CHECK(d < 1e-13);
        // float: the same to float precision
        tensor<float> yf(y.shape());
        for (std::size_t k = 0; k < y.numel(); ++k) yf[k] = float(y[k]);
        const auto gf = cpc_info_nce<float>({.temperature = tau})(yf, std::size_t(n), std::size_t(R), std::size_t(C));
        CHECK(gf.value == doctest::Approx(want.value).epsilon(1e-5));
        double df = 0;
        for (std::size_t k = 0; k < y.numel(); ++k) df = std::max(df, std::abs(double(gf.grad[k]) - want.grad[k]));
        CHECK(df < 1e-6);
    }
}

TEST_CASE("cpc_info_nce: the number of queries, equal features give log(patches), a perfect predictor near 0") {
    // Q = N C sum_k (R - k): 7x7 grid, K = 3, 2 samples: 2 * 7 * (6 + 5 + 4)
    const auto y = random_output(98, 4, 3, 1);
    CHECK(cpc_info_nce<double>()(y, 2, 7, 7).queries == 210);
    // every feature and prediction the same: uniform softmax over the 98 patches
    tensor<double> flat({98, 4, 3});
    flat.fill(0.3);
    const auto r = cpc_info_nce<double>()(flat, 2, 7, 7);
    CHECK(r.value == doctest::Approx(std::log(98.0)).epsilon(1e-12));
    CHECK(r.correct == 0);  // a tie is no hit
    // orthogonal features (one-hot per patch), predictions equal to their
    // targets, small temperature: every query right, loss ~ 0
    const std::size_t n = 2, R = 3, C = 2, M = R * C * n;
    tensor<double> y2 = tensor<double>::zeros({M, 2, M});
    for (std::size_t l = 0; l < M; ++l) y2.at(l, 0, l) = 1.0;
    for (std::size_t r = 0; r + 1 < R; ++r)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t s = 0; s < n; ++s) y2.at((r * C + c) * n + s, 1, ((r + 1) * C + c) * n + s) = 1.0;
    const auto p = cpc_info_nce<double>({.temperature = 0.01})(y2, n, R, C);
    CHECK(p.accuracy == 1.0);
    CHECK(p.value < 1e-30);
}

TEST_CASE("cpc_info_nce: the same bits at any thread count; block sizes agree") {
    const auto y = random_output(3 * 25, 3, 6, 4);
    tensor<float> yf(y.shape());
    for (std::size_t k = 0; k < y.numel(); ++k) yf[k] = float(y[k]);
    const std::size_t threads = ssl::num_threads();
    const auto a = cpc_info_nce<float>({.block_rows = 7})(yf, 3, 5, 5);
    ssl::set_num_threads(1);
    const auto b = cpc_info_nce<float>({.block_rows = 7})(yf, 3, 5, 5);
    ssl::set_num_threads(threads);
    CHECK(a.value == b.value);
    CHECK(std::equal(a.grad.begin(), a.grad.end(), b.grad.begin()));
    for (std::size_t block : {std::size_t{1}, std::size_t{64}, std::size_t{1000}}) {
        const auto c = cpc_info_nce<double>({.block_rows = block})(y, 3, 5, 5);
        const auto d = cpc_info_nce<double>({.block_rows = 3})(y, 3, 5, 5);
        CHECK(c.value == doctest::Approx(d.value).epsilon(1e-14));
        double e = 0;
        for (std::size_t k = 0; k < y.numel(); ++k) e = std::max(e, std::abs(c.grad[k] - d.grad[k]));
        CHECK(e < 1e-15);
    }
}

TEST_CASE("cpc_info_nce and cpc_nce: bad input is refused with a sentence; the policy reads the view's grid") {
    const auto y = random_output(18, 3, 4, 2);
    tensor<float> yf(y.shape());
    for (std::size_t k = 0; k < y.numel(); ++k) yf[k] = float(y[k]);
    CHECK_NOTHROW(cpc_info_nce<float>()(yf, 2, 3, 3));  // K = 2 below 3 rows
    CHECK_THROWS_WITH_AS(cpc_info_nce<float>()(yf, 3, 2, 3), doctest::Contains("2 prediction steps on a grid of 2 rows"), ssl::shape_error);
    CHECK_THROWS_WITH_AS(cpc_info_nce<float>()(yf, 3, 3, 3), doctest::Contains("18 patches are not a 3x3 grid of 3"),
                         ssl::shape_error);
    CHECK_THROWS_WITH_AS(cpc_info_nce<float>()(tensor<float>({18, 4}), 2, 3, 3), doctest::Contains("(patches, K + 1, D)"),
                         ssl::shape_error);
    CHECK_THROWS_AS(cpc_info_nce<float>({.temperature = 0}), ssl::value_error);
    tensor<float> bad = yf.clone();
    bad[5] = std::nanf("");
    CHECK_THROWS_WITH_AS(cpc_info_nce<float>()(bad, 2, 3, 3), doctest::Contains("not finite"), ssl::value_error);

    ssl::loss::cpc_nce policy;
    ssl::view_batch<float> vb;
    vb.views.push_back(tensor<float>({18, 1, 8, 8}));
    vb.specs.push_back({.copies = 9, .grid_rows = 3, .grid_cols = 3});
    vb.ids = {4, 7};
    const auto out = policy.compute({yf}, {}, vb);
    const auto direct = cpc_info_nce<float>()(yf, 2, 3, 3);
    CHECK(out.value == direct.value);
    REQUIRE(out.grads.size() == 1);
    CHECK(std::equal(out.grads[0].begin(), out.grads[0].end(), direct.grad.begin()));
    REQUIRE(out.metrics.size() == 1);
    CHECK(out.metrics[0].first == "cpc_top1");
    vb.specs[0] = {.copies = 9};
    CHECK_THROWS_WITH_AS(policy.compute({yf}, {}, vb), doctest::Contains("has no patch grid"), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("cpc_info_nce gradcheck: predictions and targets (finite differences)") {
        for (double tau : {1.0, 0.3}) {
            CAPTURE(tau);
            as_layer m{cpc_info_nce<double>({.temperature = tau, .block_rows = 4}), 2, 4, 3};
            auto r = ssl::testing::gradcheck(m, random_output(24, 3, 3, 8));
            CHECK_MESSAGE(r.ok, r.str());
            CHECK(r.checked == 24 * 3 * 3);
        }
    }
}

}  // namespace test_cpc_loss
