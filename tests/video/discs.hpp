// Sprites for the motion tests: bright textured discs on black, 28 x 28,
// objects on a dark background as Fashion-MNIST's.
#pragma once
#include <cmath>

#include <ssl/core/rng.hpp>
#include <ssl/data/dataset.hpp>

namespace ssl_test {

inline ssl::data::image_dataset discs(std::size_t n) {
    ssl::data::image_dataset d;
    d.images = ssl::tensor<std::uint8_t>({n, 1, 28, 28});
    d.name = "discs";
    ssl::philox g(5, 1);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t y = 0; y < 28; ++y)
            for (std::size_t x = 0; x < 28; ++x) {
                const double r = std::hypot(double(y) - 13.5, double(x) - 13.5);
                d.images[(i * 28 + y) * 28 + x] = r < 12 ? static_cast<std::uint8_t>(120 + g.below(130)) : 0;
            }
    return d;
}

}  // namespace ssl_test
