#include <doctest/doctest.h>

#include <ssl/ops/rows.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace test_rows {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
namespace ops = ssl::ops;

/// Restores the thread count when a test changes it.
struct thread_count_guard {
    std::size_t saved = ssl::num_threads();
    ~thread_count_guard() { ssl::set_num_threads(saved); }
};

/// A (n, d) tensor of values in [lo, hi) from a fixed seed.
template <class T>
tensor<T> random_rows(std::size_t n, std::size_t d, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
    return ssl::cast<T>(ssl::testing::random_tensor({n, d}, seed, lo, hi));
}

template <class T>
bool bitwise_equal(const tensor<T>& a, const tensor<T>& b) {
    return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

/// The reference: y_i = x_i / max(||x_i||, eps) with plain loops in long double.
template <class T>
tensor<T> reference_normalize(const tensor<T>& x, double eps, std::vector<long double>* norms = nullptr) {
    const std::size_t n = x.dim(0), d = x.dim(1);
    tensor<T> y(x.shape());
    for (std::size_t i = 0; i < n; ++i) {
        long double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += static_cast<long double>(x.at(i, j)) * x.at(i, j);
        const long double nr = std::sqrt(s);
        if (norms) norms->push_back(nr);
        const long double den = std::max<long double>(nr, eps);
        for (std::size_t j = 0; j < d; ++j) y.at(i, j) = static_cast<T>(x.at(i, j) / den);
    }
    return y;
}

template <class T>
constexpr double tol() {
    return std::is_same_v<T, float> ? 1e-6 : 1e-14;
}

TEST_CASE_TEMPLATE("normalize_rows: plain loop reference, zero rows stay zero, rows below eps are x / eps", T, float,
                   double) {
    auto x = random_rows<T>(7, 5, 1);
    for (std::size_t j = 0; j < 5; ++j) x.at(2, j) = T(0);               // a zero row
    for (std::size_t j = 0; j < 5; ++j) x.at(4, j) = T(1e-14) * T(j + 1);  // ||x|| ~ 7.4e-14 < eps
    std::vector<long double> ref_norms;
    const auto ref = reference_normalize(x, 1e-12, &ref_norms);
    const auto y = ops::normalize_rows(x);
    REQUIRE(y.shape() == x.shape());
    for (std::size_t i = 0; i < y.numel(); ++i) CHECK(y[i] == doctest::Approx(ref[i]).epsilon(tol<T>()));
    for (std::size_t j = 0; j < 5; ++j) {
        CHECK(y.at(2, j) == T(0));
        CHECK(y.at(4, j) == doctest::Approx(0.01 * static_cast<double>(j + 1)).epsilon(tol<T>()));  // x / 1e-12
    }
    for (std::size_t i : {0u, 1u, 3u, 5u, 6u}) {
        double s = 0;
        for (std::size_t j = 0; j < 5; ++j) s += static_cast<double>(y.at(i, j)) * y.at(i, j);
        CHECK(s == doctest::Approx(1.0).epsilon(10 * tol<T>()));
    }

    // with norms: the same y bit for bit, and the norms before the floor
    const auto r = ops::normalize_rows_with_norms(x);
    CHECK(bitwise_equal(r.y, y));
    REQUIRE(r.norms.shape() == ssl::shape_t{7});
    for (std::size_t i = 0; i < 7; ++i)
        CHECK(static_cast<double>(r.norms[i]) == doctest::Approx(static_cast<double>(ref_norms[i])).epsilon(tol<T>()));
    CHECK(r.norms[2] == T(0));

    // a larger eps floors more rows: eps = 2 leaves rows of norm < 2 at x / 2
    const auto y2 = ops::normalize_rows(x, 2.0);
    const auto ref2 = reference_normalize(x, 2.0);
    for (std::size_t i = 0; i < y2.numel(); ++i) CHECK(y2[i] == doctest::Approx(ref2[i]).epsilon(tol<T>()));
    CHECK(y2.at(0, 0) == doctest::Approx(static_cast<double>(x.at(0, 0)) / 2).epsilon(tol<T>()));

    // in place and the pointer versions give the same bits
    auto z = x.clone();
    ops::normalize_rows_inplace(z);
    CHECK(bitwise_equal(z, y));
    tensor<T> w(x.shape());
    for (std::size_t i = 0; i < 7; ++i) {
        const double nr = ops::normalize_row(x.data() + i * 5, w.data() + i * 5, 5);
        CHECK(static_cast<T>(nr) == r.norms[i]);
    }
    CHECK(bitwise_equal(w, y));
    auto v = x.clone();
    for (std::size_t i = 0; i < 7; ++i) ops::normalize_row(v.data() + i * 5, 5);
    CHECK(bitwise_equal(v, y));
    // the input is untouched, an empty batch is fine
    CHECK(x.at(2, 0) == T(0));
    CHECK(ops::normalize_rows(tensor<T>({0, 5})).shape() == ssl::shape_t{0, 5});
}

TEST_CASE("normalize_row on double buffers (k-means centroids): the same convention") {
    std::vector<double> c{3, 4, 0}, zero(3, 0.0), tiny{3e-13, 4e-13, 0};
    CHECK(ops::normalize_row(c.data(), 3) == 5.0);
    CHECK(c[0] == 0.6);
    CHECK(c[1] == 0.8);
    CHECK(c[2] == 0.0);
    CHECK(ops::normalize_row(zero.data(), 3) == 0.0);
    CHECK(zero == std::vector<double>(3, 0.0));
    CHECK(ops::normalize_row(tiny.data(), 3) == doctest::Approx(5e-13).epsilon(1e-15));
    CHECK(tiny[0] == doctest::Approx(0.3).epsilon(1e-14));  // divided by the floor 1e-12
    CHECK(tiny[1] == doctest::Approx(0.4).epsilon(1e-14));
}

TEST_CASE_TEMPLATE("normalize_rows: bad shapes and eps", T, float, double) {
    CHECK_THROWS_AS(ops::normalize_rows(tensor<T>({6})), ssl::shape_error);
    CHECK_THROWS_AS(ops::normalize_rows(tensor<T>({2, 3, 4})), ssl::shape_error);
    CHECK_THROWS_AS(ops::normalize_rows(tensor<T>({2, 3}, T(1)), 0.0), ssl::value_error);
    CHECK_THROWS_AS(ops::normalize_rows(tensor<T>({2, 3}, T(1)), -1.0), ssl::value_error);
    tensor<T> bad({4});
    CHECK_THROWS_AS(ops::normalize_rows_inplace(bad), ssl::shape_error);
    try {
        ops::normalize_rows(tensor<T>({2, 3, 4}));
        FAIL("no throw");
    } catch (const ssl::shape_error& e) {
        CHECK(std::string(e.what()).find("(2, 3, 4)") != std::string::npos);
    }
    const auto y = tensor<T>({3, 4}, T(1)), norms = tensor<T>({3}, T(2));
    CHECK_THROWS_AS(ops::normalize_rows_backward(y, norms, tensor<T>({3, 5})), ssl::shape_error);
    CHECK_THROWS_AS(ops::normalize_rows_backward(y, tensor<T>({4}), tensor<T>({3, 4})), ssl::shape_error);
    CHECK_THROWS_AS(ops::normalize_rows_backward(y, tensor<T>({3, 1}), tensor<T>({3, 4})), ssl::shape_error);
}

TEST_CASE_TEMPLATE("normalize_rows_backward: the projection formula by plain loops, x / eps rows", T, float, double) {
    auto x = random_rows<T>(6, 4, 3);
    for (std::size_t j = 0; j < 4; ++j) x.at(1, j) = T(0);
    for (std::size_t j = 0; j < 4; ++j) x.at(5, j) = T(1e-14);
    const auto dy = random_rows<T>(6, 4, 4);
    const auto r = ops::normalize_rows_with_norms(x);
    const auto dx = ops::normalize_rows_backward(r.y, r.norms, dy);
    for (std::size_t i = 0; i < 6; ++i) {
        const double nr = static_cast<double>(r.norms[i]);
        double dot = 0;
        for (std::size_t j = 0; j < 4; ++j) dot += static_cast<double>(r.y.at(i, j)) * dy.at(i, j);
        for (std::size_t j = 0; j < 4; ++j) {
            const double want = nr >= 1e-12 ? (dy.at(i, j) - r.y.at(i, j) * dot) / nr : dy.at(i, j) / 1e-12;
            CHECK(dx.at(i, j) == doctest::Approx(want).epsilon(tol<T>()));
        }
    }
    // the gradient of a unit-length output is orthogonal to it
    double dot = 0;
    for (std::size_t j = 0; j < 4; ++j) dot += static_cast<double>(dx.at(0, j)) * r.y.at(0, j);
    CHECK(std::abs(dot) < 10 * tol<T>());
    // a NaN norm (x held NaN) gives NaN, not a finite dy / eps
    std::vector<T> nan_dx(4);
    ops::normalize_row_backward(r.y.data(), dy.data(), nan_dx.data(), 4, std::numeric_limits<double>::quiet_NaN());
    for (T v : nan_dx) CHECK(std::isnan(static_cast<double>(v)));
    // the pointer version with a double upstream gradient gives the same bits
    std::vector<double> g(4);
    std::vector<T> o(4);
    for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t j = 0; j < 4; ++j) g[j] = static_cast<double>(dy.at(i, j));
        ops::normalize_row_backward(r.y.data() + i * 4, g.data(), o.data(), 4, static_cast<double>(r.norms[i]));
        for (std::size_t j = 0; j < 4; ++j) CHECK(o[j] == dx.at(i, j));
    }
}

