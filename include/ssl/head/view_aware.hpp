#pragma once
// Heads that see the view: the seam between backbone and head carries, besides
// the pooled features (rows, D) of one view, that view's spec (how its rows
// map to the N samples, which branch reads it; core/concepts.hpp view_spec).
//
//   y = head::forward_view(h, features, spec, n)   -> {out, cache}
//   dx = h.backward(cache, dy)
//
// A view-aware head has forward(features, spec, n); every other head (mlp,
// linear_classifier, ...) is adapted here by calling its forward(features):
// the existing heads work unchanged. The combinators of head/combinators.hpp
// are view-aware.
#include <cstddef>
#include <utility>

#include "../core/concepts.hpp"

namespace ssl::head {

/// A head whose forward reads the view's spec and the number of samples.
template <class H>
concept view_aware = requires(H& h, const tensor<typename H::value_type>& x, const view_spec& s, std::size_t n) {
    h.forward(x, s, n);
};

/// The head's forward for one view: with the spec when the head reads it,
/// plain forward(features) otherwise (the adapter for every existing head).
template <class H>
auto forward_view(H& h, const tensor<typename H::value_type>& features, const view_spec& spec, std::size_t n) {
    if constexpr (view_aware<H>)
        return h.forward(features, spec, n);
    else
        return h.forward(features);
}

}  // namespace ssl::head
