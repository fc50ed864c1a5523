#pragma once
// The primary template every method alias instantiates:
//
//   ssl::method<Backbone, Augmentation, Head, Loss, TargetUpdate>
//
// One training step, whatever the paper:
//   views   = augmentation.make_views(images)   view batch: views, specs (row maps, branches), targets
//   online  = head(backbone(view), spec) per view (caches kept; head/view_aware.hpp);
//             a head that reads taps (head/tap_reading.hpp) gets the maps it names instead
//             (backbone.forward_taps), and its gradients go back through backward_taps
//   batch   = target_update.targets(input)      EMA outputs, bank rows, pseudo-labels, or nothing
//   loss    = loss.compute(online, batch, views) value + dL/d online per view
//   backward through head and backbone per view (gradients accumulate)
// train_step returns the step's outcome with the target batch in it; after the
// optimizer's update, after_step hands that batch back to the target update,
// which consumes it (target_update/protocol.hpp). begin_epoch runs before
// every epoch. The method keeps no state between the phases.
// Types choose the structure; the `config` struct chooses hyperparameters.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <string>
#include <vector>

#include "backbone/taps.hpp"
#include "core/concepts.hpp"
#include "core/tensor.hpp"
#include "core/views.hpp"
#include "dist/communicator.hpp"
#include "head/tap_reading.hpp"
#include "head/view_aware.hpp"
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

