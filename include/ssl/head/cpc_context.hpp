#pragma once
// CPC's context network and predictors (van den Oord et al. 2018; Hénaff et
// al. 2019, "Data-Efficient Image Recognition with Contrastive Predictive
// Coding", sec. 2): on the grid of patch features z[i, j] of each image, a
// masked (row-causal) convolutional network gives context vectors c[i, j]
// that see rows u <= i only; a linear map per step k predicts the feature k
// rows below:
//
//   c = g_ar(z),   zhat_k[i, j] = W_k c[i, j]   (k = 1 .. K)
//
// A view-aware head (head/view_aware.hpp): it reads the view's spec for the
// grid (grid_rows x grid_cols = copies; row (r cols + c) N + i of the
// features is patch (r, c) of sample i).
//
// Contract: forward(features (R C N, D), spec, N) -> (R C N, K + 1, D):
// slot 0 is z itself (passed through, so the loss gets the targets and
// negatives with the predictions and its gradient reaches the encoder), slot
// k the prediction zhat_k made at that patch (for the patch k rows below; the
// loss ignores rows i + k >= R). backward(cache, dy of that shape) -> dz,
// the pass-through and the context network's gradients summed.
// out_features() = (K + 1) D. Without a spec (plain forward(x)) it refuses:
// there is no grid.
//
// Design choices:
// - g_ar: `layers` masked 3x3 convolutions (nn/masked_conv2d.hpp, the centre
//   row visible: c[i] sees rows i - layers .. i) with ReLU between them,
//   width `hidden` (0: D), linear output: the paper's PixelCNN-style stack of
//   masked residual blocks, shortened for small grids (a 7x7 grid is covered
//   by 3 layers above a row).
// - W_k: linear, no bias (zhat = W_k c, as the paper).
// - The grid is zero-padded at its borders (the convolutions' padding).
// - Parameter names: context.L.weight / .bias (L = 0 .. layers - 1),
//   predict.k.weight (k = 1 .. K).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../nn/activation.hpp"
#include "../nn/linear.hpp"
#include "../nn/masked_conv2d.hpp"
#include "../nn/parameter.hpp"
#include "view_aware.hpp"

namespace ssl::head {

struct cpc_context_config {
    std::size_t hidden = 0;  ///< context width H; 0: the patch features' width D
    std::size_t layers = 3;  ///< masked convolutions
    std::size_t kernel = 3;  ///< their (odd) kernel side
    std::size_t steps = 3;   ///< K: predictions 1 .. K rows ahead (below the grid's rows)
};

template <class T = float>
class cpc_context {
public:
    using value_type = T;
    using config_type = cpc_context_config;
    using target_type = cpc_context;
    struct cache_type {
        std::vector<typename nn::masked_conv2d<T>::cache_type> conv;
        std::vector<typename nn::relu<T>::cache_type> relu;
        tensor<T> context;  ///< c as rows (R C N, H), row (r C + c) N + i
        std::size_t n = 0, rows = 0, cols = 0;
    };

    cpc_context() = default;
    cpc_context(const cpc_context_config& c, std::size_t in_features, std::uint64_t seed = 0)
        : cfg_(c), in_(in_features), hidden_(c.hidden ? c.hidden : in_features) {
        require<value_error>(in_features > 0, "head::cpc_context: the patch features have width 0");
        require<value_error>(c.layers >= 1, "head::cpc_context: the context network needs at least 1 layer");
        require<value_error>(c.steps >= 1, "head::cpc_context: K = 0 prediction steps predict nothing");
        require<value_error>(c.kernel % 2 == 1 && c.kernel >= 3, "head::cpc_context: kernel must be odd and at least 3, got ",
                             c.kernel);
        for (std::size_t l = 0; l < c.layers; ++l)
            convs_.emplace_back(nn::masked_conv2d_config{.in_channels = l ? hidden_ : in_,
                                                         .out_channels = hidden_,
                                                         .kernel = c.kernel,
                                                         .bias = true,
                                                         .include_centre_row = true},
                                seed + 31 * l);
        for (std::size_t k = 1; k <= c.steps; ++k)
            predict_.emplace_back(nn::linear_config{hidden_, in_, false}, seed + 1000 + k);
    }
    const cpc_context_config& config() const noexcept { return cfg_; }
    std::size_t steps() const noexcept { return cfg_.steps; }
    std::size_t in_features() const noexcept { return in_; }
    std::size_t hidden() const noexcept { return hidden_; }
    /// (K + 1) D: z and K predictions per patch (forward's output is (rows, K + 1, D)).
    std::size_t out_features() const noexcept { return (cfg_.steps + 1) * in_; }
    nn::linear<T>& predictor(std::size_t k) { return predict_.at(k - 1); }
    nn::masked_conv2d<T>& layer(std::size_t l) { return convs_.at(l); }

