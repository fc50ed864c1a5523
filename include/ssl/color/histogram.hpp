#pragma once
// Local hue / chroma histogram targets of colorization as a proxy task
// (Larsson, Maire & Shakhnarovich, CVPR 2017, sec. 3; their released
// representation-learning code): at P sampled pixel locations per image,
// the target is not the pixel's own colour but the histogram of hue and of
// chroma over a (2r + 1) x (2r + 1) window around it, and the network's
// predicted distributions are fit with KL divergence. For location p with
// window W(p) and hue / chroma bins (uniform on [0, 1], hue_chroma.hpp):
//
//   y_C[p, k] = |{q in W(p) : bin(C_q) = k}| / |W(p)|
//   y_H[p, k] = sum_{q in W(p), bin(H_q) = k} C_q / sum_{q in W(p)} C_q
//   w_H[p]    = mean_{q in W(p)} C_q        (the hue term's weight)
//
// Loss (colorization.hpp): KL(y_C || softmax z_C) + lambda_H w_H KL(y_H || softmax z_H),
// the hue term weighted by chroma as in Larsson et al. 2016, eq. 2-3.
//
// Contract: images (N, 3, H, W) sRGB in [0, 1] (value_error otherwise);
// locations (N, P, 2) int64 (row, column), each window inside the image
// (value_error naming the location otherwise), or with clip = true each
// location inside the image and its window cut at the border; rows of y_H
// and y_C sum to 1.
// Row n * P + p of every output is location p of image n.
//
// Design choices, one line each:
//   - each pixel's hue vote is weighted by its chroma: the hue of a gray is
//     undefined and of a near-gray is noise; a window with no chroma at all
//     gets the uniform hue histogram and weight w_H = 0;
//   - defaults from the authors' released code: 8 bins, radius 3 (7 x 7
//     windows), 128 locations per image, 32 px kept clear of the borders;
//   - sample_locations draws from Philox(seed, stream_id(tag, stream, n)), so
//     every image's locations are reproducible and independent of the batch.
#include <cstdint>
#include <vector>

#include "../core/rng.hpp"
#include "bins.hpp"
#include "hue_chroma.hpp"

