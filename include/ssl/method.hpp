#pragma once
// The primary template every method alias instantiates:
//
//   ssl::method<Backbone, Augmentation, Head, Loss, TargetUpdate>
//
// One training step, whatever the paper:
//   views   = augmentation.make_views(images)             (+ pretext labels)
//   online  = head(backbone(view)) for every view         (caches kept)
//   targets = target_update.targets(views, ids)           (EMA copy, bank rows, labels, or none)
//   loss    = loss.compute(online, targets, labels)       (value + dL/d online)
//   backward through head and backbone for every view     (gradients accumulate)
// and after the optimizer's update, target_update.after_step(...); at the start
// of each epoch the trainer calls begin_epoch, which lets a target update
// recompute pseudo-labels over the whole data set and choose the sample order
// (target_update/protocol.hpp says what a target update may provide).
// Types choose the structure; the `config` struct chooses hyperparameters.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <string>
#include <vector>

#include "core/concepts.hpp"
#include "core/tensor.hpp"
#include "core/views.hpp"
#include "nn/parameter.hpp"
#include "target_update/protocol.hpp"

namespace ssl {

/// What the trainer tells a step.
struct step_context {
    std::uint64_t seed = 0;
    std::size_t epoch = 0;
    std::size_t step = 0;         ///< global step (0-based)
    std::size_t total_steps = 1;  ///< steps of the whole run (for schedules)
};

struct step_result {
    double loss = 0;
    std::vector<std::pair<std::string, double>> metrics;
};

template <class Backbone, class Augmentation, class Head, class Loss, class TargetUpdate>
class method {
    static_assert(backbone_policy<Backbone>,
                  "ssl::method: the first policy must be a backbone (ssl::backbone_policy concept: a layer with options_type "
                  "and output_dim(), e.g. ssl::resnet18<float>)");
    static_assert(augmentation_policy<Augmentation>,
                  "ssl::method: the second policy must be an augmentation (ssl::augmentation_policy concept: config_type, "
                  "make_views(images, ids, seed, epoch) -> view_batch<float>, eval_transform(images))");
    static_assert(head_policy<Head>,
                  "ssl::method: the third policy must be a head (ssl::head_policy concept: a layer built as Head(config, "
                  "in_features, seed) with out_features() and target_part())");
    static_assert(requires { typename TargetUpdate::config_type; typename TargetUpdate::template state<Backbone, Head>; },
                  "ssl::method: the fifth policy must be a target update (config_type and a nested "
                  "template state<Backbone, Head>, e.g. ssl::target::none or ssl::target::ema)");
    using target_state = typename TargetUpdate::template state<Backbone, Head>;
    static constexpr bool targets_take_ids =
        requires(target_state& s, const std::vector<tensor<float>>& v, std::span<const std::size_t> ids) {
            s.targets(v, ids);
        };
    static_assert(targets_take_ids ||
                      requires(target_state& s, const std::vector<tensor<float>>& v) { s.targets(v); },
                  "ssl::method: the target update's state needs targets(views, ids) (target_update/protocol.hpp)");
    static auto call_targets(target_state& s, const std::vector<tensor<float>>& v, std::span<const std::size_t> ids) {
        if constexpr (targets_take_ids)
            return s.targets(v, ids);
        else
            return s.targets(v);
    }
    using targets_type = decltype(call_targets(std::declval<target_state&>(), std::declval<const std::vector<tensor<float>>&>(),
                                               std::declval<std::span<const std::size_t>>()));
    static_assert(requires { typename Loss::config_type; },
                  "ssl::method: the fourth policy must be a loss (ssl::loss_policy concept: config_type and "
                  "compute(online, targets, labels) -> loss_output<float>)");
    static_assert(loss_policy<Loss, targets_type>,
                  "ssl::method: the loss cannot take what the target update provides (ssl::loss_policy concept): "
                  "Loss::compute(online, targets, labels) must accept the type the target state's targets(views, "
                  "ids) returns and give a loss_output<float>");
    static_assert(std::is_same_v<typename Backbone::value_type, float>,
                  "ssl::method trains in float; double backbones are for gradient checks");

public:
    using backbone_type = Backbone;
    using augmentation_type = Augmentation;
    using head_type = Head;
    using loss_type = Loss;
    using target_type = TargetUpdate;
    using T = float;

    struct config {
        typename Backbone::options_type backbone{};
        typename Augmentation::config_type augment{};
        typename Head::config_type head{};
        typename Loss::config_type loss{};
        typename TargetUpdate::config_type target{};
    };

    explicit method(const config& c = {})
        : cfg_(c),
          backbone_(c.backbone),
          augment_(c.augment),
          head_(c.head, backbone_.output_dim(), c.backbone.seed + 4242),
          loss_(c.loss),
          target_(c.target, backbone_, head_) {}

    const config& cfg() const noexcept { return cfg_; }
    Backbone& backbone() noexcept { return backbone_; }
    Head& head() noexcept { return head_; }
    const Augmentation& augmentation() const noexcept { return augment_; }
    const Loss& loss() const noexcept { return loss_; }
    auto& target() noexcept { return target_; }