TEST_CASE("normalize_rows, softmax and top-k: the same bits at any thread count") {
    thread_count_guard guard;
    const auto x = random_rows<float>(1500, 96, 5, -4, 4);  // 144 K elements: split over the pool
    const auto dy = random_rows<float>(1500, 96, 6);
    auto run = [&] {
        auto r = ops::normalize_rows_with_norms(x);
        auto y = x.clone();
        ops::axpby(0.25, dy, 0.75, y);
        return std::tuple{r.y, r.norms, ops::normalize_rows_backward(r.y, r.norms, dy), ops::row_softmax(x),
                          ops::row_logsumexp(x), ops::topk_rows(x, 5).indices, y};
    };
    ssl::set_num_threads(1);
    const auto a = run();
    ssl::set_num_threads(3);
    const auto b = run();
    CHECK(bitwise_equal(std::get<0>(a), std::get<0>(b)));
    CHECK(bitwise_equal(std::get<1>(a), std::get<1>(b)));
    CHECK(bitwise_equal(std::get<2>(a), std::get<2>(b)));
    CHECK(bitwise_equal(std::get<3>(a), std::get<3>(b)));
    CHECK(bitwise_equal(std::get<4>(a), std::get<4>(b)));
    CHECK(bitwise_equal(std::get<5>(a), std::get<5>(b)));
    CHECK(bitwise_equal(std::get<6>(a), std::get<6>(b)));
}

