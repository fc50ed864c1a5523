#pragma once
// Pre-activation residual units (He, Zhang, Ren & Sun 2016, "Identity Mappings
// in Deep Residual Networks", the "ResNet v2" of Kolesnikov, Zhai & Beyer 2019),
// the pieces resnet_v2.hpp and revnet.hpp are built from:
//
//   x_{l+1} = h(x_l) + F(x_l),   F = conv(relu(bn(... conv(relu(bn(x_l))))))   (eq. 2 with f = identity)
//
//   preact_branch<T, Bottleneck>  F alone:
//       basic       bn1-relu-conv1 3x3 (stride)-bn2-relu-conv2 3x3
//       bottleneck  bn1-relu-conv1 1x1-bn2-relu-conv2 3x3 (stride)-bn3-relu-conv3 1x1
//   preact_block<T, Bottleneck>   F + shortcut: identity, or a 1x1 conv (stride)
//       on relu(bn1(x)) when the shape changes (`downsample.0`, no batch norm:
//       the projection reads the already normalised input, as in the paper's
//       and TF-slim's resnet_v2)
//   preact_ends<T>                stem (conv1 [+ maxpool], no bn/relu: the first
//       unit normalises) and head (final bn-relu `norm`, global average pool,
//       optional `fc`) shared by resnet_v2 and revnet
//
// Design choices, one a line:
// - Parameter names follow torchvision's ResNet (layerK.B.bn1, .conv1, ...,
//   .downsample.0) since torchvision has no v2; the final norm is `norm`,
//   the name timm's ResNetV2 gives it.
// - bn-relu runs fused (batch_norm's forward_relu / backward_relu): one pass.
// - The shortcut is added into the last conv's fresh output in place, and the
//   identity shortcut's gradient into the branch's fresh input gradient: no
//   extra tensors.
// - The stride sits on the 3x3 conv (torchvision's "v1.5" placement), in the
//   first unit of a stage.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "../nn/activation.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/init.hpp"
#include "../nn/linear.hpp"
#include "../nn/pool.hpp"
#include "../nn/residual.hpp"
#include "resnet.hpp"  // ssl::stem, resnet_options, detail::fnv1a

namespace ssl {

namespace detail {

/// a += b, element-wise, in place (a must not share storage with anything
/// that still needs its old values).
template <class T>
void add_into(tensor<T>& a, const tensor<T>& b) {
    check_same_shape(a, b, "residual add");
    T* p = a.data();
    const T* q = b.data();
    nn::detail::parallel_chunks(a.numel(), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) p[i] += q[i];
    });
}

/// a - b, a new tensor.
template <class T>
tensor<T> subtract(const tensor<T>& a, const tensor<T>& b) {
    check_same_shape(a, b, "reversible inverse");
    tensor<T> r(a.shape());
    const T* p = a.data();
    const T* q = b.data();
    T* o = r.data();
    nn::detail::parallel_chunks(a.numel(), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) o[i] = p[i] - q[i];
    });
    return r;
}

/// (N, C, H, W) -> its first and second C/2 channels, copied.
template <class T>
std::pair<tensor<T>, tensor<T>> split_channels(const tensor<T>& x) {
    const std::size_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3), h = c / 2;
    require<shape_error>(c % 2 == 0, "split_channels: ", c, " channels do not split in halves");
    tensor<T> a({n, h, x.dim(2), x.dim(3)}), b({n, h, x.dim(2), x.dim(3)});
    for (std::size_t i = 0; i < n; ++i) {
        std::copy_n(x.data() + i * c * hw, h * hw, a.data() + i * h * hw);
        std::copy_n(x.data() + i * c * hw + h * hw, h * hw, b.data() + i * h * hw);
    }
    return {std::move(a), std::move(b)};
}

/// split_channels' inverse: (N, C/2, H, W) twice -> (N, C, H, W).
template <class T>
tensor<T> concat_channels(const tensor<T>& a, const tensor<T>& b) {
    check_same_shape(a, b, "concat_channels");
    const std::size_t n = a.dim(0), h = a.dim(1), hw = a.dim(2) * a.dim(3);
    tensor<T> x({n, 2 * h, a.dim(2), a.dim(3)});
    for (std::size_t i = 0; i < n; ++i) {
        std::copy_n(a.data() + i * h * hw, h * hw, x.data() + i * 2 * h * hw);
        std::copy_n(b.data() + i * h * hw, h * hw, x.data() + i * 2 * h * hw + h * hw);
    }
    return x;
}

