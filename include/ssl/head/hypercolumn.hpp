#pragma once
// The hypercolumn head of colorization (Larsson, Maire & Shakhnarovich,
// "Learning representations for automatic colorization", ECCV 2016, sec. 3.1,
// and "Colorization as a proxy task for visual understanding", CVPR 2017;
// hypercolumns: Hariharan et al. 2015). At a location p of the input, the
// hypercolumn is the concatenation of every tapped map read at p; an "fc"
// layer (1x1), relu and dropout, then one linear layer gives the logits:
//
//   h(p) = [up(t_1)(p); ...; up(t_K)(p)]            (D = sum_k C_k features)
//   z(p) = W_2 dropout(relu(W_1 h(p) + b_1)) + b_2   (outputs = 2 * bins: hue, then chroma)
//
// Contract: forward_taps(taps, spec, n) takes the backbone's maps (B, C_k,
// h_k, w_k) named in config().taps, in that order, and returns (G * G * B,
// outputs): row c * B + b is grid cell c = gy * G + gx of image b (the
// library's row rule, a grid cell being a "copy"); backward_taps(cache, dy)
// returns one gradient per tap, for the backbone's backward_taps.
// method.hpp runs a head that has tap_names() through the backbone's taps.
//
// Design choices, one line each:
//   - locations are the centres of a G x G grid of the input, not 128 random
//     pixels: no side channel from the augmentation to the head is needed,
//     and random crops move the grid over the image content anyway;
//   - each map is brought to the grid by bilinear resizing (nn::upsample,
//     align_corners = False): the value at a cell centre, as Larsson's sparse
//     bilinear extractor reads it at a pixel;
//   - hue and chroma logits come from one output layer (rows 0..bins-1 hue,
//     then chroma), which equals two separate linear layers;
//   - the tap channels are in the config (colorization_config measures them
//     with a dry forward), so the parameters exist before the first step;
//   - the dropout mask is seeded (nn::dropout), so runs repeat exactly; on
//     P data-parallel ranks each row is keyed by its place in the global
//     batch (row cell * B P + rank B + b), so P ranks draw one process's mask.
#include <cstdint>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../dist/communicator.hpp"
#include "../nn/activation.hpp"
#include "../nn/dropout.hpp"
#include "../nn/linear.hpp"
#include "../nn/upsample.hpp"
#include "tap_reading.hpp"

namespace ssl::head {

struct hypercolumn_config {
    std::vector<std::string> taps;          ///< backbone tap names (torchvision module names), in order
    std::vector<std::size_t> tap_channels;  ///< channels of each tap
    std::size_t grid = 8;                   ///< G: predictions at the centres of a G x G grid
    std::size_t hidden = 1024;              ///< the fc layer's width (Larsson et al.: 1024)
    double dropout = 0.5;                   ///< after the fc layer (Larsson et al.: 0.5)
    std::size_t outputs = 16;               ///< logits per location: 2 * bins (hue bins, then chroma bins)
};

template <class T = float>
class hypercolumn {
public:
    using value_type = T;
    using config_type = hypercolumn_config;
    using target_type = hypercolumn;
    struct cache_type {
        std::vector<shape_t> tap_shapes;
        std::size_t batch = 0;
        typename nn::linear<T>::cache_type fc1, fc2;
        typename nn::relu<T>::cache_type relu;
        typename nn::dropout<T>::cache_type drop;
    };

    hypercolumn() = default;
    /// in_features (the pooled width) is not used: the head reads the taps.
    hypercolumn(const config_type& c, std::size_t /*in_features*/ = 0, std::uint64_t seed = 0) : cfg_(c) {
        require(!c.taps.empty(), "head::hypercolumn: needs at least one tap");
        require(c.taps.size() == c.tap_channels.size(), "head::hypercolumn: ", c.taps.size(), " taps but ",
                c.tap_channels.size(), " tap channel counts (colorization_config fills them)");
        require(c.grid > 0 && c.hidden > 0 && c.outputs > 0, "head::hypercolumn: grid, hidden and outputs must be positive");
        std::size_t d = 0;
        for (std::size_t ch : c.tap_channels) {
            require(ch > 0, "head::hypercolumn: a tap with 0 channels");
            d += ch;
        }
        fc1_ = nn::linear<T>({d, c.hidden, true}, seed);
        fc2_ = nn::linear<T>({c.hidden, c.outputs, true}, seed + 1);
        drop_ = nn::dropout<T>({c.dropout, seed + 2});
        up_ = nn::upsample_bilinear2d<T>({c.grid, c.grid});
    }

    const config_type& config() const noexcept { return cfg_; }
    const std::vector<std::string>& tap_names() const noexcept { return cfg_.taps; }
    std::size_t out_features() const noexcept { return cfg_.outputs; }
    std::size_t hypercolumn_dim() const noexcept { return fc1_.config().in_features; }
    hypercolumn& target_part() noexcept { return *this; }

