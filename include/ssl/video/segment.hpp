#pragma once
// Unsupervised motion segmentation: the pseudo-masks of "Learning Features by
// Watching Objects Move" (Pathak, Girshick, Dollár, Darrell & Hariharan, CVPR
// 2017). The paper segments video with uNLC (a variant of NLC: dense flow,
// motion saliency, consensus over frames); this file makes the same kind of
// mask from the same cues with simpler parts:
//
//   1. dense flow u_t->s(p) by block matching: for each pixel p of frame t the
//      integer displacement d in [-R, R]^2 minimising the mean absolute
//      difference of the (2w + 1)^2 windows around p in t and p + d in s,
//      after each frame is standardised (its own mean and std);
//   2. the camera's motion: an affine field A(p) = [a0 + a1 x + a2 y,
//      a3 + a4 x + a5 y] fitted to the reliable pixels' flow by iteratively
//      reweighted least squares (Tukey's biweight, c = 1 pixel), started
//      from the most common displacement;
//   3. residual motion r(p) = |u(p) - A(p)|; moving where r > tau;
//   4. agreement over neighbouring frames: p is moving at t when it moves
//      against t - 1 and against t + 1 (at a clip's ends: its one neighbour);
//   5. connected components (4-neighbour) smaller than min_area of the frame
//      dropped; holes (still components not touching the border) filled.
//
// Contract: frames are (H, W) floats (any range), all of one size; a clip
// has at least 2 frames. segment_clip returns one (H, W) mask of 0 / 1 bytes
// per frame.
//
// Design choices, one line each:
//   - per-frame standardisation makes the matching blind to a global
//     brightness flicker (gain and offset), which the clips of bench and of
//     real cameras have;
//   - a window whose standard deviation is below min_texture (in units of the
//     frame's std) cannot be matched (the flow of a flat patch is any
//     displacement): it is left out of the camera fit and never marked moving;
//   - ties between displacements go to the shortest (a flat cost surface
//     reads as no motion), by a penalty of 1e-4 per pixel of displacement;
//   - the camera model is affine (pan, zoom, small rotation), fitted robustly
//     from the commonest displacement with a fixed cutoff (not a scale from
//     the residuals' spread, which two motions of similar extent inflate
//     until both are inliers): a moving object is an outlier as long as the
//     background is the largest region moving as one;
//   - the two-sided agreement removes what occlusion makes: the background a
//     moving object uncovers moves in one direction only;
//   - integer flow: residuals below 1 pixel per frame are not resolved, so
//     tau defaults to 0.75.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace ssl::video {

struct segment_options {
    std::size_t window = 2;      ///< w: matching windows are (2w + 1)^2
    std::size_t search = 3;      ///< R: displacements in [-R, R]^2 pixels
    double min_texture = 0.15;   ///< windows with std below this (x the frame's std) are unreliable
    double threshold = 0.75;     ///< tau: residual motion in pixels per frame
    double min_area = 0.02;      ///< components below this fraction of the frame are dropped
    bool fill_holes = true;      ///< still regions enclosed by a moving one become moving
    std::size_t irls_iterations = 8;
    double camera_cutoff = 1.0;  ///< Tukey's c in pixels: flow further from the camera fit has no weight
};

/// Dense integer flow from frame t to frame s, and which pixels it is reliable at.
struct flow_field {
    std::size_t height = 0, width = 0;
    std::vector<float> dx, dy;         ///< displacement of each pixel (columns, rows)
    std::vector<std::uint8_t> reliable;  ///< 1 where the window had texture
};

/// An affine motion field: u = a0 + a1 x + a2 y, v = a3 + a4 x + a5 y (x column, y row).
struct affine_motion {
    std::array<double, 6> a{};
    double u(double x, double y) const noexcept { return a[0] + a[1] * x + a[2] * y; }
    double v(double x, double y) const noexcept { return a[3] + a[4] * x + a[5] * y; }
};

