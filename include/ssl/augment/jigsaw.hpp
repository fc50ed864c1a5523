#pragma once
// The jigsaw puzzle pretext of Noroozi & Favaro, "Unsupervised Learning of
// Visual Representations by Solving Jigsaw Puzzles" (ECCV 2016): an image is
// cut into a 3x3 grid, a random tile is taken inside each cell (the gap
// between tiles keeps edges from giving the answer away), each tile is
// jittered and normalised on its own (no shared low-level statistics), and
// the tiles are shuffled by one permutation of a fixed set; the network
// classifies which permutation it was.
//
//   maximal_hamming_permutations(P, seed)  the permutation set (sec. 3.2)
//   jigsaw_tiles                           the augmentation policy
//
// Contract of jigsaw_tiles::make_views (N images): one view of 9 N tiles,
// (9 N, C, t, t), spec {copies 9, grid 3x3}: row r * N + i is the tile in
// slot r of sample i, which shows cell perm[r] of its image (cells in row-
// major order); labels: N permutation indices in [0, P). Every draw is keyed
// by (seed, epoch, sample id): reproducible, independent of threads and batch.
//
// Choices:
// - Permutation set: greedy from all 9! permutations, each new one maximising
//   the minimal Hamming distance to those chosen (the paper's "maximal"
//   set; ties to the lowest lexicographic index), the first drawn from seed.
//   Computed once per (P, seed) per process.
// - Geometry: the image is random-resized-cropped (scale [crop_min_scale, 1])
//   to a grid x grid square, cut into 3x3 cells of grid / 3, and a tile of
//   round(cell * 64 / 75) (the paper's 64 of 75) is taken at a random offset
//   inside each cell. Small images are upsampled to the grid (default 48 px
//   below 32 px input: 16-px cells, 14-px tiles), ImageNet-size ones use the
//   paper's 225.
// - Per tile: brightness and contrast jitter (saturation too on colour
//   images), then normalisation to zero mean and unit variance per channel
//   (stddev floored at 1e-2: a flat tile stays flat, not amplified noise).
// - Evaluation sees whole images at the tiles' pixel scale: eval_transform
//   resizes them to the grid side (a tile is a crop of the grid at its own
//   resolution, as the paper's 64-px tiles are crops of its 225-px image) and,
//   with tile_normalize, standardises each image per channel as the tiles
//   were (the batch-norm statistics the network learned are those of
//   standardised inputs). With eval_tiles, an image is instead seen as the
//   network trained on it: its 9 unshuffled tiles (the centred tile of each
//   cell, normalised as in training; eval_copies() = 9, row r * N + i is
//   cell r of image i), and method::embed averages their features.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/rng.hpp"
#include "../core/thread_pool.hpp"
#include "color.hpp"
#include "geometry.hpp"
#include "pipeline.hpp"
#include "presets.hpp"

