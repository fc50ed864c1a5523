#include "common.hpp"

#include <ssl/sela.hpp>

#include <algorithm>

namespace cli {
namespace {
struct sela_spec {
    static constexpr const char* name = "sela";
    static constexpr const char* summary = "SeLa: Sinkhorn-Knopp self-labelling, several heads";
    static constexpr double base_lr = 0.05;
    // Short runs: a constant lr after warm-up (the reference keeps its lr
    // flat until late step decays) and two label optimisations per epoch
    // instead of the CIFAR recipe's one (for runs up to 10 epochs). Measured at 5 epochs on
    // Fashion-MNIST (bench/README.md; random init 76.57 / 79.99 kNN /
    // linear): cosine, 5 updates 77.77 / 81.30; constant, 5 updates
    // 77.99 / 81.81; constant, 10 updates 78.55 / 82.12.
    static constexpr const char* schedule = "constant";
    template <class B>
    using method = ssl::sela<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::sela_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (o.clusters > 0) c.head.classes = o.clusters;
        // two per epoch up to 10 epochs (20 updates), then the recipe's one
        // per epoch (each is a forward pass over the data set, ~1/3 epoch)
        c.target.updates = o.label_updates > 0 ? o.label_updates : std::max(2 * std::min<std::size_t>(o.epochs, 10), o.epochs);
        return c;
    }
};
}  // namespace
extern const method_entry sela_entry = make_entry<sela_spec>();
}  // namespace cli