namespace detail {

inline void check_options(const segment_options& o) {
    require(o.window >= 1 && o.window <= 16, "video::segment_options: window must be 1..16, got ", o.window);
    require(o.search >= 1 && o.search <= 32, "video::segment_options: search must be 1..32, got ", o.search);
    require(o.min_texture >= 0 && std::isfinite(o.min_texture), "video::segment_options: min_texture must be >= 0");
    require(o.threshold > 0 && std::isfinite(o.threshold), "video::segment_options: threshold must be > 0");
    require(o.min_area >= 0 && o.min_area < 1, "video::segment_options: min_area must be in [0, 1)");
    require(o.irls_iterations >= 1, "video::segment_options: irls_iterations must be >= 1");
    require(o.camera_cutoff > 0 && std::isfinite(o.camera_cutoff), "video::segment_options: camera_cutoff must be > 0");
}

inline void check_frame(const tensor<float>& f, const char* who) {
    require<shape_error>(f.rank() == 2 && f.dim(0) > 0 && f.dim(1) > 0, who, ": a frame must be (H, W), got ",
                         f.shape().str());
    for (std::size_t k = 0; k < f.numel(); ++k)
        require(std::isfinite(f[k]), who, ": frame value ", f[k], " at index ", k, " is not finite");
}

/// The frame minus its mean, over its std (a constant frame: all 0), padded by
/// `pad` pixels on each side with the border's values.
inline std::vector<float> standardised_padded(const tensor<float>& f, std::size_t pad, double& std_out) {
    const std::size_t H = f.dim(0), W = f.dim(1), P = W + 2 * pad;
    double m = 0, s = 0;
    for (std::size_t k = 0; k < f.numel(); ++k) m += f[k];
    m /= static_cast<double>(f.numel());
    for (std::size_t k = 0; k < f.numel(); ++k) s += (f[k] - m) * (f[k] - m);
    s = std::sqrt(s / static_cast<double>(f.numel()));
    std_out = s;
    const double inv = s > 1e-12 ? 1.0 / s : 0.0;
    std::vector<float> o((H + 2 * pad) * P);
    for (std::size_t y = 0; y < H + 2 * pad; ++y)
        for (std::size_t x = 0; x < P; ++x) {
            const std::size_t sy = std::min(H - 1, y < pad ? 0 : y - pad), sx = std::min(W - 1, x < pad ? 0 : x - pad);
            o[y * P + x] = static_cast<float>((f[sy * W + sx] - m) * inv);
        }
    return o;
}

}  // namespace detail

/// Block-matching flow from `t` to `s` (both (H, W)); see the file comment.
inline flow_field block_flow(const tensor<float>& t, const tensor<float>& s, const segment_options& o = {}) {
    detail::check_options(o);
    detail::check_frame(t, "video::block_flow");
    detail::check_frame(s, "video::block_flow");
    require<shape_error>(t.shape() == s.shape(), "video::block_flow: frames of different sizes, ", t.shape().str(),
                         " and ", s.shape().str());
    const std::size_t H = t.dim(0), W = t.dim(1), w = o.window, R = o.search, pad = w + R, P = W + 2 * pad;
    const long ww = static_cast<long>(w), RR = static_cast<long>(R);
    double st = 0, ss = 0;
    const auto a = detail::standardised_padded(t, pad, st), b = detail::standardised_padded(s, pad, ss);
    flow_field f;
    f.height = H, f.width = W;
    f.dx.assign(H * W, 0), f.dy.assign(H * W, 0), f.reliable.assign(H * W, 0);
    const double n = static_cast<double>((2 * w + 1) * (2 * w + 1));
    for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x) {
            const long cy = static_cast<long>(y + pad), cx = static_cast<long>(x + pad);
            double m = 0, q = 0;
            for (long j = -ww; j <= ww; ++j)
                for (long i = -ww; i <= ww; ++i) {
                    const double v = a[static_cast<std::size_t>((cy + j) * static_cast<long>(P) + cx + i)];
                    m += v, q += v * v;
                }
            m /= n;
            const double sd = std::sqrt(std::max(0.0, q / n - m * m));
            f.reliable[y * W + x] = st > 1e-12 && sd >= o.min_texture;
            double best = INFINITY;
            long bx = 0, by = 0;
            for (long dy = -RR; dy <= RR; ++dy)
                for (long dx = -RR; dx <= RR; ++dx) {
                    double c = 1e-4 * std::sqrt(static_cast<double>(dx * dx + dy * dy));
                    for (long j = -ww; j <= ww && c < best; ++j) {
                        const float* pa = a.data() + (cy + j) * static_cast<long>(P) + cx - ww;
                        const float* pb = b.data() + (cy + j + dy) * static_cast<long>(P) + cx + dx - ww;
                        float row = 0;
                        for (long i = 0; i <= 2 * ww; ++i) row += std::abs(pa[i] - pb[i]);
                        c += row / n;
                    }
                    if (c < best) best = c, bx = dx, by = dy;
                }
            f.dx[y * W + x] = static_cast<float>(bx);
            f.dy[y * W + x] = static_cast<float>(by);
        }
    return f;
}

