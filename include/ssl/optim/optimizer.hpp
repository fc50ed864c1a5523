#pragma once
// The driver and the state code shared by the optimizers (sgd, lars,
// adam/adamw); each optimizer's own file holds only its config and its
// update rule.
//
// Every optimizer follows the same shape (ensmallen/mlpack style: a plain
// config struct in, state built when training starts):
//
//   ssl::optim::sgd<float> opt(sgd_config{.lr = 0.1, .momentum = 0.9});
//   opt.attach(model);              // or attach(model, "backbone"), or sgd<float>(model, cfg)
//   for (...) {
//       opt.zero_grad();
//       ... forward / backward (accumulates into parameter<T>::grad) ...
//       opt.set_lr(schedule(step)); // optional
//       opt.step();
//   }
//
// Parameters are collected by name and pointer through the module's
// `for_each_parameter`, so the module must outlive the optimizer and must not
// move in memory while attached. Optimizer state (momentum buffers, moments) is
// created lazily: at the first step(), or at the first for_each_state() so a
// checkpoint loader can fill it before training resumes. Once the state exists
// no more parameters can be attached (this keeps per-parameter state and the
// shared step count consistent).
//
// Checkpoints: for_each_state(f) calls
//   f("step", tensor<std::int64_t>&)            shape (), the number of step() calls so far
//   f("<param>.<state>", tensor<T>&)           same shape as the parameter
// in a fixed order (step first, then parameters in attach order, each with
// its optimizer's state kinds in order), the same calling convention as a
// module's for_each_buffer (the visitor must accept both tensor<T> and
// tensor<std::int64_t>). A loader may either write into the visited tensors or
// assign new tensors of the same shape to them; step() checks the shapes.
// step_count()/set_step_count() read and write the counter directly.
//
// An optimizer is optimizer_driver<Self, Config, T> with a config struct
// (with an `lr` field), the names of its per-parameter state tensors, and
// an update rule: Self::rule() returns the step's constants as a callable
// rule(parameter<T>&) -> updater, called once per parameter, and the updater
// is called with each update_chunk<T> of that parameter (its values, its
// gradient and its state tensors over the same elements). The driver checks
// gradients and state shapes, walks the chunks and counts the steps.
//
// Optimizers are move-only: a copy would alias the state buffers (tensor
// copies share storage) and update the same parameters twice.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/views.hpp"
#include "../nn/parameter.hpp"

namespace ssl::optim {

namespace detail {

template <class T>
struct param_visitor_of {
    void operator()(const std::string&, parameter<T>&) const {}
};

/// value_error "<what>.<field> must be <rule>, got <v>" unless ok.
inline void check_field(bool ok, const char* what, const char* field, const char* rule, double v) {
    require<value_error>(ok, what, ".", field, " must be ", rule, ", got ", v);
}
inline void check_nonnegative(const char* what, const char* field, double v) {
    check_field(std::isfinite(v) && v >= 0, what, field, "finite and >= 0", v);
}
inline void check_positive(const char* what, const char* field, double v) {
    check_field(std::isfinite(v) && v > 0, what, field, "finite and > 0", v);
}
/// v in [0, 1)
inline void check_unit_open(const char* what, const char* field, double v) {
    check_field(v >= 0 && v < 1, what, field, "in [0, 1)", v);
}

/// The state kinds of a momentum method (sgd, lars): one buffer, or none
/// without momentum.
inline std::vector<std::string> momentum_state(double momentum) {
    if (momentum == 0) return {};
    return {"momentum_buffer"};
}

/// Element-wise updates walk each parameter in chunks of this many elements,
/// running all their passes (buffer, then weight) on one chunk before the next,
/// so the later passes read from cache instead of memory.
inline constexpr std::size_t chunk_elements = 4096;

/// Calls f(offset, count) for consecutive chunks covering [0, n).
template <class F>
void for_each_chunk(std::size_t n, F&& f) {
    for (std::size_t off = 0; off < n; off += chunk_elements) f(off, std::min(chunk_elements, n - off));
}
/// Elements [off, off + n) of a tensor as an Eigen vector.
template <class T>
vector_map<T> chunk(tensor<T>& t, std::size_t off, std::size_t n) {
    return {t.data() + off, static_cast<Eigen::Index>(n)};
}
template <class T>
const_vector_map<T> chunk(const tensor<T>& t, std::size_t off, std::size_t n) {
    return {t.data() + off, static_cast<Eigen::Index>(n)};
}

}  // namespace detail

/// A module whose parameters are ssl::parameter<T>: it has
/// for_each_parameter(f, prefix) calling f(name, parameter<T>&).
template <class M, class T>
concept parameter_module = requires(M& m, const std::string& prefix) {
    m.for_each_parameter(detail::param_visitor_of<T>{}, prefix);
};

/// What every optimizer offers.
template <class O>
concept optimizer = requires(O& o, const O& co, double lr) {
    typename O::value_type;
    o.step();
    o.zero_grad();
    o.set_lr(lr);
    { co.lr() } -> std::convertible_to<double>;
    { co.step_count() } -> std::convertible_to<std::int64_t>;
};

/// One attached parameter.
template <class T>
struct param_slot {
    std::string name;
    parameter<T>* param = nullptr;
};

/// Parameter bookkeeping and optimizer state shared by the optimizers: the
/// attached parameters, the step counter, and the per-parameter state
/// tensors (one of each kind the optimizer names, created lazily). Not used
/// on its own: optimizer_driver adds the config and the step.
template <class T>
class optimizer_base {
    static_assert(std::is_floating_point_v<T>, "ssl optimizers work on float or double parameters");

public:
    using value_type = T;

