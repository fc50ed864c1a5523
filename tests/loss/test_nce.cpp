#include <doctest/doctest.h>

#include <ssl/core/thread_pool.hpp>
#include <ssl/loss/nce.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <numeric>
#include <vector>

namespace test_nce {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::loss::nce;
using ssl::loss::nonparametric_softmax;

namespace {

double dotv(const tensor<double>& a, std::size_t i, const tensor<double>& b, std::size_t j) {
    const std::size_t d = a.dim(1);  // raw pointers: at() checks bounds and is slow in these loops
    double s = 0;
    for (std::size_t k = 0; k < d; ++k) s += a.data()[i * d + k] * b.data()[j * d + k];
    return s;
}

// The InstDisc NCE loss written straight from eq. (5)-(7) and (9), no tricks.
double naive_nce(const tensor<double>& f, const tensor<double>& bank, const std::vector<std::size_t>& pos,
                 const std::vector<std::uint32_t>& noise, double z, double tau, double lambda,
                 const std::vector<std::uint8_t>& has_memory = {}) {
    const std::size_t B = f.dim(0), N = bank.dim(0), m = noise.size() / B;
    const double pn = 1.0 / static_cast<double>(N);
    double total = 0;
    for (std::size_t b = 0; b < B; ++b) {
        auto P = [&](std::size_t j) { return std::exp(dotv(bank, j, f, b) / tau) / z; };
        auto h = [&](std::size_t j) { return P(j) / (P(j) + static_cast<double>(m) * pn); };
        double l = -std::log(h(pos[b]));
        for (std::size_t k = 0; k < m; ++k) l -= std::log(1 - h(noise[b * m + k]));
        double prox = 0;
        for (std::size_t j = 0; j < f.dim(1); ++j) prox += std::pow(f.at(b, j) - bank.at(pos[b], j), 2);
        const bool held = has_memory.empty() || has_memory[pos[b]] != 0;
        total += l + (held ? lambda : 0.0) * prox;
    }
    return total / static_cast<double>(B);
}

// -log softmax over every bank row (eq. 2), plus the proximal term.
double naive_softmax(const tensor<double>& f, const tensor<double>& bank, const std::vector<std::size_t>& pos,
                     double tau, double lambda, const std::vector<std::uint8_t>& has_memory = {}) {
    double total = 0;
    for (std::size_t b = 0; b < f.dim(0); ++b) {
        double denom = 0;
        for (std::size_t j = 0; j < bank.dim(0); ++j) denom += std::exp(dotv(bank, j, f, b) / tau);
        double prox = 0;
        for (std::size_t j = 0; j < f.dim(1); ++j) prox += std::pow(f.at(b, j) - bank.at(pos[b], j), 2);
        const bool held = has_memory.empty() || has_memory[pos[b]] != 0;
        total += -std::log(std::exp(dotv(bank, pos[b], f, b) / tau) / denom) + (held ? lambda : 0.0) * prox;
    }
    return total / static_cast<double>(f.dim(0));
}

tensor<double> unit_rows(tensor<double> t) {
    for (std::size_t i = 0; i < t.dim(0); ++i) {
        double s = 0;
        for (std::size_t j = 0; j < t.dim(1); ++j) s += t.at(i, j) * t.at(i, j);
        for (std::size_t j = 0; j < t.dim(1); ++j) t.at(i, j) /= std::sqrt(s);
    }
    return t;
}

std::vector<std::uint32_t> random_noise(std::size_t count, std::size_t n, std::uint64_t seed) {
    std::vector<std::uint32_t> v(count);
    ssl::philox g(seed, 5);
    for (auto& x : v) x = static_cast<std::uint32_t>(g.below(n));
    return v;
}

}  // namespace

TEST_CASE("nce: a tiny case by hand") {
    // f = (1, 0); bank v0 = (1, 0), v1 = (0, 1), v2 = (-1, 0); positive 0,
    // noise {1, 2}; tau = 1, N = 3, m = 2, Z = 3 (given), so m P_n = 2/3:
    //   P(0) = e/3      h = e / (e + 2)          -log h       = log((e + 2) / e)
    //   P(1) = 1/3      h = 1/3                   -log(1 - h)  = log(3/2)
    //   P(2) = e^-1/3   h = e^-1 / (e^-1 + 2)     -log(1 - h)  = log((e^-1 + 2) / 2)
    auto f = tensor<double>::from({1, 2}, {1, 0});
    auto bank = tensor<double>::from({3, 2}, {1, 0, 0, 1, -1, 0});
    std::vector<std::size_t> pos{0};
    std::vector<std::uint32_t> noise{1, 2};
    const double e = std::exp(1.0);
    const double want = std::log((e + 2) / e) + std::log(1.5) + std::log((1 / e + 2) / 2);
    double z = 3;
    auto r = nce<double>({.temperature = 1.0, .proximal = 0})(f, bank, pos, noise, z);
    CHECK(r.value == doctest::Approx(want).epsilon(1e-14));
    CHECK(r.nce == r.value);
    CHECK(r.proximal == 0);
    CHECK(z == 3);  // a given Z is kept
    CHECK(r.mean_positive_similarity == 1);
    // dL/df = (h_pos - 1) v0 + h_1 v1 + h_2 v2 (tau = 1, B = 1)
    const double hp = e / (e + 2), h1 = 1.0 / 3, h2 = (1 / e) / (1 / e + 2);
    CHECK(r.grad.at(0, 0) == doctest::Approx((hp - 1) - h2).epsilon(1e-14));
    CHECK(r.grad.at(0, 1) == doctest::Approx(h1).epsilon(1e-14));

    // With the proximal term: f = (0.6, 0.8) against its memory v0 = (1, 0):
    // ||f - v0||^2 = 0.16 + 0.64 = 0.8, lambda = 30 adds 24 and 2 lambda (f - v0)
    // = (-24, 48) to the gradient. The NCE part uses s = 0.6, 0.8, -0.6.
    auto f2 = tensor<double>::from({1, 2}, {0.6, 0.8});
    auto r2 = nce<double>({.temperature = 1.0, .proximal = 30})(f2, bank, pos, noise, z);
    const double h0 = std::exp(0.6) / (std::exp(0.6) + 2), g1 = std::exp(0.8) / (std::exp(0.8) + 2),
                 g2 = std::exp(-0.6) / (std::exp(-0.6) + 2);
    CHECK(r2.nce == doctest::Approx(-std::log(h0) - std::log(1 - g1) - std::log(1 - g2)).epsilon(1e-14));
    CHECK(r2.proximal == doctest::Approx(24).epsilon(1e-14));
    CHECK(r2.value == doctest::Approx(r2.nce + 24).epsilon(1e-14));
    CHECK(r2.grad.at(0, 0) == doctest::Approx((h0 - 1) - g2 - 24).epsilon(1e-13));
    CHECK(r2.grad.at(0, 1) == doctest::Approx(g1 + 48).epsilon(1e-13));
}

TEST_CASE("nce: equals the formula of the paper (several m, tau, lambda; chunked noise)") {
    const std::size_t N = 50, d = 6;
    auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 3));
    for (std::size_t B : {1u, 5u}) {
        auto f = unit_rows(ssl::testing::random_tensor({B, d}, 10 + B));
        std::vector<std::size_t> pos(B);
        for (std::size_t b = 0; b < B; ++b) pos[b] = (7 * b + 3) % N;
        for (std::size_t m : {1u, 63u, 64u, 65u, 200u}) {
            auto noise = random_noise(B * m, N, m);
            for (double tau : {0.07, 0.5}) {
                for (double lambda : {0.0, 30.0}) {
                    double z = 11.5;
                    auto r = nce<double>({.temperature = tau, .proximal = lambda})(f, bank, pos, noise, z);
                    INFO("B ", B, " m ", m, " tau ", tau, " lambda ", lambda);
                    CHECK(r.value == doctest::Approx(naive_nce(f, bank, pos, noise, 11.5, tau, lambda)).epsilon(1e-12));
                }
            }
        }
    }
}

