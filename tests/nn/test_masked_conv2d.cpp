#include <doctest/doctest.h>

#include <ssl/nn/masked_conv2d.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_masked_conv2d {

using ssl::tensor;
using ssl::nn::masked_conv2d;

TEST_CASE("masked_conv2d: rows below the kernel centre are zero; output equals a conv with the masked kernel") {
    for (bool centre : {true, false}) {
        for (std::size_t k : {std::size_t{3}, std::size_t{5}}) {
            CAPTURE(centre);
            CAPTURE(k);
            masked_conv2d<double> m({3, 4, k, true, centre}, 11);
            const auto& w = m.weight().value;
            for (std::size_t o = 0; o < 4; ++o)
                for (std::size_t c = 0; c < 3; ++c)
                    for (std::size_t a = 0; a < k; ++a)
                        for (std::size_t b = 0; b < k; ++b) {
                            const bool visible = centre ? a <= k / 2 : a < k / 2;
                            CHECK(m.row_visible(a) == visible);
                            if (!visible) CHECK(w.at(o, c, a, b) == 0.0);
                        }
            auto x = ref::random<double>({2, 3, 6, 5}, 2);
            auto y = m.forward(x).out;
            CHECK(ref::max_abs_diff(y, ref::conv2d(x, w, &m.bias().value, 1, k / 2)) < 1e-12);
        }
    }
}

TEST_CASE("masked_conv2d: output row i depends on input rows <= i only (< i when strict), through two layers") {
    for (bool centre : {true, false}) {
        CAPTURE(centre);
        masked_conv2d<double> m1({2, 3, 3, true, centre}, 1), m2({3, 2, 3, true, true}, 2);
        auto x = ref::random<double>({1, 2, 7, 4}, 3);
        auto y = m2.forward(m1.forward(x).out).out;
        for (std::size_t r = 0; r < 7; ++r) {
            auto xp = x.clone();
            for (std::size_t c = 0; c < 2; ++c)
                for (std::size_t j = 0; j < 4; ++j) xp.at(0, c, r, j) += 1.0;
            auto yp = m2.forward(m1.forward(xp).out).out;
            for (std::size_t i = 0; i < 7; ++i) {
                double d = 0;
                for (std::size_t c = 0; c < 2; ++c)
                    for (std::size_t j = 0; j < 4; ++j) d = std::max(d, std::abs(yp.at(0, c, i, j) - y.at(0, c, i, j)));
                const bool may_see = centre ? i >= r : i > r;
                CAPTURE(r);
                CAPTURE(i);
                if (!may_see) CHECK(d == 0.0);
                if (i == r + 1) CHECK(d > 0.0);  // the row just below does see it
            }
        }
    }
}

TEST_CASE("masked_conv2d: masked taps stay zero (forward re-zeroes, backward gives them no gradient)") {
    masked_conv2d<float> m({2, 2, 3}, 4);
    auto x = ref::random<float>({2, 2, 5, 5}, 5);
    auto y0 = m.forward(x).out;
    m.weight().value.at(1, 0, 2, 1) = 100.0f;  // a loaded checkpoint or an optimizer writes a masked tap
    auto r = m.forward(x);
    CHECK(ref::max_abs_diff(r.out, y0) == 0.0);
    CHECK(m.weight().value.at(1, 0, 2, 1) == 0.0f);
    ssl::zero_grad(m);
    m.backward(r.cache, ref::random<float>(r.out.shape(), 6));
    for (std::size_t o = 0; o < 2; ++o)
        for (std::size_t c = 0; c < 2; ++c)
            for (std::size_t b = 0; b < 3; ++b) CHECK(m.weight().grad.at(o, c, 2, b) == 0.0f);
    CHECK_THROWS_AS(masked_conv2d<float>({2, 2, 4}), ssl::value_error);
    CHECK_THROWS_AS(masked_conv2d<float>({2, 2, 1, true, false}), ssl::value_error);
    std::vector<std::string> names;
    m.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "context.0");
    CHECK(names == std::vector<std::string>{"context.0.weight", "context.0.bias"});
}

TEST_SUITE("gradcheck") {
    TEST_CASE("masked_conv2d gradcheck: 3x3 and 5x5, with and without the centre row") {
        for (bool centre : {true, false}) {
            masked_conv2d<double> m3({2, 3, 3, true, centre}, 7), m5({2, 2, 5, false, centre}, 8);
            auto r3 = ssl::testing::gradcheck(m3, ref::random<double>({2, 2, 4, 5}, 9));
            CHECK_MESSAGE(r3.ok, r3.str());
            auto r5 = ssl::testing::gradcheck(m5, ref::random<double>({1, 2, 6, 4}, 10));
            CHECK_MESSAGE(r5.ok, r5.str());
        }
    }
}

}  // namespace test_masked_conv2d