/// torchvision's conv init for every 4-d parameter of m: kaiming_normal_
/// (fan_out, relu), one Philox stream per parameter name.
template <class T, class M>
void kaiming_fan_out_init(M& m, std::uint64_t seed) {
    m.for_each_parameter(
        [&](const std::string& name, parameter<T>& p) {
            if (p.value.rank() != 4) return;
            philox g(seed, fnv1a(name));
            init::kaiming_normal_fan_out(p.value, p.value.dim(0) * p.value.dim(2) * p.value.dim(3), g);
        },
        "");
}

}  // namespace detail

namespace nn {

/// The residual function F of a pre-activation unit (see the top of this file).
template <class T, bool Bottleneck>
class preact_branch {
public:
    using value_type = T;
    static constexpr std::size_t depth = Bottleneck ? 3 : 2;  ///< bn-relu-conv triples
    struct cache_type {
        std::array<typename batch_norm2d<T>::cache_type, depth> bn;
        std::array<typename conv2d<T>::cache_type, depth> conv;  ///< conv[i].x = relu(bn_i(...)), the relu's mask
    };

    preact_branch() = default;
    /// in -> mid (-> mid) -> out channels; the stride on the 3x3 conv.
    preact_branch(std::size_t in, std::size_t mid, std::size_t out, std::size_t stride, std::uint64_t seed) {
        if constexpr (Bottleneck) {
            conv_ = {conv2d<T>({in, mid, 1, 1, 0, false}, seed), conv2d<T>({mid, mid, 3, stride, 1, false}, seed + 1),
                     conv2d<T>({mid, out, 1, 1, 0, false}, seed + 2)};
            bn_ = {batch_norm2d<T>({in}), batch_norm2d<T>({mid}), batch_norm2d<T>({mid})};
        } else {
            conv_ = {conv2d<T>({in, mid, 3, stride, 1, false}, seed), conv2d<T>({mid, out, 3, 1, 1, false}, seed + 1)};
            bn_ = {batch_norm2d<T>({in}), batch_norm2d<T>({mid})};
        }
    }

    /// x: (N, in, H, W) -> F(x): (N, out, H/stride, W/stride), a fresh tensor.
    forward_result<T, cache_type> forward(const tensor<T>& x) {
        cache_type c;
        tensor<T> h = x;
        for (std::size_t i = 0; i < depth; ++i) {
            auto b = bn_[i].forward_relu(h);
            c.bn[i] = std::move(b.cache);
            auto o = conv_[i].forward(b.out);
            c.conv[i] = std::move(o.cache);
            h = std::move(o.out);
        }
        return {std::move(h), std::move(c)};
    }
    /// relu(bn1(x)) of the forward that made c (what a projection shortcut reads).
    static const tensor<T>& preactivation(const cache_type& c) { return c.conv[0].x; }

    /// dF/dx given dy; d_pre, if defined, is an extra gradient at
    /// preactivation(c) (the projection shortcut's) and is written in place.
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, tensor<T> d_pre = {}) {
        tensor<T> g = dy;
        for (std::size_t i = depth; i-- > 0;) {
            g = (i == 0 && d_pre.defined()) ? conv_[i].backward_add(c.conv[i], g, std::move(d_pre))
                                            : conv_[i].backward(c.conv[i], g);
            g = bn_[i].backward_relu(c.bn[i], c.conv[i].x, g);
        }
        return g;
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        for (std::size_t i = 0; i < depth; ++i) {
            bn_[i].for_each_parameter(f, join_name(p, "bn" + std::to_string(i + 1)));
            conv_[i].for_each_parameter(f, join_name(p, "conv" + std::to_string(i + 1)));
        }
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        for (std::size_t i = 0; i < depth; ++i) bn_[i].for_each_buffer(f, join_name(p, "bn" + std::to_string(i + 1)));
    }
    void train(bool on) {
        training_ = on;
        for (auto& b : bn_) b.train(on);
        for (auto& c : conv_) c.train(on);
    }
    bool training() const noexcept { return training_; }

private:
    std::array<conv2d<T>, depth> conv_{};
    std::array<batch_norm2d<T>, depth> bn_{};
    bool training_ = true;
};