TEST_CASE("nce: Z is estimated from the noise of the first batch, then kept") {
    const std::size_t N = 40, d = 5, B = 4, m = 30;
    auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 4));
    auto f = unit_rows(ssl::testing::random_tensor({B, d}, 5));
    std::vector<std::size_t> pos{0, 1, 2, 3};
    auto noise = random_noise(B * m, N, 9);
    const double tau = 0.1;
    double want = 0;
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t k = 0; k < m; ++k) want += std::exp(dotv(bank, noise[b * m + k], f, b) / tau);
    want *= static_cast<double>(N) / static_cast<double>(B * m);
    nce<double> loss({.temperature = tau});
    double z = 0;  // not estimated yet
    auto r = loss(f, bank, pos, noise, z);
    CHECK(z == doctest::Approx(want).epsilon(1e-13));
    CHECK(r.z == z);
    CHECK(r.value == doctest::Approx(naive_nce(f, bank, pos, noise, want, tau, 30)).epsilon(1e-12));
    CHECK(loss.estimate_z(f, bank, noise) == doctest::Approx(want).epsilon(1e-13));
    // a second batch keeps it
    const double z1 = z;
    auto f2 = unit_rows(ssl::testing::random_tensor({B, d}, 6));
    auto r2 = loss(f2, bank, pos, random_noise(B * m, N, 10), z);
    CHECK(z == z1);
    CHECK(r2.z == z1);
    // NaN is "not estimated" too
    double zn = NAN;
    loss(f, bank, pos, noise, zn);
    CHECK(zn == doctest::Approx(want).epsilon(1e-13));
}

