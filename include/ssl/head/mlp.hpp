#pragma once
// Heads: what sits on the backbone's pooled features.
//   mlp                  linear - bn1d - relu - linear [- bn1d] (SimCLR's projector,
//                        BYOL's projector and predictor); the optional batch
//                        norm on the output is SimCLR's reference code's
//                        (google-research/simclr model_util.projection_head:
//                        the last layer has no bias and a batch norm)
//   projector_predictor  BYOL's online head: mlp projector then mlp predictor;
//                        its target part (what an EMA copies) is the projector
//   linear_classifier    one linear layer (RotNet's 4-way classifier)
// Each head is built from a config and the width of its input:
//   Head(config, in_features, seed); out_features(); target_part()
#include <string>

#include "../nn/activation.hpp"
#include "../nn/batch_norm.hpp"
#include "../nn/linear.hpp"
#include "../nn/sequential.hpp"

namespace ssl::head {

struct mlp_config {
    std::size_t hidden = 2048;
    std::size_t out = 128;
    bool batch_norm = true;          ///< BN after the hidden linear layer (SimCLR v2, BYOL)
    bool output_batch_norm = false;  ///< BN on the output, the last linear layer then without bias (SimCLR's code)
};

template <class T = float>
class mlp {
    using stack = nn::sequential<nn::linear<T>, nn::batch_norm1d<T>, nn::relu<T>, nn::linear<T>>;

public:
    using value_type = T;
    using config_type = mlp_config;
    struct cache_type {
        typename stack::cache_type net;
        typename nn::batch_norm1d<T>::cache_type out_bn;  ///< empty without output_batch_norm
    };

    mlp() = default;
    mlp(const mlp_config& c, std::size_t in_features, std::uint64_t seed = 0) : cfg_(c) {
        require(in_features > 0 && c.hidden > 0 && c.out > 0, "head::mlp: sizes must be positive, got in=",
                in_features, " hidden=", c.hidden, " out=", c.out);
        // Without batch norm the hidden linear layer has a bias and the BN is
        // an identity that is skipped in forward/backward.
        net_ = stack(nn::linear<T>({in_features, c.hidden, !c.batch_norm}, seed),
                     nn::batch_norm1d<T>({c.hidden}), nn::relu<T>{},
                     nn::linear<T>({c.hidden, c.out, !c.output_batch_norm}, seed + 1));
        // Affine (scale and shift, as lightly's head); SimCLR's code learns the scale only.
        if (c.output_batch_norm) out_bn_ = nn::batch_norm1d<T>({c.out});
    }
    const mlp_config& config() const noexcept { return cfg_; }
    std::size_t out_features() const noexcept { return cfg_.out; }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        cache_type c;
        auto y = forward_stack(x, c.net);
        if (!cfg_.output_batch_norm) return {std::move(y), std::move(c)};
        auto b = out_bn_.forward(y);
        c.out_bn = std::move(b.cache);
        return {std::move(b.out), std::move(c)};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        if (!cfg_.output_batch_norm) return backward_stack(c.net, dy);
        return backward_stack(c.net, out_bn_.backward(c.out_bn, dy));
    }
    /// Names as a torch nn.Sequential of the layers used: 0 linear, 1 bn, 3
    /// linear, 4 output bn (2, the ReLU, has none).
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        if (cfg_.batch_norm) {
            net_.for_each_parameter(f, p);
        } else {
            net_.template get<0>().for_each_parameter(f, join_name(p, "0"));
            net_.template get<3>().for_each_parameter(f, join_name(p, "3"));
        }
        if (cfg_.output_batch_norm) out_bn_.for_each_parameter(f, join_name(p, "4"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        if (cfg_.batch_norm) net_.for_each_buffer(f, p);
        if (cfg_.output_batch_norm) out_bn_.for_each_buffer(f, join_name(p, "4"));
    }
    void train(bool on) {
        net_.train(on);
        out_bn_.train(on);
    }
    bool training() const noexcept { return net_.training(); }
    /// The part an EMA target copies: the whole MLP.
    mlp& target_part() noexcept { return *this; }
    using target_type = mlp;

private:
    tensor<T> forward_stack(const tensor<T>& x, typename stack::cache_type& c) {
        if (cfg_.batch_norm) {
            auto r = net_.forward(x);
            c = std::move(r.cache);
            return std::move(r.out);
        }
        auto a = net_.template get<0>().forward(x);
        auto r = net_.template get<2>().forward(a.out);
        auto b = net_.template get<3>().forward(r.out);
        std::get<0>(c) = std::move(a.cache);
        std::get<2>(c) = std::move(r.cache);
        std::get<3>(c) = std::move(b.cache);
        return std::move(b.out);
    }
    tensor<T> backward_stack(const typename stack::cache_type& c, const tensor<T>& dy) {
        if (cfg_.batch_norm) return net_.backward(c, dy);
        auto g = net_.template get<3>().backward(std::get<3>(c), dy);
        g = net_.template get<2>().backward(std::get<2>(c), g);
        return net_.template get<0>().backward(std::get<0>(c), g);
    }

    mlp_config cfg_{};
    stack net_;
    nn::batch_norm1d<T> out_bn_{};  ///< used with output_batch_norm only
};

struct projector_predictor_config {
    mlp_config projector{4096, 256, true};
    mlp_config predictor{4096, 256, true};
};

/// BYOL's online head: q(g(y)). The EMA target copies only the projector g.
template <class T = float>
class projector_predictor {
public:
    using value_type = T;
    using config_type = projector_predictor_config;
    using target_type = mlp<T>;
    struct cache_type {
        typename mlp<T>::cache_type proj, pred;
    };