/// A pre-activation unit: F(x) + x, or F(x) + conv1x1(relu(bn1(x))) when the
/// stride or the channels change. Expansion 1 (basic) or 4 (bottleneck).
template <class T, bool Bottleneck>
class preact_block {
public:
    using value_type = T;
    static constexpr std::size_t expansion = Bottleneck ? 4 : 1;
    struct cache_type {
        typename preact_branch<T, Bottleneck>::cache_type branch;
        std::optional<typename conv2d<T>::cache_type> ds;
        tensor<T> y;  ///< the unit's output (shared storage; a tap)
    };

    preact_block() = default;
    explicit preact_block(const block_config& c, std::uint64_t seed = 0)
        : cfg_(c), branch_(c.in_planes, c.planes, c.planes * expansion, c.stride, seed) {
        if (c.stride != 1 || c.in_planes != c.planes * expansion)
            downsample_ = conv2d<T>({c.in_planes, c.planes * expansion, 1, c.stride, 0, false}, seed + 3);
    }
    const block_config& config() const noexcept { return cfg_; }
    std::size_t out_channels() const noexcept { return cfg_.planes * expansion; }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        cache_type c;
        auto r = branch_.forward(x);
        tensor<T> y = std::move(r.out);  // fresh: the shortcut is added in place
        if (downsample_) {
            auto s = downsample_->forward(branch_.preactivation(r.cache));
            ssl::detail::add_into(y, s.out);
            c.ds = std::move(s.cache);
        } else {
            ssl::detail::add_into(y, x);
        }
        c.branch = std::move(r.cache);
        c.y = y;
        return {std::move(y), std::move(c)};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        if (downsample_) return branch_.backward(c.branch, dy, downsample_->backward(*c.ds, dy));
        tensor<T> dx = branch_.backward(c.branch, dy);  // fresh
        ssl::detail::add_into(dx, dy);                       // + the identity's gradient
        return dx;
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        branch_.for_each_parameter(f, p);
        if (downsample_) downsample_->for_each_parameter(f, join_name(p, "downsample.0"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        branch_.for_each_buffer(f, p);
    }
    void train(bool on) {
        training_ = on;
        branch_.train(on);
        if (downsample_) downsample_->train(on);
    }
    bool training() const noexcept { return training_; }

private:
    block_config cfg_{};
    preact_branch<T, Bottleneck> branch_;
    std::optional<conv2d<T>> downsample_;
    bool training_ = true;
};

template <class T = float>
using preact_basic_block = preact_block<T, false>;
template <class T = float>
using preact_bottleneck_block = preact_block<T, true>;

}  // namespace nn

namespace detail {

/// Stem and head of a pre-activation network:
///   stem  conv1 (7x7/2 + maxpool 3/2 for imagenet, 3x3/1 for cifar), no bn
///   head  norm (bn) - relu - global average pool [- fc]
/// in_channels, width (the stem's channels), stem, num_classes, seed as in resnet_options.
template <class T>
struct preact_ends {
    struct stem_cache {
        typename nn::conv2d<T>::cache_type conv1;
        typename nn::max_pool2d<T>::cache_type maxpool;
        tensor<T> conv1_out;  ///< a tap
        tensor<T> out;        ///< the stem's output (after the max pool)
    };
    struct head_cache {
        typename nn::batch_norm2d<T>::cache_type norm;
        tensor<T> relu;  ///< relu(norm(x)): the relu's mask and a tap
        typename nn::global_avg_pool2d<T>::cache_type pool;
        tensor<T> pooled;
        typename nn::linear<T>::cache_type fc;
    };

