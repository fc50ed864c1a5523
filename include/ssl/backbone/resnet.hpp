#pragma once
// ResNet backbones (He et al. 2016) in torchvision's layout and parameter
// names: resnet18/34 (basic blocks), resnet50 (bottlenecks). Two stems:
//   imagenet: conv 7x7 stride 2 + max pool 3x3 stride 2 (torchvision)
//   cifar:    conv 3x3 stride 1, no max pool (SimCLR's CIFAR variant)
// Any number of input channels, a base width (64 = standard), and an
// optional classifier `fc` (num_classes > 0); without it the backbone returns
// the globally pooled features (N, feature_dim()).
//
// Taps (backbone/taps.hpp): forward_taps(x, names) also returns these maps,
// named as torchvision names its modules, in network order (tap_names()):
//   conv1     the stem convolution's output (before bn1)
//   bn1       bn1's output before the relu (asking for it runs the stem's bn1
//             and relu as two passes instead of one fused pass)
//   relu      the stem's relu output
//   maxpool   the max pool's output (imagenet stem only)
//   layerK.B  block B of stage K (torchvision's indices): its output after
//             the final relu, i.e. after the residual add
//   layerK    stage K's output (the same tensor as its last block's)
//   avgpool   the pooled features, (N, feature_dim()) (torchvision's is
//             (N, D, 1, 1))
//   fc        the classifier's output, = out (only with num_classes > 0)
// A gradient given at a tap is added to the one entering the next layer's
// backward (for a block output, the gradient that block's backward gets).
#include <cstdint>
#include <string>
#include <vector>

#include "../nn/activation.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/linear.hpp"
#include "../nn/pool.hpp"
#include "../nn/residual.hpp"
#include "taps.hpp"

namespace ssl {

enum class stem { imagenet, cifar };

/// Options shared by every ResNet depth.
struct resnet_options {
    std::size_t in_channels = 3;
    std::size_t width = 64;          ///< channels of the stem and layer1 (64 = torchvision)
    ssl::stem stem = ssl::stem::imagenet;
    std::size_t num_classes = 0;     ///< 0: no fc, forward returns pooled features
    std::uint64_t seed = 0;          ///< initialization seed
};

namespace detail {
inline std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (char ch : s) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    return h;
}
}  // namespace detail

template <class Block>
class resnet {
public:
    using value_type = typename Block::value_type;
    using options_type = resnet_options;
    using T = value_type;
    using block_type = Block;

    struct cache_type {
        typename nn::conv2d<T>::cache_type conv1;
        typename nn::batch_norm2d<T>::cache_type bn1;
        typename nn::relu<T>::cache_type relu;
        typename nn::max_pool2d<T>::cache_type maxpool;
        std::vector<std::vector<typename Block::cache_type>> layers;
        typename nn::global_avg_pool2d<T>::cache_type pool;
        typename nn::linear<T>::cache_type fc;
        /// Outputs of the stem, of each stage (layer1..layerK) and the pooled
        /// features: stages[0] = stem, stages[k] = layer k, stages.back() = pooled.
        std::vector<tensor<T>> stages;
    };

