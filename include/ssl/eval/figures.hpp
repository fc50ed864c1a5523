#pragma once
// Figures of an evaluation (issue 21) as self-contained SVG documents: pure
// functions from numbers and images to SVG text, which `ssl eval` writes
// next to a checkpoint and `ssl report` inlines into one HTML page.
//
//   line_chart(points, {title, xlabel, ylabel, log2_x | x_names})
//       accuracy against k (low-shot, Goyal et al. 2019: mean +- std over
//       draws as error bars, k on a log-2 axis) or against layer (the
//       multi-layer probe: one named position per layer)
//   retrieval_grid(rows, class_names)
//       each query image followed by its nearest training images (cosine
//       similarity of the kNN features, nearest_neighbours): a green border
//       for a neighbour of the query's class, red for another
//   class_map(points, class_names)
//       a 2-D map of features (pca_2d: the first two principal components),
//       one colour per class, a legend naming the classes
//
// Contract: every string is a complete <svg> document with an xmlns and no
// external reference (images are PNG data URIs: base64 of
// ssl::data::detail::encode_png); text taken from callers (titles, class
// names) is XML-escaped. Plotted elements carry a class ("point", "tile") so
// tests and pages can count them. Non-finite numbers, a log-2 x <= 0 and
// negative labels are value_errors naming the offending entry.
// Design choices:
//   - axis ticks at round values from ssl::io::detail::round_ticks (the run
//     plot's), the axis widened to the ticks around the data; on log-2 axes
//     at whole exponents (every power of two up to 9 of them: 1, 2, 4, ...);
//   - small images are drawn scaled up with image-rendering: pixelated;
//   - class colours: ten fixed distinct colours, then hues spaced by the
//     golden angle (any class count gets a colour);
//   - the legend lists at most 20 classes and says how many more there are;
//   - seeded_choice is a splitmix64-driven partial Fisher-Yates shuffle, so
//     the same seed picks the same images on every platform.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include "../cluster/pca.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../data/shards.hpp"
#include "../io/metrics_log.hpp"