    optimizer_base(const optimizer_base&) = delete;
    optimizer_base& operator=(const optimizer_base&) = delete;
    optimizer_base(optimizer_base&&) noexcept = default;
    optimizer_base& operator=(optimizer_base&&) noexcept = default;

    /// Adds every parameter of `module`, named "<prefix>.<name>" (or "<name>"
    /// for an empty prefix). Throws value_error when the state already exists,
    /// when a parameter is attached twice, or when two parameters get the same
    /// name (attach two modules with different prefixes).
    template <class M>
    void attach(M& module, const std::string& prefix = "") {
        if constexpr (requires { typename M::value_type; })
            static_assert(std::is_same_v<typename M::value_type, T>,
                          "the module's scalar type differs from the optimizer's (e.g. sgd<float> on a "
                          "module of doubles)");
        static_assert(parameter_module<M, T>,
                      "attach(module): the module needs for_each_parameter(f, prefix) calling "
                      "f(const std::string&, ssl::parameter<T>&)");
        module.for_each_parameter([this](const std::string& name, parameter<T>& p) { add_parameter(name, p); },
                                  prefix);
    }

    /// Adds one parameter under `name` (for tensors that live outside a module).
    void add_parameter(const std::string& name, parameter<T>& p) {
        require<value_error>(!state_ready_, "attach \"", name,
                             "\": the optimizer state already exists (after step() or for_each_state()); "
                             "attach every parameter before that");
        require<value_error>(p.value.defined(), "attach \"", name, "\": the parameter has no value tensor");
        for (const auto& s : slots_) {
            require<value_error>(s.param != &p, "attach \"", name, "\": this parameter is already attached as \"",
                                 s.name, "\"");
            require<value_error>(s.name != name, "attach: two parameters are named \"", name,
                                 "\"; attach the modules under different prefixes");
        }
        slots_.push_back({name, &p});
    }

    /// Zeroes the gradient of every attached parameter.
    void zero_grad() noexcept {
        for (auto& s : slots_) s.param->grad.zero();
    }

    /// The attached parameters, in attach order.
    const std::vector<param_slot<T>>& parameters() const noexcept { return slots_; }
    std::size_t size() const noexcept { return slots_.size(); }

    /// Number of step() calls so far (restored from checkpoints).
    std::int64_t step_count() const noexcept { return step_[0]; }
    void set_step_count(std::int64_t n) {
        require<value_error>(n >= 0, "set_step_count: the step count must be >= 0, got ", n);
        step_[0] = n;
    }
    /// True once the state (buffers, moments) has been created.
    bool has_state() const noexcept { return state_ready_; }
    /// The per-parameter state tensors' names, e.g. {"momentum_buffer"}; empty for none.
    const std::vector<std::string>& state_kinds() const noexcept { return kinds_; }

    /// f("step", tensor<int64_t>&), then f("<param>.<kind>", tensor<T>&) for
    /// every parameter (attach order) and every state kind (state_kinds()
    /// order). Creates the state first.
    template <class F>
    void for_each_state(F&& f) {
        ensure_state();
        f(std::string("step"), step_);
        for (std::size_t i = 0; i < slots_.size(); ++i)
            for (std::size_t k = 0; k < kinds_.size(); ++k) f(state_name(i, k), state_[i * kinds_.size() + k]);
    }

    /// As for_each_state, without the state of parameters that are not
    /// replicated (shards of a model-parallel layer, whose state stays on
    /// their rank): what data parallelism broadcasts from rank 0.
    template <class F>
    void for_each_replicated_state(F&& f) {
        ensure_state();
        f(std::string("step"), step_);
        for (std::size_t i = 0; i < slots_.size(); ++i)
            if (slots_[i].param->replicated)
                for (std::size_t k = 0; k < kinds_.size(); ++k) f(state_name(i, k), state_[i * kinds_.size() + k]);
    }
    /// f("<name>.<kind>", tensor<T>&) for the state of the attached parameter
    /// p only (nothing when p is not attached). Creates the state first.
    template <class F>
    void for_each_state_of(const parameter<T>& p, F&& f) {
        ensure_state();
        for (std::size_t i = 0; i < slots_.size(); ++i)
            if (slots_[i].param == &p)
                for (std::size_t k = 0; k < kinds_.size(); ++k) f(state_name(i, k), state_[i * kinds_.size() + k]);
    }

