#pragma once
// Target update "none": the loss compares the online outputs with each other
// (SimCLR) or with pretext labels (RotNet); nothing changes after a step.
#include <vector>

#include "../core/tensor.hpp"

namespace ssl::target {

struct none_config {};

struct none {
    using config_type = none_config;
    static constexpr const char* name = "none";

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;
        state() = default;
        state(const none_config&, Backbone&, Head&) {}
        /// Target outputs for the views: none.
        std::vector<tensor<T>> targets(const std::vector<tensor<T>>&) { return {}; }
        void after_step(Backbone&, Head&, std::size_t /*step*/, std::size_t /*total_steps*/) {}
        template <class F>
        void for_each_state(F&&, const std::string&) {}
    };
};

}  // namespace ssl::target
