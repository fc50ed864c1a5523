#pragma once
// The multi-task loss (Doersch & Zisserman, ICCV 2017): the chosen tasks'
// losses on one step's views, weighted and summed,
//     L = sum_t w_t L_t       (w_t = 1: the paper's plain sum)
//   rotation      cross entropy over 4 rotations (row k * N + i: label k)
//   jigsaw        cross entropy over the P permutations (one row per sample)
//   exemplar      batch-hard soft-margin triplet loss on the copies' L2-
//                 normalised embeddings, copies of one image the positives
//                 (loss/triplet.hpp)
//   colorization  KL to the local hue / chroma histograms (loss/colorization.hpp)
// The lasso's L1 penalty is the head's (head/multitask.hpp), not part of L.
//
// Contract: view v belongs to task spec(v).branch (multitask/tasks.hpp), one
// view per task; view_batch::labels holds, in view order, one label per head
// output row of each classification task's view (rotation's 4N, jigsaw's N:
// augment::multitask_views' layout); colorization's targets are
// view_batch::soft_targets. A layout that does not add up is an error that
// says so. Metrics: each task's loss and accuracy (or triplet violations).
//
// Choices:
//   data parallel  declared: every term is a mean over rows whose count per
//                  image is fixed, and the triplet's hardest positives and
//                  negatives come from all ranks' rows (batch_hard_triplet_step)
#include <string>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "../multitask/tasks.hpp"
#include "colorization.hpp"
#include "cross_entropy.hpp"
#include "triplet.hpp"

namespace ssl::loss {

struct multitask_loss_config {
    double rotation_weight = 1;
    double jigsaw_weight = 1;
    double exemplar_weight = 1;
    double colorization_weight = 1;
    colorization_kl_config colorization{};
};

class multitask_loss {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp (see Choices)
    using config_type = multitask_loss_config;
    explicit multitask_loss(const config_type& c = {}) : cfg_(c), kl_(c.colorization) {
        for (double w : {c.rotation_weight, c.jigsaw_weight, c.exemplar_weight, c.colorization_weight})
            require<value_error>(std::isfinite(w) && w >= 0, "multitask_loss: task weights must be finite and >= 0, got ", w);
    }
    const config_type& config() const noexcept { return cfg_; }
    double weight(pretext::task t) const noexcept {
        switch (t) {
            case pretext::task::rotation: return cfg_.rotation_weight;
            case pretext::task::jigsaw: return cfg_.jigsaw_weight;
            case pretext::task::exemplar: return cfg_.exemplar_weight;
            case pretext::task::colorization: return cfg_.colorization_weight;
        }
        return 0;
    }

    loss_output<float> compute(const std::vector<tensor<float>>& online, const std::vector<tensor<float>>&,
                               const view_batch<float>& vb) const {
        require<shape_error>(online.size() == vb.views.size(), "multitask_loss: ", online.size(), " outputs for ",
                             vb.views.size(), " views");
        loss_output<float> out;
        out.grads.resize(online.size());
        std::size_t label = 0;
        std::vector<bool> seen(pretext::task_count, false);
        for (std::size_t v = 0; v < online.size(); ++v) {
            const view_spec s = vb.spec(v);
            require<value_error>(s.branch < pretext::task_count, "multitask_loss: view ", v, " has branch ", s.branch,
                                 ", not a task slot");
            const auto t = static_cast<pretext::task>(s.branch);
            require<value_error>(!seen[s.branch], "multitask_loss: two views of task '", pretext::name(t), "'");
            seen[s.branch] = true;
            const std::string n = pretext::name(t);
            const double w = weight(t);
            const tensor<float>& z = online[v];
            double value = 0;
            tensor<float> g;
            switch (t) {
                case pretext::task::rotation:
                case pretext::task::jigsaw: {
                    const std::size_t rows = z.dim(0);
                    require<shape_error>(label + rows <= vb.labels.size(), "multitask_loss: the ", n, " view has ",
                                         rows, " output rows but only ", vb.labels.size() - label,
                                         " labels are left (labels: one per output row of each classification view, "
                                         "in view order)");
                    const std::span<const std::int64_t> y(vb.labels.data() + label, rows);
                    label += rows;
                    auto r = ce_(z, y);
                    value = r.value;
                    g = std::move(r.grad);
                    out.metrics.emplace_back(n + "_top1", 100.0 * static_cast<double>(r.correct) / static_cast<double>(rows));
                    break;
                }
                case pretext::task::exemplar: {
                    const std::size_t rows = z.dim(0);
                    require<shape_error>(s.copies >= 2 && rows % s.copies == 0, "multitask_loss: the exemplar view has ",
                                         rows, " rows in ", s.copies, " copies (needs 2 or more copies per sample)");
                    const std::size_t samples = rows / s.copies;
                    const dist::communicator* ranks = dist::active();  // the negatives come from every rank
                    const std::size_t global = samples * (ranks ? static_cast<std::size_t>(ranks->size()) : 1);
                    require<value_error>(global >= 2, "multitask_loss: the exemplar task needs at least 2 images per "
                                         "batch (another image's copies are the triplet's negatives), got ", global);
                    const std::vector<std::int64_t> groups = copy_groups(rows, samples);  // across the ranks
                    auto r = batch_hard_triplet_step(z, groups);  // negatives from every rank's rows
                    value = r.value;
                    g = std::move(r.grad);
                    out.metrics.emplace_back("exemplar_violated", 100.0 * r.violated);
                    break;
                }
                case pretext::task::colorization: {
                    require<value_error>(vb.soft_targets.defined(), "multitask_loss: a colorization view but the "
                                         "view batch has no soft_targets (the hue / chroma histograms)");
                    auto r = kl_(z, vb.soft_targets);
                    value = r.value;
                    g = std::move(r.grads.at(0));
                    for (auto& [k, m] : r.metrics) out.metrics.emplace_back("colorization_" + k, m);
                    break;
                }
            }
            if (w != 1.0)
                for (auto& x : g) x = static_cast<float>(static_cast<double>(x) * w);
            out.value += w * value;
            out.metrics.emplace_back(n + "_loss", value);
            out.grads[v] = std::move(g);
        }
        require<shape_error>(label == vb.labels.size(), "multitask_loss: ", vb.labels.size() - label,
                             " labels left over after every classification view took one per output row");
        return out;
    }

private:
    config_type cfg_;
    cross_entropy<float> ce_{};
    colorization_kl kl_;
};

}  // namespace ssl::loss
