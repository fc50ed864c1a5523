#pragma once
// Element-wise activations.
#include <string>

#include "../core/thread_pool.hpp"
#include "parameter.hpp"

namespace ssl::nn {

namespace detail {
/// Splits [0, n) into about one chunk per thread (at least `min_chunk` long).
template <class F>
void parallel_chunks(std::size_t n, F&& f, std::size_t min_chunk = 1 << 14) {
    const std::size_t th = num_threads();
    std::size_t chunks = std::min<std::size_t>(th, (n + min_chunk - 1) / min_chunk);
    if (chunks <= 1) {
        f(std::size_t{0}, n);
        return;
    }
    const std::size_t step = (n + chunks - 1) / chunks;
    parallel_for(chunks, [&](std::size_t i, std::size_t) {
        const std::size_t b = i * step, e = std::min(n, b + step);
        if (b < e) f(b, e);
    });
}
}  // namespace detail

/// Stateless modules have no parameters or buffers.
struct stateless {
    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept { training_ = on; }
    bool training() const noexcept { return training_; }

private:
    bool training_ = true;
};

/// max(x, 0).
template <class T = float>
class relu : public stateless {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> y;  // output; its sign is the mask
    };
    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        tensor<T> y(x.shape());
        const T* p = x.data();
        T* q = y.data();
        detail::parallel_chunks(x.numel(), [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) q[i] = p[i] > T(0) ? p[i] : T(0);
        });
        return {y, cache_type{y}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        check_same_shape(dy, c.y, "relu backward (gradient vs output)");
        tensor<T> dx(dy.shape());
        const T* y = c.y.data();
        const T* d = dy.data();
        T* o = dx.data();
        detail::parallel_chunks(dy.numel(), [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) o[i] = y[i] > T(0) ? d[i] : T(0);
        });
        return dx;
    }
};

}  // namespace ssl::nn
