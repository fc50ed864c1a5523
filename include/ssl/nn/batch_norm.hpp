#pragma once
// Batch normalization (Ioffe & Szegedy 2015) over (N, C) or (N, C, H, W):
// statistics per channel over N (and H, W). Train mode normalizes with the
// batch statistics and updates running_mean / running_var (unbiased) with
// `momentum` as PyTorch does; eval mode uses the running statistics.
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/thread_pool.hpp"
#include "parameter.hpp"

namespace ssl::nn {

struct batch_norm_config {
    std::size_t channels = 0;
    double momentum = 0.1;
    double eps = 1e-5;
    bool affine = true;
    bool track_running_stats = true;
};

namespace detail {

/// Shared implementation; Rank is 2 for batch_norm1d, 4 for batch_norm2d.
template <class T, std::size_t Rank>
class batch_norm_impl {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> x;        // input
        tensor<T> mean;     // (C,) statistics used in the forward
        tensor<T> invstd;   // (C,)
        bool batch_stats = true;
    };

    batch_norm_impl() = default;
    explicit batch_norm_impl(const batch_norm_config& c) : cfg_(c) {
        require(c.channels > 0, "batch_norm: channels must be positive");
        require(c.eps > 0, "batch_norm: eps must be positive, got ", c.eps);
        require(c.momentum >= 0 && c.momentum <= 1, "batch_norm: momentum must be in [0, 1], got ", c.momentum);
        if (c.affine) {
            weight_ = parameter<T>({c.channels}, param_role::norm);
            bias_ = parameter<T>({c.channels}, param_role::norm);
            weight_.value.fill(T(1));
        }
        running_mean_ = tensor<T>::zeros({c.channels});
        running_var_ = tensor<T>::full({c.channels}, T(1));
        num_batches_ = tensor<std::int64_t>::zeros({});
    }

