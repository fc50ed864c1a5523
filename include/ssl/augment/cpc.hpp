#pragma once
// The patch grid of Contrastive Predictive Coding (van den Oord et al. 2018;
// CPC v2: Hénaff et al. 2019, "Data-Efficient Image Recognition with
// Contrastive Predictive Coding"): every image is cut into a g x g grid of
// overlapping square patches, each patch is augmented on its own, and the
// encoder sees the patches one by one.
//
//   cpc_patch_geometry   canvas side, patch side, stride, jitter of a grid
//   cpc_patches          the augmentation policy
//
// Contract of cpc_patches::make_views (N images): one view of g^2 N patches,
// (g^2 N, C, p, p), spec {copies g^2, grid g x g}: row (r g + c) N + i is the
// patch in grid row r, column c of sample i (row r * N + i is copy r: the
// structured view batch of core/concepts.hpp, copies in row-major grid
// order). No labels. eval_transform gives the same rows for the whole image
// without augmentation, and eval_copies() = g^2: method::embed averages the
// g^2 patch features of an image (below).
//
// Geometry: patches of side p = 2s at stride s (50 % overlap, as the paper's
// 64-px patches at stride 32) on a square canvas of side (g + 1) s, so the
// grid covers it exactly. The canvas is the smallest multiple of g + 1 not
// below the image side, at most 256 (the paper's 256 x 256 and 7x7 grid of
// 64-px patches):
//   28-32 px images, g = 7: canvas 32, 8-px patches at stride 4
//     (Fashion-MNIST's 28 px are resized to 32)
//   64 px: canvas 64, 16-px patches at stride 8; 96 px (STL-10): 96, 24 / 12;
//   224 px: 224, 56 / 28; 256 px and more: 256, 64 / 32.
// Patches must be at least 8 px (the convnet encoder's minimum, and less
// is hardly an image): a grid that gives smaller ones is refused with a
// sentence naming the largest grid the image allows.
//
// Augmentation, per image then per patch (every draw keyed by (seed, epoch,
// sample id): reproducible, independent of threads and batch):
// - the image: random resized crop to the canvas (area fraction
//   [crop_min_scale, 1]), horizontal flip with probability `flip`;
// - each patch: its position moved by up to `position_jitter` x p pixels
//   (at least 1) in each direction, clamped to the canvas (the paper's
//   random crop inside each patch); brightness and contrast jitter
//   (saturation too on colour images); normalised with the data set's
//   statistics (augment::default_normalize); on colour images "colour
//   dropping" (CPC v2): with probability `color_drop` two of the three
//   channels, chosen at random, are set to the channel mean (0 after
//   normalisation).
//   Per-patch augmentation keeps neighbouring patches from being matched by
//   low-level cues (same brightness, aligned pixels at the overlap).
//
// Evaluation (eval_transform): the whole image resized to the canvas (kept
// as it is when already that size), cut into the same grid at the nominal
// positions, normalised, no jitter: the encoder sees patches at the scale it
// was trained on, and an image's features are the mean of its g^2 patch
// features (method::embed), as CPC's linear evaluation pools the encoder's
// 7x7 grid of patch features (CPC v1 sec. 3.2; CPC v2's linear protocol).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/rng.hpp"
#include "../core/thread_pool.hpp"
#include "color.hpp"
#include "geometry.hpp"
#include "pipeline.hpp"
#include "presets.hpp"

