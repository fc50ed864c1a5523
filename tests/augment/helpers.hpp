#pragma once
// Test helpers for ssl::augment: random images in [0, 1] and comparisons.
#include <ssl/augment.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace aug_test {

namespace aug = ssl::augment;

/// A (C, H, W) image, smooth plus noise, values in [0, 1].
inline ssl::tensor<float> image(std::size_t c, std::size_t h, std::size_t w, std::uint64_t seed = 1) {
    ssl::tensor<float> t({c, h, w});
    ssl::philox g(seed, 99);
    for (std::size_t k = 0; k < c; ++k)
        for (std::size_t y = 0; y < h; ++y)
            for (std::size_t x = 0; x < w; ++x) {
                const double v = 0.5 + 0.3 * std::sin(0.4 * double(x) + 0.3 * double(y) + double(k)) +
                                 0.2 * (g.uniform() - 0.5);
                t.at(k, y, x) = static_cast<float>(std::clamp(v, 0.0, 1.0));
            }
    return t;
}

/// A batch (N, C, H, W) of image(c, h, w, seed + i).
inline ssl::tensor<float> batch(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::uint64_t seed = 1) {
    ssl::tensor<float> t({n, c, h, w});
    const std::size_t per = c * h * w;
    for (std::size_t i = 0; i < n; ++i) {
        auto one = image(c, h, w, seed + i);
        std::copy(one.begin(), one.end(), t.data() + i * per);
    }
    return t;
}

inline ssl::tensor<float> constant(std::size_t c, std::size_t h, std::size_t w, float v) {
    return ssl::tensor<float>::full({c, h, w}, v);
}

inline double max_abs_diff(const ssl::tensor<float>& a, const ssl::tensor<float>& b) {
    if (!(a.shape() == b.shape())) return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

inline bool same(const ssl::tensor<float>& a, const ssl::tensor<float>& b) {
    if (!(a.shape() == b.shape())) return false;
    for (std::size_t i = 0; i < a.numel(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

inline bool in_unit_range(const ssl::tensor<float>& t, double tol = 0.0) {
    for (float v : t)
        if (!(v >= -tol && v <= 1.0 + tol)) return false;
    return true;
}

inline aug::image_dims dims(const ssl::tensor<float>& t) { return {t.dim(0), t.dim(1), t.dim(2)}; }

/// Image i of a batch as its own (C, H, W) tensor.
inline ssl::tensor<float> item(const ssl::tensor<float>& b, std::size_t i) {
    return b.slice(i, i + 1).reshape({b.dim(1), b.dim(2), b.dim(3)}).clone();
}

}  // namespace aug_test
