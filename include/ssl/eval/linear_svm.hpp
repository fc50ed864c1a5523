#pragma once
// Linear SVM evaluation of frozen features, the VOC07 protocol of Goyal et
// al. 2019 ("Scaling and Benchmarking Self-Supervised Visual Representation
// Learning"): one-vs-rest linear SVMs, squared hinge loss, L2 penalty, cost
// C chosen by 3-fold cross-validation over a log grid.
//
//   auto r = ssl::eval::linear_svm_evaluate(train_f, train_y, test_f, test_y);   // CV over r.cv.costs
//   r.cost, r.cv.top1[i], r.train_top1, r.test_top1, r.model.predict(other_features)
//   auto f = ssl::eval::linear_svm_fit(train_f, train_y, {.cost = 0.1});           // one cost, no CV
//
// Per class k (targets y_i = +1 on class k, -1 elsewhere) and x~_i = [x_i, B]
// (the constant B = svm_config::bias appends the intercept, which the penalty
// includes, as in LIBLINEAR and scikit-learn's LinearSVC), the primal is
//   P(w) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i w^T x~_i)^2
// and its dual (Hsieh et al. 2008, "A Dual Coordinate Descent Method for
// Large-scale Linear SVM", L2-loss case)
//   min_{alpha >= 0} f(alpha) = 1/2 alpha^T (Q + D) alpha - sum_i alpha_i,
//   Q_ij = y_i y_j x~_i^T x~_j,  D_ii = 1 / (2C),  w(alpha) = sum_i alpha_i y_i x~_i,
// so f(alpha) = 1/2 ||w||^2 + sum_i alpha_i^2 / (4C) - sum_i alpha_i and, at
// the optimum, P(w*) = -f(alpha*) (the duality gap P(w(alpha)) + f(alpha) >= 0
// closes). Dual coordinate descent (their Algorithm 1 with the shrinking of
// Algorithm 3): passes over the active coordinates in a seeded random order;
// coordinate i takes its exact minimizer alpha_i <- max(0, alpha_i - G_i / (Q_ii + D_ii)),
// G_i = y_i w^T x~_i - 1 + D_ii alpha_i, and w is updated in O(d). The
// projected gradient PG_i is G_i, or min(G_i, 0) at alpha_i = 0; a pass ends
// the solve when max PG - min PG <= tolerance over every coordinate
// (LIBLINEAR's criterion; scikit-learn's tol). Each coordinate step lowers f
// (or leaves it), so f decreases pass by pass (svm_binary_fit::dual_history).
//
// Contract: features (N, D), float or double, finite; labels in [0, C) with
// every class of the train set (N >= 1); the model scores the classes present
// in the train set and predicts the arg-max score (the lowest class on ties).
//
// Choices:
//  - Rows L2-normalized before anything (svm_config::l2_normalize, default on),
//    as Goyal et al.'s SVM benchmark does: C then means the same on any
//    feature scale. The model applies the same normalization to what it scores.
//  - One cost for all classes, the one of the highest mean 3-fold CV top-1
//    accuracy (the smaller cost on ties: the stronger regularization). VOC07 is
//    multi-label and picks a cost per class by AP; a single-label set is scored
//    by the multi-class prediction, so the classes share one cost.
//  - Folds stratified and seeded: each class's samples in a seeded random
//    order, dealt round-robin to the folds; every class needs >= folds samples.
//  - Default grid 10^-3 .. 10^2 (six costs): on L2-normalized rows it spans
//    heavy regularization (all samples support vectors) to nearly hard margin.
//  - In CV the costs are solved in ascending order from the previous cost's
//    alpha (a feasible start, alpha >= 0 being the only constraint): the
//    solutions move little between neighbouring costs, so large costs, the
//    slow ones for CD, start near their optimum. The final fit starts at 0.
//  - The prepared features, w and alpha in double (a float row's dot product
//    with a double w does not vectorize: 3x slower at D = 256): 8 N D bytes;
//    one task per class (per (fold, class) in CV) on ssl::parallel_for, each
//    seeded on its own, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "metrics.hpp"

