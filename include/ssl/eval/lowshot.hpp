#pragma once
// Low-shot evaluation of frozen features (Goyal et al. 2019, Sec. 5 / Table 5):
// a linear classifier trained on k labelled images per class, k in {1, 2, 4,
// 8, 16, 32, 64, 96}, each k drawn five times; the test top-1 accuracy's mean
// and standard deviation over the draws.
//
//   auto r = ssl::eval::lowshot_evaluate(train_f, train_y, test_f, test_y, {.shots = {1, 8, 64}});
//   for (auto& row : r.rows) row.shots, row.mean, row.std, row.top1[draw]
//   auto idx = ssl::eval::lowshot_draw(train_y, 8, seed, draw);   // the images of one draw
//
// A draw is stratified: exactly k images of every class of the train set,
// chosen without replacement by a seeded partial Fisher-Yates shuffle of the
// class's images (philox keyed by `seed`, stream = the draw index), so draw d
// of k images is the same on every run and every thread count. A k larger
// than the smallest class is refused with a sentence naming the class.
//
// Choices:
//  - The classifier: the one-vs-rest linear SVM (linear_svm.hpp) at a fixed
//    cost (lowshot_config::svm.cost; Goyal et al. use their full-data SVM
//    setting, `ssl eval` passes the cost CV chose on the full train set:
//    3-fold CV is impossible at k = 1, 2), or the linear probe (linear_probe.hpp).
//  - std: the sample standard deviation (n - 1) over the draws (0 for one draw).
//  - Draws of different k are independent (not nested): each k's five draws
//    are five fresh stratified samples.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "linear_probe.hpp"
#include "linear_svm.hpp"
#include "metrics.hpp"

