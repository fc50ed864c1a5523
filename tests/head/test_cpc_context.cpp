// CPC's context network and predictors (head/cpc_context.hpp): the grid
// layout, the output slots (z, then zhat_k = W_k c), causality (the context
// at row r sees rows <= r only), gradient checks, and bad specs.
#include <doctest/doctest.h>

#include <ssl/head/cpc_context.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

namespace test_cpc_context {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using ssl::head::cpc_context;
using ssl::tensor;

static_assert(ssl::head_policy<cpc_context<float>>);
static_assert(ssl::head::view_aware<cpc_context<float>>);

/// The head with a fixed grid, as a plain layer (for gradcheck).
struct on_grid {
    using value_type = double;
    using cache_type = cpc_context<double>::cache_type;
    cpc_context<double>& h;
    ssl::view_spec spec;
    std::size_t n;
    ssl::forward_result<double, cache_type> forward(const tensor<double>& x) { return h.forward(x, spec, n); }
    tensor<double> backward(const cache_type& c, const tensor<double>& dy) { return h.backward(c, dy); }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        h.for_each_parameter(f, p);
    }
};

ssl::view_spec grid(std::size_t R, std::size_t C) { return {.copies = R * C, .grid_rows = R, .grid_cols = C}; }

}  // namespace

TEST_CASE("cpc_context: slot 0 is z, slot k is W_k c; c is the masked stack on the grid; names") {
    const std::size_t n = 2, R = 4, C = 3, D = 3, K = 2;
    cpc_context<double> h({.hidden = 5, .layers = 2, .steps = K}, D, 7);
    CHECK(h.out_features() == (K + 1) * D);
    CHECK(h.hidden() == 5);
    const auto x = ref::random<double>({R * C * n, D}, 1);
    auto r = h.forward(x, grid(R, C), n);
    REQUIRE(r.out.shape() == ssl::shape_t{R * C * n, K + 1, D});
    // the context by hand: rows -> (N, D, R, C), conv, relu, conv, -> rows
    auto g = cpc_context<double>::to_grid(x, n, R, C);
    CHECK(g.at(1, 2, 3, 1) == x.at((3 * C + 1) * n + 1, 2));  // patch (3, 1) of sample 1, channel 2
    const auto back = cpc_context<double>::from_grid(g, n, R, C);
    CHECK(std::equal(back.begin(), back.end(), x.begin()));
    auto c1 = h.layer(0).forward(g).out;
    for (auto& v : c1) v = std::max(v, 0.0);
    const auto ctx = cpc_context<double>::from_grid(h.layer(1).forward(c1).out, n, R, C);
    CHECK(ref::max_abs_diff(ctx, r.cache.context) < 1e-12);
    for (std::size_t j = 0; j < R * C * n; ++j)
        for (std::size_t d = 0; d < D; ++d) {
            CHECK(r.out.at(j, 0, d) == x.at(j, d));
            for (std::size_t k = 1; k <= K; ++k) {
                double want = 0;
                for (std::size_t e = 0; e < 5; ++e) want += h.predictor(k).weight().value.at(d, e) * ctx.at(j, e);
                CHECK(r.out.at(j, k, d) == doctest::Approx(want).epsilon(1e-12));
            }
        }
    std::vector<std::string> names;
    h.for_each_parameter([&](const std::string& s, auto&) { names.push_back(s); }, "head");
    CHECK(names == std::vector<std::string>{"head.context.0.weight", "head.context.0.bias", "head.context.1.weight",
                                            "head.context.1.bias", "head.predict.1.weight", "head.predict.2.weight"});
}

TEST_CASE("cpc_context: the context at grid row r does not change when rows r + 1 .. change (causal)") {
    const std::size_t n = 3, R = 6, C = 4, D = 4;
    cpc_context<double> h({.layers = 3, .steps = 3}, D, 3);
    const auto x = ref::random<double>({R * C * n, D}, 5);
    const auto base = h.forward(x, grid(R, C), n);
    for (std::size_t from = 1; from < R; ++from) {
        CAPTURE(from);
        auto xp = x.clone();
        // change every patch of rows from .. R - 1 of sample 1
        for (std::size_t r = from; r < R; ++r)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t d = 0; d < D; ++d) xp.at((r * C + c) * n + 1, d) += 0.5 + double(d);
        const auto y = h.forward(xp, grid(R, C), n);
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t s = 0; s < n; ++s) {
                    const std::size_t j = (r * C + c) * n + s;
                    double d = 0;
                    for (std::size_t e = 0; e < h.hidden(); ++e)
                        d = std::max(d, std::abs(y.cache.context.at(j, e) - base.cache.context.at(j, e)));
                    for (std::size_t k = 1; k <= 3; ++k)
                        for (std::size_t e = 0; e < D; ++e)
                            d = std::max(d, std::abs(y.out.at(j, k, e) - base.out.at(j, k, e)));
                    if (r < from || s != 1)
                        CHECK(d == 0.0);  // rows above the change, and the other samples: untouched
                    else if (r == from && c == 1)
                        CHECK(d > 1e-6);  // the changed row itself is seen
                }
    }
}

TEST_CASE("cpc_context: bad specs and misuse are refused with a sentence") {
    cpc_context<float> h({.steps = 3}, 4, 1);
    const auto x = ref::random<float>({2 * 9, 4}, 1);
    CHECK_THROWS_WITH_AS(h.forward(x, {.copies = 9}, 2), doctest::Contains("needs the patch grid"), ssl::shape_error);
    CHECK_THROWS_WITH_AS(h.forward(x, grid(3, 3), 2),
                         doctest::Contains("K = 3 prediction steps on a grid of 3 rows"), ssl::shape_error);
    CHECK_THROWS_WITH_AS(h.forward(x), doctest::Contains("called without a view spec"), ssl::shape_error);
    cpc_context<float> h2({.steps = 2}, 4, 1);
    CHECK_THROWS_WITH_AS(h2.forward(x, grid(3, 3), 3), doctest::Contains("for a 3x3 grid of 3 samples"),
                         ssl::shape_error);
    CHECK_THROWS_AS(cpc_context<float>({.steps = 0}, 4, 1), ssl::value_error);
    CHECK_THROWS_AS(cpc_context<float>({.kernel = 2}, 4, 1), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("cpc_context gradcheck: the masked context network, the W_k predictors and the pass-through") {
        for (std::size_t layers : {std::size_t{1}, std::size_t{3}}) {
            CAPTURE(layers);
            cpc_context<double> h({.hidden = 4, .layers = layers, .steps = 2}, 3, 9);
            on_grid m{h, grid(4, 3), 2};
            auto r = ssl::testing::gradcheck(m, ref::random<double>({4 * 3 * 2, 3}, 2));
            CHECK_MESSAGE(r.ok, r.str());
            CHECK(r.checked > 100);
        }
    }
}

}  // namespace test_cpc_context
