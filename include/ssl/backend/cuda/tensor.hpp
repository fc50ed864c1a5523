#pragma once
// ssl::tensor<T, ssl::cuda>: the device counterpart of the host tensor, with
// the same shape / numel / reshape / slice API and the same sharing rule
// (copies alias storage, clone() copies). Storage comes from the device
// caching allocator (runtime.hpp) of the device that was current when the
// tensor was made; contents are reached only through device code, cuBLAS and
// the copies ssl::to_device / ssl::to_host (there is no element access from
// the host).
//
// This header specializes the primary template of core/tensor.hpp. Code that
// names tensor<T, ssl::cuda> without including it still gets the primary's
// static_assert sentence.
//
// All copies are queued on the device's work_stream (see runtime.hpp);
// to_host waits for them, so it also waits for every kernel queued before.
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "../../core/tensor.hpp"
#include "runtime.hpp"

namespace ssl {

template <class T>
class tensor<T, cuda> {
    static_assert(std::is_arithmetic_v<T>,
                  "ssl::tensor<T, ssl::cuda> holds arithmetic types only (float, double, int64_t...)");

public:
    using value_type = T;
    using device_type = cuda;

    tensor() = default;
    /// A tensor on the current device, contents uninitialized.
    explicit tensor(shape_t shape) : shape_(shape) { allocate(); }
    tensor(std::initializer_list<std::size_t> dims) : shape_(dims) { allocate(); }
    tensor(shape_t shape, T fill) : shape_(shape) {
        allocate();
        this->fill(fill);
    }

    static tensor empty(shape_t s) { return tensor(s); }
    static tensor zeros(shape_t s) {
        tensor t(s);
        t.zero();
        return t;
    }
    static tensor full(shape_t s, T v) { return tensor(s, v); }
    /// A device tensor holding a copy of the host `values`.
    static tensor from(shape_t s, std::span<const T> values) {
        require<shape_error>(values.size() == s.numel(), "tensor<cuda>::from: ", values.size(),
                             " values do not fill shape ", s.str(), " (", s.numel(), " elements)");
        tensor t(s);
        t.copy_from_host(values.data());
        return t;
    }
    static tensor from(shape_t s, std::initializer_list<T> values) {
        return from(s, std::span<const T>(values.begin(), values.size()));
    }

    const shape_t& shape() const noexcept { return shape_; }
    std::size_t rank() const noexcept { return shape_.rank(); }
    std::size_t dim(std::size_t i) const {
        require<shape_error>(i < shape_.rank(), "dimension ", i, " requested from a tensor of shape ", shape_.str());
        return shape_[i];
    }
    std::size_t numel() const noexcept { return numel_; }
    std::size_t size() const noexcept { return numel_; }
    bool empty() const noexcept { return numel_ == 0; }
    bool defined() const noexcept { return static_cast<bool>(store_); }
    /// The device that holds the storage.
    int device() const noexcept { return device_; }

    shape_t strides() const {
        shape_t s = shape_;
        std::size_t acc = 1;
        for (std::size_t i = shape_.rank(); i-- > 0;) {
            s[i] = acc;
            acc *= shape_[i];
        }
        return s;
    }

    /// Device pointers (never dereference them on the host).
    T* data() noexcept { return base_; }
    const T* data() const noexcept { return base_; }

    /// Sets every element to v (v == 0: a memset; otherwise a copy from a
    /// host buffer until a fill kernel exists).
    void fill(T v) {
        if (!numel_) return;
        if (v == T(0)) {
            zero();
            return;
        }
        std::vector<T> host(numel_, v);
        copy_from_host(host.data());
        // The copy from pageable memory is staged before the call returns,
        // but wait anyway: `host` dies at the end of this scope.
        gpu::synchronize(device_);
    }
    void zero() {
        if (!numel_) return;
        gpu::device_guard g(device_);
        SSL_CUDA_CHECK(cudaMemsetAsync(base_, 0, numel_ * sizeof(T), gpu::work_stream(device_)));
    }

    /// Deep copy into fresh storage on the same device.
    tensor clone() const {
        if (!defined()) return tensor();
        gpu::device_guard g(device_);
        tensor t(shape_);
        t.copy_from_device(*this);
        return t;
    }

