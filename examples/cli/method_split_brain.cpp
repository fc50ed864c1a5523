#include "common.hpp"

#include <ssl/split_brain.hpp>

namespace cli {
namespace {
struct split_brain_spec {
    static constexpr const char* name = "split_brain";
    static constexpr const char* summary =
        "Split-brain autoencoder (Zhang 2017): in Lab, one half predicts ab bins from L, the other L bins from ab";
    template <class B>
    using method = ssl::split_brain<B>;

    std::optional<std::size_t> hidden, l_bins;

    void add_options(method_options& o) {
        o.add("--hypercolumn-hidden", hidden,
              "split_brain: width of each half's hypercolumn head's fc layer (default 256; the paper's heads are "
              "conv-ified fc layers)",
              CLI::Range(std::size_t{1}, std::size_t{65536}));
        o.add("--l-bins", l_bins, "split_brain: lightness bins the ab -> L half classifies into (default 100, the paper's)",
              CLI::Range(std::size_t{2}, std::size_t{1000}));
    }
    // The classification pretexts' recipe (RotNet, Jigsaw, colorization): lr
    // 0.1 per 256 images, weight decay 5e-4, cosine.
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        if (d.channels() != 3)
            throw ssl::value_error("--method split_brain: --data " + o.data + " has " + std::to_string(d.channels()) +
                                   "-channel (grey) images: they have no colour (a = b = 0), so there is nothing for "
                                   "either half to predict; train on colour images (a folder with --channels 3, "
                                   "cifar10:DIR, ...)");
        // crops at the data's size, the grid of dense_grid
        const std::size_t size = std::min(d.height(), d.width());
        const std::size_t grid = dense_grid(size);
        ssl::split_brain_options c{.size = size, .grid = grid};
        c.hidden = hidden ? *hidden : 256;
        if (l_bins) c.l_bins = *l_bins;
        return ssl::split_brain_config<backbone_t>(backbone_options(o, d), c);
    }
};
}  // namespace
method_entry& split_brain_entry() { return make_entry<split_brain_spec>(); }
}  // namespace cli
