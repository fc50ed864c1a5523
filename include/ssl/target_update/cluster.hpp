#pragma once
// Target update by cluster reassignment: DeepCluster (Caron, Bojanowski,
// Joulin, Douze, "Deep Clustering for Unsupervised Learning of Visual
// Features", ECCV 2018).
//
// Every `reassign_every` epochs (the paper: every epoch), in begin_epoch
// (target_update/protocol.hpp), before the epoch's first batch:
//   1. backbone features of the whole data set, eval mode, eval transform;
//   2. PCA-whitened to 256 dimensions (or the feature width, if smaller) and
//      L2-normalised (sec. 3.2, the reference's preprocess_features);
//   3. k-means into k = the head's outputs clusters (the paper: 10000 on
//      ImageNet), empty clusters split off large ones (sec. 3.3), optional
//      restarts keeping the lowest objective;
//   4. each image's cluster is its pseudo-label ("target.labels", int64);
//   5. the head is re-initialised and its optimizer state reset
//      (plan.reset_optimizer_state = {"head"}): cluster ids are arbitrary;
//   6. the epoch's order is uniform over pseudo-labels (sec. 3.3).
// targets(views, ids) gives the batch's pseudo-labels for
// loss::pseudo_label_classification (cross entropy); "nmi_prev" reports the
// NMI between successive assignments (fig. 2(b), eval::clustering_nmi).
// Set config.instances to the data-set size (the *_config helpers take it): a
// resumed run loads its checkpoint before begin_epoch, so the labels must have
// their final shape when the method is built. With instances = 0 they are
// allocated at the first begin_epoch (a fresh run only; loading a checkpoint
// fails with "unexpected 'target.labels'"). A data set of another size than
// the labels is an error naming both.
//
// Choices (against the reference implementation):
//  - The head is rebuilt by its own constructor, not N(0, 0.01) and zero bias:
//    any head type works, and the scale matters little after an epoch.
//  - uniform_label_order gives every non-empty cluster an exactly equal share
//    (floor(N/c), the extras to random clusters) as full passes over a shuffled
//    copy of its members (the reference draws N/c + 1 each and truncates);
//    draws from philox(seed, stream(epoch)): deterministic.
//  - No Sobel filter (the paper's AlexNet/VGG input): the eval transform only.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../cluster/kmeans.hpp"
#include "../cluster/pca.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../eval/metrics.hpp"
#include "../loss/cluster_losses.hpp"
#include "../nn/parameter.hpp"
#include "../ops/rows.hpp"
#include "protocol.hpp"

namespace ssl::target {

/// DeepCluster's sampler: `count` sample indices (repeats allowed) with an
/// equal share for every non-empty pseudo-label (labels < 0 are unassigned
/// and never drawn), shuffled; a pure function of (labels, count, seed, epoch).
inline std::vector<std::size_t> uniform_label_order(std::span<const std::int64_t> labels, std::size_t count,
                                                    std::uint64_t seed, std::uint64_t epoch) {
    // members of every label, in index order
    std::vector<std::pair<std::int64_t, std::size_t>> by_label;
    by_label.reserve(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] >= 0) by_label.emplace_back(labels[i], i);
    require(!by_label.empty() || count == 0, "uniform_label_order: no sample has a pseudo-label");
    std::sort(by_label.begin(), by_label.end());
    std::vector<std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < by_label.size(); ++i) {
        if (i == 0 || by_label[i].first != by_label[i - 1].first) groups.emplace_back();
        groups.back().push_back(by_label[i].second);
    }
    philox g(seed, stream_id(0xDC5A3D1Eull, epoch));
    auto shuffle = [&g](std::vector<std::size_t>& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.below(i)]);
    };
    const std::size_t c = groups.size();
    std::vector<std::size_t> extra(c);  // which clusters get one more sample
    std::iota(extra.begin(), extra.end(), std::size_t{0});
    shuffle(extra);
    std::vector<std::size_t> share(c, c ? count / c : 0);
    for (std::size_t j = 0; j < (c ? count % c : 0); ++j) ++share[extra[j]];
    std::vector<std::size_t> order;
    order.reserve(count);
    std::vector<std::size_t> pass;
    for (std::size_t j = 0; j < c; ++j) {
        std::size_t left = share[j];
        while (left > 0) {
            pass = groups[j];
            shuffle(pass);
            const std::size_t take = std::min(left, pass.size());
            order.insert(order.end(), pass.begin(), pass.begin() + static_cast<std::ptrdiff_t>(take));
            left -= take;
        }
    }
    shuffle(order);
    return order;
}

