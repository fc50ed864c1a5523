// Head combinators (head/combinators.hpp): route by branch, per-row head then
// a joint head over each sample's copies, two heads side by side; the row
// map r * N + i, parameter names, errors, and gradient checks.
#include <doctest/doctest.h>

#include <ssl/head/combinators.hpp>
#include <ssl/head/mlp.hpp>
#include <ssl/testing/gradcheck.hpp>

namespace test_combinators {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using ssl::tensor;
using ssl::view_spec;

/// A view-aware head seen as a plain layer for the gradient check: the spec
/// and the sample count are fixed.
template <class H>
struct bound {
    using value_type = typename H::value_type;
    using cache_type = typename H::cache_type;
    H& h;
    view_spec spec;
    std::size_t n;
    ssl::forward_result<value_type, cache_type> forward(const tensor<value_type>& x) { return h.forward(x, spec, n); }
    tensor<value_type> backward(const cache_type& c, const tensor<value_type>& dy) { return h.backward(c, dy); }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        h.for_each_parameter(f, p);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        h.for_each_buffer(f, p);
    }
    void train(bool on) { h.train(on); }
    bool training() const { return h.training(); }
};

std::vector<std::string> names(auto& h) {
    std::vector<std::string> v;
    h.for_each_parameter([&](const std::string& n, auto&) { v.push_back(n); }, "head");
    return v;
}

}  // namespace

TEST_CASE("route: each branch's view goes to its own head; branch 0 without a spec; unknown branch refused") {
    using lin = ssl::head::linear_classifier<double>;
    ssl::head::route<lin, ssl::head::fc_relu<double>> r({lin::config_type{3}, {5}}, 4, 11);
    CHECK(r.out_features() == 3);
    CHECK(r.out_features(1) == 5);
    lin alone({3}, 4, 11);  // branch 0 is built with the route's own seed
    auto x = ssl::testing::random_tensor({6, 4}, 2);
    auto y0 = r.forward(x, {.branch = 0}, 6);
    auto ya = alone.forward(x);
    CHECK(std::equal(y0.out.begin(), y0.out.end(), ya.out.begin()));
    auto y1 = r.forward(x, {.branch = 1}, 6);
    CHECK(y1.out.dim(1) == 5);
    for (double v : y1.out) CHECK(v >= 0);  // fc + relu
    auto plain = r.forward(x);
    CHECK(std::equal(plain.out.begin(), plain.out.end(), y0.out.begin()));
    CHECK_THROWS_WITH_AS(r.forward(x, {.branch = 2}, 6), doctest::Contains("branch 2 but the route has 2 heads"),
                         ssl::value_error);
    CHECK(names(r) == std::vector<std::string>{"head.0.weight", "head.0.bias", "head.1.0.weight", "head.1.0.bias"});
}

TEST_CASE("group: row head on every copy, joint head on each sample's copies concatenated in copy order") {
    using lin = ssl::head::linear_classifier<double>;
    const std::size_t n = 3, c = 4, d = 5;
    ssl::head::group<lin, lin> g({.row = {2}, .joint = {3}, .copies = c}, d, 5);
    CHECK(g.out_features() == 3);
    auto x = ssl::testing::random_tensor({c * n, d}, 3);
    auto y = g.forward(x, {.copies = c, .grid_rows = 2, .grid_cols = 2}, n);
    REQUIRE(y.out.dim(0) == n);
    // By hand: row outputs, sample i's copies side by side, the joint linear.
    auto rows = g.row().forward(x).out;  // (c n, 2)
    tensor<double> cat({n, c * 2});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t r = 0; r < c; ++r)
            for (std::size_t k = 0; k < 2; ++k) cat.at(i, r * 2 + k) = rows.at(r * n + i, k);
    auto want = g.joint().forward(cat).out;
    for (std::size_t k = 0; k < want.numel(); ++k) CHECK(y.out[k] == doctest::Approx(want[k]).epsilon(1e-14));
    CHECK_THROWS_WITH_AS(g.forward(x, {.copies = 2}, 2 * n), doctest::Contains("concatenates 4"), ssl::shape_error);
    CHECK_THROWS_AS(g.forward(x, {.copies = c}, n + 1), ssl::shape_error);
    CHECK(names(g) == std::vector<std::string>{"head.row.weight", "head.row.bias", "head.joint.weight",
                                               "head.joint.bias"});
}

TEST_CASE("concat: two heads side by side") {
    using lin = ssl::head::linear_classifier<double>;
    ssl::head::concat<lin, lin> h({{2}, {3}}, 4, 1);
    CHECK(h.out_features() == 5);
    auto x = ssl::testing::random_tensor({3, 4}, 4);
    auto y = h.forward(x);
    CHECK(y.out.dim(1) == 5);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("head combinator gradchecks: route, group (linear and mlp parts), concat") {
        using lin = ssl::head::linear_classifier<double>;
        using mlp = ssl::head::mlp<double>;
        ssl::head::route<lin, ssl::head::fc_relu<double>> r({lin::config_type{3}, {5}}, 4, 11);
        auto x = ssl::testing::random_tensor({6, 4}, 5);
        for (std::size_t b = 0; b < 2; ++b) {
            bound<decltype(r)> l{r, {.branch = b}, 6};
            auto rep = ssl::testing::gradcheck(l, x);
            CHECK_MESSAGE(rep.ok, rep.str());
        }
        ssl::head::group<ssl::head::fc_relu<double>, mlp> g({.row = {4}, .joint = {6, 3, true}, .copies = 3}, 5, 2);
        auto xg = ssl::testing::random_tensor({3 * 4, 5}, 6);
        bound<decltype(g)> lg{g, {.copies = 3}, 4};
        for (bool train : {true, false}) {
            g.train(train);
            auto rep = ssl::testing::gradcheck(lg, xg);
            CHECK_MESSAGE(rep.ok, rep.str());
        }
        ssl::head::concat<lin, mlp> c({{2}, {5, 3, false}}, 4, 3);
        bound<decltype(c)> lc{c, {}, 6};
        auto rep = ssl::testing::gradcheck(lc, x);
        CHECK_MESSAGE(rep.ok, rep.str());
    }
}

}  // namespace test_combinators
