#pragma once
// S4L's objective (Zhai, Oliver, Kolesnikov, Beyer, "S4L: Self-Supervised
// Semi-Supervised Learning", ICCV 2019, eq. 1):
//     L = L_sup(labelled rows) + w * L_self(all rows),   w = 1 in the paper
// on one view whose rows are `copies` transformed versions of each of the N
// samples (row r * N + i: copy r of sample i) and whose head output is
// [self-supervised outputs | K class logits] (head::concat of the two heads):
//   L_sup   mean softmax cross entropy of the class logits over the rows of
//           labelled samples (every copy of them); 0 when the batch has none
//   L_self  the Self policy on the first self_outputs columns of every row:
//           rotation_self (4-way rotation cross entropy against the view
//           batch's labels, S4L-Rotation) or triplet_self (batch-hard
//           soft-margin triplet loss, copies of one sample are positives,
//           S4L-Exemplar; loss/triplet.hpp)
//
// The labelled subset: `labelled` lists the sample ids (sorted) whose class
// the step may use (data::labelled_subset). compute() first hides every other
// sample's class (-1) before anything reads it, so an unlabelled image's
// label never reaches the loss value or its gradient.
//
// Contract: one view; vb.classes holds the N samples' classes (the trainer
// passes the data set's labels); class labels of labelled samples in [0, K).
// Metrics: the Self policy's, class_top1 over the batch's labelled rows (0
// when none) and labelled_rows.
//
// Choices:
//   one batch     labelled and unlabelled images share the batch (the paper
//                 draws them in two batches); the hidden labels decide which
//                 rows the class loss sees
//   w = 0         the supervised-only baseline on the same subset, trunk and
//                 views: the self-supervised head gets no gradient
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/error.hpp"
#include "cross_entropy.hpp"
#include "triplet.hpp"

namespace ssl::loss {

struct s4l_config {
    std::size_t self_outputs = 4;  ///< the self-supervised head's columns (4 rotation logits, or the embedding width)
    std::size_t classes = 10;      ///< K class logits after them
    double self_weight = 1;        ///< w (0: supervised only)
    double labelled_fraction = 0;  ///< the fraction the subset was drawn with (recorded; 0: given by hand)
    std::uint64_t subset_seed = 0;  ///< its seed (recorded)
    std::vector<std::size_t> labelled;  ///< sorted sample ids whose class the step may use
};

/// Self-supervised part of S4L-Rotation: cross entropy of the rotation
/// logits against vb.labels (the rotation index of every row).
struct rotation_self {
    static constexpr const char* name = "rotation";
    template <class T>
    static loss_result<T> compute(const tensor<T>& z, const view_batch<T>& vb,
                                  std::vector<std::pair<std::string, double>>& metrics) {
        require<shape_error>(vb.labels.size() == z.dim(0), "s4l rotation: ", vb.labels.size(),
                             " rotation labels for ", z.dim(0), " rows (augment::rotations labels every row)");
        auto r = cross_entropy<T>{}(z, std::span<const std::int64_t>(vb.labels));
        metrics.emplace_back("pretext_top1", 100.0 * static_cast<double>(r.correct) / static_cast<double>(z.dim(0)));
        return r;
    }
};

/// Self-supervised part of S4L-Exemplar: batch-hard soft-margin triplet loss
/// with the copies of one sample as its group.
struct triplet_self {
    static constexpr const char* name = "triplet";
    template <class T>
    static loss_result<T> compute(const tensor<T>& z, const view_batch<T>& vb,
                                  std::vector<std::pair<std::string, double>>& metrics) {
        const std::size_t rows = z.dim(0), n = vb.samples() ? vb.samples() : rows / vb.spec(0).copies;
        require<shape_error>(n > 0 && rows % n == 0, "s4l triplet: ", rows, " rows are not copies of ", n, " samples");
        const std::vector<std::int64_t> groups = copy_groups(rows, n);  // numbered across the ranks
        auto t = batch_hard_triplet_step(z, groups);  // negatives from every rank's rows
        metrics.emplace_back("triplet_violated", 100.0 * t.violated);
        return {t.value, std::move(t.grad), 0};
    }
};

template <class Self, class T = float>
class s4l {
public:
    /// dist/data_parallel.hpp: L_self per row (rotation) or over all ranks'
    /// rows (the triplet's negatives); L_sup normalised by the global batch's
    /// labelled rows (their count differs between the ranks' slices).
    static constexpr bool data_parallel = true;
    using config_type = s4l_config;
    explicit s4l(const s4l_config& c = {}) : cfg_(c) {
        require(c.self_outputs > 0 && c.classes >= 2, "s4l: needs self_outputs > 0 and at least 2 classes, got ",
                c.self_outputs, " and ", c.classes);
        require(std::isfinite(c.self_weight) && c.self_weight >= 0, "s4l: self_weight must be finite and >= 0, got ",
                c.self_weight);
        require(std::is_sorted(c.labelled.begin(), c.labelled.end()) &&
                    std::adjacent_find(c.labelled.begin(), c.labelled.end()) == c.labelled.end(),
                "s4l: the labelled sample ids must be sorted and distinct");
    }
    const s4l_config& config() const noexcept { return cfg_; }

