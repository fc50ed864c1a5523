#pragma once
// Shared by the CUDA test files. GPU test cases go in doctest's test suite
// "gpu" and are counted, so main() can skip them on a machine without a GPU
// and say how many were skipped.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace ssl_test {

inline int& gpu_test_count() {
    static int n = 0;
    return n;
}
inline int register_gpu_test() { return ++gpu_test_count(); }

/// max_i |got_i - want_i| / max(max_i |want_i|, tiny): a relative error that
/// does not blow up on entries near zero.
template <class A, class B>
double max_rel_error(const A& got, const B& want, std::size_t n) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < n; ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i])));
        scale = std::max(scale, std::abs(static_cast<double>(want[i])));
    }
    return diff / std::max(scale, 1e-30);
}

/// n values uniform in [lo, hi) from a fixed seed.
template <class T>
std::vector<T> uniform(std::size_t n, double lo, double hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(d(gen));
    return v;
}

}  // namespace ssl_test

#define SSL_DETAIL_GPU_TEST_CASE(reg, name)                                  \
    [[maybe_unused]] static const int reg = ::ssl_test::register_gpu_test(); \
    TEST_CASE(name* doctest::test_suite("gpu"))
/// A test case that needs a CUDA device.
#define GPU_TEST_CASE(name) SSL_DETAIL_GPU_TEST_CASE(DOCTEST_ANONYMOUS(ssl_gpu_test_), name)
