// Heads of the clustering methods: SeLa's H classifiers and DeeperCluster's
// super-class + per-super-class sub-class classifiers.
#include <doctest/doctest.h>

#include <ssl/core/concepts.hpp>
#include <ssl/head/multi_classifier.hpp>
#include <ssl/testing/gradcheck.hpp>

namespace test_multi_classifier {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;

static_assert(ssl::head_policy<ssl::head::multi_classifier<float>>);
static_assert(ssl::head_policy<ssl::head::hierarchical_classifier<float>>);

TEST_CASE("multi_classifier: H heads of K classes are column blocks of one linear layer") {
    ssl::head::multi_classifier<float> h({.heads = 3, .classes = 5}, 8, 7);
    CHECK(h.heads() == 3);
    CHECK(h.classes() == 5);
    CHECK(h.out_features() == 15);
    auto x = ssl::tensor<float>::full({4, 8}, 0.5f);
    auto y = h.forward(x).out;
    CHECK(y.shape() == shape_t{4, 15});
    std::vector<std::string> names;
    h.for_each_parameter([&](const std::string& n, auto& p) { names.push_back(n + p.value.shape().str()); }, "head");
    REQUIRE(names.size() == 2);
    CHECK(names[0].rfind("head.weight", 0) == 0);
    CHECK(names[1].rfind("head.bias", 0) == 0);
    // head 1, class 2 is column 7: w[7] . x + b[7]
    auto& w = h.linear().weight().value;
    auto& b = h.linear().bias().value;
    double z = b[7];
    for (std::size_t j = 0; j < 8; ++j) z += 0.5 * w[7 * 8 + j];
    CHECK(y[2 * 15 + 7] == doctest::Approx(z).epsilon(1e-5));
    CHECK_THROWS_AS((ssl::head::multi_classifier<float>({.heads = 0, .classes = 5}, 8)), ssl::value_error);
    CHECK_THROWS_AS((ssl::head::multi_classifier<float>({.heads = 2, .classes = 1}, 8)), ssl::value_error);
}

TEST_CASE("multi_classifier: re-initialised in place, parameters keep their addresses") {
    ssl::head::multi_classifier<float> h({.heads = 2, .classes = 4}, 6, 1);
    std::vector<const void*> before;
    h.for_each_parameter([&](const std::string&, auto& p) { before.push_back(&p); }, "");
    const float w0 = h.linear().weight().value[0];
    h = ssl::head::multi_classifier<float>(h.config(), 6, 99);
    std::vector<const void*> after;
    h.for_each_parameter([&](const std::string&, auto& p) { after.push_back(&p); }, "");
    CHECK(before == after);
    CHECK(h.linear().weight().value[0] != w0);
}

TEST_CASE("hierarchical_classifier: super logits, then one block of k2 per super-class") {
    ssl::head::hierarchical_classifier<float> h({.super_classes = 4, .sub_classes = 3}, 5, 2);
    CHECK(h.out_features() == 4 + 4 * 3);
    auto x = ssl::testing::random_tensor({2, 5}, 3);
    ssl::tensor<float> xf({2, 5});
    for (std::size_t i = 0; i < 10; ++i) xf[i] = static_cast<float>(x[i]);
    auto y = h.forward(xf).out;
    CHECK(y.shape() == shape_t{2, 16});
    std::vector<std::string> names;
    std::vector<ssl::tensor<float>> vals;
    h.for_each_parameter([&](const std::string& n, auto& p) {
        names.push_back(n);
        vals.push_back(p.value);
    }, "head");
    CHECK(names == std::vector<std::string>{"head.super.weight", "head.super.bias", "head.sub.weight", "head.sub.bias"});
    // row 1, super-class 2's sub-class 1 = sub column 2*3+1 = 7, output column 4 + 7
    double z = vals[3][7];
    for (std::size_t j = 0; j < 5; ++j) z += vals[2][7 * 5 + j] * xf[5 + j];
    CHECK(y[16 + 4 + 7] == doctest::Approx(z).epsilon(1e-5));
    double s = vals[1][2];
    for (std::size_t j = 0; j < 5; ++j) s += vals[0][2 * 5 + j] * xf[5 + j];
    CHECK(y[16 + 2] == doctest::Approx(s).epsilon(1e-5));
    CHECK_THROWS_AS((ssl::head::hierarchical_classifier<float>({.super_classes = 1, .sub_classes = 3}, 5)),
                    ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("gradcheck: multi_classifier and hierarchical_classifier") {
        auto x = ssl::testing::random_tensor({5, 6}, 4);
        ssl::head::multi_classifier<double> a({.heads = 3, .classes = 4}, 6, 1);
        auto ra = ssl::testing::gradcheck(a, x);
        CHECK_MESSAGE(ra.ok, ra.str());
        ssl::head::hierarchical_classifier<double> b({.super_classes = 4, .sub_classes = 3}, 6, 1);
        auto rb = ssl::testing::gradcheck(b, x);
        CHECK_MESSAGE(rb.ok, rb.str());
        CHECK(rb.checked > 6 * 5 + 4 * 7 + 12 * 7 - 1);
    }
}

}  // namespace test_multi_classifier