    /// Zeroes the per-parameter state whose name starts with "<prefix>." for
    /// one of `prefixes` (the parameters were re-initialised); the step count
    /// stays. Creates the state first unless `prefixes` is empty.
    void zero_state(const std::vector<std::string>& prefixes) {
        if (prefixes.empty()) return;
        ensure_state();
        for (std::size_t i = 0; i < slots_.size(); ++i)
            for (std::size_t k = 0; k < kinds_.size(); ++k) {
                const std::string n = state_name(i, k);
                for (const auto& p : prefixes)
                    if (n.size() > p.size() && n.compare(0, p.size(), p) == 0 && n[p.size()] == '.') {
                        state_[i * kinds_.size() + k].fill(T(0));
                        break;
                    }
            }
    }

protected:
    /// `kinds`: the names of the state tensors each parameter gets.
    explicit optimizer_base(std::vector<std::string> kinds) : kinds_(std::move(kinds)) {}
    ~optimizer_base() = default;

    /// Creates the state (zeros) and forbids further attach.
    void ensure_state() {
        state_ready_ = true;
        if (kinds_.empty()) return;
        state_.reserve(slots_.size() * kinds_.size());
        for (std::size_t i = state_.size() / kinds_.size(); i < slots_.size(); ++i)
            for (std::size_t k = 0; k < kinds_.size(); ++k)
                state_.push_back(tensor<T>::zeros(slots_[i].param->value.shape()));
    }
    /// The state tensors of parameter i, state_kinds().size() of them.
    tensor<T>* state_of(std::size_t i) noexcept { return state_.data() + i * kinds_.size(); }

    /// Before an update: creates the state, then throws unless the step
    /// counter holds one value >= 0, every gradient is there and fits its
    /// value, and every state tensor (after a checkpoint load) fits its parameter.
    void check_before_step() {
        ensure_state();
        require<shape_error>(step_.numel() == 1, "step: the \"step\" state must hold one value, it has shape ",
                             step_.shape().str());
        require<value_error>(step_[0] >= 0, "step: the \"step\" state is negative (", step_[0], ")");
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            const auto& s = slots_[i];
            const auto& p = *s.param;
            require<shape_error>(p.grad.defined() && p.grad.shape() == p.value.shape(), "step: parameter \"", s.name,
                                 "\" has a gradient of shape ", p.grad.shape().str(), " for a value of shape ",
                                 p.value.shape().str());
            for (std::size_t k = 0; k < kinds_.size(); ++k) {
                const tensor<T>& t = state_[i * kinds_.size() + k];
                require<shape_error>(t.shape() == p.value.shape(), "step: state \"", state_name(i, k),
                                     "\" has shape ", t.shape().str(), " but the parameter has shape ",
                                     p.value.shape().str());
            }
        }
    }

    std::vector<param_slot<T>> slots_;
    tensor<std::int64_t> step_ = tensor<std::int64_t>::zeros(shape_t{});
    bool state_ready_ = false;

private:
    std::string state_name(std::size_t i, std::size_t k) const { return slots_[i].name + "." + kinds_[k]; }

    std::vector<std::string> kinds_;
    std::vector<tensor<T>> state_;  ///< kinds_.size() per parameter, parameter after parameter
};

/// One chunk of one parameter, as an update rule sees it: elements
/// [off, off + n) of the value, the gradient and each state tensor.
template <class T>
struct update_chunk {
    vector_map<T> w;           ///< the values, updated in place
    const_vector_map<T> grad;  ///< the gradient (read only)
    tensor<T>* states;         ///< the parameter's state tensors, in state_kinds() order
    std::size_t off, n;

    /// State tensor k over the same elements.
    vector_map<T> state(std::size_t k) const { return detail::chunk(states[k], off, n); }
};

/// The step every optimizer shares: Self (the optimizer, deriving from this)
/// provides rule() (see the top of this file); the driver holds the config
/// and its name for messages ("sgd_config", ...).
template <class Self, class Config, class T>
class optimizer_driver : public optimizer_base<T> {
public:
    using config_type = Config;

    const Config& config() const noexcept { return cfg_; }
    double lr() const noexcept { return cfg_.lr; }
    void set_lr(double lr) {
        detail::check_nonnegative(what_, "lr", lr);
        cfg_.lr = lr;
    }

    /// One update of every attached parameter from its gradient.
    void step() {
        this->check_before_step();
        auto rule = static_cast<Self&>(*this).rule();
        for (std::size_t i = 0; i < this->slots_.size(); ++i) {
            parameter<T>& p = *this->slots_[i].param;
            auto update = rule(std::as_const(p));
            tensor<T>* states = this->state_of(i);
            detail::for_each_chunk(p.value.numel(), [&](std::size_t off, std::size_t n) {
                update_chunk<T> c{detail::chunk(p.value, off, n), detail::chunk(std::as_const(p.grad), off, n), states,
                                  off, n};
                update(c);
            });
        }
        ++this->step_[0];
    }

protected:
    optimizer_driver(const Config& c, const char* what, std::vector<std::string> state_kinds)
        : optimizer_base<T>(std::move(state_kinds)), cfg_(c), what_(what) {}

    Config cfg_;
    const char* what_;
};

}  // namespace ssl::optim
