#pragma once
// The sharded N-way instance classifier as a loss policy that OWNS its
// weights: "Train a One-Million-Way Instance Classifier for Unsupervised
// Visual Representation Learning", Liu, Huang, Pan, Wang, Xu, Jin, AAAI 2021
// (arXiv 2102.04848). Every training image is its own class; the sample ids
// the trainer passes (view_batch::ids) are the labels; each view's head
// output is classified by the instance cross entropy of loss/instance_ce.hpp:
//   L = 1/V sum_v 1/B sum_i ( logsumexp_j z_ij - sum_j q_ij z_ij ),  z_ij = u_i . v_j / tau.
// Contract: parameters "loss.classifier.shard_NNN" (the optimizer trains them
// with the network: compute() ADDS dL/dW into their grad, once per step),
// state "loss.classifier.initialised"; begin_epoch(epoch_context) runs the
// raw-feature initialisation before the first epoch; metric "inst_top1".
//
// Storage: S shards of R = ceil(N / S) rows (shard_rows, or shards; the last
// may be shorter); class j is row j % R of shard j / R. Shapes are final at
// construction (N is config.instances, D the head's output width, which the
// method passes to the constructor). Each shard is a parameter<T> behind a
// unique_ptr: its address never changes (optimizers hold parameter pointers),
// also when the loss or the method is moved.
// Initialisation: at begin_epoch of epoch 0 (not resumed, not yet done) row i
// = the L2-normalised HEAD output for image i (eval_transform) of the initial
// network, in train mode without gradient over chunks of >= init_chunk
// images, running statistics restored afterwards; the shards' optimizer state
// is reset (epoch_plan::reset_own_parameters). Before that, or with
// raw_feature_init = false, rows are random unit vectors (Philox, per shard).
// "classifier.initialised" (int64) is checkpointed: a resumed run or a second
// fit() never re-initialises.
//
// Choices:
//  - The weights live in the loss, not a target update: they are trained by
//    the optimizer like the network, nothing updates them after a step, so the
//    method composes the loss with target::none.
//  - Shards as the unit of every loop and of the paper's hybrid parallel
//    training: distribute(comm) keeps shard s on rank s % P only (round robin:
//    a shard count not divisible by P leaves the ranks at most one shard
//    apart); the loss is then computed over the ranks (instance_ce_ranks:
//    features and ids gathered, softmax merged by allreduce, top-k merged,
//    feature gradient reduce-scattered), the shards' gradients stay on their
//    ranks (parameter::replicated = false). The trainer calls it on P > 1
//    ranks. Shard names stay global ("classifier.shard_007" on any rank).
//  - Random rows from one Philox stream per global shard: the same initial
//    classifier on any number of ranks. The raw-feature initialisation is
//    split over the ranks (epoch_context::ranks: each computes its chunks,
//    all receive every row) and each rank keeps the rows of its shards.
//  - Rows from the head output (the paper's "contrastive prior"; the space the
//    classifier scores): step 0 is contrastive learning against raw features,
//    which the paper reports converges much faster than random weights.
//  - Batch statistics in that pass, as the paper's "fixed random network with
//    running BNs" and the first steps; init_batch_statistics = false: eval mode.
//  - No special sampler (PIC's sliding window, Cao et al. 2020): the trainer's
//    per-epoch permutation visits each instance once; the initialisation is the
//    paper's answer to rare visits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../dist/communicator.hpp"
#include "../core/thread_pool.hpp"
#include "../nn/parameter.hpp"
#include "../ops/rows.hpp"
#include "../target_update/protocol.hpp"
#include "instance_ce.hpp"

namespace ssl::loss {

struct instance_classifier_config {
    instance_ce_config ce{};           ///< the instance cross entropy: temperature, hardest-class smoothing
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

class instance_classifier {
public:
    using config_type = instance_classifier_config;
    using T = float;
    /// P ranks compute what one process computes on the global batch: with the
    /// shards replicated (their gradients averaged like the network's) or, after
    /// distribute(), spread over the ranks.
    static constexpr bool data_parallel = true;

