#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <ssl/nn/dropout.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_dropout {

using ssl::tensor;
using ssl::nn::dropout;

TEST_CASE("dropout: kept elements scaled by 1 / (1 - p); kept fraction within 5 sigma of 1 - p") {
    for (double p : {0.1, 0.5, 0.8}) {
        CAPTURE(p);
        dropout<double> d({p, 42});
        const std::size_t n = 200000;
        auto x = ref::random<double>({n}, 1, 0.5, 1.5);  // no zeros in x
        auto y = d.forward(x).out;
        std::size_t kept = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (y[i] != 0.0) {
                ++kept;
                CHECK(y[i] == doctest::Approx(x[i] / (1 - p)).epsilon(1e-15));
            }
        }
        const double sd = std::sqrt(double(n) * p * (1 - p));
        CHECK(std::abs(double(kept) - double(n) * (1 - p)) < 5 * sd);
    }
}

TEST_CASE("dropout: deterministic per seed and step; steps and seeds differ; set_step replays") {
    auto x = tensor<float>::full({4, 8, 5, 5}, 1.0f);
    dropout<float> a({0.5, 7}), b({0.5, 7}), c({0.5, 8});
    auto a0 = a.forward(x).out, a1 = a.forward(x).out;
    auto b0 = b.forward(x).out;
    auto c0 = c.forward(x).out;
    CHECK(ref::max_abs_diff(a0, b0) == 0.0);   // same seed, same step
    CHECK(ref::max_abs_diff(a0, a1) > 0.0);    // next step, a new mask
    CHECK(ref::max_abs_diff(a0, c0) > 0.0);    // another seed
    CHECK(a.step() == 2);
    a.set_step(1);
    CHECK(ref::max_abs_diff(a.forward(x).out, a1) == 0.0);
    // the mask is the documented function of (seed, step, element)
    for (std::size_t i = 0; i < x.numel(); ++i) CHECK((a0[i] != 0.0f) == dropout<float>::keep(7, 0, i, 0.5));
}

TEST_CASE("dropout: rows keyed by their place in a larger batch draw that batch's mask for those rows") {
    // 12 rows of 7 (an odd width: the Philox words straddle the rows)
    const auto x = ref::random<float>({12, 7}, 3, 0.5f, 1.5f);
    dropout<float> whole({0.4, 9});
    const auto all = whole.forward(x).out;
    // identity places: the plain forward, bit for bit
    std::vector<std::size_t> same(12);
    for (std::size_t r = 0; r < 12; ++r) same[r] = r;
    dropout<float> again({0.4, 9});
    CHECK(ref::max_abs_diff(again.forward(x, same).out, all) == 0.0);
    // rows 2, 5, 11 of the batch, alone: the batch's mask at those rows
    const std::vector<std::size_t> some{2, 5, 11};
    tensor<float> part({3, 7});
    for (std::size_t q = 0; q < 3; ++q)
        for (std::size_t j = 0; j < 7; ++j) part[q * 7 + j] = x[some[q] * 7 + j];
    dropout<float> slice({0.4, 9});
    auto r = slice.forward(part, some);
    for (std::size_t q = 0; q < 3; ++q)
        for (std::size_t j = 0; j < 7; ++j) CHECK(r.out[q * 7 + j] == all[some[q] * 7 + j]);
    // backward uses that mask; a place list of the wrong length is refused
    const auto dx = slice.backward(r.cache, tensor<float>::full({3, 7}, 1.0f));
    for (std::size_t i = 0; i < 21; ++i) CHECK((dx[i] != 0.0f) == (r.out[i] != 0.0f));
    CHECK_THROWS_AS(slice.forward(part, std::vector<std::size_t>{1, 2}), ssl::shape_error);
}

TEST_CASE("dropout: eval and p = 0 are the identity; p = 1 gives zeros; backward uses the forward's mask") {
    auto x = ref::random<double>({3, 17}, 2);
    dropout<double> d({0.3, 1});
    d.train(false);
    auto r = d.forward(x);
    CHECK(ref::max_abs_diff(r.out, x) == 0.0);
    CHECK(ref::max_abs_diff(d.backward(r.cache, x), x) == 0.0);
    CHECK(d.step() == 0);  // eval draws no mask
    dropout<double> zero({0.0, 1});
    CHECK(ref::max_abs_diff(zero.forward(x).out, x) == 0.0);
    dropout<double> all({1.0, 1});
    auto ra = all.forward(x);
    for (auto v : ra.out) CHECK(v == 0.0);
    for (auto v : all.backward(ra.cache, x)) CHECK(v == 0.0);
    d.train(true);
    auto rt = d.forward(x);
    auto dy = ref::random<double>(x.shape(), 3);
    auto dx = d.backward(rt.cache, dy);
    for (std::size_t i = 0; i < x.numel(); ++i) CHECK(dx[i] == doctest::Approx(dy[i] * rt.out[i] / x[i]));
    CHECK_THROWS_AS(d.backward(rt.cache, tensor<double>({3, 16})), ssl::shape_error);
    CHECK_THROWS_AS(dropout<float>({1.5}), ssl::value_error);
    CHECK_THROWS_AS(dropout<float>({-0.1}), ssl::value_error);
}

/// Dropout with its mask pinned (the same step on every call), so the
/// finite differences see one function.
struct pinned {
    using value_type = double;
    using cache_type = dropout<double>::cache_type;
    dropout<double> d;
    auto forward(const tensor<double>& x) {
        d.set_step(5);
        return d.forward(x);
    }
    tensor<double> backward(const cache_type& c, const tensor<double>& dy) { return d.backward(c, dy); }
    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
};

TEST_SUITE("gradcheck") {
    TEST_CASE("dropout gradcheck: training (mask pinned) and eval") {
        pinned p{dropout<double>({0.4, 9})};
        auto r = ssl::testing::gradcheck(p, ref::random<double>({3, 4, 2, 3}, 8));
        CHECK_MESSAGE(r.ok, r.str());
        p.d.train(false);
        auto re = ssl::testing::gradcheck(p, ref::random<double>({5, 7}, 9));
        CHECK_MESSAGE(re.ok, re.str());
    }
}

}  // namespace test_dropout
