#pragma once
// RevNet: reversible residual networks (Gomez, Ren, Urtasun & Grosse 2017,
// "The Reversible Residual Network: Backpropagation Without Storing
// Activations"), as used by Kolesnikov, Zhai & Beyer 2019 ("Revisiting
// Self-Supervised Visual Representation Learning": RevNet50, a ResNet50 v2
// whose identity units are reversible).
//
// A reversible unit splits its input by channels into halves (x1, x2):
//   y1 = x1 + F(x2),   y2 = x2 + G(y1)                      (eq. 1)
// and its input is recomputed from its output in backward:
//   x2 = y2 - G(y1),   x1 = y1 - F(x2)                      (eq. 2)
// so a stage of reversible units keeps no activations: memory does not grow
// with depth. F and G are pre-activation residual functions on C/2 channels
// (preact.hpp's preact_branch: bn-relu-conv3x3 x 2, or bottleneck bn-relu-
// conv1x1 (C/8) - conv3x3 - conv1x1 (C/2)). The first unit of every stage
// is an ordinary pre-activation unit (nn::preact_block) whose activations are
// kept, one per stage, as the paper does: it changes the stride or the
// channels, which no reversible unit can (in the first stage of a basic
// network it changes neither, and is kept so for one layout throughout).
//
//   revnet18  basic units, stages (2, 2, 2, 2)    revnet50  bottleneck units, (3, 4, 6, 3)
//   revnet<T, Bottleneck>(blocks, options) any other stage lengths
// Options, stem, head, names of the stem / transition units / head and the
// taps are those of resnet_v2 (resnet_v2.hpp); a reversible unit's
// parameters are layerK.B.f.* and layerK.B.g.* (torchvision has no RevNet).
//
// Contract: forward(x: (N, in_channels, H, W)) -> (N, output_dim()); the
// cache holds, per stage, the transition unit's cache and the stage's last
// output (no reversible unit's activations). backward recomputes each
// reversible unit's F and G once (one extra forward of those units; the
// price of the memory), accumulates parameter gradients, returns dx. In
// training mode the recomputation uses batch statistics, as the forward did,
// and leaves the running statistics as the forward left them. The inputs
// recomputed by eq. 2 differ from the forward's by float rounding only.
// Taps: as resnet_v2; a reversible unit's output (layerK.B) is assembled from
// its halves only when asked for (it costs its memory then).
//
// Design choices, one a line:
// - Between reversible units the halves stay two tensors; a stage splits its
//   transition unit's output once and concatenates once (one copy each way).
// - A stage whose gradient is still undefined (taps: nothing asked above it)
//   still inverts its units, so that an earlier tap gets its gradient.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "preact.hpp"
#include "resnet.hpp"
#include "taps.hpp"

namespace ssl {

namespace nn {

/// One reversible unit on C channels: F and G on C/2 channels each.
template <class T, bool Bottleneck>
class reversible_block {
public:
    using value_type = T;
    using branch_type = preact_branch<T, Bottleneck>;

    reversible_block() = default;
    /// channels: C (even); the branches keep C/2, with C/8 inside a bottleneck.
    reversible_block(std::size_t channels, std::uint64_t seed) {
        require<value_error>(channels % 2 == 0 && channels >= 2, "revnet: a reversible unit needs an even number of ",
                             "channels, got ", channels, " (use an even width)");
        const std::size_t h = channels / 2, mid = Bottleneck ? std::max<std::size_t>(1, h / 4) : h;
        f_ = branch_type(h, mid, h, 1, seed);
        g_ = branch_type(h, mid, h, 1, seed + 5);
    }

    /// (x1, x2) -> (y1, y2) in place (eq. 1); nothing is kept.
    void forward(tensor<T>& a1, tensor<T>& a2) {
        tensor<T> y1 = f_.forward(a2).out;  // fresh
        ssl::detail::add_into(y1, a1);
        tensor<T> y2 = g_.forward(y1).out;
        ssl::detail::add_into(y2, a2);
        a1 = std::move(y1);
        a2 = std::move(y2);
    }

