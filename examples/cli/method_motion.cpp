#include "common.hpp"

#include <ssl/motion.hpp>

#include <algorithm>
#include <cstdio>

namespace cli {
namespace {
struct motion_spec {
    static constexpr const char* name = "motion";
    static constexpr const char* summary =
        "Watching objects move (Pathak 2017): segment moving objects in clips, then predict the masks from one frame";
    template <class B>
    using method = ssl::motion<B>;

    std::optional<std::size_t> hidden, search;
    std::optional<double> threshold, min_area, pos_weight;
    std::optional<std::string> masks, truth;

    void add_options(method_options& o) {
        o.add("--hypercolumn-hidden", hidden,
              "motion: width of the hypercolumn head's fc layer (default 256)",
              CLI::Range(std::size_t{1}, std::size_t{65536}));
        o.add("--motion-threshold", threshold,
              "motion: residual motion (pixels per frame, after the camera's) that marks a pixel moving (default 0.75)",
              CLI::Range(0.01, 100.0));
        o.add("--flow-search", search, "motion: block matching searches displacements up to N pixels (default 3)",
              CLI::Range(std::size_t{1}, std::size_t{32}));
        o.add("--min-area", min_area,
              "motion: moving regions smaller than this fraction of the frame are dropped (default 0.02)",
              CLI::Range(0.0, 0.99));
        o.add("--mask-pos-weight", pos_weight, "motion: weight of the foreground term of the cross entropy (default 1)",
              CLI::Range(1e-3, 1e3));
        o.add("--motion-truth", truth,
              "motion: a clip folder of the true masks (as `ssl clips --truth` writes): the pseudo-masks' IoU "
              "against it is printed; the training never sees it unless --motion-masks says so",
              CLI::ExistingDirectory);
        o.add("--motion-masks", masks,
              "motion: what the network learns to predict: pseudo (the segmentation's, default), true or shuffled "
              "(--motion-truth's masks, in order or shuffled over frames: the bounds of bench/README.md)",
              CLI::IsMember({"pseudo", "true", "shuffled"}));
    }
    // The classification pretexts' recipe (RotNet, colorization): lr 0.1 per
    // 256 images, weight decay 5e-4, cosine.
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        if (masks && *masks != "pseudo" && !truth)
            throw ssl::value_error("--motion-masks " + *masks + " needs --motion-truth DIR (the true masks)");
        // crops at the data's size, the grid of dense_grid
        const std::size_t size = std::min(d.height(), d.width());
        const std::size_t grid = dense_grid(size);
        ssl::motion_options m{.size = size, .grid = grid};
        if (hidden) m.hidden = *hidden;
        if (pos_weight) m.pos_weight = *pos_weight;
        auto c = ssl::motion_config<backbone_t>(backbone_options(o, d), m);
        if (threshold) c.augment.motion_threshold = *threshold;
        if (search) c.augment.flow_search = *search;
        if (min_area) c.augment.min_area = *min_area;
        return c;
    }
    // The frames with their masks appended (pseudo-masks by default): the set
    // is rebuilt from the config on --resume, the same masks every time.
    ssl::data::image_dataset training_set(const typename method<backbone_t>::config& c,
                                          const ssl::data::image_dataset& frames) const {
        const auto ranges = ssl::data::clip_ranges(frames, "--method motion");
        std::vector<ssl::tensor<std::uint8_t>> true_masks;
        if (truth) {
            const auto t = ssl::data::load_clip_folder(
                *truth, {.image = {.height = frames.height(), .width = frames.width(), .channels = 1}});
            if (t.size() < frames.size() || t.num_classes < ranges.size())
                throw ssl::value_error("--motion-truth " + *truth + ": " + std::to_string(t.size()) + " masks in " +
                                       std::to_string(t.num_classes) + " clips, --data has " +
                                       std::to_string(frames.size()) + " frames in " + std::to_string(ranges.size()) +
                                       " clips (the truth must have the data's layout)");
            const auto tr = ssl::data::clip_ranges(t, "--motion-truth");
            for (std::size_t c2 = 0; c2 < ranges.size(); ++c2)
                if (tr[c2].second - tr[c2].first != ranges[c2].second - ranges[c2].first &&
                    !(c2 + 1 == ranges.size() && tr[c2].second - tr[c2].first > ranges[c2].second - ranges[c2].first))
                    throw ssl::value_error("--motion-truth " + *truth + ": clip '" + t.class_names[c2] + "' has " +
                                           std::to_string(tr[c2].second - tr[c2].first) + " masks, --data's clip '" +
                                           frames.class_names[c2] + "' " +
                                           std::to_string(ranges[c2].second - ranges[c2].first) + " frames");
            const std::size_t hw = frames.height() * frames.width();
            for (std::size_t i = 0; i < frames.size(); ++i) {
                ssl::tensor<std::uint8_t> m({frames.height(), frames.width()});
                for (std::size_t k = 0; k < hw; ++k) m[k] = t.images[i * hw + k] > 127;
                true_masks.push_back(std::move(m));
            }
        }
        const std::string mode = masks ? *masks : "pseudo";
        ssl::motion_masks_report rep;
        if (mode == "pseudo") {
            auto set = ssl::motion_training_set(frames, ssl::segment_options_of(c.augment), &rep);
            std::string iou;
            if (truth) {
                std::vector<ssl::tensor<std::uint8_t>> pseudo;
                const std::size_t C = frames.channels(), hw = frames.height() * frames.width();
                for (std::size_t i = 0; i < set.size(); ++i) {
                    ssl::tensor<std::uint8_t> m({frames.height(), frames.width()});
                    for (std::size_t k = 0; k < hw; ++k) m[k] = set.images[(i * (C + 1) + C) * hw + k] != 0;
                    pseudo.push_back(std::move(m));
                }
                char b[96];
                std::snprintf(b, sizeof b, "; IoU against --motion-truth: %.3f", ssl::video::mask_iou(pseudo, true_masks));
                iou = b;
            }
            std::printf("motion: pseudo-masks of %zu clips (%zu frames): %.1f %% of the pixels moving%s\n", rep.clips,
                        rep.frames, 100.0 * rep.foreground, iou.c_str());
            return set;
        }
        if (mode == "shuffled") {  // the masks of other frames: a bound with the right statistics and no information
            ssl::philox g(c.backbone.seed, 0x5348);
            for (std::size_t i = true_masks.size(); i > 1; --i) std::swap(true_masks[i - 1], true_masks[g.below(i)]);
        }
        auto set = ssl::motion_training_set(frames, {}, &rep, &true_masks);
        std::printf("motion: training on the %strue masks of %zu clips (%zu frames, %.1f %% of the pixels moving)\n",
                    mode == "true" ? "" : "shuffled ", rep.clips, rep.frames, 100.0 * rep.foreground);
        return set;
    }
};
}  // namespace
method_entry& motion_entry() { return make_entry<motion_spec>(); }
}  // namespace cli
