#pragma once
// Multi-task views (Doersch & Zisserman, "Multi-task Self-Supervised Visual
// Learning", ICCV 2017): every chosen task's own views of the same images in
// one batch, so one step trains all tasks on one trunk.
//
//   make_views(images) = the views of each task in slot order
//                        (multitask/tasks.hpp), each with spec.branch = its
//                        slot; labels: rotation's 4N, then jigsaw's N (the
//                        other tasks have none); soft_targets: colorization's
//   eval_transform     = resize + centre crop to `size`, normalised
//
// Harmonization (the paper's sec. 3.2): with colorization among the tasks the
// network may not see colour, so every task reads lightness: the other tasks'
// input images become gray L*/100 (one channel) before their own pipelines,
// and colorization's view (L*/100 - 0.5) is re-scaled to the same gray
// normalisation (jigsaw's tiles are then standardised tile by tile, as in
// jigsaw alone); the backbone takes 1 channel and evaluation feeds it L*/100.
//
// Contract: images (N, channels, size, size) in [0, 1]; colorization needs
// channels = 3. Row rule as everywhere: row r * N + i of a view is copy r of
// sample i.
//
// Choices:
//   tasks' pipelines  each task's own (augment::rotations, jigsaw_tiles,
//                     augmented_copies, colorization_views), configured apart
//   randomness        task t draws with seed + (t + 1) * 0x9E3779B97F4A7C15:
//                     the tasks' crops of one image are independent
//   evaluation        eval_transform above for every task set (jigsaw's
//                     eval_tiles does not apply here)
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../multitask/tasks.hpp"
#include "colorization.hpp"
#include "copies.hpp"
#include "jigsaw.hpp"
#include "policies.hpp"
#include "presets.hpp"

namespace ssl::augment {

struct multitask_views_config {
    std::vector<std::string> tasks{"rotation", "jigsaw", "exemplar"};
    std::size_t size = 28;     ///< the images' side; rotation, exemplar and evaluation crop to it
    std::size_t channels = 1;  ///< the images' channels (1 or 3)
    views_config rotation{};
    jigsaw_config jigsaw{};
    copies_config exemplar{.copies = 4};
    colorization_views_config colorization{};
};

class multitask_views {
public:
    static constexpr const char* name = "multitask_views";
    using config_type = multitask_views_config;

    explicit multitask_views(const config_type& c = {}) : cfg_(c), tasks_(pretext::parse_tasks(c.tasks)) {
        require<value_error>(c.channels == 1 || c.channels == 3, "multitask_views: channels must be 1 or 3, got ",
                             c.channels);
        harmonize_ = pretext::has(tasks_, pretext::task::colorization);
        require<value_error>(!harmonize_ || c.channels == 3, "multitask_views: the colorization task needs colour "
                             "images (3 channels); these have ", c.channels);
        const std::size_t in = input_channels();
        auto check = [&](std::size_t got, const char* what) {
            require<value_error>(got == in, "multitask_views: the ", what, " config is for ", got,
                                 "-channel input, the tasks see ", in,
                                 harmonize_ ? " (lightness: colorization is a task)" : "");
        };
        for (pretext::task t : tasks_) switch (t) {
                case pretext::task::rotation: check(c.rotation.channels, "rotation"); rotation_.emplace(c.rotation); break;
                case pretext::task::jigsaw: check(c.jigsaw.channels, "jigsaw"); jigsaw_.emplace(c.jigsaw); break;
                case pretext::task::exemplar:
                    check(c.exemplar.channels, "exemplar");
                    require<value_error>(c.exemplar.copies >= 2, "multitask_views: the exemplar task needs at least "
                                         "2 copies per image (the triplet's positives), got ", c.exemplar.copies);
                    exemplar_.emplace(c.exemplar);
                    break;
                case pretext::task::colorization: colorization_.emplace(c.colorization); break;
            }
        eval_ = eval_pipeline(c.size, in);
    }
    const config_type& config() const noexcept { return cfg_; }
    const std::vector<pretext::task>& tasks() const noexcept { return tasks_; }
    /// Channels the backbone sees: 1 when harmonized (colorization is a task).
    std::size_t input_channels() const noexcept { return harmonize_ ? 1 : cfg_.channels; }
    bool harmonized() const noexcept { return harmonize_; }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        require<shape_error>(images.rank() == 4 && images.dim(1) == cfg_.channels, "multitask_views: images of shape ",
                             images.shape().str(), ", configured for ", cfg_.channels, " channels");
        const tensor<float> in = harmonize_ ? gray(images) : images;
        view_batch<float> vb;
        for (pretext::task t : tasks_) {
            const std::uint64_t s = seed + (pretext::slot(t) + 1) * 0x9E3779B97F4A7C15ull;
            view_batch<float> part;
            switch (t) {
                case pretext::task::rotation: part = rotation_->make_views(in, ids, s, epoch); break;
                case pretext::task::jigsaw: part = jigsaw_->make_views(in, ids, s, epoch); break;
                case pretext::task::exemplar: part = exemplar_->make_views(in, ids, s, epoch); break;
                case pretext::task::colorization:
                    part = colorization_->make_views(images, ids, s, epoch);
                    rescale_lightness(part.views.at(0));
                    vb.soft_targets = std::move(part.soft_targets);
                    break;
            }
            for (std::size_t v = 0; v < part.views.size(); ++v) {
                view_spec spec = part.spec(v);
                spec.branch = pretext::slot(t);
                vb.views.push_back(std::move(part.views[v]));
                vb.specs.push_back(spec);
            }
            vb.labels.insert(vb.labels.end(), part.labels.begin(), part.labels.end());
        }
        return vb;
    }

    /// Resize + centre crop to `size`, normalised (lightness when harmonized).
    tensor<float> eval_transform(const tensor<float>& images) const {
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        return eval_.apply(harmonize_ ? gray(images) : images, ids, 0, 0, 0);
    }

private:
    /// sRGB (N, 3, H, W) -> L*/100 (N, 1, H, W) in [0, 1].
    static tensor<float> gray(const tensor<float>& rgb) {
        tensor<float> l = colorization_views::lightness(rgb);
        for (auto& v : l) v = std::clamp(v + 0.5f, 0.0f, 1.0f);
        return l;
    }
    /// Colorization's L*/100 - 0.5 -> the gray normalisation the other tasks use.
    static void rescale_lightness(tensor<float>& v) {
        const normalize n = default_normalize(1);
        const float m = static_cast<float>(n.mean[0]), s = static_cast<float>(n.stddev[0]);
        for (auto& x : v) x = (x + 0.5f - m) / s;
    }

    config_type cfg_;
    std::vector<pretext::task> tasks_;
    bool harmonize_ = false;
    std::optional<rotations> rotation_;
    std::optional<jigsaw_tiles> jigsaw_;
    std::optional<augmented_copies> exemplar_;
    std::optional<colorization_views> colorization_;
    pipeline eval_;
};

}  // namespace ssl::augment