    const batch_norm_config& config() const noexcept { return cfg_; }
    parameter<T>& weight() noexcept { return weight_; }
    parameter<T>& bias() noexcept { return bias_; }
    tensor<T>& running_mean() noexcept { return running_mean_; }
    tensor<T>& running_var() noexcept { return running_var_; }
    std::int64_t num_batches_tracked() const noexcept { return num_batches_[0]; }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        check_input(x);
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = n * S;
        cache_type c{x, tensor<T>({C}), tensor<T>({C}), training_ || !cfg_.track_running_stats};
        if (c.batch_stats)
            require<shape_error>(M > 1, "batch_norm: training needs more than one value per channel, got input ",
                                 x.shape().str());
        tensor<T> y(x.shape());
        parallel_for(C, [&](std::size_t ch, std::size_t) {
            double mean, var;
            if (c.batch_stats) {
                double s = 0;
                for (std::size_t b = 0; b < n; ++b) {
                    const T* p = x.data() + (b * C + ch) * S;
                    for (std::size_t i = 0; i < S; ++i) s += p[i];
                }
                mean = s / static_cast<double>(M);
                double ss = 0;
                for (std::size_t b = 0; b < n; ++b) {
                    const T* p = x.data() + (b * C + ch) * S;
                    for (std::size_t i = 0; i < S; ++i) {
                        const double d = p[i] - mean;
                        ss += d * d;
                    }
                }
                var = ss / static_cast<double>(M);
                if (training_ && cfg_.track_running_stats) {
                    const double m = cfg_.momentum;
                    running_mean_[ch] = static_cast<T>((1 - m) * running_mean_[ch] + m * mean);
                    running_var_[ch] = static_cast<T>((1 - m) * running_var_[ch] +
                                                      m * var * static_cast<double>(M) / static_cast<double>(M - 1));
                }
            } else {
                mean = running_mean_[ch];
                var = running_var_[ch];
            }
            const double invstd = 1.0 / std::sqrt(var + cfg_.eps);
            c.mean[ch] = static_cast<T>(mean);
            c.invstd[ch] = static_cast<T>(invstd);
            const T g = cfg_.affine ? weight_.value[ch] : T(1);
            const T bt = cfg_.affine ? bias_.value[ch] : T(0);
            const T scale = static_cast<T>(g * invstd);
            const T shift = static_cast<T>(bt - mean * g * invstd);
            for (std::size_t b = 0; b < n; ++b) {
                const T* p = x.data() + (b * C + ch) * S;
                T* q = y.data() + (b * C + ch) * S;
                for (std::size_t i = 0; i < S; ++i) q[i] = p[i] * scale + shift;
            }
        });
        if (training_ && cfg_.track_running_stats) num_batches_[0] += 1;
        return {std::move(y), std::move(c)};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        check_same_shape(dy, c.x, "batch_norm backward (gradient vs input)");
        const tensor<T>& x = c.x;
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = n * S;
        tensor<T> dx(x.shape());
        parallel_for(C, [&](std::size_t ch, std::size_t) {
            const double mean = c.mean[ch], invstd = c.invstd[ch];
            double sdy = 0, sdyx = 0;  // sum(dy), sum(dy * xhat)
            for (std::size_t b = 0; b < n; ++b) {
                const T* p = x.data() + (b * C + ch) * S;
                const T* d = dy.data() + (b * C + ch) * S;
                for (std::size_t i = 0; i < S; ++i) {
                    sdy += d[i];
                    sdyx += d[i] * (p[i] - mean);
                }
            }
            sdyx *= invstd;
            const double g = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
            if (cfg_.affine) {
                weight_.grad[ch] += static_cast<T>(sdyx);
                bias_.grad[ch] += static_cast<T>(sdy);
            }
            if (c.batch_stats) {
                // dx = g * invstd / M * (M dy - sum(dy) - xhat * sum(dy xhat))
                const double k = g * invstd;
                const double a = sdy / static_cast<double>(M);
                const double bcoef = sdyx / static_cast<double>(M) * invstd;
                for (std::size_t b = 0; b < n; ++b) {
                    const T* p = x.data() + (b * C + ch) * S;
                    const T* d = dy.data() + (b * C + ch) * S;
                    T* o = dx.data() + (b * C + ch) * S;
                    for (std::size_t i = 0; i < S; ++i)
                        o[i] = static_cast<T>(k * (d[i] - a - (p[i] - mean) * bcoef));
                }
            } else {
                const T k = static_cast<T>(g * invstd);
                for (std::size_t b = 0; b < n; ++b) {
                    const T* d = dy.data() + (b * C + ch) * S;
                    T* o = dx.data() + (b * C + ch) * S;
                    for (std::size_t i = 0; i < S; ++i) o[i] = d[i] * k;
                }
            }
        });
        return dx;
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        if (cfg_.affine) {
            f(join_name(prefix, "weight"), weight_);
            f(join_name(prefix, "bias"), bias_);
        }
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix) {
        if (!cfg_.track_running_stats) return;
        f(join_name(prefix, "running_mean"), running_mean_);
        f(join_name(prefix, "running_var"), running_var_);
        f(join_name(prefix, "num_batches_tracked"), num_batches_);
    }
    void train(bool on) noexcept { training_ = on; }
    bool training() const noexcept { return training_; }

private:
    void check_input(const tensor<T>& x) const {
        check_rank(x, Rank, Rank == 4 ? "batch_norm2d" : "batch_norm1d", Rank == 4 ? "(N, C, H, W)" : "(N, C)");
        require<shape_error>(x.dim(1) == cfg_.channels, Rank == 4 ? "batch_norm2d" : "batch_norm1d", ": input has ",
                             x.dim(1), " channels, the layer has ", cfg_.channels, " (input shape ", x.shape().str(),
                             ")");
    }
    static std::size_t spatial(const tensor<T>& x) { return Rank == 4 ? x.dim(2) * x.dim(3) : 1; }

    batch_norm_config cfg_{};
    parameter<T> weight_{}, bias_{};
    tensor<T> running_mean_{}, running_var_{};
    tensor<std::int64_t> num_batches_{};
    bool training_ = true;
};

}  // namespace detail

/// Batch norm over (N, C, H, W).
template <class T = float>
class batch_norm2d : public detail::batch_norm_impl<T, 4> {
public:
    using detail::batch_norm_impl<T, 4>::batch_norm_impl;
};
/// Batch norm over (N, C).
template <class T = float>
class batch_norm1d : public detail::batch_norm_impl<T, 2> {
public:
    using detail::batch_norm_impl<T, 2>::batch_norm_impl;
};

}  // namespace ssl::nn
