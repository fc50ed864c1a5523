#pragma once
// Linear evaluation ("linear probe") of frozen features: multinomial
// logistic regression trained to convergence with full-batch L-BFGS.
//
//   auto r = ssl::eval::linear_probe(train_f, train_y, test_f, test_y, {.weight_decay = 1e-4});
//   r.train_top1, r.test_top1, r.converged, r.iterations, r.loss
//   auto pred = r.classifier.predict(other_features);
//
// Features are standardized with the train set's mean and population std (a
// constant dimension is only centred); the classifier stores both and applies
// them to what it predicts. Over the standardized x_i and the K classes present
// in the train set (the outputs),
//   f(W, b) = 1/N sum_i -log softmax(W x_i + b)_{y_i} + (lambda / 2) ||W||^2,
//   dW = 1/N (P - Y)^T X + lambda W,   db = 1/N (P - Y)^T 1   (b not decayed).
// L-BFGS (Nocedal & Wright, Alg. 7.4/7.5): two-loop recursion over the last
// `history` pairs, scaling s^T y / y^T y, backtracking Armijo search (c1 = 1e-4,
// safeguarded quadratic interpolation, 30 trials) from step 1; pairs with
// s^T y <= 1e-10 ||s|| ||y|| skipped. Converged: ||grad f|| <= tolerance x
// ||grad f(0)|| (from W = 0, b = 0); `iterations` counts L-BFGS steps. A failed
// search drops the memory and tries steepest descent; probe_stop::no_progress
// when that fails too, after 5 failed searches, or after 20 steps lowering
// neither f nor the least gradient norm seen (the rounding floor, where
// tolerance 0 ends).
//
// Choices:
//  - lambda > 0: on separable features (common for good SSL features, always
//    for N <= D) the unregularized loss has no minimum; with lambda > 0, f is
//    strongly convex in W (in b on sum(b) = 0, where the iterates stay), so
//    L-BFGS converges to its one minimizer (Liu & Nocedal 1989; Zoutendijk).
//    0 is allowed: on separable data the relative tolerance then stops it.
//  - lambda = 1e-4 (scikit-learn's C = 1 / (lambda N), ~0.17 at N = 60k): barely
//    moves a fitted probe's accuracy, keeps L-BFGS well conditioned; sweep
//    1e-6 .. 1e-2 on a held-out split for a paper-grade number, as the SimCLR
//    and BYOL protocols do.
//  - The standardized copy and the GEMMs in double, whatever the feature type
//    (60k x 512: 246 MB): in float, logit rounding stalls L-BFGS near 1e-5.
//  - 2048-row chunks over ssl::parallel_for summed in a fixed order: results do
//    not depend on the thread count.
// Measurements (iterations; float against double): bench/README.md, linear probe.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../ops/rows.hpp"
#include "metrics.hpp"

namespace ssl::eval {

struct linear_probe_config {
    double weight_decay = 1e-4;        ///< lambda of (lambda / 2) ||W||^2 on the mean loss; >= 0
    std::size_t max_iterations = 500;  ///< L-BFGS steps at most
    double tolerance = 1e-5;           ///< stop when ||grad|| <= tolerance * ||grad at start||
    std::size_t history = 10;          ///< L-BFGS memory (pairs)
};

/// The probe's objective f(theta) and its gradient, exposed for tests and
/// for other optimizers. theta = [W (K x D, row-major), b (K)]; the features
/// are used as given (linear_probe passes standardized ones).
template <class C = double>
class softmax_regression {
    static_assert(std::is_floating_point_v<C>, "ssl::eval::softmax_regression<C> needs a floating-point C");

public:
    static constexpr std::size_t chunk_rows = 2048;

    /// features (N, D); labels N integers in [0, num_classes).
    softmax_regression(tensor<C> features, std::span<const std::int64_t> labels, std::size_t num_classes,
                       double weight_decay)
        : x_(std::move(features)), wd_(weight_decay), k_(num_classes) {
        check_rank(x_, 2, "softmax_regression", "(N, D) features");
        require<shape_error>(labels.size() == x_.dim(0), "softmax_regression: ", labels.size(),
                             " labels for features ", x_.shape().str());
        require<shape_error>(x_.dim(0) > 0 && x_.dim(1) > 0, "softmax_regression: empty features ",
                             x_.shape().str());
        require<value_error>(num_classes >= 1, "softmax_regression: num_classes must be >= 1");
        require<value_error>(std::isfinite(weight_decay) && weight_decay >= 0,
                             "softmax_regression: weight_decay must be finite and >= 0, got ", weight_decay);
        detail::check_labels(labels, "softmax_regression", "train", num_classes);
        y_.assign(labels.begin(), labels.end());
    }

