#pragma once
// Method-level losses of the clustering methods (ssl::loss_policy), and the
// pseudo-label batches their target updates hand them (target_update/protocol.hpp:
// the target's targets(input) returns one of these, the method passes it to
// compute unchanged).
//
//   pseudo_label_classification  DeepCluster (Caron et al., ECCV 2018, eq. 2):
//       cross entropy of the k-way classifier against the k-means labels;
//       SeLa (Asano et al., ICLR 2020, eq. 1 and sec. 3.4): with H heads the
//       online output (B, H*K) is H blocks of K logits and the loss is the mean
//       over heads of each head's cross entropy with its own labels.
//   hierarchical_classification  DeeperCluster (Caron et al., ICCV 2019,
//       eq. 4): CE(super-class logits, super-class) + CE(the sample's
//       super-class's sub-classifier, sub-class), each averaged over the rows
//       (every rotated copy is a row). Only the sub-classifier block of the
//       row's own super-class gets a gradient.
//
// Both carry the target update's metrics (NMI between successive
// assignments, ...) into the step's metrics, so the trainer's progress line
// shows them next to the pseudo-label accuracy.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "cross_entropy.hpp"

namespace ssl::loss {

/// Pseudo-labels for one batch (DeepCluster, SeLa).
struct pseudo_label_targets {
    /// heads x rows, head-major: labels[h * rows + i] is the class of row i
    /// for head h.
    std::vector<std::int64_t> labels;
    std::size_t heads = 1;
    /// Reported with the loss (e.g. {"nmi_prev", 0.8}).
    std::vector<std::pair<std::string, double>> metrics;
};

/// Super- and sub-class targets for one batch of rotated rows (DeeperCluster).
struct hierarchical_targets {
    std::vector<std::int64_t> super;  ///< one per row, in [0, super_classes)
    std::vector<std::int64_t> sub;    ///< one per row, in [0, sub_classes)
    std::size_t super_classes = 0;    ///< S = rotations * clusters
    std::size_t sub_classes = 0;      ///< k2
    /// m, the level-1 clusters: super = rotation * m + cluster. 0: unknown
    /// (the rotation cross-check below is skipped).
    std::size_t clusters = 0;
    std::vector<std::pair<std::string, double>> metrics;
};

namespace detail {
/// Columns [c0, c0 + k) of every row of x (N, D): (N, k).
template <class T>
tensor<T> column_block(const tensor<T>& x, std::size_t c0, std::size_t k) {
    const std::size_t n = x.dim(0), d = x.dim(1);
    tensor<T> out({n, k});
    for (std::size_t i = 0; i < n; ++i) std::copy_n(x.data() + i * d + c0, k, out.data() + i * k);
    return out;
}
}  // namespace detail

/// DeepCluster and SeLa: mean over heads of the cross entropy of each head's
/// logit block with its pseudo-labels. (T = double for gradient checks.)
template <class T = float>
class pseudo_label_classification {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp: a mean over independent rows
    using config_type = cross_entropy_config;
    explicit pseudo_label_classification(const cross_entropy_config& c = {}) : ce_(c) {}
    const cross_entropy_config& config() const noexcept { return ce_.config(); }

    loss_output<T> compute(const std::vector<tensor<T>>& online, const pseudo_label_targets& t,
                           const view_batch<T>& = {}) const {
        require(online.size() == 1, "pseudo_label_classification: needs 1 view, got ", online.size());
        const tensor<T>& z = online[0];
        check_rank(z, 2, "pseudo_label_classification", "(B, heads * classes) logits");
        const std::size_t n = z.dim(0), d = z.dim(1), h = t.heads;
        require(h >= 1, "pseudo_label_classification: the targets have 0 heads");
        require<shape_error>(d % h == 0, "pseudo_label_classification: ", d, " logits per row do not split into ", h,
                             " heads");
        require<shape_error>(t.labels.size() == h * n, "pseudo_label_classification: ", t.labels.size(),
                             " pseudo-labels for ", h, " head(s) x ", n, " rows");
        const std::size_t k = d / h;
        loss_output<T> out;
        if (h == 1) {
            auto r = ce_(z, t.labels);
            out.value = r.value;
            out.grads.push_back(std::move(r.grad));
            out.metrics.emplace_back("pseudo_top1", 100.0 * static_cast<double>(r.correct) / static_cast<double>(n));
        } else {
            tensor<T> g({n, d});
            double total = 0, correct = 0;
            const T inv_h = T(1) / static_cast<T>(h);
            for (std::size_t j = 0; j < h; ++j) {
                auto r = ce_(detail::column_block(z, j * k, k),
                             std::span<const std::int64_t>(t.labels).subspan(j * n, n));
                total += r.value;
                correct += static_cast<double>(r.correct);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t c = 0; c < k; ++c) g.data()[i * d + j * k + c] = r.grad.data()[i * k + c] * inv_h;
            }
            out.value = total / static_cast<double>(h);
            out.grads.push_back(std::move(g));
            out.metrics.emplace_back("pseudo_top1", 100.0 * correct / static_cast<double>(n * h));
        }
        out.metrics.insert(out.metrics.end(), t.metrics.begin(), t.metrics.end());
        return out;
    }

private:
    cross_entropy<T> ce_;
};

