#pragma once
// Target update by optimal-transport self-labelling: SeLa (Asano, Rupprecht,
// Vedaldi, "Self-labelling via simultaneous clustering and representation
// learning", ICLR 2020).
//
// The labels Q of all N images solve the equal-cluster transport problem (eq. 5-7)
//     max_Q <Q, log P> + 1/lambda H(Q)  s.t. Q 1 = 1/N, Q^T 1 = 1/K,
// with P the softmax of the head's outputs over the whole data set (eval mode,
// eval transform), by Sinkhorn-Knopp on P^lambda (cluster/sinkhorn.hpp); each
// image's label is the arg-max of its row of Q. With H heads
// (head::multi_classifier, output (B, H*K)) each head is labelled from its own
// log-softmax block (sec. 3.4); the loss is the mean of the heads' cross
// entropies (loss::pseudo_label_classification).
// Schedule: update i of L = `updates` at global step s_i = floor(T (i / L)^2),
// i = 0 .. L-1 (T = steps of the run; duplicates merged: sinkhorn_schedule).
// Update 0 runs in begin_epoch of epoch 0; one due at step s > 0 is requested by
// after_step of step s-1 (target_request::data_pass, after the optimizer) and
// runs in data_pass over the data set the method passes, so step s trains on
// the new labels. Nothing is cached between the phases; a loop that does not
// hand the data set to method::after_step gets an error naming the step.
// Checkpoints: "target.labels", int64 (H, N), or (N) with one head; a resumed
// run continues the same schedule (a function of the global step). Set
// config.instances to the data-set size, as for target::cluster_reassignment.
//
// Choices:
//  - lambda 25, error checked every 10 rounds down to 0.1, in double: the
//    reference's settings (the error is cluster/sinkhorn.hpp's per-cluster one).
//  - Quadratic spacing, dense early when the representation changes fastest (the
//    reference: (i / (L-1))^2 of the images seen); here the last is at
//    ((L-1)/L)^2 of the run, so all L fall inside training.
//  - Update 0 at step 0: the network never trains on unoptimised labels (the
//    reference re-optimises its random labels at once); random_initial_labels =
//    true keeps random balanced labels until update 1, as the paper describes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../cluster/sinkhorn.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../eval/metrics.hpp"
#include "../loss/cluster_losses.hpp"
#include "../nn/parameter.hpp"
#include "cluster.hpp"
#include "../ops/rows.hpp"
#include "protocol.hpp"

namespace ssl::target {

/// The global steps at which SeLa re-optimises its labels: floor(T (i/L)^2)
/// for i = 0..L-1, increasing, duplicates merged (L = updates, T = total_steps).
inline std::vector<std::size_t> sinkhorn_schedule(std::size_t updates, std::size_t total_steps) {
    std::vector<std::size_t> s;
    for (std::size_t i = 0; i < updates; ++i) {
        const double r = static_cast<double>(i) / static_cast<double>(updates);
        const auto step = static_cast<std::size_t>(std::floor(static_cast<double>(total_steps) * r * r));
        if (s.empty() || step > s.back()) s.push_back(step);
    }
    return s;
}

struct sinkhorn_labels_config {
    std::size_t updates = 5;   ///< L label optimisations over the run (SeLa: 100 over 200 ImageNet epochs, one per epoch on CIFAR)
    double lambda = 25;        ///< the transport problem's lambda (SeLa: 25)
    double tolerance = 0.1;    ///< marginal error at which Sinkhorn-Knopp stops (SeLa: 0.1)
    std::size_t heads = 1;     ///< used only when the head does not say (head::multi_classifier does)
    std::size_t instances = 0; ///< data-set size (see target_update/cluster.hpp); 0: from the data set
    bool random_initial_labels = false;  ///< train on random balanced labels until update 1
    std::size_t chunk = 256;   ///< images per forward when computing head outputs
};

/// What the last label update found.
struct label_update_stats {
    std::size_t step = 0;
    double error = 0;                ///< the largest Sinkhorn-Knopp marginal error over the heads
    bool converged = true;           ///< every head reached the tolerance
    std::optional<double> nmi_prev;  ///< NMI of head 0's labels with the previous ones
};

struct sinkhorn_labels {
    using config_type = sinkhorn_labels_config;
    static constexpr const char* name = "sinkhorn_labels";
    /// dist/data_parallel.hpp: the pass over the data set split over the ranks
    /// (epoch_context::features / head_outputs), the clustering run on every
    /// rank on the same features and rank 0's labels broadcast.
    static constexpr bool data_parallel = true;

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;