    std::size_t num_samples() const noexcept { return x_.dim(0); }
    std::size_t dim() const noexcept { return x_.dim(1); }
    std::size_t num_classes() const noexcept { return k_; }
    std::size_t num_parameters() const noexcept { return k_ * dim() + k_; }

    /// f(theta); writes the gradient into grad (both num_parameters() long).
    /// `correct`, when given, receives the number of samples whose arg-max
    /// logit is the label.
    double operator()(std::span<const double> theta, std::span<double> grad, std::size_t* correct = nullptr) const {
        const std::size_t n = num_samples(), d = dim(), k = k_, kd = k * d;
        require<shape_error>(theta.size() == num_parameters() && grad.size() == num_parameters(),
                             "softmax_regression: ", theta.size(), " parameters and ", grad.size(),
                             " gradient entries, expected ", num_parameters());
        const auto K = static_cast<Eigen::Index>(k), D = static_cast<Eigen::Index>(d);
        matrix<C> W(K, D);
        for (std::size_t i = 0; i < kd; ++i) W.data()[i] = static_cast<C>(theta[i]);
        const double* b = theta.data() + kd;
        const std::size_t chunks = (n + chunk_rows - 1) / chunk_rows;
        std::vector<double> part(chunks * (kd + k), 0.0), loss(chunks, 0.0);
        std::vector<std::size_t> hits(chunks, 0);
        const auto X = as_matrix(x_);
        parallel_for(chunks, [&](std::size_t c, std::size_t) {
            const std::size_t r0 = c * chunk_rows, r1 = std::min(n, r0 + chunk_rows), nr = r1 - r0;
            const auto Xc = X.middleRows(static_cast<Eigen::Index>(r0), static_cast<Eigen::Index>(nr));
            matrix<C> L(static_cast<Eigen::Index>(nr), K);
            L.noalias() = Xc * W.transpose();
            double* pc = part.data() + c * (kd + k);
            double lsum = 0;
            std::vector<double> z(k);
            for (std::size_t i = 0; i < nr; ++i) {
                C* li = L.data() + i * k;
                const auto y = static_cast<std::size_t>(y_[r0 + i]);
                std::size_t arg = 0;
                for (std::size_t j = 0; j < k; ++j) {
                    z[j] = static_cast<double>(li[j]) + b[j];
                    if (z[j] > z[arg]) arg = j;
                }
                hits[c] += arg == y;
                const double lse = ops::row_logsumexp(z.data(), k);
                lsum += lse - z[y];
                for (std::size_t j = 0; j < k; ++j) {
                    const double g = std::exp(z[j] - lse) - (j == y ? 1.0 : 0.0);
                    li[j] = static_cast<C>(g);
                    pc[kd + j] += g;
                }
            }
            matrix<C> G(K, D);
            G.noalias() = L.transpose() * Xc;
            for (std::size_t i = 0; i < kd; ++i) pc[i] = static_cast<double>(G.data()[i]);
            loss[c] = lsum;
        });
        const double inv_n = 1.0 / static_cast<double>(n);
        std::fill(grad.begin(), grad.end(), 0.0);
        double total = 0;
        for (std::size_t c = 0; c < chunks; ++c) {
            total += loss[c];
            const double* pc = part.data() + c * (kd + k);
            for (std::size_t i = 0; i < kd + k; ++i) grad[i] += pc[i];
        }
        double reg = 0;
        for (std::size_t i = 0; i < kd + k; ++i) grad[i] *= inv_n;
        for (std::size_t i = 0; i < kd; ++i) {
            reg += theta[i] * theta[i];
            grad[i] += wd_ * theta[i];
        }
        if (correct) {
            *correct = 0;
            for (auto h : hits) *correct += h;
        }
        return total * inv_n + 0.5 * wd_ * reg;
    }

private:
    tensor<C> x_;
    std::vector<std::int64_t> y_;
    double wd_;
    std::size_t k_;
};

/// A trained linear classifier on standardized features:
/// logits = W ((x - mean) / scale) + b, over the classes of its train set.
class linear_classifier {
public:
    linear_classifier() = default;
    linear_classifier(matrix<double> weight, std::vector<double> bias, std::vector<double> mean,
                      std::vector<double> scale, std::vector<std::int64_t> classes)
        : w_(std::move(weight)), b_(std::move(bias)), mean_(std::move(mean)), scale_(std::move(scale)),
          classes_(std::move(classes)) {
        require<shape_error>(static_cast<std::size_t>(w_.rows()) == b_.size() && b_.size() == classes_.size() &&
                                 static_cast<std::size_t>(w_.cols()) == mean_.size() && mean_.size() == scale_.size(),
                             "linear_classifier: inconsistent sizes (weight ", w_.rows(), "x", w_.cols(), ", bias ",
                             b_.size(), ", classes ", classes_.size(), ", mean ", mean_.size(), ", scale ",
                             scale_.size(), ")");
    }

