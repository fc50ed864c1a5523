#pragma once
// The CUDA runtime layer of the CUDA backend (host code: compiles with g++ or
// nvcc, links to CUDA::cudart and CUDA::cublas through the ssl::cuda target).
//
//   SSL_CUDA_CHECK(call)      throws ssl::cuda_error   unless call == cudaSuccess
//   SSL_CUBLAS_CHECK(call)    throws ssl::cublas_error unless CUBLAS_STATUS_SUCCESS
//   SSL_CUDNN_CHECK(call)     throws ssl::cudnn_error  (only with SSL_WITH_CUDNN)
//   SSL_CUDA_CHECK_LAUNCH(k)  after a kernel launch: the launch error, if any
//
// Messages read  "<call text> failed: <error name>: <error string> (file:line)".
//
//   ssl::cuda_device_count()   0 (never throws) when there is no driver or GPU
//   ssl::cuda_available()
//   ssl::cuda_pool_stats(dev)  the device caching allocator (like host_pool_stats)
//   ssl::cuda_pool_release()
//   ssl::gpu::device_guard     RAII cudaSetDevice / restore
//   ssl::gpu::stream           RAII stream
//   ssl::gpu::work_stream(dev) the stream all ssl work on `dev` is ordered on
//   ssl::gpu::cublas_handle(dev) the cached cuBLAS handle of `dev` (on work_stream)
//
// Ordering rule of the backend: every copy, kernel and cuBLAS call that ssl
// makes on a device goes to that device's work_stream. The caching allocator
// relies on it: a block freed by the host while kernels that use it are still
// queued can be handed out again at once, because whatever uses it next is
// queued on the same stream, behind them (PyTorch's rule too). Work that a
// user puts on another stream must synchronize with work_stream first.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#if defined(SSL_WITH_CUDNN)
#include <cudnn.h>
#endif

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/memory_pool.hpp"

namespace ssl::gpu {

// --- error checks --------------------------------------------------------------

namespace detail {
inline std::string failure_message(const char* call, const char* name, const char* text, const char* file, int line) {
    return ssl::detail::cat(call, " failed: ", name ? name : "unknown error", ": ", text ? text : "(no description)",
                            " (", file, ":", line, ")");
}
}  // namespace detail

/// Throws cuda_error unless `e` is cudaSuccess. Clears the runtime's last
/// error so a later check does not report this failure again (sticky errors,
/// which corrupt the context, stay: every later call reports them).
inline void check(cudaError_t e, const char* call, const char* file, int line) {
    if (e == cudaSuccess) return;
    (void)cudaGetLastError();
    throw cuda_error(detail::failure_message(call, cudaGetErrorName(e), cudaGetErrorString(e), file, line));
}

/// Throws cublas_error unless `s` is CUBLAS_STATUS_SUCCESS.
inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    throw cublas_error(detail::failure_message(call, cublasGetStatusName(s), cublasGetStatusString(s), file, line));
}

#if defined(SSL_WITH_CUDNN)
/// Throws cudnn_error unless `s` is CUDNN_STATUS_SUCCESS.
inline void check_cudnn(cudnnStatus_t s, const char* call, const char* file, int line) {
    if (s == CUDNN_STATUS_SUCCESS) return;
    char why[512] = {};  // cuDNN 9 keeps a description of the last failure per thread
    cudnnGetLastErrorString(why, sizeof why);
    throw cudnn_error(
        detail::failure_message(call, cudnnGetErrorString(s), why[0] ? why : "no further description", file, line));
}
#endif

}  // namespace ssl::gpu

#define SSL_CUDA_CHECK(call) ::ssl::gpu::check((call), #call, __FILE__, __LINE__)
#define SSL_CUBLAS_CHECK(call) ::ssl::gpu::check_cublas((call), #call, __FILE__, __LINE__)
#if defined(SSL_WITH_CUDNN)
#define SSL_CUDNN_CHECK(call) ::ssl::gpu::check_cudnn((call), #call, __FILE__, __LINE__)
#endif
/// After `kernel<<<...>>>(...)`: reports a bad launch configuration or a
/// sticky error from earlier work (asynchronous faults show at the next sync).
#define SSL_CUDA_CHECK_LAUNCH(kernel_name) \
    ::ssl::gpu::check(cudaGetLastError(), "launch of kernel " kernel_name, __FILE__, __LINE__)

