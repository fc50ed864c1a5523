#pragma once
// The seed patches of Exemplar-CNN (Dosovitskiy, Springenberg, Riedmiller,
// Brox, "Discriminative Unsupervised Feature Learning with Convolutional
// Neural Networks", NIPS 2014, sec. 2): N patches of side p sampled "from
// regions containing considerable gradients", each of which becomes its own
// surrogate class.
//
//   select_exemplar_seeds(images, config)  where the seeds are (image, place, score)
//   exemplar_patches(images, config)       the patch set: an image_dataset of N windows
//
// The rule (deterministic per config.seed, independent of the thread count):
//  1. Candidates: per image, `candidates` distinct window positions drawn
//     uniformly (Philox keyed by (seed, image index)); all positions when the
//     image has no more than that.
//  2. Score: the mean squared finite-difference gradient over the seed patch
//     (the central p x p of the window), differences between horizontally
//     and vertically adjacent pixels both inside the patch, summed over
//     channels, in units of [0, 1] pixel values:
//       score = sum_c (sum (I(y, x+1) - I(y, x))^2 + sum (I(y+1, x) - I(y, x))^2) / (2 p (p - 1)).
//  3. Threshold: candidates scoring below the `quantile`-quantile of all
//     candidate scores of the set (the lower nearest-rank value), or exactly
//     0 (flat), are dropped.
//  4. Per image, up to `per_image` surviving candidates, best first (ties to
//     the earlier draw), skipping any whose seed patch overlaps an already
//     kept one of the same image by more than half a patch side in both axes
//     (near-duplicate classes).
//  5. N of the kept seeds drawn uniformly without replacement (Philox keyed
//     by seed), ordered by (image, rank in the image): patch i is class i.
//     Drawing rather than taking the N best keeps the classes spread over
//     images instead of piling onto the most textured ones.
//
// Choices:
// - The stored patch is a window of side s ~ context * p (default 1.5 p; p
//   plus an even margin, exemplar_window_size) centred on the seed patch,
//   so translations, rotations and down-scaling at train time
//   (augment/exemplar.hpp) show real surrounding image rather than a border
//   rule for all but the largest draws; windows lie fully inside their
//   image. The seed patch is what the network sees at identity parameters.
// - Labels: the surrogate class of patch i is i, its index, which is the
//   sample id the trainer passes (the instance classifier's label). The
//   dataset's labels keep the source image's class when the images are
//   labelled (for evaluating features on the patch set); unlabelled
//   otherwise.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/thread_pool.hpp"
#include "dataset.hpp"

