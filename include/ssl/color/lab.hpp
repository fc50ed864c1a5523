#pragma once
// sRGB <-> CIE L*a*b* (D65, 2-degree observer), and the cylindrical L*C*h of
// Lab (chroma and hue angle). The colour space of the dense pretexts:
// colorization and split-brain predict a and b (or hue and chroma) from L
// (Zhang, Isola & Efros 2016 / 2017; Larsson, Maire & Shakhnarovich 2016 / 2017).
//
//   sRGB (IEC 61966-2-1) -> linear:  c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055)^2.4
//   linear -> XYZ:  [X Y Z]^T = M [r g b]^T  (M: the sRGB primaries under D65)
//   XYZ -> Lab (CIE 15):  f(t) = t > (6/29)^3 ? t^(1/3) : t / (3 (6/29)^2) + 4/29
//     L = 116 f(Y / Yn) - 16,  a = 500 (f(X / Xn) - f(Y / Yn)),  b = 200 (f(Y / Yn) - f(Z / Zn))
//   chroma C = sqrt(a^2 + b^2), hue h = atan2(b, a) in [0, 2 pi)
//
// Reference values (tests/color/test_lab.cpp): white (100, 0, 0), black
// (0, 0, 0), red (53.24, 80.09, 67.20), green (87.73, -86.18, 83.18), blue
// (32.30, 79.19, -107.86).
//
// Contract: sRGB components in [0, 1]; anything else (below 0, above 1,
// NaN) is a value_error naming the value (and the pixel, for images) — a
// silent clamp would hide a wrong input scale (0..255). Lab input: L in
// [0, 100], a and b finite. lab_to_srgb returns the unclamped sRGB triple
// (components outside [0, 1] mean the Lab colour is outside the sRGB gamut;
// in_srgb_gamut says so); lab_to_srgb_clamped clamps.
//
// Design choices, one line each:
//   - M is Lindbloom's sRGB -> XYZ matrix (7 digits) and the white point is
//     M (1, 1, 1) itself, so sRGB white is exactly L = 100, a = b = 0 (it
//     differs from the tabulated D65 (0.95047, 1, 1.08883) by 1e-7 in Y);
//   - the inverse matrix is computed from M (double), so round trips are exact to ~1e-12;
//   - scalars in double; images (3, H, W) or (N, 3, H, W) as float or double tensors;
//   - the 8-bit decoding table (linear value of k / 255) is precomputed for
//     the gamut computation in bins.hpp, which converts ~400 000 colours.
#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace ssl::color {

struct lab {
    double L = 0, a = 0, b = 0;
};
struct rgb {
    double r = 0, g = 0, b = 0;
};
/// Cylindrical Lab: lightness, chroma sqrt(a^2 + b^2), hue angle atan2(b, a) in [0, 2 pi).
struct lch {
    double L = 0, C = 0, h = 0;
};