/// The camera's motion: an affine field fitted to the reliable pixels of `f`
/// by IRLS with Tukey's biweight (all zero when no pixel is reliable).
inline affine_motion fit_camera_motion(const flow_field& f, const segment_options& o = {}) {
    detail::check_options(o);
    const std::size_t H = f.height, W = f.width;
    std::vector<std::size_t> idx;
    for (std::size_t k = 0; k < H * W; ++k)
        if (f.reliable[k]) idx.push_back(k);
    affine_motion m;
    if (idx.empty()) return m;
    // start: the most common displacement (the flow is integer), the
    // background's when it is the largest coherent region
    {
        std::map<std::pair<int, int>, std::size_t> count;
        for (auto k : idx) ++count[{static_cast<int>(f.dx[k]), static_cast<int>(f.dy[k])}];
        auto best = count.begin();
        for (auto it = count.begin(); it != count.end(); ++it)
            if (it->second > best->second) best = it;
        m.a = {double(best->first.first), 0, 0, double(best->first.second), 0, 0};
    }
    const double cx = 0.5 * static_cast<double>(W - 1), cy = 0.5 * static_cast<double>(H - 1);
    for (std::size_t it = 0; it < o.irls_iterations; ++it) {
        std::vector<double> r(idx.size());
        for (std::size_t i = 0; i < idx.size(); ++i) {
            const double x = static_cast<double>(idx[i] % W), y = static_cast<double>(idx[i] / W);
            r[i] = std::hypot(f.dx[idx[i]] - m.u(x, y), f.dy[idx[i]] - m.v(x, y));
        }
        const double c = o.camera_cutoff;
        // weighted least squares in centred coordinates, one 3x3 system per component
        double A[3][3] = {}, bu[3] = {}, bv[3] = {};
        for (std::size_t i = 0; i < idx.size(); ++i) {
            if (r[i] >= c) continue;
            const double t = 1 - (r[i] / c) * (r[i] / c), wgt = t * t;
            const double x = static_cast<double>(idx[i] % W) - cx, y = static_cast<double>(idx[i] / W) - cy;
            const double phi[3] = {1, x, y};
            for (int p = 0; p < 3; ++p) {
                for (int q = 0; q < 3; ++q) A[p][q] += wgt * phi[p] * phi[q];
                bu[p] += wgt * phi[p] * f.dx[idx[i]];
                bv[p] += wgt * phi[p] * f.dy[idx[i]];
            }
        }
        // a tiny ridge keeps a degenerate layout (one row of pixels) solvable: then zoom / shear stay ~0
        for (int p = 1; p < 3; ++p) A[p][p] += 1e-6 * (A[0][0] + 1);
        if (A[0][0] <= 0) break;
        auto solve = [&](const double rhs[3]) {  // Gaussian elimination with partial pivoting
            double M[3][4];
            for (int p = 0; p < 3; ++p) {
                for (int q = 0; q < 3; ++q) M[p][q] = A[p][q];
                M[p][3] = rhs[p];
            }
            for (int col = 0; col < 3; ++col) {
                int piv = col;
                for (int row = col + 1; row < 3; ++row)
                    if (std::abs(M[row][col]) > std::abs(M[piv][col])) piv = row;
                for (int q = 0; q < 4; ++q) std::swap(M[col][q], M[piv][q]);
                for (int row = 0; row < 3; ++row)
                    if (row != col && M[col][col] != 0) {
                        const double fct = M[row][col] / M[col][col];
                        for (int q = 0; q < 4; ++q) M[row][q] -= fct * M[col][q];
                    }
            }
            std::array<double, 3> s{};
            for (int p = 0; p < 3; ++p) s[static_cast<std::size_t>(p)] = M[p][p] != 0 ? M[p][3] / M[p][p] : 0;
            return s;
        };
        const auto su = solve(bu), sv = solve(bv);
        // back from centred coordinates: u = s0 + s1 (x - cx) + s2 (y - cy)
        m.a = {su[0] - su[1] * cx - su[2] * cy, su[1], su[2], sv[0] - sv[1] * cx - sv[2] * cy, sv[1], sv[2]};
    }
    return m;
}

/// Pixels of `f` whose motion differs from the camera's by more than tau.
inline std::vector<std::uint8_t> residual_motion(const flow_field& f, const affine_motion& cam, const segment_options& o) {
    std::vector<std::uint8_t> m(f.height * f.width, 0);
    for (std::size_t k = 0; k < m.size(); ++k) {
        if (!f.reliable[k]) continue;
        const double x = static_cast<double>(k % f.width), y = static_cast<double>(k / f.width);
        m[k] = std::hypot(f.dx[k] - cam.u(x, y), f.dy[k] - cam.v(x, y)) > o.threshold;
    }
    return m;
}

