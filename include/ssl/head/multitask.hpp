#pragma once
// The multi-task head with the lasso (Doersch & Zisserman, "Multi-task
// Self-Supervised Visual Learning", ICCV 2017, sec. 3.1): one head per task
// on one trunk, each task t reading its own learned mixture of the outputs of
// M same-shape blocks (the blocks of the trunk's last stage by default),
//
//     h_t = sum_m alpha_{t,m} pool(block_m),     L_lasso = l1 * sum_{t,m} |alpha_{t,m}|
//
// with pool the global average (pooling and mixing are both linear, so this
// equals pooling the mixed map). The L1 penalty pushes each task toward a
// few blocks; the learned alpha per task is the paper's report of which
// depth each task wants.
//
// Contract (a tap-reading head, head/tap_reading.hpp): tap_names() = the M
// lasso taps, then colorization's hypercolumn taps when colorization is a
// task; forward_taps(maps, spec, n) runs the head of task spec.branch
// (multitask/tasks.hpp slots) and backward_taps(cache, dy) returns one
// gradient per tap (undefined for the taps that task did not read).
// Per task: rotation head::linear_classifier (4 logits), jigsaw head::group
// <fc_relu, mlp> (the CFN's per-tile fc, concatenation, fc, P logits),
// exemplar head::embedding (linear + L2 normalisation), colorization
// head::hypercolumn on its own taps (a hypercolumn reads several depths at
// once, so the lasso does not apply to it).
//
// Choices:
//   alpha init   1/M for every task and block: no depth preferred at the start
//   sub-heads    task slot t seeded with seed + 7919000 (t + 1): no two heads share a stream
//   L1 gradient  its subgradient l1 * sign(alpha_t) is added in backward, once
//                per view of task t (one per step); the loss value reported by
//                the step does not include the penalty (penalty() gives it)
//   alpha role   param_role::norm: optimizers that exclude norms from weight
//                decay (LARS) leave it to the lasso
//   lasso off    every task reads the last tap alone (no alpha): the ablation
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../multitask/tasks.hpp"
#include "../nn/parameter.hpp"
#include "combinators.hpp"
#include "embedding.hpp"
#include "hypercolumn.hpp"
#include "mlp.hpp"
#include "view_aware.hpp"

namespace ssl::head {

struct multitask_config {
    std::vector<std::string> tasks{"rotation", "jigsaw", "exemplar"};
    std::vector<std::string> taps;  ///< the M same-shape maps the lasso mixes (backbone tap names), network order
    std::size_t channels = 0;       ///< their channels
    bool lasso = true;              ///< false: every task reads the last tap (no alpha)
    double l1 = 1e-3;               ///< the L1 penalty's weight on |alpha|
    linear_classifier_config rotation{.classes = 4};
    group_config<fc_relu_config, mlp_config> jigsaw{};
    embedding_config exemplar{};
    hypercolumn_config colorization{};
};

template <class T = float>
class multitask {
public:
    using value_type = T;
    using config_type = multitask_config;
    using target_type = multitask;
    using jigsaw_head = group<fc_relu<T>, mlp<T>>;
    struct cache_type {
        std::size_t branch = 0;
        shape_t map_shape{};          ///< (rows, C, H, W) of the lasso taps
        std::vector<tensor<T>> pooled;  ///< per lasso tap read, (rows, C)
        typename linear_classifier<T>::cache_type rotation;
        typename jigsaw_head::cache_type jigsaw;
        typename embedding<T>::cache_type exemplar;
        typename hypercolumn<T>::cache_type colorization;
    };

