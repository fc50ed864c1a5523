#pragma once
// Target update by hierarchical clustering with a rotation pretext:
// DeeperCluster (Caron, Bojanowski, Mairal, Joulin, "Unsupervised
// Pre-Training of Image Features on Non-Curated Data", ICCV 2019, sec. 3).
//
// The target classes are the product of the 4 rotations and k-means clusters
// (eq. 3), made tractable by a two-level hierarchy (sec. 3.2):
//   level 1  k-means of the PCA-whitened, L2-normalised backbone features of
//            the whole data set into m clusters c1; with the rotation r of a
//            row this gives S = 4m super-classes, super = r * m + c1;
//   level 2  inside every level-1 cluster, k-means of the same features into
//            k2 sub-clusters c2: the sub-class.
// The loss (loss::hierarchical_classification, eq. 4) is CE over the S
// super-classes + CE over the k2 sub-classes with the sub-classifier of the
// row's super-class (head::hierarchical_classifier: S + S*k2 outputs).
// targets(views, ids) expects one view of rotations * B rows (augment::rotations);
// the loss checks every row's rotation against the augmentation's labels.
// Checkpoints: "target.clusters" (c1) and "target.sub_clusters" (c2), N
// int64 each; config.instances as for target::cluster_reassignment.
//
// Choices (from the paper and the reference implementation):
//  - Both levels cluster the UNROTATED images (as the reference): an image's four
//    rotations share (c1, c2); each super-class (r, c1) has its own
//    sub-classifier over the k2 sub-clusters of c1.
//  - super = r * m + c1, rotation-major as augment::rotations stacks rotation r
//    in rows [rN, (r+1)N) (the reference's c1 * 4 + r is a relabelling).
//  - A level-1 cluster of n_c <= k2 images gives each image its own sub-class
//    (level-2 k-means would leave clusters empty).
//  - The epoch's order uniform over leaf clusters (c1, c2), uniform_label_order
//    as DeepCluster (the reference: uniform over sub-classes within each
//    super-class, equal shares per super-class).
//  - Reassignment every 3 epochs (the reference's default); the whole head is
//    re-initialised after each and its optimizer state reset.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../cluster/kmeans.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../eval/metrics.hpp"
#include "../loss/cluster_losses.hpp"
#include "../nn/parameter.hpp"
#include "cluster.hpp"
#include "protocol.hpp"

namespace ssl::target {

struct hierarchical_clusters_config {
    std::size_t reassign_every = 3;  ///< R epochs (DeeperCluster: 3)
    cluster_features_config features{};
    std::size_t kmeans_iterations = 10;  ///< per level (the reference: 10)
    std::size_t kmeans_restarts = 1;
    std::size_t rotations = 4;           ///< rows per image (augment::rotations)
    bool uniform_sampling = true;        ///< the epoch's order uniform over leaf clusters (c1, c2)
    bool reinit_head = true;
    std::size_t instances = 0;           ///< data-set size (see target_update/cluster.hpp); 0: from the data set
    std::size_t chunk = 256;
};

/// The super- and sub-class of row `row` of a batch of `batch` images whose
/// level-1 / level-2 clusters are c1, c2, with rotation r = row / batch:
/// super = r * m + c1[row % batch], sub = c2[row % batch].
inline loss::hierarchical_targets hierarchical_batch_targets(std::span<const std::int64_t> c1,
                                                             std::span<const std::int64_t> c2, std::size_t rotations,
                                                             std::size_t m, std::size_t k2) {
    require<shape_error>(c1.size() == c2.size(), "hierarchical_batch_targets: ", c1.size(), " level-1 and ",
                         c2.size(), " level-2 labels");
    const std::size_t b = c1.size();
    loss::hierarchical_targets t;
    t.super_classes = rotations * m;
    t.sub_classes = k2;
    t.clusters = m;
    t.super.resize(rotations * b);
    t.sub.resize(rotations * b);
    for (std::size_t r = 0; r < rotations; ++r)
        for (std::size_t i = 0; i < b; ++i) {
            t.super[r * b + i] = static_cast<std::int64_t>(r * m) + c1[i];
            t.sub[r * b + i] = c2[i];
        }
    return t;
}

struct hierarchical_clusters {
    using config_type = hierarchical_clusters_config;
    static constexpr const char* name = "hierarchical_clusters";
    /// dist/data_parallel.hpp: the pass over the data set split over the ranks
    /// (epoch_context::features / head_outputs), the clustering run on every
    /// rank on the same features and rank 0's labels broadcast.
    static constexpr bool data_parallel = true;

