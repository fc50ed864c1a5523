#pragma once
// Batch normalization (Ioffe & Szegedy 2015) over (N, C) or (N, C, H, W):
// statistics per channel over N (and H, W). Train mode normalizes with the
// batch statistics and updates running_mean / running_var (unbiased) with
// `momentum` as PyTorch does; eval mode uses the running statistics.
//
// Synchronized batch norm (data parallel, dist/communicator.hpp): inside a
// dist::step_scope with sync_batch_norm, training-mode statistics are those of
// the global batch over all ranks (forward: each rank's count, mean and M2
// gathered and merged in rank order, Chan et al. 1979's pairwise update;
// backward: sum(dy) and sum(dy (x - mean)) allreduced), so P ranks normalize as
// one process on the concatenated batch. The weight and bias gradients stay
// the rank's own sums (the data-parallel gradient average adds them up).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../backend/host/small_gemm.hpp"  // nreg: native vectors
#include "../core/thread_pool.hpp"
#include "../dist/communicator.hpp"  // synchronized batch norm
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
        dist::communicator* group = nullptr;  // synchronized: the ranks the statistics span
        std::size_t group_count = 0;          // synchronized: values per channel over all ranks
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

    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward_impl(x, nullptr, false); }

    /// relu(bn(x)) in one pass (what conv - bn - relu needs); the output is
    /// also the relu's mask for backward_relu.
    forward_result<T, cache_type> forward_relu(const tensor<T>& x) { return forward_impl(x, nullptr, true); }

    /// relu(bn(x) + shortcut) in one pass (the end of a residual block).
    forward_result<T, cache_type> forward_add_relu(const tensor<T>& x, const tensor<T>& shortcut) {
        check_same_shape(x, shortcut, "batch_norm add_relu (main path vs shortcut)");
        return forward_impl(x, shortcut.data(), true);
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) { return backward_impl(c, dy, nullptr, nullptr); }

    /// Backward through relu then this layer: y is the relu's output (from
    /// forward_relu / forward_add_relu), dy the gradient at y.
    tensor<T> backward_relu(const cache_type& c, const tensor<T>& y, const tensor<T>& dy) {
        check_same_shape(y, dy, "batch_norm backward_relu (output vs gradient)");
        return backward_impl(c, dy, y.data(), nullptr);
    }

    /// backward_relu that also returns the masked gradient (y > 0 ? dy : 0)
    /// in `masked` (the identity shortcut's share of the gradient at the
    /// block input), written in the same pass.
    tensor<T> backward_relu(const cache_type& c, const tensor<T>& y, const tensor<T>& dy, tensor<T>& masked) {
        check_same_shape(y, dy, "batch_norm backward_relu (output vs gradient)");
        masked = tensor<T>(dy.shape());
        return backward_impl(c, dy, y.data(), masked.data());
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
    // the target's widest register (a 64-byte vector on AVX2 would be spilled)
    using vec = backend::host::detail::nreg<T>;
    static constexpr std::size_t lanes = backend::host::detail::nreg_lanes<T>;

    forward_result<T, cache_type> forward_impl(const tensor<T>& x, const T* shortcut, bool relu);

    /// running_mean / running_var (unbiased) moved towards this batch's.
    void update_running(std::size_t ch, double mean, double var, std::size_t M) {
        if (!(training_ && cfg_.track_running_stats)) return;
        const double m = cfg_.momentum;
        running_mean_[ch] = static_cast<T>((1 - m) * running_mean_[ch] + m * mean);
        running_var_[ch] = static_cast<T>((1 - m) * running_var_[ch] +
                                          m * var * static_cast<double>(M) / static_cast<double>(M - 1));
    }
    /// The cache's mean / invstd and the output's scale / shift of a channel.
    void set_channel(cache_type& c, tensor<T>& coef, std::size_t ch, double mean, double var) const {
        const std::size_t C = cfg_.channels;
        const double invstd = 1.0 / std::sqrt(var + cfg_.eps);
        c.mean[ch] = static_cast<T>(mean);
        c.invstd[ch] = static_cast<T>(invstd);
        const double g = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
        const double bt = cfg_.affine ? static_cast<double>(bias_.value[ch]) : 0.0;
        coef[ch] = static_cast<T>(g * invstd);
        coef[C + ch] = static_cast<T>(bt - mean * g * invstd);
    }

    /// Batch statistics of (N, C, H, W) in one pass over memory, image-major
    /// (as the backward): per channel, sums of v = x - K and v^2 with K the
    /// mean of the channel's first plane, so that far from zero (mean 1000,
    /// std 1) the float squares keep their precision; lane-wise in T over at
    /// most 64 vectors, then in double per worker and lane; mean = K +
    /// sum(v) / M, var = sum(v^2) / M - (sum(v) / M)^2.
    void plane_statistics(const tensor<T>& x, cache_type& c, tensor<T>& coef) {
        using backend::host::detail::vload;
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = n * S;
        tensor<T> K({C});
        for (std::size_t ch = 0; ch < C; ++ch) {
            double s = 0;
            for (std::size_t i = 0; i < S; ++i) s += static_cast<double>(x.data()[ch * S + i]);
            K[ch] = static_cast<T>(s / static_cast<double>(S));
        }
        const std::size_t workers = num_threads(), tasks = std::min(n, 4 * workers), per_worker = 2 * C * lanes;
        tensor<double> part = tensor<double>::zeros({workers, per_worker});
        parallel_for(tasks, [&](std::size_t t, std::size_t w) {
            for (std::size_t b = t * n / tasks; b < (t + 1) * n / tasks; ++b)
                for (std::size_t ch = 0; ch < C; ++ch) {
                    const T* p = x.data() + (b * C + ch) * S;
                    double* a1 = part.data() + w * per_worker + 2 * ch * lanes;
                    double* a2 = a1 + lanes;
                    const vec k = vec{} + K[ch];
                    std::size_t i = 0;
                    while (i + lanes <= S) {
                        vec s1{}, s2{};
                        const std::size_t end = std::min(S, i + 64 * lanes);
                        for (; i + lanes <= end; i += lanes) {
                            vec v;
                            vload<T>(v, p + i);
                            v -= k;
                            s1 += v;
                            s2 += v * v;
                        }
                        for (std::size_t l = 0; l < lanes; ++l) {
                            a1[l] += static_cast<double>(s1[l]);
                            a2[l] += static_cast<double>(s2[l]);
                        }
                    }
                    for (; i < S; ++i) {
                        const double v = static_cast<double>(p[i] - K[ch]);
                        a1[0] += v;
                        a2[0] += v * v;
                    }
                }
        });
        for (std::size_t ch = 0; ch < C; ++ch) {
            double s1 = 0, s2 = 0;
            for (std::size_t w = 0; w < workers; ++w)
                for (std::size_t l = 0; l < lanes; ++l) {
                    s1 += part.data()[w * per_worker + 2 * ch * lanes + l];
                    s2 += part.data()[w * per_worker + (2 * ch + 1) * lanes + l];
                }
            finish_statistics(c, coef, ch, K[ch], s1, s2, M);
        }
    }
    /// A channel's mean and variance from its shifted sums s1 = sum(x - K),
    /// s2 = sum((x - K)^2) over M values; running statistics and coefficients.
    void finish_statistics(cache_type& c, tensor<T>& coef, std::size_t ch, T K, double s1, double s2,
                           std::size_t M) {
        const double d = s1 / static_cast<double>(M);
        const double mean = static_cast<double>(K) + d;
        const double var = std::max(0.0, s2 / static_cast<double>(M) - d * d);
        update_running(ch, mean, var, M);
        set_channel(c, coef, ch, mean, var);
    }

    /// (N, C) forward: channels are contiguous, so the vectors run across
    /// channels. Parallel over blocks of `lanes` channels, each block whole:
    /// statistics over the N rows (shifted sums with K = the mean of the
    /// first 64 rows, in T over at most 64 rows, then in double), then its
    /// outputs, while its N x lanes values are still in cache.
    void forward_rows(const tensor<T>& x, cache_type& c, const T* shortcut, bool relu, tensor<T>& y) {
        const std::size_t n = x.dim(0), C = cfg_.channels, blocks = (C + lanes - 1) / lanes;
        tensor<T> coef({2, C});
        parallel_for(blocks, [&](std::size_t blk, std::size_t) {
            const std::size_t ch0 = blk * lanes, w = std::min(lanes, C - ch0);
            const row_block rb{ch0, w, C};
            if (c.batch_stats) {
                // K: the mean of the first (up to) 64 rows, so that one
                // outlying first row does not cost the float sums precision
                const std::size_t nk = std::min<std::size_t>(n, 64);
                vec K{};
                for (std::size_t b = 0; b < nk; ++b) {
                    vec v;
                    rb.load(v, x.data(), b);
                    K += v;
                }
                K /= static_cast<T>(nk);
                double s1[lanes] = {}, s2[lanes] = {};
                for (std::size_t r0 = 0; r0 < n; r0 += 64) {
                    vec a{}, q{};
                    for (std::size_t b = r0; b < std::min(n, r0 + 64); ++b) {
                        vec v;
                        rb.load(v, x.data(), b);
                        v -= K;
                        a += v;
                        q += v * v;
                    }
                    for (std::size_t l = 0; l < lanes; ++l) {
                        s1[l] += static_cast<double>(a[l]);
                        s2[l] += static_cast<double>(q[l]);
                    }
                }
                for (std::size_t l = 0; l < w; ++l) finish_statistics(c, coef, ch0 + l, K[l], s1[l], s2[l], n);
            } else {
                for (std::size_t l = 0; l < w; ++l)
                    set_channel(c, coef, ch0 + l, running_mean_[ch0 + l], running_var_[ch0 + l]);
            }
            vec scale, shift;
            rb.load(scale, coef.data(), 0);
            rb.load(shift, coef.data() + C, 0);
            for (std::size_t b = 0; b < n; ++b) {
                vec v;
                rb.load(v, x.data(), b);
                v = v * scale + shift;
                if (shortcut) {
                    vec r;
                    rb.load(r, shortcut, b);
                    v += r;
                }
                if (relu) v = v > T(0) ? v : vec{};
                rb.store(y.data(), b, v);
            }
        });
    }
    /// A block of w <= lanes channels from ch0 of (N, C) rows, as vectors
    /// (the last block of a C that is not a multiple of lanes through a
    /// zero-padded copy).
    struct row_block {
        std::size_t ch0, w, C;
        void load(vec& v, const T* base, std::size_t row) const {
            const T* p = base + row * C + ch0;
            if (w == lanes) {
                backend::host::detail::vload<T>(v, p);
                return;
            }
            T tmp[lanes] = {};
            std::copy(p, p + w, tmp);
            backend::host::detail::vload<T>(v, tmp);
        }
        void store(T* base, std::size_t row, const vec& v) const {
            T* p = base + row * C + ch0;
            if (w == lanes) {
                backend::host::detail::vstore<T>(p, v);
                return;
            }
            T tmp[lanes];
            backend::host::detail::vstore<T>(tmp, v);
            std::copy(tmp, tmp + w, p);
        }
    };

    /// Lane-wise sums of one plane: ady += g, adyx += g * (p - mean) with
    /// g = dy (masked by mk > 0), in T over the plane's vectors, then added
    /// to the caller's accumulators in double (each lane converted), so
    /// there is no horizontal sum per plane; the last S % lanes values go to
    /// lane 0.
    template <bool Masked>
    static void grad_sums_lanes(const T* p, const T* d, const T* mk, std::size_t S, T mean, double* ady,
                                double* adyx) {
        using backend::host::detail::vload;
        vec s0{}, s1{}, x0{}, x1{};  // two chains each
        const vec m = vec{} + mean;
        std::size_t i = 0;
        auto step = [&](std::size_t at, vec& s, vec& x) {
            vec pv, dv;
            vload<T>(pv, p + at);
            vload<T>(dv, d + at);
            if constexpr (Masked) {
                vec mv;
                vload<T>(mv, mk + at);
                dv = mv > T(0) ? dv : vec{};
            }
            s += dv;
            x += dv * (pv - m);
        };
        for (; i + 2 * lanes <= S; i += 2 * lanes) {
            step(i, s0, x0);
            step(i + lanes, s1, x1);
        }
        if (i + lanes <= S) {
            step(i, s0, x0);
            i += lanes;
        }
        s0 += s1;
        x0 += x1;
        for (std::size_t l = 0; l < lanes; ++l) {
            ady[l] += static_cast<double>(s0[l]);
            adyx[l] += static_cast<double>(x0[l]);
        }
        for (; i < S; ++i) {
            const T g = Masked ? (mk[i] > T(0) ? d[i] : T(0)) : d[i];
            ady[0] += static_cast<double>(g);
            adyx[0] += static_cast<double>(g * (p[i] - mean));
        }
    }
    /// One plane of dx with explicit vectors: o = k * (g - a - (p - mean) * bc)
    /// with g = dy (masked by mk > 0), g also to gm when gm is not null.
    template <bool Masked>
    static void grad_input_lanes(const T* p, const T* d, const T* mk, T* o, T* gm, std::size_t S, T mean, T k, T a,
                                 T bc) {
        using backend::host::detail::vload;
        using backend::host::detail::vstore;
        const vec vm = vec{} + mean, vk = vec{} + k, va = vec{} + a, vbc = vec{} + bc;
        std::size_t i = 0;
        for (; i + lanes <= S; i += lanes) {
            vec pv, dv;
            vload<T>(pv, p + i);
            vload<T>(dv, d + i);
            if constexpr (Masked) {
                vec mv;
                vload<T>(mv, mk + i);
                dv = mv > T(0) ? dv : vec{};
                if (gm) vstore<T>(gm + i, dv);
            }
            const vec r = vk * (dv - va - (pv - vm) * vbc);
            vstore<T>(o + i, r);
        }
        for (; i < S; ++i) {
            const T g = Masked ? (mk[i] > T(0) ? d[i] : T(0)) : d[i];
            if (Masked && gm) gm[i] = g;
            o[i] = k * (g - a - (p[i] - mean) * bc);
        }
    }
    /// mask: the relu output (the gradient passes where mask > 0) or null;
    /// masked_out (with a mask): where the masked gradient goes, or null.
    tensor<T> backward_impl(const cache_type& c, const tensor<T>& dy, const T* mask, T* masked_out);

    /// Per channel, from sum(dy) and sum(dy (x - mean)): the affine
    /// parameters' gradients, and k, a, bc of dx = k (g - a - (x - mean) bc).
    /// Batch statistics: dx = g invstd / M (M dy - sum(dy) - xhat sum(dy xhat));
    /// running statistics: dx = g invstd dy.
    void grad_coefficients(const cache_type& c, std::size_t ch, double sdy, double sdyx, std::size_t M, T& k, T& a,
                           T& bc) {
        const double invstd = c.invstd[ch];
        sdyx *= invstd;  // sum(dy * xhat)
        const double g = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
        if (cfg_.affine) {
            weight_.grad[ch] += static_cast<T>(sdyx);
            bias_.grad[ch] += static_cast<T>(sdy);
        }
        k = static_cast<T>(g * invstd);
        a = c.batch_stats ? static_cast<T>(sdy / static_cast<double>(M)) : T(0);
        bc = c.batch_stats ? static_cast<T>(sdyx / static_cast<double>(M) * invstd) : T(0);
    }

    /// The (N, C) backward, parallel over blocks of `lanes` channels as the
    /// forward: both passes over a block's N rows back to back.
    tensor<T> backward_rows(const cache_type& c, const tensor<T>& dy, const T* mask, T* masked_out) {
        const tensor<T>& x = c.x;
        const std::size_t n = x.dim(0), C = cfg_.channels, blocks = (C + lanes - 1) / lanes;
        tensor<T> dx(x.shape());
        parallel_for(blocks, [&](std::size_t blk, std::size_t) {
            const std::size_t ch0 = blk * lanes, w = std::min(lanes, C - ch0);
            const row_block rb{ch0, w, C};
            vec mean;
            rb.load(mean, c.mean.data(), 0);
            auto gradient = [&](std::size_t b, vec& g, vec& xc) {
                rb.load(g, dy.data(), b);
                if (mask) {
                    vec m;
                    rb.load(m, mask, b);
                    g = m > T(0) ? g : vec{};
                }
                rb.load(xc, x.data(), b);
                xc -= mean;
            };
            double sdy[lanes] = {}, sdyx[lanes] = {};
            for (std::size_t r0 = 0; r0 < n; r0 += 64) {
                vec s{}, q{};
                for (std::size_t b = r0; b < std::min(n, r0 + 64); ++b) {
                    vec g, xc;
                    gradient(b, g, xc);
                    s += g;
                    q += g * xc;
                }
                for (std::size_t l = 0; l < lanes; ++l) {
                    sdy[l] += static_cast<double>(s[l]);
                    sdyx[l] += static_cast<double>(q[l]);
                }
            }
            vec k{}, a{}, bc{};
            for (std::size_t l = 0; l < w; ++l) {
                T kl, al, bl;
                grad_coefficients(c, ch0 + l, sdy[l], sdyx[l], n, kl, al, bl);
                k[l] = kl;
                a[l] = al;
                bc[l] = bl;
            }
            for (std::size_t b = 0; b < n; ++b) {
                vec g, xc;
                gradient(b, g, xc);
                if (masked_out) rb.store(masked_out, b, g);
                rb.store(dx.data(), b, k * (g - a - xc * bc));
            }
        });
        return dx;
    }

    /// The (N, C, H, W) backward, image-major: both passes walk memory in
    /// order (image by image, every channel's plane), so each thread reads
    /// three long sequential streams; a per-channel order jumps C planes
    /// ahead after every plane, which on small planes (7x7 to 28x28: 3 to 49
    /// cache lines) leaves the hardware prefetchers restarting all the time.
    /// Pass 1 sums per worker and channel (planes in T, across planes in
    /// double), pass 2 applies the per-channel coefficients.
    tensor<T> backward_planes(const cache_type& c, const tensor<T>& dy, const T* mask, T* masked_out) {
        const tensor<T>& x = c.x;
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = n * S;
        const std::size_t workers = num_threads(), tasks = std::min(n, 4 * workers);
        tensor<T> dx(x.shape());
        // per worker and channel, lane-wise: sum(dy), sum(dy * (x - mean))
        const std::size_t per_worker = 2 * C * lanes;
        tensor<double> part = tensor<double>::zeros({workers, per_worker});
        parallel_for(tasks, [&](std::size_t t, std::size_t w) {
            double* sd = part.data() + w * per_worker;
            for (std::size_t b = t * n / tasks; b < (t + 1) * n / tasks; ++b)
                for (std::size_t ch = 0; ch < C; ++ch) {
                    const std::size_t off = (b * C + ch) * S;
                    double* a = sd + 2 * ch * lanes;
                    if (mask)
                        grad_sums_lanes<true>(x.data() + off, dy.data() + off, mask + off, S, c.mean[ch], a, a + lanes);
                    else
                        grad_sums_lanes<false>(x.data() + off, dy.data() + off, nullptr, S, c.mean[ch], a, a + lanes);
                }
        });
        // per channel: k, a, bc of dx = k * (g - a - (x - mean) * bc)
        tensor<T> coef({3, C});
        for (std::size_t ch = 0; ch < C; ++ch) {
            double sdy = 0, sdyx = 0;
            for (std::size_t w = 0; w < workers; ++w)
                for (std::size_t l = 0; l < lanes; ++l) {
                    sdy += part.data()[w * per_worker + 2 * ch * lanes + l];
                    sdyx += part.data()[w * per_worker + (2 * ch + 1) * lanes + l];
                }
            grad_coefficients(c, ch, sdy, sdyx, M, coef[ch], coef[C + ch], coef[2 * C + ch]);
        }
        parallel_for(tasks, [&](std::size_t t, std::size_t) {
            for (std::size_t b = t * n / tasks; b < (t + 1) * n / tasks; ++b)
                for (std::size_t ch = 0; ch < C; ++ch) {
                    const std::size_t off = (b * C + ch) * S;
                    const T k = coef[ch], a = coef[C + ch], bc = coef[2 * C + ch];
                    if (mask)
                        grad_input_lanes<true>(x.data() + off, dy.data() + off, mask + off, dx.data() + off,
                                               masked_out ? masked_out + off : nullptr, S, c.mean[ch], k, a, bc);
                    else
                        grad_input_lanes<false>(x.data() + off, dy.data() + off, nullptr, dx.data() + off, nullptr, S,
                                                c.mean[ch], k, a, bc);
                }
        });
        return dx;
    }

    // --- synchronized batch norm (see the top of this file) ------------------
    // Plain per-channel loops in double: the statistics of P ranks cannot be
    // bitwise those of one process anyway (summation order), so this path
    // aims at clarity; the local fast paths above are untouched.

    forward_result<T, cache_type> forward_sync(cache_type c, dist::communicator& g, const T* shortcut, bool relu) {
        const tensor<T>& x = c.x;
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = n * S;
        const auto P = static_cast<std::size_t>(g.size());
        // this rank: [count, mean (C), M2 (C)]; two passes in double
        std::vector<double> mine(1 + 2 * C), all(P * (1 + 2 * C));
        mine[0] = static_cast<double>(M);
        parallel_for(C, [&](std::size_t ch, std::size_t) {
            double s1 = 0, s2 = 0;
            for (std::size_t b = 0; b < n; ++b) {
                const T* p = x.data() + (b * C + ch) * S;
                for (std::size_t i = 0; i < S; ++i) s1 += static_cast<double>(p[i]);
            }
            const double mean = M ? s1 / static_cast<double>(M) : 0.0;
            for (std::size_t b = 0; b < n; ++b) {
                const T* p = x.data() + (b * C + ch) * S;
                for (std::size_t i = 0; i < S; ++i) {
                    const double v = static_cast<double>(p[i]) - mean;
                    s2 += v * v;
                }
            }
            mine[1 + ch] = mean;
            mine[1 + C + ch] = s2;
        });
        g.allgather(std::span<const double>(mine), std::span<double>(all));
        // merge in rank order (identical on every rank)
        std::vector<double> cnt(C, 0.0), mean(C, 0.0), m2(C, 0.0);
        for (std::size_t r = 0; r < P; ++r) {
            const double* q = all.data() + r * (1 + 2 * C);
            const double nb = q[0];
            if (nb == 0) continue;
            for (std::size_t ch = 0; ch < C; ++ch) {
                const double na = cnt[ch], nab = na + nb, d = q[1 + ch] - mean[ch];
                mean[ch] += d * nb / nab;
                m2[ch] += q[1 + C + ch] + d * d * na * nb / nab;
                cnt[ch] = nab;
            }
        }
        const double total = C ? cnt[0] : 0.0;
        require<shape_error>(total > 1, "batch_norm (synchronized over ", P,
                             " ranks): training needs more than one value per channel in the global batch, got ",
                             total, " (local input ", x.shape().str(), ")");
        tensor<T> coef({2, C});
        for (std::size_t ch = 0; ch < C; ++ch) {
            const double var = std::max(0.0, m2[ch] / total);
            update_running(ch, mean[ch], var, static_cast<std::size_t>(total));
            set_channel(c, coef, ch, mean[ch], var);
        }
        if (training_ && cfg_.track_running_stats) num_batches_[0] += 1;
        tensor<T> y(x.shape());
        parallel_for(n, [&](std::size_t b, std::size_t) {
            for (std::size_t ch = 0; ch < C; ++ch) {
                const std::size_t off = (b * C + ch) * S;
                const T scale = coef[ch], shift = coef[C + ch];
                for (std::size_t i = 0; i < S; ++i) {
                    T v = x.data()[off + i] * scale + shift;
                    if (shortcut) v += shortcut[off + i];
                    if (relu || shortcut) v = v > T(0) ? v : T(0);
                    y.data()[off + i] = v;
                }
            }
        });
        c.group = &g;
        c.group_count = static_cast<std::size_t>(total);
        return {std::move(y), std::move(c)};
    }

    tensor<T> backward_sync(const cache_type& c, const tensor<T>& dy, const T* mask, T* masked_out) {
        const tensor<T>& x = c.x;
        const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x);
        auto grad_at = [&](std::size_t i) -> T { return mask && !(mask[i] > T(0)) ? T(0) : dy.data()[i]; };
        // this rank's sum(dy), sum(dy (x - mean)) per channel, then the global ones
        std::vector<double> local(2 * C), sums(2 * C);
        parallel_for(C, [&](std::size_t ch, std::size_t) {
            double sdy = 0, sdyx = 0;
            const double mu = c.mean[ch];
            for (std::size_t b = 0; b < n; ++b)
                for (std::size_t i = (b * C + ch) * S, e = i + S; i < e; ++i) {
                    const double gv = grad_at(i);
                    sdy += gv;
                    sdyx += gv * (static_cast<double>(x.data()[i]) - mu);
                }
            local[ch] = sdy;
            local[C + ch] = sdyx;
        });
        sums = local;
        c.group->allreduce_sum(std::span<double>(sums));
        const double M = static_cast<double>(c.group_count);
        tensor<T> coef({3, C});
        for (std::size_t ch = 0; ch < C; ++ch) {
            const double invstd = c.invstd[ch];
            const double gw = cfg_.affine ? static_cast<double>(weight_.value[ch]) : 1.0;
            if (cfg_.affine) {  // this rank's share; the gradient average sums the ranks
                weight_.grad[ch] += static_cast<T>(local[C + ch] * invstd);
                bias_.grad[ch] += static_cast<T>(local[ch]);
            }
            coef[ch] = static_cast<T>(gw * invstd);
            coef[C + ch] = static_cast<T>(sums[ch] / M);
            coef[2 * C + ch] = static_cast<T>(sums[C + ch] * invstd / M * invstd);
        }
        tensor<T> dx(x.shape());
        parallel_for(n, [&](std::size_t b, std::size_t) {
            for (std::size_t ch = 0; ch < C; ++ch) {
                const T k = coef[ch], a = coef[C + ch], bc = coef[2 * C + ch], mu = c.mean[ch];
                for (std::size_t i = (b * C + ch) * S, e = i + S; i < e; ++i) {
                    const T gv = grad_at(i);
                    if (masked_out) masked_out[i] = gv;
                    dx.data()[i] = k * (gv - a - (x.data()[i] - mu) * bc);
                }
            }
        });
        return dx;
    }

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