    multitask() = default;
    multitask(const config_type& c, std::size_t in_features, std::uint64_t seed = 0)
        : cfg_(c), tasks_(pretext::parse_tasks(c.tasks)) {
        require<value_error>(!c.taps.empty() || only_colorization(),
                             "head::multitask: no lasso taps (name the same-shape block outputs the tasks read)");
        require<value_error>(std::isfinite(c.l1) && c.l1 >= 0, "head::multitask: l1 must be finite and >= 0, got ", c.l1);
        const std::size_t d = c.channels ? c.channels : in_features;
        require<value_error>(only_colorization() || d > 0, "head::multitask: the lasso taps' channels are 0");
        std::size_t rows = 0;
        for (pretext::task t : tasks_) {
            // far apart: the sub-heads offset their own parts by sub_seed_step
            const std::uint64_t s = seed + detail::sub_seed_step * 1000 * (pretext::slot(t) + 1);
            if (t != pretext::task::colorization) row_[pretext::slot(t)] = rows++;
            switch (t) {
                case pretext::task::rotation: rotation_.emplace(c.rotation, d, s); break;
                case pretext::task::jigsaw: jigsaw_.emplace(c.jigsaw, d, s); break;
                case pretext::task::exemplar: exemplar_.emplace(c.exemplar, d, s); break;
                case pretext::task::colorization:
                    require<value_error>(!c.colorization.taps.empty(),
                                         "head::multitask: the colorization task's hypercolumn names no taps");
                    colorization_.emplace(c.colorization, d, s);
                    break;
            }
        }
        names_ = c.taps;
        if (colorization_) names_.insert(names_.end(), c.colorization.taps.begin(), c.colorization.taps.end());
        if (c.lasso && rows > 0) {
            alpha_ = parameter<T>({rows, c.taps.size()}, param_role::norm);
            for (auto& a : alpha_.value) a = static_cast<T>(1.0 / static_cast<double>(c.taps.size()));
        }
    }

    const config_type& config() const noexcept { return cfg_; }
    const std::vector<pretext::task>& tasks() const noexcept { return tasks_; }
    const std::vector<std::string>& tap_names() const noexcept { return names_; }
    /// The first task's output width (the concept's; each task has its own).
    std::size_t out_features() const { return tasks_.empty() ? 0 : out_features(tasks_.front()); }
    std::size_t out_features(pretext::task t) const {
        switch (t) {
            case pretext::task::rotation: return rotation_ ? rotation_->out_features() : 0;
            case pretext::task::jigsaw: return jigsaw_ ? jigsaw_->out_features() : 0;
            case pretext::task::exemplar: return exemplar_ ? exemplar_->out_features() : 0;
            case pretext::task::colorization: return colorization_ ? colorization_->out_features() : 0;
        }
        return 0;
    }
    multitask& target_part() noexcept { return *this; }

    /// The learned mixture of task t over the lasso taps (empty: lasso off or
    /// colorization).
    std::vector<double> alphas(pretext::task t) const {
        std::vector<double> a;
        const std::size_t r = row_[pretext::slot(t)];
        if (!alpha_.value.defined() || r == npos) return a;
        for (std::size_t m = 0; m < cfg_.taps.size(); ++m) a.push_back(static_cast<double>(alpha_.value.at(r, m)));
        return a;
    }
    /// One line for people: each task's mixture ("rotation: layer4.0 0.31
    /// layer4.1 0.69; ..."), or which tap every task reads with the lasso off.
    std::string summary() const {
        if (!alpha_.value.defined()) {
            if (only_colorization()) return "no task reads the lasso (colorization reads its hypercolumn taps)";
            return "lasso off: every task reads " + cfg_.taps.back();
        }
        std::string s = "lasso alpha";
        for (pretext::task t : tasks_) {
            const auto a = alphas(t);
            if (a.empty()) continue;
            s += (s.size() == 11 ? " " : "; ") + pretext::name(t) + ":";
            for (std::size_t m = 0; m < a.size(); ++m) {
                char buf[32];
                std::snprintf(buf, sizeof buf, " %.3g", a[m]);
                s += " " + cfg_.taps[m] + buf;
            }
        }
        return s;
    }
    /// l1 * sum |alpha| (not part of the step's reported loss).
    double penalty() const {
        double s = 0;
        if (alpha_.value.defined())
            for (T a : alpha_.value) s += std::abs(static_cast<double>(a));
        return cfg_.l1 * s;
    }