namespace detail {

using mat3 = std::array<std::array<double, 3>, 3>;

/// Linear sRGB -> XYZ (D65), Lindbloom's 7-digit matrix.
inline constexpr mat3 srgb_to_xyz_matrix{{{0.4124564, 0.3575761, 0.1804375},
                                          {0.2126729, 0.7151522, 0.0721750},
                                          {0.0193339, 0.1191920, 0.9503041}}};

constexpr mat3 inverse(const mat3& m) {
    const double c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1], c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2],
                 c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    const double det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    return {{{c00 / det, (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det, (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det},
             {c01 / det, (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det, (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det},
             {c02 / det, (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det, (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det}}};
}
inline constexpr mat3 xyz_to_srgb_matrix = inverse(srgb_to_xyz_matrix);

/// The reference white: M (1, 1, 1).
inline constexpr std::array<double, 3> white{
    srgb_to_xyz_matrix[0][0] + srgb_to_xyz_matrix[0][1] + srgb_to_xyz_matrix[0][2],
    srgb_to_xyz_matrix[1][0] + srgb_to_xyz_matrix[1][1] + srgb_to_xyz_matrix[1][2],
    srgb_to_xyz_matrix[2][0] + srgb_to_xyz_matrix[2][1] + srgb_to_xyz_matrix[2][2]};

inline constexpr double delta = 6.0 / 29.0;

inline double lab_f(double t) {
    return t > delta * delta * delta ? std::cbrt(t) : t / (3 * delta * delta) + 4.0 / 29.0;
}
inline double lab_f_inv(double f) { return f > delta ? f * f * f : 3 * delta * delta * (f - 4.0 / 29.0); }

inline void check_component(double v, const char* name, std::size_t image, std::size_t pixel, bool in_image) {
    if (v >= 0.0 && v <= 1.0) return;  // NaN fails both
    if (in_image)
        throw value_error(std::string("colour: sRGB component ") + name + " = " + std::to_string(v) +
                          " of image " + std::to_string(image) + ", pixel " + std::to_string(pixel) + " (row-major)" +
                          " is outside [0, 1] (images must be scaled to [0, 1], not 0..255)");
    throw value_error(std::string("colour: sRGB component ") + name + " = " + std::to_string(v) +
                      " is outside [0, 1] (scale to [0, 1], not 0..255)");
}

/// XYZ -> Lab.
inline lab xyz_to_lab(double X, double Y, double Z) {
    const double fx = lab_f(X / white[0]), fy = lab_f(Y / white[1]), fz = lab_f(Z / white[2]);
    return {116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)};
}
/// Linear sRGB (already decoded, any values) -> Lab.
inline lab linear_to_lab(double r, double g, double b) {
    const auto& m = srgb_to_xyz_matrix;
    return xyz_to_lab(m[0][0] * r + m[0][1] * g + m[0][2] * b, m[1][0] * r + m[1][1] * g + m[1][2] * b,
                      m[2][0] * r + m[2][1] * g + m[2][2] * b);
}

/// linear value of the 8-bit code k (k / 255 decoded), k = 0..255.
inline const std::array<double, 256>& decode8() {
    static const std::array<double, 256> t = [] {
        std::array<double, 256> a{};
        for (std::size_t k = 0; k < 256; ++k) {
            const double c = static_cast<double>(k) / 255.0;
            a[k] = c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
        }
        return a;
    }();
    return t;
}

}  // namespace detail

/// sRGB component in [0, 1] -> linear light (IEC 61966-2-1).
inline double srgb_decode(double c) noexcept { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
/// Linear light -> sRGB component (inverse of srgb_decode; defined for any real, odd-extended below 0).
/// The branch point is 0.04045 / 12.92, not the standard's rounded 0.0031308,
/// so that encode(decode(c)) = c also between the two (the pieces miss by 1e-8 there).
inline double srgb_encode(double l) noexcept {
    if (l < 0) return -srgb_encode(-l);
    return l <= 0.04045 / 12.92 ? 12.92 * l : 1.055 * std::pow(l, 1.0 / 2.4) - 0.055;
}

/// sRGB in [0, 1]^3 -> Lab; value_error outside [0, 1] or NaN.
inline lab srgb_to_lab(rgb c) {
    detail::check_component(c.r, "R", 0, 0, false);
    detail::check_component(c.g, "G", 0, 0, false);
    detail::check_component(c.b, "B", 0, 0, false);
    return detail::linear_to_lab(srgb_decode(c.r), srgb_decode(c.g), srgb_decode(c.b));
}

inline void check_lab(lab c) {
    require(c.L >= 0 && c.L <= 100, "lab_to_srgb: L = ", c.L, " is outside [0, 100]");
    require(std::isfinite(c.a) && std::isfinite(c.b), "lab_to_srgb: a = ", c.a, ", b = ", c.b, " must be finite");
}

/// Lab -> sRGB, unclamped: components outside [0, 1] mean out of gamut.
inline rgb lab_to_srgb(lab c) {
    check_lab(c);
    const double fy = (c.L + 16) / 116, fx = fy + c.a / 500, fz = fy - c.b / 200;
    const double X = detail::white[0] * detail::lab_f_inv(fx), Y = detail::white[1] * detail::lab_f_inv(fy),
                 Z = detail::white[2] * detail::lab_f_inv(fz);
    const auto& m = detail::xyz_to_srgb_matrix;
    return {srgb_encode(m[0][0] * X + m[0][1] * Y + m[0][2] * Z), srgb_encode(m[1][0] * X + m[1][1] * Y + m[1][2] * Z),
            srgb_encode(m[2][0] * X + m[2][1] * Y + m[2][2] * Z)};
}

/// Whether a Lab colour is an sRGB colour (every component within [-tol, 1 + tol]).
inline bool in_srgb_gamut(lab c, double tol = 1e-9) {
    const rgb v = lab_to_srgb(c);
    auto in = [&](double x) { return x >= -tol && x <= 1 + tol; };
    return in(v.r) && in(v.g) && in(v.b);
}

/// lab_to_srgb, each component clamped to [0, 1].
inline rgb lab_to_srgb_clamped(lab c) {
    const rgb v = lab_to_srgb(c);
    auto cl = [](double x) { return x < 0 ? 0.0 : (x > 1 ? 1.0 : x); };
    return {cl(v.r), cl(v.g), cl(v.b)};
}

/// Lab -> (L, chroma, hue angle in [0, 2 pi)); the hue of a gray (a = b = 0) is 0.
inline lch to_lch(lab c) noexcept {
    double h = std::atan2(c.b, c.a);
    if (h < 0) h += 2 * std::numbers::pi;
    if (h >= 2 * std::numbers::pi) h = 0;  // -0 and rounding
    return {c.L, std::hypot(c.a, c.b), h};
}
inline lab from_lch(lch c) noexcept { return {c.L, c.C * std::cos(c.h), c.C * std::sin(c.h)}; }

// ---- images: (3, H, W) or (N, 3, H, W), channels R, G, B <-> L, a, b ----

namespace detail {
template <class T>
void check_image(const tensor<T>& t, const char* who) {
    require<shape_error>((t.rank() == 3 && t.dim(0) == 3) || (t.rank() == 4 && t.dim(1) == 3), who,
                         ": expected (3, H, W) or (N, 3, H, W), got shape ", t.shape().str());
}
/// Calls f(p0, p1, p2, count) for every image's three planes.
template <class T, class F>
void for_each_image(const tensor<T>& t, F&& f) {
    const std::size_t n = t.rank() == 4 ? t.dim(0) : 1, hw = t.numel() / (3 * (n ? n : 1));
    for (std::size_t i = 0; i < n; ++i) f(i * 3 * hw, hw);
}
}  // namespace detail

/// sRGB image in [0, 1] -> Lab image; value_error naming the first bad pixel.
template <class T>
tensor<T> srgb_to_lab(const tensor<T>& img) {
    detail::check_image(img, "srgb_to_lab");
    tensor<T> out(img.shape());
    detail::for_each_image(img, [&](std::size_t off, std::size_t hw) {
        const T* p = img.data() + off;
        T* q = out.data() + off;
        for (std::size_t i = 0; i < hw; ++i) {
            const double r = static_cast<double>(p[i]), g = static_cast<double>(p[hw + i]),
                         b = static_cast<double>(p[2 * hw + i]);
            detail::check_component(r, "R", off / (3 * hw), i, true);
            detail::check_component(g, "G", off / (3 * hw), i, true);
            detail::check_component(b, "B", off / (3 * hw), i, true);
            const lab c = detail::linear_to_lab(srgb_decode(r), srgb_decode(g), srgb_decode(b));
            q[i] = static_cast<T>(c.L);
            q[hw + i] = static_cast<T>(c.a);
            q[2 * hw + i] = static_cast<T>(c.b);
        }
    });
    return out;
}

/// Lab image -> sRGB image, clamped to [0, 1] (out-of-gamut colours clip).
template <class T>
tensor<T> lab_to_srgb(const tensor<T>& img) {
    detail::check_image(img, "lab_to_srgb");
    tensor<T> out(img.shape());
    detail::for_each_image(img, [&](std::size_t off, std::size_t hw) {
        const T* p = img.data() + off;
        T* q = out.data() + off;
        for (std::size_t i = 0; i < hw; ++i) {
            const rgb c = lab_to_srgb_clamped(
                {static_cast<double>(p[i]), static_cast<double>(p[hw + i]), static_cast<double>(p[2 * hw + i])});
            q[i] = static_cast<T>(c.r);
            q[hw + i] = static_cast<T>(c.g);
            q[2 * hw + i] = static_cast<T>(c.b);
        }
    });
    return out;
}

}  // namespace ssl::color
