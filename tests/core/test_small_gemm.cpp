#include <doctest/doctest.h>

#include <ssl/backend/host/small_gemm.hpp>
#include <ssl/core/rng.hpp>

#include <cmath>
#include <vector>

namespace test_small_gemm {  // each file in its own namespace: an area builds as one unity translation unit

template <class T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed) {
    std::vector<T> v(n);
    ssl::philox g(seed, 5);
    for (auto& x : v) x = static_cast<T>(g.uniform(-1, 1));
    return v;
}

template <class T>
void check_shape(std::size_t m, std::size_t k, std::size_t n, double tol) {
    CAPTURE(m);
    CAPTURE(k);
    CAPTURE(n);
    // leading dimensions wider than the operands: the kernel must honour them
    const std::size_t lda = k + 3, ldb = n + 5, ldc = n + 2;
    auto A = random_values<T>(m * lda, 1), B = random_values<T>(k * ldb, 2);
    std::vector<T> C(m * ldc, T(7));  // the padding columns must stay 7
    ssl::backend::host::small_gemm(A.data(), lda, B.data(), ldb, C.data(), ldc, m, k, n);
    double err = 0;
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            double s = 0;
            for (std::size_t kk = 0; kk < k; ++kk) s += double(A[i * lda + kk]) * double(B[kk * ldb + j]);
            err = std::max(err, std::abs(s - double(C[i * ldc + j])));
        }
        for (std::size_t j = n; j < ldc; ++j) CHECK(C[i * ldc + j] == T(7));
    }
    CHECK(err < tol);
}

TEST_CASE("small_gemm matches a naive product: row blocks 8/4/1, column panels and tails") {
    for (std::size_t m : {1, 3, 4, 5, 8, 9, 16, 21, 64})
        for (std::size_t k : {1, 2, 16, 33})
            for (std::size_t n : {1, 7, 15, 16, 17, 31, 32, 33, 64, 100, 245}) {
                check_shape<float>(m, k, n, 1e-4);
                check_shape<double>(m, k, n, 1e-12);
            }
}

TEST_CASE("small_gemm with k = 0 writes zeros") {
    std::vector<float> A(4), B(1), C(4 * 20, 3.0f);
    ssl::backend::host::small_gemm(A.data(), 1, B.data(), 20, C.data(), 20, 4, 0, 20);
    for (float v : C) CHECK(v == 0.0f);
}

template <class T>
void check_lane_sums(std::size_t n) {
    CAPTURE(n);
    namespace d = ssl::backend::host::detail;
    constexpr std::size_t L = d::vreg_lanes<T>;
    const auto values = random_values<T>(n * L, 11 + n);
    std::vector<d::vreg<T>> v(n);
    for (std::size_t i = 0; i < n; ++i) d::vload<T>(v[i], values.data() + i * L);
    std::vector<T> out(n + 3, T(9));  // past n: untouched
    d::lane_sums<T>(v.data(), n, out.data());
    for (std::size_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::size_t l = 0; l < L; ++l) s += values[i * L + l];
        CHECK(std::abs(out[i] - s) <= 1e-5);
    }
    for (std::size_t i = n; i < n + 3; ++i) CHECK(out[i] == T(9));
}

TEST_CASE("lane_sums: each vector's lanes summed, any count (whole groups of lanes and tails)") {
    for (std::size_t n : {1u, 2u, 3u, 7u, 8u, 9u, 16u, 17u, 24u, 40u}) {
        check_lane_sums<float>(n);
        check_lane_sums<double>(n);
    }
}

template <class T>
void check_transpose_lanes() {
    namespace d = ssl::backend::host::detail;
    constexpr std::size_t L = d::vreg_lanes<T>;
    std::vector<T> m(L * L);
    for (std::size_t i = 0; i < L * L; ++i) m[i] = T(i);
    d::vreg<T> r[L];
    for (std::size_t i = 0; i < L; ++i) d::vload<T>(r[i], m.data() + i * L);
    d::transpose_lanes<T>(r);
    for (std::size_t j = 0; j < L; ++j) {
        T row[L];
        d::vstore<T>(row, r[j]);
        for (std::size_t i = 0; i < L; ++i) CHECK(row[i] == m[i * L + j]);
    }
}

TEST_CASE("transpose_lanes: an L x L block held in L vectors, transposed (float, double)") {
    check_transpose_lanes<float>();
    check_transpose_lanes<double>();
}

}  // namespace test_small_gemm
