#pragma once
// ssl::tensor<T, Device>: a dense, contiguous, row-major (NCHW for images)
// n-d array. Storage is shared between copies (like a PyTorch tensor): copying
// a tensor is cheap and aliases the same memory; `clone()` makes a deep copy.
// Ops never write into their inputs, so sharing is safe; layers keep what
// their backward needs by holding such cheap copies.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>

#include "device.hpp"
#include "error.hpp"
#include "memory_pool.hpp"
#include "shape.hpp"

namespace ssl {

template <class T, class Device = host>
class tensor {
    static_assert(std::is_same_v<Device, host>,
                  "ssl::tensor<T, ssl::cuda> needs the CUDA backend, which is not built yet; "
                  "use ssl::host tensors.");
    static_assert(std::is_arithmetic_v<T>, "ssl::tensor<T> holds arithmetic types only (float, double, int64_t...)");

public:
    using value_type = T;
    using device_type = Device;

    tensor() = default;
    explicit tensor(shape_t shape) : shape_(shape) { allocate(); }
    tensor(std::initializer_list<std::size_t> dims) : shape_(dims) { allocate(); }
    tensor(shape_t shape, T fill) : shape_(shape) {
        allocate();
        this->fill(fill);
    }

    /// A tensor of the given shape, contents uninitialized.
    static tensor empty(shape_t s) { return tensor(s); }
    static tensor zeros(shape_t s) { return tensor(s, T(0)); }
    static tensor full(shape_t s, T v) { return tensor(s, v); }
    /// A tensor holding a copy of `values` (size must match the shape).
    static tensor from(shape_t s, std::span<const T> values) {
        require<shape_error>(values.size() == s.numel(), "tensor::from: ", values.size(),
                             " values do not fill shape ", s.str(), " (", s.numel(), " elements)");
        tensor t(s);
        std::copy(values.begin(), values.end(), t.data());
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

    /// Row-major strides in elements.
    shape_t strides() const {
        shape_t s = shape_;
        std::size_t acc = 1;
        for (std::size_t i = shape_.rank(); i-- > 0;) {
            s[i] = acc;
            acc *= shape_[i];
        }
        return s;
    }

    T* data() noexcept { return base_; }
    const T* data() const noexcept { return base_; }
    std::span<T> span() noexcept { return {base_, numel_}; }
    std::span<const T> span() const noexcept { return {base_, numel_}; }
    T* begin() noexcept { return base_; }
    T* end() noexcept { return base_ + numel_; }
    const T* begin() const noexcept { return base_; }
    const T* end() const noexcept { return base_ + numel_; }

    T& operator[](std::size_t i) noexcept { return base_[i]; }
    const T& operator[](std::size_t i) const noexcept { return base_[i]; }

    /// Element access by multi-index (bounds-checked; for tests and readers).
    template <class... I>
    T& at(I... idx) {
        return base_[offset({static_cast<std::size_t>(idx)...})];
    }
    template <class... I>
    const T& at(I... idx) const {
        return base_[offset({static_cast<std::size_t>(idx)...})];
    }

    void fill(T v) noexcept { std::fill(base_, base_ + numel_, v); }
    void zero() noexcept {
        if (numel_) std::memset(static_cast<void*>(base_), 0, numel_ * sizeof(T));
    }

    /// Deep copy into fresh storage.
    tensor clone() const {
        tensor t(shape_);
        if (numel_) std::memcpy(static_cast<void*>(t.base_), base_, numel_ * sizeof(T));
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

    /// Copies the contents of `src` (same shape) into this tensor's storage.
    void assign(const tensor& src) {
        require<shape_error>(src.shape_ == shape_, "assign: source shape ", src.shape_.str(),
                             " differs from destination shape ", shape_.str());
        if (numel_ && src.base_ != base_) std::memcpy(static_cast<void*>(base_), src.base_, numel_ * sizeof(T));
    }

    /// True when both tensors view the same memory.
    bool shares_storage_with(const tensor& o) const noexcept { return store_ && store_ == o.store_; }

private:
    void allocate() {
        numel_ = shape_.numel();
        std::size_t bytes = numel_ * sizeof(T);
        void* p = detail::host_pool::instance().allocate(bytes);
        store_ = std::shared_ptr<T>(static_cast<T*>(p),
                                    [bytes](T* q) { detail::host_pool::instance().deallocate(q, bytes); });
        base_ = store_.get();
    }
    std::size_t offset(std::initializer_list<std::size_t> idx) const {
        // The messages are built only on failure (shape_.str() allocates).
        if (idx.size() != shape_.rank())
            throw shape_error(detail::cat("index of rank ", idx.size(), " into a tensor of shape ", shape_.str()));
        std::size_t off = 0, k = 0;
        for (auto i : idx) {
            if (i >= shape_[k])
                throw shape_error(detail::cat("index ", i, " out of range for dimension ", k, " of shape ",
                                              shape_.str()));
            off = off * shape_[k] + i;
            ++k;
        }
        return off;
    }

    shape_t shape_{};
    std::size_t numel_ = 0;
    std::shared_ptr<T> store_{};
    T* base_ = nullptr;
};

/// Throws shape_error naming both shapes unless a and b have the same shape.
template <class A, class B>
inline void check_same_shape(const A& a, const B& b, const char* what) {
    require<shape_error>(a.shape() == b.shape(), what, ": shapes ", a.shape().str(), " and ", b.shape().str(),
                         " differ");
}

/// Throws shape_error unless `t` has the expected rank.
template <class A>
inline void check_rank(const A& t, std::size_t rank, const char* what, const char* layout) {
    require<shape_error>(t.rank() == rank, what, ": expected a rank-", rank, " tensor ", layout, ", got shape ",
                         t.shape().str());
}

/// Converts element type (e.g. float <-> double for gradient checks).
template <class U, class T, class D>
tensor<U, D> cast(const tensor<T, D>& t) {
    tensor<U, D> r(t.shape());
    for (std::size_t i = 0; i < t.numel(); ++i) r[i] = static_cast<U>(t[i]);
    return r;
}

}  // namespace ssl
