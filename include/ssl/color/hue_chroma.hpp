#pragma once
// Hue and chroma as Larsson, Maire & Shakhnarovich predict them ("Learning
// representations for automatic colorization", ECCV 2016, sec. 3.2; and the
// representation-learning follow-up, "Colorization as a proxy task for
// visual understanding", CVPR 2017, whose released code computes them so):
// from sRGB in [0, 1],
//
//   chroma C = max(R, G, B) - min(R, G, B)                        in [0, 1]
//   hue    H = the HSV hue as a fraction of the circle             in [0, 1)
//            = ((G - B) / C mod 6) / 6   if max = R
//              ((B - R) / C + 2) / 6     if max = G
//              ((R - G) / C + 4) / 6     if max = B,   0 when C = 0
//   lightness (HSL) = (max + min) / 2; the network's gray input is the mean of R, G, B
//
// This is the HSL/HSV hue-chroma plane, not Lab's (lab.hpp's to_lch gives
// CIE chroma and hue angle, for split-brain's and Zhang's ab bins).
//
// Contract: components in [0, 1] (value_error otherwise, as srgb_to_lab).
// Design choices, one line each:
//   - hue is undefined for grays: H = 0 then, and the histogram targets
//     (histogram.hpp) weight each pixel's hue vote by its chroma, so grays give none;
//   - hue is a fraction of the circle (not radians), as the bins are uniform on [0, 1).
#include <algorithm>
#include <cmath>

#include "lab.hpp"

namespace ssl::color {

struct hue_chroma {
    double hue = 0;     ///< [0, 1), 0 for grays
    double chroma = 0;  ///< [0, 1]
};

/// Larsson's hue and chroma of an sRGB colour in [0, 1]^3.
inline hue_chroma hsv_hue_chroma(rgb c) {
    detail::check_component(c.r, "R", 0, 0, false);
    detail::check_component(c.g, "G", 0, 0, false);
    detail::check_component(c.b, "B", 0, 0, false);
    const double mx = std::max({c.r, c.g, c.b}), mn = std::min({c.r, c.g, c.b}), C = mx - mn;
    if (C <= 0) return {0.0, 0.0};
    double h;
    if (mx == c.r)
        h = (c.g - c.b) / C;
    else if (mx == c.g)
        h = (c.b - c.r) / C + 2;
    else
        h = (c.r - c.g) / C + 4;
    h /= 6;
    if (h < 0) h += 1;
    if (h >= 1) h -= 1;
    return {h, C};
}

/// The inverse for a given HSL lightness l = (max + min) / 2: the colour with
/// hue H, chroma C and that lightness (C must fit: C <= 1 - |2 l - 1|).
inline rgb from_hue_chroma(double hue, double chroma, double l) {
    require(hue >= 0 && hue < 1, "from_hue_chroma: hue ", hue, " is outside [0, 1)");
    require(l >= 0 && l <= 1, "from_hue_chroma: lightness ", l, " is outside [0, 1]");
    require(chroma >= 0 && chroma <= 1 - std::abs(2 * l - 1) + 1e-12, "from_hue_chroma: chroma ", chroma,
            " does not fit lightness ", l, " (at most ", 1 - std::abs(2 * l - 1), ")");
    const double hp = hue * 6, x = chroma * (1 - std::abs(std::fmod(hp, 2.0) - 1)), m = l - chroma / 2;
    double r = 0, g = 0, b = 0;
    switch (static_cast<int>(hp)) {
        case 0: r = chroma, g = x; break;
        case 1: r = x, g = chroma; break;
        case 2: g = chroma, b = x; break;
        case 3: g = x, b = chroma; break;
        case 4: r = x, b = chroma; break;
        default: r = chroma, b = x; break;
    }
    auto cl = [](double v) { return std::clamp(v, 0.0, 1.0); };
    return {cl(r + m), cl(g + m), cl(b + m)};
}

}  // namespace ssl::color