    /// N x dim weights (dim: the head's output width).
    instance_classifier(const instance_classifier_config& c, std::size_t dim) : cfg_(c), dim_(dim), ce_(c.ce) {
        require<value_error>(c.init_chunk >= 1, "instance_classifier: init_chunk must be positive");
        require<value_error>(dim > 0, "instance_classifier: the head's output width must be positive");
        rows_ = instance_shard_rows(c);
        const std::size_t S = instance_shard_count(c);
        shards_.reserve(S);
        for (std::size_t s = 0; s < S; ++s) {
            global_.push_back(s);
            local_.push_back(s);
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
    instance_classifier(instance_classifier&&) noexcept = default;
    instance_classifier& operator=(instance_classifier&&) noexcept = default;

    const instance_classifier_config& config() const noexcept { return cfg_; }
    std::size_t instances() const noexcept { return cfg_.instances; }
    std::size_t dim() const noexcept { return dim_; }
    std::size_t shard_rows() const noexcept { return rows_; }
    /// The shards this process holds (all of them until distribute()).
    std::size_t shard_count() const noexcept { return shards_.size(); }
    /// The global index of this process's q-th shard (q itself until distribute()).
    std::size_t shard_index(std::size_t q) const {
        require(q < shards_.size(), "instance_classifier: shard ", q, " of ", shards_.size(), " held here");
        return global_[q];
    }
    /// This process's q-th shard.
    parameter<T>& shard(std::size_t q) {
        require(q < shards_.size(), "instance_classifier: shard ", q, " of ", shards_.size(), " held here");
        return *shards_[q];
    }
    /// Whether this process holds the row of class j.
    bool holds(std::size_t j) const noexcept { return j < cfg_.instances && local_[j / rows_] != npos; }
    /// Weight row of class j (D values), held by this process.
    const T* row(std::size_t j) const {
        require(j < cfg_.instances, "instance_classifier: class ", j, " of ", cfg_.instances);
        require(holds(j), "instance_classifier: class ", j, " is in shard ", j / rows_, ", held by another rank");
        return shards_[local_[j / rows_]]->value.data() + (j % rows_) * dim_;
    }

    /// Hybrid parallel: keeps the shards of rank c.rank() (global shard s on
    /// rank s % P) and frees the others; from now on the loss is computed over
    /// c's ranks. Call once, on every rank, before an optimizer attaches the
    /// parameters (trainer does so on P > 1 ranks). One rank: nothing changes.
    void distribute(dist::communicator& c) {
        if (c.size() == 1) return;
        require<value_error>(comm_ == nullptr, "instance_classifier: distribute() was already called");
        const auto P = static_cast<std::size_t>(c.size()), me = static_cast<std::size_t>(c.rank());
        std::vector<std::unique_ptr<parameter<T>>> kept;
        std::vector<std::size_t> global;
        std::fill(local_.begin(), local_.end(), npos);
        for (std::size_t q = 0; q < shards_.size(); ++q) {
            if (global_[q] % P != me) continue;  // freed
            local_[global_[q]] = kept.size();
            shards_[q]->replicated = false;
            kept.push_back(std::move(shards_[q]));
            global.push_back(global_[q]);
        }
        shards_ = std::move(kept);
        global_ = std::move(global);
        comm_ = &c;
    }
    /// The communicator the shards are spread over (null: all here).
    dist::communicator* ranks() const noexcept { return comm_; }
    /// True once the raw-feature initialisation has run (checkpointed).
    bool initialised() const noexcept { return init_flag_[0] != 0; }

    /// Every view classified against the shards with the batch's ids as
    /// labels; the mean over views of each view's mean loss. Adds dL/dW into
    /// the shards' grad. The targets (target::none's) are not used.
    template <class Targets>
    loss_output<float> compute(const std::vector<tensor<float>>& online, const Targets&, const view_batch<float>& vb) {
        require(!online.empty(), "instance_classifier: no online outputs");
        std::vector<std::int64_t> labels;
        labels.reserve(vb.ids.size());
        for (std::size_t id : vb.ids) {
            require(id < cfg_.instances, "instance_classifier: sample id ", id, " is outside the ", cfg_.instances,
                    " instances the classifier was built for");
            labels.push_back(static_cast<std::int64_t>(id));
        }
        std::vector<parameter<T>*> shards;
        shards.reserve(shards_.size());
        for (auto& p : shards_) shards.push_back(p.get());
        std::vector<std::size_t> first;  // hybrid parallel: each held shard's first class
        for (std::size_t g : global_) first.push_back(g * rows_);
        const instance_ce_ranks layout{.comm = comm_, .first = first, .instances = cfg_.instances};
        const double views = static_cast<double>(online.size());
        loss_output<float> out;
        std::size_t correct = 0, rows = 0;
        for (const auto& o : online) {
            check_rank(o, 2, "instance_classifier", "(B, D) online outputs");
            require<shape_error>(o.dim(0) == labels.size(), "instance_classifier: ", o.dim(0), " rows for ",
                                 labels.size(), " sample ids (view_batch::ids)");
            const double b = static_cast<double>(o.dim(0));
            auto r = ce_(o, std::span<parameter<T>* const>(shards), labels,
                         {.grad_scale = 1.0 / (b * views), .weight_grad = true, .ranks = comm_ ? &layout : nullptr});
            out.value += r.value / views;
            correct += r.correct;
            rows += o.dim(0);
            out.grads.push_back(std::move(r.grad_features));
        }
        out.metrics.emplace_back("inst_top1", 100.0 * static_cast<double>(correct) / static_cast<double>(rows));
        return out;
    }

    /// Before every epoch: the raw-feature initialisation before the first.
    template <class Context>
    epoch_plan begin_epoch(Context& ctx) {
        require<value_error>(ctx.data.size() == cfg_.instances, "instance_classifier: the data set has ",
                             ctx.data.size(), " images but the classifier was built for ", cfg_.instances,
                             " instances (config.loss.instances must be the training set's size)");
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
                             "instance_classifier::set_rows: features of shape ", features.shape().str(), " at row ",
                             first, " do not fit ", cfg_.instances, " rows of width ", dim_);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t j = first + i;
            if (!holds(j)) continue;  // hybrid parallel: another rank's row
            ops::normalize_row(features.data() + i * dim_, shards_[local_[j / rows_]]->value.data() + (j % rows_) * dim_,
                               dim_);
        }
    }