namespace ssl::eval::figures {

/// Base64 (RFC 4648, standard alphabet, '=' padding).
inline std::string base64(std::span<const unsigned char> bytes) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t(bytes[i]) << 16) | (std::uint32_t(bytes[i + 1]) << 8) | bytes[i + 2];
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest) {
        std::uint32_t v = std::uint32_t(bytes[i]) << 16;
        if (rest == 2) v |= std::uint32_t(bytes[i + 1]) << 8;
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += rest == 2 ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

/// One image of a figure: (C, H, W) bytes and its class.
struct labelled_image {
    std::vector<std::uint8_t> chw;
    std::size_t channels = 0, height = 0, width = 0;
    std::int64_t label = 0;
};

/// "data:image/png;base64,..." of the image (1 or 3 channels as they are;
/// another count shows its first channel in grey).
inline std::string png_data_uri(const labelled_image& im) {
    require<value_error>(im.channels >= 1 && im.height >= 1 && im.width >= 1 &&
                             im.chw.size() == im.channels * im.height * im.width,
                         "png_data_uri: ", im.chw.size(), " bytes for an image of ", im.channels, "x", im.height, "x",
                         im.width);
    const std::size_t c = (im.channels == 1 || im.channels == 3) ? im.channels : 1;
    const auto png = data::detail::encode_png(im.chw.data(), c, im.height, im.width);
    return "data:image/png;base64," + base64(png);
}

/// `count` distinct indices of [0, n) (all of them when count >= n), the
/// same for the same seed everywhere, in increasing order.
inline std::vector<std::size_t> seeded_choice(std::size_t n, std::size_t count, std::uint64_t seed) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    count = std::min(count, n);
    std::uint64_t s = seed;
    auto next = [&s] {  // splitmix64
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    for (std::size_t i = 0; i < count; ++i) std::swap(idx[i], idx[i + next() % (n - i)]);
    idx.resize(count);
    std::sort(idx.begin(), idx.end());
    return idx;
}

/// The k training rows most cosine-similar to each query row, nearest first
/// (ties: the lower index first), with their similarities. train (N, d),
/// queries (Q, d); k is clamped to N.
inline std::vector<std::vector<std::pair<std::size_t, double>>> nearest_neighbours(const tensor<float>& train,
                                                                                   const tensor<float>& queries,
                                                                                   std::size_t k) {
    require<shape_error>(train.rank() == 2 && queries.rank() == 2 && train.dim(1) == queries.dim(1),
                         "nearest_neighbours: train ", train.shape().str(), " and queries ", queries.shape().str(),
                         " must be (N, d) and (Q, d)");
    const std::size_t n = train.dim(0), q = queries.dim(0), d = train.dim(1);
    k = std::min(k, n);
    auto norm = [d](const float* r) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += double(r[j]) * r[j];
        return std::max(std::sqrt(s), 1e-12);
    };
    std::vector<double> train_norm(n);
    for (std::size_t i = 0; i < n; ++i) train_norm[i] = norm(train.data() + i * d);
    std::vector<std::vector<std::pair<std::size_t, double>>> out(q);
    std::vector<std::pair<std::size_t, double>> all(n);
    for (std::size_t a = 0; a < q; ++a) {
        const float* x = queries.data() + a * d;
        const double nx = norm(x);
        for (std::size_t i = 0; i < n; ++i) {
            const float* y = train.data() + i * d;
            double s = 0;
            for (std::size_t j = 0; j < d; ++j) s += double(x[j]) * y[j];
            const double sim = s / (nx * train_norm[i]);
            require<value_error>(std::isfinite(sim), "nearest_neighbours: non-finite features (query ", a,
                                 ", train row ", i, ")");
            all[i] = {i, sim};
        }
        std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                          [](const auto& l, const auto& r) { return l.second > r.second || (l.second == r.second && l.first < r.first); });
        out[a].assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
    }
    return out;
}

