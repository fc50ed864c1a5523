// loss::instance_ce: the sharded cosine-softmax instance cross entropy with
// smoothing over the k hardest wrong classes, against a dense reference
// written here, across shard layouts and tile sizes; its gradients by finite
// differences; its scratch memory; the method-level policy.
#include <doctest/doctest.h>

#include <ssl/core/rng.hpp>
#include <ssl/loss/cross_entropy.hpp>
#include <ssl/loss/instance_ce.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

namespace test_instance_ce {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::parameter;
using ssl::tensor;

namespace {

/// A classifier of N rows in shards of R rows, random values.
template <class T>
struct sharded {
    std::vector<std::unique_ptr<parameter<T>>> own;
    std::vector<parameter<T>*> ptr;
    std::size_t R = 0, D = 0;

    sharded(const std::vector<double>& w, std::size_t N, std::size_t D_, std::size_t R_) : R(R_), D(D_) {
        for (std::size_t s = 0; s * R < N; ++s) {
            const std::size_t r = std::min(R, N - s * R);
            own.push_back(std::make_unique<parameter<T>>(ssl::shape_t{r, D}, ssl::param_role::weight));
            for (std::size_t i = 0; i < r * D; ++i) own.back()->value[i] = static_cast<T>(w[s * R * D + i]);
            ptr.push_back(own.back().get());
        }
    }
    void zero_grad() {
        for (auto& p : own) p->zero_grad();
    }
    /// dL/dW of all classes, (N, D) flattened.
    std::vector<double> grad() const {
        std::vector<double> g;
        for (auto& p : own) g.insert(g.end(), p->grad.begin(), p->grad.end());
        return g;
    }
    std::span<parameter<T>* const> span() const { return ptr; }
};

std::vector<double> random_values(std::size_t n, std::uint64_t seed) {
    ssl::philox g(seed, 11);
    std::vector<double> v(n);
    for (auto& x : v) x = g.normal();
    return v;
}

struct dense_result {
    double value = 0;
    std::vector<double> gf, gw;             // dL/dF (B, D), dL/dW (N, D)
    std::vector<std::vector<std::int64_t>> hardest;
    std::vector<double> z, p, q;            // (B, N)
    std::size_t correct = 0;
};

/// The loss written densely: all B x N logits, the top-k by a full sort.
dense_result dense(const std::vector<double>& F, const std::vector<double>& W, std::size_t B, std::size_t N,
                   std::size_t D, const std::vector<std::int64_t>& y, double tau, std::size_t top_k, double eps) {
    auto normalise = [&](const std::vector<double>& X, std::size_t n, std::vector<double>& nrm) {
        std::vector<double> u(X.size());
        nrm.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            double s = 0;
            for (std::size_t d = 0; d < D; ++d) s += X[i * D + d] * X[i * D + d];
            nrm[i] = std::sqrt(s);
            for (std::size_t d = 0; d < D; ++d) u[i * D + d] = X[i * D + d] / nrm[i];
        }
        return u;
    };
    std::vector<double> fn, wn;
    auto U = normalise(F, B, fn), V = normalise(W, N, wn);
    dense_result r;
    r.z.assign(B * N, 0);
    r.p.assign(B * N, 0);
    r.q.assign(B * N, 0);
    const std::size_t k = std::min(top_k, N - 1);
    const double e = k ? eps : 0.0;
    std::vector<double> G(B * N);
    for (std::size_t i = 0; i < B; ++i) {
        double mx = -INFINITY;
        for (std::size_t j = 0; j < N; ++j) {
            double s = 0;
            for (std::size_t d = 0; d < D; ++d) s += U[i * D + d] * V[j * D + d];
            r.z[i * N + j] = s / tau;
            mx = std::max(mx, r.z[i * N + j]);
        }
        double se = 0;
        for (std::size_t j = 0; j < N; ++j) se += std::exp(r.z[i * N + j] - mx);
        const double lse = mx + std::log(se);
        std::vector<std::int64_t> wrong;
        for (std::size_t j = 0; j < N; ++j)
            if (static_cast<std::int64_t>(j) != y[i]) wrong.push_back(static_cast<std::int64_t>(j));
        std::sort(wrong.begin(), wrong.end(), [&](std::int64_t a, std::int64_t b) {
            const double za = r.z[i * N + a], zb = r.z[i * N + b];
            return za > zb || (za == zb && a < b);
        });
        r.hardest.emplace_back(wrong.begin(), wrong.begin() + static_cast<std::ptrdiff_t>(k));
        r.q[i * N + y[i]] = 1 - e;
        for (std::size_t t = 0; t < k; ++t) r.q[i * N + wrong[t]] = e / static_cast<double>(k);
        r.correct += wrong.empty() || r.z[i * N + y[i]] > r.z[i * N + wrong[0]];
        for (std::size_t j = 0; j < N; ++j) {
            r.p[i * N + j] = std::exp(r.z[i * N + j] - lse);
            r.value += r.q[i * N + j] * (lse - r.z[i * N + j]) / static_cast<double>(B);
            G[i * N + j] = (r.p[i * N + j] - r.q[i * N + j]) / static_cast<double>(B);
        }
    }
    auto back = [&](const std::vector<double>& X, const std::vector<double>& nrm, const std::vector<double>& dX,
                    std::size_t n) {
        std::vector<double> g(n * D);
        for (std::size_t i = 0; i < n; ++i) {
            double dot = 0;
            for (std::size_t d = 0; d < D; ++d) dot += X[i * D + d] * dX[i * D + d];
            for (std::size_t d = 0; d < D; ++d) g[i * D + d] = (dX[i * D + d] - X[i * D + d] * dot) / nrm[i];
        }
        return g;
    };
    std::vector<double> dU(B * D, 0), dV(N * D, 0);
    for (std::size_t i = 0; i < B; ++i)
        for (std::size_t j = 0; j < N; ++j)
            for (std::size_t d = 0; d < D; ++d) {
                dU[i * D + d] += G[i * N + j] * V[j * D + d] / tau;
                dV[j * D + d] += G[i * N + j] * U[i * D + d] / tau;
            }
    r.gf = back(U, fn, dU, B);
    r.gw = back(V, wn, dV, N);
    return r;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

std::vector<double> to_vec(const tensor<double>& t) { return {t.begin(), t.end()}; }

}  // namespace

TEST_CASE("instance_ce: value, gradients and hardest classes equal a dense computation, for 1 and many shards") {
    const std::size_t B = 6, D = 5, N = 17;
    const auto Fv = random_values(B * D, 1), Wv = random_values(N * D, 2);
    tensor<double> F({B, D});
    std::copy(Fv.begin(), Fv.end(), F.data());
    const std::vector<std::int64_t> y{3, 0, 16, 7, 3, 12};
    for (std::size_t top_k : {0, 1, 4}) {
        const auto ref = dense(Fv, Wv, B, N, D, y, 0.3, top_k, 0.2);
        for (std::size_t R : {17, 6, 4, 1}) {
            for (std::size_t cols : {1, 2, 3, 256}) {
                CAPTURE(top_k);
                CAPTURE(R);
                CAPTURE(cols);
                sharded<double> W(Wv, N, D, R);
                CHECK(W.ptr.size() == (N + R - 1) / R);
                ssl::loss::instance_ce<double> ce({.temperature = 0.3, .top_k = top_k, .smoothing = 0.2,
                                                   .block_columns = cols});
                auto r = ce(F, W.span(), y);
                CHECK(r.value == doctest::Approx(ref.value).epsilon(1e-12));
                CHECK(r.k == std::min<std::size_t>(top_k, N - 1));
                CHECK(r.instances == N);
                CHECK(r.correct == ref.correct);
                CHECK(max_abs_diff(to_vec(r.grad_features), ref.gf) < 1e-12);
                CHECK(max_abs_diff(W.grad(), ref.gw) < 1e-12);
                for (std::size_t i = 0; i < B; ++i)
                    for (std::size_t t = 0; t < r.k; ++t) CHECK(r.hardest[i * r.k + t] == ref.hardest[i][t]);
            }
        }
    }
}

TEST_CASE("instance_ce: many classes per tile (the heap, the skipped blocks) still give the dense result") {
    const std::size_t B = 8, D = 8, N = 700;
    const auto Fv = random_values(B * D, 31), Wv = random_values(N * D, 32);
    tensor<double> F({B, D});
    std::copy(Fv.begin(), Fv.end(), F.data());
    std::vector<std::int64_t> y(B);
    for (std::size_t i = 0; i < B; ++i) y[i] = static_cast<std::int64_t>((i * 97 + 5) % N);
    const auto ref = dense(Fv, Wv, B, N, D, y, 0.15, 10, 0.2);
    for (std::size_t cols : {64, 128, 1000}) {
        CAPTURE(cols);
        sharded<double> W(Wv, N, D, 300);
        auto r = ssl::loss::instance_ce<double>({.block_columns = cols})(F, W.span(), y);
        CHECK(r.value == doctest::Approx(ref.value).epsilon(1e-12));
        CHECK(max_abs_diff(to_vec(r.grad_features), ref.gf) < 1e-12);
        CHECK(max_abs_diff(W.grad(), ref.gw) < 1e-12);
        for (std::size_t i = 0; i < B; ++i)
            for (std::size_t t = 0; t < 10; ++t) CHECK(r.hardest[i * 10 + t] == ref.hardest[i][t]);
    }
}

TEST_CASE("instance_ce: the smoothing puts epsilon/k on exactly the k hardest wrong classes") {
    // One sample: dL/dw_j = G_j / tau (u - v_j (v_j . u)) / ||w_j|| with
    // G_j = p_j - q_j, so the weight gradient reveals the target q_j.
    const std::size_t D = 6, N = 12, k = 4;
    const double tau = 0.5, eps = 0.2;
    const auto Fv = random_values(D, 3), Wv = random_values(N * D, 4);
    tensor<double> F({1, D});
    std::copy(Fv.begin(), Fv.end(), F.data());
    const std::vector<std::int64_t> y{5};
    sharded<double> W(Wv, N, D, 5);
    ssl::loss::instance_ce<double> ce({.temperature = tau, .top_k = k, .smoothing = eps, .block_columns = 2});
    auto r = ce(F, W.span(), y);
    const auto ref = dense(Fv, Wv, 1, N, D, y, tau, k, eps);
    const auto gw = W.grad();
    double fn = 0;
    for (double v : Fv) fn += v * v;
    fn = std::sqrt(fn);
    std::vector<std::int64_t> hard;
    for (std::size_t j = 0; j < N; ++j) {
        double wn = 0, vu = 0;
        for (std::size_t d = 0; d < D; ++d) wn += Wv[j * D + d] * Wv[j * D + d];
        wn = std::sqrt(wn);
        for (std::size_t d = 0; d < D; ++d) vu += Wv[j * D + d] / wn * Fv[d] / fn;
        double num = 0, den = 0;
        for (std::size_t d = 0; d < D; ++d) {
            const double rj = Fv[d] / fn - Wv[j * D + d] / wn * vu;
            num += gw[j * D + d] * rj;
            den += rj * rj;
        }
        const double Gj = tau * wn * num / den;
        const double q = ref.p[j] - Gj;
        CAPTURE(j);
        if (static_cast<std::int64_t>(j) == y[0]) {
            CHECK(q == doctest::Approx(1 - eps).epsilon(1e-9));
        } else if (std::abs(q) > 1e-9) {
            CHECK(q == doctest::Approx(eps / k).epsilon(1e-9));
            hard.push_back(static_cast<std::int64_t>(j));
        }
    }
    // exactly k classes carry eps/k, and they are the k largest wrong logits
    REQUIRE(hard.size() == k);
    std::vector<std::int64_t> wrong;
    for (std::size_t j = 0; j < N; ++j)
        if (static_cast<std::int64_t>(j) != y[0]) wrong.push_back(static_cast<std::int64_t>(j));
    std::sort(wrong.begin(), wrong.end(), [&](auto a, auto b) { return ref.z[a] > ref.z[b]; });
    std::vector<std::int64_t> top(wrong.begin(), wrong.begin() + k);
    std::sort(top.begin(), top.end());
    CHECK(hard == top);
    std::vector<std::int64_t> reported(r.hardest.begin(), r.hardest.end());
    std::sort(reported.begin(), reported.end());
    CHECK(reported == top);
    for (std::size_t t = 1; t < k; ++t) CHECK(ref.z[r.hardest[t - 1]] >= ref.z[r.hardest[t]]);  // best first
}

TEST_CASE("instance_ce: no smoothing is the cross entropy of the cosine logits; k >= N - 1 is uniform smoothing") {
    const std::size_t B = 5, D = 4, N = 7;
    const double tau = 0.2;
    const auto Fv = random_values(B * D, 5), Wv = random_values(N * D, 6);
    tensor<double> F({B, D});
    std::copy(Fv.begin(), Fv.end(), F.data());
    const std::vector<std::int64_t> y{0, 6, 2, 2, 4};
    const auto ref = dense(Fv, Wv, B, N, D, y, tau, 0, 0);
    const auto z = tensor<double>::from({B, N}, ref.z);
    sharded<double> W(Wv, N, D, 3);
    auto plain = ssl::loss::instance_ce<double>({.temperature = tau, .top_k = 3, .smoothing = 0})(F, W.span(), y);
    auto ce = ssl::loss::cross_entropy<double>()(z, y);
    CHECK(plain.value == doctest::Approx(ce.value).epsilon(1e-12));
    CHECK(plain.correct == ce.correct);
    // Over all N - 1 wrong classes, eps on the wrong classes is torch's
    // uniform smoothing s with s (N - 1) / N = eps.
    const double eps = 0.3;
    auto all = ssl::loss::instance_ce<double>({.temperature = tau, .top_k = 100, .smoothing = eps})(F, W.span(), y);
    CHECK(all.k == N - 1);
    auto uni = ssl::loss::cross_entropy<double>({.label_smoothing = eps * N / (N - 1)})(z, y);
    CHECK(all.value == doctest::Approx(uni.value).epsilon(1e-12));
}

TEST_CASE("instance_ce: float agrees with double; the result does not depend on the thread count") {
    const std::size_t B = 32, D = 16, N = 1000;
    const auto Fv = random_values(B * D, 7), Wv = random_values(N * D, 8);
    std::vector<std::int64_t> y(B);
    for (std::size_t i = 0; i < B; ++i) y[i] = static_cast<std::int64_t>((i * 37) % N);
    tensor<float> F({B, D});
    tensor<double> Fd({B, D});
    for (std::size_t i = 0; i < B * D; ++i) F[i] = static_cast<float>(Fv[i]), Fd[i] = Fv[i];
    const ssl::loss::instance_ce_config cfg{.block_columns = 64};
    sharded<double> Wd(Wv, N, D, 300);
    auto rd = ssl::loss::instance_ce<double>(cfg)(Fd, Wd.span(), y);
    const std::size_t threads = ssl::num_threads();
    std::vector<float> g1, g2, w1, w2;
    double v1 = 0, v2 = 0;
    for (std::size_t t : {std::size_t{1}, std::max<std::size_t>(threads, 2)}) {
        ssl::set_num_threads(t);
        sharded<float> W(Wv, N, D, 300);
        auto r = ssl::loss::instance_ce<float>(cfg)(F, W.span(), y);
        auto& g = t == 1 ? g1 : g2;
        auto& w = t == 1 ? w1 : w2;
        (t == 1 ? v1 : v2) = r.value;
        g.assign(r.grad_features.begin(), r.grad_features.end());
        for (auto& p : W.own) w.insert(w.end(), p->grad.begin(), p->grad.end());
        CHECK(r.value == doctest::Approx(rd.value).epsilon(1e-5));
        double m = 0;
        for (std::size_t i = 0; i < g.size(); ++i) m = std::max(m, std::abs(g[i] - rd.grad_features[i]));
        CHECK(m < 1e-5);
    }
    ssl::set_num_threads(threads);
    CHECK(v1 == v2);
    CHECK(g1 == g2);
    CHECK(w1 == w2);
}

TEST_CASE("instance_ce: scratch memory is O(B x block), independent of the number of instances") {
    const std::size_t B = 16, D = 8, R = 1000;
    std::vector<std::int64_t> y(B);
    std::iota(y.begin(), y.end(), 0);
    tensor<float> F({B, D});
    const auto Fv = random_values(B * D, 9);
    std::copy(Fv.begin(), Fv.end(), F.data());
    const ssl::loss::instance_ce<float> ce({.block_columns = 128});
    std::size_t small = 0, large = 0;
    for (std::size_t N : {3000, 30000}) {
        sharded<float> W(random_values(N * D, 10), N, D, R);
        auto r = ce(F, W.span(), y);
        (N == 3000 ? small : large) = r.scratch_bytes;
        CHECK(std::isfinite(r.value));
    }
    MESSAGE("scratch: ", small, " bytes for 3000 classes, ", large, " for 30000; dense logits would be ",
            B * 30000 * sizeof(float));
    CHECK(small == large);
    CHECK(large * 10 < B * 30000 * sizeof(float));
}

TEST_CASE("instance_ce: bad input and configuration") {
    const std::size_t D = 3;
    sharded<float> W(random_values(10 * D, 1), 10, D, 4);
    tensor<float> F({2, D}, 1.0f);
    ssl::loss::instance_ce<float> ce;
    CHECK_THROWS_AS(ce(F, W.span(), std::vector<std::int64_t>{0}), ssl::shape_error);
    CHECK_THROWS_AS(ce(F, W.span(), std::vector<std::int64_t>{0, 10}), ssl::value_error);
    CHECK_THROWS_AS(ce(F, W.span(), std::vector<std::int64_t>{-1, 0}), ssl::value_error);
    tensor<float> Fbad({2, D + 1}, 1.0f);
    CHECK_THROWS_AS(ce(Fbad, W.span(), std::vector<std::int64_t>{0, 1}), ssl::shape_error);
    std::vector<parameter<float>*> swapped{W.ptr[2], W.ptr[0], W.ptr[1]};  // the short shard is not last
    CHECK_THROWS_AS(ce(F, swapped, std::vector<std::int64_t>{0, 1}), ssl::shape_error);
    CHECK_THROWS_AS(ssl::loss::instance_ce<float>({.temperature = 0}), ssl::value_error);
    CHECK_THROWS_AS(ssl::loss::instance_ce<float>({.smoothing = 1.0}), ssl::value_error);
    CHECK_THROWS_AS(ssl::loss::instance_ce<float>({.block_columns = 0}), ssl::value_error);
    // a non-finite input gives a NaN loss (the trainer reports it), not a throw
    F[0] = NAN;
    auto r = ce(F, W.span(), std::vector<std::int64_t>{0, 1});
    CHECK(std::isnan(r.value));
}

TEST_SUITE("gradcheck") {
    TEST_CASE("instance_ce gradcheck: features and every shard's weights, smoothing over the hardest classes") {
        const std::size_t B = 4, D = 6, N = 23, k = 3;
        const double tau = 0.5;
        // Inputs whose k-th and (k+1)-th hardest logits are clearly apart in
        // every row, so the hardest set is constant under the perturbations.
        std::vector<double> Fv, Wv;
        const std::vector<std::int64_t> y{0, 22, 9, 9};
        for (std::uint64_t seed = 20;; ++seed) {
            Fv = random_values(B * D, seed);
            Wv = random_values(N * D, seed + 1000);
            const auto ref = dense(Fv, Wv, B, N, D, y, tau, N, 0.2);  // all wrong classes, sorted
            bool gaps = true;
            for (std::size_t i = 0; i < B; ++i) {
                const auto& h = ref.hardest[i];
                gaps = gaps && ref.z[i * N + h[k - 1]] - ref.z[i * N + h[k]] > 1e-3;
            }
            if (gaps) break;
        }
        tensor<double> F({B, D});
        std::copy(Fv.begin(), Fv.end(), F.data());
        for (std::size_t R : {23, 5}) {
            CAPTURE(R);
            sharded<double> W(Wv, N, D, R);
            const ssl::loss::instance_ce<double> ce({.temperature = tau, .top_k = k, .smoothing = 0.2, .block_columns = 2});
            W.zero_grad();
            auto r = ce(F, W.span(), y);
            auto loss = [&] { return ce(F, W.span(), y, {.weight_grad = false}).value; };
            ssl::testing::gradcheck_report rep;
            const ssl::testing::gradcheck_options o{.eps = 1e-6, .atol = 1e-8, .rtol = 1e-5};
            ssl::testing::check_entries(rep, "features", F.data(), r.grad_features.data(), F.numel(), loss, o);
            for (std::size_t s = 0; s < W.own.size(); ++s) {
                const tensor<double> g = W.own[s]->grad.clone();
                ssl::testing::check_entries(rep, "shard_" + std::to_string(s), W.own[s]->value.data(), g.data(),
                                            g.numel(), loss, o);
            }
            CHECK_MESSAGE(rep.ok, rep.str());
            CHECK(rep.skipped_kinks == 0);
            CHECK(rep.checked == B * D + N * D);
        }
    }
}

}  // namespace test_instance_ce
