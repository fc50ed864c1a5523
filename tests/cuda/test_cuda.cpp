// CUDA backend, host-compiled part: error checks, devices, the caching
// allocator, tensors and copies, cuBLAS gemm. Also main(): without a GPU it
// runs the tests that need none, then prints "SKIP: no CUDA device (N tests
// need a GPU)" and exits 77 (ctest's SKIP_RETURN_CODE) unless one failed.
//   test_cuda --no-gpu   runs only the tests that need no GPU (exit 0/1)
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <ssl/backend/cuda/ops.hpp>
#include <ssl/backend/cuda/runtime.hpp>
#include <ssl/backend/cuda/tensor.hpp>
#include <string>
#include <vector>

#include "gpu_test.hpp"

namespace {

cudaError_t fake_cuda_failure() { return cudaErrorInvalidValue; }
cublasStatus_t fake_cublas_failure() { return CUBLAS_STATUS_INVALID_VALUE; }

std::string message_of(auto&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

}  // namespace

// --- no GPU needed ---------------------------------------------------------------

static_assert(std::is_same_v<ssl::cuda_tensor<float>::device_type, ssl::cuda>);
static_assert(std::is_same_v<ssl::tensor<double, ssl::cuda>::value_type, double>);
static_assert(std::is_base_of_v<ssl::cuda_error, ssl::cublas_error>);

TEST_CASE("SSL_CUDA_CHECK throws cuda_error naming the call, the error, the file and the line") {
    const int line = __LINE__ + 1;
    auto bad = [] { SSL_CUDA_CHECK(fake_cuda_failure()); };
    CHECK_THROWS_AS(bad(), ssl::cuda_error);
    CHECK_THROWS_AS(bad(), ssl::error);
    const std::string m = message_of(bad);
    CHECK(m.find("fake_cuda_failure() failed") != std::string::npos);
    CHECK(m.find("cudaErrorInvalidValue") != std::string::npos);
    CHECK(m.find("invalid argument") != std::string::npos);
    CHECK(m.find("test_cuda.cpp:" + std::to_string(line)) != std::string::npos);
    CHECK_NOTHROW(SSL_CUDA_CHECK(cudaSuccess));
}

TEST_CASE("SSL_CUBLAS_CHECK throws cublas_error (a cuda_error) with the status name") {
    auto bad = [] { SSL_CUBLAS_CHECK(fake_cublas_failure()); };
    CHECK_THROWS_AS(bad(), ssl::cublas_error);
    CHECK_THROWS_AS(bad(), ssl::cuda_error);
    const std::string m = message_of(bad);
    CHECK(m.find("fake_cublas_failure() failed") != std::string::npos);
    CHECK(m.find("CUBLAS_STATUS_INVALID_VALUE") != std::string::npos);
    CHECK(m.find("test_cuda.cpp:") != std::string::npos);
    CHECK_NOTHROW(SSL_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
}

#if defined(SSL_WITH_CUDNN)
TEST_CASE("SSL_CUDNN_CHECK throws cudnn_error with the status") {
    auto bad = [] { SSL_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM); };
    CHECK_THROWS_AS(bad(), ssl::cudnn_error);
    CHECK(message_of(bad).find("CUDNN_STATUS_BAD_PARAM") != std::string::npos);
}
#endif

TEST_CASE("device_count never throws and agrees with cuda_available") {
    int n = -1;
    CHECK_NOTHROW(n = ssl::cuda_device_count());
    CHECK(n >= 0);
    CHECK(ssl::cuda_available() == (n > 0));
    MESSAGE("CUDA devices: " << n);
}

TEST_CASE("without a GPU, device work fails with a cuda_error sentence") {
    if (ssl::cuda_available()) return;  // covered by the GPU tests
    const std::string m = message_of([] { ssl::cuda_tensor<float> t({2, 3}); });
    CHECK(m.find("no CUDA device") != std::string::npos);
    CHECK_THROWS_AS(ssl::to_device(ssl::tensor<float>({2, 2}, 1.f)), ssl::cuda_error);
    CHECK_THROWS_AS(ssl::cuda_pool_stats(0), ssl::cuda_error);
    CHECK_THROWS_AS(ssl::gpu::work_stream(0), ssl::cuda_error);
    CHECK_NOTHROW(ssl::cuda_pool_release());
}

TEST_CASE("a default-constructed CUDA tensor has no storage and needs no device") {
    ssl::cuda_tensor<float> t;
    CHECK_FALSE(t.defined());
    CHECK(t.numel() == 0);
    CHECK(t.data() == nullptr);
    CHECK_NOTHROW(t.zero());
    CHECK_FALSE(t.clone().defined());
    CHECK_THROWS_AS(ssl::to_host(t), ssl::value_error);
}

TEST_CASE("gemm checks ranks before touching a device") {
    ssl::cuda_tensor<float> a, b;
    const std::string m = message_of([&] { (void)ssl::ops::gemm(a, b); });
    CHECK(m.find("expected a rank-2 tensor") != std::string::npos);
    CHECK_THROWS_AS((void)ssl::ops::gemm(a, b), ssl::shape_error);
}

// --- GPU ---------------------------------------------------------------------------

namespace {

template <class T>
ssl::tensor<T> host_random(ssl::shape_t s, unsigned seed) {
    auto v = ssl_test::uniform<T>(s.numel(), -1.0, 1.0, seed);
    return ssl::tensor<T>::from(s, std::span<const T>(v));
}

/// C = op(A) op(B) in double, row-major.
template <class T>
std::vector<double> reference_gemm(const ssl::tensor<T>& a, const ssl::tensor<T>& b, bool ta, bool tb) {
    const std::size_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
    const std::size_t n = tb ? b.dim(0) : b.dim(1);
    auto A = [&](std::size_t i, std::size_t p) { return double(ta ? a.at(p, i) : a.at(i, p)); };
    auto B = [&](std::size_t p, std::size_t j) { return double(tb ? b.at(j, p) : b.at(p, j)); };
    std::vector<double> c(m * n, 0.0);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double s = 0;
            for (std::size_t p = 0; p < k; ++p) s += A(i, p) * B(p, j);
            c[i * n + j] = s;
        }
    return c;
}

}  // namespace

