#pragma once
// VGG with batch normalization (Simonyan & Zisserman 2015, "Very Deep
// Convolutional Networks for Large-Scale Image Recognition"; batch norm after
// every conv as torchvision's vgg*_bn), the VGG19-BN of Kolesnikov, Zhai &
// Beyer 2019 ("Revisiting Self-Supervised Visual Representation Learning").
//
//   features: [conv3x3 - bn - relu] x n_i, maxpool 2x2/2, for 5 blocks of
//             w, 2w, 4w, 8w, 8w channels (w = width, 64 = torchvision)
//   out = global average pool(features)  -> (N, 8w)
//   vgg11 (A): 1,1,2,2,2 convs   vgg13 (B): 2,2,2,2,2   vgg16 (D): 2,2,3,3,3   vgg19 (E): 2,2,4,4,4
//
// Parameter names are torchvision's vgg*_bn names: features.{i}.weight/bias
// for the conv at index i, features.{i+1}.{weight,bias,running_mean,...} for
// its batch norm, relu at i+2, a max pool taking one index; a checkpoint's
// features.* load into torchvision.models.vgg16_bn().features.
//
// Contract: forward(x: (N, in_channels, H, W)) -> (N, 8w); backward(cache,
// dy[, need_input_grad]) accumulates parameter gradients and returns dx.
// H, W >= 32 with the imagenet stem (5 pools), >= 16 with the cifar stem.
// Taps (backbone/taps.hpp): every module's output by its torchvision name,
// features.0 .. features.{last} (a batch norm's tap is its output before the
// relu: asking for it runs that bn and relu as two passes), and avgpool.
//
// Design choices, one a line:
// - torchvision's avgpool (adaptive 7x7) and classifier (fc6, fc7, fc8) are not
//   built: the backbone returns globally pooled conv features, like every
//   backbone here (the self-supervised heads sit on them); no num_classes.
// - stem::cifar drops the last max pool (a 28 or 32 px image would reach 0x0
//   or 1x1 before the last block otherwise); the indices of the rest are unchanged.
// - A unit (conv - bn - relu, or a pool) is the compile-time block; the
//   configuration is a run-time list of them, as resnet's stages are.
// - bn - relu runs fused (forward_relu / backward_relu) unless a bn tap is asked.
// - torchvision's init: kaiming_normal_(fan_out, relu) convs, conv bias 0, bn (1, 0).
#include <cstdint>
#include <string>
#include <vector>

#include "../nn/activation.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/pool.hpp"
#include "preact.hpp"
#include "resnet.hpp"
#include "taps.hpp"

namespace ssl {

struct vgg_options {
    std::size_t in_channels = 3;
    std::size_t width = 64;  ///< channels of the first block (64 = torchvision); the widening factor k is width = 64 k
    ssl::stem stem = ssl::stem::imagenet;  ///< cifar: no last max pool
    std::uint64_t seed = 0;
};

template <class T = float>
class vgg {
public:
    using value_type = T;
    using options_type = vgg_options;

    /// One conv - bn - relu unit, or a max pool.
    struct unit {
        bool pool = false;
        std::size_t index = 0;  ///< torchvision's features index (conv; bn +1, relu +2)
        nn::conv2d<T> conv;
        nn::batch_norm2d<T> bn;
    };
    struct unit_cache {
        typename nn::conv2d<T>::cache_type conv;
        typename nn::batch_norm2d<T>::cache_type bn;
        tensor<T> y;       ///< relu output (the mask; a tap), or the pool's output
        tensor<T> bn_out;  ///< bn's output before the relu, only when its tap was asked (split pass)
        typename nn::max_pool2d<T>::cache_type pool;
    };
    struct cache_type {
        std::vector<unit_cache> units;
        typename nn::global_avg_pool2d<T>::cache_type avg;
        tensor<T> pooled;
    };
    struct tap_cache_type {
        cache_type net;
        std::vector<detail::tap_request> taps;
    };

