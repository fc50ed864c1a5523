#pragma once
// Head combinators: heads built from heads, routed by the view's spec
// (head/view_aware.hpp). They are what the pretexts with several inputs per
// image need:
//   route<H0, H1, ...>   view with spec.branch b -> head H_b (PIRL's f for the
//                        image and g for the tiles; one head per task)
//   group<Row, Joint>    Row on every row (tile, patch), then Joint on each
//                        sample's `copies` row outputs concatenated in copy
//                        order (Jigsaw's per-tile fc -> concat -> fc; PIRL's g)
//   concat<H0, H1>       both heads on the same input, outputs side by side
//   fc_relu              linear + ReLU (a per-tile fc layer)
// Every combinator is a head (Head(config, in_features, seed), out_features(),
// target_part()) and a layer (forward/backward, parameters, buffers, modes);
// parameters are named "<index>.<name>" (route, concat) or "row." / "joint."
// (group). Each sub-head gets its own seed (seed + 7919 i).
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <variant>

#include "../core/concepts.hpp"
#include "../nn/activation.hpp"
#include "../nn/linear.hpp"
#include "../nn/parameter.hpp"
#include "../nn/sequential.hpp"
#include "view_aware.hpp"

namespace ssl::head {

namespace detail {
inline constexpr std::uint64_t sub_seed_step = 7919;
}  // namespace detail

struct fc_relu_config {
    std::size_t out = 512;
};

/// y = relu(W x + b): (rows, in) -> (rows, out).
template <class T = float>
class fc_relu {
    using stack = nn::sequential<nn::linear<T>, nn::relu<T>>;

public:
    using value_type = T;
    using config_type = fc_relu_config;
    using cache_type = typename stack::cache_type;
    using target_type = fc_relu;
    fc_relu() = default;
    fc_relu(const fc_relu_config& c, std::size_t in_features, std::uint64_t seed = 0) : cfg_(c) {
        require(in_features > 0 && c.out > 0, "head::fc_relu: sizes must be positive, got in=", in_features,
                " out=", c.out);
        net_ = stack(nn::linear<T>({in_features, c.out, true}, seed), nn::relu<T>{});
    }
    std::size_t out_features() const noexcept { return cfg_.out; }
    forward_result<T, cache_type> forward(const tensor<T>& x) { return net_.forward(x); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) { return net_.backward(c, dy); }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        net_.for_each_parameter(f, p);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        net_.for_each_buffer(f, p);
    }
    void train(bool on) { net_.train(on); }
    bool training() const noexcept { return net_.training(); }
    fc_relu& target_part() noexcept { return *this; }

private:
    fc_relu_config cfg_{};
    stack net_;
};

/// Routes each view to the head of its branch (spec.branch): branch b is
/// H_b. Called without a spec (embedding, passes over the data set), branch
/// 0 answers. out_features() is branch 0's; out_features(b) any branch's.
template <class... Hs>
class route {
    static_assert(sizeof...(Hs) >= 1, "head::route needs at least one head");
    using first = std::tuple_element_t<0, std::tuple<Hs...>>;

public:
    using value_type = typename first::value_type;
    using T = value_type;
    using config_type = std::tuple<typename Hs::config_type...>;
    struct cache_type {
        std::size_t branch = 0;
        std::tuple<typename Hs::cache_type...> caches;  // only the branch's entry is set
    };
    using target_type = route;
    static constexpr std::size_t branches = sizeof...(Hs);

    route() = default;
    route(const config_type& c, std::size_t in_features, std::uint64_t seed = 0)
        : route(c, in_features, seed, std::index_sequence_for<Hs...>{}) {}

    std::size_t out_features() const noexcept { return std::get<0>(heads_).out_features(); }
    std::size_t out_features(std::size_t branch) const {
        check_branch(branch);
        std::size_t r = 0;
        visit(branch, [&](const auto& h) { r = h.out_features(); });
        return r;
    }

    forward_result<T, cache_type> forward(const tensor<T>& x, const view_spec& s, std::size_t n) {
        check_branch(s.branch);
        forward_result<T, cache_type> r;
        r.cache.branch = s.branch;
        for_index(s.branch, [&]<std::size_t I>() {
            auto y = forward_view(std::get<I>(heads_), x, s, n);
            r.out = std::move(y.out);
            std::get<I>(r.cache.caches) = std::move(y.cache);
        });
        return r;
    }
    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward(x, view_spec{}, x.dim(0)); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        check_branch(c.branch);
        tensor<T> dx;
        for_index(c.branch, [&]<std::size_t I>() { dx = std::get<I>(heads_).backward(std::get<I>(c.caches), dy); });
        return dx;
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        each([&](auto& h, std::size_t i) { h.for_each_parameter(f, join_name(p, std::to_string(i))); });
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        each([&](auto& h, std::size_t i) { h.for_each_buffer(f, join_name(p, std::to_string(i))); });
    }
    void train(bool on) {
        each([&](auto& h, std::size_t) { h.train(on); });
    }
    bool training() const noexcept { return std::get<0>(heads_).training(); }
    route& target_part() noexcept { return *this; }
    template <std::size_t I>
    auto& get() noexcept {
        return std::get<I>(heads_);
    }

