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
class sgd : public optimizer_base<T> {
public:
    using config_type = sgd_config;

    explicit sgd(const sgd_config& c) : cfg_(c) { validate(cfg_); }
    template <class M>
    sgd(M& module, const sgd_config& c, const std::string& prefix = "") : sgd(c) {
        this->attach(module, prefix);
    }

    const sgd_config& config() const noexcept { return cfg_; }
    double lr() const noexcept { return cfg_.lr; }
    void set_lr(double lr) {
        detail::check_nonnegative("sgd_config", "lr", lr);
        cfg_.lr = lr;
    }

    /// One update of every attached parameter from its gradient.
    void step() {
        ensure_state();
        this->check_step_tensor();
        const bool first = this->step_[0] == 0;
        const T lr = static_cast<T>(cfg_.lr);
        const T mu = static_cast<T>(cfg_.momentum);
        const T keep = static_cast<T>(1 - cfg_.dampening);
        const T wd = static_cast<T>(cfg_.weight_decay);
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            const auto& s = this->slots_[i];
            this->check_grad(s);
            if (mu != T(0)) this->check_state(s, buffers_[i], "momentum_buffer");
        }
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            parameter<T>& p = *this->slots_[i].param;
            detail::for_each_chunk(p.value.numel(), [&](std::size_t off, std::size_t n) {
                auto w = detail::chunk(p.value, off, n);
                auto grad = detail::chunk(std::as_const(p.grad), off, n);
                // `g` is an Eigen expression: the decayed gradient, evaluated element by element.
                auto update = [&](const auto& g) {
                    if (mu == T(0)) {
                        w.array() -= lr * g;
                        return;
                    }
                    auto b = detail::chunk(buffers_[i], off, n);
                    if (first)
                        b.array() = g;
                    else
                        b.array() = mu * b.array() + keep * g;
                    if (cfg_.nesterov)
                        w.array() -= lr * (g + mu * b.array());
                    else
                        w.array() -= lr * b.array();
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

    sgd_config cfg_;
    std::vector<tensor<T>> buffers_;
};

}  // namespace ssl::optim
