#pragma once
// ResNet v2: pre-activation residual networks (He, Zhang, Ren & Sun 2016,
// "Identity Mappings in Deep Residual Networks"), the v2 of Kolesnikov, Zhai &
// Beyer 2019 ("Revisiting Self-Supervised Visual Representation Learning"),
// who found its representations better than v1's for several pretexts.
//
//   x_{l+1} = x_l + F(x_l),  F = [bn - relu - conv] x 2 (basic) or x 3 (bottleneck)   (eq. 2, 3)
//   out = pool(relu(norm(x_L))) [-> fc]
//
// resnet18v2 / resnet34v2 (basic units), resnet50v2 (bottleneck units), the
// stage lengths of torchvision's resnet18/34/50. Same options as resnet
// (resnet_options: in_channels, width = the base width, the widening factor k
// of "Revisiting" being width = 64 k; stem; num_classes; seed).
//
// Contract: forward(x: (N, in_channels, H, W)) -> (N, output_dim()) and a
// cache; backward(cache, dy[, need_input_grad]) accumulates parameter
// gradients and returns dx. Taps (backbone/taps.hpp), in network order:
//   conv1     the stem convolution's output (no bn/relu in a v2 stem)
//   maxpool   its max pool's output (imagenet stem only)
//   layerK.B  unit B of stage K: its output, the sum x + F(x) (not normalised)
//   layerK    stage K's output (the same tensor as its last unit's)
//   norm      relu(norm(layer_last)): the final bn - relu (timm's `norm`)
//   avgpool   the pooled features, (N, feature_dim())
//   fc        the classifier's output (num_classes > 0 only)
//
// Design choices, one a line:
// - Units are compile-time types (nn::preact_block<T, Bottleneck>, preact.hpp);
//   the network is a run-time list of them, as resnet.hpp does.
// - Names are torchvision's ResNet names where the module exists there
//   (conv1, layerK.B.bnI / convI, layerK.B.downsample.0, fc), `norm` for v2's
//   final batch norm; the v2 stem has no bn1.
// - torchvision's init: kaiming_normal_(fan_out) convs, bn (1, 0), fc default.
#include <cstdint>
#include <string>
#include <vector>

#include "preact.hpp"
#include "resnet.hpp"
#include "taps.hpp"

namespace ssl {

template <class Block>
class resnet_v2 {
public:
    using value_type = typename Block::value_type;
    using T = value_type;
    using options_type = resnet_options;
    using block_type = Block;
    using ends_type = detail::preact_ends<T>;

    struct cache_type {
        typename ends_type::stem_cache stem;
        std::vector<std::vector<typename Block::cache_type>> layers;
        typename ends_type::head_cache head;
    };
    struct tap_cache_type {
        cache_type net;
        std::vector<detail::tap_request> taps;
    };

    resnet_v2() = default;
    resnet_v2(std::vector<std::size_t> blocks, const resnet_options& o) : opt_(o), blocks_(std::move(blocks)) {
        require(!blocks_.empty(), "resnet_v2: needs at least one stage");
        for (auto b : blocks_) require(b > 0, "resnet_v2: every stage needs at least one unit");
        require(o.width > 0, "resnet_v2: width must be positive");
        std::size_t in = o.width;
        std::uint64_t seed = o.seed + 1000;
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            const std::size_t planes = o.width << s;
            std::vector<Block> stage;
            for (std::size_t b = 0; b < blocks_[s]; ++b) {
                stage.emplace_back(nn::block_config{in, planes, (s > 0 && b == 0) ? std::size_t{2} : std::size_t{1}},
                                   seed);
                seed += 10;
                in = planes * Block::expansion;
            }
            layers_.push_back(std::move(stage));
        }
        feature_dim_ = in;
        ends_ = ends_type("resnet_v2", o.in_channels, o.width, o.stem, in, o.num_classes, o.seed);
        detail::kaiming_fan_out_init<T>(*this, o.seed);
    }

    const resnet_options& options() const noexcept { return opt_; }
    const std::vector<std::size_t>& blocks() const noexcept { return blocks_; }
    std::size_t feature_dim() const noexcept { return feature_dim_; }
    std::size_t output_dim() const noexcept { return opt_.num_classes ? opt_.num_classes : feature_dim_; }
    std::size_t num_stages() const noexcept { return layers_.size(); }
    std::vector<Block>& stage(std::size_t s) { return layers_.at(s); }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        cache_type c;
        auto s = ends_.stem_forward(x);
        c.stem = std::move(s.cache);
        tensor<T> h = std::move(s.out);
        c.layers.resize(layers_.size());
        for (std::size_t k = 0; k < layers_.size(); ++k)
            for (auto& blk : layers_[k]) {
                auto o = blk.forward(h);
                h = std::move(o.out);
                c.layers[k].push_back(std::move(o.cache));
            }
        auto hd = ends_.head_forward(h);
        c.head = std::move(hd.cache);
        return {std::move(hd.out), std::move(c)};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        return backward_impl(c, dy, need_input_grad, [](std::size_t, tensor<T>&) {});
    }

    std::vector<std::string> tap_names() const { return detail::tap_table_names(tap_table()); }

    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        tap_cache_type tc;
        tc.taps = detail::resolve_taps("resnet_v2", names, tap_table());
        auto f = forward(x);
        tc.net = std::move(f.cache);
        std::vector<tensor<T>> taps;
        taps.reserve(tc.taps.size());
        for (auto& r : tc.taps) {
            taps.push_back(tap_at(tc.net, f.out, r.point));
            r.shape = taps.back().shape();
        }
        return {std::move(f.out), std::move(tc), std::move(taps)};
    }

    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        detail::check_tap_grads("resnet_v2", c.taps, d_taps);
        return backward_impl(c.net, d_out, need_input_grad,
                             [&](std::size_t point, tensor<T>& g) { detail::add_tap_grads(point, c.taps, d_taps, g); });
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        ends_.stem_parameters(f, p);
        for (std::size_t s = 0; s < layers_.size(); ++s)
            for (std::size_t b = 0; b < layers_[s].size(); ++b)
                layers_[s][b].for_each_parameter(f, join_name(p, unit_name(s, b)));
        ends_.head_parameters(f, p);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        for (std::size_t s = 0; s < layers_.size(); ++s)
            for (std::size_t b = 0; b < layers_[s].size(); ++b)
                layers_[s][b].for_each_buffer(f, join_name(p, unit_name(s, b)));
        ends_.head_buffers(f, p);
    }
    void train(bool on) {
        training_ = on;
        ends_.train(on);
        for (auto& s : layers_)
            for (auto& b : s) b.train(on);
    }
    bool training() const noexcept { return training_; }

