#pragma once
// The distinct convolution shapes of ResNet-18 with the CIFAR stem on
// 1x28x28 input, and the two benchmark configurations (width, batch).
#include <cstddef>
#include <string>
#include <vector>

namespace ssl_bench {

struct config {
    std::size_t width, batch;
    std::string name() const { return "w" + std::to_string(width) + "_n" + std::to_string(batch); }
};
inline const std::vector<config>& configs() {
    static const std::vector<config> c{{16, 256}, {64, 128}};
    return c;
}

struct conv_shape {
    std::string name;
    std::size_t cin, cout, kernel, stride, pad, hw_in;
    std::size_t count;  // how many times the shape occurs in one ResNet-18 forward
    std::size_t hw_out() const { return (hw_in + 2 * pad - kernel) / stride + 1; }
    /// Forward FLOPs (multiply + add) for a batch of n.
    double flops(std::size_t n) const {
        const double o = static_cast<double>(hw_out());
        return 2.0 * static_cast<double>(n * cout * cin * kernel * kernel) * o * o;
    }
};

/// Every distinct conv of ResNet-18 (CIFAR stem, 1 input channel, 28x28) at width w.
inline std::vector<conv_shape> resnet18_convs(std::size_t w) {
    return {
        {"stem_3x3_28", 1, w, 3, 1, 1, 28, 1},
        {"l1_3x3_28", w, w, 3, 1, 1, 28, 4},
        {"l2_3x3s2_28", w, 2 * w, 3, 2, 1, 28, 1},
        {"l2_3x3_14", 2 * w, 2 * w, 3, 1, 1, 14, 3},
        {"l2_ds1x1s2_28", w, 2 * w, 1, 2, 0, 28, 1},
        {"l3_3x3s2_14", 2 * w, 4 * w, 3, 2, 1, 14, 1},
        {"l3_3x3_7", 4 * w, 4 * w, 3, 1, 1, 7, 3},
        {"l3_ds1x1s2_14", 2 * w, 4 * w, 1, 2, 0, 14, 1},
        {"l4_3x3s2_7", 4 * w, 8 * w, 3, 2, 1, 7, 1},
        {"l4_3x3_4", 8 * w, 8 * w, 3, 1, 1, 4, 3},
        {"l4_ds1x1s2_7", 4 * w, 8 * w, 1, 2, 0, 7, 1},
    };
}

}  // namespace ssl_bench