namespace ssl::eval {

struct svm_config {
    double cost = 1.0;                  ///< C of linear_svm_fit (CV picks it in linear_svm_evaluate)
    double tolerance = 1e-4;            ///< stop when max PG - min PG <= tolerance (scikit-learn's tol)
    std::size_t max_iterations = 1000;  ///< passes over the data at most (scikit-learn's max_iter)
    double bias = 1.0;                  ///< the appended constant B (intercept_scaling); 0: no intercept
    bool l2_normalize = true;           ///< rows to unit L2 norm first (Goyal et al.)
    std::uint64_t seed = 0;             ///< coordinate order of the passes
};

struct svm_cv_config {
    std::vector<double> costs{1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0};  ///< the grid, any order (solved ascending)
    std::size_t folds = 3;
    std::uint64_t fold_seed = 0;  ///< the stratified fold assignment
    svm_config svm{};             ///< everything but the cost
};

/// One binary problem's solution (one class against the rest).
struct svm_binary_fit {
    std::vector<double> w;             ///< D + 1 weights (the last multiplies the constant B)
    std::vector<double> alpha;         ///< the dual variables, one per sample
    std::size_t iterations = 0;        ///< passes done
    bool converged = false;            ///< max PG - min PG <= tolerance within max_iterations
    std::vector<double> dual_history;  ///< f(alpha) after each pass (non-increasing)
};

namespace detail {

/// Features (N, D) checked and copied (L2-normalized rows when asked) as a
/// row-major double matrix; names the first non-finite entry.
template <class T>
matrix<double> svm_prepare(const tensor<T>& f, bool l2, const char* who, const char* set) {
    require<shape_error>(f.rank() == 2, who, ": the ", set, " features must be (N, D), got shape ", f.shape().str());
    const std::size_t n = f.dim(0), d = f.dim(1);
    require<shape_error>(n > 0 && d > 0, who, ": empty ", set, " features ", f.shape().str());
    matrix<double> x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
    for (std::size_t i = 0; i < n; ++i) {
        const T* r = f.data() + i * d;
        double* o = x.data() + i * d;
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) {
            require<value_error>(std::isfinite(static_cast<double>(r[j])), who, ": ", set, " feature (", i, ", ", j,
                                 ") is ", static_cast<double>(r[j]), " (NaN or Inf)");
            s += static_cast<double>(r[j]) * static_cast<double>(r[j]);
        }
        const double inv = l2 && s > 0 ? 1.0 / std::sqrt(s) : 1.0;
        for (std::size_t j = 0; j < d; ++j) o[j] = static_cast<double>(r[j]) * inv;
    }
    return x;
}

template <class T>
using svm_row = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

/// x^T w in double (Eigen's packets: a plain loop's double sum is not vectorized without -ffast-math).
template <class T>
double svm_dot(const T* x, const double* w, std::size_t d) {
    const auto n = static_cast<Eigen::Index>(d);
    return svm_row<T>(x, n).template cast<double>().dot(svm_row<double>(w, n));
}

/// w += a x.
template <class T>
void svm_axpy(double a, const T* x, double* w, std::size_t d) {
    const auto n = static_cast<Eigen::Index>(d);
    Eigen::Map<Eigen::VectorXd>(w, n) += a * svm_row<T>(x, n).template cast<double>();
}

inline void check_svm_config(const svm_config& c, const char* who) {
    require<value_error>(std::isfinite(c.cost) && c.cost > 0, who, ": cost C must be finite and > 0, got ", c.cost);
    require<value_error>(std::isfinite(c.tolerance) && c.tolerance > 0, who,
                         ": tolerance must be finite and > 0, got ", c.tolerance);
    require<value_error>(c.max_iterations >= 1, who, ": max_iterations must be >= 1");
    require<value_error>(std::isfinite(c.bias) && c.bias >= 0, who, ": bias must be finite and >= 0, got ", c.bias);
}

}  // namespace detail

