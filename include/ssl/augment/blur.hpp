#pragma once
// Gaussian blur (torchvision GaussianBlur wrapped in RandomApply(p)):
// sigma uniform in [sigma.lo, sigma.hi], a separable kernel of odd size k
// with taps exp(-x^2 / (2 sigma^2)), x = -(k-1)/2 .. (k-1)/2, normalized to
// sum 1, and reflect padding (the edge pixel is not repeated). Differences
// from torchvision: kernel_size = 0 picks ~10% of the image's shorter side
// (SimCLR's choice) at apply time, and a kernel wider than the image is
// allowed: indices are reflected again until they fall inside (torchvision
// refuses padding >= the image size).
#include <cmath>
#include <cstring>
#include <ostream>
#include <string_view>

#include "image.hpp"

namespace ssl::augment {

struct gaussian_blur {
    double p = 0.5;
    range sigma{0.1, 2.0};
    std::size_t kernel_size = 0;  ///< odd; 0: int(0.1 * min(H, W)) made odd, at least 3

    struct params {
        bool active = false;
        float sigma = 1.0f;
    };
    static constexpr std::string_view name = "gaussian_blur";

    void validate() const {
        detail::check_probability(name, p);
        require(sigma.lo > 0, name, ": sigma range ", sigma, " must be > 0");
        require(sigma.lo <= sigma.hi && std::isfinite(sigma.hi), name, ": sigma range ", sigma,
                " is inverted or not finite (sigma.lo must be <= sigma.hi)");
        require(kernel_size == 0 || kernel_size % 2 == 1, name, ": kernel_size = ", kernel_size,
                " must be odd (or 0 for 10% of the image)");
    }
    /// The kernel size used on an image of these dimensions.
    std::size_t kernel_for(image_dims in) const noexcept {
        if (kernel_size) return kernel_size;
        std::size_t k = std::min(in.h, in.w) / 10;
        if (k % 2 == 0) ++k;
        return std::max<std::size_t>(k, 3);
    }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return in;
    }
    params draw(philox& g, image_dims) const {
        params q;
        q.active = g.uniform() < p;
        q.sigma = static_cast<float>(g.uniform(sigma.lo, sigma.hi));
        return q;
    }
    void apply(const_image_ref in, const params& q, image_ref out, workspace& ws) const {
        const std::size_t C = in.dims.c, H = in.dims.h, W = in.dims.w;
        if (!q.active) {
            std::memcpy(out.data, in.data, in.dims.numel() * sizeof(float));
            return;
        }
        require(q.sigma > 0, name, ": drawn sigma = ", q.sigma, " must be > 0");
        // Taps of the full kernel (size kernel_for) whose normalized weight
        // is below 1e-10 are dropped: their contribution is far below float
        // precision, and as subnormal floats they would slow the loops ~10x.
        const std::size_t full = kernel_for(in.dims);
        const double full_half = static_cast<double>(full / 2), sig = static_cast<double>(q.sigma);
        auto gauss = [&](std::size_t i) {
            const double x = (static_cast<double>(i) - full_half) / sig;
            return std::exp(-0.5 * x * x);
        };
        double sum = 0;
        for (std::size_t i = 0; i < full; ++i) sum += gauss(i);
        std::size_t r = full / 2;
        while (r > 0 && gauss(full / 2 - r) / sum < 1e-10) --r;
        const std::size_t k = 2 * r + 1;
        const long half = static_cast<long>(r);
        // Kernel in ws.wx; reflected source rows of each output row in ws.fy
        // (H * k); each input row padded by reflection into ws.wy, so both
        // passes are contiguous multiply-adds the compiler vectorizes.
        detail::grow(ws.wx, k);
        for (std::size_t i = 0; i < k; ++i) ws.wx[i] = static_cast<float>(gauss(full / 2 - r + i) / sum);
        detail::grow(ws.fy, H * k);
        for (std::size_t y = 0; y < H; ++y)
            for (std::size_t i = 0; i < k; ++i)
                ws.fy[y * k + i] = detail::reflect_index(static_cast<long>(y) + static_cast<long>(i) - half, H);
        detail::grow(ws.fx, W + k - 1);  // reflected source column of each padded position
        for (std::size_t x = 0; x < W + k - 1; ++x) ws.fx[x] = detail::reflect_index(static_cast<long>(x) - half, W);
        detail::grow(ws.wy, W + k - 1);
        detail::grow(ws.tmp, H * W);
        const float* kw = ws.wx.data();
        float* padded = ws.wy.data();
        for (std::size_t c = 0; c < C; ++c) {
            const float* src = in.plane(c);
            float* t = ws.tmp.data();
            for (std::size_t y = 0; y < H; ++y) {  // rows
                const float* row = src + y * W;
                for (std::size_t x = 0; x < W + k - 1; ++x) padded[x] = row[ws.fx[x]];
                float* o = t + y * W;
                std::fill(o, o + W, 0.0f);
                for (std::size_t i = 0; i < k; ++i) detail::axpy(o, kw[i], padded + i, W);
            }
            float* dst = out.plane(c);
            for (std::size_t y = 0; y < H; ++y) {  // columns, a row of output at a time
                float* o = dst + y * W;
                std::fill(o, o + W, 0.0f);
                const std::size_t* idx = ws.fy.data() + y * k;
                for (std::size_t i = 0; i < k; ++i) detail::axpy(o, kw[i], t + idx[i] * W, W);
            }
        }
    }
    void describe(std::ostream& os) const {
        os << name << "(p=" << p << ", sigma=" << sigma << ", kernel_size=";
        if (kernel_size)
            os << kernel_size;
        else
            os << "10%";
        os << ')';
    }
};

}  // namespace ssl::augment
