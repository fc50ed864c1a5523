#pragma once
// Dropout (Srivastava et al. 2014), inverted: in training each element is
// kept with probability 1 - p and scaled by 1 / (1 - p), so that
// E[y] = x and eval mode is the identity:
//
//   train: y_i = m_i * x_i / (1 - p),  m_i ~ Bernoulli(1 - p)
//   eval:  y_i = x_i
//
// Colorization's hypercolumn head (Larsson et al. 2017) puts it after its
// 1x1 "fc" layer. Contract: any shape in, same shape out; backward applies
// the forward's mask and scale (kept in the cache), so two forwards in one
// step each get their own mask and backprop through it.
//
// Design choices, one line each:
//   - deterministic per seed: element i of the k-th training forward is
//     dropped iff word i of Philox(seed, stream_id(tag, k)) is below p * 2^32
//     (counter-based, so the mask does not depend on threads or on host/CUDA);
//   - k counts training forwards from 0; set_step(k) rewinds or jumps it (a
//     resumed run, or a gradient check that needs the same mask every call);
//   - p = 0 is the identity even in training; p = 1 drops everything (output
//     0, as PyTorch), no division by zero;
//   - the mask is stored as the per-element factor (0 or 1 / (1 - p));
//   - forward(x, rows) keys row r by its place rows[r] in a larger batch, so
//     a data-parallel rank draws the global batch's mask for its rows.
#include <cstdint>
#include <span>
#include <string>

#include "../core/rng.hpp"
#include "../core/thread_pool.hpp"
#include "activation.hpp"

namespace ssl::nn {

struct dropout_config {
    double p = 0.5;          ///< probability of dropping an element, in [0, 1]
    std::uint64_t seed = 0;  ///< masks are a pure function of (seed, step, element index)
};

template <class T = float>
class dropout {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> factor;  // per element 0 or 1 / (1 - p); undefined: identity (eval, or p = 0)
    };

    dropout() = default;
    explicit dropout(const dropout_config& c) : cfg_(c) {
        require(c.p >= 0 && c.p <= 1, "dropout: p must be in [0, 1], got ", c.p);
    }
    const dropout_config& config() const noexcept { return cfg_; }
    std::uint64_t step() const noexcept { return step_; }
    /// The mask index the next training forward uses.
    void set_step(std::uint64_t k) noexcept { step_ = k; }

    /// The keep/drop decision of element i at step k: true when kept.
    static bool keep(std::uint64_t seed, std::uint64_t k, std::size_t i, double p) noexcept {
        const philox g(seed, stream_id(0xD80F, k));
        const auto w = g.block(i / 4)[i % 4];
        // drop iff w < p * 2^32 (p = 1 drops all; w < 2^32 always)
        return static_cast<double>(w) >= p * 4294967296.0;
    }

    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward(x, {}); }

    /// As forward(x), with x read as rows (x.dim(0), the rest flattened) and
    /// row r's elements taking the words of row `rows[r]` of a larger batch:
    /// element (r, j) is element rows[r] * cols + j of the mask. A rank's
    /// slice of a data-parallel batch passes its rows' places in the global
    /// batch and gets the global batch's mask (empty `rows`: row r is row r).
    forward_result<T, cache_type> forward(const tensor<T>& x, std::span<const std::size_t> rows) {
        if (!training_ || cfg_.p == 0) return {x.clone(), cache_type{}};
        if (!rows.empty()) {
            require<shape_error>(x.rank() >= 1 && rows.size() == x.dim(0), "dropout: ", rows.size(),
                                 " row places for an input of shape ", x.shape().str());
            return forward_rows(x, rows);
        }
        const std::uint64_t k = step_++;
        tensor<T> f(x.shape()), y(x.shape());
        const T scale = cfg_.p >= 1 ? T(0) : static_cast<T>(1.0 / (1.0 - cfg_.p));
        const philox g(cfg_.seed, stream_id(0xD80F, k));
        const double thr = cfg_.p * 4294967296.0;
        const std::size_t n = x.numel(), blocks = (n + 3) / 4;
        detail::parallel_chunks(blocks, [&](std::size_t b0, std::size_t b1) {
            for (std::size_t b = b0; b < b1; ++b) {
                const auto w = g.block(b);
                for (std::size_t j = 0; j < 4 && 4 * b + j < n; ++j) {
                    const std::size_t i = 4 * b + j;
                    f[i] = static_cast<double>(w[j]) >= thr ? scale : T(0);
                    y[i] = x[i] * f[i];
                }
            }
        });
        return {std::move(y), cache_type{std::move(f)}};
    }

private:
    forward_result<T, cache_type> forward_rows(const tensor<T>& x, std::span<const std::size_t> rows) {
        const std::uint64_t k = step_++;
        tensor<T> f(x.shape()), y(x.shape());
        const T scale = cfg_.p >= 1 ? T(0) : static_cast<T>(1.0 / (1.0 - cfg_.p));
        const philox g(cfg_.seed, stream_id(0xD80F, k));
        const double thr = cfg_.p * 4294967296.0;
        const std::size_t R = x.dim(0), cols = R ? x.numel() / R : 0;
        detail::parallel_chunks(R, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                std::size_t at = static_cast<std::size_t>(-1);  // the Philox block in hand (4 words)
                decltype(g.block(0)) w{};
                for (std::size_t j = 0; j < cols; ++j) {
                    const std::size_t gi = rows[r] * cols + j, i = r * cols + j;
                    if (gi / 4 != at) w = g.block(at = gi / 4);
                    f[i] = static_cast<double>(w[gi % 4]) >= thr ? scale : T(0);
                    y[i] = x[i] * f[i];
                }
            }
        });
        return {std::move(y), cache_type{std::move(f)}};
    }

public:
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) const {
        if (!c.factor.defined()) return dy.clone();
        check_same_shape(dy, c.factor, "dropout backward (gradient vs output)");
        tensor<T> dx(dy.shape());
        for (std::size_t i = 0; i < dy.numel(); ++i) dx[i] = dy[i] * c.factor[i];
        return dx;
    }

    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept { training_ = on; }
    bool training() const noexcept { return training_; }

private:
    dropout_config cfg_{};
    std::uint64_t step_ = 0;
    bool training_ = true;
};

}  // namespace ssl::nn