    projector_predictor() = default;
    projector_predictor(const config_type& c, std::size_t in_features, std::uint64_t seed = 0)
        : projector_(c.projector, in_features, seed), predictor_(c.predictor, c.projector.out, seed + 10) {
        require(c.predictor.out == c.projector.out, "head::projector_predictor: the predictor must map back to the "
                "projection size (projector.out = ", c.projector.out, ", predictor.out = ", c.predictor.out, ")");
    }
    std::size_t out_features() const noexcept { return predictor_.out_features(); }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        auto a = projector_.forward(x);
        auto b = predictor_.forward(a.out);
        return {std::move(b.out), cache_type{std::move(a.cache), std::move(b.cache)}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        return projector_.backward(c.proj, predictor_.backward(c.pred, dy));
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        projector_.for_each_parameter(f, join_name(p, "projector"));
        predictor_.for_each_parameter(f, join_name(p, "predictor"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        projector_.for_each_buffer(f, join_name(p, "projector"));
        predictor_.for_each_buffer(f, join_name(p, "predictor"));
    }
    void train(bool on) {
        projector_.train(on);
        predictor_.train(on);
    }
    bool training() const noexcept { return projector_.training(); }
    mlp<T>& target_part() noexcept { return projector_; }

private:
    mlp<T> projector_;
    mlp<T> predictor_;
};

struct linear_classifier_config {
    std::size_t classes = 4;
};

/// A single linear layer to `classes` logits.
template <class T = float>
class linear_classifier : public nn::linear<T> {
public:
    using config_type = linear_classifier_config;
    using target_type = linear_classifier;
    linear_classifier() = default;
    linear_classifier(const config_type& c, std::size_t in_features, std::uint64_t seed = 0)
        : nn::linear<T>({in_features, c.classes, true}, seed) {
        require(c.classes >= 2, "head::linear_classifier: needs at least 2 classes, got ", c.classes);
    }
    std::size_t out_features() const noexcept { return this->config().out_features; }
    linear_classifier& target_part() noexcept { return *this; }
};

}  // namespace ssl::head