    /// (y1, y2) -> (x1, x2) in place (eq. 2) and, when d1 / d2 are defined
    /// (the gradients at y1, y2; never written), replaces them by the
    /// gradients at x1, x2, accumulating F's and G's parameter gradients.
    void backward(tensor<T>& a1, tensor<T>& a2, tensor<T>& d1, tensor<T>& d2) {
        const bool grads = d1.defined();
        auto gr = recompute(g_, a1);
        tensor<T> x2 = ssl::detail::subtract(a2, gr.out);
        if (grads) {  // dL/dy1 + (dG/dy1)^T dL/dy2
            tensor<T> t = g_.backward(gr.cache, d2);
            ssl::detail::add_into(t, d1);
            d1 = std::move(t);
        }
        auto fr = recompute(f_, x2);
        tensor<T> x1 = ssl::detail::subtract(a1, fr.out);
        if (grads) {  // dL/dx2 = dL/dy2 + (dF/dx2)^T dL/dy1'
            tensor<T> t = f_.backward(fr.cache, d1);
            ssl::detail::add_into(t, d2);
            d2 = std::move(t);
        }
        a1 = std::move(x1);
        a2 = std::move(x2);
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        f_.for_each_parameter(f, join_name(p, "f"));
        g_.for_each_parameter(f, join_name(p, "g"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        f_.for_each_buffer(f, join_name(p, "f"));
        g_.for_each_buffer(f, join_name(p, "g"));
    }
    void train(bool on) {
        training_ = on;
        f_.train(on);
        g_.train(on);
    }
    bool training() const noexcept { return training_; }

private:
    /// b.forward(x) leaving b's running statistics (and batch counters) as they were.
    static forward_result<T, typename branch_type::cache_type> recompute(branch_type& b, const tensor<T>& x) {
        if (!b.training()) return b.forward(x);
        std::vector<std::pair<tensor<T>, tensor<T>>> saved_f;
        std::vector<std::pair<tensor<std::int64_t>, tensor<std::int64_t>>> saved_i;
        b.for_each_buffer(
            [&](const std::string&, auto& t) {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(t)>, tensor<T>>)
                    saved_f.emplace_back(t, t.clone());
                else
                    saved_i.emplace_back(t, t.clone());
            },
            "");
        auto r = b.forward(x);
        for (auto& [live, old] : saved_f) live.assign(old);  // live shares the buffer's storage
        for (auto& [live, old] : saved_i) live.assign(old);
        return r;
    }

    branch_type f_, g_;
    bool training_ = true;
};

}  // namespace nn

template <class T, bool Bottleneck>
class revnet {
public:
    using value_type = T;
    using options_type = resnet_options;
    using transition_type = nn::preact_block<T, Bottleneck>;
    using unit_type = nn::reversible_block<T, Bottleneck>;
    using ends_type = detail::preact_ends<T>;
    static constexpr std::size_t expansion = transition_type::expansion;

    struct stage_cache {
        typename transition_type::cache_type transition;
        tensor<T> y1, y2;  ///< the last reversible unit's output halves (undefined without reversible units)
        tensor<T> out;     ///< the stage's output
    };
    struct cache_type {
        typename ends_type::stem_cache stem;
        std::vector<stage_cache> stages;
        typename ends_type::head_cache head;
    };
    struct tap_cache_type {
        cache_type net;
        std::vector<detail::tap_request> taps;
        std::map<std::size_t, tensor<T>> unit_outputs;  ///< reversible units' outputs that were asked for
    };

    revnet() = default;
    revnet(std::vector<std::size_t> blocks, const resnet_options& o) : opt_(o), blocks_(std::move(blocks)) {
        require(!blocks_.empty(), "revnet: needs at least one stage");
        for (auto b : blocks_) require(b > 0, "revnet: every stage needs at least one unit");
        require(o.width > 0, "revnet: width must be positive");
        std::size_t in = o.width;
        std::uint64_t seed = o.seed + 1000;
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            const std::size_t planes = o.width << s, c = planes * expansion;
            transitions_.emplace_back(nn::block_config{in, planes, s > 0 ? std::size_t{2} : std::size_t{1}}, seed);
            seed += 10;
            std::vector<unit_type> units;
            for (std::size_t b = 1; b < blocks_[s]; ++b, seed += 10) units.emplace_back(c, seed);
            units_.push_back(std::move(units));
            in = c;
        }
        feature_dim_ = in;
        ends_ = ends_type("revnet", o.in_channels, o.width, o.stem, in, o.num_classes, o.seed);
        detail::kaiming_fan_out_init<T>(*this, o.seed);
    }