namespace ssl::data {

struct exemplar_patches_config {
    std::size_t count = 0;        ///< N: seed patches, one surrogate class each (required)
    std::size_t patch_size = 0;   ///< p: the seed patch side, the network's input (required, >= 2)
    double context = 1.5;         ///< window side ~ context * p (exemplar_window_size), >= 1 (1: the patch alone)
    /// At most this many seeds per image (the paper: different images). A
    /// second seed must lie half a patch away from the first in some axis,
    /// which images barely larger than the window do not allow.
    std::size_t per_image = 1;
    std::size_t candidates = 8;   ///< window positions drawn per image
    double quantile = 0.5;        ///< candidates below this quantile of all scores are dropped, in [0, 1)
    std::uint64_t seed = 0;
};

/// One seed: the window's top-left corner in its image and the gradient score
/// of its central patch.
struct exemplar_seed {
    std::size_t image = 0;
    std::size_t top = 0, left = 0;  ///< of the stored window (the seed patch is its centre)
    double score = 0;
    friend bool operator==(const exemplar_seed&, const exemplar_seed&) = default;
};

/// The side of the stored window for a config: context * p, rounded to
/// p + an even number so the patch sits exactly in its middle.
inline std::size_t exemplar_window_size(const exemplar_patches_config& c) {
    const double margin = (c.context - 1) * static_cast<double>(c.patch_size) / 2;
    return c.patch_size + 2 * static_cast<std::size_t>(std::lround(std::max(0.0, margin)));
}

namespace detail {

inline void check_exemplar_config(const image_dataset& images, const exemplar_patches_config& c) {
    const std::string who = "exemplar_patches: " + images.describe();
    require<value_error>(images.images.rank() == 4, who, ": images must be a rank-4 (N, C, H, W) tensor, got shape ",
                         images.images.shape().str());
    require<value_error>(!images.empty() && images.height() > 0 && images.width() > 0 && images.channels() > 0,
                         who, " is empty (", images.images.shape().str(), "): no patches to take");
    require<value_error>(c.count > 0, "exemplar_patches: count (N, the surrogate classes) must be positive");
    require<value_error>(c.patch_size >= 2, "exemplar_patches: patch_size must be at least 2 (a gradient needs two "
                                            "pixels), got ", c.patch_size);
    require<value_error>(std::isfinite(c.context) && c.context >= 1, "exemplar_patches: context must be >= 1 (the "
                                                                     "window holds the patch), got ", c.context);
    require<value_error>(c.per_image >= 1, "exemplar_patches: per_image must be at least 1");
    require<value_error>(c.candidates >= 1, "exemplar_patches: candidates must be at least 1");
    require<value_error>(c.quantile >= 0 && c.quantile < 1, "exemplar_patches: quantile must be in [0, 1), got ",
                         c.quantile);
    const std::size_t s = exemplar_window_size(c);
    require<shape_error>(c.patch_size <= images.height() && c.patch_size <= images.width(), who, ": patches of ",
                         c.patch_size, "x", c.patch_size, " are larger than its ", images.height(), "x",
                         images.width(), " images");
    require<shape_error>(s <= images.height() && s <= images.width(), who, ": windows of ", s, "x", s, " (context ",
                         c.context, " x patch ", c.patch_size, ") are larger than its ", images.height(), "x",
                         images.width(), " images; lower context or patch_size");
}

}  // namespace detail

/// Where the N seeds are (the rule in the header comment), in patch order.
inline std::vector<exemplar_seed> select_exemplar_seeds(const image_dataset& images, const exemplar_patches_config& c) {
    detail::check_exemplar_config(images, c);
    const std::size_t n = images.size(), C = images.channels(), H = images.height(), W = images.width();
    const std::size_t p = c.patch_size, s = exemplar_window_size(c), m = (s - p) / 2;  // patch offset in the window
    const std::size_t ny = H - s + 1, nx = W - s + 1, positions = ny * nx;
    const std::size_t k = std::min(c.candidates, positions);
    require<value_error>(c.count <= n * std::min(k, c.per_image), "exemplar_patches: count ", c.count,
                         " is larger than the candidates can give: ", images.describe(), " has ", n,
                         " images x at most ", std::min(k, c.per_image), " seeds each (per_image ", c.per_image,
                         ", ", k, " candidate positions per image)");

    // 1-2. Candidates and their scores, per image on its own Philox stream.
    std::vector<exemplar_seed> cand(n * k);
    std::vector<std::vector<std::size_t>> picks(num_threads());
    parallel_for(n, [&](std::size_t i, std::size_t w) {
        std::vector<std::size_t>& pk = picks[w];
        pk.clear();
        if (k == positions) {
            for (std::size_t q = 0; q < positions; ++q) pk.push_back(q);
        } else {
            philox g(c.seed, stream_id(0xE8E3A11ull, i));
            while (pk.size() < k) {  // distinct positions, in draw order
                const auto q = static_cast<std::size_t>(g.below(positions));
                if (std::find(pk.begin(), pk.end(), q) == pk.end()) pk.push_back(q);
            }
        }
        const std::uint8_t* img = images.images.data() + i * C * H * W;
        const double pairs = 2.0 * static_cast<double>(p) * static_cast<double>(p - 1);
        for (std::size_t j = 0; j < k; ++j) {
            const std::size_t top = pk[j] / nx, left = pk[j] % nx;
            // Integer differences of the bytes, exact: a flat patch scores 0.
            std::uint64_t e = 0;
            for (std::size_t ch = 0; ch < C; ++ch)
                for (std::size_t y = top + m; y < top + m + p; ++y) {
                    const std::uint8_t* row = img + (ch * H + y) * W;
                    for (std::size_t x = left + m; x < left + m + p; ++x) {
                        const long v = row[x];
                        if (x + 1 < left + m + p) e += static_cast<std::uint64_t>((row[x + 1] - v) * (row[x + 1] - v));
                        if (y + 1 < top + m + p) e += static_cast<std::uint64_t>((row[x + W] - v) * (row[x + W] - v));
                    }
                }
            cand[i * k + j] = {i, top, left, static_cast<double>(e) / (255.0 * 255.0) / pairs};
        }
    });

    // 3. The threshold over all candidates.
    std::vector<double> sorted(cand.size());
    for (std::size_t j = 0; j < cand.size(); ++j) sorted[j] = cand[j].score;
    const auto qi = static_cast<std::size_t>(std::floor(c.quantile * static_cast<double>(sorted.size() - 1)));
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(qi), sorted.end());
    const double threshold = sorted[qi];

