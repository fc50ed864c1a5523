#pragma once
// Quantized colour targets: the in-gamut ab bins of a 10-unit grid (Zhang,
// Isola & Efros, "Colorful image colorization", ECCV 2016, sec. 2.1, and
// their split-brain autoencoders, CVPR 2017, sec. 3.2), lightness bins, and
// uniform bins on any interval (Larsson et al.'s hue and chroma bins).
//
//   ab grid: bin centres (10 i, 10 j), integers i, j; a colour (a, b) falls
//   in the bin of its nearest centre, (round(a / 10), round(b / 10)).
//   A bin is IN GAMUT when some 8-bit sRGB colour (R, G, B in {0, 1/255, ..., 1})
//   falls in it. Computed, not tabulated: the ab projection of the sRGB
//   solid is the projection of its surface, so the 6 faces of the 8-bit cube
//   (6 * 256^2 colours) give the set; tests/color/test_bins.cpp checks the
//   whole 8-bit cube against it. The set has 261 bins (a from -90 to 100,
//   b from -110 to 90). Zhang et al. report Q = 313 for their set; theirs
//   is a looser criterion (not stated precisely in the paper), ours is the
//   exact one above. (The continuous gamut touches one more cell: 262.)
//
//   uniform bins of [lo, hi): k = min(floor((v - lo) / (hi - lo) * n), n - 1); centre lo + (k + 0.5) w.
//   L bins: uniform on [0, 100], n = 100 by default (bin width 1).
//
// Contract: bin indices are 0..count()-1, ab bins ordered by a, then b.
// ab_gamut::bin_of maps any finite (a, b) to a bin: its own cell when in
// gamut, else the in-gamut centre nearest to (a, b) (Lab colours out of
// gamut, or float rounding at the gamut's edge).
//
// Design choices, one line each:
//   - nearest-centre (round) cells as Zhang's released bin centres (multiples of 10), not floor cells;
//   - computed once per process (function-local static, thread-safe), ~400 000 conversions;
//   - uniform_bins' top value v = hi goes to the last bin (a closed interval), as Larsson's
//     floor(0.9999 * n * v) does for v in [0, 1].
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "lab.hpp"

namespace ssl::color {

/// n uniform bins over [lo, hi].
struct uniform_bins {
    std::size_t count = 1;
    double lo = 0, hi = 1;

    uniform_bins() = default;
    uniform_bins(std::size_t n, double l, double h) : count(n), lo(l), hi(h) {
        require(n > 0, "uniform_bins: need at least one bin");
        require(h > l, "uniform_bins: empty interval [", l, ", ", h, "]");
    }
    double width() const noexcept { return (hi - lo) / static_cast<double>(count); }
    /// The bin of v; value_error outside [lo, hi] or NaN.
    std::size_t bin_of(double v) const {
        require(v >= lo && v <= hi, "uniform_bins: value ", v, " is outside [", lo, ", ", hi, "]");
        const auto k = static_cast<std::size_t>((v - lo) / (hi - lo) * static_cast<double>(count));
        return std::min(k, count - 1);
    }
    double centre(std::size_t k) const noexcept { return lo + (static_cast<double>(k) + 0.5) * width(); }
};

/// Lightness bins: n uniform bins of L in [0, 100].
inline uniform_bins lightness_bins(std::size_t n = 100) { return uniform_bins(n, 0.0, 100.0); }

/// The in-gamut bins of the ab grid (see the header comment).
class ab_gamut {
public:
    static constexpr double grid = 10.0;

    std::size_t count() const noexcept { return centres_.size(); }
    /// Centre (a, b) of bin k.
    std::pair<double, double> centre(std::size_t k) const { return centres_.at(k); }
    /// Grid cell of (a, b): (round(a / 10), round(b / 10)).
    static std::pair<int, int> cell(double a, double b) noexcept {
        return {static_cast<int>(std::lround(a / grid)), static_cast<int>(std::lround(b / grid))};
    }
    /// The bin index of a cell, or -1 when the cell is out of gamut.
    int bin_of_cell(int i, int j) const noexcept {
        if (i < i0_ || j < j0_ || i >= i0_ + static_cast<int>(ni_) || j >= j0_ + static_cast<int>(nj_)) return -1;
        return index_[static_cast<std::size_t>(i - i0_) * nj_ + static_cast<std::size_t>(j - j0_)];
    }
    /// The bin of (a, b): its cell when in gamut, else the nearest in-gamut centre.
    std::size_t bin_of(double a, double b) const {
        require(std::isfinite(a) && std::isfinite(b), "ab_gamut::bin_of: a = ", a, ", b = ", b, " must be finite");
        const auto [i, j] = cell(a, b);
        const int k = bin_of_cell(i, j);
        if (k >= 0) return static_cast<std::size_t>(k);
        std::size_t best = 0;
        double bd = std::numeric_limits<double>::infinity();
        for (std::size_t q = 0; q < centres_.size(); ++q) {
            const double d = std::hypot(centres_[q].first - a, centres_[q].second - b);
            if (d < bd) bd = d, best = q;
        }
        return best;
    }

    /// Computes the set from the faces of the 8-bit sRGB cube.
    static ab_gamut compute() {
        const auto& dec = detail::decode8();
        // cells hit, on a generous fixed window (|a|, |b| <= 130 covers sRGB)
        constexpr int lo = -13, n = 27;
        std::vector<unsigned char> hit(n * n, 0);
        auto mark = [&](std::size_t r, std::size_t g, std::size_t b) {
            const lab c = detail::linear_to_lab(dec[r], dec[g], dec[b]);
            const auto [i, j] = cell(c.a, c.b);
            require(i >= lo && i < lo + n && j >= lo && j < lo + n, "ab_gamut: cell out of the window");
            hit[static_cast<std::size_t>(i - lo) * n + static_cast<std::size_t>(j - lo)] = 1;
        };
        for (std::size_t u = 0; u < 256; ++u)
            for (std::size_t v = 0; v < 256; ++v)
                for (std::size_t f : {std::size_t{0}, std::size_t{255}}) {
                    mark(f, u, v);
                    mark(u, f, v);
                    mark(u, v, f);
                }
        ab_gamut g;
        int imin = n, imax = -1, jmin = n, jmax = -1;
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j)
                if (hit[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)]) {
                    imin = std::min(imin, i), imax = std::max(imax, i);
                    jmin = std::min(jmin, j), jmax = std::max(jmax, j);
                }
        g.i0_ = imin + lo;
        g.j0_ = jmin + lo;
        g.ni_ = static_cast<std::size_t>(imax - imin + 1);
        g.nj_ = static_cast<std::size_t>(jmax - jmin + 1);
        g.index_.assign(g.ni_ * g.nj_, -1);
        for (int i = imin; i <= imax; ++i)
            for (int j = jmin; j <= jmax; ++j)
                if (hit[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)]) {
                    g.index_[static_cast<std::size_t>(i - imin) * g.nj_ + static_cast<std::size_t>(j - jmin)] =
                        static_cast<int>(g.centres_.size());
                    g.centres_.emplace_back(grid * (i + lo), grid * (j + lo));
                }
        return g;
    }

private:
    std::vector<std::pair<double, double>> centres_;
    std::vector<int> index_;  // (ni, nj) cell -> bin or -1
    int i0_ = 0, j0_ = 0;
    std::size_t ni_ = 0, nj_ = 0;
};

/// The process-wide in-gamut ab bins (computed on first use).
inline const ab_gamut& ab_gamut_bins() {
    static const ab_gamut g = ab_gamut::compute();
    return g;
}

}  // namespace ssl::color