namespace ssl::augment {

/// Sizes of a patch grid, in pixels of the canvas.
struct cpc_patch_geometry {
    std::size_t grid = 7;     ///< patches per side
    std::size_t canvas = 32;  ///< the square the image is brought to
    std::size_t patch = 8;    ///< patch side = 2 stride
    std::size_t stride = 4;   ///< canvas = (grid + 1) stride
    std::size_t jitter = 1;   ///< largest position jitter, pixels (training only)
    /// Top-left corner of patch (r, c) without jitter: (r stride, c stride).
    std::size_t origin(std::size_t index) const noexcept { return index * stride; }
};

/// Smallest patch side a grid may give.
inline constexpr std::size_t cpc_min_patch = 8;

/// The geometry for images of `size` pixels cut into `grid` x `grid`
/// patches (see the header comment); a grid the image is too small for is a
/// value_error naming the largest grid that fits.
inline cpc_patch_geometry cpc_geometry(std::size_t size, std::size_t grid, double position_jitter = 0.125) {
    require<value_error>(grid >= 2, "cpc_patches: a ", grid, "x", grid,
                         " grid has no row below another to predict; use a grid of at least 2x2 (the paper: 7x7)");
    require<value_error>(size >= 1, "cpc_patches: images of 0 px");
    require<value_error>(position_jitter >= 0 && position_jitter < 0.5,
                         "cpc_patches: position_jitter must be in [0, 0.5) of the patch side, got ", position_jitter);
    const std::size_t cells = grid + 1;
    const auto canvas_for = [&](std::size_t g) {
        const std::size_t c = g + 1, up = (size + c - 1) / c * c, cap = 256 / c * c;
        return std::max(c, std::min(up, cap));
    };
    cpc_patch_geometry q;
    q.grid = grid;
    q.canvas = canvas_for(grid);
    q.stride = q.canvas / cells;
    q.patch = 2 * q.stride;
    if (q.patch < cpc_min_patch) {
        std::size_t best = 0;  // the largest grid these images allow
        for (std::size_t g = 2; g < grid; ++g)
            if (2 * (canvas_for(g) / (g + 1)) >= cpc_min_patch) best = g;
        // the smallest image side that gives this grid: stride ceil(size / (g + 1)) >= 4
        const bool possible = cpc_min_patch / 2 * cells <= 256;
        const std::string fix =
            best ? ssl::detail::cat("use a grid of at most ", best, "x", best, " for these images",
                                    possible ? ssl::detail::cat(", or images of at least ", 3 * cells + 1, " px") : "")
                 : ssl::detail::cat("use images of at least ", 3 * cells + 1, " px");
        throw value_error(ssl::detail::cat("cpc_patches: images of ", size, " px are too small for a ", grid, "x", grid,
                                           " grid of half-overlapping patches: it gives ", q.patch, "-px patches (canvas ",
                                           q.canvas, ", stride ", q.stride, "), and patches need at least ",
                                           cpc_min_patch, " px; ", fix));
    }
    q.jitter = position_jitter > 0
                   ? std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(position_jitter * double(q.patch))))
                   : 0;
    return q;
}

struct cpc_patches_config {
    std::size_t size = 28;          ///< the images' side (chooses the canvas)
    std::size_t channels = 1;       ///< 1 or 3
    std::size_t grid = 7;           ///< patches per side (the paper: 7)
    double crop_min_scale = 0.6;    ///< the image's random resized crop, area fraction in (0, 1]
    double flip = 0.5;              ///< probability of the image's horizontal flip
    double position_jitter = 0.125; ///< per-patch position jitter, fraction of the patch side (>= 1 px when > 0)
    double jitter = 0.4;            ///< per-patch brightness / contrast (/ saturation) jitter strength; 0: none
    double color_drop = 1.0;        ///< colour images: probability of keeping one channel of a patch (CPC v2)
};

class cpc_patches {
public:
    using config_type = cpc_patches_config;
    static constexpr const char* name = "cpc_patches";