private:
    template <std::size_t... I>
    route(const config_type& c, std::size_t in, std::uint64_t seed, std::index_sequence<I...>)
        : heads_(Hs(std::get<I>(c), in, seed + detail::sub_seed_step * I)...) {}
    void check_branch(std::size_t b) const {
        require<value_error>(b < branches, "head::route: a view of branch ", b, " but the route has ", branches,
                             " heads (branches 0 to ", branches - 1, ")");
    }
    template <class F>
    void for_index(std::size_t b, F&& f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((b == I ? (f.template operator()<I>(), 0) : 0), ...);
        }(std::index_sequence_for<Hs...>{});
    }
    template <class F>
    void visit(std::size_t b, F&& f) const {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((b == I ? (f(std::get<I>(heads_)), 0) : 0), ...);
        }(std::index_sequence_for<Hs...>{});
    }
    template <class F>
    void each(F&& f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(heads_), I), ...); }(
            std::index_sequence_for<Hs...>{});
    }
    std::tuple<Hs...> heads_;
};

template <class RowConfig, class JointConfig>
struct group_config {
    RowConfig row{};
    JointConfig joint{};
    std::size_t copies = 9;  ///< rows per sample the joint head concatenates (3x3 tiles: 9)
};

/// Row on every row of the view, then Joint on each sample's copies:
/// with N samples and c = copies, row r * N + i is copy r of sample i;
/// Row maps (c N, D) -> (c N, d), the rows of sample i are concatenated in
/// copy order into (N, c d), and Joint maps that to (N, e). The view's spec
/// must have spec.copies == config.copies.
template <class Row, class Joint>
class group {
public:
    using value_type = typename Row::value_type;
    using T = value_type;
    using config_type = group_config<typename Row::config_type, typename Joint::config_type>;
    struct cache_type {
        typename Row::cache_type row;
        typename Joint::cache_type joint;
        std::size_t n = 0;
    };
    using target_type = group;

    group() = default;
    group(const config_type& c, std::size_t in_features, std::uint64_t seed = 0)
        : copies_(c.copies), row_(c.row, in_features, seed),
          joint_(c.joint, c.copies * row_.out_features(), seed + detail::sub_seed_step) {
        require<value_error>(c.copies >= 1, "head::group: copies must be at least 1");
    }
    std::size_t copies() const noexcept { return copies_; }
    std::size_t out_features() const noexcept { return joint_.out_features(); }