template <class T, std::size_t Rank>
auto batch_norm_impl<T, Rank>::forward_impl(const tensor<T>& x, const T* shortcut, bool relu) -> forward_result<T, cache_type> {
    check_input(x);
    const std::size_t n = x.dim(0), C = cfg_.channels, S = spatial(x), M = n * S;
    cache_type c{x, tensor<T>({C}), tensor<T>({C}), training_ || !cfg_.track_running_stats};
    if (c.batch_stats)
        if (dist::communicator* g = dist::batch_norm_group()) return forward_sync(std::move(c), *g, shortcut, relu);
    if (c.batch_stats)
        require<shape_error>(M > 1, "batch_norm: training needs more than one value per channel, got input ",
                             x.shape().str());
    tensor<T> y(x.shape());
    if (S == 1) {
        forward_rows(x, c, shortcut, relu, y);
        if (training_ && cfg_.track_running_stats) num_batches_[0] += 1;
        return {std::move(y), std::move(c)};
    }
    // scale and shift per channel: y = x * scale + shift (+ shortcut, relu)
    tensor<T> coef({2, C});
    if (c.batch_stats)
        plane_statistics(x, c, coef);
    else
        for (std::size_t ch = 0; ch < C; ++ch) set_channel(c, coef, ch, running_mean_[ch], running_var_[ch]);
    if (training_ && cfg_.track_running_stats) num_batches_[0] += 1;
    // image-major, like the statistics: long sequential streams per thread
    const std::size_t tasks = std::min(n, 4 * num_threads());
    parallel_for(tasks, [&](std::size_t t, std::size_t) {
        for (std::size_t b = t * n / tasks; b < (t + 1) * n / tasks; ++b)
            for (std::size_t ch = 0; ch < C; ++ch) {
                const std::size_t off = (b * C + ch) * S;
                const T* p = x.data() + off;
                T* q = y.data() + off;
                const T scale = coef[ch], shift = coef[C + ch];
                if (shortcut) {
                    const T* r = shortcut + off;
                    for (std::size_t i = 0; i < S; ++i) {
                        const T v = p[i] * scale + shift + r[i];
                        q[i] = v > T(0) ? v : T(0);
                    }
                } else if (relu) {
                    for (std::size_t i = 0; i < S; ++i) {
                        const T v = p[i] * scale + shift;
                        q[i] = v > T(0) ? v : T(0);
                    }
                } else {
                    for (std::size_t i = 0; i < S; ++i) q[i] = p[i] * scale + shift;
                }
            }
    });
    return {std::move(y), std::move(c)};
}

template <class T, std::size_t Rank>
auto batch_norm_impl<T, Rank>::backward_impl(const cache_type& c, const tensor<T>& dy, const T* mask, T* masked_out) -> tensor<T> {
    check_same_shape(dy, c.x, "batch_norm backward (gradient vs input)");
    if (c.group) return backward_sync(c, dy, mask, masked_out);
    if (spatial(c.x) > 1) return backward_planes(c, dy, mask, masked_out);
    return backward_rows(c, dy, mask, masked_out);
}

// SSL_EXTERN_TEMPLATES: compiled once in cmake/instances/ (as conv2d).
#ifdef SSL_EXTERN_TEMPLATES
extern template class batch_norm_impl<float, 4>;
extern template class batch_norm_impl<float, 2>;
extern template class batch_norm_impl<double, 4>;
extern template class batch_norm_impl<double, 2>;
#endif

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
