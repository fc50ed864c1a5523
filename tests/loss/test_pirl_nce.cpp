// PIRL's loss (loss/pirl_nce.hpp): eq. 5's gradients against finite
// differences in double, lambda = 0 and 1 reducing to one view's NCE exactly,
// the mixing in between, and the shared Z (estimated from f, scheduled,
// state).
#include <doctest/doctest.h>

#include <ssl/loss/pirl_nce.hpp>
#include <ssl/ops/rows.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace test_pirl_nce {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;

namespace {

/// N unit bank rows, unit features f and g of B samples, their bank rows
/// (ids) and, per step, m noise indices per sample drawn as the memory bank
/// draws them.
template <class T>
struct problem {
    std::size_t n, m;
    tensor<T> bank, f, g;
    std::vector<std::size_t> ids;
    std::vector<std::uint8_t> written;

    problem(std::size_t n_, std::size_t d, std::size_t b, std::size_t m_, std::uint64_t seed)
        : n(n_), m(m_), bank(unit(n_, d, seed)), f(unit(b, d, seed + 1)), g(unit(b, d, seed + 2)), ids(b),
          written(n_, 1) {
        for (std::size_t i = 0; i < b; ++i) ids[i] = (5 * i + 1) % n;
    }
    static tensor<T> unit(std::size_t rows, std::size_t d, std::uint64_t seed) {
        return ssl::ops::normalize_rows(ssl::cast<T>(ssl::testing::random_tensor({rows, d}, seed)));
    }
    std::vector<std::uint32_t> noise(std::uint64_t step) const {
        std::vector<std::uint32_t> v(ids.size() * m);
        ssl::target::sample_negatives(v, ids.size(), m, n, 7, step);
        return v;
    }
    /// The memory bank's batch for these positives and `noise`.
    ssl::target::bank_targets<T> targets(const std::vector<std::uint32_t>& noise, bool filled) const {
        ssl::target::bank_targets<T> t;
        t.bank = &bank;
        t.ids = ids;
        t.noise = noise;
        t.negatives = m;
        t.has_memory = written;
        t.filled = filled;
        return t;
    }
};

/// Two views' batch as pirl_views makes it: the image (branch 0), 9 tiles (branch 1).
ssl::view_batch<float> pirl_batch(std::size_t n) {
    ssl::view_batch<float> vb;
    vb.views = {tensor<float>({n, 1, 4, 4}), tensor<float>({9 * n, 1, 2, 2})};
    vb.specs = {{.copies = 1, .branch = 0}, {.copies = 9, .branch = 1, .grid_rows = 3, .grid_cols = 3}};
    vb.ids.resize(n);
    return vb;
}

bool all_zero(const tensor<float>& t) {
    return std::all_of(t.begin(), t.end(), [](float x) { return x == 0; });
}

bool same(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

TEST_CASE("pirl_nce_terms: the gradients of eq. 5 match central differences (double)") {
    problem<double> p(30, 7, 4, 40, 1);  // m > N: repeated noise rows are fine
    const auto noise = p.noise(0);
    const ssl::loss::nce<double> nce({.temperature = 0.2, .proximal = 0});
    for (double lambda : {0.0, 0.3, 0.5, 1.0}) {
        // Any f and g (the head normalises them; the loss is defined for all).
        auto f = ssl::testing::random_tensor({4, 7}, 10);
        auto g = ssl::testing::random_tensor({4, 7}, 11);
        double z = 7.5;  // given: a constant of the loss
        const auto r = ssl::loss::pirl_nce_terms(nce, lambda, f, g, p.bank, p.ids, noise, z);
        CHECK(z == 7.5);
        CHECK(r.value == doctest::Approx(lambda * r.nce_g + (1 - lambda) * r.nce_f).epsilon(1e-15));
        const double eps = 1e-6;
        double worst = 0;
        for (tensor<double>* x : {&f, &g}) {
            const tensor<double>& grad = x == &f ? r.grad_f : r.grad_g;
            REQUIRE(grad.shape() == x->shape());
            for (std::size_t k = 0; k < x->numel(); ++k) {
                const double keep = (*x)[k];
                (*x)[k] = keep + eps;
                const double up = ssl::loss::pirl_nce_terms(nce, lambda, f, g, p.bank, p.ids, noise, z).value;
                (*x)[k] = keep - eps;
                const double down = ssl::loss::pirl_nce_terms(nce, lambda, f, g, p.bank, p.ids, noise, z).value;
                (*x)[k] = keep;
                const double fd = (up - down) / (2 * eps);
                worst = std::max(worst, std::abs(fd - grad[k]) / std::max(1.0, std::abs(fd)));
            }
        }
        INFO("lambda ", lambda);
        CHECK(worst < 1e-6);
    }
}

TEST_CASE("pirl_nce: lambda 0 and 1 are one view's NCE exactly; between, the two terms mixed") {
    const problem<float> p(64, 16, 8, 20, 3);
    const auto noise = p.noise(0);
    const auto t = p.targets(noise, false);
    const auto vb = pirl_batch(8);

    // InstDisc's policy without its proximal term on one view: the reference.
    // Both terms use the Z estimated from f.
    ssl::loss::instance_nce ref({.temperature = 0.1, .proximal = 0, .z = ssl::loss::z_estimate::first_batch});
    const auto on_f = ref.compute({p.f}, t, ssl::view_batch<float>{});
    const auto on_g = ref.compute({p.g}, t, ssl::view_batch<float>{});  // with f's Z, kept

    ssl::loss::pirl_nce l0({.temperature = 0.1, .lambda = 0.0});
    const auto r0 = l0.compute({p.f, p.g}, t, vb);
    CHECK(r0.value == on_f.value);
    REQUIRE(r0.grads.size() == 2);
    CHECK(same(r0.grads[0], on_f.grads[0]));
    CHECK(all_zero(r0.grads[1]));

    ssl::loss::pirl_nce l1({.temperature = 0.1, .lambda = 1.0});
    const auto r1 = l1.compute({p.f, p.g}, t, vb);
    CHECK(r1.value == on_g.value);
    CHECK(same(r1.grads[1], on_g.grads[0]));
    CHECK(all_zero(r1.grads[0]));

    ssl::loss::pirl_nce lh({.temperature = 0.1});
    CHECK(lh.config().lambda == 0.5);  // the paper's
    const auto rh = lh.compute({p.f, p.g}, t, vb);
    CHECK(rh.value == doctest::Approx(0.5 * on_f.value + 0.5 * on_g.value).epsilon(1e-12));
    for (std::size_t k = 0; k < rh.grads[0].numel(); ++k) {
        CHECK(rh.grads[0][k] == 0.5f * on_f.grads[0][k]);  // halving is exact in float
        CHECK(rh.grads[1][k] == 0.5f * on_g.grads[0][k]);
    }
    std::vector<std::string> names;
    for (const auto& [n, v] : rh.metrics) names.push_back(n);
    CHECK(names == std::vector<std::string>{"nce_f", "nce_g", "pos_sim", "pos_sim_g"});
    CHECK(rh.metrics[0].second == on_f.value);
    CHECK(rh.metrics[1].second == on_g.value);
    double sim = 0;
    for (std::size_t b = 0; b < 8; ++b)
        for (std::size_t j = 0; j < 16; ++j) sim += double(p.f.at(b, j)) * p.bank.at(p.ids[b], j);
    CHECK(rh.metrics[2].second == doctest::Approx(sim / 8).epsilon(1e-6));
}

TEST_CASE("pirl_nce: one Z for both terms, estimated from f, scheduled as instance_nce's, kept as loss state") {
    const problem<float> p(64, 16, 8, 32, 7);
    const auto noise1 = p.noise(0), noise2 = p.noise(1);
    const auto vb = pirl_batch(8);
    const ssl::loss::nce<float> nce({.temperature = 0.1, .proximal = 0});

    ssl::loss::pirl_nce l({.temperature = 0.1});
    CHECK(l.config().z == ssl::loss::z_estimate::until_filled);
    CHECK(l.z() == 0);
    const auto r1 = l.compute({p.f, p.g}, p.targets(noise1, false), vb);
    const double z1 = l.z();
    // the estimate from f against the step's noise, not g's
    CHECK(z1 == nce.estimate_z(p.f, p.bank, noise1));
    CHECK(z1 != nce.estimate_z(p.g, p.bank, noise1));
    double zz = z1;
    const auto g_term = nce(p.g, p.bank, p.ids, noise1, zz);  // g scored with f's Z
    CHECK(r1.metrics[1].second == g_term.value);
    // not filled: estimated again from the next batch
    l.compute({p.f, p.g}, p.targets(noise2, false), vb);
    CHECK(l.z() == nce.estimate_z(p.f, p.bank, noise2));
    CHECK(l.z() != z1);
    // filled: fixed from then on
    l.compute({p.f, p.g}, p.targets(noise1, true), vb);
    const double z3 = l.z();
    l.compute({p.f, p.g}, p.targets(noise2, true), vb);
    CHECK(l.z() == z3);

    // the state a checkpoint keeps, and a restored Z is the one used
    std::vector<std::string> names;
    l.for_each_state([&](const std::string& n, tensor<double>& z) {
        names.push_back(n);
        z[0] = 100.0;
    }, "loss");
    CHECK(names == std::vector<std::string>{"loss.z"});
    CHECK(l.z() == 100.0);
    const auto r = l.compute({p.f, p.g}, p.targets(noise1, true), vb);
    double z = 100.0;
    CHECK(r.value == ssl::loss::pirl_nce_terms(nce, 0.5, p.f, p.g, p.bank, p.ids, noise1, z).value);
    CHECK(l.z() == 100.0);

    // first_batch: fixed after the first call; every_batch: always afresh
    ssl::loss::pirl_nce first({.z = ssl::loss::z_estimate::first_batch});
    first.compute({p.f, p.g}, p.targets(noise1, false), vb);
    const double zf = first.z();
    first.compute({p.f, p.g}, p.targets(noise2, false), vb);
    CHECK(first.z() == zf);
    ssl::loss::pirl_nce every({.z = ssl::loss::z_estimate::every_batch});
    every.compute({p.f, p.g}, p.targets(noise1, true), vb);
    const double ze = every.z();
    every.compute({p.f, p.g}, p.targets(noise2, true), vb);
    CHECK(every.z() != ze);
}

TEST_CASE("pirl_nce: misuse is refused with a sentence") {
    const problem<float> p(16, 4, 2, 4, 12);
    const auto noise = p.noise(0);
    const auto t = p.targets(noise, true);
    ssl::loss::pirl_nce l;
    CHECK_THROWS_AS(l.compute({p.f}, t, pirl_batch(2)), ssl::error);  // one view
    const auto tiles = problem<float>::unit(9 * 2, 4, 15);
    CHECK_THROWS_AS(l.compute({p.f, tiles}, t, pirl_batch(2)),
                    ssl::shape_error);  // the tiles not grouped into one row per sample
    auto swapped = pirl_batch(2);
    std::swap(swapped.specs[0], swapped.specs[1]);
    CHECK_THROWS_AS(l.compute({p.f, p.g}, t, swapped), ssl::shape_error);
    auto none = t;
    none.negatives = 0;
    none.noise = {};
    CHECK_THROWS_AS(l.compute({p.f, p.g}, none, pirl_batch(2)), ssl::error);
    CHECK_THROWS_AS(ssl::loss::pirl_nce({.lambda = 1.5}), ssl::value_error);
    CHECK_THROWS_AS(ssl::loss::pirl_nce({.temperature = 0}), ssl::value_error);
}

}  // namespace test_pirl_nce
