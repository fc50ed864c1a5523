#include <doctest/doctest.h>

#include <ssl/head/hypercolumn.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "nn/reference.hpp"

namespace test_hypercolumn {

using ssl::tensor;
using ssl::head::hypercolumn;
using ssl::head::hypercolumn_config;

static_assert(ssl::head::tap_reading<hypercolumn<float>>);
static_assert(ssl::head_policy<hypercolumn<float>>);

hypercolumn_config two_taps(double p = 0.0) {
    hypercolumn_config c;
    c.taps = {"a", "b"};
    c.tap_channels = {3, 2};
    c.grid = 4;
    c.hidden = 6;
    c.dropout = p;
    c.outputs = 4;
    return c;
}

TEST_CASE("hypercolumn: row c * B + b holds every tap resized to the grid, read at cell c of image b") {
    hypercolumn<double> h(two_taps(), 0, 3);
    const auto t0 = ref::random<double>({2, 3, 8, 8}, 1), t1 = ref::random<double>({2, 2, 2, 2}, 2);
    auto r = h.forward_taps({t0, t1});
    REQUIRE(r.out.shape() == ssl::shape_t{16 * 2, 4});
    const auto& H = r.cache.fc1.x;  // the hypercolumns, (cells * B, 5)
    REQUIRE(H.shape() == ssl::shape_t{32, 5});
    ssl::nn::upsample_bilinear2d<double> up({4, 4});
    const auto u0 = up.forward(t0).out, u1 = up.forward(t1).out;
    for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t cell = 0; cell < 16; ++cell) {
            const std::size_t row = cell * 2 + b, gy = cell / 4, gx = cell % 4;
            for (std::size_t ch = 0; ch < 3; ++ch) CHECK(H.at(row, ch) == u0.at(b, ch, gy, gx));
            for (std::size_t ch = 0; ch < 2; ++ch) CHECK(H.at(row, 3 + ch) == u1.at(b, ch, gy, gx));
        }
    std::vector<std::string> names;
    h.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "head");
    CHECK(names == std::vector<std::string>{"head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias"});
    CHECK(h.hypercolumn_dim() == 5);
}

TEST_CASE("hypercolumn: dropout acts in training only; bad taps are refused") {
    hypercolumn<float> h(two_taps(0.5), 0, 3);
    const auto t0 = ref::random<float>({2, 3, 8, 8}, 1), t1 = ref::random<float>({2, 2, 2, 2}, 2);
    h.train(false);
    auto e1 = h.forward_taps({t0, t1}).out, e2 = h.forward_taps({t0, t1}).out;
    CHECK(ref::max_abs_diff(e1, e2) == 0.0);
    h.train(true);
    auto t = h.forward_taps({t0, t1}).out;
    CHECK(ref::max_abs_diff(t, e1) > 0.0);
    CHECK_THROWS_AS(h.forward_taps({t0}), ssl::shape_error);
    CHECK_THROWS_AS(h.forward_taps({t0, ref::random<float>({2, 3, 2, 2}, 2)}), ssl::shape_error);  // 3 channels, not 2
    CHECK_THROWS_AS(h.forward_taps({t0, ref::random<float>({1, 2, 2, 2}, 2)}), ssl::shape_error);  // batch differs
    CHECK_THROWS_AS(h.forward(t0), ssl::value_error);  // two taps: forward(x) does not fit
    hypercolumn_config bad = two_taps();
    bad.tap_channels = {3};
    CHECK_THROWS_AS(hypercolumn<float>(bad, 0, 0), ssl::value_error);
}

TEST_SUITE("gradcheck") {
    /// The head with fixed taps as a layer of one input: the first tap (the
    /// second is fixed), so gradcheck sees parameters and one tap gradient;
    /// a second pass checks the second tap.
    struct on_tap {
        using value_type = double;
        using cache_type = hypercolumn<double>::cache_type;
        hypercolumn<double>& h;
        tensor<double> other;
        std::size_t which;
        auto forward(const tensor<double>& x) {
            return which == 0 ? h.forward_taps({x, other}) : h.forward_taps({other, x});
        }
        tensor<double> backward(const cache_type& c, const tensor<double>& dy) { return h.backward_taps(c, dy)[which]; }
        template <class F>
        void for_each_parameter(F&& f, const std::string& p) {
            h.for_each_parameter(f, p);
        }
    };
    TEST_CASE("hypercolumn gradcheck: both taps and every parameter, eval and train without dropout") {
        for (bool train : {false, true}) {
            hypercolumn<double> h(two_taps(train ? 0.0 : 0.5), 0, 5);
            h.train(train);
            const auto t0 = ref::random<double>({2, 3, 6, 6}, 1), t1 = ref::random<double>({2, 2, 3, 3}, 2);
            on_tap a{h, t1, 0};
            auto r0 = ssl::testing::gradcheck(a, t0);
            CHECK_MESSAGE(r0.ok, r0.str());
            on_tap b{h, t0, 1};
            auto r1 = ssl::testing::gradcheck(b, t1);
            CHECK_MESSAGE(r1.ok, r1.str());
        }
    }
}

}  // namespace test_hypercolumn
