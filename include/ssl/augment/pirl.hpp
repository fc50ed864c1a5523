#pragma once
// The views of PIRL (Misra & van der Maaten, "Self-Supervised Learning of
// Pretext-Invariant Representations", CVPR 2020, sec. 3 and 4.1): an image I
// and its jigsaw transform I^t, nine tiles of the image shuffled.
//
// Contract of pirl_views::make_views (N images, ids, seed, epoch):
//   view 0  (N, C, size, size)  I: the image through one_view's pipeline
//                               (SimCLR's), spec {copies 1, branch 0}
//   view 1  (9 N, C, t, t)      I^t: jigsaw_tiles' tiles, row r * N + i the
//                               tile in slot r of sample i, spec {copies 9,
//                               branch 1, grid 3x3}
//   no labels: PIRL asks for invariance to the permutation, not for it.
// eval_transform is the image's (one_view's). Every draw is keyed by (seed,
// epoch, sample id), as both parts are.
//
// Choices:
// - The parts are one_view and jigsaw_tiles themselves, held with their
//   configs: the image and the tiles are made exactly as InstDisc's view and
//   the jigsaw puzzle's tiles are.
// - The tiles draw from stream_id(tag, seed), not the step's seed: both parts
//   key their first op by (seed, epoch, sample, view 0, op 0), so one seed
//   would give the image's crop and the tiles' square crop the same random
//   numbers; with the derived seed the two crops are independent draws.
// - The tiles are shuffled by a permutation of jigsaw_tiles' maximal-Hamming
//   set; pirl_config takes the jigsaw paper's largest, P = 1000, to come near
//   PIRL's uniform shuffle over all 9! orders (the set takes a few seconds to
//   build, once per process).
#include <cstdint>
#include <span>

#include "../core/concepts.hpp"
#include "../core/rng.hpp"
#include "jigsaw.hpp"
#include "policies.hpp"

namespace ssl::augment {

struct pirl_views_config {
    views_config image{};  ///< I: one_view's settings (size, channels, crop scale)
    jigsaw_config tiles{};  ///< I^t: jigsaw_tiles' settings (its size and channels must be the image's)
};

class pirl_views {
public:
    using config_type = pirl_views_config;
    static constexpr const char* name = "pirl_views";
    static constexpr std::uint64_t tile_seed_tag = 0x919E7115ull;

    explicit pirl_views(const pirl_views_config& c = {}) : cfg_(checked(c)), image_(c.image), tiles_(c.tiles) {}
    const pirl_views_config& config() const noexcept { return cfg_; }
    const one_view& image() const noexcept { return image_; }
    const jigsaw_tiles& tiles() const noexcept { return tiles_; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        view_batch<float> vb = image_.make_views(images, ids, seed, epoch);
        view_batch<float> t = tiles_.make_views(images, ids, stream_id(tile_seed_tag, seed), epoch);
        require<shape_error>(vb.views.size() == 1 && t.views.size() == 1,
                             "pirl_views: expected one image view and one tile view");
        vb.specs = {view_spec{.copies = 1, .branch = 0}, t.spec(0)};
        vb.specs[1].branch = 1;
        vb.views.push_back(std::move(t.views[0]));
        return vb;
    }

    /// The image as the backbone sees it at evaluation (one_view's).
    tensor<float> eval_transform(const tensor<float>& images) const { return image_.eval_transform(images); }

private:
    /// Refuses image and tile settings that disagree, before the parts are built.
    static const pirl_views_config& checked(const pirl_views_config& c) {
        require<value_error>(c.image.size == c.tiles.size && c.image.channels == c.tiles.channels,
                             "pirl_views: the image is ", c.image.size, " px with ", c.image.channels,
                             " channels but the tiles are configured for ", c.tiles.size, " px with ",
                             c.tiles.channels, " (set both from the data set)");
        return c;
    }

    pirl_views_config cfg_;
    one_view image_;
    jigsaw_tiles tiles_;
};

}  // namespace ssl::augment