    std::size_t dim() const noexcept { return mean_.size(); }
    std::size_t num_outputs() const noexcept { return classes_.size(); }
    /// (K, D) weights on standardized features; row j scores classes()[j].
    const matrix<double>& weight() const noexcept { return w_; }
    const std::vector<double>& bias() const noexcept { return b_; }
    const std::vector<double>& mean() const noexcept { return mean_; }
    const std::vector<double>& scale() const noexcept { return scale_; }
    /// The label of each output (the classes present in the train set, ascending).
    const std::vector<std::int64_t>& classes() const noexcept { return classes_; }

    /// Logits (N, K) of features (N, D); column j scores classes()[j].
    template <class T>
    tensor<double> logits(const tensor<T>& features) const {
        check_rank(features, 2, "linear_classifier", "(N, D) features");
        require<shape_error>(features.dim(1) == dim(), "linear_classifier: features ", features.shape().str(),
                             " for a classifier of dimension ", dim());
        require<shape_error>(!classes_.empty(), "linear_classifier: not trained");
        const std::size_t n = features.dim(0), d = dim(), k = num_outputs();
        tensor<double> out({n, k});
        const std::size_t rows = softmax_regression<double>::chunk_rows, chunks = (n + rows - 1) / rows;
        parallel_for(chunks, [&](std::size_t c, std::size_t) {
            const std::size_t r0 = c * rows, r1 = std::min(n, r0 + rows), nr = r1 - r0;
            matrix<double> X(static_cast<Eigen::Index>(nr), static_cast<Eigen::Index>(d));
            for (std::size_t i = 0; i < nr; ++i)
                for (std::size_t j = 0; j < d; ++j)
                    X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
                        (static_cast<double>(features[(r0 + i) * d + j]) - mean_[j]) / scale_[j];
            const matrix<double> L = X * w_.transpose();
            for (std::size_t i = 0; i < nr; ++i)
                for (std::size_t j = 0; j < k; ++j)
                    out[(r0 + i) * k + j] = L(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) + b_[j];
        });
        return out;
    }

    /// Predicted label of each row of features (N, D).
    template <class T>
    std::vector<std::int64_t> predict(const tensor<T>& features) const {
        const tensor<double> l = logits(features);
        const std::size_t n = l.dim(0), k = l.dim(1);
        std::vector<std::int64_t> p(n);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t arg = 0;
            for (std::size_t j = 1; j < k; ++j)
                if (l[i * k + j] > l[i * k + arg]) arg = j;
            p[i] = classes_[arg];
        }
        return p;
    }

private:
    matrix<double> w_;
    std::vector<double> b_, mean_, scale_;
    std::vector<std::int64_t> classes_;
};

/// Why the L-BFGS loop ended.
enum class probe_stop {
    gradient_tolerance,  ///< converged: ||grad|| <= tolerance * ||grad at start||
    max_iterations,      ///< the step budget ran out first
    no_progress,         ///< f and the gradient stopped improving before the tolerance was met
                         ///< (line searches fail, or the rounding floor of double is reached)
};

struct linear_probe_result {
    double train_top1 = 0;
    double test_top1 = 0;
    std::size_t iterations = 0;     ///< L-BFGS steps taken
    std::size_t evaluations = 0;    ///< objective + gradient evaluations
    double loss = 0;                ///< final objective (mean cross entropy + weight decay term)
    double gradient_norm = 0;       ///< ||grad f|| at the end
    bool converged = false;         ///< gradient criterion met within max_iterations
    probe_stop stop = probe_stop::max_iterations;
    linear_classifier classifier;
};

