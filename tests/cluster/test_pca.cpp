#include <doctest/doctest.h>

#include <ssl/cluster/pca.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/core/thread_pool.hpp>

#include <Eigen/Eigenvalues>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace test_pca {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::cluster::pca;

namespace {

// N correlated Gaussian rows in d dims: x = mu + A z, A with random entries and
// rapidly decaying column scales (a well-spread spectrum).
template <class T = float>
tensor<T> correlated(std::size_t n, std::size_t d, std::uint64_t seed, double offset = 3.0) {
    ssl::philox g(seed, 2);
    std::vector<double> A(d * d), mu(d);
    for (std::size_t i = 0; i < d; ++i) mu[i] = offset * g.normal();
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j) A[i * d + j] = g.normal() * std::pow(0.8, static_cast<double>(j));
    tensor<T> x({n, d});
    std::vector<double> z(d);
    for (std::size_t r = 0; r < n; ++r) {
        for (auto& v : z) v = g.normal();
        for (std::size_t i = 0; i < d; ++i) {
            double s = mu[i];
            for (std::size_t j = 0; j < d; ++j) s += A[i * d + j] * z[j];
            x.at(r, i) = static_cast<T>(s);
        }
    }
    return x;
}

template <class T>
Eigen::MatrixXd covariance(const tensor<T>& y) {
    const auto n = static_cast<Eigen::Index>(y.dim(0)), k = static_cast<Eigen::Index>(y.dim(1));
    Eigen::MatrixXd Y(n, k);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < k; ++j) Y(i, j) = y.at(i, j);
    Eigen::RowVectorXd m = Y.colwise().mean();
    Eigen::MatrixXd c = Y.rowwise() - m;
    return c.transpose() * c / static_cast<double>(n - 1);
}

}  // namespace

TEST_CASE("pca: the whitened output has identity covariance and zero mean") {
    auto x = correlated(4000, 24, 1);
    pca<float> p({.dims = 10});
    auto y = p.fit_transform(x);
    REQUIRE(y.shape() == ssl::shape_t{4000, 10});
    CHECK(p.output_dims() == 10);
    CHECK(p.input_dims() == 24);
    const Eigen::MatrixXd c = covariance(y);
    CHECK((c - Eigen::MatrixXd::Identity(10, 10)).cwiseAbs().maxCoeff() < 1e-4);
    for (std::size_t j = 0; j < 10; ++j) {
        double m = 0;
        for (std::size_t i = 0; i < 4000; ++i) m += y.at(i, j);
        CHECK(std::abs(m / 4000) < 1e-4);
    }
    // the same in double, without eps (the smallest eigenvalue is ~1e-4), tighter
    auto xd = correlated<double>(4000, 24, 1);
    pca<double> pd({.dims = 24, .eps = 0});
    CHECK((covariance(pd.fit_transform(xd)) - Eigen::MatrixXd::Identity(24, 24)).cwiseAbs().maxCoeff() < 1e-6);
}

TEST_CASE("pca: components are orthonormal, eigenvalues decrease, and both match a direct eigendecomposition") {
    auto x = correlated<double>(500, 6, 3);
    pca<double> p({.dims = 6, .whiten = false});
    p.fit(x);
    const auto& V = p.components();
    const auto& ev = p.eigenvalues();
    REQUIRE(V.shape() == ssl::shape_t{6, 6});
    for (std::size_t a = 0; a < 6; ++a)
        for (std::size_t b = 0; b < 6; ++b) {
            double s = 0;
            for (std::size_t j = 0; j < 6; ++j) s += V.at(a, j) * V.at(b, j);
            CHECK(s == doctest::Approx(a == b ? 1.0 : 0.0).epsilon(1e-10).scale(1.0));
        }
    for (std::size_t r = 1; r < 6; ++r) CHECK(ev[r] <= ev[r - 1]);
    // the reference: the covariance built directly, its eigen-decomposition
    const Eigen::MatrixXd C = covariance(x);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(C);
    for (std::size_t r = 0; r < 6; ++r) {
        const auto col = static_cast<Eigen::Index>(5 - r);
        CHECK(ev[r] == doctest::Approx(es.eigenvalues()[col]).epsilon(1e-9));
        double dot = 0;  // the same direction, up to sign
        for (std::size_t j = 0; j < 6; ++j) dot += V.at(r, j) * es.eigenvectors()(static_cast<Eigen::Index>(j), col);
        CHECK(std::abs(dot) == doctest::Approx(1.0).epsilon(1e-8));
    }
    // mean
    for (std::size_t j = 0; j < 6; ++j) {
        double m = 0;
        for (std::size_t i = 0; i < 500; ++i) m += x.at(i, j);
        CHECK(p.mean()[j] == doctest::Approx(m / 500).epsilon(1e-12));
    }
    // without whitening the output variances are the eigenvalues
    const Eigen::MatrixXd cy = covariance(p.transform(x));
    for (Eigen::Index r = 0; r < 6; ++r) CHECK(cy(r, r) == doctest::Approx(ev[static_cast<std::size_t>(r)]).epsilon(1e-9));
}

