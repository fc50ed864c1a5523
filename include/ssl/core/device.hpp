#pragma once
// Device tags. Tensors and ops are overloaded per tag; the user picks one.
#include <string_view>

namespace ssl {

/// The host backend: Eigen GEMM, im2col convolution, a thread pool.
struct host {
    static constexpr std::string_view name = "host";
};
/// The CUDA backend (cuBLAS, cuDNN, own kernels). Reserved: the tag exists so
/// code can name it, but host tensors are the only storage built so far.
struct cuda {
    static constexpr std::string_view name = "cuda";
};

template <class D>
inline constexpr bool is_device_v = false;
template <>
inline constexpr bool is_device_v<host> = true;
template <>
inline constexpr bool is_device_v<cuda> = true;

}  // namespace ssl
