#pragma once
// The concepts every policy and layer is checked against. A composition that
// does not fit fails with one of these names and the sentence next to it.
#include <concepts>
#include <string>

#include "tensor.hpp"

namespace ssl {

namespace detail {
struct any_param_visitor {
    template <class P>
    void operator()(const std::string&, P&) const {}
};
}  // namespace detail

/// A layer (or block, or backbone) with exact gradients:
///   typename L::value_type             float or double
///   typename L::cache_type             what backward needs, returned by forward
///   l.forward(x)        -> {out, cache}  (N, ...) -> (N, ...)
///   l.backward(cache, dy) -> dx          accumulates parameter gradients
///   l.for_each_parameter(f, prefix), l.for_each_buffer(f, prefix)
///   l.train(bool), l.training()
template <class L>
concept layer = requires(L& l, const tensor<typename L::value_type>& x, const typename L::cache_type& c,
                         const std::string& prefix) {
    typename L::value_type;
    typename L::cache_type;
    { l.forward(x).out } -> std::convertible_to<tensor<typename L::value_type>>;
    { l.backward(c, x) } -> std::convertible_to<tensor<typename L::value_type>>;
    l.for_each_parameter(detail::any_param_visitor{}, prefix);
    l.for_each_buffer(detail::any_param_visitor{}, prefix);
    l.train(true);
    { l.training() } -> std::convertible_to<bool>;
};

}  // namespace ssl