GPU_TEST_CASE("to_device / to_host round trip, reshape and slice share storage, clone copies") {
    auto h = host_random<float>({5, 3, 4}, 1);
    auto d = ssl::to_device(h);
    CHECK(d.shape() == h.shape());
    CHECK(d.numel() == 60);
    CHECK(d.device() == ssl::gpu::current_device());
    auto back = ssl::to_host(d);
    CHECK(std::equal(back.begin(), back.end(), h.begin()));

    auto r = d.reshape({15, 4});
    CHECK(r.shares_storage_with(d));
    CHECK_THROWS_AS(d.reshape({7, 9}), ssl::shape_error);

    auto s = d.slice(1, 3);  // rows 1 and 2 of dim 0
    CHECK(s.shape() == ssl::shape_t{2, 3, 4});
    auto hs = ssl::to_host(s);
    CHECK(std::equal(hs.begin(), hs.end(), h.begin() + 12));
    CHECK_THROWS_AS(d.slice(4, 6), ssl::shape_error);

    auto c = d.clone();
    CHECK_FALSE(c.shares_storage_with(d));
    c.zero();
    auto hd = ssl::to_host(d);
    CHECK(std::equal(hd.begin(), hd.end(), h.begin()));  // d untouched
    auto hc = ssl::to_host(c);
    CHECK(std::all_of(hc.begin(), hc.end(), [](float v) { return v == 0.f; }));

    c.assign(d);
    auto hc2 = ssl::to_host(c);
    CHECK(std::equal(hc2.begin(), hc2.end(), h.begin()));
    ssl::cuda_tensor<float> wrong({4, 3, 5});
    CHECK_THROWS_AS(wrong.assign(d), ssl::shape_error);
}

GPU_TEST_CASE("zeros, full, fill and from") {
    auto z = ssl::to_host(ssl::cuda_tensor<double>::zeros({7, 9}));
    CHECK(std::all_of(z.begin(), z.end(), [](double v) { return v == 0.0; }));
    auto f = ssl::to_host(ssl::cuda_tensor<float>::full({1000}, 2.5f));
    CHECK(std::all_of(f.begin(), f.end(), [](float v) { return v == 2.5f; }));
    auto i = ssl::cuda_tensor<std::int64_t>::from({2, 2}, {1, 2, 3, 4});
    auto hi = ssl::to_host(i);
    CHECK(hi.at(1, 0) == 3);
    CHECK_THROWS_AS(ssl::cuda_tensor<float>::from({2, 2}, {1.f, 2.f}), ssl::shape_error);
}

GPU_TEST_CASE("the device pool reuses blocks: no cudaMalloc in the steady state") {
    const int dev = ssl::gpu::current_device();
    ssl::cuda_tensor<float>({1234, 17});  // warm the size class
    const auto before = ssl::cuda_pool_stats(dev);
    for (int step = 0; step < 10; ++step) {
        ssl::cuda_tensor<float> a({1234, 17}), b({1234, 17});
        ssl::cuda_tensor<float> c = a.clone();
    }
    const auto after = ssl::cuda_pool_stats(dev);
    // The first step may allocate the second and third blocks; then none.
    CHECK(after.system_allocations - before.system_allocations <= 2);
    CHECK(after.reuses - before.reuses >= 28);
    CHECK(after.live_bytes == before.live_bytes);

    ssl::cuda_pool_release();
    CHECK(ssl::cuda_pool_stats(dev).cached_bytes == 0);
}