    explicit cpc_patches(const cpc_patches_config& c = {}) : cfg_(c), geo_(cpc_geometry(c.size, c.grid, c.position_jitter)) {
        require<value_error>(c.channels == 1 || c.channels == 3, "cpc_patches: channels must be 1 or 3, got ",
                             c.channels);
        require<value_error>(c.crop_min_scale > 0 && c.crop_min_scale <= 1,
                             "cpc_patches: crop_min_scale must be in (0, 1], got ", c.crop_min_scale);
        require<value_error>(c.flip >= 0 && c.flip <= 1, "cpc_patches: flip must be a probability, got ", c.flip);
        require<value_error>(c.jitter >= 0 && c.jitter < 1, "cpc_patches: jitter must be in [0, 1), got ", c.jitter);
        require<value_error>(c.color_drop >= 0 && c.color_drop <= 1,
                             "cpc_patches: color_drop must be a probability, got ", c.color_drop);
        const std::size_t G = geo_.canvas;
        crop_.add(random_resized_crop{.height = G, .width = G, .scale = {c.crop_min_scale, 1.0}});
        crop_.add(horizontal_flip{.p = c.flip});
        eval_.add(resize{.height = G, .width = G});
        color_ = color_jitter{.brightness = c.jitter, .contrast = c.jitter, .saturation = c.channels == 3 ? c.jitter : 0.0};
        norm_ = default_normalize(c.channels);
    }
    const cpc_patches_config& config() const noexcept { return cfg_; }
    const cpc_patch_geometry& geometry() const noexcept { return geo_; }
    std::size_t copies() const noexcept { return geo_.grid * geo_.grid; }
    /// Rows per image of eval_transform (method::embed averages them).
    std::size_t eval_copies() const noexcept { return copies(); }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        check_images(images, ids.size());
        const std::size_t n = images.dim(0), C = cfg_.channels, G = geo_.canvas, p = geo_.patch, g = geo_.grid;
        const tensor<float> canvas = crop_.apply(images, ids, seed, epoch, 0);  // (N, C, G, G)
        tensor<float> out({copies() * n, C, p, p});
        const std::size_t per_canvas = C * G * G, per_patch = C * p * p;
        parallel_for(n, [&](std::size_t i, std::size_t) {
            philox rng(seed, stream_id(0xC9C9A7C4ull, epoch, ids[i]));
            workspace ws;
            std::vector<float> raw(per_patch);
            const image_dims dims{C, p, p};
            const long J = static_cast<long>(geo_.jitter), hi = static_cast<long>(G - p);
            for (std::size_t r = 0; r < g; ++r)
                for (std::size_t c = 0; c < g; ++c) {
                    // drawn always: the stream does not depend on which are zero
                    const long dy = static_cast<long>(rng.below(2 * geo_.jitter + 1)) - J;
                    const long dx = static_cast<long>(rng.below(2 * geo_.jitter + 1)) - J;
                    const auto q = color_.draw(rng, dims);
                    const bool drop = rng.uniform() < cfg_.color_drop;
                    const std::size_t keep = static_cast<std::size_t>(rng.below(3));
                    const std::size_t oy = static_cast<std::size_t>(std::clamp(long(geo_.origin(r)) + dy, 0L, hi));
                    const std::size_t ox = static_cast<std::size_t>(std::clamp(long(geo_.origin(c)) + dx, 0L, hi));
                    float* dst = out.data() + ((r * g + c) * n + i) * per_patch;
                    cut(canvas.data() + i * per_canvas, oy, ox, cfg_.jitter > 0 ? raw.data() : dst);
                    if (cfg_.jitter > 0) color_.apply(const_image_ref{raw.data(), dims}, q, image_ref{dst, dims}, ws);
                    norm_.apply(const_image_ref{dst, dims}, {}, image_ref{dst, dims}, ws);
                    if (C == 3 && drop)
                        for (std::size_t ch = 0; ch < 3; ++ch)
                            if (ch != keep) std::fill_n(dst + ch * p * p, p * p, 0.0f);
                }
        });
        view_batch<float> vb;
        vb.views.push_back(std::move(out));
        vb.specs.push_back({.copies = copies(), .grid_rows = g, .grid_cols = g});
        return vb;
    }

    /// The whole image's patch grid, unaugmented (see the header comment):
    /// (g^2 N, C, p, p), row (r g + c) N + i.
    tensor<float> eval_transform(const tensor<float>& images) const {
        check_images(images, images.dim(0));
        const std::size_t n = images.dim(0), C = cfg_.channels, G = geo_.canvas, p = geo_.patch, g = geo_.grid;
        tensor<float> canvas;
        if (images.dim(2) == G && images.dim(3) == G) {
            canvas = images;
        } else {
            std::vector<std::size_t> ids(n);
            for (std::size_t i = 0; i < n; ++i) ids[i] = i;
            canvas = eval_.apply(images, ids, 0, 0, 0);
        }
        tensor<float> out({copies() * n, C, p, p});
        const std::size_t per_canvas = C * G * G, per_patch = C * p * p;
        parallel_for(n, [&](std::size_t i, std::size_t) {
            workspace ws;
            const image_dims dims{C, p, p};
            for (std::size_t r = 0; r < g; ++r)
                for (std::size_t c = 0; c < g; ++c) {
                    float* dst = out.data() + ((r * g + c) * n + i) * per_patch;
                    cut(canvas.data() + i * per_canvas, geo_.origin(r), geo_.origin(c), dst);
                    norm_.apply(const_image_ref{dst, dims}, {}, image_ref{dst, dims}, ws);
                }
        });
        return out;
    }

private:
    void check_images(const tensor<float>& images, std::size_t ids) const {
        check_rank(images, 4, name, "(N, C, H, W)");
        require<shape_error>(images.dim(1) == cfg_.channels && ids == images.dim(0), name, ": images of shape ",
                             images.shape().str(), " with ", ids, " ids, configured for ", cfg_.channels,
                             " channels");
        require<shape_error>(images.dim(2) > 0 && images.dim(3) > 0, name, ": empty images ", images.shape().str());
    }
    /// The p x p window at (oy, ox) of one canvas (C, G, G) into dst (C, p, p).
    void cut(const float* canvas, std::size_t oy, std::size_t ox, float* dst) const {
        const std::size_t C = cfg_.channels, G = geo_.canvas, p = geo_.patch;
        for (std::size_t ch = 0; ch < C; ++ch)
            for (std::size_t y = 0; y < p; ++y)
                std::copy_n(canvas + (ch * G + oy + y) * G + ox, p, dst + (ch * p + y) * p);
    }

    cpc_patches_config cfg_;
    cpc_patch_geometry geo_;
    pipeline crop_, eval_;
    color_jitter color_{};
    normalize norm_{};
};

}  // namespace ssl::augment
