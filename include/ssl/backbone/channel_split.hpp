#pragma once
// A backbone split in two over its input channels: the split-brain network of
// Zhang, Isola & Efros, "Split-Brain Autoencoders: Unsupervised Learning by
// Cross-Channel Prediction", CVPR 2017, sec. 3.1. Two sub-networks of half
// the width each see one group of the input's channels; the representation
// is the concatenation of their features:
//
//   x = [x_1 | x_2]                    (N, C_1 + C_2, H, W), split over channels
//   forward(x) = [F_1(x_1) ; F_2(x_2)] (N, D_1 + D_2), D_k = F_k.output_dim()
//
// Contract: options.backbone describes the whole network: its in_channels
// must be C_1 + C_2 (options.groups, in input order) and its width is the
// full width; each half is a Backbone of width / 2 (width even, >= 2) with
// in_channels C_k, half 1 seeded with options.seed, half 2 with seed + 1.
// Parameters, buffers and taps are named "half1.<name>" and "half2.<name>"
// (the halves' own names, e.g.
// "half1.layer4.1.conv2.weight", tap "half2.layer3"). forward_taps routes each
// requested name to its half; backward splits dy (columns D_1 | D_2) and the
// tap gradients between the halves and concatenates the input gradients over
// channels. A half that receives no gradient at all is not run backward (its
// input gradient is zero). Nothing flows between the halves: F_1's output
// does not depend on x_2 at all (tests/backbone/test_channel_split.cpp).
//
// Design choices, one line each:
//   - two halves of width / 2, as the paper's split of every layer's channels
//     in two (AlexNet: the same depth, half the filters per half);
//   - exactly two groups: the paper's split (L | ab, or RGB | depth); more
//     would be a different method;
//   - the halves are any backbone with taps (resnet, vgg, any_backbone, ...),
//     so dense heads read each half's maps by name;
//   - a classifier on the halves (num_classes) is refused: the concatenated
//     logits of two classifiers are not one.
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../nn/parameter.hpp"
#include "taps.hpp"

namespace ssl {

/// Options of channel_split<B>: the whole network (in_channels = the total
/// channels, width = the full width) and the channels each half sees.
template <class O>
struct channel_split_options {
    O backbone{};                           ///< the whole network; each half gets width / 2
    std::vector<std::size_t> groups{1, 2};  ///< input channels of half 1, then half 2 (in input order)
    /// half 1 is seeded with seed, half 2 with seed + 1 (backbone.seed is not read)
    std::uint64_t seed = 0;
};

namespace detail {
/// Channels [lo, lo + n) of x (N, C, H, W), copied: (N, n, H, W).
template <class T>
tensor<T> take_channels(const tensor<T>& x, std::size_t lo, std::size_t n) {
    const std::size_t N = x.dim(0), C = x.dim(1), hw = x.dim(2) * x.dim(3);
    tensor<T> o({N, n, x.dim(2), x.dim(3)});
    for (std::size_t i = 0; i < N; ++i)
        std::copy(x.data() + (i * C + lo) * hw, x.data() + (i * C + lo + n) * hw, o.data() + i * n * hw);
    return o;
}
/// Columns [lo, lo + n) of y (N, D), copied: (N, n).
template <class T>
tensor<T> take_columns(const tensor<T>& y, std::size_t lo, std::size_t n) {
    const std::size_t N = y.dim(0), D = y.dim(1);
    tensor<T> o({N, n});
    for (std::size_t i = 0; i < N; ++i) std::copy(y.data() + i * D + lo, y.data() + i * D + lo + n, o.data() + i * n);
    return o;
}
}  // namespace detail

template <class Backbone>
class channel_split {
public:
    using value_type = typename Backbone::value_type;
    using T = value_type;
    using options_type = channel_split_options<typename Backbone::options_type>;
    using half_type = Backbone;
    struct cache_type {
        typename Backbone::cache_type c1, c2;
        shape_t in{};
    };
    struct tap_cache_type {
        typename Backbone::tap_cache_type c1, c2;
        std::vector<std::size_t> half;   ///< per requested tap: 0 or 1
        std::vector<std::size_t> index;  ///< its position in that half's request
        std::array<std::size_t, 2> count{0, 0};
        std::vector<shape_t> shapes;
        shape_t in{};
    };

