#pragma once
// Target update of the one-million-way instance classifier (Liu, Huang, Pan,
// Wang, Xu, Jin, "Train a One-Million-Way Instance Classifier for
// Unsupervised Visual Representation Learning", AAAI 2021, arXiv 2102.04848).
// The state OWNS the N-way classifier, one weight row per image, as trainable
// parameters the method exposes as "target.classifier.shard_NNN" (the optimizer
// updates them with the network); targets() hands loss/instance_ce.hpp the
// shards and the batch's ids, which are the labels.
//
// Storage: S shards of R = ceil(N / S) rows (shard_rows, or shards; the last may
// be shorter); class j is row j % R of shard j / R. Shapes are final at
// construction, so N (`instances`) is part of the config. Each shard is a
// parameter<T> behind a unique_ptr: its address never changes (optimizers hold
// parameter pointers), also when the state or the method is moved.
// Initialisation: at begin_epoch of epoch 0 (not resumed, not yet done) row i =
// the L2-normalised HEAD output for image i (eval_transform) of the initial
// network, in train mode without gradient over chunks of >= init_chunk images,
// running statistics restored afterwards; the shards' optimizer state is reset
// (epoch_plan::reset_optimizer_state). Before that, or with raw_feature_init =
// false, rows are random unit vectors (Philox, per shard). "classifier.initialised"
// (int64) is checkpointed: a resumed run or a second fit() never re-initialises.
//
// Choices:
//  - Shards as the unit of every loop, so the paper's hybrid parallel training
//    (shards over processes) will need no change to the loss.
//  - Rows from the head output (the paper's "contrastive prior"; the space the
//    classifier scores): step 0 is contrastive learning against raw features,
//    which the paper reports converges much faster than random weights.
//  - Batch statistics in that pass, as the paper's "fixed random network with
//    running BNs" and the first steps; init_batch_statistics = false: eval mode.
//  - No special sampler (PIC's sliding window, Cao et al. 2020): the trainer's
//    per-epoch permutation visits each instance once, so epoch_plan::order stays
//    empty; the initialisation is the paper's answer to rare visits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../loss/instance_ce.hpp"
#include "../nn/parameter.hpp"
#include "../ops/rows.hpp"
#include "protocol.hpp"

namespace ssl::target {

struct instance_classifier_config {
    std::size_t instances = 0;         ///< N: images in the training set, one class each (required)
    std::size_t shard_rows = 0;        ///< rows (classes) per shard; 0: from `shards`
    std::size_t shards = 0;            ///< number of shards when shard_rows is 0 (rows = ceil(N / shards));
                                       ///< both 0: shards of default_shard_rows
    bool raw_feature_init = true;      ///< rows = normalised initial head outputs before epoch 0
    bool init_batch_statistics = true; ///< that pass uses batch-norm batch statistics (train mode); false: eval mode
    std::size_t init_chunk = 256;      ///< images per forward of that pass (chunks of init_chunk .. 2 init_chunk - 1)
    std::uint64_t seed = 0;            ///< random unit rows before the initialisation
};

/// Rows per shard when neither shard_rows nor shards is set: 16384 rows
/// (a 256 x 16384 float logits block is 16 MiB; 1.28 M classes are 79 shards).
inline constexpr std::size_t default_shard_rows = 16384;

/// The rows per shard a config gives (R), and the number of shards ceil(N / R).
inline std::size_t instance_shard_rows(const instance_classifier_config& c) {
    require<value_error>(c.instances > 0, "instance_classifier: config.instances (the number of training images, "
                                          "one class each) must be set");
    if (c.shard_rows > 0) return std::min(c.shard_rows, c.instances);
    if (c.shards > 0) return (c.instances + c.shards - 1) / c.shards;
    return std::min(default_shard_rows, c.instances);
}
inline std::size_t instance_shard_count(const instance_classifier_config& c) {
    const std::size_t r = instance_shard_rows(c);
    return (c.instances + r - 1) / r;
}

struct instance_classifier {
    using config_type = instance_classifier_config;
    static constexpr const char* name = "instance_classifier";

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;

        state() = default;
        state(const instance_classifier_config& c, Backbone&, Head& h) : cfg_(c), dim_(h.out_features()) {
            require<value_error>(c.init_chunk >= 1, "instance_classifier: init_chunk must be positive");
            rows_ = instance_shard_rows(c);
            const std::size_t S = instance_shard_count(c);
            shards_.reserve(S);
            for (std::size_t s = 0; s < S; ++s) {
                const std::size_t r = std::min(rows_, c.instances - s * rows_);
                shards_.push_back(std::make_unique<parameter<T>>(shape_t{r, dim_}, param_role::weight));
            }
            // Random unit rows, one Philox stream per shard (parallel, reproducible).
            parallel_for(S, [&](std::size_t s, std::size_t) {
                parameter<T>& p = *shards_[s];
                philox g(c.seed, stream_id(0x1c5, s));
                const std::size_t r = p.value.dim(0);
                for (std::size_t i = 0; i < r; ++i) {
                    T* w = p.value.data() + i * dim_;
                    for (std::size_t d = 0; d < dim_; ++d) w[d] = static_cast<T>(g.normal());
                    ops::normalize_row(w, dim_);
                }
            });
        }
        state(state&&) noexcept = default;
        state& operator=(state&&) noexcept = default;

