#pragma once
// PCA and PCA whitening of feature rows, DeepCluster's preprocessing before
// k-means (Caron et al. 2018: "PCA-whitened to 256 dimensions, then
// L2-normalized"; faiss.PCAMatrix(d, 256, eigen_power=-0.5) there).
//
//   ssl::cluster::pca<float> p({.dims = 256, .whiten = true, .l2_normalize = true});
//   auto y = p.fit_transform(features);        // (N, d) -> (N, 256)
//   p.mean(), p.components(), p.eigenvalues()  // double
//
// fit(x), x (N, d) with N >= 2:
//   mean     = (1/N) sum_i x_i                                   (double)
//   C        = (1/(N-1)) sum_i (x_i - mean)(x_i - mean)^T         (double, d x d)
//   C        = V diag(lambda) V^T by Eigen's SelfAdjointEigenSolver
//   the d_out largest eigenvalues (decreasing; tiny negative round-off clamped
//   to 0) and their eigenvectors as the rows of `components` (d_out, d):
//   orthonormal, each signed so that its largest-magnitude entry (the first
//   one on ties) is positive, which makes the output reproducible.
//   d_out = config.dims clamped to d: asking for 256 dims of 128-d features
//   gives 128 (output_dims() says what was used); dims = 0 is an error.
// transform(x), x (M, d):
//   y_i = W (x_i - mean), W = diag(1 / sqrt(lambda + eps)) components when
//   `whiten` (the whitened output has identity covariance over the fitted
//   data, up to lambda / (lambda + eps)), W = components otherwise; then, when
//   `l2_normalize`, y_i / max(|y_i|, 1e-12) (ssl::ops::normalize_row). eps (default 1e-8, absolute)
//   keeps directions of (near) zero variance from blowing up: it only matters
//   for eigenvalues not much larger than eps. The product runs in T (float for
//   float features) with W rounded to T, rows in tiles of 256 over
//   ssl::parallel_for.
// Cost: fit is O(N d^2) (the covariance, a GEMM in double over row blocks of
// 2048, split by column panels of 64 over the threads: memory O(d^2 + 2048 d))
// plus O(d^3) for the eigendecomposition. Every sum is taken in a fixed order
// that does not depend on the number of threads: results are bitwise the same
// at any thread count.
// Errors: value_error for N < 2, dims = 0, eps < 0, non-finite input (fit and
// transform) and transform before fit; shape_error for a rank other than 2 or a
// feature dimension that differs from the fitted one.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "../ops/rows.hpp"

namespace ssl::cluster {

struct pca_config {
    std::size_t dims = 256;     ///< output dimensions (clamped to the input dimension)
    bool whiten = true;         ///< divide by sqrt(eigenvalue + eps)
    double eps = 1e-8;          ///< added to the eigenvalues before whitening
    bool l2_normalize = false;  ///< L2-normalize the output rows (DeepCluster)
};

template <class T = float>
class pca {
    static_assert(std::is_floating_point_v<T>, "ssl::cluster::pca needs floating-point features (float or double)");

public:
    explicit pca(const pca_config& cfg = {}) : cfg_(cfg) {
        require<value_error>(cfg.dims >= 1, "pca: dims must be >= 1");
        require<value_error>(std::isfinite(cfg.eps) && cfg.eps >= 0, "pca: eps must be finite and >= 0, got ",
                             cfg.eps);
    }