namespace detail {

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

}  // namespace detail

/// Trains a linear classifier on (train_features, train_labels) and reports
/// its top-1 accuracy on the train and test sets (features float or double).
template <class T>
linear_probe_result linear_probe(const tensor<T>& train_features, std::span<const std::int64_t> train_labels,
                                    const tensor<T>& test_features, std::span<const std::int64_t> test_labels,
                                    const linear_probe_config& cfg = {}) {
    constexpr const char* who = "linear_probe";
    check_rank(train_features, 2, who, "(N_train, D) for the train features");
    check_rank(test_features, 2, who, "(N_test, D) for the test features");
    const std::size_t n = train_features.dim(0), d = train_features.dim(1);
    require<shape_error>(n > 0 && d > 0, who, ": empty train features ", train_features.shape().str());
    require<shape_error>(test_features.dim(0) > 0, who, ": empty test features ", test_features.shape().str());
    require<shape_error>(test_features.dim(1) == d, who, ": feature dimensions differ: train ",
                         train_features.shape().str(), ", test ", test_features.shape().str());
    require<shape_error>(train_labels.size() == n, who, ": ", train_labels.size(), " train labels for features ",
                         train_features.shape().str());
    require<shape_error>(test_labels.size() == test_features.dim(0), who, ": ", test_labels.size(),
                         " test labels for features ", test_features.shape().str());
    require<value_error>(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0, who,
                         ": weight_decay must be finite and >= 0, got ", cfg.weight_decay);
    require<value_error>(std::isfinite(cfg.tolerance) && cfg.tolerance >= 0, who,
                         ": tolerance must be finite and >= 0, got ", cfg.tolerance);
    require<value_error>(cfg.history >= 1, who, ": history must be >= 1");
    detail::check_labels(train_labels, who, "train");
    detail::check_labels(test_labels, who, "test");

    // Classes present in the train set -> outputs 0..K-1.
    std::vector<std::size_t> ids;
    const std::size_t k = detail::compact_ids(train_labels, ids);
    std::vector<std::int64_t> classes(train_labels.begin(), train_labels.end());
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    std::vector<std::int64_t> y(ids.begin(), ids.end());

    // Standardization statistics (double) and the standardized copy.
    std::vector<double> mean(d, 0.0), scale(d, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) mean[j] += static_cast<double>(train_features[i * d + j]);
    for (auto& m : mean) m /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) {
            const double v = static_cast<double>(train_features[i * d + j]) - mean[j];
            scale[j] += v * v;
        }
    for (std::size_t j = 0; j < d; ++j) {
        require<value_error>(std::isfinite(mean[j]) && std::isfinite(scale[j]), who,
                             ": train features contain NaN or Inf (dimension ", j, ")");
        const double sd = std::sqrt(scale[j] / static_cast<double>(n));
        scale[j] = sd > 0 ? sd : 1.0;
    }
    tensor<double> xs({n, d});
    parallel_for((n + 1023) / 1024, [&](std::size_t c, std::size_t) {
        const std::size_t r1 = std::min(n, (c + 1) * 1024);
        for (std::size_t i = c * 1024; i < r1; ++i)
            for (std::size_t j = 0; j < d; ++j)
                xs[i * d + j] = (static_cast<double>(train_features[i * d + j]) - mean[j]) / scale[j];
    });

    const softmax_regression<double> f(xs, y, k, cfg.weight_decay);
    const std::size_t p = f.num_parameters();
    linear_probe_result r;

    // L-BFGS.
    std::vector<double> x(p, 0.0), g(p), xn(p), gn(p), dir(p);
    double fx = f(x, g);
    r.evaluations = 1;
    const double g0 = std::sqrt(detail::dot(g, g));
    const double threshold = cfg.tolerance * g0;
    std::deque<std::vector<double>> S, Y;
    std::deque<double> rho;
    std::vector<double> alpha(cfg.history);
    double gnorm = g0;
    double best_gnorm = g0;
    std::size_t failed_searches = 0, stalled = 0;
    for (;;) {
        if (gnorm <= threshold) {
            r.converged = true;
            r.stop = probe_stop::gradient_tolerance;
            break;
        }
        if (r.iterations >= cfg.max_iterations) {
            r.stop = probe_stop::max_iterations;
            break;
        }
        // Direction: two-loop recursion.
        for (std::size_t i = 0; i < p; ++i) dir[i] = -g[i];
        const std::size_t m = S.size();
        for (std::size_t j = m; j-- > 0;) {
            alpha[j] = rho[j] * detail::dot(S[j], dir);
            for (std::size_t i = 0; i < p; ++i) dir[i] -= alpha[j] * Y[j][i];
        }
        const double gamma = m ? detail::dot(S[m - 1], Y[m - 1]) / detail::dot(Y[m - 1], Y[m - 1]) : 1.0 / gnorm;
        for (auto& v : dir) v *= gamma;
        for (std::size_t j = 0; j < m; ++j) {
            const double beta = rho[j] * detail::dot(Y[j], dir);
            for (std::size_t i = 0; i < p; ++i) dir[i] += S[j][i] * (alpha[j] - beta);
        }
        double slope = detail::dot(g, dir);
        if (!(slope < 0)) {  // not a descent direction (rounding): restart from steepest descent
            S.clear(), Y.clear(), rho.clear();
            for (std::size_t i = 0; i < p; ++i) dir[i] = -g[i] / gnorm;
            slope = -gnorm;
        }
        // Backtracking Armijo line search.
        double t = 1.0, fn = 0;
        bool accepted = false;
        for (int ls = 0; ls < 30; ++ls) {
            for (std::size_t i = 0; i < p; ++i) xn[i] = x[i] + t * dir[i];
            fn = f(xn, gn);
            ++r.evaluations;
            if (std::isfinite(fn) && fn <= fx + 1e-4 * t * slope) {
                accepted = true;
                break;
            }
            // minimizer of the quadratic through f(0), f'(0), f(t), kept in [0.1 t, 0.5 t]
            double tq = std::isfinite(fn) ? -slope * t * t / (2 * (fn - fx - slope * t)) : 0.1 * t;
            t = std::clamp(tq, 0.1 * t, 0.5 * t);
        }
        if (!accepted) {
            // Even steepest descent makes no progress, or the searches keep failing
            // (the gradient is at the rounding level of the compute type): give up.
            if (S.empty() || ++failed_searches >= 5) {
                r.stop = probe_stop::no_progress;
                break;
            }
            S.clear(), Y.clear(), rho.clear();
            continue;
        }
        std::vector<double> s(p), yv(p);
        for (std::size_t i = 0; i < p; ++i) s[i] = xn[i] - x[i], yv[i] = gn[i] - g[i];
        const double sy = detail::dot(s, yv);
        if (sy > 1e-10 * std::sqrt(detail::dot(s, s) * detail::dot(yv, yv))) {
            if (S.size() == cfg.history) S.pop_front(), Y.pop_front(), rho.pop_front();
            S.push_back(std::move(s)), Y.push_back(std::move(yv)), rho.push_back(1.0 / sy);
        }
        const bool decreased = fn < fx;
        x.swap(xn), g.swap(gn), fx = fn;
        gnorm = std::sqrt(detail::dot(g, g));
        ++r.iterations;
        // At the rounding floor steps are accepted with f unchanged; stop when
        // neither f nor the best gradient norm has improved for 20 steps.
        if (decreased || gnorm < best_gnorm)
            stalled = 0;
        else if (++stalled >= 20) {
            r.stop = probe_stop::no_progress;
            break;
        }
        best_gnorm = std::min(best_gnorm, gnorm);
    }
    std::size_t correct = 0;
    fx = f(x, g, &correct);
    ++r.evaluations;
    r.loss = fx;
    r.gradient_norm = std::sqrt(detail::dot(g, g));
    r.train_top1 = static_cast<double>(correct) / static_cast<double>(n);

    matrix<double> w(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(d));
    for (std::size_t i = 0; i < k * d; ++i) w.data()[i] = x[i];
    std::vector<double> b(x.begin() + static_cast<std::ptrdiff_t>(k * d), x.end());
    r.classifier = linear_classifier(std::move(w), std::move(b), std::move(mean), std::move(scale), classes);
    r.test_top1 = top1_accuracy(r.classifier.predict(test_features), test_labels);
    return r;
}

}  // namespace ssl::eval