    /// The N samples' classes as the step may see them: -1 outside the labelled subset.
    std::vector<std::int64_t> visible_classes(const view_batch<T>& vb) const {
        require(!cfg_.labelled.empty(), "s4l: the labelled subset is empty; set config.loss.labelled "
                "(data::labelled_subset draws it)");
        require<shape_error>(vb.classes.size() == vb.samples() && !vb.classes.empty(), "s4l: the batch carries ",
                             vb.classes.size(), " class labels for ", vb.samples(), " samples; S4L needs the "
                             "labelled set's classes (train on a labelled data set)");
        std::vector<std::int64_t> c(vb.samples(), -1);
        for (std::size_t i = 0; i < c.size(); ++i)
            if (std::binary_search(cfg_.labelled.begin(), cfg_.labelled.end(), vb.ids[i])) c[i] = vb.classes[i];
        return c;
    }

    template <class Targets>
    loss_output<T> compute(const std::vector<tensor<T>>& online, const Targets&, const view_batch<T>& vb) const {
        require(online.size() == 1, "s4l: needs 1 view (the copies of every sample stacked), got ", online.size());
        const tensor<T>& y = online[0];
        const std::size_t s = cfg_.self_outputs, k = cfg_.classes, rows = y.rank() == 2 ? y.dim(0) : 0;
        require<shape_error>(y.rank() == 2 && y.dim(1) == s + k, "s4l: head output of shape ", y.shape().str(),
                             ", expected (rows, ", s, " self-supervised + ", k, " class outputs)");
        const std::vector<std::int64_t> cls = visible_classes(vb);
        const std::size_t n = cls.size();
        require<shape_error>(rows % n == 0, "s4l: ", rows, " rows are not copies of ", n, " samples");
        loss_output<T> out;
        out.grads.push_back(tensor<T>::zeros(y.shape()));
        T* g = out.grads[0].data();
        // L_self on every row
        tensor<T> zs({rows, s});
        for (std::size_t r = 0; r < rows; ++r) std::copy_n(y.data() + r * (s + k), s, zs.data() + r * s);
        auto self = Self::compute(zs, vb, out.metrics);
        const double w = cfg_.self_weight;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < s; ++j) g[r * (s + k) + j] = static_cast<T>(w * self.grad[r * s + j]);
        // L_sup on the rows of labelled samples
        std::vector<std::size_t> lab;
        std::vector<std::int64_t> targets;
        std::string bad;
        for (std::size_t r = 0; r < rows; ++r)
            if (const std::int64_t c = cls[r % n]; c >= 0) {
                if (static_cast<std::size_t>(c) >= k) {
                    if (bad.empty())
                        bad = ssl::detail::cat("s4l: class ", c, " of sample ", vb.ids[r % n], " is outside the head's ",
                                               k, " classes");
                    continue;
                }
                lab.push_back(r);
                targets.push_back(c);
            }
        // data parallel: a bad class on any rank stops every rank (none is left
        // waiting in the sums below). L_sup is the mean over the GLOBAL batch's
        // labelled rows; this rank's value is P / L_global x its rows' sum (the
        // trainer averages the ranks' values); every rank joins the sums
        dist::communicator* comm = dist::active();
        if (comm ? comm->max(static_cast<std::int32_t>(!bad.empty())) != 0 : !bad.empty())
            throw value_error(bad.empty() ? ssl::detail::cat("s4l: a labelled sample's class on another rank is outside "
                                                             "the head's ", k, " classes")
                                          : bad);
        const double P = comm ? static_cast<double>(comm->size()) : 1.0;
        const double labelled = comm ? comm->sum(static_cast<double>(lab.size())) : static_cast<double>(lab.size());
        double sup = 0;
        std::size_t correct = 0;
        if (!lab.empty()) {
            tensor<T> zc({lab.size(), k});
            for (std::size_t q = 0; q < lab.size(); ++q) std::copy_n(y.data() + lab[q] * (s + k) + s, k, zc.data() + q * k);
            auto ce = cross_entropy<T>{}(zc, std::span<const std::int64_t>(targets));
            const double scale = P * static_cast<double>(lab.size()) / labelled;  // 1 in one process
            for (std::size_t q = 0; q < lab.size(); ++q)
                for (std::size_t j = 0; j < k; ++j)
                    g[lab[q] * (s + k) + s + j] = static_cast<T>(scale * static_cast<double>(ce.grad[q * k + j]));
            sup = scale * ce.value;
            correct = ce.correct;
        }
        const double right = comm ? comm->sum(static_cast<double>(correct)) : static_cast<double>(correct);
        const double top1 = labelled > 0 ? 100.0 * right / labelled : 0.0;  // the global batch's, on every rank
        out.value = sup + w * self.value;
        out.metrics.emplace_back("class_top1", top1);
        out.metrics.emplace_back("labelled_rows", labelled);  // the global batch's
        return out;
    }

private:
    s4l_config cfg_;
};

}  // namespace ssl::loss
