#pragma once
// Metrics of the evaluation protocols:
//   top1_accuracy(predictions, labels)       fraction of equal entries
//   clustering_nmi(labels_true, labels_pred)  normalized mutual information
//       NMI = I(U; V) / ((H(U) + H(V)) / 2)   (arithmetic-mean normalization,
//       scikit-learn's default; natural logarithms, though the ratio does
//       not depend on the base). Label values are arbitrary integers (only
//       equality matters), so cluster ids need not match class ids. Two
//       constant labelings give 1; one constant and one not gives 0.
// Also the label checks shared by kNN and the linear probe.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace ssl::eval {

namespace detail {

/// Throws unless every label is in [0, num_classes) (num_classes > 0) or,
/// with num_classes == 0, >= 0. Returns 1 + the largest label (0 if empty).
inline std::size_t check_labels(std::span<const std::int64_t> labels, const char* who, const char* which,
                                std::size_t num_classes = 0) {
    std::int64_t mx = -1;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::int64_t y = labels[i];
        require<value_error>(y >= 0, who, ": ", which, " label ", y, " at index ", i, " is negative");
        require<value_error>(num_classes == 0 || static_cast<std::size_t>(y) < num_classes, who, ": ", which,
                             " label ", y, " at index ", i, " is outside [0, ", num_classes, ")");
        mx = std::max(mx, y);
    }
    return static_cast<std::size_t>(mx + 1);
}

/// Maps arbitrary integer labels to 0..k-1 (in order of value); returns k.
inline std::size_t compact_ids(std::span<const std::int64_t> labels, std::vector<std::size_t>& ids) {
    std::vector<std::int64_t> values(labels.begin(), labels.end());
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    ids.resize(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i)
        ids[i] = static_cast<std::size_t>(std::lower_bound(values.begin(), values.end(), labels[i]) - values.begin());
    return values.size();
}

}  // namespace detail

/// Fraction of i with predictions[i] == labels[i].
inline double top1_accuracy(std::span<const std::int64_t> predictions, std::span<const std::int64_t> labels) {
    require<shape_error>(predictions.size() == labels.size(), "top1_accuracy: ", predictions.size(),
                         " predictions for ", labels.size(), " labels");
    require<shape_error>(!labels.empty(), "top1_accuracy: no samples");
    std::size_t hit = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) hit += predictions[i] == labels[i];
    return static_cast<double>(hit) / static_cast<double>(labels.size());
}

/// Normalized mutual information of two labelings of the same samples, in [0, 1].
inline double clustering_nmi(std::span<const std::int64_t> labels_true, std::span<const std::int64_t> labels_pred) {
    require<shape_error>(labels_true.size() == labels_pred.size(), "clustering_nmi: ", labels_true.size(),
                         " true labels for ", labels_pred.size(), " predicted labels");
    require<shape_error>(!labels_true.empty(), "clustering_nmi: no samples");
    const std::size_t n = labels_true.size();
    std::vector<std::size_t> u, v;
    const std::size_t ku = detail::compact_ids(labels_true, u);
    const std::size_t kv = detail::compact_ids(labels_pred, v);
    if (ku == 1 && kv == 1) return 1.0;  // identical (trivial) partitions
    if (ku == 1 || kv == 1) return 0.0;  // no information shared with a constant labeling
    std::vector<double> cu(ku, 0.0), cv(kv, 0.0);
    for (std::size_t i = 0; i < n; ++i) cu[u[i]] += 1, cv[v[i]] += 1;
    // Sparse contingency table: sort the (u, v) pairs and count runs.
    std::vector<std::pair<std::size_t, std::size_t>> pairs(n);
    for (std::size_t i = 0; i < n; ++i) pairs[i] = {u[i], v[i]};
    std::sort(pairs.begin(), pairs.end());
    const double N = static_cast<double>(n);
    double mi = 0;
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i;
        while (j < n && pairs[j] == pairs[i]) ++j;
        const double nij = static_cast<double>(j - i);
        // (nij / N) log(N nij / (a_i b_j))
        mi += nij / N * std::log(N * nij / (cu[pairs[i].first] * cv[pairs[i].second]));
        i = j;
    }
    auto entropy = [N](const std::vector<double>& c) {
        double h = 0;
        for (double x : c) h -= x / N * std::log(x / N);
        return h;
    };
    const double hu = entropy(cu), hv = entropy(cv);
    const double nmi = mi / ((hu + hv) / 2);
    return std::clamp(nmi, 0.0, 1.0);
}

}  // namespace ssl::eval