    vgg() = default;
    /// convs[i]: the number of conv units of block i (five blocks).
    vgg(std::vector<std::size_t> convs, const vgg_options& o) : opt_(o), convs_(std::move(convs)) {
        require(o.in_channels > 0 && o.width > 0, "vgg: in_channels and width must be positive");
        require(!convs_.empty(), "vgg: needs at least one block");
        std::size_t in = o.in_channels, idx = 0;
        std::uint64_t seed = o.seed;
        for (std::size_t b = 0; b < convs_.size(); ++b) {
            const std::size_t out = o.width << std::min<std::size_t>(b, 3);
            for (std::size_t k = 0; k < convs_[b]; ++k) {
                unit u;
                u.index = idx;
                u.conv = nn::conv2d<T>({in, out, 3, 1, 1, true}, seed++);
                u.bn = nn::batch_norm2d<T>({out});
                units_.push_back(std::move(u));
                idx += 3;
                in = out;
            }
            if (b + 1 < convs_.size() || o.stem == stem::imagenet) {
                unit u;
                u.pool = true;
                u.index = idx;
                units_.push_back(std::move(u));
                ++pools_;
            }
            ++idx;
        }
        feature_dim_ = in;
        detail::kaiming_fan_out_init<T>(*this, o.seed);
        for_each_parameter([](const std::string&, parameter<T>& p) { if (p.role == param_role::bias) p.value.zero(); }, "");
    }

    const vgg_options& options() const noexcept { return opt_; }
    std::size_t feature_dim() const noexcept { return feature_dim_; }
    std::size_t output_dim() const noexcept { return feature_dim_; }
    /// The smallest image side forward accepts (2^pools).
    std::size_t min_size() const noexcept { return std::size_t{1} << pools_; }

    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward_impl(x, {}); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        return backward_impl(c, dy, need_input_grad, [](std::size_t, tensor<T>&) {});
    }

    std::vector<std::string> tap_names() const { return detail::tap_table_names(tap_table()); }

    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        tap_cache_type tc;
        tc.taps = detail::resolve_taps("vgg", names, tap_table());
        std::vector<bool> split(units_.size(), false);
        for (const auto& r : tc.taps)
            if (r.point < 3 * units_.size() && r.point % 3 == 1) split[r.point / 3] = true;
        auto f = forward_impl(x, split);
        tc.net = std::move(f.cache);
        std::vector<tensor<T>> taps;
        for (auto& r : tc.taps) {
            taps.push_back(tap_at(tc.net, r.point));
            r.shape = taps.back().shape();
        }
        return {std::move(f.out), std::move(tc), std::move(taps)};
    }
    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        detail::check_tap_grads("vgg", c.taps, d_taps);
        return backward_impl(c.net, d_out, need_input_grad,
                             [&](std::size_t point, tensor<T>& g) { detail::add_tap_grads(point, c.taps, d_taps, g); });
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        for (auto& u : units_) {
            if (u.pool) continue;
            u.conv.for_each_parameter(f, join_name(p, "features." + std::to_string(u.index)));
            u.bn.for_each_parameter(f, join_name(p, "features." + std::to_string(u.index + 1)));
        }
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        for (auto& u : units_)
            if (!u.pool) u.bn.for_each_buffer(f, join_name(p, "features." + std::to_string(u.index + 1)));
    }
    void train(bool on) {
        training_ = on;
        for (auto& u : units_) {
            u.conv.train(on);
            u.bn.train(on);
        }
    }
    bool training() const noexcept { return training_; }