TEST_CASE("nce: float agrees with double and the result does not depend on the thread count") {
    const std::size_t N = 300, d = 16, B = 12, m = 150;
    auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 7));
    auto f = unit_rows(ssl::testing::random_tensor({B, d}, 8));
    std::vector<std::size_t> pos(B);
    std::iota(pos.begin(), pos.end(), 100);
    auto noise = random_noise(B * m, N, 11);
    double zd = 0;
    auto rd = nce<double>({.temperature = 0.07})(f, bank, pos, noise, zd);
    auto bf = ssl::cast<float>(bank), ff = ssl::cast<float>(f);
    const std::size_t threads = ssl::num_threads();
    std::vector<float> g1, g2;
    double v1 = 0, v2 = 0;
    {
        double z = 0;
        auto r = nce<float>({.temperature = 0.07})(ff, bf, pos, noise, z);
        CHECK(z == doctest::Approx(zd).epsilon(1e-5));
        CHECK(r.value == doctest::Approx(rd.value).epsilon(1e-5));
        for (std::size_t i = 0; i < rd.grad.numel(); ++i)
            CHECK(r.grad[i] == doctest::Approx(rd.grad[i]).epsilon(1e-4).scale(1e-3));
        v1 = r.value;
        g1.assign(r.grad.begin(), r.grad.end());
    }
    ssl::set_num_threads(threads == 1 ? 2 : 1);
    {
        double z = 0;
        auto r = nce<float>({.temperature = 0.07})(ff, bf, pos, noise, z);
        v2 = r.value;
        g2.assign(r.grad.begin(), r.grad.end());
    }
    ssl::set_num_threads(threads);
    CHECK(v1 == v2);
    CHECK(g1 == g2);
}

