#pragma once
// Row-causal masked convolution, the building block of CPC's context network
// (van den Oord et al. 2018; Hénaff et al. 2019, CPC v2, sec. 3): over a grid
// of patch features z (N, C, H, W), the context c[i, j] may depend only on
// rows u <= i of z, so that predicting z[i + k, j] (k >= 1) from c[i, j] is a
// real prediction of rows it has not seen. A k x k convolution (k odd,
// stride 1, padding k / 2) whose kernel rows below the centre are zero:
//
//   y[n, o, i, j] = b[o] + sum_{c, a <= k/2 (a < k/2 strict), b'} W[o, c, a, b'] * x[n, c, i + a - k/2, j + b' - k/2]
//
// so output row i reads input rows i - k/2 .. i (.. i - 1 when strict);
// stacking such layers keeps the property. Contract: as conv2d (same output
// size as the input), with torchvision-style names weight / bias.
//
// Design choices, one line each:
//   - causal over rows only (the whole of row i is visible to row i), as CPC's
//     "rows ahead" prediction needs; no PixelCNN within-row ordering;
//   - include_centre_row = true (default) lets row i see itself; false
//     (strict) for a first layer whose targets share row i;
//   - the masked taps are kept at zero: forward re-zeroes them (an optimizer
//     step or a loaded checkpoint cannot wake them), backward zeroes their
//     gradient, so the stored weight is always the effective one;
//   - built on conv2d (its host paths, its init on the full kernel, then masked).
#include <cstdint>
#include <string>

#include "conv2d.hpp"

namespace ssl::nn {

struct masked_conv2d_config {
    std::size_t in_channels = 0;
    std::size_t out_channels = 0;
    std::size_t kernel = 3;  ///< odd
    bool bias = true;
    bool include_centre_row = true;  ///< row i sees row i (false: only rows above)
};

template <class T = float>
class masked_conv2d {
public:
    using value_type = T;
    using cache_type = typename conv2d<T>::cache_type;

    masked_conv2d() = default;
    explicit masked_conv2d(const masked_conv2d_config& c, std::uint64_t seed = 0) : cfg_(c) {
        require(c.kernel % 2 == 1, "masked_conv2d: kernel must be odd, got ", c.kernel);
        require(c.include_centre_row || c.kernel > 1,
                "masked_conv2d: a strict (include_centre_row = false) 1x1 kernel sees nothing; use kernel >= 3");
        conv_ = conv2d<T>({c.in_channels, c.out_channels, c.kernel, 1, c.kernel / 2, c.bias}, seed);
        apply_mask();
    }
    const masked_conv2d_config& config() const noexcept { return cfg_; }
    parameter<T>& weight() noexcept { return conv_.weight(); }
    parameter<T>& bias() noexcept { return conv_.bias(); }

    /// Whether kernel row a is used (not masked).
    bool row_visible(std::size_t a) const noexcept {
        const std::size_t c = cfg_.kernel / 2;
        return cfg_.include_centre_row ? a <= c : a < c;
    }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        apply_mask();
        return conv_.forward(x);
    }

    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        tensor<T> dx = conv_.backward(c, dy, need_input_grad);
        zero_masked(conv_.weight().grad);
        return dx;
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        conv_.for_each_parameter(f, prefix);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept { conv_.train(on); }
    bool training() const noexcept { return conv_.training(); }

private:
    void apply_mask() { zero_masked(conv_.weight().value); }
    void zero_masked(tensor<T>& w) const {
        const std::size_t k = cfg_.kernel, planes = cfg_.out_channels * cfg_.in_channels;
        for (std::size_t p = 0; p < planes; ++p)
            for (std::size_t a = 0; a < k; ++a)
                if (!row_visible(a))
                    for (std::size_t b = 0; b < k; ++b) w[(p * k + a) * k + b] = T(0);
    }

    masked_conv2d_config cfg_{};
    conv2d<T> conv_;
};

}  // namespace ssl::nn
