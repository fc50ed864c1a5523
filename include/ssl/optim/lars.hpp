#pragma once
// LARS: layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017), in the
// form used by SimCLR and BYOL training code: momentum SGD whose step for each
// weight tensor is scaled by a trust ratio computed from that tensor's norms.
//
// For every adapted parameter w with gradient grad (one tensor = one "layer"):
//
//   g        = grad + weight_decay * w
//   local_lr = trust_coefficient * ||w|| / (||grad|| + weight_decay * ||w|| + eps)
//              (local_lr = 1 when ||w|| == 0 or ||grad|| == 0)
//   v        = momentum * v + lr * local_lr * g          (v starts at 0)
//   w        = w - v
//
// ||.|| is the L2 norm over the whole tensor. The denominator adds the norms of
// the raw gradient and of the decay term (the paper's form) rather than taking
// ||g||; by the triangle inequality it is >= ||g||, so local_lr stays bounded
// when grad and the decay term cancel.
//
// With exclude_bias_and_norm (the default), parameters whose role is
// param_role::bias or param_role::norm are neither decayed nor adapted: they
// get plain momentum SGD,
//
//   v = momentum * v + lr * grad,   w = w - v.
//
// State per parameter (only when momentum != 0): "<name>.momentum_buffer" (v).
// Unlike torch's SGD buffer, v already includes lr (as in the SimCLR/BYOL
// implementations), so changing lr affects only new contributions.
//
// Config rules (value_error naming the field otherwise): lr >= 0,
// momentum in [0, 1), weight_decay >= 0, trust_coefficient > 0, eps > 0.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optimizer.hpp"

namespace ssl::optim {

struct lars_config {
    double lr = 0.1;
    double momentum = 0.9;
    double weight_decay = 0;            ///< SimCLR uses 1e-6, BYOL 1.5e-6
    double trust_coefficient = 0.001;   ///< eta
    double eps = 1e-8;
    bool exclude_bias_and_norm = true;  ///< no decay, no adaptation for role bias / norm
};

/// Throws value_error naming the first bad field of `c`.
inline void validate(const lars_config& c) {
    constexpr const char* w = "lars_config";
    detail::check_nonnegative(w, "lr", c.lr);
    detail::check_unit_open(w, "momentum", c.momentum);
    detail::check_nonnegative(w, "weight_decay", c.weight_decay);
    detail::check_positive(w, "trust_coefficient", c.trust_coefficient);
    detail::check_positive(w, "eps", c.eps);
}

template <class T = float>
class lars : public optimizer_driver<lars<T>, lars_config, T> {
    using driver = optimizer_driver<lars<T>, lars_config, T>;
    friend driver;

public:
    explicit lars(const lars_config& c) : driver(c, "lars_config", detail::momentum_state(c.momentum)) {
        validate(this->cfg_);
    }
    template <class M>
    lars(M& module, const lars_config& c, const std::string& prefix = "") : lars(c) {
        this->attach(module, prefix);
    }

    /// Whether parameter `p` gets decay and the trust ratio.
    bool adapted(const parameter<T>& p) const noexcept {
        return !this->cfg_.exclude_bias_and_norm || p.role == param_role::weight;
    }

    /// The trust ratio local_lr of the formula above for parameter `p` (its
    /// current value and gradient); 1 for excluded parameters.
    double local_lr(const parameter<T>& p) const {
        if (!adapted(p)) return 1.0;
        const double wn = static_cast<double>(as_vector(p.value).norm());
        const double gn = static_cast<double>(as_vector(p.grad).norm());
        if (wn == 0 || gn == 0) return 1.0;
        return this->cfg_.trust_coefficient * wn / (gn + this->cfg_.weight_decay * wn + this->cfg_.eps);
    }

private:
    /// The formula at the top of this file; state 0 is the momentum buffer v.
    auto rule() const {
        const T mu = static_cast<T>(this->cfg_.momentum);
        return [this, mu](const parameter<T>& p) {
            const T scale = static_cast<T>(this->cfg_.lr * local_lr(p));
            const T wd = adapted(p) ? static_cast<T>(this->cfg_.weight_decay) : T(0);
            return [=](update_chunk<T>& c) {
                auto update = [&](const auto& g) {
                    if (mu == T(0)) {
                        c.w.array() -= scale * g;
                        return;
                    }
                    auto v = c.state(0);
                    v.array() = mu * v.array() + scale * g;
                    c.w.array() -= v.array();
                };
                if (wd != T(0))
                    update(c.grad.array() + wd * c.w.array());
                else
                    update(c.grad.array());
            };
        };
    }
};

}  // namespace ssl::optim
