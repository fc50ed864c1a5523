// Losses of the clustering methods: DeepCluster/SeLa's cross entropy on
// pseudo-labels (mean over heads) and DeeperCluster's super + sub-class CE.
#include <doctest/doctest.h>

#include <ssl/core/concepts.hpp>
#include <ssl/loss/cluster_losses.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <functional>

namespace test_cluster_losses {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::loss::hierarchical_targets;
using ssl::loss::pseudo_label_targets;

static_assert(ssl::loss_policy<ssl::loss::pseudo_label_classification<float>, pseudo_label_targets>);
static_assert(ssl::loss_policy<ssl::loss::hierarchical_classification<float>, hierarchical_targets>);

namespace {

/// -log softmax(z)[y] for one row.
double nll(const double* z, std::size_t k, std::int64_t y) {
    double mx = z[0];
    for (std::size_t j = 1; j < k; ++j) mx = std::max(mx, z[j]);
    double s = 0;
    for (std::size_t j = 0; j < k; ++j) s += std::exp(z[j] - mx);
    return -(z[y] - mx - std::log(s));
}

/// Finite-difference check of a loss's gradient with respect to its logits.
void check_grad(const std::function<ssl::loss_output<double>(const ssl::tensor<double>&)>& f, ssl::tensor<double> z) {
    auto r = f(z);
    REQUIRE(r.grads.size() == 1);
    ssl::tensor<double> g = r.grads[0].clone();
    ssl::testing::gradcheck_report rep;
    ssl::testing::check_entries(rep, "logits", z.data(), g.data(), z.numel(), [&] { return f(z).value; }, {});
    CHECK_MESSAGE(rep.ok, rep.str());
    CHECK(rep.checked == z.numel());
}

}  // namespace

TEST_CASE("pseudo_label_classification: one head is the cross entropy with the pseudo-labels") {
    ssl::loss::pseudo_label_classification<double> loss;
    auto z = ssl::testing::random_tensor({3, 4}, 1);
    pseudo_label_targets t{{2, 0, 3}, 1, {{"nmi_prev", 0.5}}};
    auto r = loss.compute({z}, t, {});
    const double want = (nll(z.data(), 4, 2) + nll(z.data() + 4, 4, 0) + nll(z.data() + 8, 4, 3)) / 3;
    CHECK(r.value == doctest::Approx(want));
    REQUIRE(r.metrics.size() == 2);
    CHECK(r.metrics[0].first == "pseudo_top1");
    CHECK(r.metrics[1].first == "nmi_prev");
    CHECK(r.metrics[1].second == 0.5);
}

TEST_CASE("pseudo_label_classification: H heads, the mean of each head's cross entropy on its block") {
    ssl::loss::pseudo_label_classification<double> loss;
    auto z = ssl::testing::random_tensor({2, 6}, 2);  // 3 heads of 2 classes
    // head-major labels: head 0 {1, 0}, head 1 {0, 0}, head 2 {1, 1}
    pseudo_label_targets t{{1, 0, 0, 0, 1, 1}, 3, {}};
    auto r = loss.compute({z}, t, {});
    double want = 0;
    const std::int64_t lab[3][2] = {{1, 0}, {0, 0}, {1, 1}};
    for (std::size_t h = 0; h < 3; ++h)
        for (std::size_t i = 0; i < 2; ++i) want += nll(z.data() + i * 6 + h * 2, 2, lab[h][i]) / 2;
    CHECK(r.value == doctest::Approx(want / 3));
    CHECK_THROWS_AS(loss.compute({z}, pseudo_label_targets{{1, 0, 0}, 3, {}}, {}), ssl::shape_error);
    CHECK_THROWS_AS(loss.compute({z}, pseudo_label_targets{{1, 0, 0, 0, 1, 1, 0, 0}, 4, {}}, {}), ssl::shape_error);
    CHECK_THROWS_AS(loss.compute({z, z}, t, {}), ssl::value_error);
}

TEST_CASE("hierarchical_classification: CE(super) + CE(sub, the row's super-class block), a hand example") {
    // S = 4 super-classes (2 rotations x m = 2 clusters), k2 = 3: 4 + 12 columns
    ssl::loss::hierarchical_classification<double> loss;
    auto z = ssl::testing::random_tensor({2, 16}, 3);
    hierarchical_targets t;
    t.super_classes = 4;
    t.sub_classes = 3;
    t.clusters = 2;
    t.super = {1, 2};  // row 0: rotation 0, cluster 1; row 1: rotation 1, cluster 0
    t.sub = {2, 0};
    auto r = loss.compute({z}, t, ssl::view_batch<double>{{}, {0, 1}});
    const double sup = (nll(z.data(), 4, 1) + nll(z.data() + 16, 4, 2)) / 2;
    const double sub = (nll(z.data() + 4 + 1 * 3, 3, 2) + nll(z.data() + 16 + 4 + 2 * 3, 3, 0)) / 2;
    CHECK(r.value == doctest::Approx(sup + sub));
    // only the row's own super-class block of sub-classifier logits has a gradient
    const auto& g = r.grads[0];
    for (std::size_t c = 4; c < 16; ++c) {
        const bool own0 = c >= 4 + 3 && c < 4 + 6, own1 = c >= 4 + 6 && c < 4 + 9;
        CHECK((g[c] != 0) == own0);
        CHECK((g[16 + c] != 0) == own1);
    }
    REQUIRE(r.metrics.size() == 2);
    CHECK(r.metrics[0].first == "super_top1");
    CHECK(r.metrics[1].first == "sub_top1");
    // the rotation of each row must agree with super / m
    CHECK_THROWS_WITH_AS(loss.compute({z}, t, ssl::view_batch<double>{{}, {1, 1}}),
                         doctest::Contains("disagree on the row layout"), ssl::value_error);
    auto bad = t;
    bad.super = {1, 5};
    CHECK_THROWS_AS(loss.compute({z}, bad, {}), ssl::value_error);
    bad = t;
    bad.sub_classes = 4;
    CHECK_THROWS_AS(loss.compute({z}, bad, {}), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("gradcheck: pseudo_label_classification (1 and 3 heads), hierarchical_classification") {
        ssl::loss::pseudo_label_classification<double> pl({.label_smoothing = 0.1});
        check_grad([&](const ssl::tensor<double>& z) { return pl.compute({z}, pseudo_label_targets{{2, 0, 3}, 1, {}}, {}); },
                   ssl::testing::random_tensor({3, 4}, 5));
        check_grad([&](const ssl::tensor<double>& z) {
            return pl.compute({z}, pseudo_label_targets{{1, 0, 2, 0, 1, 1, 2, 2, 0}, 3, {}}, {});
        }, ssl::testing::random_tensor({3, 9}, 6));
        ssl::loss::hierarchical_classification<double> hc;
        hierarchical_targets t;
        t.super_classes = 4;
        t.sub_classes = 3;
        t.clusters = 2;
        t.super = {1, 2, 3, 0};
        t.sub = {2, 0, 1, 1};
        check_grad([&](const ssl::tensor<double>& z) { return hc.compute({z}, t, {}); },
                   ssl::testing::random_tensor({4, 16}, 7));
    }
}

}  // namespace test_cluster_losses
