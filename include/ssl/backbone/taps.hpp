#pragma once
// Backbone taps: intermediate feature maps of a backbone, returned by forward
// on request and with gradients flowing back into them (colorization's
// hypercolumns, split-brain, multi-layer probes, CPC patches, ...).
//
//   auto r = net.forward_taps(x, {"layer2", "layer3.1"});
//   // r.out: what forward(x).out is (bitwise), r.taps[i]: the map named
//   // names[i] (shared storage, no copy), r.cache: for backward_taps
//   tensor<T> dx = net.backward_taps(r.cache, d_out, {d_layer2, tensor<T>{}});
//
// Names are torchvision's module names (net.tap_names() lists them in network
// order; an unknown name is a value_error that lists them). In backward_taps
// d_out may be undefined (no gradient at the output) and so may any
// d_taps[i]; d_taps is empty (no gradient at any tap) or has one entry per
// requested tap. A tap's gradient ADDS to what flows back from later layers;
// layers after the last point with a gradient are skipped (their parameters
// would get zero gradient). Asking for a name twice, or for two names of one
// tensor (layer4 and layer4.1), is allowed; their gradients add.
// forward / backward are unchanged: taps cost only where they are asked for.
#include <algorithm>
#include <concepts>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../nn/activation.hpp"
#include "../nn/parameter.hpp"

namespace ssl {

/// What forward_taps returns: the output as forward(x).out, what
/// backward_taps needs, and the requested maps in the requested order.
template <class T, class Cache>
struct tap_result {
    tensor<T> out;
    Cache cache;
    std::vector<tensor<T>> taps;
};

/// A backbone with taps: forward_taps(x, names) -> tap_result,
/// backward_taps(cache, d_out, d_taps[, need_input_grad]) -> dx, tap_names().
template <class B>
concept tapped_backbone = requires(B& b, const B& cb, const tensor<typename B::value_type>& x,
                                   const std::vector<std::string>& names,
                                   const std::vector<tensor<typename B::value_type>>& d,
                                   const typename B::tap_cache_type& c) {
    typename B::value_type;
    typename B::tap_cache_type;
    { b.forward_taps(x, names) } -> std::same_as<tap_result<typename B::value_type, typename B::tap_cache_type>>;
    { b.backward_taps(c, x, d) } -> std::same_as<tensor<typename B::value_type>>;
    { b.backward_taps(c, x, d, false) } -> std::same_as<tensor<typename B::value_type>>;
    { cb.tap_names() } -> std::same_as<std::vector<std::string>>;
};

namespace detail {

/// One requested tap: its name, the backbone's internal point (several
/// names may share one), and the shape of the map (for backward's checks).
struct tap_request {
    std::string name;
    std::size_t point = 0;
    shape_t shape{};
};

/// A backbone's name -> point table, in network order.
using tap_table = std::vector<std::pair<std::string, std::size_t>>;

inline std::vector<std::string> tap_table_names(const tap_table& t) {
    std::vector<std::string> v;
    v.reserve(t.size());
    for (const auto& e : t) v.push_back(e.first);
    return v;
}

/// Looks every name up; an unknown one is a value_error listing the valid names.
inline std::vector<tap_request> resolve_taps(std::string_view who, const std::vector<std::string>& names,
                                             const tap_table& table) {
    std::vector<tap_request> req;
    req.reserve(names.size());
    for (const auto& n : names) {
        auto it = std::find_if(table.begin(), table.end(), [&](const auto& e) { return e.first == n; });
        if (it == table.end()) {
            std::string valid;
            for (const auto& e : table) valid += (valid.empty() ? "" : ", ") + e.first;
            throw value_error(std::string(who) + ": no tap named '" + n + "'; valid names: " + valid);
        }
        req.push_back({n, it->second, {}});
    }
    return req;
}

/// Checks d_taps against the requests (empty, or one entry per request).
template <class T>
void check_tap_grads(std::string_view who, const std::vector<tap_request>& req, const std::vector<tensor<T>>& d) {
    require<shape_error>(d.empty() || d.size() == req.size(), who, ": backward_taps got ", d.size(),
                         " tap gradients for ", req.size(), " requested taps (give none, or one per tap)");
    for (std::size_t i = 0; i < d.size(); ++i)
        require<shape_error>(!d[i].defined() || d[i].shape() == req[i].shape, who, ": gradient for tap '",
                             req[i].name, "' has shape ", d[i].shape().str(), ", the tap has ",
                             req[i].shape.str());
}

/// Adds the gradients given at `point` into g (undefined g: no gradient yet).
/// The sum is a new tensor: neither g nor d is written.
template <class T>
void add_tap_grads(std::size_t point, const std::vector<tap_request>& req, const std::vector<tensor<T>>& d,
                   tensor<T>& g) {
    for (std::size_t i = 0; i < d.size(); ++i) {
        if (req[i].point != point || !d[i].defined()) continue;
        if (!g.defined()) {
            g = d[i];
            continue;
        }
        tensor<T> s(g.shape());
        const T* a = g.data();
        const T* b = d[i].data();
        T* o = s.data();
        nn::detail::parallel_chunks(s.numel(), [&](std::size_t lo, std::size_t hi) {
            for (std::size_t k = lo; k < hi; ++k) o[k] = a[k] + b[k];
        });
        g = std::move(s);
    }
}

}  // namespace detail
}  // namespace ssl