    forward_result<T, cache_type> forward_taps(const std::vector<tensor<T>>& maps, const view_spec& s, std::size_t n) {
        const std::size_t M = cfg_.taps.size();
        require<shape_error>(maps.size() == tap_names().size(), "head::multitask: got ", maps.size(), " maps for ",
                             tap_names().size(), " taps");
        const pretext::task t = task_of(s.branch);
        forward_result<T, cache_type> r;
        r.cache.branch = s.branch;
        if (t == pretext::task::colorization) {
            std::vector<tensor<T>> own(maps.begin() + static_cast<std::ptrdiff_t>(M), maps.end());
            auto y = colorization_->forward_taps(own, s, n);
            r.out = std::move(y.out);
            r.cache.colorization = std::move(y.cache);
            return r;
        }
        const tensor<T> h = mix(maps, t, r.cache);
        switch (t) {
            case pretext::task::rotation: run(*rotation_, h, s, n, r, r.cache.rotation); break;
            case pretext::task::jigsaw: run(*jigsaw_, h, s, n, r, r.cache.jigsaw); break;
            case pretext::task::exemplar: run(*exemplar_, h, s, n, r, r.cache.exemplar); break;
            case pretext::task::colorization: break;
        }
        return r;
    }

    std::vector<tensor<T>> backward_taps(const cache_type& c, const tensor<T>& dy) {
        const std::size_t M = cfg_.taps.size();
        const pretext::task t = task_of(c.branch);
        std::vector<tensor<T>> d(tap_names().size());
        if (t == pretext::task::colorization) {
            auto g = colorization_->backward_taps(c.colorization, dy);
            for (std::size_t k = 0; k < g.size(); ++k) d[M + k] = std::move(g[k]);
            return d;
        }
        tensor<T> dh;
        switch (t) {
            case pretext::task::rotation: dh = rotation_->backward(c.rotation, dy); break;
            case pretext::task::jigsaw: dh = jigsaw_->backward(c.jigsaw, dy); break;
            case pretext::task::exemplar: dh = exemplar_->backward(c.exemplar, dy); break;
            case pretext::task::colorization: break;
        }
        const std::size_t rows = c.map_shape[0], C = c.map_shape[1], HW = c.map_shape[2] * c.map_shape[3];
        const T inv = static_cast<T>(1.0 / static_cast<double>(HW));
        auto spread = [&](T w) {  // d map = w * dh / (H W) at every position
            tensor<T> g(c.map_shape);
            for (std::size_t i = 0; i < rows * C; ++i) std::fill_n(g.data() + i * HW, HW, w * inv * dh[i]);
            return g;
        };
        if (!alpha_.value.defined()) {
            d[M - 1] = spread(T(1));
            return d;
        }
        const std::size_t r = row_[pretext::slot(t)];
        for (std::size_t m = 0; m < M; ++m) {
            double ga = 0;
            for (std::size_t i = 0; i < rows * C; ++i)
                ga += static_cast<double>(dh[i]) * static_cast<double>(c.pooled[m][i]);
            const T a = alpha_.value.at(r, m);
            const double sign = a > 0 ? 1.0 : (a < 0 ? -1.0 : 0.0);
            alpha_.grad.at(r, m) += static_cast<T>(ga + cfg_.l1 * sign);
            d[m] = spread(a);
        }
        return d;
    }