/// Drops 4-connected components of 1s smaller than `min_pixels`; with
/// `fill_holes`, 0-components that do not touch the border become 1.
inline void clean_mask(std::vector<std::uint8_t>& m, std::size_t H, std::size_t W, std::size_t min_pixels,
                       bool fill_holes) {
    require<shape_error>(m.size() == H * W, "video::clean_mask: ", m.size(), " pixels for ", H, "x", W);
    std::vector<std::int32_t> label(H * W, -1);
    std::vector<std::size_t> stack, comp;
    auto flood = [&](std::size_t start, std::uint8_t value, bool& touches) {
        comp.clear();
        stack.assign(1, start);
        label[start] = 1;
        touches = false;
        while (!stack.empty()) {
            const std::size_t k = stack.back();
            stack.pop_back();
            comp.push_back(k);
            const std::size_t y = k / W, x = k % W;
            touches = touches || y == 0 || x == 0 || y == H - 1 || x == W - 1;
            const std::size_t nb[4] = {y > 0 ? k - W : k, y + 1 < H ? k + W : k, x > 0 ? k - 1 : k, x + 1 < W ? k + 1 : k};
            for (std::size_t q : nb)
                if (q != k && label[q] < 0 && m[q] == value) label[q] = 1, stack.push_back(q);
        }
    };
    bool touches = false;
    for (std::size_t k = 0; k < H * W; ++k)
        if (m[k] && label[k] < 0) {
            flood(k, 1, touches);
            if (comp.size() < min_pixels)
                for (auto q : comp) m[q] = 0;
        }
    if (!fill_holes) return;
    std::fill(label.begin(), label.end(), -1);
    for (std::size_t k = 0; k < H * W; ++k)
        if (!m[k] && label[k] < 0) {
            flood(k, 0, touches);
            if (!touches)
                for (auto q : comp) m[q] = 1;
        }
}

/// The moving-object masks of a clip (frames (H, W), at least 2): one (H, W)
/// byte mask (0 / 1) per frame; see the file comment.
inline std::vector<tensor<std::uint8_t>> segment_clip(const std::vector<tensor<float>>& frames,
                                                      const segment_options& o = {}) {
    detail::check_options(o);
    require(frames.size() >= 2, "video::segment_clip: a clip needs at least 2 frames, got ", frames.size());
    for (std::size_t t = 0; t < frames.size(); ++t) {
        detail::check_frame(frames[t], "video::segment_clip");
        require<shape_error>(frames[t].shape() == frames[0].shape(), "video::segment_clip: frame ", t, " is ",
                             frames[t].shape().str(), ", frame 0 is ", frames[0].shape().str(),
                             " (a clip's frames have one size)");
    }
    const std::size_t H = frames[0].dim(0), W = frames[0].dim(1), T = frames.size();
    const auto min_pixels = static_cast<std::size_t>(std::ceil(o.min_area * static_cast<double>(H * W)));
    std::vector<tensor<std::uint8_t>> out;
    for (std::size_t t = 0; t < T; ++t) {
        std::vector<std::uint8_t> m(H * W, 1);
        for (long d : {-1L, 1L}) {
            const long s = static_cast<long>(t) + d;
            if (s < 0 || s >= static_cast<long>(T)) continue;
            const auto f = block_flow(frames[t], frames[static_cast<std::size_t>(s)], o);
            const auto r = residual_motion(f, fit_camera_motion(f, o), o);
            for (std::size_t k = 0; k < m.size(); ++k) m[k] = m[k] && r[k];
        }
        clean_mask(m, H, W, min_pixels, o.fill_holes);
        tensor<std::uint8_t> mt({H, W});
        std::copy(m.begin(), m.end(), mt.data());
        out.push_back(std::move(mt));
    }
    return out;
}

/// Intersection over union of 0 / 1 masks summed over all pixels of all
/// frames (1 when both are empty).
inline double mask_iou(const std::vector<tensor<std::uint8_t>>& a, const std::vector<tensor<std::uint8_t>>& b) {
    require<shape_error>(a.size() == b.size(), "video::mask_iou: ", a.size(), " masks against ", b.size());
    std::uint64_t inter = 0, uni = 0;
    for (std::size_t t = 0; t < a.size(); ++t) {
        require<shape_error>(a[t].shape() == b[t].shape(), "video::mask_iou: mask ", t, " is ", a[t].shape().str(),
                             " against ", b[t].shape().str());
        for (std::size_t k = 0; k < a[t].numel(); ++k) {
            const bool p = a[t][k] != 0, q = b[t][k] != 0;
            inter += p && q, uni += p || q;
        }
    }
    return uni ? static_cast<double>(inter) / static_cast<double>(uni) : 1.0;
}

}  // namespace ssl::video
