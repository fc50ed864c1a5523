#pragma once
// Augmentation policies: what a method's views are. Each turns a batch of
// images (N, C, H, W) in [0, 1] into view_batch{views, pretext labels}
// (ssl::augmentation_policy concept) from the pipelines of presets.hpp, and gives
// the deterministic eval_transform the backbone sees at evaluation.
//   one_view          InstDisc, DeepCluster, SeLa, the instance classifier:
//                     one augmented view (SimCLR's pipeline) per image
//   two_views         SimCLR, MoCo: two views from one pipeline
//   asymmetric_views  BYOL: view 0 always blurred, view 1 sometimes solarized
//   rotations         RotNet: every image at 0/90/180/270 degrees, labels 0-3,
//                     stacked into one batch of 4N (so batch norm sees all
//                     four rotations together, as one network pass would)
#include <array>
#include <cstdint>
#include <span>

#include "../core/concepts.hpp"
#include "pipeline.hpp"
#include "presets.hpp"

namespace ssl::augment {

struct views_config {
    std::size_t size = 28;     ///< output height and width
    std::size_t channels = 1;  ///< 1 or 3
    /// Smallest area fraction of the random resized crop, in (0, 1]; 0: the
    /// recipe's (0.08, or 0.2 below 32 px; RotNet 0.5). The upper end stays 1.
    double crop_min_scale = 0;
};

namespace detail {
class policy_base {
public:
    using config_type = views_config;
    explicit policy_base(const views_config& c) : cfg_(c), eval_(eval_pipeline(c.size, c.channels)) {
        require(c.crop_min_scale >= 0 && c.crop_min_scale <= 1,
                "views_config: crop_min_scale must be in (0, 1] (or 0 for the recipe's), got ", c.crop_min_scale);
    }
    const views_config& config() const noexcept { return cfg_; }
    /// Resize/center-crop to size, normalize: deterministic.
    tensor<float> eval_transform(const tensor<float>& images) const {
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        return eval_.apply(images, ids, 0, 0, 0);
    }

protected:
    /// p with its random resized crop's scale starting at crop_min_scale
    /// when one is set.
    pipeline with_crop_scale(pipeline p) const {
        if (cfg_.crop_min_scale > 0)
            if (const auto i = p.index_of<random_resized_crop>()) {
                auto crop = *p.find<random_resized_crop>();
                crop.scale.lo = cfg_.crop_min_scale;
                p.replace(*i, crop);
            }
        return p;
    }
    multi_view with_crop_scale(const multi_view& mv) const {
        std::vector<pipeline> v;
        for (const auto& p : mv.views()) v.push_back(with_crop_scale(p));
        return multi_view(std::move(v));
    }

    views_config cfg_;
    pipeline eval_;
};
}  // namespace detail

class one_view : public detail::policy_base {
public:
    static constexpr const char* name = "one_view";
    explicit one_view(const views_config& c = {}) : policy_base(c), view_(with_crop_scale(simclr_pipeline(c.size, c.channels))) {}
    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        view_batch<float> vb;
        vb.views.push_back(view_.apply(images, ids, seed, epoch, 0));
        return vb;
    }
    pipeline& view() noexcept { return view_; }

private:
    pipeline view_;
};

class two_views : public detail::policy_base {
public:
    static constexpr const char* name = "two_views";
    explicit two_views(const views_config& c = {}) : policy_base(c), views_(with_crop_scale(simclr_views(c.size, c.channels))) {}
    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        return {views_.apply(images, ids, seed, epoch), {}};
    }
    multi_view& pipelines() noexcept { return views_; }

private:
    multi_view views_;
};

class asymmetric_views : public detail::policy_base {
public:
    static constexpr const char* name = "asymmetric_views";
    explicit asymmetric_views(const views_config& c = {}) : policy_base(c), views_(with_crop_scale(byol_pipelines(c.size, c.channels))) {}
    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        return {views_.apply(images, ids, seed, epoch), {}};
    }
    multi_view& pipelines() noexcept { return views_; }

private:
    multi_view views_;
};

class rotations : public detail::policy_base {
public:
    static constexpr const char* name = "rotations";
    explicit rotations(const views_config& c = {}) : policy_base(c) {
        // Same op positions in all four pipelines: the crop and flip drawn for
        // a sample are the same for its four rotations.
        for (int k = 0; k < 4; ++k) {
            pipeline p;
            p.add(random_resized_crop{.height = c.size, .width = c.size, .scale = {0.5, 1.0}});
            p.add(horizontal_flip{.p = 0.5});
            p.add(rotate90{.k = k});
            p.add(default_normalize(c.channels));
            rot_[static_cast<std::size_t>(k)] = with_crop_scale(std::move(p));
        }
    }
    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        require<shape_error>(cfg_.size > 0, "rotations: size must be positive");
        const std::size_t n = images.dim(0), per = cfg_.channels * cfg_.size * cfg_.size;
        tensor<float> all({4 * n, cfg_.channels, cfg_.size, cfg_.size});
        view_batch<float> vb;
        vb.labels.resize(4 * n);
        for (std::size_t k = 0; k < 4; ++k) {
            auto v = rot_[k].apply(images, ids, seed, epoch, 0);
            require<shape_error>(v.numel() == n * per, "rotations: view of shape ", v.shape().str(),
                                 " does not match the configured size ", cfg_.size, " and channels ", cfg_.channels);
            std::copy(v.begin(), v.end(), all.data() + k * n * per);
            std::fill(vb.labels.begin() + static_cast<std::ptrdiff_t>(k * n),
                      vb.labels.begin() + static_cast<std::ptrdiff_t>((k + 1) * n), static_cast<std::int64_t>(k));
        }
        vb.views.push_back(std::move(all));
        vb.specs.push_back({.copies = 4});  // row k * N + i: sample i rotated by k * 90 degrees
        return vb;
    }

private:
    std::array<pipeline, 4> rot_;
};

}  // namespace ssl::augment
