#pragma once
// Residual blocks of He et al. 2016 ("Deep Residual Learning for Image
// Recognition"), in torchvision's layout (stride on the 3x3 convolution,
// "ResNet v1.5"), with torchvision's parameter names.
#include <optional>
#include <string>

#include "../core/thread_pool.hpp"
#include "activation.hpp"
#include "batch_norm.hpp"
#include "conv2d.hpp"
#include "sequential.hpp"

namespace ssl::nn {

struct block_config {
    std::size_t in_planes = 0;
    std::size_t planes = 0;   ///< output channels / expansion
    std::size_t stride = 1;
};

namespace detail {
template <class T>
using downsample_t = sequential<conv2d<T>, batch_norm2d<T>>;

/// The shortcut's forward / backward (identity or conv1x1 - bn); backward
/// takes the gradient after the block's final relu (masked = y > 0 ? dy : 0,
/// which the last batch norm's backward_relu writes) and returns the
/// shortcut's gradient at the block input.
template <class T>
tensor<T> shortcut_forward(std::optional<downsample_t<T>>& ds, const tensor<T>& x,
                           std::optional<typename downsample_t<T>::cache_type>& cache) {
    if (!ds) return x;
    auto d = ds->forward(x);
    cache = std::move(d.cache);
    return std::move(d.out);
}
template <class T>
tensor<T> shortcut_backward(std::optional<downsample_t<T>>& ds,
                            const std::optional<typename downsample_t<T>::cache_type>& cache, tensor<T> masked) {
    if (!ds) return masked;
    tensor<T> g = ds->template get<1>().backward(std::get<1>(*cache), masked);
    return ds->template get<0>().backward(std::get<0>(*cache), g);
}

template <class T>
std::optional<downsample_t<T>> make_downsample(std::size_t in, std::size_t out, std::size_t stride,
                                               std::uint64_t seed) {
    if (stride == 1 && in == out) return std::nullopt;
    return downsample_t<T>(conv2d<T>({in, out, 1, stride, 0, false}, seed), batch_norm2d<T>({out}));
}
}  // namespace detail

/// conv3x3(stride) - bn - relu - conv3x3 - bn, + shortcut, relu. Expansion 1.
template <class T = float>
class basic_block {
public:
    using value_type = T;
    static constexpr std::size_t expansion = 1;
    struct cache_type {
        typename conv2d<T>::cache_type c1, c2;
        typename batch_norm2d<T>::cache_type b1, b2;
        typename relu<T>::cache_type r1;
        std::optional<typename detail::downsample_t<T>::cache_type> ds;
        tensor<T> y;  // block output, for the final relu's mask
    };

    basic_block() = default;
    explicit basic_block(const block_config& c, std::uint64_t seed = 0)
        : cfg_(c),
          conv1_({c.in_planes, c.planes, 3, c.stride, 1, false}, seed),
          bn1_({c.planes}),
          conv2_({c.planes, c.planes, 3, 1, 1, false}, seed + 1),
          bn2_({c.planes}),
          downsample_(detail::make_downsample<T>(c.in_planes, c.planes, c.stride, seed + 2)) {}

    const block_config& config() const noexcept { return cfg_; }
    std::size_t out_channels() const noexcept { return cfg_.planes * expansion; }

    // bn - relu and bn - add - relu run fused (batch_norm's forward_relu /
    // forward_add_relu / backward_relu): one pass over the data instead of two.
    forward_result<T, cache_type> forward(const tensor<T>& x) {
        cache_type c;
        auto a = conv1_.forward(x);
        auto b = bn1_.forward_relu(a.out);  // = relu(bn1(conv1(x)))
        auto a2 = conv2_.forward(b.out);
        const tensor<T> shortcut = detail::shortcut_forward(downsample_, x, c.ds);
        auto b2 = bn2_.forward_add_relu(a2.out, shortcut);
        c.c1 = std::move(a.cache);
        c.b1 = std::move(b.cache);
        c.r1 = typename relu<T>::cache_type{b.out};
        c.c2 = std::move(a2.cache);
        c.b2 = std::move(b2.cache);
        c.y = b2.out;
        return {std::move(b2.out), std::move(c)};
    }