/// How features are prepared for clustering (DeepCluster sec. 3.2).
struct cluster_features_config {
    std::size_t pca_dim = 256;  ///< PCA to this many dimensions (clamped to the feature width); 0: no PCA
    bool whiten = true;         ///< PCA whitening (unit variance per component)
    bool l2_normalize = true;   ///< L2-normalise the rows after PCA
};

namespace detail {

/// PCA-whitens and L2-normalises features (N, d) as configured.
inline tensor<float> prepare_cluster_features(const tensor<float>& features, const cluster_features_config& c) {
    check_rank(features, 2, "cluster features", "(N, d)");
    const std::size_t n = features.dim(0), d = features.dim(1);
    tensor<float> x = features;
    if (c.pca_dim > 0) {
        const std::size_t dim = std::min({c.pca_dim, d, n > 1 ? n - 1 : std::size_t{1}});
        x = cluster::pca<float>({.dims = dim, .whiten = c.whiten, .l2_normalize = c.l2_normalize}).fit_transform(features);
    } else if (c.l2_normalize) {
        x = ops::normalize_rows(features);
    }
    return x;
}

/// Labels tensor (N) of int64, -1 = never assigned; shared by the clustering
/// targets for the instance bookkeeping and its error messages.
struct instance_labels {
    tensor<std::int64_t> t;  ///< (rows, N), or undefined until the size is known

    void allocate(std::size_t rows, std::size_t n) {
        if (n == 0) return;
        t = tensor<std::int64_t>::full(rows == 1 ? shape_t{n} : shape_t{rows, n}, std::int64_t{-1});
    }
    std::size_t instances() const { return t.defined() ? t.shape()[t.rank() - 1] : 0; }
    bool assigned() const { return t.defined() && t.numel() > 0 && t[0] >= 0; }
    /// Allocates for a data set of n images the first time, or checks n.
    void ensure(std::size_t rows, std::size_t n, const char* who, const std::string& data_name) {
        if (!t.defined()) {
            allocate(rows, n);
            return;
        }
        require<shape_error>(instances() == n, who, ": the pseudo-labels are for ", instances(),
                             " images (config target.instances, or a loaded checkpoint) but the data set '", data_name,
                             "' has ", n, "; set target.instances to the data-set size");
    }
};

/// Head seed after the reassignment of `epoch`.
inline std::uint64_t reinit_seed(std::uint64_t seed, std::size_t epoch) { return stream_id(seed, epoch, 0x4EAD5EEDull); }

}  // namespace detail

struct cluster_reassignment_config {
    std::size_t reassign_every = 1;   ///< R: recluster every R epochs (DeepCluster: 1; DeeperCluster: 3)
    cluster_features_config features{};
    std::size_t kmeans_iterations = 20;  ///< Lloyd iterations (the reference: 20)
    std::size_t kmeans_restarts = 1;     ///< runs with different seeds, the lowest objective kept
    bool uniform_sampling = true;        ///< the epoch's order from uniform_label_order
    bool reinit_head = true;             ///< re-initialise the head after each reassignment
    std::size_t instances = 0;           ///< data-set size (see the header comment); 0: from the data set
    std::size_t chunk = 256;             ///< images per forward when computing features
};

/// What the last reassignment found.
struct reassignment_stats {
    std::size_t epoch = 0;
    double objective = 0;            ///< k-means objective (sum of squared distances)
    std::size_t nonempty = 0;        ///< clusters with at least one image
    std::optional<double> nmi_prev;  ///< NMI with the previous assignment (none at the first)
};

struct cluster_reassignment {
    using config_type = cluster_reassignment_config;
    static constexpr const char* name = "cluster_reassignment";
    /// dist/data_parallel.hpp: the pass over the data set split over the ranks
    /// (epoch_context::features / head_outputs), the clustering run on every
    /// rank on the same features and rank 0's labels broadcast.
    static constexpr bool data_parallel = true;

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;

        state(const cluster_reassignment_config& c, Backbone&, Head& h) : cfg_(c), k_(h.out_features()) {
            require(c.reassign_every >= 1, "target::cluster_reassignment: reassign_every must be at least 1");
            require(c.kmeans_iterations >= 1 && c.kmeans_restarts >= 1,
                    "target::cluster_reassignment: kmeans_iterations and kmeans_restarts must be at least 1");
            require(c.chunk >= 1, "target::cluster_reassignment: chunk must be positive");
            if constexpr (requires { h.heads(); })
                require(h.heads() == 1, "target::cluster_reassignment: the head has ", h.heads(),
                        " classifiers; DeepCluster's k-means labels feed one (use heads = 1)");
            require(k_ >= 2, "target::cluster_reassignment: the head has ", k_, " outputs; k-means needs k >= 2");
            labels_.allocate(1, c.instances);
        }
        const cluster_reassignment_config& config() const noexcept { return cfg_; }
        std::size_t clusters() const noexcept { return k_; }
        /// The pseudo-label of every image (-1 before the first reassignment).
        const tensor<std::int64_t>& labels() const noexcept { return labels_.t; }
        const std::optional<reassignment_stats>& last_reassignment() const noexcept { return stats_; }