    forward_result<T, cache_type> forward(const tensor<T>& x, const view_spec& s, std::size_t n) {
        const std::size_t R = s.grid_rows, C = s.grid_cols;
        require<shape_error>(R * C >= 1 && R * C == s.copies, "head::cpc_context: the view has ", s.copies,
                             " copies per sample and a ", R, "x", C,
                             " grid; the context network needs the patch grid (view_spec grid_rows x grid_cols)");
        require<shape_error>(cfg_.steps < R, "head::cpc_context: K = ", cfg_.steps, " prediction steps on a grid of ",
                             R, " rows: step k needs a row k below, so K must be below ", R);
        require<shape_error>(x.rank() == 2 && x.dim(0) == R * C * n && x.dim(1) == in_, "head::cpc_context: features of shape ",
                             x.shape().str(), " for a ", R, "x", C, " grid of ", n, " samples of width ", in_);
        cache_type cache;
        cache.n = n;
        cache.rows = R;
        cache.cols = C;
        tensor<T> h = to_grid(x, n, R, C);
        for (std::size_t l = 0; l < convs_.size(); ++l) {
            if (l > 0) {
                auto a = relu_.forward(h);
                cache.relu.push_back(std::move(a.cache));
                h = std::move(a.out);
            }
            auto y = convs_[l].forward(h);
            cache.conv.push_back(std::move(y.cache));
            h = std::move(y.out);
        }
        cache.context = from_grid(h, n, R, C);
        const std::size_t rows = x.dim(0), D = in_, K = cfg_.steps;
        tensor<T> out({rows, K + 1, D});
        for (std::size_t j = 0; j < rows; ++j) std::copy_n(x.data() + j * D, D, out.data() + j * (K + 1) * D);
        for (std::size_t k = 1; k <= K; ++k) {
            const tensor<T> p = predict_[k - 1].forward(cache.context).out;
            for (std::size_t j = 0; j < rows; ++j)
                std::copy_n(p.data() + j * D, D, out.data() + (j * (K + 1) + k) * D);
        }
        return {std::move(out), std::move(cache)};
    }
    forward_result<T, cache_type> forward(const tensor<T>&) {
        throw shape_error("head::cpc_context: called without a view spec; it needs the patch grid (the view's "
                          "grid_rows x grid_cols), which only a view batch carries");
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        const std::size_t rows = c.context.dim(0), D = in_, K = cfg_.steps;
        require<shape_error>(dy.shape() == shape_t{rows, K + 1, D}, "head::cpc_context backward: gradient of shape ",
                             dy.shape().str(), " for an output of shape (", rows, ", ", K + 1, ", ", D, ")");
        tensor<T> dctx = tensor<T>::zeros({rows, hidden_});
        tensor<T> dp({rows, D});
        for (std::size_t k = 1; k <= K; ++k) {
            for (std::size_t j = 0; j < rows; ++j)
                std::copy_n(dy.data() + (j * (K + 1) + k) * D, D, dp.data() + j * D);
            const tensor<T> d = predict_[k - 1].backward(typename nn::linear<T>::cache_type{c.context}, dp);
            for (std::size_t e = 0; e < d.numel(); ++e) dctx[e] += d[e];
        }
        tensor<T> g = to_grid(dctx, c.n, c.rows, c.cols);
        for (std::size_t l = convs_.size(); l-- > 0;) {
            g = convs_[l].backward(c.conv[l], g);
            if (l > 0) g = relu_.backward(c.relu[l - 1], g);
        }
        tensor<T> dx = from_grid(g, c.n, c.rows, c.cols);
        for (std::size_t j = 0; j < rows; ++j)
            for (std::size_t e = 0; e < D; ++e) dx.data()[j * D + e] += dy.data()[j * (K + 1) * D + e];
        return dx;
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        for (std::size_t l = 0; l < convs_.size(); ++l)
            convs_[l].for_each_parameter(f, join_name(p, "context." + std::to_string(l)));
        for (std::size_t k = 1; k <= predict_.size(); ++k)
            predict_[k - 1].for_each_parameter(f, join_name(p, "predict." + std::to_string(k)));
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) {
        training_ = on;
        for (auto& c : convs_) c.train(on);
        for (auto& l : predict_) l.train(on);
    }
    bool training() const noexcept { return training_; }
    cpc_context& target_part() noexcept { return *this; }

    /// Rows (R C N, W), row (r C + c) N + i -> grid (N, W, R, C).
    static tensor<T> to_grid(const tensor<T>& x, std::size_t n, std::size_t R, std::size_t C) {
        const std::size_t W = x.dim(1);
        tensor<T> g({n, W, R, C});
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t i = 0; i < n; ++i) {
                    const T* src = x.data() + ((r * C + c) * n + i) * W;
                    T* dst = g.data() + i * W * R * C + r * C + c;
                    for (std::size_t w = 0; w < W; ++w) dst[w * R * C] = src[w];
                }
        return g;
    }
    /// The inverse of to_grid.
    static tensor<T> from_grid(const tensor<T>& g, std::size_t n, std::size_t R, std::size_t C) {
        const std::size_t W = g.dim(1);
        tensor<T> x({R * C * n, W});
        for (std::size_t r = 0; r < R; ++r)
            for (std::size_t c = 0; c < C; ++c)
                for (std::size_t i = 0; i < n; ++i) {
                    T* dst = x.data() + ((r * C + c) * n + i) * W;
                    const T* src = g.data() + i * W * R * C + r * C + c;
                    for (std::size_t w = 0; w < W; ++w) dst[w] = src[w * R * C];
                }
        return x;
    }

private:
    cpc_context_config cfg_{};
    std::size_t in_ = 0, hidden_ = 0;
    std::vector<nn::masked_conv2d<T>> convs_;
    std::vector<nn::linear<T>> predict_;
    nn::relu<T> relu_{};
    bool training_ = true;
};

}  // namespace ssl::head