    // The shortcut's gradient is computed first and conv1's input gradient
    // is added into it (conv2d::backward_add): no separate summing pass.
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        tensor<T> masked;
        tensor<T> g = bn2_.backward_relu(c.b2, c.y, dy, masked);
        tensor<T> dx = detail::shortcut_backward(downsample_, c.ds, std::move(masked));
        g = conv2_.backward(c.c2, g);
        g = bn1_.backward_relu(c.b1, c.r1.y, g);
        return conv1_.backward_add(c.c1, g, std::move(dx));
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        conv1_.for_each_parameter(f, join_name(p, "conv1"));
        bn1_.for_each_parameter(f, join_name(p, "bn1"));
        conv2_.for_each_parameter(f, join_name(p, "conv2"));
        bn2_.for_each_parameter(f, join_name(p, "bn2"));
        if (downsample_) downsample_->for_each_parameter(f, join_name(p, "downsample"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        bn1_.for_each_buffer(f, join_name(p, "bn1"));
        bn2_.for_each_buffer(f, join_name(p, "bn2"));
        if (downsample_) downsample_->for_each_buffer(f, join_name(p, "downsample"));
    }
    void train(bool on) {
        training_ = on;
        conv1_.train(on);
        bn1_.train(on);
        conv2_.train(on);
        bn2_.train(on);
        if (downsample_) downsample_->train(on);
    }
    bool training() const noexcept { return training_; }

private:
    block_config cfg_{};
    conv2d<T> conv1_;
    batch_norm2d<T> bn1_;
    relu<T> relu_;
    conv2d<T> conv2_;
    batch_norm2d<T> bn2_;
    std::optional<detail::downsample_t<T>> downsample_;
    bool training_ = true;
};

/// conv1x1 - bn - relu - conv3x3(stride) - bn - relu - conv1x1(4x) - bn,
/// + shortcut, relu. Expansion 4.
template <class T = float>
class bottleneck_block {
public:
    using value_type = T;
    static constexpr std::size_t expansion = 4;
    struct cache_type {
        typename conv2d<T>::cache_type c1, c2, c3;
        typename batch_norm2d<T>::cache_type b1, b2, b3;
        typename relu<T>::cache_type r1, r2;
        std::optional<typename detail::downsample_t<T>::cache_type> ds;
        tensor<T> y;
    };

    bottleneck_block() = default;
    explicit bottleneck_block(const block_config& c, std::uint64_t seed = 0)
        : cfg_(c),
          conv1_({c.in_planes, c.planes, 1, 1, 0, false}, seed),
          bn1_({c.planes}),
          conv2_({c.planes, c.planes, 3, c.stride, 1, false}, seed + 1),
          bn2_({c.planes}),
          conv3_({c.planes, c.planes * expansion, 1, 1, 0, false}, seed + 2),
          bn3_({c.planes * expansion}),
          downsample_(detail::make_downsample<T>(c.in_planes, c.planes * expansion, c.stride, seed + 3)) {}

    const block_config& config() const noexcept { return cfg_; }
    std::size_t out_channels() const noexcept { return cfg_.planes * expansion; }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        cache_type c;
        auto a1 = conv1_.forward(x);
        auto n1 = bn1_.forward_relu(a1.out);
        auto a2 = conv2_.forward(n1.out);
        auto n2 = bn2_.forward_relu(a2.out);
        auto a3 = conv3_.forward(n2.out);
        const tensor<T> shortcut = detail::shortcut_forward(downsample_, x, c.ds);
        auto n3 = bn3_.forward_add_relu(a3.out, shortcut);
        c.c1 = std::move(a1.cache);
        c.b1 = std::move(n1.cache);
        c.r1 = typename relu<T>::cache_type{n1.out};
        c.c2 = std::move(a2.cache);
        c.b2 = std::move(n2.cache);
        c.r2 = typename relu<T>::cache_type{n2.out};
        c.c3 = std::move(a3.cache);
        c.b3 = std::move(n3.cache);
        c.y = n3.out;
        return {std::move(n3.out), std::move(c)};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        tensor<T> masked;
        tensor<T> g = bn3_.backward_relu(c.b3, c.y, dy, masked);
        tensor<T> dx = detail::shortcut_backward(downsample_, c.ds, std::move(masked));
        g = conv3_.backward(c.c3, g);
        g = bn2_.backward_relu(c.b2, c.r2.y, g);
        g = conv2_.backward(c.c2, g);
        g = bn1_.backward_relu(c.b1, c.r1.y, g);
        return conv1_.backward_add(c.c1, g, std::move(dx));
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        conv1_.for_each_parameter(f, join_name(p, "conv1"));
        bn1_.for_each_parameter(f, join_name(p, "bn1"));
        conv2_.for_each_parameter(f, join_name(p, "conv2"));
        bn2_.for_each_parameter(f, join_name(p, "bn2"));
        conv3_.for_each_parameter(f, join_name(p, "conv3"));
        bn3_.for_each_parameter(f, join_name(p, "bn3"));
        if (downsample_) downsample_->for_each_parameter(f, join_name(p, "downsample"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        bn1_.for_each_buffer(f, join_name(p, "bn1"));
        bn2_.for_each_buffer(f, join_name(p, "bn2"));
        bn3_.for_each_buffer(f, join_name(p, "bn3"));
        if (downsample_) downsample_->for_each_buffer(f, join_name(p, "downsample"));
    }
    void train(bool on) {
        training_ = on;
        conv1_.train(on);
        bn1_.train(on);
        conv2_.train(on);
        bn2_.train(on);
        conv3_.train(on);
        bn3_.train(on);
        if (downsample_) downsample_->train(on);
    }
    bool training() const noexcept { return training_; }

private:
    block_config cfg_{};
    conv2d<T> conv1_;
    batch_norm2d<T> bn1_;
    relu<T> relu_;
    conv2d<T> conv2_;
    batch_norm2d<T> bn2_;
    conv2d<T> conv3_;
    batch_norm2d<T> bn3_;
    std::optional<detail::downsample_t<T>> downsample_;
    bool training_ = true;
};

}  // namespace ssl::nn
