// S4L's losses: the batch-hard soft-margin triplet loss (loss/triplet.hpp)
// against a naive reference (ties included) and finite differences, and the
// combined objective L_sup + w L_self (loss/s4l.hpp): its value, its
// gradient, and that an unlabelled sample's hidden class never reaches it.
#include <doctest/doctest.h>

#include <ssl/core/concepts.hpp>
#include <ssl/loss/s4l.hpp>
#include <ssl/loss/triplet.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace test_s4l_loss {  // each file in its own namespace: an area builds as one unity translation unit

using rotation_loss = ssl::loss::s4l<ssl::loss::rotation_self, double>;
using triplet_loss = ssl::loss::s4l<ssl::loss::triplet_self, double>;
static_assert(ssl::loss_policy<ssl::loss::s4l<ssl::loss::rotation_self>>);
static_assert(ssl::loss_policy<ssl::loss::s4l<ssl::loss::triplet_self>>);

namespace {

struct naive_triplet {
    double value = 0;
    std::vector<double> grad;
};

/// Every pair's distance from the coordinates, every anchor's hardest positive
/// and negative by a plain scan (lowest index on ties), softplus, mean; the
/// gradient by the chain rule written out per anchor.
naive_triplet naive(const ssl::tensor<double>& z, const std::vector<std::int64_t>& g, double eps = 1e-12) {
    const std::size_t r = z.dim(0), d = z.dim(1);
    auto dist = [&](std::size_t a, std::size_t b) {
        double s = 0;
        for (std::size_t k = 0; k < d; ++k) s += (z[a * d + k] - z[b * d + k]) * (z[a * d + k] - z[b * d + k]);
        return std::sqrt(s + eps);
    };
    naive_triplet out;
    out.grad.assign(r * d, 0.0);
    for (std::size_t a = 0; a < r; ++a) {
        double hp = -1, hn = 1e300;
        std::size_t p = 0, n = 0;
        for (std::size_t b = 0; b < r; ++b) {
            if (b == a) continue;
            const double x = dist(a, b);
            if (g[b] == g[a] && x > hp) hp = x, p = b;
            if (g[b] != g[a] && x < hn) hn = x, n = b;
        }
        const double m = hp - hn;
        out.value += std::log(1 + std::exp(m)) / static_cast<double>(r);
        const double s = 1 / (1 + std::exp(-m)) / static_cast<double>(r);
        for (std::size_t k = 0; k < d; ++k) {
            const double up = (z[a * d + k] - z[p * d + k]) / hp, un = (z[a * d + k] - z[n * d + k]) / hn;
            out.grad[a * d + k] += s * (up - un);
            out.grad[p * d + k] -= s * up;
            out.grad[n * d + k] += s * un;
        }
    }
    return out;
}

void check_grad(const std::function<ssl::loss_output<double>(const ssl::tensor<double>&)>& f, ssl::tensor<double> z) {
    auto r = f(z);
    REQUIRE(r.grads.size() == 1);
    ssl::tensor<double> g = r.grads[0].clone();
    ssl::testing::gradcheck_report rep;
    ssl::testing::check_entries(rep, "outputs", z.data(), g.data(), z.numel(), [&] { return f(z).value; }, {});
    CHECK_MESSAGE(rep.ok, rep.str());
    CHECK(rep.checked + rep.skipped_kinks == z.numel());
    CHECK(rep.skipped_kinks == 0);
}

/// N samples, `copies` rows each (row r * N + i: copy r of sample i), ids 10 + i.
ssl::view_batch<double> batch(std::size_t n, std::size_t copies, std::vector<std::int64_t> classes) {
    ssl::view_batch<double> vb;
    vb.specs.push_back({.copies = copies});
    for (std::size_t i = 0; i < n; ++i) vb.ids.push_back(10 + i);
    vb.classes = std::move(classes);
    for (std::size_t r = 0; r < copies; ++r)
        for (std::size_t i = 0; i < n; ++i) vb.labels.push_back(static_cast<std::int64_t>(r % 4));
    return vb;
}

double nll(const double* z, std::size_t k, std::int64_t y) {
    double mx = z[0];
    for (std::size_t j = 1; j < k; ++j) mx = std::max(mx, z[j]);
    double s = 0;
    for (std::size_t j = 0; j < k; ++j) s += std::exp(z[j] - mx);
    return -(z[y] - mx - std::log(s));
}

}  // namespace

