#include <doctest/doctest.h>

#include <cmath>

#include <ssl/head/mlp.hpp>
#include <ssl/testing/gradcheck.hpp>

namespace test_mlp {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;

TEST_CASE("heads: shapes, names, bad configs") {
    ssl::head::mlp<float> m({64, 16, true}, 32);
    auto y = m.forward(ssl::tensor<float>::zeros({4, 32})).out;
    CHECK(y.shape() == shape_t{4, 16});
    std::vector<std::string> names;
    m.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "head");
    CHECK(names == std::vector<std::string>{"head.0.weight", "head.1.weight", "head.1.bias", "head.3.weight", "head.3.bias"});
    ssl::head::mlp<float> nobn({64, 16, false}, 32);
    names.clear();
    nobn.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "");
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"});
    ssl::head::mlp<float> outbn({.hidden = 64, .out = 16, .batch_norm = true, .output_batch_norm = true}, 32);
    names.clear();
    outbn.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "");
    CHECK(names == std::vector<std::string>{"0.weight", "1.weight", "1.bias", "3.weight", "4.weight", "4.bias"});
    names.clear();
    outbn.for_each_buffer([&](const std::string& n, auto&) { names.push_back(n); }, "");
    CHECK(names == std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked",
                                            "4.running_mean", "4.running_var", "4.num_batches_tracked"});
    {  // in training the output is batch-normalized: each column has mean 0 and variance 1 (gamma 1, beta 0)
        const auto xd = ssl::testing::random_tensor({32, 32}, 3);
        ssl::tensor<float> x(xd.shape());
        for (std::size_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(xd.data()[i]);
        auto z = outbn.forward(x).out;
        auto at = [&](std::size_t i, std::size_t k) { return static_cast<double>(z.data()[i * 16 + k]); };
        for (std::size_t k = 0; k < 16; ++k) {
            double m = 0, v = 0;
            for (std::size_t i = 0; i < 32; ++i) m += at(i, k) / 32.0;
            for (std::size_t i = 0; i < 32; ++i) v += (at(i, k) - m) * (at(i, k) - m) / 32.0;
            CHECK(std::abs(m) < 1e-5);
            CHECK(v == doctest::Approx(1.0).epsilon(1e-3));
        }
    }
    ssl::head::projector_predictor<float> pp({{64, 16, true}, {32, 16, true}}, 32);
    CHECK(pp.forward(ssl::tensor<float>::zeros({4, 32})).out.shape() == shape_t{4, 16});
    CHECK(&pp.target_part() != nullptr);
    CHECK(pp.target_part().out_features() == 16);
    CHECK_THROWS_AS((ssl::head::projector_predictor<float>({{64, 16, true}, {32, 8, true}}, 32)), ssl::value_error);
    CHECK_THROWS_AS((ssl::head::mlp<float>({0, 16, true}, 32)), ssl::value_error);
    CHECK_THROWS_AS((ssl::head::linear_classifier<float>({1}, 32)), ssl::value_error);
    ssl::head::linear_classifier<float> lc({4}, 32);
    CHECK(lc.out_features() == 4);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("head gradchecks: mlp with and without BN, with an output BN, projector+predictor, linear classifier") {
        auto x = ssl::testing::random_tensor({6, 5}, 1);
        ssl::head::mlp<double> a({7, 3, true}, 5), b({7, 3, false}, 5);
        ssl::head::mlp<double> c({.hidden = 7, .out = 3, .batch_norm = true, .output_batch_norm = true}, 5);
        ssl::head::mlp<double> d({.hidden = 7, .out = 3, .batch_norm = false, .output_batch_norm = true}, 5);
        ssl::head::projector_predictor<double> pp({{7, 3, true}, {4, 3, true}}, 5);
        ssl::head::linear_classifier<double> lc({4}, 5);
        for (bool train : {true, false}) {
            a.train(train);
            b.train(train);
            pp.train(train);
            auto r1 = ssl::testing::gradcheck(a, x);
            CHECK_MESSAGE(r1.ok, r1.str());
            auto r2 = ssl::testing::gradcheck(b, x);
            CHECK_MESSAGE(r2.ok, r2.str());
            auto r3 = ssl::testing::gradcheck(pp, x);
            CHECK_MESSAGE(r3.ok, r3.str());
            c.train(train);
            d.train(train);
            auto r5 = ssl::testing::gradcheck(c, x);
            CHECK_MESSAGE(r5.ok, r5.str());
            auto r6 = ssl::testing::gradcheck(d, x);
            CHECK_MESSAGE(r6.ok, r6.str());
        }
        auto r4 = ssl::testing::gradcheck(lc, x);
        CHECK_MESSAGE(r4.ok, r4.str());
    }
}

}  // namespace test_mlp
