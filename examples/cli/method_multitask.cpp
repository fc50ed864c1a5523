#include "common.hpp"

#include <ssl/multitask.hpp>

namespace cli {
namespace {
struct multitask_spec {
    static constexpr const char* name = "multitask";
    static constexpr const char* summary =
        "Multi-task SSL (Doersch & Zisserman 2017): several pretexts on one trunk, a lasso over its blocks per task";
    template <class B>
    using method = ssl::multitask<B>;

    std::optional<std::string> tasks, lasso_taps;
    std::optional<double> l1;
    std::optional<bool> lasso;
    std::optional<std::size_t> permutations, copies, hidden, bins;
    std::optional<double> hue_weight;

    void add_options(method_options& o) {
        o.add("--tasks", tasks,
              "multitask: the pretexts, comma-separated, from rotation, jigsaw, exemplar, colorization (colour data "
              "only; every task then sees lightness); default rotation,jigsaw,exemplar");
        o.add("--lasso-l1", l1, "multitask: the lasso's L1 weight on each task's block mixture (default 1e-3)",
              CLI::Range(0.0, 1e6));
        o.add_flag("--no-lasso", lasso, false, "multitask: every task reads the trunk's last block (no mixture)");
        o.add("--lasso-taps", lasso_taps,
              "multitask: the same-shape block outputs the lasso mixes, comma-separated torchvision names (default: "
              "the blocks of the backbone's last stage, e.g. layer4.0,layer4.1)");
        o.add("--permutations", permutations, "jigsaw: P, the permutation classes (default 100; the paper: 100 or 1000)",
              CLI::Range(std::size_t{2}, std::size_t{362880}));
        o.add("--exemplar-copies", copies, "multitask: the exemplar task's augmented copies per image (default 4)",
              CLI::Range(std::size_t{2}, std::size_t{64}));
        o.add("--hypercolumn-hidden", hidden,
              "colorization: width of the hypercolumn head's fc layer (default 256; the paper: 1024)",
              CLI::Range(std::size_t{1}, std::size_t{65536}));
        o.add("--color-bins", bins, "colorization: hue and chroma bins (default 8, the authors' code; the ECCV paper: 32)",
              CLI::Range(std::size_t{2}, std::size_t{256}));
        o.add("--hue-weight", hue_weight, "colorization: lambda_H, the hue KL's weight (default 5, the paper's)",
              CLI::Range(0.0, 1e6));
    }
    // The classification pretexts' recipe (RotNet, Jigsaw): lr 0.1 per 256
    // images, weight decay 5e-4, cosine.
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        ssl::multitask_options m;
        if (tasks) m.tasks = ssl::pretext::split_task_list(*tasks);
        m.size = std::min(d.height(), d.width());
        m.channels = d.channels();
        if (lasso) m.lasso = *lasso;
        if (l1) m.l1 = *l1;
        if (lasso_taps) m.lasso_taps = ssl::pretext::split_list(*lasso_taps, "tap name in --lasso-taps");
        if (permutations) m.permutations = *permutations;
        if (copies) m.exemplar_copies = *copies;
        m.colorization.grid = dense_grid(m.size);
        m.colorization.hidden = hidden ? *hidden : 256;
        if (bins) m.colorization.bins = *bins;
        if (hue_weight) m.colorization.hue_weight = *hue_weight;
        const auto t = ssl::pretext::parse_tasks(m.tasks);
        if (ssl::pretext::has(t, ssl::pretext::task::colorization) && d.channels() != 3)
            throw ssl::value_error("--tasks: colorization needs colour images; --data has " +
                                   std::to_string(d.channels()) + " channel(s)");
        return ssl::multitask_config<backbone_t>(backbone_options(o, d), m);
    }
};
}  // namespace
method_entry& multitask_entry() { return make_entry<multitask_spec>(); }
}  // namespace cli
