#pragma once
// Multi-layer linear probes (Goyal et al. 2019, Sec. 4 and Fig. 2 / Table 3;
// Zhang et al.'s split-brain and colorization layer sweeps before them): a
// linear classifier on the features of every stage of the backbone (conv1,
// layer1 .. layer4 of a ResNet), each feature map average-pooled to a small
// grid so that every layer gets about 9k dimensions.
//
//   auto g = ssl::eval::pooled_grid(64, 56, 56);                  // {.h = 12, .w = 12}: 64 x 12 x 12 = 9216
//   auto p = ssl::eval::adaptive_avg_pool(maps, g.h, g.w);         // (N, C, H, W) -> (N, C * h * w)
//   auto f = ssl::eval::layer_features(backbone, images, {"relu", "layer1"}, eval_transform);
//   auto t = ssl::eval::multilayer_probe(train_maps, train_y, test_maps, test_y, names);   // one row per layer
//
// The pooling rule: a (C, H, W) map is pooled to an s x s grid (clamped to H
// and W), s = max(1, floor(sqrt(budget / C))), budget = 9216 dimensions, so
// C * s^2 <= 9216 whenever C <= 9216. On ResNet-50 at 224 px this gives
// Goyal et al.'s sizes: conv1 64 x 12 x 12 = 9216, res2 256 x 6 x 6 = 9216,
// res3 512 x 4 x 4 = 8192, res4 1024 x 3 x 3 = 9216, res5 2048 x 2 x 2 = 8192.
// A map already smaller than the grid keeps its size. Bins are PyTorch's
// adaptive_avg_pool2d: output cell i covers rows [floor(i H / s), ceil((i+1) H / s)).
// The flattened order is (C, h, w), row-major.
//
// Choices:
//  - The classifier per layer: the linear probe (L-BFGS logistic regression
//    on standardized features, linear_probe.hpp), the convex analogue of the
//    SGD-trained linear classifiers of Goyal et al.'s ImageNet / Places layer
//    sweeps; standardization puts the layers' different scales on one footing.
//  - Features are computed in eval mode (batch norm's running statistics), in
//    chunks of images, and pooled chunk by chunk: only the pooled features of
//    every layer are held at once, never the full maps of the whole set.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "linear_probe.hpp"