    /// Same storage, new shape with the same number of elements.
    tensor reshape(shape_t s) const {
        require<shape_error>(s.numel() == numel_, "reshape from ", shape_.str(), " to ", s.str(),
                             ": element counts differ (", numel_, " vs ", s.numel(), ")");
        tensor t = *this;
        t.shape_ = s;
        return t;
    }

    /// Rows [begin, end) along dimension 0, sharing storage (zero-copy).
    tensor slice(std::size_t begin, std::size_t end) const {
        require<shape_error>(rank() >= 1 && begin <= end && end <= shape_[0], "slice [", begin, ", ", end,
                             ") out of range for a tensor of shape ", shape_.str());
        tensor t = *this;
        t.shape_[0] = end - begin;
        std::size_t inner = shape_[0] ? numel_ / shape_[0] : 0;
        t.base_ = base_ + begin * inner;
        t.numel_ = (end - begin) * inner;
        return t;
    }

    /// Copies the contents of `src` (same shape, same device) into this
    /// tensor's storage.
    void assign(const tensor& src) {
        require<shape_error>(src.shape_ == shape_, "assign: source shape ", src.shape_.str(),
                             " differs from destination shape ", shape_.str());
        if (numel_ && src.base_ != base_) copy_from_device(src);
    }

    bool shares_storage_with(const tensor& o) const noexcept { return store_ && store_ == o.store_; }

    /// Queues a copy of numel() values from host memory (pageable or pinned)
    /// into this tensor. The call returns once the host memory may be reused.
    void copy_from_host(const T* src) {
        if (!numel_) return;
        gpu::device_guard g(device_);
        SSL_CUDA_CHECK(
            cudaMemcpyAsync(base_, src, numel_ * sizeof(T), cudaMemcpyHostToDevice, gpu::work_stream(device_)));
    }
    /// Copies numel() values into host memory; waits until they are there
    /// (and so for everything queued on the device before).
    void copy_to_host(T* dst) const {
        if (!numel_) return;
        gpu::device_guard g(device_);
        cudaStream_t s = gpu::work_stream(device_);
        SSL_CUDA_CHECK(cudaMemcpyAsync(dst, base_, numel_ * sizeof(T), cudaMemcpyDeviceToHost, s));
        SSL_CUDA_CHECK(cudaStreamSynchronize(s));
    }

private:
    void allocate() {
        device_ = gpu::current_device();  // throws cuda_error with a sentence when there is no GPU
        numel_ = shape_.numel();
        const std::size_t bytes = numel_ * sizeof(T);
        auto& pool = gpu::detail::device_pool::instance(device_);
        void* p = pool.allocate(bytes);
        const int dev = device_;
        store_ = std::shared_ptr<T>(
            static_cast<T*>(p), [dev, bytes](T* q) { gpu::detail::device_pool::instance(dev).deallocate(q, bytes); });
        base_ = store_.get();
    }
    void copy_from_device(const tensor& src) {
        require<value_error>(src.device_ == device_, "copy between CUDA devices ", src.device_, " and ", device_,
                             " is not supported yet");
        gpu::device_guard g(device_);
        SSL_CUDA_CHECK(
            cudaMemcpyAsync(base_, src.base_, numel_ * sizeof(T), cudaMemcpyDeviceToDevice, gpu::work_stream(device_)));
    }

    shape_t shape_{};
    std::size_t numel_ = 0;
    std::shared_ptr<T> store_{};
    T* base_ = nullptr;
    int device_ = 0;
};

/// Alias for device tensors.
template <class T = float>
using cuda_tensor = tensor<T, cuda>;

/// A copy of a host tensor on the current device.
template <class T>
tensor<T, cuda> to_device(const tensor<T, host>& t) {
    require<value_error>(t.defined(), "to_device: the host tensor has no storage (default-constructed)");
    tensor<T, cuda> d(t.shape());
    d.copy_from_host(t.data());
    return d;
}

/// A copy of a device tensor in host memory (waits for the device).
template <class T>
tensor<T, host> to_host(const tensor<T, cuda>& t) {
    require<value_error>(t.defined(), "to_host: the CUDA tensor has no storage (default-constructed)");
    tensor<T, host> h(t.shape());
    t.copy_to_host(h.data());
    return h;
}

}  // namespace ssl