    channel_split() = default;
    explicit channel_split(const options_type& o) : opt_(o) {
        require(o.groups.size() == 2, "channel_split: needs exactly 2 channel groups (one per half), got ",
                o.groups.size());
        require(o.groups[0] > 0 && o.groups[1] > 0, "channel_split: a channel group is empty (groups ", o.groups[0],
                ", ", o.groups[1], ")");
        require(o.groups[0] + o.groups[1] == o.backbone.in_channels, "channel_split: groups ", o.groups[0], " + ",
                o.groups[1], " channels, but the backbone's in_channels is ", o.backbone.in_channels);
        require(o.backbone.width >= 2 && o.backbone.width % 2 == 0, "channel_split: width ", o.backbone.width,
                " must be even and at least 2 (each half is a network of width / 2)");
        if constexpr (requires { o.backbone.num_classes; })
            require(o.backbone.num_classes == 0, "channel_split: the halves have no classifier (num_classes must be "
                    "0, got ", o.backbone.num_classes, ")");
        for (std::size_t k = 0; k < 2; ++k) {
            auto h = o.backbone;
            h.in_channels = o.groups[k];
            h.width = o.backbone.width / 2;
            h.seed = o.seed + k;
            (k == 0 ? b1_ : b2_) = Backbone(h);
        }
    }

    const options_type& options() const noexcept { return opt_; }
    Backbone& half1() noexcept { return b1_; }
    Backbone& half2() noexcept { return b2_; }
    std::size_t output_dim() const { return b1_.output_dim() + b2_.output_dim(); }
    std::size_t feature_dim() const { return b1_.feature_dim() + b2_.feature_dim(); }

    /// x: (N, C_1 + C_2, H, W) -> (N, D_1 + D_2).
    forward_result<T, cache_type> forward(const tensor<T>& x) {
        check_input(x);
        cache_type c;
        c.in = x.shape();
        auto r1 = b1_.forward(detail::take_channels(x, 0, opt_.groups[0]));
        auto r2 = b2_.forward(detail::take_channels(x, opt_.groups[0], opt_.groups[1]));
        c.c1 = std::move(r1.cache);
        c.c2 = std::move(r2.cache);
        return {concat_columns(r1.out, r2.out), std::move(c)};
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        check_output_grad(dy, c.in);
        const std::size_t d1 = b1_.output_dim();
        tensor<T> g1 = b1_.backward(c.c1, detail::take_columns(dy, 0, d1), need_input_grad);
        tensor<T> g2 = b2_.backward(c.c2, detail::take_columns(dy, d1, b2_.output_dim()), need_input_grad);
        return need_input_grad ? concat_channels(g1, g2, c.in) : tensor<T>{};
    }

    /// "half1.<name>" for every tap of half 1, then "half2.<name>".
    std::vector<std::string> tap_names() const {
        std::vector<std::string> v;
        for (const auto& n : b1_.tap_names()) v.push_back("half1." + n);
        for (const auto& n : b2_.tap_names()) v.push_back("half2." + n);
        return v;
    }

    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        check_input(x);
        tap_cache_type c;
        c.in = x.shape();
        std::array<std::vector<std::string>, 2> inner;
        for (const auto& n : names) {
            std::size_t k = 2;
            if (n.starts_with("half1.")) k = 0;
            if (n.starts_with("half2.")) k = 1;
            if (k == 2) {
                std::string valid;
                for (const auto& v : tap_names()) valid += (valid.empty() ? "" : ", ") + v;
                throw value_error("channel_split: no tap named '" + n +
                                  "' (tap names start with half1. or half2.); valid names: " + valid);
            }
            c.half.push_back(k);
            c.index.push_back(inner[k].size());
            inner[k].push_back(n.substr(6));
        }
        c.count = {inner[0].size(), inner[1].size()};
        auto r1 = b1_.forward_taps(detail::take_channels(x, 0, opt_.groups[0]), inner[0]);
        auto r2 = b2_.forward_taps(detail::take_channels(x, opt_.groups[0], opt_.groups[1]), inner[1]);
        std::vector<tensor<T>> taps;
        taps.reserve(names.size());
        for (std::size_t i = 0; i < names.size(); ++i) {
            taps.push_back(c.half[i] == 0 ? r1.taps[c.index[i]] : r2.taps[c.index[i]]);
            c.shapes.push_back(taps.back().shape());
        }
        c.c1 = std::move(r1.cache);
        c.c2 = std::move(r2.cache);
        return {concat_columns(r1.out, r2.out), std::move(c), std::move(taps)};
    }

