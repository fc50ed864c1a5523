#pragma once
// Row-major matrix product on CUDA tensors through cuBLAS (host code).
//
//   auto c = ssl::ops::gemm(a, b);                       // C = A B
//   auto c = ssl::ops::gemm(a, b, {.trans_b = true});    // C = A B^T
//   ssl::ops::gemm_into(a, b, c, {.alpha = 2, .beta = 1}); // C = 2 A B + C
//
// ssl tensors are row-major and cuBLAS is column-major. A row-major M x N
// buffer read as column-major is the N x M transpose, so C = op(A) op(B) is
// computed as C^T = op(B)^T op(A)^T: cuBLAS gets B's buffer first, A's second,
// m = N, n = M, and each leading dimension is the row length of its buffer.
#include <algorithm>
#include <climits>
#include <cstddef>
#include <type_traits>

#include "runtime.hpp"
#include "tensor.hpp"

namespace ssl::ops {

struct gemm_options {
    bool trans_a = false;  ///< use A^T
    bool trans_b = false;  ///< use B^T
    double alpha = 1.0;
    double beta = 0.0;  ///< gemm_into only: C = alpha op(A) op(B) + beta C
};

namespace detail {

struct gemm_dims {
    std::size_t m, n, k;
};

template <class T>
gemm_dims gemm_check(const tensor<T, cuda>& a, const tensor<T, cuda>& b, const gemm_options& o) {
    check_rank(a, 2, "gemm (A)", "(rows, cols)");
    check_rank(b, 2, "gemm (B)", "(rows, cols)");
    const std::size_t m = o.trans_a ? a.dim(1) : a.dim(0);
    const std::size_t ka = o.trans_a ? a.dim(0) : a.dim(1);
    const std::size_t kb = o.trans_b ? b.dim(1) : b.dim(0);
    const std::size_t n = o.trans_b ? b.dim(0) : b.dim(1);
    require<shape_error>(ka == kb, "gemm: inner dimensions differ: A ", a.shape().str(),
                         o.trans_a ? " (transposed)" : "", " times B ", b.shape().str(),
                         o.trans_b ? " (transposed)" : "", " (", ka, " vs ", kb, ")");
    for (std::size_t d : {a.dim(0), a.dim(1), b.dim(0), b.dim(1)})
        require<value_error>(d <= static_cast<std::size_t>(INT_MAX), "gemm: dimension ", d,
                             " exceeds cuBLAS's 32-bit limit (A ", a.shape().str(), ", B ", b.shape().str(), ")");
    require<value_error>(a.device() == b.device(), "gemm: A is on CUDA device ", a.device(), ", B on device ",
                         b.device());
    return {m, n, ka};
}

inline int as_int(std::size_t v) { return static_cast<int>(v); }

}  // namespace detail

/// C = alpha op(A) op(B) + beta C, into an existing C of shape (M, N) whose
/// storage is not shared with A or B.
template <class T>
void gemm_into(const tensor<T, cuda>& a, const tensor<T, cuda>& b, tensor<T, cuda>& c, const gemm_options& o = {}) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "ssl::ops::gemm on CUDA tensors supports float and double (bf16 comes with mixed precision)");
    const auto [m, n, k] = detail::gemm_check(a, b, o);
    check_rank(c, 2, "gemm (C)", "(rows, cols)");
    require<shape_error>(c.dim(0) == m && c.dim(1) == n, "gemm: C has shape ", c.shape().str(), " but op(A) op(B) is (",
                         m, ", ", n, ") for A ", a.shape().str(), " and B ", b.shape().str());
    require<value_error>(!c.shares_storage_with(a) && !c.shares_storage_with(b),
                         "gemm: C must not share storage with A or B");
    require<value_error>(c.device() == a.device(), "gemm: C is on CUDA device ", c.device(), ", A and B on device ",
                         a.device());
    if (m == 0 || n == 0) return;

    const int dev = a.device();
    gpu::device_guard g(dev);
    cublasHandle_t h = gpu::cublas_handle(dev);
    const T alpha = static_cast<T>(o.alpha), beta = static_cast<T>(o.beta);
    if (k == 0) {  // empty product: C = beta C
        require<value_error>(m * n <= static_cast<std::size_t>(INT_MAX), "gemm: C ", c.shape().str(),
                             " has more elements than cuBLAS's 32-bit limit");
        if (beta == T(0))
            c.zero();
        else if constexpr (std::is_same_v<T, float>)
            SSL_CUBLAS_CHECK(cublasSscal(h, detail::as_int(m * n), &beta, c.data(), 1));
        else
            SSL_CUBLAS_CHECK(cublasDscal(h, detail::as_int(m * n), &beta, c.data(), 1));
        return;
    }
    const cublasOperation_t op_b = o.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = o.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int ldb = detail::as_int(std::max<std::size_t>(1, b.dim(1)));
    const int lda = detail::as_int(std::max<std::size_t>(1, a.dim(1)));
    const int ldc = detail::as_int(n);
    if constexpr (std::is_same_v<T, float>)
        SSL_CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, detail::as_int(n), detail::as_int(m), detail::as_int(k), &alpha,
                                     b.data(), ldb, a.data(), lda, &beta, c.data(), ldc));
    else
        SSL_CUBLAS_CHECK(cublasDgemm(h, op_b, op_a, detail::as_int(n), detail::as_int(m), detail::as_int(k), &alpha,
                                     b.data(), ldb, a.data(), lda, &beta, c.data(), ldc));
}

/// C = alpha op(A) op(B), a new (M, N) tensor on A's device (beta is ignored).
template <class T>
tensor<T, cuda> gemm(const tensor<T, cuda>& a, const tensor<T, cuda>& b, const gemm_options& o = {}) {
    const auto d = detail::gemm_check(a, b, o);
    gpu::device_guard g(a.device());
    tensor<T, cuda> c(shape_t{d.m, d.n});
    gemm_options oc = o;
    oc.beta = 0.0;
    gemm_into(a, b, c, oc);
    return c;
}

}  // namespace ssl::ops