    template <class Backbone, class Head>
    class state {
        static_assert(requires(Head& h) {
                          { h.super_classes() } -> std::convertible_to<std::size_t>;
                          { h.sub_classes() } -> std::convertible_to<std::size_t>;
                      },
                      "target::hierarchical_clusters needs a head with super_classes() and sub_classes(), e.g. "
                      "ssl::head::hierarchical_classifier");

    public:
        using T = typename Backbone::value_type;

        state(const hierarchical_clusters_config& c, Backbone&, Head& h) : cfg_(c) {
            require(c.reassign_every >= 1, "target::hierarchical_clusters: reassign_every must be at least 1");
            require(c.rotations >= 1, "target::hierarchical_clusters: rotations must be at least 1");
            require(c.kmeans_iterations >= 1 && c.kmeans_restarts >= 1,
                    "target::hierarchical_clusters: kmeans_iterations and kmeans_restarts must be at least 1");
            require(c.chunk >= 1, "target::hierarchical_clusters: chunk must be positive");
            require(h.super_classes() % c.rotations == 0, "target::hierarchical_clusters: the head's ",
                    h.super_classes(), " super-classes are not ", c.rotations, " rotations x m clusters");
            m_ = h.super_classes() / c.rotations;
            k2_ = h.sub_classes();
            c1_.allocate(1, c.instances);
            c2_.allocate(1, c.instances);
        }
        const hierarchical_clusters_config& config() const noexcept { return cfg_; }
        std::size_t clusters() const noexcept { return m_; }      ///< m
        std::size_t sub_clusters() const noexcept { return k2_; }  ///< k2
        const tensor<std::int64_t>& level1() const noexcept { return c1_.t; }
        const tensor<std::int64_t>& level2() const noexcept { return c2_.t; }
        /// objective: the sum of the level-2 k-means objectives; nonempty: leaf
        /// clusters (c1, c2) with an image; nmi_prev: between successive leaf
        /// assignments.
        const std::optional<reassignment_stats>& last_reassignment() const noexcept { return stats_; }

        epoch_plan begin_epoch(epoch_context<Backbone, Head>& ctx) {
            c1_.ensure(1, ctx.data.size(), "target::hierarchical_clusters", ctx.data.name);
            c2_.ensure(1, ctx.data.size(), "target::hierarchical_clusters", ctx.data.name);
            epoch_plan plan;
            const bool due = !assigned() || ctx.epoch % cfg_.reassign_every == 0;
            if (due && !ctx.resumed_mid_epoch) {
                reassign(ctx);
                if (cfg_.reinit_head) plan.reinit_head = detail::reinit_seed(ctx.seed, ctx.epoch);
            }
            require(assigned(), "target::hierarchical_clusters: resumed in the middle of epoch ", ctx.epoch + 1,
                    " but the checkpoint holds no cluster labels");
            if (cfg_.uniform_sampling) plan.order = uniform_label_order(leaves(), ctx.data.size(), ctx.seed, ctx.epoch);
            return plan;
        }

        loss::hierarchical_targets targets(const target_input<T>& in) { return targets(in.views(), in.ids()); }
        /// The same from the views and the batch's sample ids.
        loss::hierarchical_targets targets(const std::vector<tensor<T>>& views, std::span<const std::size_t> ids) {
            require(assigned(), "target::hierarchical_clusters: no cluster labels yet; begin_epoch computes them "
                    "(ssl::trainer calls it before every epoch)");
            require<shape_error>(views.size() == 1 && views[0].dim(0) == cfg_.rotations * ids.size(),
                                 "target::hierarchical_clusters: expects one view of ", cfg_.rotations, " x ",
                                 ids.size(), " rows (the rotations stacked, augment::rotations), got ",
                                 views.empty() ? std::string("no view") : views[0].shape().str());
            const std::size_t n = c1_.instances();
            std::vector<std::int64_t> a(ids.size()), b(ids.size());
            for (std::size_t i = 0; i < ids.size(); ++i) {
                require(ids[i] < n, "target::hierarchical_clusters: sample ", ids[i], " is outside the ", n,
                        " clustered images");
                a[i] = c1_.t[ids[i]];
                b[i] = c2_.t[ids[i]];
            }
            auto t = hierarchical_batch_targets(a, b, cfg_.rotations, m_, k2_);
            if (stats_ && stats_->nmi_prev) t.metrics.emplace_back("nmi_prev", *stats_->nmi_prev);
            return t;
        }
        target_request after_step(Backbone&, Head&, loss::hierarchical_targets&&, const target_step&) { return {}; }
        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            if (c1_.t.defined()) f(join_name(prefix, "clusters"), c1_.t);
            if (c2_.t.defined()) f(join_name(prefix, "sub_clusters"), c2_.t);
        }

