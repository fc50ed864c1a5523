#include "common.hpp"

#include <ssl/cpc.hpp>

namespace cli {
namespace {
struct cpc_spec {
    static constexpr const char* name = "cpc";
    static constexpr const char* summary =
        "CPC v2 (Henaff 2019): a grid of patches, a masked context network predicts the features of patches K rows "
        "below, InfoNCE against every patch of the batch";
    template <class B>
    using method = ssl::cpc<B>;

    std::optional<std::size_t> grid, steps, layers;
    std::optional<double> temperature;

    void add_options(method_options& o) {
        o.add("--patch-grid", grid,
              "cpc: g, the images are cut into g x g half-overlapping patches (default 7, the paper's; 28-32 px "
              "images: 8-px patches at stride 4 on a 32-px canvas)",
              CLI::Range(std::size_t{2}, std::size_t{63}));
        o.add("--prediction-steps", steps, "cpc: K, predict the patches 1 .. K rows below (default min(3, g - 1))",
              CLI::Range(std::size_t{1}, std::size_t{62}));
        o.add("--context-layers", layers, "cpc: masked 3x3 convolutions of the context network (default 3)",
              CLI::Range(std::size_t{1}, std::size_t{64}));
        o.add("--temperature", temperature,
              "cpc: divides the prediction . feature scores (default 1, the paper's plain dot products)",
              positive_number());
    }
    // CPC v2 trains with Adam; measured here (bench/README.md, CPC): Adam lr
    // 1e-3 (= 4e-3 x 64/256), no weight decay, batch 64 beats SGD's recipe.
    recipe defaults() const { return {.base_lr = 4e-3, .weight_decay = 0, .optimizer = "adam", .batch = 64}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        ssl::any_backbone_options b = backbone_options(o, d);
        // the encoder runs on patches, without batch statistics (cpc.hpp)
        if (!o.was_given("--backbone")) b.arch = "convnet-ln";
        {
            backbone_t probe(b);
            const std::string bn = ssl::batch_norm_buffer(probe);
            if (!bn.empty())
                throw ssl::value_error(
                    "--method cpc: --backbone " + b.arch + " normalises with batch statistics ('" + bn +
                    "'): batch norm shares statistics between the patches of an image, which CPC's prediction task "
                    "can exploit (CPC v2 replaces it by layer norm); use --backbone convnet-ln (cpc's default)");
        }
        ssl::cpc_options c;
        if (grid) c.grid = *grid;
        if (steps) c.steps = *steps;
        if (layers) c.context_layers = *layers;
        if (temperature) c.temperature = *temperature;
        return ssl::cpc_config<backbone_t>(b, d.height(), d.channels(), c);
    }
};
}  // namespace
method_entry& cpc_entry() { return make_entry<cpc_spec>(); }
}  // namespace cli
