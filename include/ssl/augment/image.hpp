#pragma once
// Shared pieces of ssl::augment: image dimensions, non-owning views of one
// image, the scratch memory an op may use, value ranges, config checks, and
// the random stream of one op of one view.
//
// Every augmentation op is a plain struct whose fields are its configuration
// (values, so a run can change them without recompiling) and which models
// `ssl::augment::image_op`:
//
//   op.validate()                  throws ssl::value_error naming a bad field
//   op.output_dims(in)             output (C, H, W) for an input (C, H, W);
//                                  throws ssl::shape_error if it cannot apply
//   op.draw(rng, in) -> params     the random parameters of one application
//   op.apply(in, params, out, ws)  the deterministic image function
//
// so an op is a pure function of (input image, drawn parameters), and the
// parameters are a pure function of the Philox stream
// `op_rng(seed, epoch, sample, view, op_index)`.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "../core/error.hpp"
#include "../core/rng.hpp"

namespace ssl::augment {

/// Dimensions of one image: channels, height, width.
struct image_dims {
    std::size_t c = 0, h = 0, w = 0;
    std::size_t numel() const noexcept { return c * h * w; }
    friend bool operator==(const image_dims&, const image_dims&) = default;
};
inline std::ostream& operator<<(std::ostream& os, const image_dims& d) {
    return os << '(' << d.c << ", " << d.h << ", " << d.w << ')';
}

/// A non-owning view of one contiguous (C, H, W) image.
template <class T>
struct basic_image {
    T* data = nullptr;
    image_dims dims{};
    T* plane(std::size_t c) const noexcept { return data + c * dims.h * dims.w; }
    T& at(std::size_t c, std::size_t y, std::size_t x) const noexcept { return data[(c * dims.h + y) * dims.w + x]; }
};
using image_ref = basic_image<float>;
using const_image_ref = basic_image<const float>;

/// A closed interval [lo, hi] of a config (crop scale, aspect ratio, sigma).
struct range {
    double lo = 0, hi = 0;
    friend bool operator==(const range&, const range&) = default;
};
inline std::ostream& operator<<(std::ostream& os, const range& r) { return os << '(' << r.lo << ", " << r.hi << ')'; }

/// Scratch memory of one worker thread; buffers only grow, so after the first
/// batch applying ops makes no allocation.
struct workspace {
    std::vector<float> tmp, wx, wy;
    std::vector<std::size_t> fx, nx, fy, ny;
};

/// The random stream of op number `op_index` of a pipeline applied to
/// `sample` for `view` in `epoch`: a pure function of these five numbers.
inline philox op_rng(std::uint64_t seed, std::uint64_t epoch, std::uint64_t sample, std::uint32_t view,
                     std::size_t op_index) noexcept {
    return philox(seed, stream_id(epoch, sample, view, op_index));
}

/// What every augmentation op provides (see the top of this header).
template <class Op>
concept image_op = std::copy_constructible<Op> && std::default_initializable<typename Op::params> &&
                   requires(const Op& op, philox& g, image_dims d, const_image_ref in, image_ref out, workspace& ws,
                            const typename Op::params& q, std::ostream& os) {
                       { Op::name } -> std::convertible_to<std::string_view>;
                       op.validate();
                       { op.output_dims(d) } -> std::same_as<image_dims>;
                       { op.draw(g, d) } -> std::same_as<typename Op::params>;
                       op.apply(in, q, out, ws);
                       op.describe(os);
                   };

namespace detail {

inline void check_probability(std::string_view op, double p) {
    require(p >= 0.0 && p <= 1.0, op, ": p = ", p, " is outside [0, 1]");
}

inline void check_nonempty(std::string_view op, image_dims in) {
    require<shape_error>(in.c > 0 && in.h > 0 && in.w > 0, op, ": got an empty image of shape ", in);
}

inline void check_color_channels(std::string_view op, image_dims in) {
    check_nonempty(op, in);
    require<shape_error>(in.c == 1 || in.c == 3, op, ": expects an image with 1 or 3 channels, got shape ", in);
}

/// Python's round(): halves go to the even neighbour.
inline double round_half_even(double x) noexcept {
    const double r = std::round(x);
    if (std::abs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x / 2.0);
    return r;
}

/// Index i (possibly outside [0, n)) reflected into [0, n) without repeating
/// the edge (numpy/torch "reflect"), repeatedly for offsets larger than n.
inline std::size_t reflect_index(long i, std::size_t n) noexcept {
    if (n == 1) return 0;
    const long period = 2 * (static_cast<long>(n) - 1);
    long m = i % period;
    if (m < 0) m += period;
    return static_cast<std::size_t>(m < static_cast<long>(n) ? m : period - m);
}

/// Grayscale value of one RGB pixel, ITU-R 601 weights (0.299, 0.587,
/// 0.114) summed in double, so a gray pixel maps exactly onto itself.
inline float luma(float r, float g, float b) noexcept {
    return static_cast<float>(0.299 * static_cast<double>(r) + 0.587 * static_cast<double>(g) +
                              0.114 * static_cast<double>(b));
}

inline float clamp01(float v) noexcept { return std::min(std::max(v, 0.0f), 1.0f); }

/// y[0..n) += a * x[0..n). Through Eigen so it is vectorized at -O2 too
/// (GCC 12's -O2 cost model leaves the plain loop scalar).
inline void axpy(float* y, float a, const float* x, std::size_t n) noexcept {
    const auto len = static_cast<Eigen::Index>(n);
    Eigen::Map<Eigen::ArrayXf>(y, len) += a * Eigen::Map<const Eigen::ArrayXf>(x, len);
}

template <class V>
void grow(V& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
}

}  // namespace detail
}  // namespace ssl::augment