    /// The raw-feature initialisation (begin_epoch calls it once): rows =
    /// normalised head outputs of the current networks, batch statistics or
    /// eval mode as configured; running statistics are left unchanged.
    template <class Context>
    void initialise_from_network(Context& ctx) {
        ctx.for_each_initial_output([&](const tensor<T>& f, std::size_t first) { set_rows(f, first); },
                                    cfg_.init_batch_statistics, cfg_.init_chunk);
        init_flag_[0] = 1;
    }

    /// Trainable parameters: "classifier.shard_000", ... (the method prefixes "loss.").
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        for (std::size_t q = 0; q < shards_.size(); ++q) f(join_name(prefix, shard_name(global_[q])), *shards_[q]);
    }
    /// Checkpointed state besides the shards: "classifier.initialised", an int64 scalar.
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
    instance_ce<T> ce_;
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    std::vector<std::unique_ptr<parameter<T>>> shards_;  // the shards held here
    std::vector<std::size_t> global_;                    // their global indices, increasing
    std::vector<std::size_t> local_;                     // global shard -> index in shards_, or npos
    dist::communicator* comm_ = nullptr;                 // distribute()'s ranks
    tensor<std::int64_t> init_flag_ = tensor<std::int64_t>::zeros(shape_t{});
};

}  // namespace ssl::loss