namespace ssl::color {

struct histogram_config {
    std::size_t bins = 8;    ///< hue bins = chroma bins
    std::size_t radius = 3;  ///< window (2 radius + 1)^2
    bool clip = false;       ///< windows may cross the border: truncated to the image, |W(p)| its in-image part
};

template <class T>
struct histogram_targets {
    tensor<T> hue;          ///< (N * P, bins), rows sum to 1
    tensor<T> chroma;       ///< (N * P, bins), rows sum to 1
    tensor<T> hue_weight;   ///< (N * P,), mean chroma of the window
};

/// P locations per image, rows and columns uniform in [margin, H - margin) x
/// [margin, W - margin); `stream` separates calls (epoch, step).
inline tensor<std::int64_t> sample_locations(std::size_t n, std::size_t h, std::size_t w, std::size_t count,
                                             std::size_t margin, std::uint64_t seed, std::uint64_t stream = 0) {
    require(2 * margin < h && 2 * margin < w, "sample_locations: margin ", margin, " leaves no pixel in a ", h, "x",
            w, " image");
    tensor<std::int64_t> loc({n, count, 2});
    for (std::size_t i = 0; i < n; ++i) {
        philox g(seed, stream_id(0xC010, stream, i));
        for (std::size_t p = 0; p < count; ++p) {
            loc[(i * count + p) * 2] = static_cast<std::int64_t>(margin + g.below(h - 2 * margin));
            loc[(i * count + p) * 2 + 1] = static_cast<std::int64_t>(margin + g.below(w - 2 * margin));
        }
    }
    return loc;
}

/// The local hue / chroma histograms at `locations` (see the header comment).
template <class T>
histogram_targets<T> local_hue_chroma_histograms(const tensor<T>& img, const tensor<std::int64_t>& locations,
                                                 const histogram_config& cfg = {}) {
    check_rank(img, 4, "local_hue_chroma_histograms", "(N, 3, H, W)");
    require<shape_error>(img.dim(1) == 3, "local_hue_chroma_histograms: expected 3 channels (sRGB), got shape ",
                         img.shape().str());
    check_rank(locations, 3, "local_hue_chroma_histograms", "(N, P, 2) locations");
    require<shape_error>(locations.dim(0) == img.dim(0) && locations.dim(2) == 2,
                         "local_hue_chroma_histograms: locations ", locations.shape().str(), " do not fit images ",
                         img.shape().str(), " (want (N, P, 2))");
    require(cfg.bins > 0, "local_hue_chroma_histograms: need at least one bin");
    const std::size_t n = img.dim(0), H = img.dim(2), W = img.dim(3), P = locations.dim(1), B = cfg.bins,
                      r = cfg.radius, hw = H * W;
    const uniform_bins bins(B, 0.0, 1.0);
    // per-pixel hue, chroma and their bins (checks every pixel's range)
    std::vector<double> chr(n * hw);
    std::vector<std::uint32_t> hb(n * hw), cb(n * hw);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t q = 0; q < hw; ++q) {
            const T* p = img.data() + i * 3 * hw + q;
            const rgb c{static_cast<double>(p[0]), static_cast<double>(p[hw]), static_cast<double>(p[2 * hw])};
            for (double v : {c.r, c.g, c.b})
                require(v >= 0 && v <= 1, "local_hue_chroma_histograms: image ", i, " pixel (", q / W, ", ", q % W,
                        ") has component ", v, " outside [0, 1] (images must be sRGB in [0, 1])");
            const hue_chroma hc = hsv_hue_chroma(c);
            chr[i * hw + q] = hc.chroma;
            hb[i * hw + q] = static_cast<std::uint32_t>(bins.bin_of(hc.hue));
            cb[i * hw + q] = static_cast<std::uint32_t>(bins.bin_of(hc.chroma));
        }
    histogram_targets<T> t{tensor<T>::zeros({n * P, B}), tensor<T>::zeros({n * P, B}), tensor<T>({n * P})};
    std::vector<double> hh(B), ch(B);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t p = 0; p < P; ++p) {
            const std::int64_t y = locations[(i * P + p) * 2], x = locations[(i * P + p) * 2 + 1];
            const auto R = static_cast<std::int64_t>(r), Hi = static_cast<std::int64_t>(H),
                       Wi = static_cast<std::int64_t>(W);
            if (cfg.clip)
                require(y >= 0 && x >= 0 && y < Hi && x < Wi, "local_hue_chroma_histograms: location ", p, " = (", y,
                        ", ", x, ") of image ", i, " is outside the ", H, "x", W, " image");
            else
                require(y - R >= 0 && x - R >= 0 && y + R < Hi && x + R < Wi, "local_hue_chroma_histograms: the ",
                        2 * r + 1, "x", 2 * r + 1, " window at location ", p, " = (", y, ", ", x, ") of image ", i,
                        " leaves the ", H, "x", W, " image (clip = false)");
            const std::int64_t y0 = std::max<std::int64_t>(y - R, 0), y1 = std::min<std::int64_t>(y + R, Hi - 1),
                               x0 = std::max<std::int64_t>(x - R, 0), x1 = std::min<std::int64_t>(x + R, Wi - 1);
            const double area = static_cast<double>((y1 - y0 + 1) * (x1 - x0 + 1));
            std::fill(hh.begin(), hh.end(), 0.0);
            std::fill(ch.begin(), ch.end(), 0.0);
            double csum = 0;
            for (std::int64_t yy = y0; yy <= y1; ++yy)
                for (std::int64_t xx = x0; xx <= x1; ++xx) {
                    const std::size_t q = i * hw + static_cast<std::size_t>(yy) * W + static_cast<std::size_t>(xx);
                    ch[cb[q]] += 1.0;
                    hh[hb[q]] += chr[q];
                    csum += chr[q];
                }
            const std::size_t row = i * P + p;
            for (std::size_t k = 0; k < B; ++k) {
                t.chroma[row * B + k] = static_cast<T>(ch[k] / area);
                t.hue[row * B + k] = static_cast<T>(csum > 0 ? hh[k] / csum : 1.0 / static_cast<double>(B));
            }
            t.hue_weight[row] = static_cast<T>(csum / area);
        }
    return t;
}

}  // namespace ssl::color