    /// d_out (N, D_1 + D_2) or undefined; d_taps empty or one per requested tap.
    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        require<shape_error>(d_taps.empty() || d_taps.size() == c.half.size(), "channel_split: backward_taps got ",
                             d_taps.size(), " tap gradients for ", c.half.size(),
                             " requested taps (give none, or one per tap)");
        if (d_out.defined()) check_output_grad(d_out, c.in);
        std::array<std::vector<tensor<T>>, 2> inner{std::vector<tensor<T>>(c.count[0]),
                                                    std::vector<tensor<T>>(c.count[1])};
        std::array<bool, 2> any{d_out.defined(), d_out.defined()};
        for (std::size_t i = 0; i < d_taps.size(); ++i) {
            if (!d_taps[i].defined()) continue;
            require<shape_error>(d_taps[i].shape() == c.shapes[i], "channel_split: gradient for tap ", i,
                                 " has shape ", d_taps[i].shape().str(), ", the tap has ", c.shapes[i].str());
            inner[c.half[i]][c.index[i]] = d_taps[i];
            any[c.half[i]] = true;
        }
        const std::size_t d1 = b1_.output_dim();
        tensor<T> g1, g2;
        if (any[0])
            g1 = b1_.backward_taps(c.c1, d_out.defined() ? detail::take_columns(d_out, 0, d1) : tensor<T>{}, inner[0],
                                   need_input_grad);
        if (any[1])
            g2 = b2_.backward_taps(c.c2, d_out.defined() ? detail::take_columns(d_out, d1, b2_.output_dim()) : tensor<T>{},
                                   inner[1], need_input_grad);
        return need_input_grad ? concat_channels(g1, g2, c.in) : tensor<T>{};
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        b1_.for_each_parameter(f, join_name(prefix, "half1"));
        b2_.for_each_parameter(f, join_name(prefix, "half2"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix) {
        b1_.for_each_buffer(f, join_name(prefix, "half1"));
        b2_.for_each_buffer(f, join_name(prefix, "half2"));
    }
    void train(bool on) {
        b1_.train(on);
        b2_.train(on);
    }
    bool training() const { return b1_.training(); }

private:
    void check_input(const tensor<T>& x) const {
        require<shape_error>(x.rank() == 4 && x.dim(1) == opt_.groups[0] + opt_.groups[1], "channel_split: expected (N, ",
                             opt_.groups[0] + opt_.groups[1], ", H, W) images (", opt_.groups[0], " channels for half 1, ",
                             opt_.groups[1], " for half 2), got shape ", x.shape().str());
    }
    void check_output_grad(const tensor<T>& dy, const shape_t& in) const {
        require<shape_error>(dy.rank() == 2 && dy.dim(0) == in[0] && dy.dim(1) == output_dim(),
                             "channel_split: output gradient ", dy.shape().str(), " does not fit (", in[0], ", ",
                             output_dim(), ")");
    }
    static tensor<T> concat_columns(const tensor<T>& a, const tensor<T>& b) {
        require<shape_error>(a.rank() == 2 && b.rank() == 2 && a.dim(0) == b.dim(0),
                             "channel_split: the halves' outputs ", a.shape().str(), " and ", b.shape().str(),
                             " cannot be concatenated");
        const std::size_t N = a.dim(0), da = a.dim(1), db = b.dim(1);
        tensor<T> o({N, da + db});
        for (std::size_t i = 0; i < N; ++i) {
            std::copy(a.data() + i * da, a.data() + (i + 1) * da, o.data() + i * (da + db));
            std::copy(b.data() + i * db, b.data() + (i + 1) * db, o.data() + i * (da + db) + da);
        }
        return o;
    }
    /// [g1 | g2] over channels; an undefined part (no gradient reached that half) is zero.
    tensor<T> concat_channels(const tensor<T>& g1, const tensor<T>& g2, const shape_t& in) const {
        const std::size_t N = in[0], C = in[1], hw = in[2] * in[3], c1 = opt_.groups[0], c2 = opt_.groups[1];
        tensor<T> o = tensor<T>::zeros(in);
        for (std::size_t i = 0; i < N; ++i) {
            if (g1.defined()) std::copy(g1.data() + i * c1 * hw, g1.data() + (i + 1) * c1 * hw, o.data() + i * C * hw);
            if (g2.defined())
                std::copy(g2.data() + i * c2 * hw, g2.data() + (i + 1) * c2 * hw, o.data() + (i * C + c1) * hw);
        }
        return o;
    }

    options_type opt_{};
    Backbone b1_, b2_;
};

}  // namespace ssl