/// The L2-loss dual coordinate descent on rows `rows` of x (prepared rows,
/// N x D) with targets y (+1 / -1, one per entry of rows), from alpha0 (empty:
/// 0). Exposed for tests and for other protocols.
template <class T>
svm_binary_fit svm_solve_binary(const matrix<T>& x, std::span<const std::size_t> rows, std::span<const signed char> y,
                                const svm_config& cfg, std::span<const double> alpha0 = {}) {
    const std::size_t n = rows.size(), d = static_cast<std::size_t>(x.cols());
    require<shape_error>(y.size() == n, "svm_solve_binary: ", y.size(), " targets for ", n, " rows");
    require<shape_error>(alpha0.empty() || alpha0.size() == n, "svm_solve_binary: ", alpha0.size(),
                         " starting alphas for ", n, " rows");
    detail::check_svm_config(cfg, "svm_solve_binary");
    const double B = cfg.bias, dii = 1.0 / (2.0 * cfg.cost);
    svm_binary_fit r;
    r.w.assign(d + 1, 0.0);
    r.alpha.assign(n, 0.0);
    if (!alpha0.empty()) std::copy(alpha0.begin(), alpha0.end(), r.alpha.begin());
    std::vector<double> qd(n);
    for (std::size_t s = 0; s < n; ++s) {
        const T* xi = x.data() + rows[s] * d;
        qd[s] = detail::svm_row<T>(xi, static_cast<Eigen::Index>(d)).template cast<double>().squaredNorm() + B * B + dii;
        if (r.alpha[s] != 0) {
            const double a = r.alpha[s] * y[s];
            detail::svm_axpy(a, xi, r.w.data(), d);
            r.w[d] += a * B;
        }
    }
    auto dual = [&] {
        double ww = 0, aa = 0, sa = 0;
        for (double v : r.w) ww += v * v;
        for (double a : r.alpha) aa += a * a, sa += a;
        return 0.5 * ww + aa * dii / 2.0 - sa;  // sum alpha^2 / (4C) = sum alpha^2 * D_ii / 2
    };
    std::vector<std::size_t> index(n);
    for (std::size_t s = 0; s < n; ++s) index[s] = s;
    // the order of the passes: splitmix64 (a few cycles per draw: with most
    // coordinates shrunk, a pass does little more than shuffle) seeded by cfg.seed
    std::uint64_t state = cfg.seed ^ 0x5356'4d00'5356'4d00ull;
    auto below = [&state](std::size_t m) {
        std::uint64_t z = (state += 0x9E37'79B9'7F4A'7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58'476D'1CE4'E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D0'49BB'1331'11EBull;
        z ^= z >> 31;
        return static_cast<std::size_t>((static_cast<unsigned __int128>(z) * m) >> 64);  // [0, m)
    };
    std::size_t active = n;
    // shrinking threshold: alpha_i = 0 with G_i above the last pass's max PG leaves the
    // active set (no upper bound: the L2 loss's alpha is unbounded above)
    double pg_max_old = std::numeric_limits<double>::infinity();
    while (r.iterations < cfg.max_iterations) {
        double pg_max = -std::numeric_limits<double>::infinity(), pg_min = -pg_max;
        for (std::size_t s = 0; s + 1 < active; ++s)  // Fisher-Yates over the active set
            std::swap(index[s], index[s + below(active - s)]);
        for (std::size_t s = 0; s < active; ++s) {
            const std::size_t i = index[s];
            const T* xi = x.data() + rows[i] * d;
            const double yi = y[i];
            const double G = yi * (detail::svm_dot(xi, r.w.data(), d) + r.w[d] * B) - 1.0 + dii * r.alpha[i];
            double pg = 0;
            if (r.alpha[i] == 0) {
                if (G > pg_max_old) {  // shrink: at its bound and likely to stay there
                    --active;
                    std::swap(index[s], index[active]);
                    --s;
                    continue;
                }
                if (G < 0) pg = G;
            } else {
                pg = G;
            }
            pg_max = std::max(pg_max, pg);
            pg_min = std::min(pg_min, pg);
            if (std::fabs(pg) > 1e-12) {
                const double old = r.alpha[i];
                r.alpha[i] = std::max(old - G / qd[i], 0.0);
                const double step = (r.alpha[i] - old) * yi;
                detail::svm_axpy(step, xi, r.w.data(), d);
                r.w[d] += step * B;
            }
        }
        ++r.iterations;
        r.dual_history.push_back(dual());
        if (pg_max - pg_min <= cfg.tolerance || active == 0) {
            if (active == n) {
                r.converged = true;
                break;
            }
            // converged on the active set: check every coordinate again
            active = n;
            pg_max_old = std::numeric_limits<double>::infinity();
            continue;
        }
        pg_max_old = pg_max > 0 ? pg_max : std::numeric_limits<double>::infinity();
    }
    return r;
}

/// The primal objective P(w) of the binary problem (w: D + 1 weights).
template <class T>
double svm_primal(const matrix<T>& x, std::span<const std::size_t> rows, std::span<const signed char> y,
                  std::span<const double> w, double cost, double bias) {
    const std::size_t d = static_cast<std::size_t>(x.cols());
    double ww = 0, loss = 0;
    for (double v : w) ww += v * v;
    for (std::size_t s = 0; s < rows.size(); ++s) {
        const double m = 1.0 - y[s] * (detail::svm_dot(x.data() + rows[s] * d, w.data(), d) + w[d] * bias);
        if (m > 0) loss += m * m;
    }
    return 0.5 * ww + cost * loss;
}

/// The dual objective f(alpha) of the binary problem (minimized; -f is the dual's value).
template <class T>
double svm_dual(const matrix<T>& x, std::span<const std::size_t> rows, std::span<const signed char> y,
                std::span<const double> alpha, double cost, double bias) {
    const std::size_t d = static_cast<std::size_t>(x.cols());
    std::vector<double> w(d + 1, 0.0);
    double aa = 0, sa = 0;
    for (std::size_t s = 0; s < rows.size(); ++s) {
        const T* xi = x.data() + rows[s] * d;
        for (std::size_t j = 0; j < d; ++j) w[j] += alpha[s] * y[s] * static_cast<double>(xi[j]);
        w[d] += alpha[s] * y[s] * bias;
        aa += alpha[s] * alpha[s], sa += alpha[s];
    }
    double ww = 0;
    for (double v : w) ww += v * v;
    return 0.5 * ww + aa / (4.0 * cost) - sa;
}

/// One-vs-rest linear SVMs: score_k(x) = w_k^T x' + B b_k, x' the (normalized) features.
class linear_svm_model {
public:
    linear_svm_model() = default;
    linear_svm_model(matrix<double> weight, std::vector<double> bias, std::vector<std::int64_t> classes,
                     double bias_value, bool l2_normalize)
        : w_(std::move(weight)), b_(std::move(bias)), classes_(std::move(classes)), bias_value_(bias_value),
          l2_(l2_normalize) {
        require<shape_error>(static_cast<std::size_t>(w_.rows()) == b_.size() && b_.size() == classes_.size(),
                             "linear_svm_model: inconsistent sizes (weight ", w_.rows(), "x", w_.cols(), ", bias ",
                             b_.size(), ", classes ", classes_.size(), ")");
    }
    std::size_t dim() const noexcept { return static_cast<std::size_t>(w_.cols()); }
    /// (K, D) weights; row k scores classes()[k].
    const matrix<double>& weight() const noexcept { return w_; }
    /// The intercepts (B times the weight of the constant feature).
    const std::vector<double>& bias() const noexcept { return b_; }
    const std::vector<std::int64_t>& classes() const noexcept { return classes_; }

    /// Scores (N, K) of features (N, D).
    template <class T>
    tensor<double> decision_function(const tensor<T>& features) const {
        require<shape_error>(!classes_.empty(), "linear_svm_model: not trained");
        const matrix<double> x = detail::svm_prepare(features, l2_, "linear_svm_model", "scored");
        require<shape_error>(static_cast<std::size_t>(x.cols()) == dim(), "linear_svm_model: features ",
                             features.shape().str(), " for a model of dimension ", dim());
        const std::size_t n = features.dim(0), k = classes_.size(), d = dim();
        tensor<double> out({n, k});
        parallel_for(n, [&](std::size_t i, std::size_t) {
            for (std::size_t c = 0; c < k; ++c)
                out[i * k + c] = detail::svm_dot(x.data() + i * d, w_.data() + c * d, d) + b_[c];
        });
        return out;
    }

    /// Predicted label of each row (the arg-max score; the lowest class on ties).
    template <class T>
    std::vector<std::int64_t> predict(const tensor<T>& features) const {
        const tensor<double> s = decision_function(features);
        const std::size_t n = s.dim(0), k = s.dim(1);
        std::vector<std::int64_t> p(n);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t arg = 0;
            for (std::size_t c = 1; c < k; ++c)
                if (s[i * k + c] > s[i * k + arg]) arg = c;
            p[i] = classes_[arg];
        }
        return p;
    }

private:
    matrix<double> w_;
    std::vector<double> b_;
    std::vector<std::int64_t> classes_;
    double bias_value_ = 1.0;
    bool l2_ = true;
};

