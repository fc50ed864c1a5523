#pragma once
// Target update "none": the loss compares the online outputs with each other
// (SimCLR) or with pretext labels (RotNet); nothing changes after a step.
#include <vector>

#include <span>
#include <string>

#include "../core/tensor.hpp"
#include "protocol.hpp"

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
        std::vector<tensor<T>> targets(const std::vector<tensor<T>>&, std::span<const std::size_t> = {}) { return {}; }
        void after_step(Backbone&, Head&, const target_step<T>&) {}
        template <class F>
        void for_each_state(F&&, const std::string&) {}
    };
};

}  // namespace ssl::target