TEST_CASE_TEMPLATE("gather_rows: plain loop reference, any integer id type, bad ids named", T, float, double) {
    const auto src = random_rows<T>(5, 3, 7);
    const std::vector<std::int64_t> ids{4, 0, 4, 2};
    const auto out = ops::gather_rows(src, ids);
    REQUIRE(out.shape() == ssl::shape_t{4, 3});
    for (std::size_t b = 0; b < 4; ++b)
        for (std::size_t j = 0; j < 3; ++j) CHECK(out.at(b, j) == src.at(static_cast<std::size_t>(ids[b]), j));
    CHECK(bitwise_equal(ops::gather_rows(src, std::vector<std::size_t>{4, 0, 4, 2}), out));
    CHECK(bitwise_equal(ops::gather_rows(src, std::vector<std::uint32_t>{4, 0, 4, 2}), out));
    CHECK(bitwise_equal(ops::gather_rows(src, std::span<const std::int64_t>(ids)), out));
    CHECK(bitwise_equal(ops::gather_rows(src, tensor<std::int64_t>::from({4}, {4, 0, 4, 2})), out));
    CHECK(ops::gather_rows(src, std::vector<std::int64_t>{}).shape() == ssl::shape_t{0, 3});

    CHECK_THROWS_AS(ops::gather_rows(src, std::vector<std::int64_t>{0, 5}), ssl::shape_error);
    CHECK_THROWS_AS(ops::gather_rows(src, std::vector<std::int64_t>{-1}), ssl::shape_error);
    CHECK_THROWS_AS(ops::gather_rows(src, std::vector<std::size_t>{7}), ssl::shape_error);
    CHECK_THROWS_AS(ops::gather_rows(tensor<T>({5}), ids), ssl::shape_error);
    try {
        ops::gather_rows(src, std::vector<std::int64_t>{1, 2, -3});
        FAIL("no throw");
    } catch (const ssl::shape_error& e) {
        const std::string m = e.what();
        CHECK(m.find("id -3 at position 2") != std::string::npos);
        CHECK(m.find("(5, 3)") != std::string::npos);
    }
}