        state(const sinkhorn_labels_config& c, Backbone&, Head& h) : cfg_(c) {
            require(c.updates >= 1, "target::sinkhorn_labels: updates must be at least 1");
            require(c.lambda > 0 && std::isfinite(c.lambda), "target::sinkhorn_labels: lambda must be positive, got ",
                    c.lambda);
            require(c.tolerance > 0, "target::sinkhorn_labels: tolerance must be positive, got ", c.tolerance);
            require(c.chunk >= 1, "target::sinkhorn_labels: chunk must be positive");
            if constexpr (requires { h.heads(); })
                heads_ = h.heads();
            else
                heads_ = c.heads;
            require(heads_ >= 1, "target::sinkhorn_labels: needs at least 1 head");
            require(h.out_features() % heads_ == 0, "target::sinkhorn_labels: the head's ", h.out_features(),
                    " outputs do not split into ", heads_, " heads");
            k_ = h.out_features() / heads_;
            require(k_ >= 2, "target::sinkhorn_labels: needs at least 2 classes per head, got ", k_);
            labels_.allocate(heads_, c.instances);
        }
        const sinkhorn_labels_config& config() const noexcept { return cfg_; }
        std::size_t heads() const noexcept { return heads_; }
        std::size_t classes() const noexcept { return k_; }
        /// (H, N) labels, or (N) with one head; -1 before the first update.
        const tensor<std::int64_t>& labels() const noexcept { return labels_.t; }
        const std::optional<label_update_stats>& last_update() const noexcept { return stats_; }
        std::size_t updates_done() const noexcept { return updates_done_; }

        epoch_plan begin_epoch(epoch_context<Backbone, Head>& ctx) {
            labels_.ensure(heads_, ctx.data.size(), "target::sinkhorn_labels", ctx.data.name);
            if (ctx.epoch == 0 && !ctx.resumed_mid_epoch) {
                if (cfg_.random_initial_labels)
                    random_labels(ctx.seed);
                else
                    update(ctx, 0);
            }
            require(labels_.assigned(), "target::sinkhorn_labels: epoch ", ctx.epoch + 1,
                    " starts without labels (a run must start at epoch 1, or resume from a checkpoint that has them)");
            return {};
        }

        /// The batch's labels for every head.
        loss::pseudo_label_targets targets(const target_input<T>& in) { return targets(in.views(), in.ids()); }
        /// The same from the views and the batch's sample ids.
        loss::pseudo_label_targets targets(const std::vector<tensor<T>>& views, std::span<const std::size_t> ids) {
            require(labels_.assigned(), "target::sinkhorn_labels: no labels yet; begin_epoch computes them "
                    "(ssl::trainer calls it before every epoch)");
            require<shape_error>(views.size() == 1 && views[0].dim(0) == ids.size(), "target::sinkhorn_labels: "
                                 "expects one view with a row per sample (", ids.size(), " samples)");
            const std::size_t n = labels_.instances(), b = ids.size();
            loss::pseudo_label_targets out;
            out.heads = heads_;
            out.labels.resize(heads_ * b);
            for (std::size_t i = 0; i < b; ++i)
                require(ids[i] < n, "target::sinkhorn_labels: sample ", ids[i], " is outside the ", n,
                        " labelled images");
            for (std::size_t h = 0; h < heads_; ++h)
                for (std::size_t i = 0; i < b; ++i) out.labels[h * b + i] = labels_.t[h * n + ids[i]];
            if (stats_ && stats_->nmi_prev) out.metrics.emplace_back("nmi_prev", *stats_->nmi_prev);
            return out;
        }

