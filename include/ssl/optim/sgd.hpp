#pragma once
// Stochastic gradient descent with momentum, dampening, Nesterov and L2
// weight decay, with exactly the semantics of torch.optim.SGD.
//
// For every parameter w with gradient grad, at step t = 1, 2, ...:
//
//   g = grad + weight_decay * w                    (weight decay added to the gradient)
//   if momentum != 0:
//       b = g                                       at t = 1 (no dampening on the first step)
//       b = momentum * b + (1 - dampening) * g      at t > 1
//       g = g + momentum * b    if nesterov
//       g = b                   otherwise
//   w = w - lr * g
//
// State per parameter (only when momentum != 0): "<name>.momentum_buffer" (b).
// p.grad is read, never modified.
//
// Config rules (value_error naming the field otherwise): lr >= 0,
// momentum in [0, 1), dampening in [0, 1], weight_decay >= 0, and nesterov
// needs momentum > 0 and dampening == 0.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optimizer.hpp"

namespace ssl::optim {

struct sgd_config {
    double lr = 1e-3;
    double momentum = 0;
    double dampening = 0;
    bool nesterov = false;
    double weight_decay = 0;
};

/// Throws value_error naming the first bad field of `c`.
inline void validate(const sgd_config& c) {
    constexpr const char* w = "sgd_config";
    detail::check_nonnegative(w, "lr", c.lr);
    detail::check_unit_open(w, "momentum", c.momentum);
    detail::check_field(c.dampening >= 0 && c.dampening <= 1, w, "dampening", "in [0, 1]", c.dampening);
    detail::check_nonnegative(w, "weight_decay", c.weight_decay);
    if (c.nesterov) {
        detail::check_field(c.momentum > 0, w, "momentum", "> 0 when nesterov is set", c.momentum);
        detail::check_field(c.dampening == 0, w, "dampening", "0 when nesterov is set", c.dampening);
    }
}

template <class T = float>
class sgd : public optimizer_driver<sgd<T>, sgd_config, T> {
    using driver = optimizer_driver<sgd<T>, sgd_config, T>;
    friend driver;

public:
    explicit sgd(const sgd_config& c) : driver(c, "sgd_config", detail::momentum_state(c.momentum)) {
        validate(this->cfg_);
    }
    template <class M>
    sgd(M& module, const sgd_config& c, const std::string& prefix = "") : sgd(c) {
        this->attach(module, prefix);
    }

private:
    /// The formula at the top of this file; state 0 is the momentum buffer b.
    auto rule() const {
        const bool first = this->step_[0] == 0;
        const T lr = static_cast<T>(this->cfg_.lr);
        const T mu = static_cast<T>(this->cfg_.momentum);
        const T keep = static_cast<T>(1 - this->cfg_.dampening);
        const T wd = static_cast<T>(this->cfg_.weight_decay);
        const bool nesterov = this->cfg_.nesterov;
        return [=](const parameter<T>&) {
            return [=](update_chunk<T>& c) {
                // `g` is an Eigen expression: the decayed gradient, evaluated element by element.
                auto update = [&](const auto& g) {
                    if (mu == T(0)) {
                        c.w.array() -= lr * g;
                        return;
                    }
                    auto b = c.state(0);
                    if (first)
                        b.array() = g;
                    else
                        b.array() = mu * b.array() + keep * g;
                    if (nesterov)
                        c.w.array() -= lr * (g + mu * b.array());
                    else
                        c.w.array() -= lr * b.array();
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