    /// Fits mean, components and eigenvalues to the rows of x (N, d), N >= 2.
    pca& fit(const tensor<T>& x) {
        check_rank(x, 2, "pca::fit", "(N, d) for the features");
        const std::size_t n = x.dim(0), d = x.dim(1);
        require<value_error>(n >= 2, "pca::fit: need at least 2 rows to estimate a covariance, got shape ",
                             x.shape().str());
        require<shape_error>(d >= 1, "pca::fit: features of shape ", x.shape().str(), " have dimension 0");
        check_finite(x, "pca::fit");
        const auto D = static_cast<Eigen::Index>(d);
        const T* xd = x.data();

        // mean: double partial sums over fixed row blocks, added in block order
        const std::size_t blocks = (n + block_rows - 1) / block_rows;
        std::vector<Eigen::VectorXd> part(blocks);
        parallel_for(blocks, [&](std::size_t b, std::size_t) {
            Eigen::VectorXd s = Eigen::VectorXd::Zero(D);
            for (std::size_t i = b * block_rows; i < std::min(n, (b + 1) * block_rows); ++i)
                for (std::size_t j = 0; j < d; ++j) s[static_cast<Eigen::Index>(j)] += static_cast<double>(xd[i * d + j]);
            part[b] = std::move(s);
        });
        Eigen::VectorXd mean = Eigen::VectorXd::Zero(D);
        for (const auto& p : part) mean += p;
        mean /= static_cast<double>(n);

        // covariance: C += B^T B over blocks B of centred rows (double), output column panels in parallel
        Eigen::MatrixXd C = Eigen::MatrixXd::Zero(D, D);
        Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic> B(static_cast<Eigen::Index>(std::min(n, block_rows)), D);
        const std::size_t panels = (d + panel_cols - 1) / panel_cols;
        for (std::size_t r0 = 0; r0 < n; r0 += block_rows) {
            const std::size_t nr = std::min(block_rows, n - r0);
            const auto NR = static_cast<Eigen::Index>(nr);
            parallel_for((nr + 255) / 256, [&](std::size_t t, std::size_t) {
                for (std::size_t i = t * 256; i < std::min(nr, (t + 1) * 256); ++i)
                    for (std::size_t j = 0; j < d; ++j)
                        B(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) =
                            static_cast<double>(xd[(r0 + i) * d + j]) - mean[static_cast<Eigen::Index>(j)];
            });
            parallel_for(panels, [&](std::size_t p, std::size_t) {
                const auto j0 = static_cast<Eigen::Index>(p * panel_cols);
                const auto w = std::min<Eigen::Index>(static_cast<Eigen::Index>(panel_cols), D - j0);
                C.middleCols(j0, w).noalias() += B.topRows(NR).transpose() * B.topRows(NR).middleCols(j0, w);
            });
        }
        C /= static_cast<double>(n - 1);
        C = (0.5 * (C + C.transpose())).eval();  // exactly symmetric

        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(C);
        require<value_error>(es.info() == Eigen::Success, "pca::fit: the eigendecomposition did not converge");
        const std::size_t k = std::min(cfg_.dims, d);
        mean_ = tensor<double>({d});
        components_ = tensor<double>({k, d});
        eigenvalues_ = tensor<double>({k});
        for (std::size_t j = 0; j < d; ++j) mean_[j] = mean[static_cast<Eigen::Index>(j)];
        for (std::size_t r = 0; r < k; ++r) {
            const auto col = static_cast<Eigen::Index>(d - 1 - r);  // ascending order in Eigen
            eigenvalues_[r] = std::max(es.eigenvalues()[col], 0.0);
            Eigen::VectorXd v = es.eigenvectors().col(col);
            Eigen::Index big = 0;
            for (Eigen::Index j = 1; j < D; ++j)
                if (std::abs(v[j]) > std::abs(v[big])) big = j;
            if (v[big] < 0) v = -v;
            for (std::size_t j = 0; j < d; ++j) components_[r * d + j] = v[static_cast<Eigen::Index>(j)];
        }
        // the transform in T: W (k, d) and the mean
        W_.resize(static_cast<Eigen::Index>(k), D);
        mean_t_.resize(D);
        for (std::size_t r = 0; r < k; ++r) {
            const double f = cfg_.whiten ? 1.0 / std::sqrt(eigenvalues_[r] + cfg_.eps) : 1.0;
            require<value_error>(std::isfinite(f), "pca::fit: eigenvalue ", eigenvalues_[r],
                                 " cannot be whitened with eps = ", cfg_.eps, " (use eps > 0)");
            for (std::size_t j = 0; j < d; ++j)
                W_(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(j)) =
                    static_cast<T>(components_[r * d + j] * f);
        }
        for (std::size_t j = 0; j < d; ++j) mean_t_[static_cast<Eigen::Index>(j)] = static_cast<T>(mean_[j]);
        return *this;
    }