TEST_CASE_TEMPLATE("scatter_add_rows: repeated ids add up, scale, shapes and ids checked first", T, float, double) {
    auto dst = random_rows<T>(4, 3, 8);
    const auto before = dst.clone();
    const auto src = random_rows<T>(3, 3, 9);
    const std::vector<std::int64_t> ids{2, 0, 2};
    ops::scatter_add_rows(dst, ids, src, 0.5);
    auto ref = before.clone();
    for (std::size_t b = 0; b < 3; ++b)
        for (std::size_t j = 0; j < 3; ++j)
            ref.at(static_cast<std::size_t>(ids[b]), j) =
                static_cast<T>(static_cast<double>(ref.at(static_cast<std::size_t>(ids[b]), j)) + 0.5 * src.at(b, j));
    CHECK(bitwise_equal(dst, ref));
    for (std::size_t j = 0; j < 3; ++j) CHECK(dst.at(1, j) == before.at(1, j));  // untouched row

    // scale 1 (the default) is the plain T sum
    auto d1 = before.clone();
    ops::scatter_add_rows(d1, std::vector<std::size_t>{3}, src.slice(0, 1));
    for (std::size_t j = 0; j < 3; ++j) CHECK(d1.at(3, j) == before.at(3, j) + src.at(0, j));

    auto d2 = before.clone();
    // 2 ids for 3 rows, then rows of the wrong width, then an id past the end
    CHECK_THROWS_AS(ops::scatter_add_rows(d2, std::vector<std::int64_t>{0, 1}, src), ssl::shape_error);
    CHECK_THROWS_AS(ops::scatter_add_rows(d2, ids, random_rows<T>(3, 2, 1)), ssl::shape_error);
    CHECK_THROWS_AS(ops::scatter_add_rows(d2, std::vector<std::int64_t>{0, 1, 4}, src), ssl::shape_error);
    CHECK(bitwise_equal(d2, before));  // the bad id came last: nothing was written
    try {
        ops::scatter_add_rows(d2, std::vector<std::int64_t>{0, 9, 1}, src);
        FAIL("no throw");
    } catch (const ssl::shape_error& e) {
        CHECK(std::string(e.what()).find("id 9 at position 1") != std::string::npos);
    }
}