namespace ssl::gpu {

// --- devices -------------------------------------------------------------------

/// Number of CUDA devices; 0, without throwing, when there is no driver, the
/// driver is too old for this runtime, or no GPU is visible.
inline int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

/// Throws cuda_error with a sentence unless `device` names an existing GPU.
inline void require_device(int device) {
    const int n = device_count();
    if (n == 0)
        throw cuda_error(ssl::detail::cat(
            "no CUDA device: this program was built with the CUDA backend but the machine has no usable GPU "
            "(or no driver); use ssl::host tensors"));
    if (device < 0 || device >= n)
        throw cuda_error(ssl::detail::cat("CUDA device ", device, " does not exist (", n, " device", n == 1 ? "" : "s",
                                          " visible)"));
}

/// The calling thread's current device (0 when none is set yet).
inline int current_device() {
    require_device(0);
    int d = 0;
    SSL_CUDA_CHECK(cudaGetDevice(&d));
    return d;
}

inline void set_device(int device) {
    require_device(device);
    SSL_CUDA_CHECK(cudaSetDevice(device));
}

/// Makes `device` current for the scope and restores the previous one.
class device_guard {
public:
    explicit device_guard(int device) : prev_(current_device()) {
        if (device != prev_) {
            set_device(device);
            changed_ = true;
        }
    }
    ~device_guard() {
        if (changed_) (void)cudaSetDevice(prev_);
    }
    device_guard(const device_guard&) = delete;
    device_guard& operator=(const device_guard&) = delete;

private:
    int prev_;
    bool changed_ = false;
};

/// Multiprocessor count of `device` (cached; used to size grid-stride launches).
inline int multiprocessor_count(int device) {
    static std::mutex mu;
    static std::unordered_map<int, int> cache;
    std::lock_guard lk(mu);
    if (auto it = cache.find(device); it != cache.end()) return it->second;
    int n = 0;
    SSL_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    cache.emplace(device, n);
    return n;
}

// --- streams -------------------------------------------------------------------

/// An owning CUDA stream (non-blocking: no implicit ordering with the legacy
/// default stream). Move-only.
class stream {
public:
    /// A new stream on `device`.
    explicit stream(int device) : device_(device) {
        device_guard g(device);
        SSL_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    }
    stream() : stream(current_device()) {}
    ~stream() {
        if (s_) (void)cudaStreamDestroy(s_);
    }
    stream(stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)), device_(o.device_) {}
    stream& operator=(stream&& o) noexcept {
        if (this != &o) {
            if (s_) (void)cudaStreamDestroy(s_);
            s_ = std::exchange(o.s_, nullptr);
            device_ = o.device_;
        }
        return *this;
    }
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    cudaStream_t get() const noexcept { return s_; }
    operator cudaStream_t() const noexcept { return s_; }
    int device() const noexcept { return device_; }
    /// Blocks until all work queued on the stream is done (reports its errors).
    void synchronize() const { SSL_CUDA_CHECK(cudaStreamSynchronize(s_)); }

private:
    cudaStream_t s_ = nullptr;
    int device_ = 0;
};

namespace detail {
/// Per-device singletons created on first use and never destroyed: tensors in
/// statics may outlive main, and CUDA objects must not be released after the
/// runtime has shut down.
template <class Obj>
class per_device {
public:
    template <class Make>
    Obj& get(int device, Make&& make) {
        require_device(device);
        std::lock_guard lk(mu_);
        if (objs_.empty()) objs_.resize(static_cast<std::size_t>(device_count()), nullptr);
        Obj*& p = objs_[static_cast<std::size_t>(device)];
        if (!p) p = make(device);
        return *p;
    }

private:
    std::mutex mu_;
    std::vector<Obj*> objs_;
};
}  // namespace detail

/// The stream that ssl orders all its work on for `device` (see the ordering
/// rule at the top of this header).
inline cudaStream_t work_stream(int device) {
    static auto* streams = new detail::per_device<stream>();
    return streams->get(device, [](int d) { return new stream(d); }).get();
}
inline cudaStream_t work_stream() { return work_stream(current_device()); }

/// Waits for all ssl work queued on `device`.
inline void synchronize(int device) { SSL_CUDA_CHECK(cudaStreamSynchronize(work_stream(device))); }

// --- cuBLAS --------------------------------------------------------------------

/// The cuBLAS handle of `device`, created once, bound to work_stream(device),
/// host pointer mode, default (full fp32, no TF32) math. One handle per
/// device: calls from several host threads at once must be serialized by the
/// caller (the library drives a device from one thread).
inline cublasHandle_t cublas_handle(int device) {
    struct holder {
        cublasHandle_t h = nullptr;
    };
    static auto* handles = new detail::per_device<holder>();
    return handles
        ->get(device,
              [](int d) {
                  device_guard g(d);
                  auto* hd = new holder();
                  SSL_CUBLAS_CHECK(cublasCreate(&hd->h));
                  SSL_CUBLAS_CHECK(cublasSetStream(hd->h, work_stream(d)));
                  SSL_CUBLAS_CHECK(cublasSetPointerMode(hd->h, CUBLAS_POINTER_MODE_HOST));
                  return hd;
              })
        .h;
}
inline cublasHandle_t cublas_handle() { return cublas_handle(current_device()); }