TEST_CASE("pca: a tiny hand-checked case") {
    // points (1, 1), (-1, -1), (2, 2), (-2, -2) shifted by (10, -5): all variance along (1, 1)/sqrt(2)
    auto x = tensor<double>::from({4, 2}, {11, -4, 9, -6, 12, -3, 8, -7});
    pca<double> p({.dims = 5, .whiten = false});  // dims clamped to 2
    p.fit(x);
    CHECK(p.output_dims() == 2);
    CHECK(p.mean()[0] == doctest::Approx(10));
    CHECK(p.mean()[1] == doctest::Approx(-5));
    // coordinates along (1,1)/sqrt2: sqrt2 * (1, -1, 2, -2): variance 2 * 10 / 3
    CHECK(p.eigenvalues()[0] == doctest::Approx(20.0 / 3));
    CHECK(p.eigenvalues()[1] == doctest::Approx(0.0).scale(1.0));
    CHECK(p.components().at(0, 0) == doctest::Approx(std::sqrt(0.5)));
    CHECK(p.components().at(0, 1) == doctest::Approx(std::sqrt(0.5)));
    // whitened along the first component only: coordinate / sqrt(20/3)
    pca<double> p1({.dims = 1, .eps = 0});
    auto y = p1.fit_transform(x);
    const double s = std::sqrt(2.0) / std::sqrt(20.0 / 3);
    CHECK(y.at(0, 0) == doctest::Approx(1 * s));
    CHECK(y.at(1, 0) == doctest::Approx(-1 * s));
    CHECK(y.at(2, 0) == doctest::Approx(2 * s));
    CHECK(y.at(3, 0) == doctest::Approx(-2 * s));
}

TEST_CASE("pca: L2-normalized rows have norm 1 (DeepCluster: whiten to 256 dims, then normalize)") {
    auto x = correlated(600, 40, 5);
    pca<float> p({.l2_normalize = true});  // dims 256 > 40: clamped
    auto y = p.fit_transform(x);
    REQUIRE(y.shape() == ssl::shape_t{600, 40});
    for (std::size_t i = 0; i < 600; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < 40; ++j) s += static_cast<double>(y.at(i, j)) * y.at(i, j);
        CHECK(std::sqrt(s) == doctest::Approx(1.0).epsilon(1e-5));
    }
    // transform of new data uses the fitted statistics
    auto z = p.transform(correlated(10, 40, 6));
    CHECK(z.shape() == ssl::shape_t{10, 40});
}

TEST_CASE("pca: the same bits at any thread count") {
    const std::size_t saved = ssl::num_threads();
    auto x = correlated(5000, 70, 9);  // 3 row blocks, 2 column panels
    ssl::set_num_threads(1);
    pca<float> a({.dims = 20});
    auto ya = a.fit_transform(x);
    ssl::set_num_threads(3);
    pca<float> b({.dims = 20});
    auto yb = b.fit_transform(x);
    ssl::set_num_threads(saved);
    CHECK(std::memcmp(ya.data(), yb.data(), ya.numel() * sizeof(float)) == 0);
    CHECK(std::memcmp(a.eigenvalues().data(), b.eigenvalues().data(), 20 * sizeof(double)) == 0);
}

TEST_CASE("pca: bad input is rejected") {
    CHECK_THROWS_AS(pca<float>({.dims = 0}), ssl::value_error);
    CHECK_THROWS_AS(pca<float>({.eps = -1}), ssl::value_error);
    pca<float> p;
    CHECK_THROWS_AS(p.transform(tensor<float>({3, 2}, 1.0f)), ssl::value_error);  // not fitted
    CHECK_THROWS_AS(p.fit(tensor<float>({1, 4}, 1.0f)), ssl::value_error);       // N < 2
    CHECK_THROWS_AS(p.fit(tensor<float>({8})), ssl::shape_error);
    auto x = correlated(20, 4, 1);
    auto bad = x.clone();
    bad.at(3, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(p.fit(bad), doctest::Contains("feature (3, 2)"), ssl::value_error);
    p.fit(x);
    CHECK_THROWS_AS(p.transform(bad), ssl::value_error);
    CHECK_THROWS_AS(p.transform(tensor<float>({3, 5}, 1.0f)), ssl::shape_error);
    // eps = 0 with a zero-variance direction cannot whiten it
    CHECK_THROWS_AS(pca<double>({.dims = 2, .eps = 0}).fit(tensor<double>::from({3, 2}, {1, 0, 2, 0, 3, 0})),
                    ssl::value_error);
}

}  // namespace test_pca