namespace ssl::eval {

enum class lowshot_classifier { svm, probe };

struct lowshot_config {
    std::vector<std::size_t> shots{1, 2, 4, 8, 16, 32, 64, 96};  ///< k, images per class
    std::size_t draws = 5;                                       ///< random draws per k
    std::uint64_t seed = 0;
    lowshot_classifier classifier = lowshot_classifier::svm;
    svm_config svm{};                  ///< the SVM (its cost) when classifier == svm
    linear_probe_config probe{};       ///< the probe when classifier == probe
};

struct lowshot_row {
    std::size_t shots = 0;
    std::vector<double> top1;  ///< test top-1 of each draw
    double mean = 0, std = 0;
};

struct lowshot_result {
    std::vector<lowshot_row> rows;  ///< one per k, in the order asked
};

/// The smallest number of images of one class in labels (and which class).
inline std::pair<std::size_t, std::int64_t> smallest_class(std::span<const std::int64_t> labels) {
    std::vector<std::size_t> ids;
    const std::size_t k = detail::compact_ids(labels, ids);
    std::vector<std::size_t> count(k, 0);
    std::vector<std::int64_t> value(k, 0);
    for (std::size_t i = 0; i < ids.size(); ++i) ++count[ids[i]], value[ids[i]] = labels[i];
    std::size_t arg = 0;
    for (std::size_t c = 1; c < k; ++c)
        if (count[c] < count[arg]) arg = c;
    return {k ? count[arg] : 0, k ? value[arg] : -1};
}

/// Draw `draw` of k images per class (indices into labels, ascending).
inline std::vector<std::size_t> lowshot_draw(std::span<const std::int64_t> labels, std::size_t k, std::uint64_t seed,
                                             std::size_t draw) {
    constexpr const char* who = "lowshot_draw";
    require<shape_error>(!labels.empty(), who, ": no labelled images");
    require<value_error>(k >= 1, who, ": k must be >= 1 image per class");
    detail::check_labels(labels, who, "train");
    std::vector<std::size_t> ids;
    const std::size_t nc = detail::compact_ids(labels, ids);
    std::vector<std::vector<std::size_t>> members(nc);
    for (std::size_t i = 0; i < ids.size(); ++i) members[ids[i]].push_back(i);
    const auto [least, cls] = smallest_class(labels);
    require<value_error>(k <= least, who, ": k = ", k, " images per class, but class ", cls, " has only ", least,
                         " labelled images; use k <= ", least);
    philox g(seed, 0x4c53'0000'0000ull + draw);  // "LS", one stream per draw
    std::vector<std::size_t> out;
    out.reserve(k * nc);
    for (auto& m : members) {
        for (std::size_t s = 0; s < k; ++s)  // partial Fisher-Yates: m[0, k) is a uniform k-subset
            std::swap(m[s], m[s + static_cast<std::size_t>(g.below(m.size() - s))]);
        out.insert(out.end(), m.begin(), m.begin() + static_cast<std::ptrdiff_t>(k));
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// Rows `idx` of features (N, D).
template <class T>
tensor<T> gather_rows(const tensor<T>& f, std::span<const std::size_t> idx) {
    const std::size_t d = f.dim(1);
    tensor<T> out({idx.size(), d});
    for (std::size_t r = 0; r < idx.size(); ++r) std::copy_n(f.data() + idx[r] * d, d, out.data() + r * d);
    return out;
}

/// Mean and sample standard deviation of the values.
inline std::pair<double, double> mean_std(std::span<const double> v) {
    if (v.empty()) return {0, 0};
    double m = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

/// The low-shot protocol: for each k and draw, the classifier on the draw's
/// train images, scored on the whole test set.
template <class T>
lowshot_result lowshot_evaluate(const tensor<T>& train_features, std::span<const std::int64_t> train_labels,
                                const tensor<T>& test_features, std::span<const std::int64_t> test_labels,
                                const lowshot_config& cfg = {}) {
    constexpr const char* who = "lowshot_evaluate";
    require<shape_error>(train_features.rank() == 2 && test_features.rank() == 2, who,
                         ": features must be (N, D), got train ", train_features.shape().str(), " and test ",
                         test_features.shape().str());
    require<shape_error>(train_features.dim(0) > 0 && train_features.dim(1) > 0, who, ": empty train features ",
                         train_features.shape().str());
    require<shape_error>(test_features.dim(0) > 0, who, ": empty test features ", test_features.shape().str());
    require<shape_error>(train_labels.size() == train_features.dim(0), who, ": ", train_labels.size(),
                         " train labels for train features ", train_features.shape().str());
    require<shape_error>(test_labels.size() == test_features.dim(0), who, ": ", test_labels.size(),
                         " test labels for test features ", test_features.shape().str());
    require<shape_error>(test_features.dim(1) == train_features.dim(1), who, ": feature dimensions differ: train ",
                         train_features.shape().str(), ", test ", test_features.shape().str());
    require<value_error>(!cfg.shots.empty(), who, ": no k (shots) to evaluate");
    require<value_error>(cfg.draws >= 1, who, ": draws must be >= 1");
    detail::check_labels(test_labels, who, "test");
    lowshot_result r;
    for (std::size_t k : cfg.shots) {
        lowshot_row row;
        row.shots = k;
        for (std::size_t d = 0; d < cfg.draws; ++d) {
            const auto idx = lowshot_draw(train_labels, k, cfg.seed, d);
            const tensor<T> x = gather_rows(train_features, idx);
            std::vector<std::int64_t> y(idx.size());
            for (std::size_t i = 0; i < idx.size(); ++i) y[i] = train_labels[idx[i]];
            double acc = 0;
            if (cfg.classifier == lowshot_classifier::svm) {
                const auto fit = linear_svm_fit(x, y, cfg.svm);
                acc = top1_accuracy(fit.model.predict(test_features), test_labels);
            } else {
                acc = linear_probe(x, y, test_features, test_labels, cfg.probe).test_top1;
            }
            row.top1.push_back(acc);
        }
        std::tie(row.mean, row.std) = mean_std(row.top1);
        r.rows.push_back(std::move(row));
    }
    return r;
}

}  // namespace ssl::eval