TEST_CASE("nce: bad input") {
    auto bank = tensor<float>::full({10, 4}, 0.5f);
    auto f = tensor<float>::full({2, 4}, 0.5f);
    std::vector<std::size_t> pos{0, 1};
    std::vector<std::uint32_t> noise{1, 2, 3, 4};
    double z = 0;
    nce<float> loss;
    CHECK_NOTHROW(loss(f, bank, pos, noise, z));
    CHECK_THROWS_AS(loss(tensor<float>::full({2, 3}, 0.5f), bank, pos, noise, z), ssl::shape_error);  // widths
    CHECK_THROWS_AS(loss(f, bank, std::vector<std::size_t>{0}, noise, z), ssl::shape_error);          // ids
    CHECK_THROWS_AS(loss(f, bank, std::vector<std::size_t>{0, 10}, noise, z), ssl::shape_error);      // id range
    CHECK_THROWS_AS(loss(f, bank, pos, std::vector<std::uint32_t>{1, 2, 3}, z), ssl::shape_error);   // m uneven
    CHECK_THROWS_AS(loss(f, bank, pos, std::vector<std::uint32_t>{}, z), ssl::shape_error);          // no noise
    CHECK_THROWS_AS(loss(f, bank, pos, std::vector<std::uint32_t>{1, 2, 3, 10}, z), ssl::shape_error);  // range
    auto bad = f.clone();
    bad[3] = NAN;
    double z2 = 5;
    CHECK_THROWS_AS(loss(bad, bank, pos, noise, z2), ssl::value_error);
    CHECK_THROWS_AS(nce<float>({.temperature = 0}), ssl::value_error);
    CHECK_THROWS_AS(nce<float>({.temperature = 0.1, .proximal = -1}), ssl::value_error);
}

TEST_CASE("nonparametric_softmax: a tiny case by hand") {
    // f = (1, 0), bank (1, 0), (0, 1), (-1, 0), positive 0, tau = 1:
    //   L = -log(e / (e + 1 + e^-1)),  dL/df = sum_j p_j v_j - v_0.
    auto f = tensor<double>::from({1, 2}, {1, 0});
    auto bank = tensor<double>::from({3, 2}, {1, 0, 0, 1, -1, 0});
    const double e = std::exp(1.0), s = e + 1 + 1 / e;
    auto r = nonparametric_softmax<double>({.temperature = 1.0})(f, bank, std::vector<std::size_t>{0});
    CHECK(r.value == doctest::Approx(-std::log(e / s)).epsilon(1e-14));
    CHECK(r.nll == r.value);
    CHECK(r.grad.at(0, 0) == doctest::Approx(e / s - 1 / (e * s) - 1).epsilon(1e-14));
    CHECK(r.grad.at(0, 1) == doctest::Approx(1 / s).epsilon(1e-14));
    // positive 1 instead: L = -log(1 / s)
    auto r1 = nonparametric_softmax<double>({.temperature = 1.0})(f, bank, std::vector<std::size_t>{1});
    CHECK(r1.value == doctest::Approx(std::log(s)).epsilon(1e-14));
}

TEST_CASE("nonparametric_softmax: equals the naive softmax (one block, many blocks per part)") {
    for (std::size_t N : {5u, 1500u, 70001u}) {
        const std::size_t d = 4, B = 3;
        auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 20 + N));
        auto f = unit_rows(ssl::testing::random_tensor({B, d}, 30 + N));
        std::vector<std::size_t> pos{0, N / 2, N - 1};
        for (double tau : {0.07, 1.0}) {
            for (double lambda : {0.0, 3.0}) {
                auto r = nonparametric_softmax<double>({.temperature = tau, .proximal = lambda})(f, bank, pos);
                INFO("N ", N, " tau ", tau, " lambda ", lambda);
                CHECK(r.value == doctest::Approx(naive_softmax(f, bank, pos, tau, lambda)).epsilon(1e-11));
            }
        }
    }
}