private:
    // Tap points: conv1, maxpool, one per unit (stages flattened), norm, avgpool, fc.
    static constexpr std::size_t p_conv1 = 0, p_maxpool = 1, p_blocks = 2;
    std::size_t num_blocks() const noexcept {
        std::size_t n = 0;
        for (auto b : blocks_) n += b;
        return n;
    }
    std::size_t p_norm() const noexcept { return p_blocks + num_blocks(); }
    std::size_t p_avgpool() const noexcept { return p_norm() + 1; }
    std::size_t p_fc() const noexcept { return p_norm() + 2; }

    detail::tap_table tap_table() const {
        detail::tap_table t{{"conv1", p_conv1}};
        if (opt_.stem == stem::imagenet) t.emplace_back("maxpool", p_maxpool);
        std::size_t k = p_blocks;
        for (std::size_t s = 0; s < layers_.size(); ++s) {
            for (std::size_t b = 0; b < layers_[s].size(); ++b) t.emplace_back(unit_name(s, b), k++);
            t.emplace_back("layer" + std::to_string(s + 1), k - 1);
        }
        t.emplace_back("norm", p_norm());
        t.emplace_back("avgpool", p_avgpool());
        if (opt_.num_classes) t.emplace_back("fc", p_fc());
        return t;
    }
    tensor<T> tap_at(const cache_type& c, const tensor<T>& out, std::size_t point) const {
        if (point == p_conv1) return c.stem.conv1_out;
        if (point == p_maxpool) return c.stem.out;
        if (point == p_norm()) return c.head.relu;
        if (point == p_avgpool()) return c.head.pooled;
        if (point == p_fc()) return out;
        std::size_t k = point - p_blocks;
        for (std::size_t s = 0;; ++s) {
            if (k < c.layers[s].size()) return c.layers[s][k].y;
            k -= c.layers[s].size();
        }
    }

    template <class Inject>
    tensor<T> backward_impl(const cache_type& c, const tensor<T>& dy, bool need_input_grad, Inject&& inject) {
        tensor<T> g = ends_.head_backward(c.head, dy, p_norm(), p_avgpool(), p_fc(), inject);
        std::size_t k = p_norm();
        for (std::size_t s = layers_.size(); s-- > 0;)
            for (std::size_t b = layers_[s].size(); b-- > 0;) {
                inject(--k, g);
                if (g.defined()) g = layers_[s][b].backward(c.layers[s][b], g);
            }
        return ends_.stem_backward(c.stem, std::move(g), need_input_grad, p_maxpool, p_conv1, inject);
    }

    static std::string unit_name(std::size_t s, std::size_t b) {
        return "layer" + std::to_string(s + 1) + "." + std::to_string(b);
    }

    resnet_options opt_{};
    std::vector<std::size_t> blocks_{};
    std::vector<std::vector<Block>> layers_;
    ends_type ends_;
    std::size_t feature_dim_ = 0;
    bool training_ = true;
};

/// ResNet-18 v2: basic pre-activation units (2, 2, 2, 2).
template <class T = float>
class resnet18v2 : public resnet_v2<nn::preact_basic_block<T>> {
public:
    explicit resnet18v2(const resnet_options& o = {}) : resnet_v2<nn::preact_basic_block<T>>({2, 2, 2, 2}, o) {}
};
/// ResNet-34 v2: basic pre-activation units (3, 4, 6, 3).
template <class T = float>
class resnet34v2 : public resnet_v2<nn::preact_basic_block<T>> {
public:
    explicit resnet34v2(const resnet_options& o = {}) : resnet_v2<nn::preact_basic_block<T>>({3, 4, 6, 3}, o) {}
};
/// ResNet-50 v2: bottleneck pre-activation units (3, 4, 6, 3), 2048 features at width 64.
template <class T = float>
class resnet50v2 : public resnet_v2<nn::preact_bottleneck_block<T>> {
public:
    explicit resnet50v2(const resnet_options& o = {}) : resnet_v2<nn::preact_bottleneck_block<T>>({3, 4, 6, 3}, o) {}
};

}  // namespace ssl