namespace ssl::eval {

inline constexpr std::size_t layer_dim_budget = 9216;  ///< Goyal et al.'s ~9k dimensions per layer

struct grid {
    std::size_t h = 1, w = 1;
};

/// The pooled grid of a (channels, height, width) map (see the file comment).
inline grid pooled_grid(std::size_t channels, std::size_t height, std::size_t width,
                        std::size_t budget = layer_dim_budget) {
    require<value_error>(channels > 0 && height > 0 && width > 0, "pooled_grid: empty map ", channels, "x", height,
                         "x", width);
    require<value_error>(budget > 0, "pooled_grid: the dimension budget must be > 0");
    auto s = static_cast<std::size_t>(std::floor(std::sqrt(static_cast<double>(budget) / static_cast<double>(channels))));
    while (channels * (s + 1) * (s + 1) <= budget) ++s;  // floor(sqrt) exactly, whatever the rounding
    while (s > 1 && channels * s * s > budget) --s;
    s = std::max<std::size_t>(s, 1);
    return {std::min(s, height), std::min(s, width)};
}

/// Adaptive average pooling of maps (N, C, H, W) to (N, C * oh * ow), PyTorch's bins.
template <class T>
tensor<T> adaptive_avg_pool(const tensor<T>& maps, std::size_t oh, std::size_t ow) {
    require<shape_error>(maps.rank() == 4, "adaptive_avg_pool: maps must be (N, C, H, W), got ", maps.shape().str());
    const std::size_t n = maps.dim(0), c = maps.dim(1), h = maps.dim(2), w = maps.dim(3);
    require<value_error>(oh >= 1 && ow >= 1 && oh <= h && ow <= w, "adaptive_avg_pool: grid ", oh, "x", ow,
                         " for maps ", maps.shape().str(), " (it must be at least 1x1 and at most the map)");
    tensor<T> out({n, c * oh * ow});
    parallel_for(n * c, [&](std::size_t t, std::size_t) {
        const T* src = maps.data() + t * h * w;
        T* dst = out.data() + t * oh * ow;
        for (std::size_t i = 0; i < oh; ++i) {
            const std::size_t r0 = i * h / oh, r1 = ((i + 1) * h + oh - 1) / oh;
            for (std::size_t j = 0; j < ow; ++j) {
                const std::size_t c0 = j * w / ow, c1 = ((j + 1) * w + ow - 1) / ow;
                double s = 0;
                for (std::size_t r = r0; r < r1; ++r)
                    for (std::size_t q = c0; q < c1; ++q) s += static_cast<double>(src[r * w + q]);
                dst[i * ow + j] = static_cast<T>(s / static_cast<double>((r1 - r0) * (c1 - c0)));
            }
        }
    });
    return out;
}

/// One layer's pooled features of a set of images.
struct layer_feature_set {
    std::string name;
    shape_t map_shape{};  ///< (C, H, W) of the layer's map
    grid pooled{};
    tensor<float> features;  ///< (N, C * h * w)
};

/// Pooled features of every named tap of backbone b for images (N, C, H, W),
/// in eval mode, `chunk` images at a time. transform: the method's eval
/// transform of raw images (identity when empty).
template <class B>
std::vector<layer_feature_set> layer_features(B& b, const tensor<float>& images, const std::vector<std::string>& names,
                                              const std::function<tensor<float>(const tensor<float>&)>& transform = {},
                                              std::size_t chunk = 256, std::size_t budget = layer_dim_budget) {
    require<shape_error>(images.rank() == 4 && images.dim(0) > 0, "layer_features: images must be (N, C, H, W) with N > 0, got ",
                         images.shape().str());
    require<value_error>(!names.empty(), "layer_features: no layers named");
    require<value_error>(chunk > 0, "layer_features: chunk must be > 0");
    const bool was = b.training();
    b.train(false);
    const std::size_t n = images.dim(0);
    std::vector<layer_feature_set> out(names.size());
    for (std::size_t s = 0; s < n; s += chunk) {
        const std::size_t e = std::min(n, s + chunk);
        const tensor<float> x = transform ? transform(images.slice(s, e)) : images.slice(s, e);
        auto r = b.forward_taps(x, names);
        for (std::size_t l = 0; l < names.size(); ++l) {
            const tensor<float>& m = r.taps[l];
            require<shape_error>(m.rank() == 4, "layer_features: layer '", names[l], "' gives ", m.shape().str(),
                                 ", not a (N, C, H, W) feature map");
            auto& o = out[l];
            if (s == 0) {
                o.name = names[l];
                o.map_shape = {m.dim(1), m.dim(2), m.dim(3)};
                o.pooled = pooled_grid(m.dim(1), m.dim(2), m.dim(3), budget);
                o.features = tensor<float>({n, m.dim(1) * o.pooled.h * o.pooled.w});
            }
            const tensor<float> p = adaptive_avg_pool(m, o.pooled.h, o.pooled.w);
            std::copy(p.begin(), p.end(), o.features.data() + s * p.dim(1));
        }
    }
    b.train(was);
    return out;
}

struct layer_probe_row {
    std::string name;
    shape_t map_shape{};
    grid pooled{};
    std::size_t dim = 0;
    double train_top1 = 0, test_top1 = 0;
    bool converged = false;
};

/// The linear probe on each layer's pooled features (train and test lists
/// in the same layer order).
inline std::vector<layer_probe_row> multilayer_probe(const std::vector<layer_feature_set>& train,
                                                     std::span<const std::int64_t> train_labels,
                                                     const std::vector<layer_feature_set>& test,
                                                     std::span<const std::int64_t> test_labels,
                                                     const linear_probe_config& cfg = {}) {
    require<shape_error>(train.size() == test.size() && !train.empty(), "multilayer_probe: ", train.size(),
                         " train layers and ", test.size(), " test layers");
    std::vector<layer_probe_row> rows;
    for (std::size_t l = 0; l < train.size(); ++l) {
        require<value_error>(train[l].name == test[l].name, "multilayer_probe: layer ", l, " is '", train[l].name,
                             "' in the train set and '", test[l].name, "' in the test set");
        const auto r = linear_probe(train[l].features, train_labels, test[l].features, test_labels, cfg);
        rows.push_back({.name = train[l].name, .map_shape = train[l].map_shape, .pooled = train[l].pooled,
                        .dim = train[l].features.dim(1), .train_top1 = r.train_top1, .test_top1 = r.test_top1,
                        .converged = r.converged});
    }
    return rows;
}

}  // namespace ssl::eval