    const resnet_options& options() const noexcept { return opt_; }
    const std::vector<std::size_t>& blocks() const noexcept { return blocks_; }
    std::size_t feature_dim() const noexcept { return feature_dim_; }
    std::size_t output_dim() const noexcept { return opt_.num_classes ? opt_.num_classes : feature_dim_; }
    std::size_t num_stages() const noexcept { return blocks_.size(); }

    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward_impl(x, nullptr); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        return backward_impl(c, dy, need_input_grad, nullptr, nullptr);
    }

    std::vector<std::string> tap_names() const { return detail::tap_table_names(tap_table()); }

    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        tap_cache_type tc;
        tc.taps = detail::resolve_taps("revnet", names, tap_table());
        for (const auto& r : tc.taps)
            if (is_reversible_point(r.point)) tc.unit_outputs[r.point] = tensor<T>{};
        auto f = forward_impl(x, &tc.unit_outputs);
        tc.net = std::move(f.cache);
        std::vector<tensor<T>> taps;
        taps.reserve(tc.taps.size());
        for (auto& r : tc.taps) {
            taps.push_back(tap_at(tc, f.out, r.point));
            r.shape = taps.back().shape();
        }
        return {std::move(f.out), std::move(tc), std::move(taps)};
    }

    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        detail::check_tap_grads("revnet", c.taps, d_taps);
        return backward_impl(c.net, d_out, need_input_grad, &c.taps, &d_taps);
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        ends_.stem_parameters(f, p);
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            transitions_[s].for_each_parameter(f, join_name(p, unit_name(s, 0)));
            for (std::size_t b = 0; b < units_[s].size(); ++b)
                units_[s][b].for_each_parameter(f, join_name(p, unit_name(s, b + 1)));
        }
        ends_.head_parameters(f, p);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            transitions_[s].for_each_buffer(f, join_name(p, unit_name(s, 0)));
            for (std::size_t b = 0; b < units_[s].size(); ++b)
                units_[s][b].for_each_buffer(f, join_name(p, unit_name(s, b + 1)));
        }
        ends_.head_buffers(f, p);
    }
    void train(bool on) {
        training_ = on;
        ends_.train(on);
        for (auto& t : transitions_) t.train(on);
        for (auto& s : units_)
            for (auto& u : s) u.train(on);
    }
    bool training() const noexcept { return training_; }

