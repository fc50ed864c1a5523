#include <doctest/doctest.h>

#include <ssl/eval/metrics.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace test_metrics {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::eval::clustering_nmi;
using ssl::eval::top1_accuracy;
using v = std::vector<std::int64_t>;

TEST_CASE("top1_accuracy") {
    CHECK(top1_accuracy(v{0, 1, 2, 2}, v{0, 1, 1, 2}) == 0.75);
    CHECK_THROWS_AS(top1_accuracy(v{0, 1}, v{0}), ssl::shape_error);
    CHECK_THROWS_AS(top1_accuracy(v{}, v{}), ssl::shape_error);
}

TEST_CASE("clustering_nmi: by hand") {
    // true = [0 0 0 1 1 1], pred = [0 0 1 1 2 2], N = 6.
    //   class sizes 3, 3:        H(U) = log 2
    //   cluster sizes 2, 2, 2:   H(V) = log 3
    //   contingency n_ij: (0,0) 2, (0,1) 1, (1,1) 1, (1,2) 2
    //   I = sum n_ij/N log(N n_ij / (a_i b_j))
    //     = 2/6 log(12/6) + 1/6 log(6/6) + 1/6 log(6/6) + 2/6 log(12/6) = (2/3) log 2
    //   NMI = I / ((H(U) + H(V)) / 2) = (4/3) log 2 / (log 2 + log 3) = 0.5158037...
    const double expected = (4.0 / 3) * std::log(2.0) / (std::log(2.0) + std::log(3.0));
    CHECK(clustering_nmi(v{0, 0, 0, 1, 1, 1}, v{0, 0, 1, 1, 2, 2}) == doctest::Approx(expected).epsilon(1e-14));
    CHECK(expected == doctest::Approx(0.5158037).epsilon(1e-6));
    // symmetric in its arguments
    CHECK(clustering_nmi(v{0, 0, 1, 1, 2, 2}, v{0, 0, 0, 1, 1, 1}) == doctest::Approx(expected).epsilon(1e-14));
}

TEST_CASE("clustering_nmi: special cases") {
    // a renamed partition is the same partition
    CHECK(clustering_nmi(v{0, 0, 1, 1, 2}, v{7, 7, -3, -3, 100}) == doctest::Approx(1.0));
    // independent labelings share no information
    CHECK(clustering_nmi(v{0, 0, 1, 1}, v{0, 1, 0, 1}) == doctest::Approx(0.0).scale(1));
    // constant labelings
    CHECK(clustering_nmi(v{4, 4, 4}, v{1, 1, 1}) == 1.0);
    CHECK(clustering_nmi(v{0, 1, 2}, v{1, 1, 1}) == 0.0);
    // every sample its own cluster against two classes: I = H(U), NMI = 2 H(U) / (H(U) + H(V))
    const double hu = std::log(2.0), hv = std::log(4.0);
    CHECK(clustering_nmi(v{0, 0, 1, 1}, v{0, 1, 2, 3}) == doctest::Approx(2 * hu / (hu + hv)));
    CHECK_THROWS_AS(clustering_nmi(v{0, 1}, v{0}), ssl::shape_error);
    CHECK_THROWS_AS(clustering_nmi(v{}, v{}), ssl::shape_error);
}

}  // namespace test_metrics
