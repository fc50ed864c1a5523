#include "common.hpp"

#include <ssl/jigsaw.hpp>

namespace cli {
namespace {
struct jigsaw_spec {
    static constexpr const char* name = "jigsaw";
    static constexpr const char* summary = "Jigsaw (CFN): classify which of P permutations shuffled 9 tiles";
    template <class B>
    using method = ssl::jigsaw<B>;

    std::optional<std::size_t> permutations;
    std::optional<bool> eval_tiles;

    void add_options(method_options& o) {
        o.add("--permutations", permutations, "jigsaw: P, the permutation classes (default 100; the paper: 100 or 1000)",
              CLI::Range(std::size_t{2}, std::size_t{362880}));
        o.add_flag("--eval-tiles", eval_tiles, true,
                   "jigsaw: evaluate an image as its 9 unshuffled tiles, features averaged (what the network trained "
                   "on), instead of the whole image resized to the grid");
    }
    // RotNet's recipe (another classification pretext): lr 0.1 per 256
    // images, weight decay 5e-4, cosine.
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        auto c = ssl::jigsaw_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(),
                                                permutations ? *permutations : std::size_t{100});
        c.augment.eval_tiles = eval_tiles.value_or(false);
        return c;
    }
};
}  // namespace
method_entry& jigsaw_entry() { return make_entry<jigsaw_spec>(); }
}  // namespace cli
