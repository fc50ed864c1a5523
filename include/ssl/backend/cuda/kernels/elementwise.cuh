#pragma once
// Element-wise CUDA ops: relu forward / backward, scale_add (y = a x + y).
// Device code: nvcc only (ops.hpp includes this under __CUDACC__; from a
// host-compiled file the same calls fail with a static_assert sentence).
//
// The results match the host layers bit for bit where the host is exact
// (relu: y = x > 0 ? x : 0, so NaN -> 0 and -0 -> 0; its backward passes dy
// where y > 0). scale_add may differ from a host a*x+y in the last bit
// because nvcc contracts it into one fused multiply-add.
#include <cstddef>
#include <type_traits>

#include "../runtime.hpp"
#include "../tensor.hpp"
#include "launch.cuh"

namespace ssl::gpu::kernels {

template <class T>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ y, std::size_t n) {
    for (std::size_t i = grid_index(); i < n; i += grid_stride()) {
        const T v = x[i];
        y[i] = v > T(0) ? v : T(0);
    }
}

template <class T>
__global__ void relu_backward(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx, std::size_t n) {
    for (std::size_t i = grid_index(); i < n; i += grid_stride()) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

// x and y may alias (y = a y + y), so no __restrict__.
template <class T>
__global__ void scale_add(T a, const T* x, T* y, std::size_t n) {
    for (std::size_t i = grid_index(); i < n; i += grid_stride()) y[i] = a * x[i] + y[i];
}

}  // namespace ssl::gpu::kernels

namespace ssl::ops {

namespace detail {
template <class T>
void require_storage(const tensor<T, cuda>& t, const char* what) {
    require<value_error>(t.defined(), what, ": the CUDA tensor has no storage (default-constructed)");
}
template <class T>
void require_same_device(const tensor<T, cuda>& a, const tensor<T, cuda>& b, const char* what) {
    require<value_error>(a.device() == b.device(), what, ": tensors on CUDA devices ", a.device(), " and ", b.device());
}
}  // namespace detail

/// max(x, 0), a new tensor on x's device.
template <class T>
tensor<T, cuda> relu(const tensor<T, cuda>& x) {
    detail::require_storage(x, "relu");
    const int dev = x.device();
    gpu::device_guard g(dev);
    tensor<T, cuda> y(x.shape());
    if (const std::size_t n = x.numel()) {
        const auto cfg = gpu::grid_stride_config(n, dev);
        gpu::kernels::relu_forward<T><<<cfg.blocks, cfg.threads, 0, gpu::work_stream(dev)>>>(x.data(), y.data(), n);
        SSL_CUDA_CHECK_LAUNCH("relu_forward");
    }
    return y;
}

/// dx = dy where the forward output y > 0, else 0 (as the host relu layer).
template <class T>
tensor<T, cuda> relu_backward(const tensor<T, cuda>& y, const tensor<T, cuda>& dy) {
    detail::require_storage(y, "relu backward");
    detail::require_storage(dy, "relu backward");
    check_same_shape(dy, y, "relu backward (gradient vs output)");
    detail::require_same_device(y, dy, "relu backward");
    const int dev = y.device();
    gpu::device_guard g(dev);
    tensor<T, cuda> dx(dy.shape());
    if (const std::size_t n = dy.numel()) {
        const auto cfg = gpu::grid_stride_config(n, dev);
        gpu::kernels::relu_backward<T>
            <<<cfg.blocks, cfg.threads, 0, gpu::work_stream(dev)>>>(y.data(), dy.data(), dx.data(), n);
        SSL_CUDA_CHECK_LAUNCH("relu_backward");
    }
    return dx;
}

/// y = a x + y, in place on y's storage (every tensor sharing it sees the
/// update). x may be y itself.
template <class T>
void scale_add(std::type_identity_t<T> a, const tensor<T, cuda>& x, tensor<T, cuda>& y) {
    detail::require_storage(x, "scale_add");
    detail::require_storage(y, "scale_add");
    check_same_shape(x, y, "scale_add (x vs y)");
    detail::require_same_device(x, y, "scale_add");
    const int dev = y.device();
    gpu::device_guard g(dev);
    if (const std::size_t n = y.numel()) {
        const auto cfg = gpu::grid_stride_config(n, dev);
        gpu::kernels::scale_add<T><<<cfg.blocks, cfg.threads, 0, gpu::work_stream(dev)>>>(a, x.data(), y.data(), n);
        SSL_CUDA_CHECK_LAUNCH("scale_add");
    }
}

}  // namespace ssl::ops
