#pragma once
// The concepts every policy and layer is checked against. A composition that
// does not fit fails with one of these names and the sentence next to it.
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"
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

/// How the rows of one view map to the batch's samples, and who reads it.
/// One rule everywhere: with N samples, row r * N + i of a view is copy
/// (tile, patch, rotation) r of sample i.
struct view_spec {
    std::size_t copies = 1;     ///< rows per sample (9 jigsaw tiles, 4 rotations, a 7x7 patch grid: 49)
    std::size_t branch = 0;     ///< which head branch / task reads this view (head::route)
    std::size_t grid_rows = 0;  ///< the copies' grid (tiles, patches): grid_rows * grid_cols == copies; 0: none
    std::size_t grid_cols = 0;
};

/// What an augmentation policy hands the method for one batch: the views,
/// per view its spec, and targets of any kind. `{views, labels}` alone is
/// the common case (every view one copy per sample, branch 0).
template <class T>
struct view_batch {
    std::vector<tensor<T>> views;      ///< each (copies * N, C, H, W)
    std::vector<std::int64_t> labels;  ///< class-index targets (rotation, permutation index), rows of the view they label
    std::vector<view_spec> specs;      ///< one per view; empty: the default spec for every view
    tensor<T> soft_targets;            ///< (rows, K) soft or float targets; undefined when none
    tensor<T> dense_targets;           ///< (rows, ..., H, W) per-pixel targets; undefined when none
    /// Set by the method, not the augmentation: the batch's sample indices in
    /// the data set (N of them) and their class labels (N, -1 where unknown;
    /// empty when the data set has none), for methods that use a few labels.
    std::vector<std::size_t> ids;
    std::vector<std::int64_t> classes;

    view_spec spec(std::size_t v) const { return v < specs.size() ? specs[v] : view_spec{}; }
    /// N, the number of samples.
    std::size_t samples() const noexcept { return ids.size(); }
    /// Checks every view against its spec for N samples: a sentence naming the
    /// view, its shape and the rule, never a wrong row mapping later.
    void validate(std::size_t n) const {
        require(!views.empty(), "view_batch: the augmentation made no views");
        require<shape_error>(specs.empty() || specs.size() == views.size(), "view_batch: ", specs.size(),
                             " view specs for ", views.size(), " views");
        for (std::size_t v = 0; v < views.size(); ++v) {
            const view_spec s = spec(v);
            require<shape_error>(s.copies >= 1, "view_batch: view ", v, " has 0 copies per sample");
            require<shape_error>(s.grid_rows * s.grid_cols == 0 || s.grid_rows * s.grid_cols == s.copies,
                                 "view_batch: view ", v, " has a ", s.grid_rows, "x", s.grid_cols, " grid for ",
                                 s.copies, " copies per sample");
            require<shape_error>(views[v].rank() >= 1 && views[v].dim(0) == s.copies * n, "view_batch: view ", v,
                                 " has shape ", views[v].shape().str(), " but ", s.copies, " copies of ", n,
                                 " samples need ", s.copies * n, " rows (row r * N + i is copy r of sample i)");
        }
    }
};

/// An augmentation policy: config_type, and
///   make_views(images (N,C,H,W) in [0,1], sample ids, seed, epoch) -> view_batch<float>
///   eval_transform(images) -> images as the backbone sees them at evaluation
/// Optional: eval_copies() -> c > 1 when eval_transform gives c rows per image
/// (row r * N + i is copy r of image i: CPC's patch grid); method::embed then
/// averages the c copies' features.
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
///   compute(online outputs per view, targets, view batch) -> loss_output
/// where `targets` is the batch the target update's targets() made (Targets:
/// the target outputs per view for none and ema, bank rows, pseudo-labels,
/// ...; target_update/protocol.hpp) and the view batch carries the specs
/// (row maps, branches), the pretext and dense targets and the sample ids.
/// compute may change the loss's own state (NCE's Z): it is called once per
/// step. Optional: for_each_state / for_each_parameter (checkpointed and
/// optimised as "loss.*"), begin_epoch(epoch_context&) -> epoch_plan.
template <class L, class Targets = std::vector<tensor<float>>>
concept loss_policy = requires(L& l, const std::vector<tensor<float>>& o, const Targets& t,
                               const view_batch<float>& vb) {
    typename L::config_type;
    { l.compute(o, t, vb) } -> std::same_as<loss_output<float>>;
};

/// What a target update's targets() sees of the step: the view batch (views,
/// specs, sample ids), the online outputs per view, and the step's position.
template <class T = float>
struct target_input {
    const view_batch<T>& batch;
    const std::vector<tensor<T>>& online;  ///< head outputs per view, as the loss will see them
    std::size_t step = 0;                  ///< global step (0-based)
    std::size_t total_steps = 1;           ///< steps of the whole run (for schedules)
    std::size_t epoch = 0;
    std::span<const std::size_t> ids() const noexcept { return batch.ids; }
    const std::vector<tensor<T>>& views() const noexcept { return batch.views; }
};

/// What after_step sees besides the batch it consumes.
struct target_step {
    std::size_t step = 0;         ///< global step (0-based) that just ran
    std::size_t total_steps = 1;  ///< steps of the whole run (for schedules)
    std::size_t epoch = 0;
};

/// What after_step may ask of the method: a pass over the whole data set
/// (SeLa's label update), which the method runs through the target's
/// data_pass(epoch_context&, const target_step&) with the networks and the
/// data set it is given; nothing is cached between calls.
struct target_request {
    bool data_pass = false;
};

/// A target-update policy: a tag with config_type and a nested
/// state<Backbone, Head> that
///   targets(target_input) -> Batch          what the loss compares against, for this step
///   after_step(backbone, head, Batch&&, target_step) -> target_request
///                                           consumes the step's batch after the optimizer's update
///   for_each_state(f, prefix)               the state a checkpoint keeps ("target.*")
/// (target_update/protocol.hpp has the optional begin_epoch and data_pass).
template <class TU, class Backbone, class Head>
concept target_policy = requires { typename TU::config_type; typename TU::template state<Backbone, Head>; } &&
    requires(typename TU::template state<Backbone, Head>& s, Backbone& b, Head& h, const target_input<float>& in,
             const target_step& st, const std::string& prefix) {
        s.targets(in);
        { s.after_step(b, h, s.targets(in), st) } -> std::same_as<target_request>;
        s.for_each_state(detail::any_param_visitor{}, prefix);
    };

}  // namespace ssl