private:
    // Tap points: conv1, maxpool, one per unit (stages flattened), norm, avgpool, fc.
    static constexpr std::size_t p_conv1 = 0, p_maxpool = 1, p_blocks = 2;
    std::size_t num_blocks() const noexcept {
        std::size_t n = 0;
        for (auto b : blocks_) n += b;
        return n;
    }
    std::size_t first_point(std::size_t s) const noexcept {
        std::size_t k = p_blocks;
        for (std::size_t i = 0; i < s; ++i) k += blocks_[i];
        return k;
    }
    std::size_t p_norm() const noexcept { return p_blocks + num_blocks(); }
    std::size_t p_avgpool() const noexcept { return p_norm() + 1; }
    std::size_t p_fc() const noexcept { return p_norm() + 2; }
    bool is_reversible_point(std::size_t point) const noexcept {
        if (point < p_blocks || point >= p_norm()) return false;
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            const std::size_t f = first_point(s);
            if (point < f + blocks_[s]) return point > f && point + 1 < f + blocks_[s];  // the last is the stage's out
        }
        return false;
    }

    detail::tap_table tap_table() const {
        detail::tap_table t{{"conv1", p_conv1}};
        if (opt_.stem == stem::imagenet) t.emplace_back("maxpool", p_maxpool);
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            for (std::size_t b = 0; b < blocks_[s]; ++b) t.emplace_back(unit_name(s, b), first_point(s) + b);
            t.emplace_back("layer" + std::to_string(s + 1), first_point(s) + blocks_[s] - 1);
        }
        t.emplace_back("norm", p_norm());
        t.emplace_back("avgpool", p_avgpool());
        if (opt_.num_classes) t.emplace_back("fc", p_fc());
        return t;
    }
    tensor<T> tap_at(const tap_cache_type& tc, const tensor<T>& out, std::size_t point) const {
        const cache_type& c = tc.net;
        if (point == p_conv1) return c.stem.conv1_out;
        if (point == p_maxpool) return c.stem.out;
        if (point == p_norm()) return c.head.relu;
        if (point == p_avgpool()) return c.head.pooled;
        if (point == p_fc()) return out;
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            const std::size_t f = first_point(s);
            if (point >= f + blocks_[s]) continue;
            if (point + 1 == f + blocks_[s]) return c.stages[s].out;
            if (point == f) return c.stages[s].transition.y;
            return tc.unit_outputs.at(point);
        }
        throw value_error("revnet: internal error, tap point out of range");
    }

    /// want: the reversible units' outputs to assemble (taps), or null.
    forward_result<T, cache_type> forward_impl(const tensor<T>& x, std::map<std::size_t, tensor<T>>* want) {
        cache_type c;
        auto st = ends_.stem_forward(x);
        c.stem = std::move(st.cache);
        tensor<T> h = std::move(st.out);
        c.stages.resize(blocks_.size());
        for (std::size_t s = 0; s < blocks_.size(); ++s) {
            auto& sc = c.stages[s];
            auto t = transitions_[s].forward(h);
            sc.transition = std::move(t.cache);
            h = std::move(t.out);
            if (!units_[s].empty()) {
                auto [a1, a2] = detail::split_channels(h);
                for (std::size_t b = 0; b < units_[s].size(); ++b) {
                    units_[s][b].forward(a1, a2);
                    const std::size_t point = first_point(s) + 1 + b;
                    if (want && want->contains(point)) (*want)[point] = detail::concat_channels(a1, a2);
                }
                h = detail::concat_channels(a1, a2);
                sc.y1 = std::move(a1);
                sc.y2 = std::move(a2);
            }
            sc.out = h;
        }
        auto hd = ends_.head_forward(h);
        c.head = std::move(hd.cache);
        return {std::move(hd.out), std::move(c)};
    }

    tensor<T> backward_impl(const cache_type& c, const tensor<T>& dy, bool need_input_grad,
                            const std::vector<detail::tap_request>* req, const std::vector<tensor<T>>* d_taps) {
        auto inject = [&](std::size_t point, tensor<T>& g) {
            if (req) detail::add_tap_grads(point, *req, *d_taps, g);
        };
        tensor<T> g = ends_.head_backward(c.head, dy, p_norm(), p_avgpool(), p_fc(), inject);
        for (std::size_t s = blocks_.size(); s-- > 0;) {
            const auto& sc = c.stages[s];
            const std::size_t f = first_point(s);
            if (!units_[s].empty()) {
                tensor<T> a1 = sc.y1, a2 = sc.y2, d1, d2;
                if (g.defined()) std::tie(d1, d2) = detail::split_channels(g);
                for (std::size_t b = units_[s].size(); b-- > 0;) {
                    tensor<T> t;  // the taps' gradient at this unit's output
                    inject(f + 1 + b, t);
                    if (t.defined()) {
                        auto [t1, t2] = detail::split_channels(t);
                        if (d1.defined()) {
                            ssl::detail::add_into(t1, d1);
                            ssl::detail::add_into(t2, d2);
                        }
                        d1 = std::move(t1);
                        d2 = std::move(t2);
                    }
                    units_[s][b].backward(a1, a2, d1, d2);
                }
                g = d1.defined() ? detail::concat_channels(d1, d2) : tensor<T>{};
            }
            inject(f, g);
            if (g.defined()) g = transitions_[s].backward(sc.transition, g);
        }
        return ends_.stem_backward(c.stem, std::move(g), need_input_grad, p_maxpool, p_conv1, inject);
    }

    static std::string unit_name(std::size_t s, std::size_t b) {
        return "layer" + std::to_string(s + 1) + "." + std::to_string(b);
    }

    resnet_options opt_{};
    std::vector<std::size_t> blocks_{};
    std::vector<transition_type> transitions_;
    std::vector<std::vector<unit_type>> units_;
    ends_type ends_;
    std::size_t feature_dim_ = 0;
    bool training_ = true;
};

/// RevNet-18: basic units, stages (2, 2, 2, 2): per stage a transition unit and one reversible unit.
template <class T = float>
class revnet18 : public revnet<T, false> {
public:
    explicit revnet18(const resnet_options& o = {}) : revnet<T, false>({2, 2, 2, 2}, o) {}
};
/// RevNet-50: bottleneck units, stages (3, 4, 6, 3) ("Revisiting"'s RevNet50), 2048 features at width 64.
template <class T = float>
class revnet50 : public revnet<T, true> {
public:
    explicit revnet50(const resnet_options& o = {}) : revnet<T, true>({3, 4, 6, 3}, o) {}
};

}  // namespace ssl
