#include <cmath>
#include <doctest/doctest.h>

#include <ssl/core/tensor.hpp>
#include <ssl/core/views.hpp>

#include <string>

namespace test_tensor {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;

TEST_CASE("tensor: shape, strides, element access") {
    tensor<float> t({2, 3, 4});
    CHECK(t.rank() == 3);
    CHECK(t.numel() == 24);
    CHECK(t.shape() == shape_t{2, 3, 4});
    CHECK(t.strides() == shape_t{12, 4, 1});
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    for (std::size_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);
    CHECK(t.at(1, 2, 3) == 23.0f);
    CHECK(t.at(0, 1, 0) == 4.0f);
    CHECK_THROWS_AS(t.at(2, 0, 0), ssl::shape_error);
    CHECK_THROWS_AS(t.at(0, 0), ssl::shape_error);
    CHECK(shape_t{5}.str() == "(5,)");
    CHECK(shape_t{}.numel() == 1);
}

TEST_CASE("tensor: copies share storage, clone does not") {
    auto a = tensor<double>::zeros({3});
    tensor<double> b = a;
    b[1] = 5;
    CHECK(a[1] == 5);
    CHECK(a.shares_storage_with(b));
    auto c = a.clone();
    c[1] = 7;
    CHECK(a[1] == 5);
    CHECK_FALSE(a.shares_storage_with(c));
}

TEST_CASE("tensor: from, fill, reshape, slice, assign") {
    auto t = tensor<float>::from({2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t.at(1, 0) == 4.0f);
    CHECK_THROWS_AS(tensor<float>::from({2, 2}, {1, 2, 3}), ssl::shape_error);
    auto r = t.reshape({3, 2});
    CHECK(r.at(2, 1) == 6.0f);
    CHECK(r.shares_storage_with(t));
    try {
        (void)t.reshape({4, 2});
        FAIL("reshape to the wrong size must throw");
    } catch (const ssl::shape_error& e) {
        const std::string m = e.what();
        CHECK(m.find("(2, 3)") != std::string::npos);
        CHECK(m.find("(4, 2)") != std::string::npos);
    }
    auto s = t.slice(1, 2);
    CHECK(s.shape() == shape_t{1, 3});
    CHECK(s[0] == 4.0f);
    s[2] = 60;
    CHECK(t.at(1, 2) == 60.0f);
    CHECK_THROWS_AS(t.slice(1, 3), ssl::shape_error);
    auto u = tensor<float>::zeros({2, 3});
    u.assign(t);
    CHECK(u.at(0, 1) == 2.0f);
    CHECK_THROWS_AS(u.assign(tensor<float>({3, 2})), ssl::shape_error);
}

TEST_CASE("tensor: shape errors name both shapes") {
    tensor<float> a({2, 3}), b({3, 2});
    try {
        ssl::check_same_shape(a, b, "add");
        FAIL("must throw");
    } catch (const ssl::shape_error& e) {
        const std::string m = e.what();
        CHECK(m.find("add") != std::string::npos);
        CHECK(m.find("(2, 3)") != std::string::npos);
        CHECK(m.find("(3, 2)") != std::string::npos);
    }
}

TEST_CASE("tensor: xtensor views are zero-copy, Eigen maps alias the data") {
    auto t = tensor<float>::from({2, 2}, {1, 2, 3, 4});
    auto v = ssl::as_xtensor<2>(t);
    CHECK(v(1, 0) == 3.0f);
    v(0, 1) = 20;
    CHECK(t[1] == 20.0f);
    CHECK_THROWS_AS(ssl::as_xtensor<3>(t), ssl::shape_error);
    xt::xtensor<float, 2> owned = ssl::to_xtensor<2>(t);
    owned(0, 0) = -1;
    CHECK(t[0] == 1.0f);
    auto back = ssl::from_xtensor<double>(owned);
    CHECK(back.shape() == shape_t{2, 2});
    CHECK(back[0] == -1.0);
    CHECK(back[3] == 4.0);
    auto M = ssl::as_matrix(t);
    CHECK(M(1, 1) == 4.0f);
    M(1, 0) = 30;
    CHECK(t.at(1, 0) == 30.0f);
    CHECK_THROWS_AS(ssl::as_matrix(t, 3, 2), ssl::shape_error);
    const auto c = ssl::cast<double>(t);
    CHECK(c[2] == 30.0);
}

TEST_CASE("tensor: the caching pool reuses freed storage") {
    if (ssl::host_pool_poisoning()) {  // SSL_POISON_ALLOCATIONS: no caching by design
        tensor<float> a({1000, 17});
        for (float v : a) REQUIRE(std::isnan(v));
        return;
    }
    const auto before = ssl::host_pool_stats();
    { tensor<float> a({1000, 17}); }
    const auto mid = ssl::host_pool_stats();
    for (int i = 0; i < 5; ++i) {
        tensor<float> b({1000, 17});
        b.fill(1.0f);
    }
    const auto after = ssl::host_pool_stats();
    CHECK(after.system_allocations == mid.system_allocations);
    CHECK(after.reuses >= mid.reuses + 5);
    CHECK(mid.system_allocations <= before.system_allocations + 1);
}

}  // namespace test_tensor
