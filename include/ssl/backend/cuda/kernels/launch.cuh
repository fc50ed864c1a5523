#pragma once
// Launch helpers for ssl's own kernels (device code: nvcc only).
#if !defined(__CUDACC__)
#error "ssl/backend/cuda/kernels/*.cuh hold CUDA kernels: include them from a .cu file compiled by nvcc"
#endif
#include <algorithm>
#include <cstddef>

#include "../runtime.hpp"

namespace ssl::gpu {

/// Grid of a grid-stride loop over n elements: enough blocks to fill the
/// device a few times over, never more than the elements need (at least 1).
struct launch_config {
    unsigned blocks;
    unsigned threads;
};

inline launch_config grid_stride_config(std::size_t n, int device, unsigned threads = 256) {
    const std::size_t want = (n + threads - 1) / threads;
    const std::size_t cap = static_cast<std::size_t>(multiprocessor_count(device)) * 4;
    return {static_cast<unsigned>(std::max<std::size_t>(1, std::min(want, cap))), threads};
}

/// First index and stride of the calling thread in a grid-stride loop.
__device__ inline std::size_t grid_index() { return static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline std::size_t grid_stride() { return static_cast<std::size_t>(gridDim.x) * blockDim.x; }

}  // namespace ssl::gpu
