#pragma once
// The concepts every policy and layer is checked against. A composition that
// does not fit fails with one of these names and the sentence next to it.
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

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

namespace ssl {

/// A backbone: a layer whose forward maps images (N, C, H, W) to pooled
/// features (N, output_dim()), built from `options_type`.
template <class B>
concept backbone_policy = layer<B> && requires(B& b) {
    typename B::options_type;
    { b.output_dim() } -> std::convertible_to<std::size_t>;
};

/// What an augmentation policy hands the method for one batch.
template <class T>
struct view_batch {
    std::vector<tensor<T>> views;      ///< each (N_v, C, H, W)
    std::vector<std::int64_t> labels;  ///< pretext labels (rotation index, ...) or empty
};

/// An augmentation policy: config_type, and
///   make_views(images (N,C,H,W) in [0,1], sample ids, seed, epoch) -> view_batch<float>
///   eval_transform(images) -> images as the backbone sees them at evaluation
template <class A>
concept augmentation_policy = requires(const A& a, const tensor<float>& x, std::span<const std::size_t> ids) {
    typename A::config_type;
    { a.make_views(x, ids, std::uint64_t{}, std::uint64_t{}) } -> std::same_as<view_batch<float>>;
    { a.eval_transform(x) } -> std::convertible_to<tensor<float>>;
};

/// A head: a layer built as Head(config, in_features, seed), with the part an
/// EMA target copies (`target_type`, `target_part()`).
template <class H>
concept head_policy = layer<H> && requires(H& h) {
    typename H::config_type;
    typename H::target_type;
    { h.out_features() } -> std::convertible_to<std::size_t>;
    { h.target_part() } -> std::same_as<typename H::target_type&>;
};

/// What a method-level loss returns: the value, dL/d(online output) for each
/// view, and named metrics (accuracy of the pretext task, ...).
template <class T>
struct loss_output {
    double value = 0;
    std::vector<tensor<T>> grads;
    std::vector<std::pair<std::string, double>> metrics;
};

/// A method-level loss policy: config_type and
///   compute(online outputs per view, targets, labels) -> loss_output
/// where `targets` is what the target update's state provides (Targets):
/// target outputs per view for none and ema (may be empty), bank rows,
/// pseudo-labels, ... for the others (target_update/protocol.hpp).
template <class L, class Targets = std::vector<tensor<float>>>
concept loss_policy = requires(const L& l, const std::vector<tensor<float>>& o, const Targets& t,
                               std::span<const std::int64_t> y) {
    typename L::config_type;
    { l.compute(o, t, y) } -> std::same_as<loss_output<float>>;
};

}  // namespace ssl
