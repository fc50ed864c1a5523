#pragma once
// Target update by exponential moving average (BYOL, Grill et al. 2020,
// sec. 3.1; also MoCo's key encoder): a target copy of the backbone and of
// the head's target part (BYOL: the projector, not the predictor) follows
// the online weights,
//     xi <- tau xi + (1 - tau) theta,
// with BYOL's cosine schedule tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2
// over K training steps (tau rises from tau_base to 1).
//
// Batch norm in the target: the target network runs in train mode, so it
// normalizes with the statistics of the batch it sees (as in BYOL's
// implementation); its running statistics follow its own forwards and are
// used when the target is evaluated. Only parameters are averaged.
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/views.hpp"
#include "../nn/parameter.hpp"
#include "../ops/rows.hpp"
#include "protocol.hpp"

namespace ssl::target {

struct ema_config {
    double tau_base = 0.99;
    bool cosine_schedule = true;  ///< false: tau = tau_base throughout
};

/// BYOL's schedule: tau at step k of K.
inline double ema_tau(const ema_config& c, std::size_t k, std::size_t K) {
    if (!c.cosine_schedule || K == 0) return c.tau_base;
    const double r = std::min(1.0, static_cast<double>(k) / static_cast<double>(K));
    return 1.0 - (1.0 - c.tau_base) * (std::cos(std::numbers::pi * r) + 1.0) / 2.0;
}

/// target <- tau * target + (1 - tau) * online, parameter by parameter
/// (both modules must have the same structure).
template <class T, class M>
void ema_update(M& target, M& online, double tau) {
    auto t = parameter_list<T>(target);
    auto o = parameter_list<T>(online);
    require<shape_error>(t.size() == o.size(), "ema_update: target has ", t.size(), " parameters, online has ",
                         o.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
        check_same_shape(t[i]->value, o[i]->value, "ema_update");
        ops::axpby(1.0 - tau, o[i]->value, tau, t[i]->value);
    }
}

struct ema {
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp (the EMA follows identical online weights)
    using config_type = ema_config;
    static constexpr const char* name = "ema";

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;
        using head_target = typename Head::target_type;

        state() = default;
        state(const ema_config& c, Backbone& b, Head& h)
            : cfg_(c), backbone_(deep_copy(b)), head_(deep_copy(h.target_part())) {
            require(c.tau_base >= 0 && c.tau_base <= 1, "target::ema: tau_base must be in [0, 1], got ", c.tau_base);
            backbone_.train(true);
            head_.train(true);
        }
        const ema_config& config() const noexcept { return cfg_; }
        double tau() const noexcept { return tau_; }

        /// The target network's outputs for each view (no gradient).
        std::vector<tensor<T>> targets(const target_input<T>& in) { return outputs(in.views()); }
        std::vector<tensor<T>> outputs(const std::vector<tensor<T>>& views) {
            std::vector<tensor<T>> out;
            for (const auto& v : views) {
                auto f = backbone_.forward(v);
                out.push_back(head_.forward(f.out).out);
            }
            return out;
        }
        /// tau from the schedule, then the target follows the online weights.
        target_request after_step(Backbone& b, Head& h, std::vector<tensor<T>>&&, const target_step& s) {
            tau_ = ema_tau(cfg_, s.step, s.total_steps);
            ema_update<T>(backbone_, b, tau_);
            ema_update<T>(head_, h.target_part(), tau_);
            return {};
        }
        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            backbone_.for_each_parameter([&](const std::string& n, parameter<T>& p) { f(n, p.value); },
                                         join_name(prefix, "backbone"));
            backbone_.for_each_buffer(f, join_name(prefix, "backbone"));
            head_.for_each_parameter([&](const std::string& n, parameter<T>& p) { f(n, p.value); },
                                     join_name(prefix, "head"));
            head_.for_each_buffer(f, join_name(prefix, "head"));
        }
        Backbone& backbone() noexcept { return backbone_; }
        head_target& head() noexcept { return head_; }

    private:
        ema_config cfg_{};
        Backbone backbone_{};
        head_target head_{};
        double tau_ = 0;
    };
};

}  // namespace ssl::target