TEST_CASE("batch_hard_triplet: value and gradient equal the naive reference on random rows") {
    const auto z = ssl::testing::random_tensor({8, 5}, 3);
    const std::vector<std::int64_t> g{0, 1, 2, 3, 0, 1, 2, 3};
    const auto t = ssl::loss::batch_hard_triplet(z, g);
    const auto ref = naive(z, g);
    CHECK(t.value == doctest::Approx(ref.value).epsilon(1e-12));
    for (std::size_t k = 0; k < ref.grad.size(); ++k) CHECK(t.grad[k] == doctest::Approx(ref.grad[k]).epsilon(1e-9));
    CHECK(t.violated >= 0);
    CHECK(t.violated <= 1);
}

TEST_CASE("batch_hard_triplet: ties pick the lowest row index, as the reference does") {
    // group 0 at (0,0), (1,0), (-1,0); group 1 at (0,2), (1,2), (-1,2): the
    // centre anchors' two positives tie at distance 1 (rows 2 and 4 for row 0),
    // and every end anchor's hardest positive and negative tie at distance 2.
    ssl::tensor<double> z({6, 2});
    const double pts[6][2] = {{0, 0}, {0, 2}, {1, 0}, {1, 2}, {-1, 0}, {-1, 2}};
    for (std::size_t i = 0; i < 6; ++i) z[i * 2] = pts[i][0], z[i * 2 + 1] = pts[i][1];
    const std::vector<std::int64_t> g{0, 1, 0, 1, 0, 1};
    const auto t = ssl::loss::batch_hard_triplet(z, g);
    const auto ref = naive(z, g);
    CHECK(t.value == doctest::Approx(ref.value).epsilon(1e-12));
    for (std::size_t k = 0; k < ref.grad.size(); ++k) CHECK(t.grad[k] == doctest::Approx(ref.grad[k]).epsilon(1e-9));
    // by hand: anchors 0 and 1 (centre) have m = 1 - 2; the four ends m = 2 - 2
    const double want = (2 * std::log1p(std::exp(-1.0)) + 4 * std::log(2.0)) / 6;
    CHECK(t.value == doctest::Approx(want).epsilon(1e-9));
    CHECK(t.violated == 0);
}