    resnet() = default;
    resnet(std::vector<std::size_t> blocks, const resnet_options& o) : opt_(o), blocks_(std::move(blocks)) {
        require(!blocks_.empty(), "resnet: needs at least one stage");
        require(o.in_channels > 0, "resnet: in_channels must be positive");
        require(o.width > 0, "resnet: width must be positive");
        for (auto b : blocks_) require(b > 0, "resnet: every stage needs at least one block");
        const std::size_t w = o.width;
        if (o.stem == stem::imagenet) {
            conv1_ = nn::conv2d<T>({o.in_channels, w, 7, 2, 3, false}, o.seed);
            maxpool_ = nn::max_pool2d<T>({3, 2, 1});
        } else {
            conv1_ = nn::conv2d<T>({o.in_channels, w, 3, 1, 1, false}, o.seed);
        }
        bn1_ = nn::batch_norm2d<T>({w});
        std::size_t in = w;
        std::uint64_t seed = o.seed + 1000;
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            const std::size_t planes = w << s;
            std::vector<Block> stage;
            for (std::size_t b = 0; b < blocks_[s]; ++b) {
                const std::size_t stride = (s > 0 && b == 0) ? 2 : 1;
                stage.emplace_back(nn::block_config{in, planes, stride}, seed);
                seed += 10;
                in = planes * Block::expansion;
            }
            layers_.push_back(std::move(stage));
        }
        feature_dim_ = in;
        if (o.num_classes > 0) fc_ = nn::linear<T>({in, o.num_classes}, o.seed + 7);
        torchvision_init();
    }

    const resnet_options& options() const noexcept { return opt_; }
    const std::vector<std::size_t>& blocks() const noexcept { return blocks_; }
    /// Width of the pooled features (512 for resnet18 at width 64, 2048 for resnet50).
    std::size_t feature_dim() const noexcept { return feature_dim_; }
    /// Width of forward's output: num_classes with a classifier, else feature_dim().
    std::size_t output_dim() const noexcept { return opt_.num_classes ? opt_.num_classes : feature_dim_; }
    std::size_t num_stages() const noexcept { return layers_.size(); }

    /// What forward_taps returns for backward_taps: the network's cache and
    /// the requested taps.
    struct tap_cache_type {
        cache_type net;
        std::vector<detail::tap_request> taps;
        tensor<T> bn1;  ///< bn1's output before the relu, when "bn1" was asked for (stem run unfused)
    };

    /// x: (N, in_channels, H, W) -> (N, output_dim()).
    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward_impl(x, nullptr); }

    /// Accumulates parameter gradients. The input gradient is computed only
    /// when need_input_grad is true (it is rarely needed for images).
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        return backward_impl(c, dy, need_input_grad, false, [](std::size_t, tensor<T>&) {});
    }

    /// Every tap name, in network order (see the top of this file).
    std::vector<std::string> tap_names() const { return detail::tap_table_names(tap_table()); }

    /// forward(x) that also returns the maps named in `names`, in that order
    /// (shared storage, no copies); out is forward(x).out bitwise.
    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        tap_cache_type tc;
        tc.taps = detail::resolve_taps("resnet", names, tap_table());
        bool split = false;
        for (const auto& r : tc.taps) split |= r.point == p_bn1;
        auto f = forward_impl(x, split ? &tc.bn1 : nullptr);
        tc.net = std::move(f.cache);
        std::vector<tensor<T>> taps;
        taps.reserve(tc.taps.size());
        for (auto& r : tc.taps) {
            taps.push_back(tap_at(tc, f.out, r.point));
            r.shape = taps.back().shape();
        }
        return {std::move(f.out), std::move(tc), std::move(taps)};
    }

    /// backward with gradients at the taps too (one per requested tap, in
    /// forward_taps' order, or none); d_out and any d_taps[i] may be
    /// undefined. Tap gradients add to what flows back from later layers.
    /// With no tap gradient it is backward(c.net, d_out) bitwise (with "bn1"
    /// requested the stem's backward runs as relu then bn1; the same values
    /// in the tests). When no gradient reaches the input, dx is zeros (or
    /// empty without need_input_grad).
    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        detail::check_tap_grads("resnet", c.taps, d_taps);
        return backward_impl(c.net, d_out, need_input_grad, c.bn1.defined(),
                             [&](std::size_t point, tensor<T>& g) { detail::add_tap_grads(point, c.taps, d_taps, g); });
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        conv1_.for_each_parameter(f, join_name(p, "conv1"));
        bn1_.for_each_parameter(f, join_name(p, "bn1"));
        for (std::size_t s = 0; s < layers_.size(); ++s)
            for (std::size_t b = 0; b < layers_[s].size(); ++b)
                layers_[s][b].for_each_parameter(f, join_name(p, stage_name(s, b)));
        if (opt_.num_classes) fc_.for_each_parameter(f, join_name(p, "fc"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        bn1_.for_each_buffer(f, join_name(p, "bn1"));
        for (std::size_t s = 0; s < layers_.size(); ++s)
            for (std::size_t b = 0; b < layers_[s].size(); ++b)
                layers_[s][b].for_each_buffer(f, join_name(p, stage_name(s, b)));
    }
    void train(bool on) {
        training_ = on;
        conv1_.train(on);
        bn1_.train(on);
        for (auto& s : layers_)
            for (auto& b : s) b.train(on);
        fc_.train(on);
    }
    bool training() const noexcept { return training_; }

    /// The blocks of stage s (0-based; torchvision's layer{s+1}).
    std::vector<Block>& stage(std::size_t s) { return layers_.at(s); }

private:
    // Tap points, in network order: conv1, bn1, relu, maxpool, one per block
    // (stages flattened), the pooled features, fc.
    static constexpr std::size_t p_conv1 = 0, p_bn1 = 1, p_relu = 2, p_maxpool = 3, p_blocks = 4;
    std::size_t num_blocks() const noexcept {
        std::size_t n = 0;
        for (auto b : blocks_) n += b;
        return n;
    }
    std::size_t p_avgpool() const noexcept { return p_blocks + num_blocks(); }
    std::size_t p_fc() const noexcept { return p_avgpool() + 1; }

    detail::tap_table tap_table() const {
        detail::tap_table t{{"conv1", p_conv1}, {"bn1", p_bn1}, {"relu", p_relu}};
        if (opt_.stem == stem::imagenet) t.emplace_back("maxpool", p_maxpool);
        std::size_t k = p_blocks;
        for (std::size_t s = 0; s < layers_.size(); ++s) {
            for (std::size_t b = 0; b < layers_[s].size(); ++b) t.emplace_back(stage_name(s, b), k++);
            t.emplace_back("layer" + std::to_string(s + 1), k - 1);
        }
        t.emplace_back("avgpool", p_avgpool());
        if (opt_.num_classes) t.emplace_back("fc", p_fc());
        return t;
    }

    /// The map at a tap point, from the forward's cache (shared, not copied).
    tensor<T> tap_at(const tap_cache_type& tc, const tensor<T>& out, std::size_t point) const {
        const cache_type& c = tc.net;
        switch (point) {
            case p_conv1: return c.bn1.x;  // bn1's input
            case p_bn1: return tc.bn1;
            case p_relu: return c.relu.y;
            case p_maxpool: return c.stages.front();
            default: break;
        }
        if (point == p_avgpool()) return c.stages.back();
        if (point == p_fc()) return out;
        std::size_t k = point - p_blocks;
        for (std::size_t s = 0;; ++s) {
            if (k < c.layers[s].size()) return c.layers[s][k].y;  // the block's output (after its final relu)
            k -= c.layers[s].size();
        }
    }

    /// bn1_out: null for the fused stem (forward's path), else where bn1's
    /// output before the relu goes (bn1 and relu then run as two passes).
    forward_result<T, cache_type> forward_impl(const tensor<T>& x, tensor<T>* bn1_out) {
        check_rank(x, 4, "resnet", "(N, C, H, W)");
        require<shape_error>(x.dim(1) == opt_.in_channels, "resnet: input has ", x.dim(1),
                             " channels, the backbone was built for ", opt_.in_channels, " (input shape ",
                             x.shape().str(), ")");
        cache_type c;
        auto a = conv1_.forward(x);
        tensor<T> h;
        if (!bn1_out) {
            auto b = bn1_.forward_relu(a.out);  // relu(bn1(conv1(x))) in one pass
            h = b.out;
            c.bn1 = std::move(b.cache);
            c.relu = typename nn::relu<T>::cache_type{b.out};
        } else {
            auto b = bn1_.forward(a.out);
            auto r = nn::relu<T>{}.forward(b.out);
            *bn1_out = std::move(b.out);
            h = r.out;
            c.bn1 = std::move(b.cache);
            c.relu = std::move(r.cache);
        }
        c.conv1 = std::move(a.cache);
        if (opt_.stem == stem::imagenet) {
            auto m = maxpool_.forward(h);
            h = std::move(m.out);
            c.maxpool = std::move(m.cache);
        }
        c.stages.push_back(h);
        c.layers.resize(layers_.size());
        for (std::size_t s = 0; s < layers_.size(); ++s) {
            for (auto& blk : layers_[s]) {
                auto o = blk.forward(h);
                h = std::move(o.out);
                c.layers[s].push_back(std::move(o.cache));
            }
            c.stages.push_back(h);
        }
        auto p = pool_.forward(h);
        c.pool = std::move(p.cache);
        c.stages.push_back(p.out);
        tensor<T> out = std::move(p.out);
        if (opt_.num_classes) {
            auto f = fc_.forward(out);
            out = std::move(f.out);
            c.fc = std::move(f.cache);
        }
        return {std::move(out), std::move(c)};
    }

    /// Backward from the output; inject(point, g) adds the taps' gradients
    /// at each point (a no-op for backward). An undefined g is no gradient
    /// yet: the layers it would pass through are skipped. split: the stem's
    /// bn1 and relu ran as two passes (forward_taps with "bn1").
    template <class Inject>
    tensor<T> backward_impl(const cache_type& c, const tensor<T>& dy, bool need_input_grad, bool split,
                            Inject&& inject) {
        tensor<T> g = dy;
        inject(p_fc(), g);
        if (opt_.num_classes && g.defined()) g = fc_.backward(c.fc, g);
        inject(p_avgpool(), g);
        if (g.defined()) g = pool_.backward(c.pool, g);
        std::size_t k = p_avgpool();
        for (std::size_t s = layers_.size(); s-- > 0;)
            for (std::size_t b = layers_[s].size(); b-- > 0;) {
                inject(--k, g);  // at the block's output: added to what its backward gets
                if (g.defined()) g = layers_[s][b].backward(c.layers[s][b], g);
            }
        if (opt_.stem == stem::imagenet) {
            inject(p_maxpool, g);
            if (g.defined()) g = maxpool_.backward(c.maxpool, g);
        }
        inject(p_relu, g);
        if (!split) {
            if (g.defined()) g = bn1_.backward_relu(c.bn1, c.relu.y, g);
        } else {
            if (g.defined()) g = nn::relu<T>{}.backward(c.relu, g);
            inject(p_bn1, g);
            if (g.defined()) g = bn1_.backward(c.bn1, g);
        }
        inject(p_conv1, g);
        if (!g.defined()) return need_input_grad ? tensor<T>::zeros(c.conv1.x.shape()) : tensor<T>{};
        return conv1_.backward(c.conv1, g, need_input_grad);
    }

    static std::string stage_name(std::size_t s, std::size_t b) {
        return "layer" + std::to_string(s + 1) + "." + std::to_string(b);
    }
    // torchvision: kaiming_normal_(fan_out, relu) for every conv, BN = (1, 0),
    // fc keeps nn.Linear's default.
    void torchvision_init() {
        for_each_parameter(
            [&](const std::string& name, parameter<T>& p) {
                if (p.value.rank() != 4) return;
                philox g(opt_.seed, detail::fnv1a(name));
                init::kaiming_normal_fan_out(p.value, p.value.dim(0) * p.value.dim(2) * p.value.dim(3), g);
            },
            "");
    }

    resnet_options opt_{};
    std::vector<std::size_t> blocks_{};
    nn::conv2d<T> conv1_;
    nn::batch_norm2d<T> bn1_;
    nn::max_pool2d<T> maxpool_;
    std::vector<std::vector<Block>> layers_;
    nn::global_avg_pool2d<T> pool_;
    nn::linear<T> fc_;
    std::size_t feature_dim_ = 0;
    bool training_ = true;
};

/// ResNet-18: basic blocks (2, 2, 2, 2).
template <class T = float>
class resnet18 : public resnet<nn::basic_block<T>> {
public:
    explicit resnet18(const resnet_options& o = {}) : resnet<nn::basic_block<T>>({2, 2, 2, 2}, o) {}
};
/// ResNet-34: basic blocks (3, 4, 6, 3).
template <class T = float>
class resnet34 : public resnet<nn::basic_block<T>> {
public:
    explicit resnet34(const resnet_options& o = {}) : resnet<nn::basic_block<T>>({3, 4, 6, 3}, o) {}
};
/// ResNet-50: bottleneck blocks (3, 4, 6, 3), features 2048 at width 64.
template <class T = float>
class resnet50 : public resnet<nn::bottleneck_block<T>> {
public:
    explicit resnet50(const resnet_options& o = {}) : resnet<nn::bottleneck_block<T>>({3, 4, 6, 3}, o) {}
};

}  // namespace ssl