struct linear_svm_fit_result {
    linear_svm_model model;
    std::vector<svm_binary_fit> per_class;  ///< one per output (alpha, passes, convergence)
    bool converged = false;                 ///< every class converged
    double train_top1 = 0;
};

struct svm_cv_result {
    std::vector<double> costs;  ///< ascending
    std::vector<double> top1;   ///< mean held-out top-1 over the folds, per cost
    std::size_t best = 0;       ///< index of the chosen cost
    double cost() const { return costs.at(best); }
};

struct linear_svm_result {
    double cost = 0;  ///< the cost chosen by CV
    svm_cv_result cv;
    double train_top1 = 0, test_top1 = 0;
    bool converged = false;
    linear_svm_model model;
};

namespace detail {

struct svm_labels {
    std::vector<std::int64_t> classes;  // present, ascending
    std::vector<std::size_t> ids;       // per sample: index into classes
};

inline svm_labels svm_check_labels(std::span<const std::int64_t> labels, std::size_t n, const char* who,
                                   const char* set) {
    require<shape_error>(labels.size() == n, who, ": ", labels.size(), " ", set, " labels for ", n, " feature rows");
    detail::check_labels(labels, who, set);
    svm_labels l;
    compact_ids(labels, l.ids);
    l.classes.assign(labels.begin(), labels.end());
    std::sort(l.classes.begin(), l.classes.end());
    l.classes.erase(std::unique(l.classes.begin(), l.classes.end()), l.classes.end());
    return l;
}

/// One-vs-rest fits on the rows `rows` of x (all classes at once, one task each).
template <class T>
std::vector<svm_binary_fit> svm_ovr(const matrix<T>& x, std::span<const std::size_t> rows,
                                    std::span<const std::size_t> ids, std::size_t k, const svm_config& cfg) {
    std::vector<svm_binary_fit> fits(k);
    parallel_for(k, [&](std::size_t c, std::size_t) {
        std::vector<signed char> y(rows.size());
        for (std::size_t s = 0; s < rows.size(); ++s) y[s] = ids[rows[s]] == c ? 1 : -1;
        svm_config cc = cfg;
        cc.seed = cfg.seed + 0x9E37'79B9'7F4A'7C15ull * (c + 1);
        fits[c] = svm_solve_binary(x, rows, y, cc);
    });
    return fits;
}

inline linear_svm_model svm_model_of(const std::vector<svm_binary_fit>& fits, std::size_t d,
                                     std::vector<std::int64_t> classes, const svm_config& cfg) {
    const std::size_t k = fits.size();
    matrix<double> w(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(d));
    std::vector<double> b(k);
    for (std::size_t c = 0; c < k; ++c) {
        std::copy(fits[c].w.begin(), fits[c].w.begin() + static_cast<std::ptrdiff_t>(d), w.data() + c * d);
        b[c] = fits[c].w[d] * cfg.bias;
    }
    return linear_svm_model(std::move(w), std::move(b), std::move(classes), cfg.bias, cfg.l2_normalize);
}

}  // namespace detail