    preact_ends() = default;
    preact_ends(const std::string& who, std::size_t in_channels, std::size_t width, ssl::stem s, std::size_t features,
                std::size_t num_classes, std::uint64_t seed)
        : who_(who), in_channels_(in_channels), stem_(s), num_classes_(num_classes) {
        require(in_channels > 0, who, ": in_channels must be positive");
        require(width > 0, who, ": width must be positive");
        if (s == stem::imagenet) {
            conv1_ = nn::conv2d<T>({in_channels, width, 7, 2, 3, false}, seed);
            maxpool_ = nn::max_pool2d<T>({3, 2, 1});
        } else {
            conv1_ = nn::conv2d<T>({in_channels, width, 3, 1, 1, false}, seed);
        }
        norm_ = nn::batch_norm2d<T>({features});
        if (num_classes) fc_ = nn::linear<T>({features, num_classes}, seed + 7);
    }

    forward_result<T, stem_cache> stem_forward(const tensor<T>& x) {
        check_rank(x, 4, who_.c_str(), "(N, C, H, W)");
        require<shape_error>(x.dim(1) == in_channels_, who_, ": input has ", x.dim(1),
                             " channels, the backbone was built for ", in_channels_, " (input shape ",
                             x.shape().str(), ")");
        stem_cache c;
        auto a = conv1_.forward(x);
        c.conv1 = std::move(a.cache);
        c.conv1_out = a.out;
        tensor<T> h = std::move(a.out);
        if (stem_ == stem::imagenet) {
            auto m = maxpool_.forward(h);
            c.maxpool = std::move(m.cache);
            h = std::move(m.out);
        }
        c.out = h;
        return {std::move(h), std::move(c)};
    }
    /// g: the gradient at the stem's output (may be undefined); inject(point,
    /// g) adds tap gradients at p_maxpool and p_conv1.
    template <class Inject>
    tensor<T> stem_backward(const stem_cache& c, tensor<T> g, bool need_input_grad, std::size_t p_maxpool,
                            std::size_t p_conv1, Inject&& inject) {
        if (stem_ == stem::imagenet) {
            inject(p_maxpool, g);
            if (g.defined()) g = maxpool_.backward(c.maxpool, g);
        }
        inject(p_conv1, g);
        if (!g.defined()) return need_input_grad ? tensor<T>::zeros(c.conv1.x.shape()) : tensor<T>{};
        return conv1_.backward(c.conv1, g, need_input_grad);
    }

    forward_result<T, head_cache> head_forward(const tensor<T>& h) {
        head_cache c;
        auto n = norm_.forward_relu(h);
        c.norm = std::move(n.cache);
        c.relu = n.out;
        auto p = pool_.forward(n.out);
        c.pool = std::move(p.cache);
        c.pooled = p.out;
        tensor<T> out = std::move(p.out);
        if (num_classes_) {
            auto f = fc_.forward(out);
            c.fc = std::move(f.cache);
            out = std::move(f.out);
        }
        return {std::move(out), std::move(c)};
    }
    template <class Inject>
    tensor<T> head_backward(const head_cache& c, tensor<T> g, std::size_t p_norm, std::size_t p_avgpool,
                            std::size_t p_fc, Inject&& inject) {
        inject(p_fc, g);
        if (num_classes_ && g.defined()) g = fc_.backward(c.fc, g);
        inject(p_avgpool, g);
        if (g.defined()) g = pool_.backward(c.pool, g);
        inject(p_norm, g);
        if (g.defined()) g = norm_.backward_relu(c.norm, c.relu, g);
        return g;
    }

    template <class F>
    void stem_parameters(F&& f, const std::string& p) {
        conv1_.for_each_parameter(f, join_name(p, "conv1"));
    }
    template <class F>
    void head_parameters(F&& f, const std::string& p) {
        norm_.for_each_parameter(f, join_name(p, "norm"));
        if (num_classes_) fc_.for_each_parameter(f, join_name(p, "fc"));
    }
    template <class F>
    void head_buffers(F&& f, const std::string& p) {
        norm_.for_each_buffer(f, join_name(p, "norm"));
    }
    void train(bool on) {
        conv1_.train(on);
        norm_.train(on);
        fc_.train(on);
    }

    std::string who_;
    std::size_t in_channels_ = 0;
    ssl::stem stem_ = ssl::stem::imagenet;
    std::size_t num_classes_ = 0;
    nn::conv2d<T> conv1_;
    nn::max_pool2d<T> maxpool_;
    nn::batch_norm2d<T> norm_;
    nn::global_avg_pool2d<T> pool_;
    nn::linear<T> fc_;
};

}  // namespace detail
}  // namespace ssl