namespace ssl::augment {

using permutation9 = std::array<std::uint8_t, 9>;

/// Positions where two permutations differ.
inline std::size_t hamming(const permutation9& a, const permutation9& b) noexcept {
    std::size_t d = 0;
    for (std::size_t k = 0; k < 9; ++k) d += a[k] != b[k];
    return d;
}

namespace detail {
inline std::vector<permutation9> compute_maximal_hamming(std::size_t count, std::uint64_t seed) {
    std::vector<permutation9> all;
    all.reserve(362880);
    // lexicographic order; permuted as ints (GCC 12 -O3 warns, falsely, of
    // a 16-byte write when it vectorizes next_permutation's reverse on bytes)
    std::array<int, 9> q{0, 1, 2, 3, 4, 5, 6, 7, 8};
    do {
        permutation9 p;
        for (std::size_t k = 0; k < 9; ++k) p[k] = static_cast<std::uint8_t>(q[k]);
        all.push_back(p);
    } while (std::next_permutation(q.begin(), q.end()));
    std::vector<std::uint8_t> mind(all.size(), 10);  // minimal distance to the chosen set
    std::vector<permutation9> chosen;
    chosen.reserve(count);
    philox g(seed, stream_id(0x61A5A11ull));
    std::size_t next = static_cast<std::size_t>(g.below(all.size()));
    const std::size_t chunk = 4096, tasks = (all.size() + chunk - 1) / chunk;
    std::vector<std::pair<std::uint8_t, std::size_t>> best(tasks);
    for (std::size_t k = 0; k < count; ++k) {
        const permutation9 c = all[next];
        chosen.push_back(c);
        // Update the minimal distances and find the farthest permutation
        // (lowest index on ties), chunk by chunk in parallel.
        parallel_for(tasks, [&](std::size_t t, std::size_t) {
            const std::size_t b = t * chunk, e = std::min(all.size(), b + chunk);
            std::pair<std::uint8_t, std::size_t> bt{0, b};
            for (std::size_t i = b; i < e; ++i) {
                mind[i] = std::min<std::uint8_t>(mind[i], static_cast<std::uint8_t>(hamming(all[i], c)));
                if (mind[i] > bt.first) bt = {mind[i], i};
            }
            best[t] = bt;
        });
        std::pair<std::uint8_t, std::size_t> b{0, 0};
        for (const auto& bt : best)
            if (bt.first > b.first) b = bt;
        next = b.second;
    }
    return chosen;
}
}  // namespace detail

/// `count` permutations of 9 tiles with maximal minimal pairwise Hamming
/// distance, chosen greedily (see the header comment); cached per process.
inline const std::vector<permutation9>& maximal_hamming_permutations(std::size_t count, std::uint64_t seed = 0) {
    require<value_error>(count >= 2 && count <= 362880, "maximal_hamming_permutations: ", count,
                         " permutations requested; choose between 2 and 9! = 362880 (the paper: 100 or 1000)");
    static std::mutex mu;
    static std::map<std::pair<std::size_t, std::uint64_t>, std::vector<permutation9>> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find({count, seed});
    if (it == cache.end()) it = cache.emplace(std::pair{count, seed}, detail::compute_maximal_hamming(count, seed)).first;
    return it->second;
}

struct jigsaw_config {
    std::size_t size = 28;            ///< the images' side (chooses the default grid)
    std::size_t channels = 1;         ///< 1 or 3
    std::size_t grid = 0;             ///< side of the square cut into 3x3 cells; 0: 48 below 32 px, else 225
    std::size_t tile = 0;             ///< tile side inside its cell; 0: round(cell * 64 / 75)
    double crop_min_scale = 0.6;      ///< the whole image's random resized crop, area fraction in (0, 1]
    std::size_t permutations = 100;   ///< P, the classes (the paper: 100 or 1000)
    std::uint64_t permutation_seed = 0;
    double jitter = 0.4;              ///< per-tile brightness / contrast (/ saturation) jitter strength; 0: none
    bool tile_normalize = true;       ///< each tile to zero mean, unit variance per channel
    bool eval_tiles = false;          ///< evaluate on the 9 centred tiles (features averaged), not the whole image
};

class jigsaw_tiles {
public:
    using config_type = jigsaw_config;
    static constexpr const char* name = "jigsaw_tiles";
    static constexpr std::size_t cells = 9;