        const instance_classifier_config& config() const noexcept { return cfg_; }
        std::size_t instances() const noexcept { return cfg_.instances; }
        std::size_t dim() const noexcept { return dim_; }
        std::size_t shard_rows() const noexcept { return rows_; }
        std::size_t shard_count() const noexcept { return shards_.size(); }
        parameter<T>& shard(std::size_t s) {
            require(s < shards_.size(), "instance_classifier: shard ", s, " of ", shards_.size());
            return *shards_[s];
        }
        /// Weight row of class j (D values).
        const T* row(std::size_t j) const {
            require(j < cfg_.instances, "instance_classifier: class ", j, " of ", cfg_.instances);
            return shards_[j / rows_]->value.data() + (j % rows_) * dim_;
        }
        /// True once the raw-feature initialisation has run (checkpointed).
        bool initialised() const noexcept { return init_flag_[0] != 0; }

        /// The shards and the batch's instance ids (the labels).
        loss::instance_targets<T> targets(const target_input<T>& in) { return targets(in.ids()); }
        loss::instance_targets<T> targets(std::span<const std::size_t> ids) {
            loss::instance_targets<T> t;
            t.shards.reserve(shards_.size());
            for (auto& p : shards_) t.shards.push_back(p.get());
            t.labels.reserve(ids.size());
            for (std::size_t id : ids) {
                require(id < cfg_.instances, "instance_classifier: sample id ", id, " is outside the ",
                        cfg_.instances, " instances the classifier was built for");
                t.labels.push_back(static_cast<std::int64_t>(id));
            }
            return t;
        }

        /// Nothing changes after a step: the optimizer updates the shards.
        target_request after_step(Backbone&, Head&, loss::instance_targets<T>&&, const target_step&) { return {}; }

        /// Before every epoch: the raw-feature initialisation before the first.
        /// The order stays the loader's permutation (every instance once per epoch).
        epoch_plan begin_epoch(epoch_context<Backbone, Head>& ctx) {
            require<value_error>(ctx.data.size() == cfg_.instances, "instance_classifier: the data set has ",
                                 ctx.data.size(), " images but the classifier was built for ", cfg_.instances,
                                 " instances (config.target.instances must be the training set's size)");
            epoch_plan plan;
            if (cfg_.raw_feature_init && ctx.epoch == 0 && !ctx.resumed_mid_epoch && !initialised()) {
                initialise_from_network(ctx);
                plan.reset_own_parameters = true;
            }
            return plan;
        }

        /// Rows [first, first + n) = the L2-normalised rows of features (n, D).
        void set_rows(const tensor<T>& features, std::size_t first) {
            check_rank(features, 2, "instance_classifier::set_rows", "(n, D)");
            const std::size_t n = features.dim(0);
            require<shape_error>(features.dim(1) == dim_ && first + n <= cfg_.instances,
                                 "instance_classifier::set_rows: features of shape ", features.shape().str(),
                                 " at row ", first, " do not fit ", cfg_.instances, " rows of width ", dim_);
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t j = first + i;
                ops::normalize_row(features.data() + i * dim_, shards_[j / rows_]->value.data() + (j % rows_) * dim_, dim_);
            }
        }

        /// The raw-feature initialisation (begin_epoch calls it once): rows =
        /// normalised head outputs of the current networks, batch statistics
        /// or eval mode as configured; running statistics are left unchanged.
        void initialise_from_network(epoch_context<Backbone, Head>& ctx) {
            ctx.for_each_initial_output([&](const tensor<T>& f, std::size_t first) { set_rows(f, first); },
                                        cfg_.init_batch_statistics, cfg_.init_chunk);
            init_flag_[0] = 1;
        }

        /// Trainable parameters: "classifier.shard_000", ... (the method
        /// prefixes "target.").
        template <class F>
        void for_each_parameter(F&& f, const std::string& prefix) {
            for (std::size_t s = 0; s < shards_.size(); ++s) f(join_name(prefix, shard_name(s)), *shards_[s]);
        }
        /// Checkpointed state besides the shards (which are parameters):
        /// "classifier.initialised", an int64 scalar.
        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            f(join_name(prefix, "classifier.initialised"), init_flag_);
        }

        static std::string shard_name(std::size_t s) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "classifier.shard_%03zu", s);
            return buf;
        }

    private:
        instance_classifier_config cfg_{};
        std::size_t dim_ = 0, rows_ = 1;
        std::vector<std::unique_ptr<parameter<T>>> shards_;
        tensor<std::int64_t> init_flag_ = tensor<std::int64_t>::zeros(shape_t{});
    };
};

}  // namespace ssl::target