        /// Recomputes the labels when due, re-initialises the head, and picks
        /// the epoch's order.
        epoch_plan begin_epoch(epoch_context<Backbone, Head>& ctx) {
            labels_.ensure(1, ctx.data.size(), "target::cluster_reassignment", ctx.data.name);
            epoch_plan plan;
            const bool due = !labels_.assigned() || ctx.epoch % cfg_.reassign_every == 0;
            if (due && !ctx.resumed_mid_epoch) {
                reassign(ctx);
                if (cfg_.reinit_head) plan.reinit_head = detail::reinit_seed(ctx.seed, ctx.epoch);
            }
            require(labels_.assigned(), "target::cluster_reassignment: resumed in the middle of epoch ", ctx.epoch + 1,
                    " but the checkpoint holds no pseudo-labels");
            if (cfg_.uniform_sampling)
                plan.order = uniform_label_order(std::span<const std::int64_t>(labels_.t.data(), labels_.t.numel()),
                                                 ctx.data.size(), ctx.seed, ctx.epoch);
            return plan;
        }

        /// The pseudo-labels of the batch's samples.
        loss::pseudo_label_targets targets(const target_input<T>& in) { return targets(in.views(), in.ids()); }
        /// The same from the views and the batch's sample ids.
        loss::pseudo_label_targets targets(const std::vector<tensor<T>>& views, std::span<const std::size_t> ids) {
            require(labels_.assigned(), "target::cluster_reassignment: no pseudo-labels yet; begin_epoch computes "
                    "them (ssl::trainer calls it before every epoch)");
            require<shape_error>(views.size() == 1 && views[0].dim(0) == ids.size(), "target::cluster_reassignment: "
                                 "expects one view with a row per sample (", ids.size(), " samples)");
            loss::pseudo_label_targets out;
            out.labels.resize(ids.size());
            const std::size_t n = labels_.instances();
            for (std::size_t i = 0; i < ids.size(); ++i) {
                require(ids[i] < n, "target::cluster_reassignment: sample ", ids[i], " is outside the ", n,
                        " pseudo-labelled images");
                out.labels[i] = labels_.t[ids[i]];
            }
            if (stats_ && stats_->nmi_prev) out.metrics.emplace_back("nmi_prev", *stats_->nmi_prev);
            return out;
        }
        target_request after_step(Backbone&, Head&, loss::pseudo_label_targets&&, const target_step&) { return {}; }
        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            if (labels_.t.defined()) f(join_name(prefix, "labels"), labels_.t);
        }

    private:
        void reassign(epoch_context<Backbone, Head>& ctx) {
            tensor<float> x = detail::prepare_cluster_features(ctx.features(cfg_.chunk), cfg_.features);
            const std::size_t n = x.dim(0);
            require(n >= k_, "target::cluster_reassignment: ", n, " images cannot make ", k_, " clusters");
            auto km = cluster::kmeans(x, {.k = k_, .iterations = cfg_.kmeans_iterations,
                                          .restarts = cfg_.kmeans_restarts,
                                          .seed = stream_id(ctx.seed, ctx.epoch, 0xC1A55ull)});
            reassignment_stats st;
            st.epoch = ctx.epoch;
            st.objective = km.objective;
            std::vector<std::int64_t> nw(km.assignments.begin(), km.assignments.end());
            require(nw.size() == n, "target::cluster_reassignment: k-means returned ", nw.size(), " assignments for ",
                    n, " images");
            // data parallel: every rank clustered the same features; rank 0's labels are everyone's
            if (ctx.ranks && ctx.ranks->size() > 1) ctx.ranks->broadcast(std::span<std::int64_t>(nw), 0);
            std::vector<char> used(k_, 0);
            for (auto a : nw) used[static_cast<std::size_t>(a)] = 1;
            st.nonempty = static_cast<std::size_t>(std::count(used.begin(), used.end(), 1));
            if (labels_.assigned())
                st.nmi_prev = eval::clustering_nmi(std::span<const std::int64_t>(labels_.t.data(), n), nw);
            std::copy(nw.begin(), nw.end(), labels_.t.data());
            stats_ = st;
        }

        cluster_reassignment_config cfg_;
        std::size_t k_ = 0;
        detail::instance_labels labels_;
        std::optional<reassignment_stats> stats_;
    };
};

}  // namespace ssl::target