        /// Asks for a data pass when a label update is due at the next step.
        target_request after_step(Backbone&, Head&, loss::pseudo_label_targets&&, const target_step& s) {
            if (sched_total_ != s.total_steps) {
                sched_ = sinkhorn_schedule(cfg_.updates, s.total_steps);
                sched_total_ = s.total_steps;
            }
            const std::size_t next = s.step + 1;
            return {.data_pass = next < s.total_steps && std::binary_search(sched_.begin(), sched_.end(), next)};
        }
        /// The label update after_step asked for, over the data set the
        /// method passes.
        void data_pass(epoch_context<Backbone, Head>& ctx, const target_step& s) {
            labels_.ensure(heads_, ctx.data.size(), "target::sinkhorn_labels", ctx.data.name);
            update(ctx, s.step + 1);
        }
        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            if (labels_.t.defined()) f(join_name(prefix, "labels"), labels_.t);
        }

    private:
        /// Sinkhorn-Knopp labels for every head from the head outputs of the
        /// whole data set.
        void update(epoch_context<Backbone, Head>& ctx, std::size_t step) {
            const tensor<float> z = ctx.head_outputs(cfg_.chunk);  // (N, H*K)
            const std::size_t n = z.dim(0), d = z.dim(1);
            require<shape_error>(d == heads_ * k_, "target::sinkhorn_labels: head outputs of width ", d, " for ",
                                 heads_, " heads of ", k_, " classes");
            std::vector<std::int64_t> old;
            if (labels_.assigned()) old.assign(labels_.t.data(), labels_.t.data() + n);
            tensor<double> logp({n, k_});
            label_update_stats st;
            st.step = step;
            for (std::size_t h = 0; h < heads_; ++h) {
                for (std::size_t i = 0; i < n; ++i) {  // log-softmax of head h's block, in double
                    const float* r = z.data() + i * d + h * k_;
                    double* o = logp.data() + i * k_;
                    const double lse = ops::row_logsumexp(r, k_);
                    for (std::size_t j = 0; j < k_; ++j) o[j] = double(r[j]) - lse;
                }
                auto r = cluster::sinkhorn_labels(logp, {.lambda = cfg_.lambda, .tolerance = cfg_.tolerance});
                require(r.labels.size() == n, "target::sinkhorn_labels: Sinkhorn-Knopp returned ", r.labels.size(),
                        " labels for ", n, " images");
                std::copy(r.labels.begin(), r.labels.end(), labels_.t.data() + h * n);
                st.error = std::max(st.error, r.error);
                st.converged = st.converged && r.converged;
            }
            // data parallel: every rank solved the same problem; rank 0's labels are everyone's
            if (ctx.ranks && ctx.ranks->size() > 1) ctx.ranks->broadcast(labels_.t.span(), 0);
            if (!old.empty())
                st.nmi_prev = eval::clustering_nmi(old, std::span<const std::int64_t>(labels_.t.data(), n));
            stats_ = st;
            ++updates_done_;
        }

        /// SeLa's initial labels: i mod K for every image, randomly permuted per head.
        void random_labels(std::uint64_t seed) {
            const std::size_t n = labels_.instances();
            std::vector<std::int64_t> v(n);
            for (std::size_t h = 0; h < heads_; ++h) {
                for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(i % k_);
                philox g(seed, stream_id(0x5E1A0ull, h));
                for (std::size_t i = n; i > 1; --i) std::swap(v[i - 1], v[g.below(i)]);
                std::copy(v.begin(), v.end(), labels_.t.data() + h * n);
            }
        }

        sinkhorn_labels_config cfg_;
        std::size_t heads_ = 1, k_ = 0;
        detail::instance_labels labels_;
        std::vector<std::size_t> sched_;
        std::size_t sched_total_ = 0;
        std::size_t updates_done_ = 0;
        std::optional<label_update_stats> stats_;
    };
};

}  // namespace ssl::target