namespace detail {
/// The backbone's per-view cache: the tap cache when the head reads taps.
template <class B, bool Taps>
struct backbone_cache {
    using type = typename B::cache_type;
};
template <class B>
struct backbone_cache<B, true> {
    using type = typename B::tap_cache_type;
};
}  // namespace detail

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
    static_assert(target_policy<TargetUpdate, Backbone, Head>,
                  "ssl::method: the fifth policy must be a target update (ssl::target_policy concept: config_type and "
                  "a nested state<Backbone, Head> with targets(target_input) -> batch, after_step(backbone, head, "
                  "batch&&, target_step) -> target_request and for_each_state; e.g. ssl::target::none or "
                  "ssl::target::ema; target_update/protocol.hpp)");
    using target_state = typename TargetUpdate::template state<Backbone, Head>;
    using targets_type = std::remove_cvref_t<decltype(std::declval<target_state&>().targets(
        std::declval<const target_input<float>&>()))>;
    static_assert(requires { typename Loss::config_type; },
                  "ssl::method: the fourth policy must be a loss (ssl::loss_policy concept: config_type and "
                  "compute(online, targets, view_batch) -> loss_output<float>)");
    static_assert(loss_policy<Loss, targets_type>,
                  "ssl::method: the loss cannot take what the target update provides (ssl::loss_policy concept): "
                  "Loss::compute(online, targets, view_batch) must accept the batch the target state's "
                  "targets(target_input) returns and give a loss_output<float>");
    static_assert(!head::tap_reading<Head> || tapped_backbone<Backbone>,
                  "ssl::method: the head reads backbone taps (tap_names(), forward_taps), so the backbone must "
                  "have them (ssl::tapped_backbone: forward_taps, backward_taps, tap_names; backbone/taps.hpp)");
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
          loss_(make_loss(c.loss, head_)),
          target_(c.target, backbone_, head_) {}

    const config& cfg() const noexcept { return cfg_; }
    Backbone& backbone() noexcept { return backbone_; }
    Head& head() noexcept { return head_; }
    const Augmentation& augmentation() const noexcept { return augment_; }
    const Loss& loss() const noexcept { return loss_; }
    Loss& loss() noexcept { return loss_; }
    auto& target() noexcept { return target_; }

    /// What train_step hands back: the loss, its metrics, and the step's
    /// target batch, which after_step consumes.
    struct step_outcome : step_result {
        targets_type targets{};
    };

    /// Forward and backward of one batch: gradients are added into the
    /// parameters. Then call the optimizer, then after_step(outcome).
    /// `classes`: the samples' class labels (N, -1 unknown) or empty; they
    /// reach the loss in view_batch::classes.
    step_outcome train_step(const tensor<float>& images, std::span<const std::size_t> ids, const step_context& ctx,
                            std::span<const std::int64_t> classes = {}) {
        view_batch<float> vb = augment_.make_views(images, ids, ctx.seed, ctx.epoch);
        require<shape_error>(classes.empty() || classes.size() == ids.size(), "method: ", classes.size(),
                             " class labels for ", ids.size(), " samples");
        vb.ids.assign(ids.begin(), ids.end());
        vb.classes.assign(classes.begin(), classes.end());
        vb.validate(ids.size());
        backbone_.train(true);
        head_.train(true);
        // A head that reads taps (hypercolumns) sees the backbone's maps
        // named by its tap_names(); every other head the pooled features.
        constexpr bool reads_taps = head::tap_reading<Head>;
        std::vector<typename detail::backbone_cache<Backbone, reads_taps>::type> bc;
        std::vector<typename Head::cache_type> hc;
        std::vector<tensor<float>> online;
        bc.reserve(vb.views.size());
        hc.reserve(vb.views.size());
        for (std::size_t v = 0; v < vb.views.size(); ++v) {
            if constexpr (reads_taps) {
                const auto& tn = head_.tap_names();  // once: a head may return its names by value
                std::vector<std::string> names(tn.begin(), tn.end());
                auto b = backbone_.forward_taps(vb.views[v], names);
                auto h = head_.forward_taps(b.taps, vb.spec(v), ids.size());
                bc.push_back(std::move(b.cache));
                hc.push_back(std::move(h.cache));
                online.push_back(std::move(h.out));
            } else {
                auto b = backbone_.forward(vb.views[v]);
                auto h = head::forward_view(head_, b.out, vb.spec(v), ids.size());
                bc.push_back(std::move(b.cache));
                hc.push_back(std::move(h.cache));
                online.push_back(std::move(h.out));
            }
        }
        step_outcome r;
        // A diverged network gives non-finite outputs: report a NaN loss (the
        // trainer stops and names the step) instead of an error from deep
        // inside the loss.
        bool bad = false;
        for (const auto& o : online)
            for (float v : o) bad = bad || !std::isfinite(v);
        // data parallel: every rank leaves at the same point (the loss and the
        // backward hold collectives a rank that left would never join)
        if (dist::communicator* c = dist::active()) bad = c->max(static_cast<std::int32_t>(bad)) != 0;
        if (bad) {
            r.loss = std::numeric_limits<double>::quiet_NaN();
            return r;
        }
        r.targets = target_.targets(target_input<float>{vb, online, ctx.step, ctx.total_steps, ctx.epoch});
        loss_output<float> lo = loss_.compute(online, r.targets, vb);
        require(lo.grads.size() == online.size(), "method: the loss returned ", lo.grads.size(),
                " gradients for ", online.size(), " views");
        r.loss = lo.value;
        r.metrics = std::move(lo.metrics);
        bool bad_loss = !std::isfinite(lo.value);
        if (dist::communicator* c = dist::active()) bad_loss = c->max(static_cast<std::int32_t>(bad_loss)) != 0;
        if (bad_loss) {  // the trainer stops; nothing is backpropagated
            if (std::isfinite(r.loss)) r.loss = std::numeric_limits<double>::quiet_NaN();
            return r;
        }
        for (std::size_t i = 0; i < online.size(); ++i) {
            if (!lo.grads[i].defined()) continue;  // a view the loss does not differentiate
            if constexpr (reads_taps)
                backbone_.backward_taps(bc[i], tensor<float>{}, head_.backward_taps(hc[i], lo.grads[i]), false);
            else
                backbone_.backward(bc[i], head_.backward(hc[i], lo.grads[i]), false);
        }
        return r;
    }

    /// After the optimizer's update: the target update consumes the step's
    /// batch (EMA targets follow, banks store the batch's features, queues
    /// enqueue its keys). A target that asks for a pass over the data set
    /// (SeLa's label update) gets it over `data`, the training set.
    /// `ranks` (data parallel): the pass is split over them (epoch_context::ranks).
    void after_step(step_outcome&& outcome, const step_context& ctx, const data::image_dataset* data = nullptr,
                    dist::communicator* ranks = nullptr) {
        const target_step s{ctx.step, ctx.total_steps, ctx.epoch};
        const target_request req = target_.after_step(backbone_, head_, std::move(outcome.targets), s);
        if (!req.data_pass) return;
        if constexpr (requires(epoch_context<Backbone, Head>& c) { target_.data_pass(c, s); }) {
            require(data != nullptr, "method::after_step: the target update asks for a pass over the training set at step ", ctx.step + 1,
                    "; pass the data set to after_step (ssl::trainer does)");
            auto c = context(*data, ctx.epoch, ctx.seed, false);
            c.ranks = ranks;
            target_.data_pass(c, s);
        } else {
            throw error(detail::cat("method::after_step: the target update asked for a data pass but has no data_pass(epoch_context&, target_step)"));
        }
    }

    /// Model parallelism inside a data-parallel run: a loss or target update
    /// holding a layer too large to replicate (the instance classifier's
    /// shards) keeps only this rank's part of it and computes over c's ranks.
    /// The trainer calls it on P > 1 ranks before the optimizer attaches the
    /// parameters.
    void distribute(dist::communicator& c) {
        if constexpr (requires { loss_.distribute(c); }) loss_.distribute(c);
        if constexpr (requires { target_.distribute(c); }) target_.distribute(c);
    }
    /// Whether distribute() splits anything (a policy has a distribute()).
    static constexpr bool splits_over_ranks =
        requires(Loss& l, dist::communicator& c) { l.distribute(c); } ||
        requires(target_state& t, dist::communicator& c) { t.distribute(c); };

    /// Called by the trainer before the first batch of every epoch: the
    /// target update may recompute pseudo-labels, choose the sample order and
    /// ask for the head to be re-initialised; a loss with per-instance
    /// weights may initialise them (target_update/protocol.hpp). The plan's
    /// reset_optimizer_state names the parameters that were re-initialised.
    /// `ranks` (data parallel): the passes over the data set that can be
    /// split are split over these ranks (epoch_context::ranks).
    epoch_plan begin_epoch(const data::image_dataset& data, std::size_t epoch, std::uint64_t seed,
                           bool resumed_mid_epoch = false, dist::communicator* ranks = nullptr) {
        auto c = context(data, epoch, seed, resumed_mid_epoch);
        c.ranks = ranks;
        epoch_plan plan;
        if constexpr (requires { target_.begin_epoch(c); }) plan = target_.begin_epoch(c);
        plan.reset_optimizer_state.clear();
        if (plan.reinit_head) {
            head_ = Head(cfg_.head, backbone_.output_dim(), *plan.reinit_head);
            plan.reset_optimizer_state.push_back("head");
        }
        if (plan.reset_own_parameters) plan.reset_optimizer_state.push_back("target");
        if constexpr (requires { loss_.begin_epoch(c); }) {
            epoch_plan lp = loss_.begin_epoch(c);
            require(!lp.order && !lp.reinit_head, "method::begin_epoch: only the target update chooses the sample "
                    "order or re-initialises the head; the loss asked for it");
            if (lp.reset_own_parameters) plan.reset_optimizer_state.push_back("loss");
        }
        return plan;
    }

    /// Rows per image of the augmentation's eval_transform: 1, or its
    /// eval_copies() when it evaluates each image as several copies (CPC's
    /// patch grid; row r * N + i is copy r of image i, as in a view).
    std::size_t eval_copies() const {
        if constexpr (requires { augment_.eval_copies(); }) {
            const std::size_t c = augment_.eval_copies();
            require(c >= 1, "method: the augmentation evaluates each image as 0 copies");
            return c;
        } else {
            return 1;
        }
    }

    /// Backbone features of images (N, C, H, W) in [0, 1], in eval mode, in
    /// chunks of `chunk` images: (N, output_dim()). With an augmentation that
    /// evaluates each image as c copies (eval_copies()), an image's features
    /// are the mean of its copies' (chunks of about chunk * 4 / c images).
    tensor<float> embed(const tensor<float>& images, std::size_t chunk = 512) {
        check_rank(images, 4, "method::embed", "(N, C, H, W)");
        require(chunk > 0, "method::embed: chunk must be positive");
        const std::size_t copies = eval_copies();
        if (copies > 1) chunk = std::max<std::size_t>(1, chunk * 4 / copies);
        const bool was = backbone_.training();
        backbone_.train(false);
        const std::size_t n = images.dim(0), d = backbone_.output_dim();
        tensor<float> out({n, d});
        for (std::size_t b = 0; b < n; b += chunk) {
            const std::size_t e = std::min(n, b + chunk), m = e - b;
            auto x = augment_.eval_transform(images.slice(b, e));
            auto f = backbone_.forward(x).out;
            require<shape_error>(f.rank() == 2 && f.dim(0) == copies * m && f.dim(1) == d, "method::embed: ", m,
                                 " images as ", copies, " copies each gave features of shape ", f.shape().str());
            if (copies == 1) {
                std::copy(f.begin(), f.end(), out.data() + b * d);
                continue;
            }
            const double inv = 1.0 / static_cast<double>(copies);
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t k = 0; k < d; ++k) {
                    double s = 0;
                    for (std::size_t r = 0; r < copies; ++r) s += static_cast<double>(f.data()[(r * m + i) * d + k]);
                    out.data()[(b + i) * d + k] = static_cast<float>(s * inv);
                }
        }
        backbone_.train(was);
        return out;
    }

    /// embed() for xtensor users: images (N, C, H, W) in [0, 1] in, features
    /// (N, output_dim()) out, both as xtensor arrays.
    xt::xtensor<float, 2> embed(const xt::xtensor<float, 4>& images, std::size_t chunk = 512) {
        return to_xtensor<2>(embed(from_xtensor<float>(images), chunk));
    }

    /// Trainable parameters: "backbone.*", "head.*", and "target.*" and
    /// "loss.*" (an instance classifier's weight shards) when those policies
    /// own some.
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        backbone_.for_each_parameter(f, join_name(prefix, "backbone"));
        head_.for_each_parameter(f, join_name(prefix, "head"));
        if constexpr (requires { target_.for_each_parameter(f, prefix); })
            target_.for_each_parameter(f, join_name(prefix, "target"));
        if constexpr (requires { loss_.for_each_parameter(f, prefix); })
            loss_.for_each_parameter(f, join_name(prefix, "loss"));
    }
    /// Buffers and policy state ("target.*", "loss.*"), for checkpoints.
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix) {
        backbone_.for_each_buffer(f, join_name(prefix, "backbone"));
        head_.for_each_buffer(f, join_name(prefix, "head"));
        target_.for_each_state(f, join_name(prefix, "target"));
        if constexpr (requires { loss_.for_each_state(f, prefix); }) loss_.for_each_state(f, join_name(prefix, "loss"));
    }
    void train(bool on) {
        backbone_.train(on);
        head_.train(on);
    }
    bool training() const noexcept { return backbone_.training(); }

private:
    /// A loss that owns per-class weights (loss::instance_classifier) takes
    /// the head's output width; every other loss its config alone.
    static Loss make_loss(const typename Loss::config_type& c, Head& h) {
        if constexpr (requires { Loss(c, h.out_features()); })
            return Loss(c, h.out_features());
        else
            return Loss(c);
    }
    epoch_context<Backbone, Head> context(const data::image_dataset& data, std::size_t epoch, std::uint64_t seed,
                                          bool resumed_mid_epoch) {
        return {backbone_, head_, backbone_.output_dim(), data, epoch, seed, resumed_mid_epoch,
                [this](const tensor<float>& x) {
                    // passes over the data set read one row per image
                    require(eval_copies() == 1, "method: a pass over the data set (target update, loss) needs one "
                            "row per image, but the augmentation evaluates each image as ", eval_copies(),
                            " copies (method::embed averages them)");
                    return augment_.eval_transform(x);
                }};
    }

    config cfg_;
    Backbone backbone_;
    Augmentation augment_;
    Head head_;
    Loss loss_;
    target_state target_;
};

}  // namespace ssl
