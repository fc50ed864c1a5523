#pragma once
// BYOL's regression loss (Grill et al. 2020, eq. 2): the squared distance of
// the L2-normalized prediction p and target z, which is 2 - 2 cos(p, z),
// averaged over the batch:
//   L = 1/N sum_i (2 - 2 c_i),   c_i = p_i . z_i / (||p_i|| ||z_i||).
// Gradient (p_hat = p / ||p||, z_hat = z / ||z||):
//   dL/dp_i = -2/N (z_hat_i - c_i p_hat_i) / ||p_i||
//   dL/dz_i = -2/N (p_hat_i - c_i z_hat_i) / ||z_i||   (only if asked)
// In BYOL the target z comes from the momentum (EMA) network and is a
// stop-gradient, so by default only dL/dp is computed; set
// `target_grad = true` to get dL/dz as well (e.g. SimSiam-style experiments
// or checks). Norms are floored at `eps` as in F.normalize.
//
// BYOL symmetrizes the loss: with online predictions p1, p2 and target
// projections z1, z2 of the two views, the loss of a step is
//   cosine(p1, z2).value + cosine(p2, z1).value,
// i.e. call this twice with the views swapped and backpropagate each grad_p
// into its own online branch.
#include <cmath>
#include <cstddef>

#include "../core/tensor.hpp"

namespace ssl::loss {

struct cosine_config {
    bool target_grad = false;  ///< also compute dL/dz (BYOL treats z as a stop-gradient)
    double eps = 1e-12;        ///< norm floor
};

template <class T = float>
struct cosine_result {
    double value = 0;          ///< mean of 2 - 2 cos over the batch, in [0, 4]
    tensor<T> grad_p;          ///< dL/dp, (N, D)
    tensor<T> grad_z;          ///< dL/dz, (N, D) when config().target_grad, else undefined
    double mean_cosine = 0;    ///< mean of cos(p_i, z_i)
};

template <class T = float>
class cosine {
    static_assert(std::is_floating_point_v<T>, "ssl::loss::cosine<T> needs a floating-point T (float or double)");

public:
    using value_type = T;
    explicit cosine(const cosine_config& c = {}) : cfg_(c) {
        require<value_error>(c.eps > 0, "cosine: eps must be > 0, got ", c.eps);
    }
    const cosine_config& config() const noexcept { return cfg_; }

    /// p: online predictions (N, D); z: targets (N, D), N >= 1.
    cosine_result<T> operator()(const tensor<T>& p, const tensor<T>& z) const {
        check_rank(p, 2, "cosine loss", "(N, D) for the prediction p");
        check_rank(z, 2, "cosine loss", "(N, D) for the target z");
        check_same_shape(p, z, "cosine loss (prediction p vs target z)");
        const std::size_t n = p.dim(0), d = p.dim(1);
        require<shape_error>(n >= 1 && d >= 1, "cosine loss: empty input of shape ", p.shape().str());
        cosine_result<T> r;
        r.grad_p = tensor<T>(p.shape());
        if (cfg_.target_grad) r.grad_z = tensor<T>(z.shape());
        const double scale = -2.0 / static_cast<double>(n);
        double total = 0, cos_sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const T* pi = p.data() + i * d;
            const T* zi = z.data() + i * d;
            double pp = 0, zz = 0, pz = 0;
            for (std::size_t j = 0; j < d; ++j) {
                pp += static_cast<double>(pi[j]) * pi[j];
                zz += static_cast<double>(zi[j]) * zi[j];
                pz += static_cast<double>(pi[j]) * zi[j];
            }
            double np = std::sqrt(pp), nz = std::sqrt(zz);
            const bool p_clamped = !(np >= cfg_.eps), z_clamped = !(nz >= cfg_.eps);
            if (np < cfg_.eps) np = cfg_.eps;
            if (nz < cfg_.eps) nz = cfg_.eps;
            const double c = pz / (np * nz);
            cos_sum += c;
            total += 2 - 2 * c;
            // Below the floor the normalization is x / eps, a linear map:
            // its Jacobian has no projection term.
            const double cp = p_clamped ? 0.0 : c, cz = z_clamped ? 0.0 : c;
            T* gp = r.grad_p.data() + i * d;
            for (std::size_t j = 0; j < d; ++j)
                gp[j] = static_cast<T>(scale * (zi[j] / nz - cp * pi[j] / np) / np);
            if (cfg_.target_grad) {
                T* gz = r.grad_z.data() + i * d;
                for (std::size_t j = 0; j < d; ++j)
                    gz[j] = static_cast<T>(scale * (pi[j] / np - cz * zi[j] / nz) / nz);
            }
        }
        require<value_error>(std::isfinite(total), "cosine loss: the loss is not finite (p or z contain NaN or Inf)");
        r.value = total / static_cast<double>(n);
        r.mean_cosine = cos_sum / static_cast<double>(n);
        return r;
    }

private:
    cosine_config cfg_;
};

/// BYOL's loss by the method's name (one direction; call twice, see above).
template <class T = float>
using byol_loss = cosine<T>;

}  // namespace ssl::loss