/// DeeperCluster: CE over the S super-classes + CE over the k2 sub-classes of
/// each row's super-class. online (R, S + S*k2) as head::hierarchical_classifier
/// lays it out; labels, when given, are the rotation index of every row and
/// must agree with super / clusters. (T = double for gradient checks.)
template <class T = float>
class hierarchical_classification {
public:
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp: a mean over independent rows
    using config_type = cross_entropy_config;
    explicit hierarchical_classification(const cross_entropy_config& c = {}) : ce_(c) {}
    const cross_entropy_config& config() const noexcept { return ce_.config(); }

    loss_output<T> compute(const std::vector<tensor<T>>& online, const hierarchical_targets& t,
                           const view_batch<T>& vb = {}) const {
        const std::span<const std::int64_t> labels = vb.labels;
        require(online.size() == 1, "hierarchical_classification: needs 1 view (the rotations stacked), got ",
                online.size());
        const tensor<T>& z = online[0];
        check_rank(z, 2, "hierarchical_classification", "(R, S + S*k2) logits");
        const std::size_t n = z.dim(0), s = t.super_classes, k2 = t.sub_classes, d = s * (1 + k2);
        require<shape_error>(s >= 1 && k2 >= 1 && z.dim(1) == d, "hierarchical_classification: logits of shape ",
                             z.shape().str(), " for ", s, " super-classes of ", k2, " sub-classes (expected ", d,
                             " columns)");
        require<shape_error>(t.super.size() == n && t.sub.size() == n, "hierarchical_classification: ",
                             t.super.size(), " super-class and ", t.sub.size(), " sub-class targets for ", n, " rows");
        if (!labels.empty() && t.clusters > 0) {
            require<shape_error>(labels.size() == n, "hierarchical_classification: ", labels.size(),
                                 " rotation labels for ", n, " rows");
            for (std::size_t i = 0; i < n; ++i)
                require(t.super[i] / static_cast<std::int64_t>(t.clusters) == labels[i],
                        "hierarchical_classification: row ", i, " has rotation ", labels[i], " but super-class ",
                        t.super[i], " (= rotation * ", t.clusters, " + cluster) says rotation ",
                        t.super[i] / static_cast<std::int64_t>(t.clusters),
                        "; the target and the augmentation disagree on the row layout");
        }
        // super-class part
        auto rs = ce_(detail::column_block(z, 0, s), t.super);
        // sub-class part: the k2 logits of each row's own super-class block
        tensor<T> zs({n, k2});
        for (std::size_t i = 0; i < n; ++i) {
            const std::int64_t sc = t.super[i];
            require(sc >= 0 && static_cast<std::size_t>(sc) < s, "hierarchical_classification: super-class ", sc,
                    " of row ", i, " is outside [0, ", s, ")");
            std::copy_n(z.data() + i * d + s + static_cast<std::size_t>(sc) * k2, k2, zs.data() + i * k2);
        }
        auto rb = ce_(zs, t.sub);
        tensor<T> g({n, d}, T(0));
        for (std::size_t i = 0; i < n; ++i) {
            std::copy_n(rs.grad.data() + i * s, s, g.data() + i * d);
            std::copy_n(rb.grad.data() + i * k2, k2, g.data() + i * d + s + static_cast<std::size_t>(t.super[i]) * k2);
        }
        loss_output<T> out;
        out.value = rs.value + rb.value;
        out.grads.push_back(std::move(g));
        const double nn = static_cast<double>(n);
        out.metrics.emplace_back("super_top1", 100.0 * static_cast<double>(rs.correct) / nn);
        out.metrics.emplace_back("sub_top1", 100.0 * static_cast<double>(rb.correct) / nn);
        out.metrics.insert(out.metrics.end(), t.metrics.begin(), t.metrics.end());
        return out;
    }

private:
    cross_entropy<T> ce_;
};

}  // namespace ssl::loss