TEST_CASE("nonparametric_softmax: float is stable at a small temperature and independent of threads") {
    const std::size_t N = 5000, d = 8, B = 6;
    auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 40));
    auto f = unit_rows(ssl::testing::random_tensor({B, d}, 41));
    // make one score exactly 1 (exp(1 / 0.01) overflows a float without the max trick)
    for (std::size_t j = 0; j < d; ++j) bank.at(17, j) = f.at(0, j);
    std::vector<std::size_t> pos{17, 1, 2, 3, 4, 4999};
    auto rd = nonparametric_softmax<double>({.temperature = 0.01})(f, bank, pos);
    auto bf = ssl::cast<float>(bank), ff = ssl::cast<float>(f);
    nonparametric_softmax<float> loss({.temperature = 0.01});
    auto r1 = loss(ff, bf, pos);
    CHECK(std::isfinite(r1.value));
    CHECK(r1.value == doctest::Approx(rd.value).epsilon(1e-4));
    for (std::size_t i = 0; i < rd.grad.numel(); ++i)
        CHECK(r1.grad[i] == doctest::Approx(rd.grad[i]).epsilon(1e-3).scale(1e-2));
    const std::size_t threads = ssl::num_threads();
    ssl::set_num_threads(threads == 1 ? 2 : 1);
    auto r2 = loss(ff, bf, pos);
    ssl::set_num_threads(threads);
    CHECK(r1.value == r2.value);
    CHECK(std::equal(r1.grad.begin(), r1.grad.end(), r2.grad.begin()));
}

TEST_CASE("nonparametric_softmax: bad input") {
    nonparametric_softmax<float> loss;
    auto bank = tensor<float>::full({10, 4}, 0.5f);
    CHECK_THROWS_AS(loss(tensor<float>::full({2, 3}, 0.5f), bank, std::vector<std::size_t>{0, 1}), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>::full({2, 4}, 0.5f), bank, std::vector<std::size_t>{0}), ssl::shape_error);
    CHECK_THROWS_AS(loss(tensor<float>::full({2, 4}, 0.5f), bank, std::vector<std::size_t>{0, 11}), ssl::shape_error);
    CHECK_THROWS_AS(nonparametric_softmax<float>({.temperature = -1}), ssl::value_error);
}

TEST_CASE("instance_nce / instance_softmax: policies on memory-bank targets") {
    auto bank = ssl::cast<float>(unit_rows(ssl::testing::random_tensor({20, 4}, 50)));
    auto f = ssl::cast<float>(unit_rows(ssl::testing::random_tensor({3, 4}, 51)));
    std::vector<std::size_t> ids{4, 5, 6};
    std::vector<std::uint32_t> noise = random_noise(3 * 8, 20, 52);
    ssl::target::bank_targets<float> t{.bank = &bank, .ids = ids, .noise = noise, .negatives = 8};
    ssl::loss::instance_nce p({.temperature = 0.1, .proximal = 30});
    CHECK(p.config().z == ssl::loss::z_estimate::until_filled);  // the default
    CHECK(p.z() == 0);  // not estimated yet
    auto out = p.compute({f}, t, {});
    CHECK(p.z() > 0);  // estimated on the first batch, kept in the loss's own state
    double z2 = 0;
    auto direct = nce<float>({.temperature = 0.1, .proximal = 30})(f, bank, ids, noise, z2);
    CHECK(p.z() == z2);
    CHECK(out.value == direct.value);
    REQUIRE(out.grads.size() == 1);
    CHECK(std::equal(out.grads[0].begin(), out.grads[0].end(), direct.grad.begin()));
    // the state a checkpoint keeps: "loss.z", the very value compute uses
    std::vector<std::string> names;
    p.for_each_state([&](const std::string& n, ssl::tensor<double>& zt) {
        names.push_back(n);
        REQUIRE(zt.numel() == 1);
        CHECK(zt[0] == p.z());
        zt[0] = 4242.25;  // what a checkpoint load does
    }, "loss");
    CHECK(names == std::vector<std::string>{"loss.z"});
    CHECK(p.z() == 4242.25);
    t.filled = true;  // a full bank: until_filled uses the restored Z
    double zr = 4242.25;
    auto restored = p.compute({f}, t, {});
    CHECK(p.z() == 4242.25);
    CHECK(restored.value == nce<float>({.temperature = 0.1, .proximal = 30})(f, bank, ids, noise, zr).value);
    CHECK_THROWS_AS(p.compute({f, f}, t, {}), ssl::value_error);
    ssl::target::bank_targets<float> none{.bank = &bank, .ids = ids, .noise = {}, .negatives = 0};
    CHECK_THROWS_AS(p.compute({f}, none, {}), ssl::value_error);  // no noise drawn: the full-softmax setting
    CHECK_THROWS_AS(p.compute({f}, ssl::target::bank_targets<float>{}, {}), ssl::value_error);  // no bank

    ssl::loss::instance_softmax s({.temperature = 0.1});
    auto o2 = s.compute({f}, none, {});
    CHECK(o2.value == nonparametric_softmax<float>({.temperature = 0.1})(f, bank, ids).value);
    static_assert(ssl::loss_policy<ssl::loss::instance_nce, ssl::target::bank_targets<float>>);
    static_assert(ssl::loss_policy<ssl::loss::instance_softmax, ssl::target::bank_targets<float>>);
}