private:
    // Tap points: 3 per unit (unit u: conv 3u, bn 3u + 1, relu / pool 3u + 2), avgpool last.
    std::size_t p_avgpool() const noexcept { return 3 * units_.size(); }
    detail::tap_table tap_table() const {
        detail::tap_table t;
        for (std::size_t u = 0; u < units_.size(); ++u) {
            const std::string i = std::to_string(units_[u].index);
            if (units_[u].pool) {
                t.emplace_back("features." + i, 3 * u + 2);
                continue;
            }
            for (std::size_t k = 0; k < 3; ++k)
                t.emplace_back("features." + std::to_string(units_[u].index + k), 3 * u + k);
        }
        t.emplace_back("avgpool", p_avgpool());
        return t;
    }
    tensor<T> tap_at(const cache_type& c, std::size_t point) const {
        if (point == p_avgpool()) return c.pooled;
        const auto& uc = c.units[point / 3];
        switch (point % 3) {
            case 0: return uc.bn.x;  // the conv's output is the bn's input
            case 1: return uc.bn_out;
            default: return uc.y;
        }
    }

    forward_result<T, cache_type> forward_impl(const tensor<T>& x, const std::vector<bool>& split) {
        check_rank(x, 4, "vgg", "(N, C, H, W)");
        require<shape_error>(x.dim(1) == opt_.in_channels, "vgg: input has ", x.dim(1),
                             " channels, the backbone was built for ", opt_.in_channels);
        require<shape_error>(x.dim(2) >= min_size() && x.dim(3) >= min_size(), "vgg: images must be at least ",
                             min_size(), "x", min_size(), " for its ", pools_, " max pools, got ", x.shape().str(),
                             opt_.stem == stem::imagenet ? " (the cifar stem has one pool fewer)" : "");
        cache_type c;
        c.units.resize(units_.size());
        tensor<T> h = x;
        for (std::size_t u = 0; u < units_.size(); ++u) {
            auto& uc = c.units[u];
            if (units_[u].pool) {
                auto m = pool_.forward(h);
                uc.pool = std::move(m.cache);
                h = uc.y = std::move(m.out);
                continue;
            }
            auto a = units_[u].conv.forward(h);
            uc.conv = std::move(a.cache);
            if (!split.empty() && split[u]) {
                auto b = units_[u].bn.forward(a.out);
                uc.bn = std::move(b.cache);
                uc.bn_out = b.out;
                h = uc.y = nn::relu<T>{}.forward(b.out).out;
            } else {
                auto b = units_[u].bn.forward_relu(a.out);
                uc.bn = std::move(b.cache);
                h = uc.y = std::move(b.out);
            }
        }
        auto p = avg_.forward(h);
        c.avg = std::move(p.cache);
        c.pooled = p.out;
        return {std::move(p.out), std::move(c)};
    }

    template <class Inject>
    tensor<T> backward_impl(const cache_type& c, const tensor<T>& dy, bool need_input_grad, Inject&& inject) {
        tensor<T> g = dy;
        inject(p_avgpool(), g);
        if (g.defined()) g = avg_.backward(c.avg, g);
        for (std::size_t u = units_.size(); u-- > 0;) {
            const auto& uc = c.units[u];
            inject(3 * u + 2, g);
            if (units_[u].pool) {
                if (g.defined()) g = pool_.backward(uc.pool, g);
                continue;
            }
            if (uc.bn_out.defined()) {
                if (g.defined()) g = nn::relu<T>{}.backward({uc.y}, g);
                inject(3 * u + 1, g);
                if (g.defined()) g = units_[u].bn.backward(uc.bn, g);
            } else if (g.defined()) {
                g = units_[u].bn.backward_relu(uc.bn, uc.y, g);
            }
            inject(3 * u, g);
            if (g.defined()) g = units_[u].conv.backward(uc.conv, g, u == 0 ? need_input_grad : true);
        }
        if (!g.defined()) return need_input_grad ? tensor<T>::zeros(x_shape(c)) : tensor<T>{};
        return g;
    }
    shape_t x_shape(const cache_type& c) const { return c.units.front().conv.x.shape(); }

    vgg_options opt_{};
    std::vector<std::size_t> convs_{};
    std::vector<unit> units_;
    std::size_t pools_ = 0;
    nn::max_pool2d<T> pool_{{2, 2, 0}};
    nn::global_avg_pool2d<T> avg_;
    std::size_t feature_dim_ = 0;
    bool training_ = true;
};

/// VGG-11 with batch norm (torchvision vgg11_bn's features).
template <class T = float>
class vgg11 : public vgg<T> {
public:
    explicit vgg11(const vgg_options& o = {}) : vgg<T>({1, 1, 2, 2, 2}, o) {}
};
/// VGG-13 with batch norm (vgg13_bn).
template <class T = float>
class vgg13 : public vgg<T> {
public:
    explicit vgg13(const vgg_options& o = {}) : vgg<T>({2, 2, 2, 2, 2}, o) {}
};
/// VGG-16 with batch norm (vgg16_bn).
template <class T = float>
class vgg16 : public vgg<T> {
public:
    explicit vgg16(const vgg_options& o = {}) : vgg<T>({2, 2, 3, 3, 3}, o) {}
};
/// VGG-19 with batch norm (vgg19_bn; "Revisiting"'s VGG19-BN).
template <class T = float>
class vgg19 : public vgg<T> {
public:
    explicit vgg19(const vgg_options& o = {}) : vgg<T>({2, 2, 4, 4, 4}, o) {}
};

}  // namespace ssl