    // 4. Per image, the best surviving candidates, no near-duplicates.
    std::vector<exemplar_seed> pool;
    std::vector<std::size_t> order(k);
    std::vector<exemplar_seed> kept;
    for (std::size_t i = 0; i < n; ++i) {
        const exemplar_seed* ci = cand.data() + i * k;
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return ci[a].score > ci[b].score; });
        kept.clear();
        for (std::size_t j : order) {
            if (kept.size() == c.per_image) break;
            const exemplar_seed& e = ci[j];
            if (!(e.score > 0) || e.score < threshold) break;  // sorted: the rest score lower
            const bool duplicate = std::any_of(kept.begin(), kept.end(), [&](const exemplar_seed& o) {
                const auto d = [](std::size_t a, std::size_t b) { return a > b ? a - b : b - a; };
                return 2 * d(e.top, o.top) < p && 2 * d(e.left, o.left) < p;
            });
            if (!duplicate) kept.push_back(e);
        }
        pool.insert(pool.end(), kept.begin(), kept.end());
    }
    require<value_error>(pool.size() >= c.count, "exemplar_patches: ", images.describe(), " gives ", pool.size(),
                         " seed patches with considerable gradients (", n, " images x ", k, " candidates, at most ",
                         c.per_image, " per image, quantile ", c.quantile, ": score >= ", threshold,
                         ") but count asks for ", c.count,
                         "; lower count or quantile, or raise candidates or per_image");

    // 5. N of them, uniformly, kept in pool order (image, rank).
    if (pool.size() > c.count) {
        std::vector<std::size_t> idx(pool.size());
        std::iota(idx.begin(), idx.end(), std::size_t{0});
        philox g(c.seed, stream_id(0xE8E3A12ull));
        for (std::size_t j = 0; j < c.count; ++j) std::swap(idx[j], idx[j + g.below(idx.size() - j)]);
        idx.resize(c.count);
        std::sort(idx.begin(), idx.end());
        std::vector<exemplar_seed> chosen;
        chosen.reserve(c.count);
        for (std::size_t j : idx) chosen.push_back(pool[j]);
        pool = std::move(chosen);
    }
    return pool;
}

/// The patch set: N windows (N, C, s, s), s = exemplar_window_size(c), patch i
/// cut at seeds[i] (select_exemplar_seeds). Labels: the source images'
/// classes when they are labelled (the surrogate class is the index).
inline image_dataset exemplar_patches(const image_dataset& images, const exemplar_patches_config& c) {
    const std::vector<exemplar_seed> seeds = select_exemplar_seeds(images, c);
    const std::size_t C = images.channels(), H = images.height(), W = images.width(), s = exemplar_window_size(c);
    image_dataset out;
    out.images = tensor<std::uint8_t>({seeds.size(), C, s, s});
    for (std::size_t i = 0; i < seeds.size(); ++i) {
        const exemplar_seed& e = seeds[i];
        const std::uint8_t* src = images.images.data() + e.image * C * H * W;
        std::uint8_t* dst = out.images.data() + i * C * s * s;
        for (std::size_t ch = 0; ch < C; ++ch)
            for (std::size_t y = 0; y < s; ++y)
                std::copy_n(src + (ch * H + e.top + y) * W + e.left, s, dst + (ch * s + y) * s);
    }
    if (images.labelled()) {
        out.labels.reserve(seeds.size());
        for (const auto& e : seeds) out.labels.push_back(images.labels[e.image]);
        out.num_classes = images.num_classes;
        out.class_names = images.class_names;
    }
    out.name = (images.name.empty() ? std::string("images") : images.name) + "/exemplar-patches";
    out.source = images.source;
    out.validate();
    return out;
}

}  // namespace ssl::data
