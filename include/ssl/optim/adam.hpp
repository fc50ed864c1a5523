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
class adam : public optimizer_base<T> {
public:
    using config_type = adam_config;

    explicit adam(const adam_config& c) : adam(c, "adam_config") {}
    template <class M>
    adam(M& module, const adam_config& c, const std::string& prefix = "") : adam(c) {
        this->attach(module, prefix);
    }

    const adam_config& config() const noexcept { return cfg_; }
    double lr() const noexcept { return cfg_.lr; }
    void set_lr(double lr) {
        detail::check_nonnegative(what_, "lr", lr);
        cfg_.lr = lr;
    }

    /// One update of every attached parameter from its gradient.
    void step() {
        ensure_state();
        this->check_step_tensor();
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            const auto& s = this->slots_[i];
            this->check_grad(s);
            this->check_state(s, exp_avg_[i], "exp_avg");
            this->check_state(s, exp_avg_sq_[i], "exp_avg_sq");
        }
        const double t = static_cast<double>(this->step_[0] + 1);
        const T b1 = static_cast<T>(cfg_.beta1), b2 = static_cast<T>(cfg_.beta2);
        const T one_b1 = static_cast<T>(1 - cfg_.beta1), one_b2 = static_cast<T>(1 - cfg_.beta2);
        const T step_size = static_cast<T>(cfg_.lr / (1 - std::pow(cfg_.beta1, t)));
        const T bc2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(cfg_.beta2, t)));
        const T eps = static_cast<T>(cfg_.eps);
        const T wd = static_cast<T>(cfg_.weight_decay);
        const T shrink = static_cast<T>(1 - cfg_.lr * cfg_.weight_decay);
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            parameter<T>& p = *this->slots_[i].param;
            detail::for_each_chunk(p.value.numel(), [&](std::size_t off, std::size_t n) {
                auto w = detail::chunk(p.value, off, n);
                auto grad = detail::chunk(std::as_const(p.grad), off, n);
                auto m = detail::chunk(exp_avg_[i], off, n);
                auto v = detail::chunk(exp_avg_sq_[i], off, n);
                auto update = [&](const auto& g) {
                    m.array() = b1 * m.array() + one_b1 * g;
                    v.array() = b2 * v.array() + one_b2 * g.square();
                    w.array() -= step_size * m.array() / (v.array().sqrt() / bc2_sqrt + eps);
                };
                if (cfg_.decoupled) {
                    if (wd != T(0)) w *= shrink;
                    update(grad.array());
                } else if (wd != T(0)) {
                    update(grad.array() + wd * w.array());
                } else {
                    update(grad.array());
                }
            });
        }
        ++this->step_[0];
    }

    /// f("step", tensor<int64_t>&) then, per parameter, f("<param>.exp_avg",
    /// tensor<T>&) and f("<param>.exp_avg_sq", tensor<T>&). Creates the state first.
    template <class F>
    void for_each_state(F&& f) {
        ensure_state();
        f(std::string("step"), this->step_);
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            f(this->slots_[i].name + ".exp_avg", exp_avg_[i]);
            f(this->slots_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
        }
    }

protected:
    adam(const adam_config& c, const char* what) : cfg_(c), what_(what) { detail::validate_adam(cfg_, what_); }

private:
    void ensure_state() {
        this->state_ready_ = true;
        exp_avg_.reserve(this->slots_.size());
        exp_avg_sq_.reserve(this->slots_.size());
        for (std::size_t i = exp_avg_.size(); i < this->slots_.size(); ++i) {
            exp_avg_.push_back(this->zeros_like(*this->slots_[i].param));
            exp_avg_sq_.push_back(this->zeros_like(*this->slots_[i].param));
        }
    }

    adam_config cfg_;
    const char* what_;
    std::vector<tensor<T>> exp_avg_, exp_avg_sq_;
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
