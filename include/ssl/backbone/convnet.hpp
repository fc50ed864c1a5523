#pragma once
// A small AlexNet-style convnet (Krizhevsky 2012's channel ratios
// 64-192-384-256-256, scaled by width/64, with batch norm), for small images:
//   conv5x5(w)  - bn - relu - maxpool 3/2
//   conv5x5(3w) - bn - relu - maxpool 3/2
//   conv3x3(6w) - bn - relu
//   conv3x3(4w) - bn - relu
//   conv3x3(4w) - bn - relu - global average pool  -> (N, 4w)
// Written as one compile-time nn::sequential, so parameters are named
// "features.0.weight", "features.1.running_mean", ... like torchvision's AlexNet.
//
// convnet_ln<T> is the same network with layer norm (nn/layer_norm.hpp: per
// sample over (C, H, W), per-channel affine) in place of every batch norm:
// no statistic crosses samples, as CPC v2's patch encoder needs (Hénaff et
// al. 2019: batch norm shares statistics between the patches of one image,
// which the InfoNCE task can exploit; cpc.hpp). Its parameters have the same
// names ("features.1.weight" / ".bias"), without running statistics.
//
// Taps (backbone/taps.hpp): the output of every module, by the same names:
//   features.0  conv1   features.1  bn1   features.2  relu   features.3  max pool
//   features.4  conv2   features.5  bn2   features.6  relu   features.7  max pool
//   features.8  conv3   features.9  bn3   features.10 relu
//   features.11 conv4   features.12 bn4   features.13 relu
//   features.14 conv5   features.15 bn5   features.16 relu
//   features.17 global average pool, (N, 4w) = out
// (tap_names() lists them). Here batch norm and relu are separate modules,
// so every map, the pre-relu ones included, is on forward's path.
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../nn/activation.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/pool.hpp"
#include "../nn/sequential.hpp"
#include "taps.hpp"

namespace ssl {

struct convnet_options {
    std::size_t in_channels = 3;
    std::size_t width = 64;
    std::uint64_t seed = 0;
};

/// Norm: nn::batch_norm2d<T> (convnet) or nn::layer_norm<T> (convnet_ln),
/// built from {channels}.
template <class T = float, class Norm = nn::batch_norm2d<T>>
class convnet {
    using conv = nn::conv2d<T>;
    using bn = Norm;
    using act = nn::relu<T>;
    using pool = nn::max_pool2d<T>;
    using stack = nn::sequential<conv, bn, act, pool, conv, bn, act, pool, conv, bn, act, conv, bn, act, conv, bn, act,
                                 nn::global_avg_pool2d<T>>;

public:
    using value_type = T;
    using options_type = convnet_options;
    using cache_type = typename stack::cache_type;
    /// What forward_taps returns for backward_taps: the network's cache and
    /// the requested taps.
    struct tap_cache_type {
        cache_type net;
        std::vector<detail::tap_request> taps;
    };

