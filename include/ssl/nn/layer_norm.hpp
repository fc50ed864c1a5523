#pragma once
// Layer normalization (Ba, Kiros & Hinton 2016) of feature maps, as CPC v2
// (Hénaff et al. 2019, sec. 3.2 / app. A) uses in its patch encoder instead of
// batch norm: batch norm would share statistics between the patches of one
// image and let the InfoNCE task cheat through them. Per sample n,
//
//   mu_n = mean over (C, H, W) of x[n],  var_n = biased variance over (C, H, W)
//   y[n, c, h, w] = (x[n, c, h, w] - mu_n) / sqrt(var_n + eps) * gamma[c] + beta[c]
//
// Contract: input (N, C, H, W) or (N, C) (then over C only), output the same
// shape; statistics never cross samples, so a sample's output does not
// depend on the rest of the batch (and train and eval modes agree).
//
// Design choices, one line each:
//   - the affine parameters are per channel (C,), not per (C, H, W): the
//     layer then works at any spatial size; this is PyTorch's
//     GroupNorm(1, C) exactly, and nn.LayerNorm([C, H, W]) when gamma = 1, beta = 0.
//   - eps = 1e-5 inside the square root, biased variance, as PyTorch.
//   - statistics in double per sample (two passes over a sample's values).
//   - parameter names weight / bias (role norm: LARS excludes them).
#include <cmath>
#include <string>

#include "../core/thread_pool.hpp"
#include "parameter.hpp"

namespace ssl::nn {

struct layer_norm_config {
    std::size_t channels = 0;
    double eps = 1e-5;
    bool affine = true;
};

template <class T = float>
class layer_norm {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> x;       // input
        tensor<T> mean;    // (N,)
        tensor<T> invstd;  // (N,)
    };

    layer_norm() = default;
    explicit layer_norm(const layer_norm_config& c) : cfg_(c) {
        require(c.channels > 0, "layer_norm: channels must be positive");
        require(c.eps > 0, "layer_norm: eps must be positive, got ", c.eps);
        if (c.affine) {
            weight_ = parameter<T>({c.channels}, param_role::norm);
            bias_ = parameter<T>({c.channels}, param_role::norm);
            weight_.value.fill(T(1));
        }
    }
    const layer_norm_config& config() const noexcept { return cfg_; }
    parameter<T>& weight() noexcept { return weight_; }
    parameter<T>& bias() noexcept { return bias_; }

    forward_result<T, cache_type> forward(const tensor<T>& x) const {
        check_input(x);
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = C * S;
        cache_type c{x, tensor<T>({n}), tensor<T>({n})};
        tensor<T> y(x.shape());
        parallel_for(n, [&](std::size_t b, std::size_t) {
            const T* p = x.data() + b * M;
            double m = 0, v = 0;
            for (std::size_t i = 0; i < M; ++i) m += static_cast<double>(p[i]);
            m /= static_cast<double>(M);
            for (std::size_t i = 0; i < M; ++i) {
                const double d = static_cast<double>(p[i]) - m;
                v += d * d;
            }
            v /= static_cast<double>(M);
            const double is = 1.0 / std::sqrt(v + cfg_.eps);
            c.mean[b] = static_cast<T>(m);
            c.invstd[b] = static_cast<T>(is);
            T* q = y.data() + b * M;
            for (std::size_t ch = 0; ch < C; ++ch) {
                const double g = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
                const double bt = cfg_.affine ? static_cast<double>(bias_.value[ch]) : 0.0;
                const T scale = static_cast<T>(g * is), shift = static_cast<T>(bt - m * g * is);
                for (std::size_t i = ch * S; i < (ch + 1) * S; ++i) q[i] = p[i] * scale + shift;
            }
        });
        return {std::move(y), std::move(c)};
    }

    /// dx = invstd / M * (M * g - sum(g) - xhat * sum(g * xhat)) with
    /// g = dy * gamma[c], sums over the sample; dgamma[c] += sum(dy * xhat),
    /// dbeta[c] += sum(dy) over the channel's values of every sample.
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        check_same_shape(dy, c.x, "layer_norm backward (gradient vs input)");
        const tensor<T>& x = c.x;
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = C * S;
        tensor<T> dx(x.shape());
        tensor<double> dg = tensor<double>::zeros({n, C}), db = tensor<double>::zeros({n, C});
        parallel_for(n, [&](std::size_t b, std::size_t) {
            const T* p = x.data() + b * M;
            const T* d = dy.data() + b * M;
            const double m = static_cast<double>(c.mean[b]), is = static_cast<double>(c.invstd[b]);
            double sg = 0, sgx = 0;
            for (std::size_t ch = 0; ch < C; ++ch) {
                const double gm = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
                double a = 0, ax = 0;
                for (std::size_t i = ch * S; i < (ch + 1) * S; ++i) {
                    const double xh = (static_cast<double>(p[i]) - m) * is, g = static_cast<double>(d[i]);
                    a += g;
                    ax += g * xh;
                }
                dg.data()[b * C + ch] = ax;
                db.data()[b * C + ch] = a;
                sg += gm * a;
                sgx += gm * ax;
            }
            const double inv_m = 1.0 / static_cast<double>(M);
            T* o = dx.data() + b * M;
            for (std::size_t ch = 0; ch < C; ++ch) {
                const double gm = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
                for (std::size_t i = ch * S; i < (ch + 1) * S; ++i) {
                    const double xh = (static_cast<double>(p[i]) - m) * is;
                    o[i] = static_cast<T>(is * (gm * static_cast<double>(d[i]) - inv_m * (sg + xh * sgx)));
                }
            }
        });
        if (cfg_.affine)
            for (std::size_t ch = 0; ch < C; ++ch) {
                double a = 0, bb = 0;
                for (std::size_t b = 0; b < n; ++b) {
                    a += dg.data()[b * C + ch];
                    bb += db.data()[b * C + ch];
                }
                weight_.grad[ch] += static_cast<T>(a);
                bias_.grad[ch] += static_cast<T>(bb);
            }
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
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept { training_ = on; }
    bool training() const noexcept { return training_; }

private:
    void check_input(const tensor<T>& x) const {
        require<shape_error>(x.rank() == 2 || x.rank() == 4,
                             "layer_norm: expected (N, C) or (N, C, H, W), got shape ", x.shape().str());
        require<shape_error>(x.dim(1) == cfg_.channels, "layer_norm: expected ", cfg_.channels,
                             " channels, got shape ", x.shape().str());
        require<shape_error>(x.numel() > 0, "layer_norm: empty input ", x.shape().str());
    }
    static std::size_t spatial(const tensor<T>& x) { return x.rank() == 4 ? x.dim(2) * x.dim(3) : 1; }

    layer_norm_config cfg_{};
    parameter<T> weight_, bias_;
    bool training_ = true;
};

}  // namespace ssl::nn
