#include "common.hpp"

#include <ssl/colorization.hpp>

namespace cli {
namespace {
struct colorization_spec {
    static constexpr const char* name = "colorization";
    static constexpr const char* summary =
        "Colorization (Larsson 2017): from lightness, predict local hue / chroma histograms with a hypercolumn head";
    template <class B>
    using method = ssl::colorization<B>;

    std::optional<std::size_t> hidden, bins;
    std::optional<double> hue_weight;

    void add_options(method_options& o) {
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
        // crops at the data's size, the grid of dense_grid
        const std::size_t size = std::min(d.height(), d.width());
        const std::size_t grid = dense_grid(size);
        ssl::colorization_options c{.size = size, .grid = grid};
        c.hidden = hidden ? *hidden : 256;
        if (bins) c.bins = *bins;
        if (hue_weight) c.hue_weight = *hue_weight;
        return ssl::colorization_config<backbone_t>(backbone_options(o, d), c);
    }
};
}  // namespace
method_entry& colorization_entry() { return make_entry<colorization_spec>(); }
}  // namespace cli