TEST_CASE("instance_nce: when Z is estimated (config.z), from the batch's filled flag") {
    auto bank = ssl::cast<float>(unit_rows(ssl::testing::random_tensor({20, 4}, 90)));
    std::vector<std::size_t> ids{4, 5, 6};
    // batch k: its own features and noise; Z from it is what nce::estimate_z gives
    struct nce_batch {
        tensor<float> f;
        std::vector<std::uint32_t> noise;
    };
    auto batch = [&](std::uint64_t k) {
        return nce_batch{ssl::cast<float>(unit_rows(ssl::testing::random_tensor({3, 4}, 91 + k))),
                         random_noise(3 * 8, 20, 95 + k)};
    };
    const nce<float> ref({.temperature = 0.1});
    // the Z the loss holds after a step on batch k
    auto step = [&](ssl::loss::instance_nce& p, std::uint64_t k, bool filled) {
        auto b = batch(k);
        ssl::target::bank_targets<float> t{.bank = &bank, .ids = ids, .noise = b.noise, .negatives = 8, .filled = filled};
        p.compute({b.f}, t, {});
        return p.z();
    };
    auto estimate = [&](std::uint64_t k) {
        auto b = batch(k);
        return ref.estimate_z(b.f, bank, b.noise);
    };
    REQUIRE(estimate(0) != estimate(1));
    SUBCASE("until_filled: every batch until the bank is full, then fixed") {
        ssl::loss::instance_nce p({.temperature = 0.1});
        CHECK(step(p, 0, false) == estimate(0));
        CHECK(step(p, 1, false) == estimate(1));
        CHECK(step(p, 2, true) == estimate(1));  // full: the last estimate stays
        CHECK(step(p, 3, true) == estimate(1));
    }
    SUBCASE("first_batch: once") {
        ssl::loss::instance_nce p({.temperature = 0.1, .z = ssl::loss::z_estimate::first_batch});
        CHECK(step(p, 0, false) == estimate(0));
        CHECK(step(p, 1, false) == estimate(0));
        CHECK(step(p, 2, true) == estimate(0));
    }
    SUBCASE("every_batch: always, also on a full bank") {
        ssl::loss::instance_nce p({.temperature = 0.1, .z = ssl::loss::z_estimate::every_batch});
        CHECK(step(p, 0, false) == estimate(0));
        CHECK(step(p, 1, true) == estimate(1));
        CHECK(step(p, 2, true) == estimate(2));
    }
}