    /// Forward and backward of one batch: gradients are added into the
    /// parameters (call the optimizer after, then after_step).
    step_result train_step(const tensor<float>& images, std::span<const std::size_t> ids, const step_context& ctx) {
        view_batch<float> vb = augment_.make_views(images, ids, ctx.seed, ctx.epoch);
        require(!vb.views.empty(), "method: the augmentation made no views");
        backbone_.train(true);
        head_.train(true);
        std::vector<typename Backbone::cache_type> bc;
        std::vector<typename Head::cache_type> hc;
        std::vector<tensor<float>> online;
        bc.reserve(vb.views.size());
        hc.reserve(vb.views.size());
        for (const auto& v : vb.views) {
            auto b = backbone_.forward(v);
            auto h = head_.forward(b.out);
            bc.push_back(std::move(b.cache));
            hc.push_back(std::move(h.cache));
            online.push_back(std::move(h.out));
        }
        // A diverged network gives non-finite outputs: report a NaN loss (the
        // trainer stops and names the step) instead of an error from deep
        // inside the loss.
        for (const auto& o : online)
            for (float v : o)
                if (!std::isfinite(v)) return {std::numeric_limits<double>::quiet_NaN(), {}};
        targets_type targets = call_targets(target_, vb.views, ids);
        loss_output<float> lo = loss_.compute(online, targets, vb.labels);
        require(lo.grads.size() == online.size(), "method: the loss returned ", lo.grads.size(),
                " gradients for ", online.size(), " views");
        step_result r{lo.value, std::move(lo.metrics)};
        last_ids_.assign(ids.begin(), ids.end());
        last_online_ = std::move(online);
        if (!std::isfinite(lo.value)) return r;  // the trainer stops; nothing is backpropagated
        for (std::size_t i = 0; i < last_online_.size(); ++i) {
            if (!lo.grads[i].defined()) continue;  // a view the loss does not differentiate
            backbone_.backward(bc[i], head_.backward(hc[i], lo.grads[i]), false);
        }
        return r;
    }

    /// After the optimizer's update: EMA targets follow, banks store the
    /// batch's features, queues enqueue its keys, ...
    void after_step(const step_context& ctx) {
        if constexpr (requires(const target_step<float>& s) { target_.after_step(backbone_, head_, s); }) {
            const target_step<float> s{ctx.step, ctx.total_steps, ctx.epoch, last_ids_, &last_online_};
            target_.after_step(backbone_, head_, s);
        } else {
            target_.after_step(backbone_, head_, ctx.step, ctx.total_steps);
        }
    }

    /// Called by the trainer before the first batch of every epoch: a target
    /// update that recomputes pseudo-labels, re-initialises a head or picks
    /// the sample order does it here (target_update/protocol.hpp). Targets without
    /// begin_epoch get an empty plan.
    epoch_plan begin_epoch(const data::image_dataset& data, std::size_t epoch, std::uint64_t seed,
                           bool resumed_mid_epoch = false) {
        if constexpr (requires(epoch_context<Backbone, Head>& c) { target_.begin_epoch(c); }) {
            epoch_context<Backbone, Head> c{backbone_, head_, cfg_.head, backbone_.output_dim(), data, epoch, seed,
                                            resumed_mid_epoch,
                                            [this](const tensor<float>& x) { return augment_.eval_transform(x); }};
            return target_.begin_epoch(c);
        } else {
            return {};
        }
    }

    /// Backbone features of images (N, C, H, W) in [0, 1], in eval mode, in
    /// chunks of `chunk` images: (N, output_dim()).
    tensor<float> embed(const tensor<float>& images, std::size_t chunk = 512) {
        check_rank(images, 4, "method::embed", "(N, C, H, W)");
        require(chunk > 0, "method::embed: chunk must be positive");
        const bool was = backbone_.training();
        backbone_.train(false);
        const std::size_t n = images.dim(0), d = backbone_.output_dim();
        tensor<float> out({n, d});
        for (std::size_t b = 0; b < n; b += chunk) {
            const std::size_t e = std::min(n, b + chunk);
            auto x = augment_.eval_transform(images.slice(b, e));
            auto f = backbone_.forward(x).out;
            std::copy(f.begin(), f.end(), out.data() + b * d);
        }
        backbone_.train(was);
        return out;
    }

    /// embed() for xtensor users: images (N, C, H, W) in [0, 1] in, features
    /// (N, output_dim()) out, both as xtensor arrays.
    xt::xtensor<float, 2> embed(const xt::xtensor<float, 4>& images, std::size_t chunk = 512) {
        return to_xtensor<2>(embed(from_xtensor<float>(images), chunk));
    }

    /// Trainable parameters: "backbone.*", "head.*", and "target.*" when the
    /// target update owns some (an instance classifier's weight shards).
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        backbone_.for_each_parameter(f, join_name(prefix, "backbone"));
        head_.for_each_parameter(f, join_name(prefix, "head"));
        if constexpr (requires { target_.for_each_parameter(f, prefix); })
            target_.for_each_parameter(f, join_name(prefix, "target"));
    }
    /// Buffers, including the target's state ("target.*"), for checkpoints.
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix) {
        backbone_.for_each_buffer(f, join_name(prefix, "backbone"));
        head_.for_each_buffer(f, join_name(prefix, "head"));
        target_.for_each_state(f, join_name(prefix, "target"));
    }
    void train(bool on) {
        backbone_.train(on);
        head_.train(on);
    }
    bool training() const noexcept { return backbone_.training(); }

private:
    config cfg_;
    Backbone backbone_;
    Augmentation augment_;
    Head head_;
    Loss loss_;
    target_state target_;
    std::vector<std::size_t> last_ids_;       // the last step's batch, for after_step
    std::vector<tensor<float>> last_online_;  // and its online outputs
};

}  // namespace ssl
