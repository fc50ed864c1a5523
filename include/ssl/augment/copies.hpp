#pragma once
// `copies` augmented versions of every image stacked in one view (row
// r * N + i: copy r of sample i, spec.copies = copies): S4L-Exemplar's 8
// copies per image (Zhai et al. 2019: random crops, horizontal flips and
// colour augmentation), whose copies of one image are the
// positives of the triplet loss. Copy r draws its randomness as view r of the
// pipeline (seed, epoch, sample, r), so the copies of a sample differ and any
// run is reproducible.
//
// Choices:
//   pipeline   SimCLR's (presets.hpp: random resized crop, flip, colour
//              jitter, grayscale, blur above 32 px), its crop's smallest scale
//              settable as everywhere (crop_min_scale)
//   one view   all copies in one batch, so batch norm sees them together
#include <cstdint>
#include <span>
#include <vector>

#include "../core/concepts.hpp"
#include "pipeline.hpp"
#include "presets.hpp"

namespace ssl::augment {

struct copies_config {
    std::size_t size = 28;       ///< output height and width
    std::size_t channels = 1;    ///< 1 or 3
    std::size_t copies = 8;      ///< augmented versions per image (the paper: 8)
    double crop_min_scale = 0;   ///< smallest random-resized-crop area fraction; 0: the preset's
};

class augmented_copies {
public:
    static constexpr const char* name = "augmented_copies";
    using config_type = copies_config;
    explicit augmented_copies(const copies_config& c = {})
        : cfg_(c), view_(simclr_pipeline(c.size, c.channels)), eval_(eval_pipeline(c.size, c.channels)) {
        require(c.copies >= 1, "augmented_copies: copies must be at least 1, got ", c.copies);
        require(c.crop_min_scale >= 0 && c.crop_min_scale <= 1,
                "augmented_copies: crop_min_scale must be in (0, 1] (or 0 for the preset's), got ", c.crop_min_scale);
        if (c.crop_min_scale > 0)
            if (const auto i = view_.index_of<random_resized_crop>()) {
                auto crop = *view_.find<random_resized_crop>();
                crop.scale.lo = c.crop_min_scale;
                view_.replace(*i, crop);
            }
    }
    const copies_config& config() const noexcept { return cfg_; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        const std::size_t n = images.dim(0), per = cfg_.channels * cfg_.size * cfg_.size;
        tensor<float> all({cfg_.copies * n, cfg_.channels, cfg_.size, cfg_.size});
        for (std::size_t r = 0; r < cfg_.copies; ++r) {
            auto v = view_.apply(images, ids, seed, epoch, static_cast<std::uint32_t>(r));
            require<shape_error>(v.numel() == n * per, "augmented_copies: view of shape ", v.shape().str(),
                                 " does not match the configured size ", cfg_.size, " and channels ", cfg_.channels);
            std::copy(v.begin(), v.end(), all.data() + r * n * per);
        }
        view_batch<float> vb;
        vb.views.push_back(std::move(all));
        vb.specs.push_back({.copies = cfg_.copies});
        return vb;
    }
    /// Resize/center-crop to size, normalize: deterministic.
    tensor<float> eval_transform(const tensor<float>& images) const {
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        return eval_.apply(images, ids, 0, 0, 0);
    }

private:
    copies_config cfg_;
    pipeline view_;
    pipeline eval_;
};

}  // namespace ssl::augment
