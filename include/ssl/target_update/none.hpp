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
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp
    using config_type = none_config;
    static constexpr const char* name = "none";

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;
        state() = default;
        state(const none_config&, Backbone&, Head&) {}
        /// Target outputs for the views: none.
        std::vector<tensor<T>> targets(const target_input<T>&) { return {}; }
        target_request after_step(Backbone&, Head&, std::vector<tensor<T>>&&, const target_step&) { return {}; }
        template <class F>
        void for_each_state(F&&, const std::string&) {}
    };
};

}  // namespace ssl::target