TEST_CASE_TEMPLATE("row_logsumexp, row_softmax, row_log_softmax: plain loop reference, large values", T, float,
                   double) {
    const auto x = random_rows<T>(5, 7, 10, -3, 3);
    const auto lse = ops::row_logsumexp(x);
    const auto p = ops::row_softmax(x);
    const auto lp = ops::row_log_softmax(x);
    REQUIRE(lse.shape() == ssl::shape_t{5});
    REQUIRE(p.shape() == x.shape());
    REQUIRE(lp.shape() == x.shape());
    for (std::size_t i = 0; i < 5; ++i) {
        long double s = 0;
        for (std::size_t j = 0; j < 7; ++j) s += std::exp(static_cast<long double>(x.at(i, j)));
        const double want = static_cast<double>(std::log(s));
        CHECK(lse[i] == doctest::Approx(want).epsilon(1e-14));  // double, whatever T
        CHECK(ops::row_logsumexp(x.data() + i * 7, 7) == lse[i]);
        double sum = 0;
        for (std::size_t j = 0; j < 7; ++j) {
            CHECK(lp.at(i, j) == doctest::Approx(static_cast<double>(x.at(i, j)) - want).epsilon(tol<T>()));
            CHECK(p.at(i, j) == doctest::Approx(std::exp(static_cast<double>(x.at(i, j)) - want)).epsilon(tol<T>()));
            sum += static_cast<double>(p.at(i, j));
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(10 * tol<T>()));
    }

    // large logits: no overflow (exp(1000) is inf even in double)
    const auto big = tensor<T>::from({2, 3}, {T(1000), T(1001), T(999), T(-1000), T(-1001), T(-999)});
    const auto lb = ops::row_logsumexp(big);
    const double l0 = std::log(std::exp(-1.0) + 1.0 + std::exp(-2.0));
    CHECK(lb[0] == doctest::Approx(1001 + l0).epsilon(1e-15));
    CHECK(lb[1] == doctest::Approx(-999 + l0).epsilon(1e-15));
    const auto pb = ops::row_softmax(big);
    for (std::size_t j = 0; j < 6; ++j) CHECK(std::isfinite(static_cast<double>(pb[j])));
    // x - lse loses the digits of lse below 1e-16 * 1000
    const double p_max = 1 / (std::exp(-1.0) + 1.0 + std::exp(-2.0));
    CHECK(pb.at(0, 1) == doctest::Approx(p_max).epsilon(std::max(tol<T>(), 1e-12)));
    CHECK(pb.at(0, 1) == doctest::Approx(pb.at(1, 2)).epsilon(tol<T>()));  // shift invariance
    const auto lpb = ops::row_log_softmax(big);
    CHECK(lpb.at(0, 1) == doctest::Approx(-l0).epsilon(std::max(tol<T>(), 1e-12)));

    // infinities and empty rows
    constexpr T inf = std::numeric_limits<T>::infinity();
    const auto special = tensor<T>::from({3, 2}, {-inf, -inf, T(1), inf, T(2), -inf});
    const auto ls = ops::row_logsumexp(special);
    CHECK(ls[0] == -std::numeric_limits<double>::infinity());
    CHECK(ls[1] == std::numeric_limits<double>::infinity());
    CHECK(ls[2] == 2.0);
    const auto ps = ops::row_softmax(special);
    CHECK(ps.at(2, 0) == T(1));
    CHECK(ps.at(2, 1) == T(0));
    CHECK(std::isnan(ops::row_logsumexp(tensor<T>::from({1, 2}, {T(1), std::numeric_limits<T>::quiet_NaN()}))[0]));
    CHECK_THROWS_AS(ops::row_logsumexp(tensor<T>({3, 0})), ssl::shape_error);
    CHECK_THROWS_AS(ops::row_softmax(tensor<T>({3})), ssl::shape_error);
    CHECK_THROWS_AS(ops::row_log_softmax(tensor<T>({1, 2, 3})), ssl::shape_error);
}