TEST_CASE("nce / nonparametric_softmax: the proximal term only for rows that hold a memory") {
    const std::size_t N = 12, d = 6, B = 4, m = 40;
    auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 80));
    auto f = unit_rows(ssl::testing::random_tensor({B, d}, 81));
    std::vector<std::size_t> pos{1, 4, 7, 4};
    auto noise = random_noise(B * m, N, 82);
    std::vector<std::uint8_t> held(N, 1);
    held[4] = 0;  // samples 1 and 3: their row is still the random initialization
    const double tau = 0.1, lambda = 30;
    double z = 9.0;
    nce<double> loss({.temperature = tau, .proximal = lambda});
    auto r = loss(f, bank, pos, noise, z, held);
    CHECK(r.value == doctest::Approx(naive_nce(f, bank, pos, noise, 9.0, tau, lambda, held)).epsilon(1e-12));
    // the rows without memory get exactly the gradient of lambda = 0, the others that of lambda = 30
    auto r0 = nce<double>({.temperature = tau, .proximal = 0})(f, bank, pos, noise, z);
    auto r30 = loss(f, bank, pos, noise, z);
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < d; ++j) {
            const double want = (b == 1 || b == 3 ? r0 : r30).grad.at(b, j);
            CHECK(r.grad.at(b, j) == doctest::Approx(want).epsilon(1e-12));
        }
    CHECK(r.proximal < r30.proximal);
    CHECK(r.proximal > 0);

    nonparametric_softmax<double> sm({.temperature = tau, .proximal = lambda});
    auto s = sm(f, bank, pos, held);
    CHECK(s.value == doctest::Approx(naive_softmax(f, bank, pos, tau, lambda, held)).epsilon(1e-12));

    // the flags must cover the bank
    std::vector<std::uint8_t> short_flags(N - 1, 1);
    CHECK_THROWS_AS(loss(f, bank, pos, noise, z, short_flags), ssl::shape_error);
    CHECK_THROWS_AS(sm(f, bank, pos, short_flags), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("nce gradcheck: with and without the proximal term") {
        const std::size_t N = 9, d = 5, B = 3, m = 70;  // m crosses a chunk boundary
        auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 60));
        std::vector<std::size_t> pos{2, 7, 2};
        auto noise = random_noise(B * m, N, 61);
        for (double lambda : {0.0, 30.0}) {
            for (double tau : {0.07, 0.5}) {
                // unnormalized features: the loss itself does not assume unit rows
                auto f = ssl::testing::random_tensor({B, d}, 62);
                nce<double> loss({.temperature = tau, .proximal = lambda});
                double z = 0;
                auto r = loss(f, bank, pos, noise, z);  // estimates Z, then Z stays fixed
                auto fn = [&] { return loss(f, bank, pos, noise, z).value; };
                ssl::testing::gradcheck_report rep;
                ssl::testing::check_entries(rep, "f", f.data(), r.grad.data(), f.numel(), fn, {});
                INFO("lambda ", lambda, " tau ", tau);
                CHECK_MESSAGE(rep.ok, rep.str());
                CHECK(rep.checked == B * d);
                // row 7 still holds its random initialization: no proximal term for sample 1
                std::vector<std::uint8_t> held(N, 1);
                held[7] = 0;
                auto rh = loss(f, bank, pos, noise, z, held);
                auto fh = [&] { return loss(f, bank, pos, noise, z, held).value; };
                ssl::testing::gradcheck_report reph;
                ssl::testing::check_entries(reph, "f", f.data(), rh.grad.data(), f.numel(), fh, {});
                CHECK_MESSAGE(reph.ok, reph.str());
            }
        }
    }

    TEST_CASE("nonparametric_softmax gradcheck: with and without the proximal term") {
        const std::size_t N = 7, d = 5, B = 3;
        auto bank = unit_rows(ssl::testing::random_tensor({N, d}, 70));
        std::vector<std::size_t> pos{0, 6, 6};
        for (double lambda : {0.0, 30.0}) {
            for (double tau : {0.07, 1.0}) {
                auto f = ssl::testing::random_tensor({B, d}, 71);
                nonparametric_softmax<double> loss({.temperature = tau, .proximal = lambda});
                auto r = loss(f, bank, pos);
                auto fn = [&] { return loss(f, bank, pos).value; };
                ssl::testing::gradcheck_report rep;
                ssl::testing::check_entries(rep, "f", f.data(), r.grad.data(), f.numel(), fn, {});
                INFO("lambda ", lambda, " tau ", tau);
                CHECK_MESSAGE(rep.ok, rep.str());
                CHECK(rep.checked == B * d);
            }
        }
    }
}

}  // namespace test_nce