    explicit jigsaw_tiles(const jigsaw_config& c = {})
        : cfg_(c), perms_(&maximal_hamming_permutations(c.permutations, c.permutation_seed)) {
        require<value_error>(c.channels == 1 || c.channels == 3, "jigsaw_tiles: channels must be 1 or 3, got ",
                             c.channels);
        require<value_error>(c.crop_min_scale > 0 && c.crop_min_scale <= 1,
                             "jigsaw_tiles: crop_min_scale must be in (0, 1], got ", c.crop_min_scale);
        require<value_error>(c.jitter >= 0 && c.jitter < 1, "jigsaw_tiles: jitter must be in [0, 1), got ", c.jitter);
        grid_ = c.grid ? c.grid : (c.size < 32 ? 48 : 225);
        require<value_error>(grid_ >= 6, "jigsaw_tiles: grid ", grid_, " is too small for 3x3 cells of 2 px");
        cell_ = grid_ / 3;
        tile_ = c.tile ? c.tile
                       : std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(double(cell_) * 64.0 / 75.0)));
        require<value_error>(tile_ >= 1 && tile_ <= cell_, "jigsaw_tiles: tile ", tile_, " does not fit a cell of ",
                             cell_, " px (grid ", grid_, ")");
        crop_.add(random_resized_crop{.height = grid_, .width = grid_, .scale = {c.crop_min_scale, 1.0}});
        eval_.add(resize{.height = grid_, .width = grid_});
        if (!c.tile_normalize) eval_.add(default_normalize(c.channels));
        jitter_ = color_jitter{.brightness = c.jitter, .contrast = c.jitter,
                               .saturation = c.channels == 3 ? c.jitter : 0.0};
    }
    const jigsaw_config& config() const noexcept { return cfg_; }
    std::size_t grid() const noexcept { return grid_; }
    std::size_t cell() const noexcept { return cell_; }
    std::size_t tile() const noexcept { return tile_; }
    const std::vector<permutation9>& permutations() const noexcept { return *perms_; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        check_rank(images, 4, "jigsaw_tiles", "(N, C, H, W)");
        const std::size_t n = images.dim(0), C = cfg_.channels, t = tile_;
        require<shape_error>(images.dim(1) == C && ids.size() == n, "jigsaw_tiles: images of shape ",
                             images.shape().str(), " with ", ids.size(), " ids, configured for ", C, " channels");
        const tensor<float> sq = crop_.apply(images, ids, seed, epoch, 0);  // (N, C, grid, grid)
        view_batch<float> vb;
        tensor<float> out({cells * n, C, t, t});
        vb.labels.resize(n);
        const std::size_t per_sq = C * grid_ * grid_, per_tile = C * t * t;
        parallel_for(n, [&](std::size_t i, std::size_t) {
            philox g(seed, stream_id(0x9165A3ull, epoch, ids[i]));
            const std::size_t k = static_cast<std::size_t>(g.below(perms_->size()));
            vb.labels[i] = static_cast<std::int64_t>(k);
            const permutation9& p = (*perms_)[k];
            workspace ws;
            std::vector<float> raw(per_tile);
            for (std::size_t r = 0; r < cells; ++r) {
                const std::size_t cell = p[r], cy = cell / 3, cx = cell % 3;
                const std::size_t oy = cy * cell_ + static_cast<std::size_t>(g.below(cell_ - t + 1));
                const std::size_t ox = cx * cell_ + static_cast<std::size_t>(g.below(cell_ - t + 1));
                const float* src = sq.data() + i * per_sq;
                for (std::size_t c = 0; c < C; ++c)
                    for (std::size_t y = 0; y < t; ++y)
                        std::copy_n(src + (c * grid_ + oy + y) * grid_ + ox, t, raw.data() + (c * t + y) * t);
                float* dst = out.data() + (r * n + i) * per_tile;
                const image_dims dims{C, t, t};
                const auto q = jitter_.draw(g, dims);  // drawn always: the stream does not depend on jitter == 0
                if (cfg_.jitter > 0)
                    jitter_.apply(const_image_ref{raw.data(), dims}, q, image_ref{dst, dims}, ws);
                else
                    std::copy(raw.begin(), raw.end(), dst);
                if (cfg_.tile_normalize) normalize_tile(dst, C, t * t);
            }
        });
        vb.views.push_back(std::move(out));
        vb.specs.push_back({.copies = cells, .grid_rows = 3, .grid_cols = 3});
        return vb;
    }

    /// Whole images resized to the grid side and standardised like the tiles
    /// (see the header comment): what the backbone sees at evaluation.
    tensor<float> eval_transform(const tensor<float>& images) const {
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        tensor<float> x = eval_.apply(images, ids, 0, 0, 0);
        if (cfg_.eval_tiles) return centred_tiles(x);
        if (cfg_.tile_normalize) {
            const std::size_t hw = grid_ * grid_, per = cfg_.channels * hw;
            parallel_for(x.dim(0), [&](std::size_t i, std::size_t) { normalize_tile(x.data() + i * per, cfg_.channels, hw); });
        }
        return x;
    }

    /// Rows per image of eval_transform: 9 with eval_tiles, else 1.
    std::size_t eval_copies() const noexcept { return cfg_.eval_tiles ? cells : 1; }

private:
    /// (9 N, C, t, t): cell r's centred tile of image i at row r * N + i, normalised like the training tiles.
    tensor<float> centred_tiles(const tensor<float>& sq) const {
        const std::size_t n = sq.dim(0), C = cfg_.channels, t = tile_, off = (cell_ - t) / 2;
        const std::size_t per_sq = C * grid_ * grid_, per_tile = C * t * t;
        tensor<float> out({cells * n, C, t, t});
        parallel_for(n, [&](std::size_t i, std::size_t) {
            for (std::size_t r = 0; r < cells; ++r) {
                const std::size_t oy = (r / 3) * cell_ + off, ox = (r % 3) * cell_ + off;
                float* dst = out.data() + (r * n + i) * per_tile;
                for (std::size_t c = 0; c < C; ++c)
                    for (std::size_t y = 0; y < t; ++y)
                        std::copy_n(sq.data() + i * per_sq + (c * grid_ + oy + y) * grid_ + ox, t, dst + (c * t + y) * t);
                if (cfg_.tile_normalize) normalize_tile(dst, C, t * t);
            }
        });
        return out;
    }

    static void normalize_tile(float* x, std::size_t channels, std::size_t hw) {
        for (std::size_t c = 0; c < channels; ++c) {
            float* v = x + c * hw;
            double s = 0, ss = 0;
            for (std::size_t k = 0; k < hw; ++k) s += v[k];
            const double m = s / static_cast<double>(hw);
            for (std::size_t k = 0; k < hw; ++k) ss += (v[k] - m) * (v[k] - m);
            const double inv = 1.0 / std::max(std::sqrt(ss / static_cast<double>(hw)), 1e-2);
            for (std::size_t k = 0; k < hw; ++k) v[k] = static_cast<float>((v[k] - m) * inv);
        }
    }

    jigsaw_config cfg_;
    pipeline eval_;
    pipeline crop_;
    color_jitter jitter_{};
    const std::vector<permutation9>* perms_ = nullptr;
    std::size_t grid_ = 0, cell_ = 0, tile_ = 0;
};

}  // namespace ssl::augment
