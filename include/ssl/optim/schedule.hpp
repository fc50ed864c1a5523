#pragma once
// Learning-rate schedules: callables from the 0-based step (or epoch) index to
// a learning rate, meant for `opt.set_lr(schedule(step))` before each step.
//
//   warmup_cosine{base_lr, warmup_steps, total_steps, final_lr = 0, warmup_start_lr = 0}
//       step <  warmup_steps:  warmup_start_lr + (base_lr - warmup_start_lr) * step / warmup_steps
//       step <  total_steps:   final_lr + (base_lr - final_lr) * (1 + cos(pi * p)) / 2,
//                              p = (step - warmup_steps) / (total_steps - warmup_steps)
//       step >= total_steps:   final_lr
//     so lr(0) = warmup_start_lr (base_lr when warmup_steps == 0),
//     lr(warmup_steps) = base_lr, the midpoint of the cosine gives
//     (base_lr + final_lr) / 2, and lr(total_steps) = final_lr. Rules:
//     lrs >= 0, total_steps > 0, warmup_steps <= total_steps.
//
//   step_decay{base_lr, milestones, gamma = 0.1}   (torch.optim.lr_scheduler.MultiStepLR)
//       base_lr * gamma^(number of milestones <= step)
//     Rules: base_lr >= 0, gamma > 0, milestones strictly ascending.
//
//   constant{lr}
//
// Bad arguments throw value_error naming the argument and its value.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <numbers>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace ssl::optim {

/// A learning-rate schedule: lr = s(step).
template <class S>
concept lr_schedule = requires(const S& s, std::size_t step) {
    { s(step) } -> std::convertible_to<double>;
};

namespace detail {
inline void check_lr_arg(const char* what, const char* field, double v) {
    require<value_error>(std::isfinite(v) && v >= 0, what, ": ", field, " must be finite and >= 0, got ", v);
}
}  // namespace detail

class warmup_cosine {
public:
    warmup_cosine(double base_lr, std::size_t warmup_steps, std::size_t total_steps, double final_lr = 0,
                  double warmup_start_lr = 0)
        : base_(base_lr), final_(final_lr), start_(warmup_start_lr), warmup_(warmup_steps), total_(total_steps) {
        detail::check_lr_arg("warmup_cosine", "base_lr", base_lr);
        detail::check_lr_arg("warmup_cosine", "final_lr", final_lr);
        detail::check_lr_arg("warmup_cosine", "warmup_start_lr", warmup_start_lr);
        require<value_error>(total_steps > 0, "warmup_cosine: total_steps must be > 0, got ", total_steps);
        require<value_error>(warmup_steps <= total_steps, "warmup_cosine: warmup_steps (", warmup_steps,
                             ") must not exceed total_steps (", total_steps, ")");
    }

    double operator()(std::size_t step) const noexcept {
        if (step < warmup_)
            return start_ + (base_ - start_) * static_cast<double>(step) / static_cast<double>(warmup_);
        if (step >= total_) return final_;
        const double p = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
        return final_ + (base_ - final_) * 0.5 * (1 + std::cos(std::numbers::pi * p));
    }

    double base_lr() const noexcept { return base_; }
    double final_lr() const noexcept { return final_; }
    double warmup_start_lr() const noexcept { return start_; }
    std::size_t warmup_steps() const noexcept { return warmup_; }
    std::size_t total_steps() const noexcept { return total_; }

private:
    double base_, final_, start_;
    std::size_t warmup_, total_;
};

class step_decay {
public:
    step_decay(double base_lr, std::vector<std::size_t> milestones, double gamma = 0.1)
        : base_(base_lr), gamma_(gamma), milestones_(std::move(milestones)) {
        detail::check_lr_arg("step_decay", "base_lr", base_lr);
        require<value_error>(std::isfinite(gamma) && gamma > 0, "step_decay: gamma must be finite and > 0, got ",
                             gamma);
        for (std::size_t i = 1; i < milestones_.size(); ++i)
            require<value_error>(milestones_[i - 1] < milestones_[i],
                                 "step_decay: milestones must be strictly ascending, but milestones[", i - 1,
                                 "] = ", milestones_[i - 1], " is followed by milestones[", i, "] = ", milestones_[i]);
    }

    double operator()(std::size_t step) const noexcept {
        const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
        double lr = base_;
        for (std::ptrdiff_t k = 0; k < passed; ++k) lr *= gamma_;
        return lr;
    }

    double base_lr() const noexcept { return base_; }
    double gamma() const noexcept { return gamma_; }
    const std::vector<std::size_t>& milestones() const noexcept { return milestones_; }

private:
    double base_, gamma_;
    std::vector<std::size_t> milestones_;
};

class constant {
public:
    explicit constant(double lr) : lr_(lr) { detail::check_lr_arg("constant", "lr", lr); }
    double operator()(std::size_t) const noexcept { return lr_; }
    double lr() const noexcept { return lr_; }

private:
    double lr_;
};

}  // namespace ssl::optim
