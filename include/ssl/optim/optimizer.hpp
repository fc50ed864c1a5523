#pragma once
// Pieces shared by the optimizers (sgd, lars, adam/adamw).
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
// in a fixed order (step first, then parameters in attach order), the same
// calling convention as a module's for_each_buffer (the visitor must accept
// both tensor<T> and tensor<std::int64_t>). A loader may either write into the
// visited tensors or assign new tensors of the same shape to them; step()
// checks the shapes. step_count()/set_step_count() read and write the counter
// directly.
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

/// Parameter bookkeeping shared by the optimizers: the attached parameters,
/// the step counter and the state-exists flag. Not used on its own.
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

protected:
    optimizer_base() = default;
    ~optimizer_base() = default;

    /// Throws shape_error unless the gradient is there and fits the value.
    static void check_grad(const param_slot<T>& s) {
        const auto& p = *s.param;
        require<shape_error>(p.grad.defined() && p.grad.shape() == p.value.shape(), "step: parameter \"", s.name,
                             "\" has a gradient of shape ", p.grad.shape().str(), " for a value of shape ",
                             p.value.shape().str());
    }
    /// Throws shape_error unless a state tensor (after a checkpoint load) fits its parameter.
    static void check_state(const param_slot<T>& s, const tensor<T>& t, const char* what) {
        require<shape_error>(t.shape() == s.param->value.shape(), "step: state \"", s.name, ".", what, "\" has shape ",
                             t.shape().str(), " but the parameter has shape ", s.param->value.shape().str());
    }
    void check_step_tensor() const {
        require<shape_error>(step_.numel() == 1, "step: the \"step\" state must hold one value, it has shape ",
                             step_.shape().str());
        require<value_error>(step_[0] >= 0, "step: the \"step\" state is negative (", step_[0], ")");
    }
    static tensor<T> zeros_like(const parameter<T>& p) { return tensor<T>::zeros(p.value.shape()); }

    std::vector<param_slot<T>> slots_;
    tensor<std::int64_t> step_ = tensor<std::int64_t>::zeros(shape_t{});
    bool state_ready_ = false;
};

}  // namespace ssl::optim