    /// Projects (and whitens, normalizes) the rows of x (M, d): (M, output_dims()).
    tensor<T> transform(const tensor<T>& x) const {
        require<value_error>(fitted(), "pca::transform: call fit first");
        check_rank(x, 2, "pca::transform", "(N, d) for the features");
        const std::size_t n = x.dim(0), d = x.dim(1), k = output_dims();
        require<shape_error>(d == input_dims(), "pca::transform: features ", x.shape().str(), " have dimension ", d,
                             ", the PCA was fitted on dimension ", input_dims());
        check_finite(x, "pca::transform");
        tensor<T> y({n, k});
        if (n == 0) return y;
        const auto D = static_cast<Eigen::Index>(d), K = static_cast<Eigen::Index>(k);
        const std::size_t tiles = (n + 255) / 256;
        parallel_for(tiles, [&](std::size_t t, std::size_t) {
            const std::size_t r0 = t * 256, nr = std::min<std::size_t>(256, n - r0);
            const auto NR = static_cast<Eigen::Index>(nr);
            const_matrix_map<T> X(x.data() + r0 * d, NR, D);
            matrix_map<T> Y(y.data() + r0 * k, NR, K);
            const matrix<T> B = X.rowwise() - mean_t_.transpose();
            Y.noalias() = B * W_.transpose();
            if (cfg_.l2_normalize)
                for (std::size_t i = 0; i < nr; ++i) ops::normalize_row(y.data() + (r0 + i) * k, k);
        });
        return y;
    }

    /// fit(x) then transform(x).
    tensor<T> fit_transform(const tensor<T>& x) { return fit(x).transform(x); }

    bool fitted() const noexcept { return mean_.defined(); }
    /// d of the fitted features (0 before fit).
    std::size_t input_dims() const { return fitted() ? mean_.dim(0) : 0; }
    /// d_out = min(config.dims, d) (0 before fit).
    std::size_t output_dims() const { return fitted() ? eigenvalues_.dim(0) : 0; }
    const tensor<double>& mean() const noexcept { return mean_; }              ///< (d)
    const tensor<double>& components() const noexcept { return components_; }  ///< (d_out, d), orthonormal rows
    const tensor<double>& eigenvalues() const noexcept { return eigenvalues_; } ///< (d_out), decreasing
    const pca_config& config() const noexcept { return cfg_; }

private:
    static constexpr std::size_t block_rows = 2048;
    static constexpr std::size_t panel_cols = 64;

    static void check_finite(const tensor<T>& x, const char* who) {
        const std::size_t n = x.dim(0), d = x.dim(1);
        const std::size_t blocks = (n + block_rows - 1) / block_rows;
        std::vector<unsigned char> bad(blocks, 0);
        parallel_for(blocks, [&](std::size_t b, std::size_t) {
            const std::size_t r1 = std::min(n, (b + 1) * block_rows);
            bad[b] = !Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(
                          x.data() + b * block_rows * d, static_cast<Eigen::Index>((r1 - b * block_rows) * d))
                          .isFinite()
                          .all();
        });
        for (std::size_t b = 0; b < blocks; ++b)
            if (bad[b])
                for (std::size_t i = b * block_rows * d; i < std::min(n, (b + 1) * block_rows) * d; ++i)
                    require<value_error>(std::isfinite(x.data()[i]), who, ": feature (", i / d, ", ", i % d, ") is ",
                                         x.data()[i], " (features must be finite)");
    }

    pca_config cfg_;
    tensor<double> mean_, components_, eigenvalues_;
    matrix<T> W_;
    Eigen::Matrix<T, Eigen::Dynamic, 1> mean_t_;
};

}  // namespace ssl::cluster