TEST_CASE("batch_hard_triplet: a row without a positive or a batch of one group is refused with a sentence") {
    const auto z = ssl::testing::random_tensor({3, 2}, 4);
    CHECK_THROWS_WITH_AS(ssl::loss::batch_hard_triplet(z, std::vector<std::int64_t>{0, 0, 1}),
                         doctest::Contains("row 2 (group 1) has no positive"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::loss::batch_hard_triplet(z, std::vector<std::int64_t>{5, 5, 5}),
                         doctest::Contains("has no negative"), ssl::value_error);
    CHECK_THROWS_AS(ssl::loss::batch_hard_triplet(z, std::vector<std::int64_t>{0, 1}), ssl::shape_error);
}

TEST_CASE("s4l: value is the class CE over the labelled samples' rows plus w times the rotation CE") {
    // 3 samples x 4 rotations, outputs [4 rotation logits | 3 class logits]
    const auto y = ssl::testing::random_tensor({12, 7}, 5);
    auto vb = batch(3, 4, {2, 0, 1});
    rotation_loss loss({.self_outputs = 4, .classes = 3, .self_weight = 0.5, .labelled = {10, 12}});
    const auto r = loss.compute({y}, std::vector<ssl::tensor<double>>{}, vb);
    double sup = 0, self = 0;
    std::size_t m = 0;
    for (std::size_t row = 0; row < 12; ++row) {
        self += nll(y.data() + row * 7, 4, vb.labels[row]) / 12;
        if (row % 3 != 1) sup += nll(y.data() + row * 7 + 4, 3, vb.classes[row % 3]), ++m;  // sample 1 (id 11) hidden
    }
    CHECK(m == 8);
    CHECK(r.value == doctest::Approx(sup / 8 + 0.5 * self).epsilon(1e-12));
    bool labelled_rows = false;
    for (const auto& [name, v] : r.metrics) labelled_rows = labelled_rows || (name == "labelled_rows" && v == 8);
    CHECK(labelled_rows);
}

TEST_CASE("s4l: an unlabelled sample's hidden class changes nothing; a labelled one's does") {
    const auto y = ssl::testing::random_tensor({12, 7}, 6);
    rotation_loss loss({.self_outputs = 4, .classes = 3, .labelled = {10, 12}});
    const auto a = loss.compute({y}, std::vector<ssl::tensor<double>>{}, batch(3, 4, {2, 0, 1}));
    const auto b = loss.compute({y}, std::vector<ssl::tensor<double>>{}, batch(3, 4, {2, 2, 1}));  // id 11 hidden
    CHECK(a.value == b.value);
    for (std::size_t k = 0; k < y.numel(); ++k) CHECK(a.grads[0][k] == b.grads[0][k]);
    // the rows of the hidden sample get no class gradient at all
    for (std::size_t r = 1; r < 12; r += 3)
        for (std::size_t j = 4; j < 7; ++j) CHECK(a.grads[0][r * 7 + j] == 0);
    const auto c = loss.compute({y}, std::vector<ssl::tensor<double>>{}, batch(3, 4, {1, 0, 1}));  // id 10 labelled
    CHECK(c.value != a.value);
    CHECK(loss.visible_classes(batch(3, 4, {2, 0, 1})) == std::vector<std::int64_t>{2, -1, 1});
}

TEST_CASE("s4l: w = 0 leaves the self-supervised outputs without gradient (the supervised baseline)") {
    const auto y = ssl::testing::random_tensor({12, 7}, 7);
    rotation_loss loss({.self_outputs = 4, .classes = 3, .self_weight = 0, .labelled = {10, 11, 12}});
    const auto r = loss.compute({y}, std::vector<ssl::tensor<double>>{}, batch(3, 4, {2, 0, 1}));
    double class_grad = 0;
    for (std::size_t row = 0; row < 12; ++row) {
        for (std::size_t j = 0; j < 4; ++j) CHECK(r.grads[0][row * 7 + j] == 0);
        for (std::size_t j = 4; j < 7; ++j) class_grad += std::abs(r.grads[0][row * 7 + j]);
    }
    CHECK(class_grad > 0);
}

TEST_CASE("s4l: bad input is refused with a sentence") {
    const auto y = ssl::testing::random_tensor({12, 7}, 8);
    const std::vector<ssl::tensor<double>> none;
    rotation_loss empty({.self_outputs = 4, .classes = 3});
    CHECK_THROWS_WITH_AS(empty.compute({y}, none, batch(3, 4, {0, 1, 2})),
                         doctest::Contains("the labelled subset is empty"), ssl::value_error);
    rotation_loss loss({.self_outputs = 4, .classes = 3, .labelled = {10}});
    CHECK_THROWS_WITH_AS(loss.compute({y}, none, batch(3, 4, {})), doctest::Contains("S4L needs the labelled set's classes"),
                         ssl::shape_error);
    CHECK_THROWS_WITH_AS(loss.compute({y}, none, batch(3, 4, {7, 0, 0})),
                         doctest::Contains("class 7 of sample 10 is outside the head's 3 classes"), ssl::value_error);
    CHECK_THROWS_WITH_AS(loss.compute({ssl::testing::random_tensor({12, 6}, 9)}, none, batch(3, 4, {0, 1, 2})),
                         doctest::Contains("expected (rows, 4 self-supervised + 3 class outputs)"), ssl::shape_error);
    CHECK_THROWS_WITH_AS(rotation_loss({.classes = 3, .labelled = {4, 2}}), doctest::Contains("sorted and distinct"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(rotation_loss({.classes = 3, .self_weight = -1, .labelled = {1}}),
                         doctest::Contains("self_weight must be finite and >= 0"), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("gradcheck: batch_hard_triplet, s4l rotation and s4l triplet") {
        const std::vector<std::int64_t> g{0, 1, 2, 0, 1, 2, 0, 1, 2};
        check_grad([&](const ssl::tensor<double>& z) {
            auto t = ssl::loss::batch_hard_triplet(z, g);
            ssl::loss_output<double> o;
            o.value = t.value;
            o.grads.push_back(std::move(t.grad));
            return o;
        }, ssl::testing::random_tensor({9, 4}, 11));
        const std::vector<ssl::tensor<double>> none;
        rotation_loss rot({.self_outputs = 4, .classes = 3, .self_weight = 0.7, .labelled = {10, 12}});
        const auto vr = batch(3, 4, {2, 0, 1});
        check_grad([&](const ssl::tensor<double>& y) { return rot.compute({y}, none, vr); },
                   ssl::testing::random_tensor({12, 7}, 12));
        triplet_loss tri({.self_outputs = 5, .classes = 3, .labelled = {11}});
        const auto vt = batch(3, 2, {2, 0, 1});
        check_grad([&](const ssl::tensor<double>& y) { return tri.compute({y}, none, vt); },
                   ssl::testing::random_tensor({6, 8}, 13));
    }
}

}  // namespace test_s4l_loss