/// The first two principal components of the rows of `features` (N, d),
/// N >= 2 (not whitened; with d = 1 the second coordinate is 0). Up to
/// exact_pca_max_dim dimensions by ssl::cluster::pca (the d x d covariance
/// and its eigendecomposition); above, by subspace iteration on the centred
/// rows (8 directions, 8 rounds, a fixed start: O(N d) per round instead of
/// O(N d^2 + d^3)), each component signed
/// as cluster::pca signs its (largest-magnitude entry positive).
inline constexpr std::size_t exact_pca_max_dim = 256;
inline std::vector<std::pair<double, double>> pca_2d(const tensor<float>& features) {
    require<shape_error>(features.rank() == 2, "pca_2d: features must be (N, d), got ", features.shape().str());
    const std::size_t n = features.dim(0), d = features.dim(1);
    std::vector<std::pair<double, double>> out(n);
    if (d <= exact_pca_max_dim) {
        cluster::pca<float> p({.dims = 2, .whiten = false});
        const auto y = p.fit_transform(features);
        const std::size_t m = y.dim(1);
        for (std::size_t i = 0; i < n; ++i) out[i] = {y.data()[i * m], m > 1 ? y.data()[i * m + 1] : 0.0};
        return out;
    }
    require<value_error>(n >= 2, "pca_2d: need at least 2 rows, got shape ", features.shape().str());
    using mat = Eigen::MatrixXd;
    const auto N = static_cast<Eigen::Index>(n), D = static_cast<Eigen::Index>(d);
    mat x(N, D);
    for (Eigen::Index i = 0; i < N; ++i)
        for (Eigen::Index j = 0; j < D; ++j) {
            const double v = features.data()[static_cast<std::size_t>(i) * d + static_cast<std::size_t>(j)];
            require<value_error>(std::isfinite(v), "pca_2d: non-finite feature in row ", i);
            x(i, j) = v;
        }
    x.rowwise() -= x.colwise().mean();
    const Eigen::Index k = 8;
    mat q(D, k);
    std::uint64_t st = 0x5eed;
    for (Eigen::Index j = 0; j < D; ++j)
        for (Eigen::Index c = 0; c < k; ++c) {  // splitmix64 values in [-1, 1)
            std::uint64_t z = (st += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            q(j, c) = static_cast<double>((z ^ (z >> 31)) >> 11) / 4503599627370496.0 - 1.0;
        }
    for (int round = 0; round < 8; ++round) {
        const mat z = x.transpose() * (x * q);
        q = Eigen::HouseholderQR<mat>(z).householderQ() * mat::Identity(D, k);
    }
    const mat b = x * q;                                         // (N, k)
    Eigen::SelfAdjointEigenSolver<mat> eig(b.transpose() * b);   // increasing eigenvalues
    mat comps = q * eig.eigenvectors().rightCols(2).rowwise().reverse();  // (D, 2), largest first
    for (Eigen::Index c = 0; c < 2; ++c) {
        Eigen::Index arg = 0;
        for (Eigen::Index j = 1; j < D; ++j)
            if (std::abs(comps(j, c)) > std::abs(comps(arg, c))) arg = j;
        if (comps(arg, c) < 0) comps.col(c) *= -1;
    }
    const mat y = x * comps;
    for (std::size_t i = 0; i < n; ++i) out[i] = {y(static_cast<Eigen::Index>(i), 0), y(static_cast<Eigen::Index>(i), 1)};
    return out;
}

namespace detail {

using io::detail::plot_number;
using io::detail::round_ticks;
using io::detail::xml_text;

inline std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
}

inline std::string svg_open(double w, double h, const std::string& title) {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" viewBox=\"0 0 " + num(w) + " " + num(h) + "\" font-family=\"sans-serif\" font-size=\"12\">\n<title>" +
           xml_text(title) + "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"" +
           num(w / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + xml_text(title) + "</text>\n";
}

/// The colour of class i.
inline std::string class_colour(std::size_t i) {
    static const char* fixed[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    if (i < 10) return fixed[i];
    // hue by the golden angle, saturation 0.65, lightness 0.45 (HSL -> RGB)
    const double h = std::fmod(static_cast<double>(i) * 137.508, 360.0) / 60.0, s = 0.65, l = 0.45;
    const double c = (1 - std::abs(2 * l - 1)) * s, x = c * (1 - std::abs(std::fmod(h, 2.0) - 1)), m = l - c / 2;
    double r = 0, g = 0, b = 0;
    if (h < 1) r = c, g = x;
    else if (h < 2) r = x, g = c;
    else if (h < 3) g = c, b = x;
    else if (h < 4) g = x, b = c;
    else if (h < 5) r = x, b = c;
    else r = c, b = x;
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<unsigned>(std::lround((r + m) * 255)),
                  static_cast<unsigned>(std::lround((g + m) * 255)), static_cast<unsigned>(std::lround((b + m) * 255)));
    return buf;
}

inline std::string class_name(const std::vector<std::string>& names, std::int64_t label) {
    if (label >= 0 && static_cast<std::size_t>(label) < names.size() && !names[static_cast<std::size_t>(label)].empty())
        return names[static_cast<std::size_t>(label)];
    return "class " + std::to_string(label);
}

/// [lo, hi] of the values, widened by 5% on each side (by 1 when they are all equal).
inline std::pair<double, double> padded_range(double lo, double hi) {
    if (!(hi > lo)) return {lo - 1, hi + 1};
    const double pad = (hi - lo) * 0.05;
    return {lo - pad, hi + pad};
}

/// An axis over [lo, hi] widened to the round ticks around it (20..80
/// rather than 26.2..77.3), with those ticks.
struct axis {
    double lo, hi;
    std::vector<double> ticks;
};
inline axis round_axis(double lo, double hi) {
    auto t = round_ticks(lo, hi);
    if (t.size() >= 2) {
        const double step = t[1] - t[0];
        lo = std::floor(lo / step + 1e-9) * step, hi = std::ceil(hi / step - 1e-9) * step;
        t = round_ticks(lo, hi);
    }
    return {lo, hi, t};
}

}  // namespace detail

/// One point of a line chart: y with an error bar of +- err (0: none).
struct chart_point {
    double x = 0, y = 0, err = 0;
};

struct chart_options {
    std::string title{}, xlabel{}, ylabel{};
    bool log2_x = false;  ///< x on a log-2 axis (x > 0), ticks at powers of two
    /// Non-empty: x is categorical, point i at position i named x_names[i]
    /// (one name per point; the points' x are ignored).
    std::vector<std::string> x_names{};
};

/// A line chart of the points (in order) with error bars.
inline std::string line_chart(const std::vector<chart_point>& pts, const chart_options& o) {
    using namespace detail;
    require<value_error>(o.x_names.empty() || o.x_names.size() == pts.size(), "line_chart: ", o.x_names.size(),
                         " x names for ", pts.size(), " points");
    std::vector<double> xs(pts.size());
    double ylo = 1e300, yhi = -1e300;
    for (std::size_t i = 0; i < pts.size(); ++i) {
        const auto& p = pts[i];
        require<value_error>(std::isfinite(p.x) && std::isfinite(p.y) && std::isfinite(p.err) && p.err >= 0,
                             "line_chart: point ", i, " is (x ", p.x, ", y ", p.y, ", err ", p.err,
                             "): every number must be finite, err >= 0");
        require<value_error>(!o.log2_x || !o.x_names.empty() || p.x > 0, "line_chart: point ", i, " has x ", p.x,
                             " on a log-2 axis (x must be > 0)");
        xs[i] = !o.x_names.empty() ? static_cast<double>(i) : o.log2_x ? std::log2(p.x) : p.x;
        ylo = std::min(ylo, p.y - p.err), yhi = std::max(yhi, p.y + p.err);
    }
    const double W = 640, H = 400, L = 70, R = 20, T = 40, B = 60;
    std::string s = svg_open(W, H, o.title);
    if (pts.empty()) {
        s += "<text x=\"" + num(W / 2) + "\" y=\"" + num(H / 2) + "\" text-anchor=\"middle\">no results</text>\n</svg>\n";
        return s;
    }
    double xlo = *std::min_element(xs.begin(), xs.end()), xhi = *std::max_element(xs.begin(), xs.end());
    if (!o.x_names.empty() || o.log2_x) {
        xlo -= 0.5, xhi += 0.5;  // half a position (a factor sqrt 2) beyond the ends
    } else {
        std::tie(xlo, xhi) = padded_range(xlo, xhi);
    }
    std::tie(ylo, yhi) = padded_range(ylo, yhi);
    const axis yaxis = round_axis(ylo, yhi);
    ylo = yaxis.lo, yhi = yaxis.hi;
    auto px = [&](double x) { return L + (x - xlo) / (xhi - xlo) * (W - L - R); };
    auto py = [&](double y) { return H - B - (y - ylo) / (yhi - ylo) * (H - T - B); };
    // axes, grid and ticks
    s += "<g class=\"axes\" stroke=\"#888\">\n<line x1=\"" + num(L) + "\" y1=\"" + num(H - B) + "\" x2=\"" +
         num(W - R) + "\" y2=\"" + num(H - B) + "\"/>\n<line x1=\"" + num(L) + "\" y1=\"" + num(T) + "\" x2=\"" +
         num(L) + "\" y2=\"" + num(H - B) + "\"/>\n</g>\n";
    for (const double y : yaxis.ticks) {
        s += "<line stroke=\"#eee\" x1=\"" + num(L) + "\" x2=\"" + num(W - R) + "\" y1=\"" + num(py(y)) + "\" y2=\"" +
             num(py(y)) + "\"/><text class=\"ytick\" x=\"" + num(L - 6) + "\" y=\"" + num(py(y) + 4) +
             "\" text-anchor=\"end\">" + plot_number(y) + "</text>\n";
    }
    std::vector<std::pair<double, std::string>> xticks;
    if (!o.x_names.empty()) {
        for (std::size_t i = 0; i < o.x_names.size(); ++i) xticks.emplace_back(double(i), o.x_names[i]);
    } else if (o.log2_x) {
        // every power of two when at most 9 are in range (1, 2, 4, ..., 256), else round_ticks' whole exponents
        std::vector<double> es = round_ticks(xlo, xhi, 1);
        if (std::floor(xhi) - std::ceil(xlo) <= 8) {
            es.clear();
            for (double e = std::ceil(xlo); e <= xhi; ++e) es.push_back(e);
        }
        for (const double e : es) xticks.emplace_back(e, plot_number(std::exp2(e)));
    } else {
        for (const double x : round_ticks(xlo, xhi)) xticks.emplace_back(x, plot_number(x));
    }
    for (const auto& [x, label] : xticks)
        s += "<text class=\"xtick\" x=\"" + num(px(x)) + "\" y=\"" + num(H - B + 16) + "\" text-anchor=\"middle\">" +
             xml_text(label) + "</text>\n";
    s += "<text x=\"" + num((L + W - R) / 2) + "\" y=\"" + num(H - 18) + "\" text-anchor=\"middle\">" +
         xml_text(o.xlabel) + "</text>\n<text transform=\"translate(16 " + num((T + H - B) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + xml_text(o.ylabel) + "</text>\n";
    // the line, error bars and points
    s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
    for (std::size_t i = 0; i < pts.size(); ++i) s += (i ? " " : "") + num(px(xs[i])) + "," + num(py(pts[i].y));
    s += "\"/>\n";
    for (std::size_t i = 0; i < pts.size(); ++i) {
        const double x = px(xs[i]);
        if (pts[i].err > 0) {
            const double a = py(pts[i].y - pts[i].err), b = py(pts[i].y + pts[i].err);
            s += "<path class=\"errorbar\" stroke=\"#1f77b4\" fill=\"none\" d=\"M" + num(x) + " " + num(a) + "V" +
                 num(b) + "M" + num(x - 4) + " " + num(a) + "h8M" + num(x - 4) + " " + num(b) + "h8\"/>\n";
        }
        s += "<circle class=\"point\" cx=\"" + num(x) + "\" cy=\"" + num(py(pts[i].y)) +
             "\" r=\"3.5\" fill=\"#1f77b4\"><title>" + xml_text(o.x_names.empty() ? plot_number(pts[i].x) : o.x_names[i]) +
             ": " + plot_number(pts[i].y) + (pts[i].err > 0 ? " +- " + plot_number(pts[i].err) : std::string()) +
             "</title></circle>\n";
    }
    return s + "</svg>\n";
}

/// A query image and its nearest training images (nearest first).
struct retrieval_row {
    labelled_image query;
    std::vector<labelled_image> neighbours;
    std::vector<double> similarity;  ///< one per neighbour (or empty)
};

/// One line per row: the query (grey border), then its neighbours, each
/// with a green border when of the query's class, red otherwise, captioned
/// with its class (and cosine similarity).
inline std::string retrieval_grid(const std::vector<retrieval_row>& rows, const std::vector<std::string>& class_names,
                                  const std::string& title) {
    using namespace detail;
    std::size_t cols = 0, side = 0;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        require<value_error>(rows[r].similarity.empty() || rows[r].similarity.size() == rows[r].neighbours.size(),
                             "retrieval_grid: row ", r, " has ", rows[r].similarity.size(), " similarities for ",
                             rows[r].neighbours.size(), " neighbours");
        cols = std::max(cols, rows[r].neighbours.size());
        side = std::max({side, rows[r].query.height, rows[r].query.width});
        for (const auto& n : rows[r].neighbours) side = std::max({side, n.height, n.width});
    }
    // tiles of at least 64 px (small images scaled up), at most 128
    const double tile = std::clamp(static_cast<double>(side) * std::max(1.0, std::ceil(64.0 / std::max<std::size_t>(side, 1))), 64.0, 128.0);
    const double gap = 10, caption = 30, left = 10, top = 60, sep = 24;
    const double W = std::max(420.0, left * 2 + tile + sep + static_cast<double>(cols) * (tile + gap));
    const double H = top + static_cast<double>(rows.size()) * (tile + caption + gap) + 10;
    std::string s = svg_open(W, H, title);
    s += "<text x=\"" + num(left) + "\" y=\"" + num(top - 12) + "\">query</text><text x=\"" +
         num(left + tile + sep) + "\" y=\"" + num(top - 12) +
         "\">nearest training images (cosine similarity; green: same class, red: another)</text>\n";
    auto draw = [&](const labelled_image& im, double x, double y, const char* stroke, const std::string& cap,
                    const char* kind) {
        std::string t = "<g class=\"" + std::string(kind) + "\">\n<image class=\"tile\" x=\"" + num(x) + "\" y=\"" +
                        num(y) + "\" width=\"" + num(tile) + "\" height=\"" + num(tile) +
                        "\" preserveAspectRatio=\"xMidYMid meet\" style=\"image-rendering:pixelated\" href=\"" +
                        png_data_uri(im) + "\"/>\n<rect x=\"" + num(x - 1.5) + "\" y=\"" + num(y - 1.5) +
                        "\" width=\"" + num(tile + 3) + "\" height=\"" + num(tile + 3) + "\" fill=\"none\" stroke=\"" +
                        stroke + "\" stroke-width=\"3\"/>\n";
        std::string c = cap.size() > 18 ? cap.substr(0, 17) + "..." : cap;
        t += "<text x=\"" + num(x + tile / 2) + "\" y=\"" + num(y + tile + 16) + "\" text-anchor=\"middle\" font-size=\"11\">" +
             xml_text(c) + "</text>\n</g>\n";
        return t;
    };
    for (std::size_t r = 0; r < rows.size(); ++r) {
        const auto& row = rows[r];
        const double y = top + static_cast<double>(r) * (tile + caption + gap);
        s += draw(row.query, left, y, "#333333", class_name(class_names, row.query.label), "query");
        for (std::size_t j = 0; j < row.neighbours.size(); ++j) {
            const auto& n = row.neighbours[j];
            const bool same = n.label == row.query.label;
            std::string cap = class_name(class_names, n.label);
            if (!row.similarity.empty()) {
                char b[16];
                std::snprintf(b, sizeof b, " %.2f", row.similarity[j]);
                cap = (cap.size() > 12 ? cap.substr(0, 11) + "." : cap) + b;
            }
            s += draw(n, left + tile + sep + static_cast<double>(j) * (tile + gap), y, same ? "#2ca02c" : "#d62728", cap,
                      same ? "neighbour same" : "neighbour other");
        }
    }
    return s + "</svg>\n";
}

/// A point of the class map.
struct map_point {
    double x = 0, y = 0;
    std::int64_t label = 0;
};

/// A scatter plot of the points coloured by class, with a legend (at most
/// 20 classes named, then how many more).
inline std::string class_map(const std::vector<map_point>& pts, const std::vector<std::string>& class_names,
                             const std::string& title, const std::string& xlabel = "PC 1",
                             const std::string& ylabel = "PC 2") {
    using namespace detail;
    double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
    std::int64_t max_label = -1;
    for (std::size_t i = 0; i < pts.size(); ++i) {
        const auto& p = pts[i];
        require<value_error>(std::isfinite(p.x) && std::isfinite(p.y), "class_map: point ", i, " is (", p.x, ", ",
                             p.y, "): coordinates must be finite");
        require<value_error>(p.label >= 0, "class_map: point ", i, " has label ", p.label, " (must be >= 0)");
        xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x), ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
        max_label = std::max(max_label, p.label);
    }
    const double W = 820, H = 520, L = 70, R = 200, T = 40, B = 50;
    std::string s = svg_open(W, H, title);
    if (pts.empty()) return s + "<text x=\"" + num(W / 2) + "\" y=\"" + num(H / 2) + "\" text-anchor=\"middle\">no points</text>\n</svg>\n";
    std::tie(xlo, xhi) = padded_range(xlo, xhi);
    std::tie(ylo, yhi) = padded_range(ylo, yhi);
    const axis xaxis = round_axis(xlo, xhi), yaxis = round_axis(ylo, yhi);
    xlo = xaxis.lo, xhi = xaxis.hi, ylo = yaxis.lo, yhi = yaxis.hi;
    auto px = [&](double x) { return L + (x - xlo) / (xhi - xlo) * (W - L - R); };
    auto py = [&](double y) { return H - B - (y - ylo) / (yhi - ylo) * (H - T - B); };
    s += "<rect x=\"" + num(L) + "\" y=\"" + num(T) + "\" width=\"" + num(W - L - R) + "\" height=\"" +
         num(H - T - B) + "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (const double y : yaxis.ticks)
        s += "<text class=\"ytick\" x=\"" + num(L - 6) + "\" y=\"" + num(py(y) + 4) + "\" text-anchor=\"end\">" +
             plot_number(y) + "</text>\n";
    for (const double x : xaxis.ticks)
        s += "<text class=\"xtick\" x=\"" + num(px(x)) + "\" y=\"" + num(H - B + 16) + "\" text-anchor=\"middle\">" +
             plot_number(x) + "</text>\n";
    s += "<text x=\"" + num((L + W - R) / 2) + "\" y=\"" + num(H - 12) + "\" text-anchor=\"middle\">" +
         xml_text(xlabel) + "</text>\n<text transform=\"translate(16 " + num((T + H - B) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + xml_text(ylabel) + "</text>\n<g class=\"points\" fill-opacity=\"0.75\">\n";
    for (const auto& p : pts)
        s += "<circle class=\"point\" cx=\"" + num(px(p.x)) + "\" cy=\"" + num(py(p.y)) + "\" r=\"2.5\" fill=\"" +
             class_colour(static_cast<std::size_t>(p.label)) + "\"/>\n";
    s += "</g>\n<g class=\"legend\">\n";
    std::vector<bool> present(static_cast<std::size_t>(max_label + 1), false);
    for (const auto& p : pts) present[static_cast<std::size_t>(p.label)] = true;
    std::size_t shown = 0, more = 0;
    for (std::size_t c = 0; c < present.size(); ++c) {
        if (!present[c]) continue;
        if (shown == 20) {
            ++more;
            continue;
        }
        const double y = T + 10 + static_cast<double>(shown) * 20;
        std::string name = class_name(class_names, static_cast<std::int64_t>(c));
        if (name.size() > 24) name = name.substr(0, 23) + "...";
        s += "<circle cx=\"" + num(W - R + 20) + "\" cy=\"" + num(y) + "\" r=\"5\" fill=\"" + class_colour(c) +
             "\"/><text class=\"legend-entry\" x=\"" + num(W - R + 32) + "\" y=\"" + num(y + 4) + "\">" +
             xml_text(name) + "</text>\n";
        ++shown;
    }
    if (more)
        s += "<text x=\"" + num(W - R + 12) + "\" y=\"" + num(T + 14 + 20.0 * 20) + "\">and " + std::to_string(more) +
             " more classes</text>\n";
    return s + "</g>\n</svg>\n";
}

}  // namespace ssl::eval::figures