    /// The logits at the grid cells of every image: (G * G * B, outputs).
    forward_result<T, cache_type> forward_taps(const std::vector<tensor<T>>& taps, const view_spec& = {},
                                               std::size_t = 0) {
        require<shape_error>(taps.size() == cfg_.taps.size(), "head::hypercolumn: got ", taps.size(),
                             " maps for ", cfg_.taps.size(), " taps");
        const std::size_t G = cfg_.grid, cells = G * G, D = hypercolumn_dim();
        cache_type c;
        c.batch = taps[0].rank() == 4 ? taps[0].dim(0) : 0;
        const std::size_t B = c.batch;
        tensor<T> h({cells * B, D});
        std::size_t off = 0;
        for (std::size_t k = 0; k < taps.size(); ++k) {
            const tensor<T>& t = taps[k];
            require<shape_error>(t.rank() == 4 && t.dim(0) == B && t.dim(1) == cfg_.tap_channels[k],
                                 "head::hypercolumn: tap '", cfg_.taps[k], "' has shape ", t.shape().str(),
                                 ", expected (", B, ", ", cfg_.tap_channels[k], ", H, W)");
            c.tap_shapes.push_back(t.shape());
            const tensor<T> u = up_.forward(t).out;  // (B, C_k, G, G)
            const std::size_t C = t.dim(1);
            for (std::size_t b = 0; b < B; ++b)
                for (std::size_t ch = 0; ch < C; ++ch)
                    for (std::size_t cell = 0; cell < cells; ++cell)
                        h[(cell * B + b) * D + off + ch] = u[(b * C + ch) * cells + cell];
            off += C;
        }
        auto a = fc1_.forward(h);
        auto r = relu_.forward(a.out);
        // rows keyed by their place in the global batch: P ranks draw one process's mask
        std::vector<std::size_t> rows;
        if (const dist::communicator* comm = dist::active()) {
            const auto P = static_cast<std::size_t>(comm->size()), me = static_cast<std::size_t>(comm->rank());
            rows.resize(cells * B);
            for (std::size_t cell = 0; cell < cells; ++cell)
                for (std::size_t b = 0; b < B; ++b) rows[cell * B + b] = cell * B * P + me * B + b;
        }
        auto d = drop_.forward(r.out, rows);
        auto z = fc2_.forward(d.out);
        c.fc1 = std::move(a.cache);
        c.relu = std::move(r.cache);
        c.drop = std::move(d.cache);
        c.fc2 = std::move(z.cache);
        return {std::move(z.out), std::move(c)};
    }

    /// Gradients at the taps, in config().taps' order.
    std::vector<tensor<T>> backward_taps(const cache_type& c, const tensor<T>& dy) {
        tensor<T> g = fc2_.backward(c.fc2, dy);
        g = drop_.backward(c.drop, g);
        g = relu_.backward(c.relu, g);
        g = fc1_.backward(c.fc1, g);  // (cells * B, D)
        const std::size_t G = cfg_.grid, cells = G * G, D = hypercolumn_dim(), B = c.batch;
        std::vector<tensor<T>> d;
        std::size_t off = 0;
        for (std::size_t k = 0; k < c.tap_shapes.size(); ++k) {
            const std::size_t C = c.tap_shapes[k][1];
            tensor<T> du({B, C, G, G});
            for (std::size_t b = 0; b < B; ++b)
                for (std::size_t ch = 0; ch < C; ++ch)
                    for (std::size_t cell = 0; cell < cells; ++cell)
                        du[(b * C + ch) * cells + cell] = g[(cell * B + b) * D + off + ch];
            d.push_back(up_.backward({c.tap_shapes[k]}, du));
            off += C;
        }
        return d;
    }

    /// The layer interface with one tap: forward(x) is forward_taps({x}).
    forward_result<T, cache_type> forward(const tensor<T>& x) {
        require(cfg_.taps.size() == 1, "head::hypercolumn: forward(x) takes one map, the head has ", cfg_.taps.size(),
                " taps; use forward_taps");
        return forward_taps({x});
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) { return backward_taps(c, dy).at(0); }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        fc1_.for_each_parameter(f, join_name(prefix, "fc1"));
        fc2_.for_each_parameter(f, join_name(prefix, "fc2"));
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept {
        training_ = on;
        drop_.train(on);
    }
    bool training() const noexcept { return training_; }

private:
    config_type cfg_{};
    nn::linear<T> fc1_, fc2_;
    nn::relu<T> relu_;
    nn::dropout<T> drop_;
    nn::upsample_bilinear2d<T> up_;
    bool training_ = true;
};

}  // namespace ssl::head
