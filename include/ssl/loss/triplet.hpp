#pragma once
// Batch-hard triplet loss with a soft margin: Hermans, Beyer, Leibe, "In
// Defense of the Triplet Loss for Person Re-Identification", 2017 (the
// batch-hard loss with its soft margin), the self-supervised loss of
// S4L-Exemplar (Zhai et al. 2019). For embeddings z_1..z_R with group labels
// g_r (rows of one group are copies of one image):
//     D_ab = sqrt(||z_a - z_b||^2 + eps)
//     L = 1/R sum_a softplus( max_{p != a, g_p = g_a} D_ap - min_{n: g_n != g_a} D_an )
// Every row is an anchor; its hardest positive and hardest negative come
// from the same batch.
//
// Contract: z (R, D) any rows (S4L feeds L2-normalised ones), groups R
// integers; every row needs another row of its group and a row of another
// group (a sentence otherwise). Returns the value, dL/dz and the fraction of
// anchors whose hardest negative is nearer than their hardest positive.
//
// Choices:
//   distance  Euclidean, not squared (the paper's); eps = 1e-12 under the
//             root keeps the gradient finite when two copies coincide
//   Gram      ||z_a||^2 + ||z_b||^2 - 2 z_a.z_b through one GEMM, clamped at 0
//   ties      the lowest row index wins (the value does not depend on it;
//             the gradient is a valid subgradient either way)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/views.hpp"

namespace ssl::loss {

template <class T = float>
struct triplet_result {
    double value = 0;
    tensor<T> grad;         ///< dL/dz, (R, D)
    double violated = 0;    ///< fraction of anchors with max D_ap > min D_an
};

/// The batch-hard soft-margin triplet loss of rows z (R, D) grouped by `groups`.
template <class T>
triplet_result<T> batch_hard_triplet(const tensor<T>& z, std::span<const std::int64_t> groups, double eps = 1e-12) {
    check_rank(z, 2, "batch_hard_triplet", "(R, D) embeddings");
    const std::size_t r = z.dim(0), d = z.dim(1);
    require<shape_error>(groups.size() == r, "batch_hard_triplet: ", groups.size(), " group labels for ", r,
                         " rows of shape ", z.shape().str());
    require<shape_error>(r >= 2 && d >= 1, "batch_hard_triplet: needs at least 2 rows, got ", z.shape().str());
    const auto R = static_cast<Eigen::Index>(r), Dd = static_cast<Eigen::Index>(d);
    const_matrix_map<T> Z(z.data(), R, Dd);
    const matrix<T> G = Z * Z.transpose();
    std::vector<double> dist(r * r);
    for (std::size_t a = 0; a < r; ++a)
        for (std::size_t b = 0; b < r; ++b) {
            const double sq = static_cast<double>(G(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(a))) +
                              static_cast<double>(G(static_cast<Eigen::Index>(b), static_cast<Eigen::Index>(b))) -
                              2.0 * static_cast<double>(G(static_cast<Eigen::Index>(a), static_cast<Eigen::Index>(b)));
            dist[a * r + b] = std::sqrt(std::max(sq, 0.0) + eps);
        }
    triplet_result<T> out;
    out.grad = tensor<T>::zeros(z.shape());
    T* g = out.grad.data();
    const T* x = z.data();
    double total = 0;
    std::size_t violated = 0;
    for (std::size_t a = 0; a < r; ++a) {
        std::size_t p = r, n = r;
        for (std::size_t b = 0; b < r; ++b) {
            if (b == a) continue;
            if (groups[b] == groups[a]) {
                if (p == r || dist[a * r + b] > dist[a * r + p]) p = b;
            } else if (n == r || dist[a * r + b] < dist[a * r + n]) {
                n = b;
            }
        }
        require(p < r, "batch_hard_triplet: row ", a, " (group ", groups[a], ") has no positive: every row needs "
                "another row of its group (another copy of its image)");
        require(n < r, "batch_hard_triplet: row ", a, " (group ", groups[a], ") has no negative: the batch needs "
                "rows of at least two groups");
        const double dap = dist[a * r + p], dan = dist[a * r + n], m = dap - dan;
        total += m > 0 ? m + std::log1p(std::exp(-m)) : std::log1p(std::exp(m));  // softplus(m)
        violated += m > 0;
        const double s = 1.0 / (1.0 + std::exp(-m)) / static_cast<double>(r);  // dL/dm
        const double cp = s / dap, cn = s / dan;
        for (std::size_t k = 0; k < d; ++k) {
            const double up = static_cast<double>(x[a * d + k]) - static_cast<double>(x[p * d + k]);
            const double un = static_cast<double>(x[a * d + k]) - static_cast<double>(x[n * d + k]);
            g[a * d + k] += static_cast<T>(cp * up - cn * un);
            g[p * d + k] -= static_cast<T>(cp * up);
            g[n * d + k] += static_cast<T>(cn * un);
        }
    }
    require(std::isfinite(total), "batch_hard_triplet: the loss is not finite (the embeddings contain NaN or Inf)");
    out.value = total / static_cast<double>(r);
    out.violated = static_cast<double>(violated) / static_cast<double>(r);
    return out;
}

}  // namespace ssl::loss