    explicit convnet(const convnet_options& o = {}) : opt_(o), features_(make(o)) {
        require(o.in_channels > 0 && o.width > 0, name(), ": in_channels and width must be positive");
    }
    const convnet_options& options() const noexcept { return opt_; }
    std::size_t feature_dim() const noexcept { return 4 * opt_.width; }
    std::size_t output_dim() const noexcept { return feature_dim(); }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        check_input(x);
        return features_.forward(x);
    }
    /// need_input_grad is accepted for the backbone interface; the input
    /// gradient is always computed (it is a small part of this network).
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        (void)need_input_grad;
        return features_.backward(c, dy);
    }

    /// Every tap name, in network order: features.0 .. features.17.
    std::vector<std::string> tap_names() const { return detail::tap_table_names(tap_table()); }

    /// forward(x) that also returns the module outputs named in `names`, in
    /// that order (shared storage, no copies); out is forward(x).out bitwise.
    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        tap_cache_type tc;
        tc.taps = detail::resolve_taps(name(), names, tap_table());
        check_input(x);
        std::vector<tensor<T>> outs(stack::size);  // every module's output, shared with the next one's cache
        tensor<T> h = x;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((outs[I] = h = run_layer<I>(h, tc.net)), ...);
        }(std::make_index_sequence<stack::size>{});
        std::vector<tensor<T>> taps;
        taps.reserve(tc.taps.size());
        for (auto& r : tc.taps) {
            taps.push_back(outs[r.point]);
            r.shape = taps.back().shape();
        }
        return {std::move(h), std::move(tc), std::move(taps)};
    }

    /// backward with gradients at the taps too (one per requested tap, in
    /// forward_taps' order, or none); d_out and any d_taps[i] may be
    /// undefined. Tap gradients add to what flows back from later modules.
    /// With no tap gradient it is backward(c.net, d_out) bitwise. When no
    /// gradient reaches the input, dx is zeros.
    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        (void)need_input_grad;
        detail::check_tap_grads(name(), c.taps, d_taps);
        tensor<T> g = d_out;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            // modules from the last to the first: I runs up, module stack::size - 1 - I
            ((back_layer<stack::size - 1 - I>(c, d_taps, g)), ...);
        }(std::make_index_sequence<stack::size>{});
        if (!g.defined()) return tensor<T>::zeros(std::get<0>(c.net).x.shape());
        return g;
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        features_.for_each_parameter(f, join_name(p, "features"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        features_.for_each_buffer(f, join_name(p, "features"));
    }
    void train(bool on) { features_.train(on); }
    bool training() const noexcept { return features_.training(); }

    /// "convnet" or "convnet_ln" (in messages).
    static constexpr const char* name() noexcept {
        return std::is_same_v<Norm, nn::layer_norm<T>> ? "convnet_ln" : "convnet";
    }

private:
    void check_input(const tensor<T>& x) const {
        check_rank(x, 4, name(), "(N, C, H, W)");
        require<shape_error>(x.dim(1) == opt_.in_channels, name(), ": input has ", x.dim(1),
                             " channels, the backbone was built for ", opt_.in_channels);
        require<shape_error>(x.dim(2) >= 8 && x.dim(3) >= 8, name(), ": images must be at least 8x8, got ",
                             x.shape().str());
    }
    // Tap point I is the output of module I (the stack's position).
    static detail::tap_table tap_table() {
        detail::tap_table t;
        for (std::size_t i = 0; i < stack::size; ++i) t.emplace_back("features." + std::to_string(i), i);
        return t;
    }
    /// Module I's forward, as the stack runs it; its cache goes into c.
    template <std::size_t I>
    tensor<T> run_layer(const tensor<T>& h, cache_type& c) {
        auto r = features_.template get<I>().forward(h);
        std::get<I>(c) = std::move(r.cache);
        return std::move(r.out);
    }
    /// Adds the taps' gradients at module I's output into g, then (if there
    /// is a gradient) runs module I's backward.
    template <std::size_t I>
    void back_layer(const tap_cache_type& c, const std::vector<tensor<T>>& d_taps, tensor<T>& g) {
        detail::add_tap_grads(I, c.taps, d_taps, g);
        if (g.defined()) g = features_.template get<I>().backward(std::get<I>(c.net), g);
    }
    static stack make(const convnet_options& o) {
        const std::size_t w = o.width, s = o.seed;
        const nn::pool_config mp{3, 2, 1};
        return stack(conv({o.in_channels, w, 5, 1, 2, true}, s), bn({w}), act{}, pool(mp),
                     conv({w, 3 * w, 5, 1, 2, true}, s + 1), bn({3 * w}), act{}, pool(mp),
                     conv({3 * w, 6 * w, 3, 1, 1, true}, s + 2), bn({6 * w}), act{},
                     conv({6 * w, 4 * w, 3, 1, 1, true}, s + 3), bn({4 * w}), act{},
                     conv({4 * w, 4 * w, 3, 1, 1, true}, s + 4), bn({4 * w}), act{}, nn::global_avg_pool2d<T>{});
    }
    convnet_options opt_;
    stack features_;
};

/// The convnet with layer norm instead of batch norm (see the file comment).
template <class T = float>
using convnet_ln = convnet<T, nn::layer_norm<T>>;

}  // namespace ssl
