#pragma once
// Heads that read backbone taps (backbone/taps.hpp) instead of the pooled
// features: colorization's hypercolumns, later split-brain's and motion's
// dense heads. method.hpp runs such a head on the backbone's forward_taps /
// backward_taps (the tap names are the head's), the pooled output getting no
// gradient.
#include <string>
#include <vector>

#include "../core/concepts.hpp"

namespace ssl::head {

/// A head that reads backbone taps: tap_names(), forward_taps(maps, spec, n)
/// and backward_taps(cache, dy) -> one gradient per tap. method.hpp runs
/// such a head on the backbone's forward_taps / backward_taps.
template <class H>
concept tap_reading = requires(H& h, const H& ch, const std::vector<tensor<typename H::value_type>>& maps,
                               const view_spec& s, std::size_t n, const typename H::cache_type& c,
                               const tensor<typename H::value_type>& dy) {
    { ch.tap_names() } -> std::convertible_to<std::vector<std::string>>;
    h.forward_taps(maps, s, n);
    { h.backward_taps(c, dy) } -> std::same_as<std::vector<tensor<typename H::value_type>>>;
};

}  // namespace ssl::head