// --- device memory ---------------------------------------------------------------

namespace detail {

/// The caching allocator of one device: freed blocks wait in per-size free
/// lists and are handed out again, so the steady-state step makes no
/// cudaMalloc (cudaMalloc and cudaFree synchronize the device). Sizes are
/// rounded up to 512 bytes; blocks are 256-byte aligned (cudaMalloc's).
class device_pool {
public:
    static constexpr std::size_t granularity = 512;

    explicit device_pool(int device) : device_(device) {}

    static device_pool& instance(int device) {
        static auto* pools = new per_device<device_pool>();
        return pools->get(device, [](int d) { return new device_pool(d); });
    }

    int device() const noexcept { return device_; }

    void* allocate(std::size_t bytes) {
        bytes = round(bytes);
        {
            std::lock_guard lk(mu_);
            auto it = free_.find(bytes);
            if (it != free_.end() && !it->second.empty()) {
                void* p = it->second.back();
                it->second.pop_back();
                stats_.reuses++;
                stats_.cached_bytes -= bytes;
                stats_.live_bytes += bytes;
                return p;
            }
        }
        device_guard g(device_);
        void* p = nullptr;
        cudaError_t e = cudaMalloc(&p, bytes);
        if (e == cudaErrorMemoryAllocation) {
            // Give the cached blocks back and try once more.
            (void)cudaGetLastError();
            release_cached();
            e = cudaMalloc(&p, bytes);
        }
        if (e != cudaSuccess) {
            const pool_stats s = stats();
            (void)cudaGetLastError();
            throw cuda_error(ssl::detail::cat(
                "cudaMalloc of ", bytes, " bytes on device ", device_, " failed: ", cudaGetErrorName(e), ": ",
                cudaGetErrorString(e), " (ssl holds ", s.live_bytes, " bytes live, ", s.cached_bytes, " cached)"));
        }
        std::lock_guard lk(mu_);
        stats_.system_allocations++;
        stats_.live_bytes += bytes;
        return p;
    }

    void deallocate(void* p, std::size_t bytes) noexcept {
        bytes = round(bytes);
        std::lock_guard lk(mu_);
        try {
            free_[bytes].push_back(p);
            stats_.cached_bytes += bytes;
        } catch (...) {
            (void)cudaFree(p);
        }
        stats_.live_bytes -= bytes;
    }

    /// cudaFree for every cached block (live blocks are untouched). cudaFree
    /// waits for the device, so queued work that last used a block is done.
    void release_cached() noexcept {
        std::vector<void*> blocks;
        {
            std::lock_guard lk(mu_);
            for (auto& [sz, v] : free_) {
                blocks.insert(blocks.end(), v.begin(), v.end());
                v.clear();
            }
            stats_.cached_bytes = 0;
        }
        if (blocks.empty()) return;
        int prev = 0;
        const bool have_prev = cudaGetDevice(&prev) == cudaSuccess;
        (void)cudaSetDevice(device_);
        for (void* p : blocks) (void)cudaFree(p);
        if (have_prev) (void)cudaSetDevice(prev);
        (void)cudaGetLastError();
    }

    pool_stats stats() const {
        std::lock_guard lk(mu_);
        return stats_;
    }

    static std::size_t round(std::size_t b) {
        if (b == 0) b = 1;
        return (b + granularity - 1) / granularity * granularity;
    }

private:
    int device_;
    mutable std::mutex mu_;
    std::unordered_map<std::size_t, std::vector<void*>> free_;
    pool_stats stats_;
};

}  // namespace detail
}  // namespace ssl::gpu

namespace ssl {

/// Number of CUDA devices (0 when there is no driver or GPU; never throws).
inline int cuda_device_count() noexcept { return gpu::device_count(); }
/// True when at least one CUDA device can be used.
inline bool cuda_available() noexcept { return gpu::device_count() > 0; }

/// Statistics of the caching allocator of `device` (system_allocations are
/// cudaMalloc calls).
inline pool_stats cuda_pool_stats(int device = 0) { return gpu::detail::device_pool::instance(device).stats(); }
/// Returns the cached (unused) device blocks of every device to the driver.
inline void cuda_pool_release() {
    for (int d = 0, n = gpu::device_count(); d < n; ++d) gpu::detail::device_pool::instance(d).release_cached();
}

}  // namespace ssl
