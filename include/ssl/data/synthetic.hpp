#pragma once
// A synthetic image set that needs no files: K classes, each an oriented
// sinusoidal grating with its own frequency and orientation, at a random
// phase and contrast, plus Gaussian noise. Deterministic in (seed, index),
// so any sample can be made on any thread, in any order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {

struct synthetic_config {
    std::size_t size = 1024;      ///< number of images
    std::size_t classes = 10;
    std::size_t channels = 1;
    std::size_t height = 28;
    std::size_t width = 28;
    double noise = 0.3;           ///< standard deviation of the added noise
    std::uint64_t seed = 0;
};

class synthetic {
public:
    explicit synthetic(const synthetic_config& c = {}) : cfg_(c) {
        require(c.size > 0, "synthetic: size must be positive");
        require(c.classes > 0, "synthetic: classes must be positive");
        require(c.channels > 0 && c.height >= 2 && c.width >= 2, "synthetic: images must have channels and be at least 2x2, got ",
                c.channels, "x", c.height, "x", c.width);
        require(c.noise >= 0, "synthetic: noise must be >= 0");
    }
    const synthetic_config& config() const noexcept { return cfg_; }
    std::size_t size() const noexcept { return cfg_.size; }

    std::int64_t label(std::size_t i) const noexcept { return static_cast<std::int64_t>(i % cfg_.classes); }

    /// Writes image i (C*H*W floats, values roughly in [-1.5, 1.5]) into out.
    void image(std::size_t i, float* out) const {
        require(i < cfg_.size, "synthetic: index ", i, " out of range (size ", cfg_.size, ")");
        const std::size_t k = static_cast<std::size_t>(label(i));
        const double angle = std::numbers::pi * static_cast<double>(k) / static_cast<double>(cfg_.classes);
        const double freq = 2 * std::numbers::pi * (1.5 + static_cast<double>(k % 3)) / static_cast<double>(cfg_.width);
        philox g(cfg_.seed, stream_id(0x5e7, i));
        const double phase = g.uniform(0, 2 * std::numbers::pi);
        const double contrast = g.uniform(0.6, 1.0);
        const double ca = std::cos(angle), sa = std::sin(angle);
        for (std::size_t c = 0; c < cfg_.channels; ++c)
            for (std::size_t y = 0; y < cfg_.height; ++y)
                for (std::size_t x = 0; x < cfg_.width; ++x) {
                    const double u = ca * static_cast<double>(x) + sa * static_cast<double>(y);
                    const double v = contrast * std::sin(freq * u + phase + 0.5 * static_cast<double>(c));
                    out[(c * cfg_.height + y) * cfg_.width + x] = static_cast<float>(v + cfg_.noise * g.normal());
                }
    }

    /// Images [begin, end) as one (N, C, H, W) tensor and their labels.
    tensor<float> images(std::size_t begin, std::size_t end) const {
        require(begin <= end && end <= cfg_.size, "synthetic: range [", begin, ", ", end, ") out of range (size ",
                cfg_.size, ")");
        const std::size_t per = cfg_.channels * cfg_.height * cfg_.width;
        tensor<float> t({end - begin, cfg_.channels, cfg_.height, cfg_.width});
        for (std::size_t i = begin; i < end; ++i) image(i, t.data() + (i - begin) * per);
        return t;
    }
    std::vector<std::int64_t> labels(std::size_t begin, std::size_t end) const {
        std::vector<std::int64_t> l;
        for (std::size_t i = begin; i < end; ++i) l.push_back(label(i));
        return l;
    }

    /// The whole set as an image_dataset (bytes, values mapped from
    /// [-1.5, 1.5] to [0, 255]), labelled with `classes` classes.
    image_dataset to_dataset() const {
        const std::size_t per = cfg_.channels * cfg_.height * cfg_.width;
        image_dataset d;
        d.images = tensor<std::uint8_t>({cfg_.size, cfg_.channels, cfg_.height, cfg_.width});
        std::vector<float> buf(per);
        for (std::size_t i = 0; i < cfg_.size; ++i) {
            image(i, buf.data());
            for (std::size_t j = 0; j < per; ++j) {
                const float v = std::clamp((buf[j] + 1.5f) / 3.0f, 0.0f, 1.0f);
                d.images[i * per + j] = static_cast<std::uint8_t>(v * 255.0f + 0.5f);
            }
        }
        d.labels = labels(0, cfg_.size);
        d.num_classes = cfg_.classes;
        d.name = "synthetic";
        d.source = "ssl::data::synthetic";
        return d;
    }

private:
    synthetic_config cfg_;
};

}  // namespace ssl::data