    private:
        bool assigned() const { return c1_.assigned() && c2_.assigned(); }
        /// Leaf cluster c1 * k2 + c2 of every image.
        std::vector<std::int64_t> leaves() const {
            const std::size_t n = c1_.instances();
            std::vector<std::int64_t> v(n);
            for (std::size_t i = 0; i < n; ++i) v[i] = c1_.t[i] * static_cast<std::int64_t>(k2_) + c2_.t[i];
            return v;
        }

        void reassign(epoch_context<Backbone, Head>& ctx) {
            const tensor<float> x = detail::prepare_cluster_features(ctx.features(cfg_.chunk), cfg_.features);
            const std::size_t n = x.dim(0), d = x.dim(1);
            require(n >= m_, "target::hierarchical_clusters: ", n, " images cannot make ", m_, " clusters");
            const std::optional<std::vector<std::int64_t>> old =
                assigned() ? std::optional(leaves()) : std::nullopt;
            reassignment_stats st;
            st.epoch = ctx.epoch;
            // level 1
            std::vector<std::int64_t> a(n, 0), b(n, 0);
            if (m_ > 1) {
                auto km = cluster::kmeans(x, {.k = m_, .iterations = cfg_.kmeans_iterations,
                                              .restarts = cfg_.kmeans_restarts,
                                              .seed = stream_id(ctx.seed, ctx.epoch, 0x1E7E1ull)});
                require(km.assignments.size() == n, "target::hierarchical_clusters: k-means returned ",
                        km.assignments.size(), " assignments for ", n, " images");
                std::copy(km.assignments.begin(), km.assignments.end(), a.begin());
            }
            // level 2, inside every level-1 cluster
            std::vector<std::vector<std::size_t>> members(m_);
            for (std::size_t i = 0; i < n; ++i) members[static_cast<std::size_t>(a[i])].push_back(i);
            for (std::size_t c = 0; c < m_; ++c) {
                const auto& mem = members[c];
                if (mem.empty()) continue;
                if (k2_ == 1) continue;  // one sub-class: all 0
                if (mem.size() <= k2_) {
                    for (std::size_t j = 0; j < mem.size(); ++j) b[mem[j]] = static_cast<std::int64_t>(j);
                    continue;
                }
                tensor<float> xc({mem.size(), d});
                for (std::size_t j = 0; j < mem.size(); ++j) std::copy_n(x.data() + mem[j] * d, d, xc.data() + j * d);
                auto km = cluster::kmeans(xc, {.k = k2_, .iterations = cfg_.kmeans_iterations,
                                               .restarts = cfg_.kmeans_restarts,
                                               .seed = stream_id(ctx.seed, ctx.epoch, 0x1E7E2ull, c)});
                st.objective += km.objective;
                for (std::size_t j = 0; j < mem.size(); ++j) b[mem[j]] = static_cast<std::int64_t>(km.assignments[j]);
            }
            if (ctx.ranks && ctx.ranks->size() > 1) {  // every rank clustered the same features; rank 0's labels
                ctx.ranks->broadcast(std::span<std::int64_t>(a), 0);
                ctx.ranks->broadcast(std::span<std::int64_t>(b), 0);
            }
            std::copy(a.begin(), a.end(), c1_.t.data());
            std::copy(b.begin(), b.end(), c2_.t.data());
            const auto leaf = leaves();
            std::vector<std::int64_t> sorted = leaf;
            std::sort(sorted.begin(), sorted.end());
            st.nonempty = static_cast<std::size_t>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
            if (old) st.nmi_prev = eval::clustering_nmi(*old, leaf);
            stats_ = st;
        }

        hierarchical_clusters_config cfg_;
        std::size_t m_ = 1, k2_ = 1;
        detail::instance_labels c1_, c2_;
        std::optional<reassignment_stats> stats_;
    };
};

}  // namespace ssl::target