    /// The layer concept's forward: this head reads taps (forward_taps).
    forward_result<T, cache_type> forward(const tensor<T>&) {
        throw value_error("head::multitask reads backbone taps: call forward_taps (ssl::method does)");
    }
    tensor<T> backward(const cache_type&, const tensor<T>&) {
        throw value_error("head::multitask reads backbone taps: call backward_taps (ssl::method does)");
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        if (alpha_.value.defined()) f(join_name(p, "lasso.alpha"), alpha_);
        each([&](auto& h, const std::string& n) { h.for_each_parameter(f, join_name(p, n)); });
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        each([&](auto& h, const std::string& n) { h.for_each_buffer(f, join_name(p, n)); });
    }
    void train(bool on) {
        training_ = on;
        each([&](auto& h, const std::string&) { h.train(on); });
    }
    bool training() const noexcept { return training_; }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    bool only_colorization() const {
        return tasks_.size() == 1 && tasks_.front() == pretext::task::colorization;
    }
    pretext::task task_of(std::size_t branch) const {
        require<value_error>(branch < pretext::task_count, "head::multitask: a view of branch ", branch,
                             " but there are ", pretext::task_count, " task slots");
        const auto t = static_cast<pretext::task>(branch);
        require<value_error>(pretext::has(tasks_, t), "head::multitask: a view of task '", pretext::name(t),
                             "', which is not one of this head's tasks");
        return t;
    }
    /// h = sum_m alpha_{t,m} pool(maps[m]) (lasso), or pool(maps[M-1]).
    tensor<T> mix(const std::vector<tensor<T>>& maps, pretext::task t, cache_type& c) const {
        const std::size_t M = cfg_.taps.size();
        const tensor<T>& last = maps[M - 1];
        require<shape_error>(last.rank() == 4, "head::multitask: lasso tap '", cfg_.taps[M - 1], "' has shape ",
                             last.shape().str(), ", not (rows, C, H, W)");
        c.map_shape = last.shape();
        const std::size_t rows = last.dim(0), C = last.dim(1), HW = last.dim(2) * last.dim(3);
        const bool lasso = alpha_.value.defined();
        const std::size_t first = lasso ? 0 : M - 1;
        for (std::size_t m = first; m < M; ++m)
            require<shape_error>(maps[m].shape() == last.shape(), "head::multitask: lasso taps must have one shape; '",
                                 cfg_.taps[m], "' has ", maps[m].shape().str(), ", '", cfg_.taps[M - 1], "' ",
                                 last.shape().str());
        auto pool = [&](const tensor<T>& x) {
            tensor<T> p({rows, C});
            for (std::size_t i = 0; i < rows * C; ++i) {
                double s = 0;
                for (std::size_t q = 0; q < HW; ++q) s += static_cast<double>(x[i * HW + q]);
                p[i] = static_cast<T>(s / static_cast<double>(HW));
            }
            return p;
        };
        if (!lasso) return pool(last);
        const std::size_t r = row_[pretext::slot(t)];
        tensor<T> h = tensor<T>::zeros({rows, C});
        c.pooled.resize(M);
        for (std::size_t m = 0; m < M; ++m) {
            c.pooled[m] = pool(maps[m]);
            const T a = alpha_.value.at(r, m);
            for (std::size_t i = 0; i < rows * C; ++i) h[i] += a * c.pooled[m][i];
        }
        return h;
    }
    template <class H, class Cache>
    static void run(H& head, const tensor<T>& h, const view_spec& s, std::size_t n, forward_result<T, cache_type>& r,
                    Cache& slot) {
        auto y = forward_view(head, h, s, n);
        r.out = std::move(y.out);
        slot = std::move(y.cache);
    }
    template <class F>
    void each(F&& f) {
        if (rotation_) f(*rotation_, std::string("rotation"));
        if (jigsaw_) f(*jigsaw_, std::string("jigsaw"));
        if (exemplar_) f(*exemplar_, std::string("exemplar"));
        if (colorization_) f(*colorization_, std::string("colorization"));
    }

    config_type cfg_{};
    std::vector<pretext::task> tasks_{};
    std::vector<std::string> names_{};  ///< tap_names(): the lasso taps, then colorization's
    std::array<std::size_t, pretext::task_count> row_{npos, npos, npos, npos};
    parameter<T> alpha_{};
    bool training_ = true;
    std::optional<linear_classifier<T>> rotation_;
    std::optional<jigsaw_head> jigsaw_;
    std::optional<embedding<T>> exemplar_;
    std::optional<hypercolumn<T>> colorization_;
};

}  // namespace ssl::head