GPU_TEST_CASE("an impossible allocation throws cuda_error naming the size") {
    const std::string m = message_of([] { ssl::cuda_tensor<float> t({std::size_t{1} << 46}); });
    CHECK(m.find("cudaMalloc of") != std::string::npos);
    CHECK(m.find("cudaErrorMemoryAllocation") != std::string::npos);
    // The runtime's error state is clean afterwards.
    CHECK_NOTHROW(ssl::to_host(ssl::cuda_tensor<float>::zeros({3})));
}

template <class T>
void check_gemm_all_transposes(double tol) {
    const std::size_t M = 37, N = 53, K = 129;
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            CAPTURE(ta);
            CAPTURE(tb);
            auto a = host_random<T>(ta ? ssl::shape_t{K, M} : ssl::shape_t{M, K}, 11);
            auto b = host_random<T>(tb ? ssl::shape_t{N, K} : ssl::shape_t{K, N}, 12);
            auto c = ssl::to_host(ssl::ops::gemm(ssl::to_device(a), ssl::to_device(b), {.trans_a = ta, .trans_b = tb}));
            REQUIRE(c.shape() == ssl::shape_t{M, N});
            const auto want = reference_gemm(a, b, ta, tb);
            CHECK(ssl_test::max_rel_error(c, want, want.size()) < tol);
        }
}

// Relative to the largest entry: float sums of 129 products of [-1, 1) values
// are good to a few 1e-7; double to ~1e-15.
GPU_TEST_CASE("gemm<float> matches a double-precision host product, all transposes") {
    check_gemm_all_transposes<float>(2e-6);
}
GPU_TEST_CASE("gemm<double> matches a double-precision host product, all transposes") {
    check_gemm_all_transposes<double>(1e-13);
}

GPU_TEST_CASE("gemm_into: alpha, beta, and the empty inner dimension") {
    auto a = host_random<float>({8, 5}, 21), b = host_random<float>({5, 6}, 22), c0 = host_random<float>({8, 6}, 23);
    auto dc = ssl::to_device(c0);
    ssl::ops::gemm_into(ssl::to_device(a), ssl::to_device(b), dc, {.alpha = 2.0, .beta = -0.5});
    auto c = ssl::to_host(dc);
    const auto ab = reference_gemm(a, b, false, false);
    std::vector<double> want(ab.size());
    for (std::size_t i = 0; i < ab.size(); ++i) want[i] = 2.0 * ab[i] - 0.5 * double(c0[i]);
    CHECK(ssl_test::max_rel_error(c, want, want.size()) < 2e-6);

    // K = 0: C = beta C.
    ssl::cuda_tensor<float> ea({8, 0}), eb({0, 6});
    auto dc2 = ssl::to_device(c0);
    ssl::ops::gemm_into(ea, eb, dc2, {.beta = 3.0});
    auto c2 = ssl::to_host(dc2);
    for (std::size_t i = 0; i < c2.numel(); ++i) CHECK(c2[i] == doctest::Approx(3.0 * c0[i]));
    auto z = ssl::to_host(ssl::ops::gemm(ea, eb));
    CHECK(z.shape() == ssl::shape_t{8, 6});
    CHECK(std::all_of(z.begin(), z.end(), [](float v) { return v == 0.f; }));
}

GPU_TEST_CASE("gemm shape errors name both shapes") {
    ssl::cuda_tensor<float> a({4, 3}), b({4, 5});
    const std::string m = message_of([&] { (void)ssl::ops::gemm(a, b); });
    CHECK(m.find("(4, 3)") != std::string::npos);
    CHECK(m.find("(4, 5)") != std::string::npos);
    CHECK_NOTHROW((void)ssl::ops::gemm(a, b, {.trans_a = true}));
    ssl::cuda_tensor<float> c({3, 4});
    CHECK_THROWS_AS(ssl::ops::gemm_into(a, b, c, {.trans_a = true}), ssl::shape_error);
    ssl::cuda_tensor<float> sq({4, 4}, 1.f);
    auto alias = sq;  // C may not be an input
    CHECK_THROWS_AS(ssl::ops::gemm_into(sq, sq.clone(), alias), ssl::value_error);
}

// --- main ---------------------------------------------------------------------------

int main(int argc, char** argv) {
    std::vector<char*> args;
    bool no_gpu = false;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--no-gpu") == 0)
            no_gpu = true;
        else
            args.push_back(argv[i]);
    }
    const int devices = ssl::cuda_device_count();
    doctest::Context ctx;
    ctx.applyCommandLine(static_cast<int>(args.size()), args.data());
    if (devices == 0 || no_gpu) ctx.addFilter("test-suite-exclude", "gpu");
    const int rc = ctx.run();
    if (ctx.shouldExit() || rc != 0 || no_gpu) return rc;
    if (devices == 0) {
        std::printf("SKIP: no CUDA device (%d tests need a GPU)\n", ssl_test::gpu_test_count());
        std::fflush(stdout);
        return 77;
    }
    return rc;
}
