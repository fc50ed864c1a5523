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
class lars : public optimizer_base<T> {
public:
    using config_type = lars_config;

    explicit lars(const lars_config& c) : cfg_(c) { validate(cfg_); }
    template <class M>
    lars(M& module, const lars_config& c, const std::string& prefix = "") : lars(c) {
        this->attach(module, prefix);
    }

    const lars_config& config() const noexcept { return cfg_; }
    double lr() const noexcept { return cfg_.lr; }
    void set_lr(double lr) {
        detail::check_nonnegative("lars_config", "lr", lr);
        cfg_.lr = lr;
    }

    /// Whether parameter `p` gets decay and the trust ratio.
    bool adapted(const parameter<T>& p) const noexcept {
        return !cfg_.exclude_bias_and_norm || p.role == param_role::weight;
    }

    /// The trust ratio local_lr of the formula above for parameter `p` (its
    /// current value and gradient); 1 for excluded parameters.
    double local_lr(const parameter<T>& p) const {
        if (!adapted(p)) return 1.0;
        const double wn = static_cast<double>(as_vector(p.value).norm());
        const double gn = static_cast<double>(as_vector(p.grad).norm());
        if (wn == 0 || gn == 0) return 1.0;
        return cfg_.trust_coefficient * wn / (gn + cfg_.weight_decay * wn + cfg_.eps);
    }

    /// One update of every attached parameter from its gradient.
    void step() {
        ensure_state();
        this->check_step_tensor();
        const T mu = static_cast<T>(cfg_.momentum);
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            const auto& s = this->slots_[i];
            this->check_grad(s);
            if (mu != T(0)) this->check_state(s, buffers_[i], "momentum_buffer");
        }
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            parameter<T>& p = *this->slots_[i].param;
            const bool adapt = adapted(p);
            const T scale = static_cast<T>(cfg_.lr * local_lr(p));
            const T wd = adapt ? static_cast<T>(cfg_.weight_decay) : T(0);
            detail::for_each_chunk(p.value.numel(), [&](std::size_t off, std::size_t n) {
                auto w = detail::chunk(p.value, off, n);
                auto grad = detail::chunk(std::as_const(p.grad), off, n);
                auto update = [&](const auto& g) {
                    if (mu == T(0)) {
                        w.array() -= scale * g;
                        return;
                    }
                    auto v = detail::chunk(buffers_[i], off, n);
                    v.array() = mu * v.array() + scale * g;
                    w.array() -= v.array();
                };
                if (wd != T(0))
                    update(grad.array() + wd * w.array());
                else
                    update(grad.array());
            });
        }
        ++this->step_[0];
    }

    /// f("step", tensor<int64_t>&) then f("<param>.momentum_buffer", tensor<T>&)
    /// per parameter (none when momentum == 0). Creates the state first.
    template <class F>
    void for_each_state(F&& f) {
        ensure_state();
        f(std::string("step"), this->step_);
        if (cfg_.momentum == 0) return;
        for (std::size_t i = 0; i < this->slots_.size(); ++i)
            f(this->slots_[i].name + ".momentum_buffer", buffers_[i]);
    }

private:
    void ensure_state() {
        this->state_ready_ = true;
        if (cfg_.momentum == 0) return;
        buffers_.reserve(this->slots_.size());
        for (std::size_t i = buffers_.size(); i < this->slots_.size(); ++i)
            buffers_.push_back(this->zeros_like(*this->slots_[i].param));
    }

    lars_config cfg_;
    std::vector<tensor<T>> buffers_;
};

}  // namespace ssl::optim