    forward_result<T, cache_type> forward(const tensor<T>& x, const view_spec& s, std::size_t n) {
        require<shape_error>(s.copies == copies_, "head::group: a view with ", s.copies,
                             " rows per sample, but the joint head concatenates ", copies_,
                             " (config.copies must match the augmentation's tiles/patches)");
        require<shape_error>(x.rank() == 2 && x.dim(0) == copies_ * n, "head::group: features of shape ",
                             x.shape().str(), " for ", copies_, " copies of ", n, " samples");
        auto y = forward_view(row_, x, s, n);
        const tensor<T> g = gather_copies(y.out, n);
        view_spec joint_spec = s;
        joint_spec.copies = 1;
        joint_spec.grid_rows = joint_spec.grid_cols = 0;
        auto z = forward_view(joint_, g, joint_spec, n);
        return {std::move(z.out), {std::move(y.cache), std::move(z.cache), n}};
    }
    forward_result<T, cache_type> forward(const tensor<T>& x) {
        require<shape_error>(x.rank() == 2 && x.dim(0) % copies_ == 0, "head::group: ", x.dim(0),
                             " rows are not ", copies_, " copies of whole samples");
        return forward(x, view_spec{.copies = copies_}, x.dim(0) / copies_);
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        const tensor<T> dg = joint_.backward(c.joint, dy);  // (N, c d)
        return row_.backward(c.row, scatter_copies(dg, c.n));
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        row_.for_each_parameter(f, join_name(p, "row"));
        joint_.for_each_parameter(f, join_name(p, "joint"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        row_.for_each_buffer(f, join_name(p, "row"));
        joint_.for_each_buffer(f, join_name(p, "joint"));
    }
    void train(bool on) {
        row_.train(on);
        joint_.train(on);
    }
    bool training() const noexcept { return row_.training(); }
    group& target_part() noexcept { return *this; }
    Row& row() noexcept { return row_; }
    Joint& joint() noexcept { return joint_; }

private:
    /// (c N, d) rows r * N + i -> (N, c d), sample i = [copy 0 | copy 1 | ...].
    tensor<T> gather_copies(const tensor<T>& y, std::size_t n) const {
        const std::size_t d = y.dim(1);
        tensor<T> g({n, copies_ * d});
        for (std::size_t r = 0; r < copies_; ++r)
            for (std::size_t i = 0; i < n; ++i)
                std::copy_n(y.data() + (r * n + i) * d, d, g.data() + i * copies_ * d + r * d);
        return g;
    }
    /// The adjoint of gather_copies.
    tensor<T> scatter_copies(const tensor<T>& g, std::size_t n) const {
        const std::size_t d = g.dim(1) / copies_;
        tensor<T> y({copies_ * n, d});
        for (std::size_t r = 0; r < copies_; ++r)
            for (std::size_t i = 0; i < n; ++i)
                std::copy_n(g.data() + i * copies_ * d + r * d, d, y.data() + (r * n + i) * d);
        return y;
    }

    std::size_t copies_ = 1;
    Row row_;
    Joint joint_;
};

template <class C0, class C1>
struct concat_config {
    C0 first{};
    C1 second{};
};

/// Both heads on the same input: (rows, D) -> (rows, d0 + d1), the first
/// head's outputs in the first d0 columns.
template <class H0, class H1>
class concat {
public:
    using value_type = typename H0::value_type;
    using T = value_type;
    using config_type = concat_config<typename H0::config_type, typename H1::config_type>;
    struct cache_type {
        typename H0::cache_type first;
        typename H1::cache_type second;
    };
    using target_type = concat;

    concat() = default;
    concat(const config_type& c, std::size_t in_features, std::uint64_t seed = 0)
        : a_(c.first, in_features, seed), b_(c.second, in_features, seed + detail::sub_seed_step) {}
    std::size_t out_features() const noexcept { return a_.out_features() + b_.out_features(); }

    forward_result<T, cache_type> forward(const tensor<T>& x, const view_spec& s, std::size_t n) {
        auto ya = forward_view(a_, x, s, n);
        auto yb = forward_view(b_, x, s, n);
        require<shape_error>(ya.out.rank() == 2 && yb.out.rank() == 2 && ya.out.dim(0) == yb.out.dim(0),
                             "head::concat: outputs of shapes ", ya.out.shape().str(), " and ",
                             yb.out.shape().str(), " do not stack side by side");
        const std::size_t rows = ya.out.dim(0), d0 = ya.out.dim(1), d1 = yb.out.dim(1);
        tensor<T> y({rows, d0 + d1});
        for (std::size_t i = 0; i < rows; ++i) {
            std::copy_n(ya.out.data() + i * d0, d0, y.data() + i * (d0 + d1));
            std::copy_n(yb.out.data() + i * d1, d1, y.data() + i * (d0 + d1) + d0);
        }
        return {std::move(y), {std::move(ya.cache), std::move(yb.cache)}};
    }
    forward_result<T, cache_type> forward(const tensor<T>& x) { return forward(x, view_spec{}, x.dim(0)); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        const std::size_t rows = dy.dim(0), d0 = a_.out_features(), d1 = b_.out_features();
        require<shape_error>(dy.rank() == 2 && dy.dim(1) == d0 + d1, "head::concat: gradient of shape ",
                             dy.shape().str(), " for ", d0, " + ", d1, " outputs");
        tensor<T> ga({rows, d0}), gb({rows, d1});
        for (std::size_t i = 0; i < rows; ++i) {
            std::copy_n(dy.data() + i * (d0 + d1), d0, ga.data() + i * d0);
            std::copy_n(dy.data() + i * (d0 + d1) + d0, d1, gb.data() + i * d1);
        }
        tensor<T> dx = a_.backward(c.first, ga);
        const tensor<T> dxb = b_.backward(c.second, gb);
        for (std::size_t k = 0; k < dx.numel(); ++k) dx[k] += dxb[k];
        return dx;
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        a_.for_each_parameter(f, join_name(p, "0"));
        b_.for_each_parameter(f, join_name(p, "1"));
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        a_.for_each_buffer(f, join_name(p, "0"));
        b_.for_each_buffer(f, join_name(p, "1"));
    }
    void train(bool on) {
        a_.train(on);
        b_.train(on);
    }
    bool training() const noexcept { return a_.training(); }
    concat& target_part() noexcept { return *this; }

private:
    H0 a_;
    H1 b_;
};

}  // namespace ssl::head
