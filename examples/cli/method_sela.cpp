#include "common.hpp"

#include <ssl/sela.hpp>

#include <algorithm>

namespace cli {
namespace {
/// SeLa's two reference recipes (github.com/yukimasano/self-label): the
/// Sinkhorn-Knopp lambda, its stopping rule (the marginal error at which it
/// stops) and the SGD weight decay.
struct sela_preset {
    double lambda, tolerance, weight_decay;
};
constexpr sela_preset sela_imagenet{.lambda = 25, .tolerance = 0.1, .weight_decay = 1e-5};  // main.py
constexpr sela_preset sela_cifar{.lambda = 10, .tolerance = 1e-2, .weight_decay = 5e-4};    // cifar.py

struct sela_spec {
    static constexpr const char* name = "sela";
    static constexpr const char* summary = "SeLa: Sinkhorn-Knopp self-labelling, several heads";
    template <class B>
    using method = ssl::sela<B>;

    std::optional<std::size_t> clusters, label_updates;
    std::optional<std::string> preset;

    void add_options(method_options& o) {
        o.add("--clusters", clusters, "classes per head (default 128)", positive_number());
        o.add("--label-updates", label_updates,
              "label optimisations over the run, quadratically spaced (default 2 per epoch up to 20, or 1 per epoch "
              "if more)",
              positive_number());
        o.add("--sela-preset", preset,
              "the reference's recipe: imagenet (the default; Sinkhorn lambda 25, stop at marginal error 0.1, weight "
              "decay 1e-5) or cifar (lambda 10, error 1e-2, weight decay 5e-4)",
              CLI::IsMember({"imagenet", "cifar"}));
    }
    const sela_preset& chosen() const { return preset == "cifar" ? sela_cifar : sela_imagenet; }
    // Short runs: a constant lr after warm-up (the reference keeps its lr
    // flat until late step decays) and two label optimisations per epoch
    // instead of the CIFAR recipe's one (for runs up to 10 epochs). Measured at 5 epochs on
    // Fashion-MNIST (bench/README.md, weight decay 5e-4 then; random init
    // 76.57 / 79.99 kNN / linear): cosine, 5 updates 77.77 / 81.30; constant,
    // 5 updates 77.99 / 81.81; constant, 10 updates 78.55 / 82.12.
    recipe defaults() const { return {.base_lr = 0.05, .weight_decay = chosen().weight_decay, .schedule = "constant"}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        auto c = ssl::sela_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (clusters) c.head.classes = *clusters;
        c.target.lambda = chosen().lambda;
        c.target.tolerance = chosen().tolerance;
        // two per epoch up to 10 epochs (20 updates), then the recipe's one
        // per epoch (each is a forward pass over the data set, ~1/3 epoch)
        c.target.updates = label_updates ? *label_updates : std::max(2 * std::min<std::size_t>(o.epochs, 10), o.epochs);
        return c;
    }
};
}  // namespace
method_entry& sela_entry() { return make_entry<sela_spec>(); }
}  // namespace cli
