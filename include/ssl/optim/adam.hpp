#pragma once
// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), with exactly
// the semantics of torch.optim.Adam / torch.optim.AdamW (amsgrad off).
//
// For every parameter w with gradient grad, at step t = 1, 2, ...:
//
//   if decoupled:             w = w - lr * weight_decay * w      (AdamW)
//   g = grad                                                     (decoupled or weight_decay == 0)
//   g = grad + weight_decay * w                                  (Adam's L2 decay otherwise)
//   m = beta1 * m + (1 - beta1) * g                              (m, v start at 0)
//   v = beta2 * v + (1 - beta2) * g^2
//   w = w - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// t is the optimizer's step count plus one (all parameters are attached
// before the first step, so it equals torch's per-parameter step).
// State per parameter: "<name>.exp_avg" (m) and "<name>.exp_avg_sq" (v).
//
// adam<T> takes adam_config (decoupled = false by default: L2 decay as
// torch.optim.Adam). adamw<T> is the same optimizer built from adamw_config,
// whose weight_decay defaults to 1e-2 and which always decouples, as
// torch.optim.AdamW.
//
// Config rules (value_error naming the field otherwise): lr >= 0,
// beta1 and beta2 in [0, 1), eps > 0, weight_decay >= 0.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optimizer.hpp"

namespace ssl::optim {

struct adam_config {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;
    bool decoupled = false;  ///< false: L2 decay added to the gradient (Adam); true: AdamW
};

/// AdamW's defaults (torch.optim.AdamW): decoupled decay of 1e-2.
struct adamw_config {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;

    adam_config to_adam() const noexcept { return {lr, beta1, beta2, eps, weight_decay, true}; }
};

namespace detail {
inline void validate_adam(const adam_config& c, const char* w) {
    check_nonnegative(w, "lr", c.lr);
    check_unit_open(w, "beta1", c.beta1);
    check_unit_open(w, "beta2", c.beta2);
    check_positive(w, "eps", c.eps);
    check_nonnegative(w, "weight_decay", c.weight_decay);
}
}  // namespace detail

/// Throws value_error naming the first bad field of `c`.
inline void validate(const adam_config& c) { detail::validate_adam(c, "adam_config"); }
inline void validate(const adamw_config& c) { detail::validate_adam(c.to_adam(), "adamw_config"); }

template <class T = float>
class adam : public optimizer_driver<adam<T>, adam_config, T> {
    using driver = optimizer_driver<adam<T>, adam_config, T>;
    friend driver;

public:
    explicit adam(const adam_config& c) : adam(c, "adam_config") {}
    template <class M>
    adam(M& module, const adam_config& c, const std::string& prefix = "") : adam(c) {
        this->attach(module, prefix);
    }

protected:
    adam(const adam_config& c, const char* what) : driver(c, what, {"exp_avg", "exp_avg_sq"}) {
        detail::validate_adam(this->cfg_, this->what_);
    }

private:
    /// The formula at the top of this file; states 0 and 1 are m and v.
    auto rule() const {
        const adam_config& cfg = this->cfg_;
        const double t = static_cast<double>(this->step_[0] + 1);
        const T b1 = static_cast<T>(cfg.beta1), b2 = static_cast<T>(cfg.beta2);
        const T one_b1 = static_cast<T>(1 - cfg.beta1), one_b2 = static_cast<T>(1 - cfg.beta2);
        const T step_size = static_cast<T>(cfg.lr / (1 - std::pow(cfg.beta1, t)));
        const T bc2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(cfg.beta2, t)));
        const T eps = static_cast<T>(cfg.eps);
        const T wd = static_cast<T>(cfg.weight_decay);
        const T shrink = static_cast<T>(1 - cfg.lr * cfg.weight_decay);
        const bool decoupled = cfg.decoupled;
        return [=](const parameter<T>&) {
            return [=](update_chunk<T>& c) {
                auto m = c.state(0);
                auto v = c.state(1);
                auto update = [&](const auto& g) {
                    m.array() = b1 * m.array() + one_b1 * g;
                    v.array() = b2 * v.array() + one_b2 * g.square();
                    c.w.array() -= step_size * m.array() / (v.array().sqrt() / bc2_sqrt + eps);
                };
                if (decoupled) {
                    if (wd != T(0)) c.w *= shrink;
                    update(c.grad.array());
                } else if (wd != T(0)) {
                    update(c.grad.array() + wd * c.w.array());
                } else {
                    update(c.grad.array());
                }
            };
        };
    }
};

/// AdamW: adam<T> with decoupled weight decay, built from adamw_config
/// (weight_decay defaults to 1e-2). config() reports decoupled = true.
template <class T = float>
class adamw : public adam<T> {
public:
    using config_type = adamw_config;

    explicit adamw(const adamw_config& c) : adam<T>(c.to_adam(), "adamw_config") {}
    template <class M>
    adamw(M& module, const adamw_config& c, const std::string& prefix = "") : adamw(c) {
        this->attach(module, prefix);
    }
};

}  // namespace ssl::optim