TEST_CASE_TEMPLATE("topk_rows: sorted reference, ties by the lower column, NaN last, k range", T, float, double) {
    const auto x = random_rows<T>(6, 9, 11);
    for (std::size_t k : {0u, 1u, 4u, 9u}) {
        const auto r = ops::topk_rows(x, k);
        REQUIRE(r.indices.shape() == ssl::shape_t{6, k});
        REQUIRE(r.values.shape() == ssl::shape_t{6, k});
        for (std::size_t i = 0; i < 6; ++i) {
            std::vector<std::size_t> order(9);
            std::iota(order.begin(), order.end(), std::size_t{0});
            std::stable_sort(order.begin(), order.end(),
                             [&](std::size_t a, std::size_t b) { return x.at(i, a) > x.at(i, b); });
            for (std::size_t j = 0; j < k; ++j) {
                CHECK(r.indices.at(i, j) == static_cast<std::int64_t>(order[j]));
                CHECK(r.values.at(i, j) == x.at(i, order[j]));
            }
        }
    }
    // ties: equal values rank by column; NaN below -inf
    constexpr T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
    const auto t = tensor<T>::from({2, 6}, {T(1), T(3), T(1), T(3), T(0), T(3),  //
                                            nan, -inf, T(2), nan, T(2), T(-1)});
    const auto r = ops::topk_rows(t, 6);
    const std::vector<std::int64_t> want0{1, 3, 5, 0, 2, 4}, want1{2, 4, 5, 1, 0, 3};
    for (std::size_t j = 0; j < 6; ++j) {
        CHECK(r.indices.at(0, j) == want0[j]);
        CHECK(r.indices.at(1, j) == want1[j]);
    }
    const auto r2 = ops::topk_rows(t, 2);
    CHECK(r2.indices.at(0, 0) == 1);
    CHECK(r2.indices.at(0, 1) == 3);
    CHECK(r2.values.at(1, 1) == T(2));
    CHECK_THROWS_AS(ops::topk_rows(x, 10), ssl::value_error);
    CHECK_THROWS_AS(ops::topk_rows(tensor<T>({9}), 1), ssl::shape_error);
}

TEST_CASE_TEMPLATE("axpby: y <- a x + b y by plain loops (the EMA update), shape check", T, float, double) {
    const auto x = random_rows<T>(3, 4, 12);
    auto y = random_rows<T>(3, 4, 13);
    const auto y0 = y.clone();
    const double m = 0.99;
    ops::axpby(1 - m, x, m, y);
    const T a = static_cast<T>(1 - m), b = static_cast<T>(m);
    for (std::size_t i = 0; i < 12; ++i) CHECK(y[i] == doctest::Approx(a * x[i] + b * y0[i]).epsilon(tol<T>()));
    auto big_x = random_rows<T>(300, 700, 14), big_y = random_rows<T>(300, 700, 15);  // split over the pool
    const auto big_y0 = big_y.clone();
    ops::axpby(2.0, big_x, -0.5, big_y);
    for (std::size_t i = 0; i < big_y.numel(); i += 997)
        CHECK(big_y[i] == doctest::Approx(T(2) * big_x[i] + T(-0.5) * big_y0[i]).epsilon(tol<T>()));
    CHECK(big_y[big_y.numel() - 1] ==
          doctest::Approx(T(2) * big_x[big_y.numel() - 1] + T(-0.5) * big_y0[big_y.numel() - 1]).epsilon(tol<T>()));
    tensor<T> wrong({4, 3});
    CHECK_THROWS_AS(ops::axpby(1.0, x, 1.0, wrong), ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("normalize_rows_backward against finite differences, also below the floor") {
        // rows of norm ~1 (eps 1e-12) and, with eps = 0.5, rows of norm < 0.5 (x / eps, no projection)
        for (double eps : {1e-12, 0.5}) {
            auto x = ssl::testing::random_tensor({5, 4}, 21, -0.6, 0.6);
            for (std::size_t j = 0; j < 4; ++j) x.at(3, j) *= 0.1;  // norm < 0.25: floored when eps = 0.5
            const auto R = ssl::testing::random_tensor({5, 4}, 22);
            auto r = ops::normalize_rows_with_norms(x, eps);
            const auto dx = ops::normalize_rows_backward(r.y, r.norms, R, eps);
            auto loss = [&] {
                const auto y = ops::normalize_rows(x, eps);
                double s = 0;
                for (std::size_t i = 0; i < y.numel(); ++i) s += R[i] * y[i];
                return s;
            };
            ssl::testing::gradcheck_report rep;
            ssl::testing::check_entries(rep, "x", x.data(), dx.data(), x.numel(), loss, {});
            CHECK_MESSAGE(rep.ok, rep.str());
            CHECK(rep.checked == 20);
            if (eps == 0.5) CHECK(r.norms[3] < 0.5);
        }
    }
}

}  // namespace test_rows