/// Stratified, seeded fold of each sample (0 .. folds-1): each class's samples
/// in a seeded random order dealt round-robin. Every class needs >= folds samples.
inline std::vector<std::size_t> stratified_folds(std::span<const std::int64_t> labels, std::size_t folds,
                                                 std::uint64_t seed) {
    constexpr const char* who = "stratified_folds";
    require<value_error>(folds >= 2, who, ": folds must be >= 2, got ", folds);
    require<shape_error>(!labels.empty(), who, ": no labels");
    detail::check_labels(labels, who, "train");
    std::vector<std::size_t> ids;
    const std::size_t k = detail::compact_ids(labels, ids);
    std::vector<std::vector<std::size_t>> members(k);
    for (std::size_t i = 0; i < ids.size(); ++i) members[ids[i]].push_back(i);
    std::vector<std::size_t> fold(labels.size());
    philox g(seed, 0x464f'4c44);  // "FOLD"
    for (std::size_t c = 0; c < k; ++c) {
        auto& m = members[c];
        require<value_error>(m.size() >= folds, who, ": class ", labels[m.front()], " has ", m.size(),
                             " samples, fewer than the ", folds, " folds (each fold must hold every class)");
        for (std::size_t s = m.size(); s > 1; --s) std::swap(m[s - 1], m[static_cast<std::size_t>(g.below(s))]);
        for (std::size_t s = 0; s < m.size(); ++s) fold[m[s]] = s % folds;
    }
    return fold;
}

/// One-vs-rest linear SVMs at one cost on all of (features, labels).
template <class T>
linear_svm_fit_result linear_svm_fit(const tensor<T>& features, std::span<const std::int64_t> labels,
                                     const svm_config& cfg = {}) {
    static_assert(std::is_floating_point_v<T>, "ssl::eval linear SVM needs floating-point features");
    constexpr const char* who = "linear_svm_fit";
    detail::check_svm_config(cfg, who);
    const matrix<double> x = detail::svm_prepare(features, cfg.l2_normalize, who, "train");
    const std::size_t n = features.dim(0), d = features.dim(1);
    auto l = detail::svm_check_labels(labels, n, who, "train");
    std::vector<std::size_t> rows(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = i;
    linear_svm_fit_result r;
    r.per_class = detail::svm_ovr(x, rows, l.ids, l.classes.size(), cfg);
    r.converged = std::all_of(r.per_class.begin(), r.per_class.end(), [](const auto& f) { return f.converged; });
    r.model = detail::svm_model_of(r.per_class, d, l.classes, cfg);
    r.train_top1 = top1_accuracy(r.model.predict(features), labels);
    return r;
}

/// k-fold cross-validated top-1 accuracy of the one-vs-rest SVMs at each cost.
template <class T>
svm_cv_result svm_cross_validate(const tensor<T>& features, std::span<const std::int64_t> labels,
                                 const svm_cv_config& cv = {}) {
    static_assert(std::is_floating_point_v<T>, "ssl::eval linear SVM needs floating-point features");
    constexpr const char* who = "svm_cross_validate";
    require<value_error>(!cv.costs.empty(), who, ": the cost grid is empty");
    for (double c : cv.costs)
        require<value_error>(std::isfinite(c) && c > 0, who, ": every cost must be finite and > 0, got ", c);
    svm_config base = cv.svm;
    base.cost = cv.costs.front();
    detail::check_svm_config(base, who);
    const matrix<double> x = detail::svm_prepare(features, cv.svm.l2_normalize, who, "train");
    const std::size_t n = features.dim(0), d = features.dim(1);
    auto l = detail::svm_check_labels(labels, n, who, "train");
    const std::size_t k = l.classes.size(), nf = cv.folds;
    const auto fold = stratified_folds(labels, nf, cv.fold_seed);
    svm_cv_result r;
    r.costs = cv.costs;
    std::sort(r.costs.begin(), r.costs.end());
    r.costs.erase(std::unique(r.costs.begin(), r.costs.end()), r.costs.end());
    const std::size_t nc = r.costs.size();
    std::vector<std::vector<std::size_t>> train_rows(nf), held_rows(nf);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t f = 0; f < nf; ++f) (fold[i] == f ? held_rows : train_rows)[f].push_back(i);
    // scores[f][cost][held sample * k + class]
    std::vector<std::vector<std::vector<double>>> scores(
        nf, std::vector<std::vector<double>>(nc, std::vector<double>()));
    for (std::size_t f = 0; f < nf; ++f)
        for (auto& s : scores[f]) s.assign(held_rows[f].size() * k, 0.0);
    parallel_for(nf * k, [&](std::size_t t, std::size_t) {
        const std::size_t f = t / k, c = t % k;
        const auto& rows = train_rows[f];
        std::vector<signed char> y(rows.size());
        for (std::size_t s = 0; s < rows.size(); ++s) y[s] = l.ids[rows[s]] == c ? 1 : -1;
        std::vector<double> alpha;
        for (std::size_t ci = 0; ci < nc; ++ci) {
            svm_config cc = cv.svm;
            cc.cost = r.costs[ci];
            cc.seed = cv.svm.seed + 0x9E37'79B9'7F4A'7C15ull * (c + 1) + 0xD1B5'4A32'D192'ED03ull * (f + 1);
            auto fit = svm_solve_binary(x, rows, y, cc, alpha);
            alpha = std::move(fit.alpha);
            const auto& held = held_rows[f];
            for (std::size_t s = 0; s < held.size(); ++s)
                scores[f][ci][s * k + c] = detail::svm_dot(x.data() + held[s] * d, fit.w.data(), d) + fit.w[d] * cc.bias;
        }
    });
    r.top1.assign(nc, 0.0);
    for (std::size_t ci = 0; ci < nc; ++ci) {
        for (std::size_t f = 0; f < nf; ++f) {
            const auto& held = held_rows[f];
            std::size_t hit = 0;
            for (std::size_t s = 0; s < held.size(); ++s) {
                const double* sc = scores[f][ci].data() + s * k;
                std::size_t arg = 0;
                for (std::size_t c = 1; c < k; ++c)
                    if (sc[c] > sc[arg]) arg = c;
                hit += arg == l.ids[held[s]];
            }
            r.top1[ci] += static_cast<double>(hit) / static_cast<double>(held.size());
        }
        r.top1[ci] /= static_cast<double>(nf);
        if (r.top1[ci] > r.top1[r.best]) r.best = ci;  // strictly: the smaller cost on ties
    }
    return r;
}

/// The VOC07 protocol: the cost by k-fold CV on the train set, then the SVMs
/// at that cost on the whole train set, scored on the test set.
template <class T>
linear_svm_result linear_svm_evaluate(const tensor<T>& train_features, std::span<const std::int64_t> train_labels,
                                      const tensor<T>& test_features, std::span<const std::int64_t> test_labels,
                                      const svm_cv_config& cv = {}) {
    constexpr const char* who = "linear_svm_evaluate";
    check_rank(train_features, 2, who, "(N_train, D) for the train features");
    check_rank(test_features, 2, who, "(N_test, D) for the test features");
    require<shape_error>(test_features.dim(0) > 0, who, ": empty test features ", test_features.shape().str());
    require<shape_error>(test_features.dim(1) == train_features.dim(1), who, ": feature dimensions differ: train ",
                         train_features.shape().str(), ", test ", test_features.shape().str());
    require<shape_error>(test_labels.size() == test_features.dim(0), who, ": ", test_labels.size(),
                         " test labels for test features ", test_features.shape().str());
    detail::check_labels(test_labels, who, "test");
    linear_svm_result r;
    r.cv = svm_cross_validate(train_features, train_labels, cv);
    r.cost = r.cv.cost();
    svm_config c = cv.svm;
    c.cost = r.cost;
    auto fit = linear_svm_fit(train_features, train_labels, c);
    r.train_top1 = fit.train_top1;
    r.converged = fit.converged;
    r.model = std::move(fit.model);
    r.test_top1 = top1_accuracy(r.model.predict(test_features), test_labels);
    return r;
}

}  // namespace ssl::eval
