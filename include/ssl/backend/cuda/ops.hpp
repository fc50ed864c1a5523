#pragma once
// Ops on CUDA tensors (namespace ssl::ops, overloaded on the device tag:
// a tensor<T, ssl::cuda> argument selects the CUDA version).
//
//   gemm, gemm_into                 cuBLAS, host code: any translation unit
//   relu, relu_backward, scale_add  own kernels: translation units compiled
//                                   by nvcc (.cu); elsewhere a static_assert
//                                   says so
//
// An op that has no CUDA version yet is a compile error with a sentence
// naming it, never a silent fallback to the host: see the list at the end.
#include <type_traits>

#include "gemm.hpp"
#include "runtime.hpp"
#include "tensor.hpp"

#if defined(__CUDACC__)
#include "kernels/elementwise.cuh"
#endif

// A catch-all overload for tensors of the CUDA tag that fails with `sentence`
// when called (and only then). The stubs are variadic templates, distinct
// from the real overloads, so a program with both kinds of translation unit
// has one definition of each.
#define SSL_DETAIL_CUDA_OP_STUB_RETURNING(result, op, sentence)      \
    template <class T, class... Rest>                                \
    result op(const ::ssl::tensor<T, ::ssl::cuda>&, Rest&&...) {     \
        static_assert(::ssl::dependent_false<T, Rest...>, sentence); \
        return result();                                             \
    }
#define SSL_DETAIL_CUDA_OP_STUB(op, sentence) SSL_DETAIL_CUDA_OP_STUB_RETURNING(void, op, sentence)

/// Declares `ssl::ops::op` for CUDA tensors as "not written yet".
#define SSL_CUDA_OP_NOT_YET(op)                                                                           \
    SSL_DETAIL_CUDA_OP_STUB(op, "ssl::ops::" #op                                                          \
                                " has no CUDA implementation yet (ssl never falls back to the "           \
                                "host silently): copy the tensors with ssl::to_host, or write the op in " \
                                "include/ssl/backend/cuda/")

namespace ssl::ops {

#if !defined(__CUDACC__)
// Kernel-backed ops exist only where nvcc compiles the kernels.
#define SSL_DETAIL_CUDA_OP_NEEDS_NVCC(op)                                                               \
    SSL_DETAIL_CUDA_OP_STUB_RETURNING(::ssl::cuda_tensor<T>, op,                                        \
                                      "ssl::ops::" #op                                                  \
                                      " on CUDA tensors runs an ssl kernel, which is compiled only by " \
                                      "nvcc: call it from a .cu file (this file is compiled by the host compiler)")
SSL_DETAIL_CUDA_OP_NEEDS_NVCC(relu)
SSL_DETAIL_CUDA_OP_NEEDS_NVCC(relu_backward)
#undef SSL_DETAIL_CUDA_OP_NEEDS_NVCC
template <class S, class T, class... Rest>
void scale_add(S, const tensor<T, cuda>&, Rest&&...) {
    static_assert(dependent_false<T, S>,
                  "ssl::ops::scale_add on CUDA tensors runs an ssl kernel, which is compiled only by nvcc: call it "
                  "from a .cu file (this file is compiled by the host compiler)");
}
#endif

// Not on CUDA yet. Each op written for CUDA takes its line out.
SSL_CUDA_OP_NOT_YET(conv2d)
SSL_CUDA_OP_NOT_YET(conv2d_backward)
SSL_CUDA_OP_NOT_YET(batch_norm)
SSL_CUDA_OP_NOT_YET(max_pool2d)
SSL_CUDA_OP_NOT_YET(cross_entropy)

}  // namespace ssl::ops
