#pragma once
// Two hypercolumn heads side by side, each reading its own taps: the dense
// predictors of a split-brain network (Zhang, Isola & Efros, CVPR 2017).
// Head 1 reads half 1's maps and predicts half 2's channels, head 2 the
// reverse; their logits at the grid cells are put side by side:
//
//   z(p) = [ z_1(p) | z_2(p) ]   z_k = hypercolumn_k(taps of config.first / config.second)   (hypercolumn.hpp)
//
// Contract: tap_names() = config.first.taps, then config.second.taps;
// forward_taps(maps) takes the maps in that order and returns (G * G * B,
// outputs_1 + outputs_2), rows as hypercolumn's (row c * B + b: grid cell c
// of image b); both heads must use one grid. backward_taps(cache, dy) splits
// dy's columns and returns one gradient per tap, in tap_names() order.
// Head k sees only the maps given as its own, so what it predicts depends on
// nothing else (split_brain_config names half k's taps only for head k).
//
// Design choices, one line each:
//   - two hypercolumns (fc + relu + dropout + fc) rather than the paper's
//     conv-ified fc layers at the top of each half: the backbones here are
//     ResNets / VGGs whose last map is small at small image sizes;
//   - one output tensor per view (columns side by side), so the method runs
//     it as any tap-reading head and one loss reads both parts.
#include <cstdint>
#include <string>
#include <vector>

#include "hypercolumn.hpp"

namespace ssl::head {

struct split_hypercolumns_config {
    hypercolumn_config first;   ///< reads half 1's taps (L), predicts ab bins
    hypercolumn_config second;  ///< reads half 2's taps (ab), predicts L bins
};

template <class T = float>
class split_hypercolumns {
public:
    using value_type = T;
    using config_type = split_hypercolumns_config;
    using target_type = split_hypercolumns;
    struct cache_type {
        typename hypercolumn<T>::cache_type c1, c2;
    };

    split_hypercolumns() = default;
    split_hypercolumns(const config_type& c, std::size_t /*in_features*/ = 0, std::uint64_t seed = 0)
        : cfg_(c), h1_(c.first, 0, seed), h2_(c.second, 0, seed + 101) {
        require(c.first.grid == c.second.grid, "head::split_hypercolumns: the heads' grids differ (", c.first.grid,
                " and ", c.second.grid, "); their rows must be the same cells");
        names_ = c.first.taps;
        names_.insert(names_.end(), c.second.taps.begin(), c.second.taps.end());
    }

    const config_type& config() const noexcept { return cfg_; }
    const std::vector<std::string>& tap_names() const noexcept { return names_; }
    std::size_t out_features() const noexcept { return cfg_.first.outputs + cfg_.second.outputs; }
    split_hypercolumns& target_part() noexcept { return *this; }
    hypercolumn<T>& first() noexcept { return h1_; }
    hypercolumn<T>& second() noexcept { return h2_; }

    forward_result<T, cache_type> forward_taps(const std::vector<tensor<T>>& taps, const view_spec& = {},
                                               std::size_t = 0) {
        const std::size_t k1 = cfg_.first.taps.size();
        require<shape_error>(taps.size() == names_.size(), "head::split_hypercolumns: got ", taps.size(),
                             " maps for ", names_.size(), " taps");
        auto r1 = h1_.forward_taps(std::vector<tensor<T>>(taps.begin(), taps.begin() + k1));
        auto r2 = h2_.forward_taps(std::vector<tensor<T>>(taps.begin() + k1, taps.end()));
        const std::size_t R = r1.out.dim(0), o1 = r1.out.dim(1), o2 = r2.out.dim(1);
        require<shape_error>(r2.out.dim(0) == R, "head::split_hypercolumns: the heads' rows differ (", R, " and ",
                             r2.out.dim(0), "): their taps have other batch sizes");
        tensor<T> z({R, o1 + o2});
        for (std::size_t r = 0; r < R; ++r) {
            std::copy(r1.out.data() + r * o1, r1.out.data() + (r + 1) * o1, z.data() + r * (o1 + o2));
            std::copy(r2.out.data() + r * o2, r2.out.data() + (r + 1) * o2, z.data() + r * (o1 + o2) + o1);
        }
        return {std::move(z), cache_type{std::move(r1.cache), std::move(r2.cache)}};
    }

    std::vector<tensor<T>> backward_taps(const cache_type& c, const tensor<T>& dy) {
        const std::size_t o1 = cfg_.first.outputs, o2 = cfg_.second.outputs;
        require<shape_error>(dy.rank() == 2 && dy.dim(1) == o1 + o2, "head::split_hypercolumns: gradient ",
                             dy.shape().str(), " needs ", o1 + o2, " columns");
        const std::size_t R = dy.dim(0);
        tensor<T> d1({R, o1}), d2({R, o2});
        for (std::size_t r = 0; r < R; ++r) {
            std::copy(dy.data() + r * (o1 + o2), dy.data() + r * (o1 + o2) + o1, d1.data() + r * o1);
            std::copy(dy.data() + r * (o1 + o2) + o1, dy.data() + (r + 1) * (o1 + o2), d2.data() + r * o2);
        }
        auto g = h1_.backward_taps(c.c1, d1);
        auto g2 = h2_.backward_taps(c.c2, d2);
        g.insert(g.end(), g2.begin(), g2.end());
        return g;
    }

    /// The layer interface, for the concepts: this head reads taps only.
    forward_result<T, cache_type> forward(const tensor<T>&) {
        throw value_error("head::split_hypercolumns: reads backbone taps; use forward_taps");
    }
    tensor<T> backward(const cache_type&, const tensor<T>&) {
        throw value_error("head::split_hypercolumns: reads backbone taps; use backward_taps");
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        h1_.for_each_parameter(f, join_name(prefix, "first"));
        h2_.for_each_parameter(f, join_name(prefix, "second"));
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) {
        h1_.train(on);
        h2_.train(on);
    }
    bool training() const noexcept { return h1_.training(); }

private:
    config_type cfg_{};
    hypercolumn<T> h1_, h2_;
    std::vector<std::string> names_;
};

}  // namespace ssl::head
