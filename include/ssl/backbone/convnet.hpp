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
#include <string>

#include "../nn/activation.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/pool.hpp"
#include "../nn/sequential.hpp"

namespace ssl {

struct convnet_options {
    std::size_t in_channels = 3;
    std::size_t width = 64;
    std::uint64_t seed = 0;
};

template <class T = float>
class convnet {
    using conv = nn::conv2d<T>;
    using bn = nn::batch_norm2d<T>;
    using act = nn::relu<T>;
    using pool = nn::max_pool2d<T>;
    using stack = nn::sequential<conv, bn, act, pool, conv, bn, act, pool, conv, bn, act, conv, bn, act, conv, bn, act,
                                 nn::global_avg_pool2d<T>>;

public:
    using value_type = T;
    using options_type = convnet_options;
    using cache_type = typename stack::cache_type;

    explicit convnet(const convnet_options& o = {}) : opt_(o), features_(make(o)) {
        require(o.in_channels > 0 && o.width > 0, "convnet: in_channels and width must be positive");
    }
    std::size_t feature_dim() const noexcept { return 4 * opt_.width; }
    std::size_t output_dim() const noexcept { return feature_dim(); }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        check_rank(x, 4, "convnet", "(N, C, H, W)");
        require<shape_error>(x.dim(1) == opt_.in_channels, "convnet: input has ", x.dim(1),
                             " channels, the backbone was built for ", opt_.in_channels);
        require<shape_error>(x.dim(2) >= 8 && x.dim(3) >= 8, "convnet: images must be at least 8x8, got ",
                             x.shape().str());
        return features_.forward(x);
    }
    /// need_input_grad is accepted for the backbone interface; the input
    /// gradient is always computed (it is a small part of this network).
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        (void)need_input_grad;
        return features_.backward(c, dy);
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

private:
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

}  // namespace ssl
