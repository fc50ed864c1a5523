#include "common.hpp"

#include <ssl/pirl.hpp>

namespace cli {
namespace {
struct pirl_spec {
    static constexpr const char* name = "pirl";
    static constexpr const char* summary =
        "PIRL: the image and its jigsaw tiles agree with the image's memory (NCE against a memory bank)";
    template <class B>
    using method = ssl::pirl<B>;

    std::optional<double> temperature, lambda, bank_momentum;
    std::optional<std::size_t> negatives, permutations;

    void add_options(method_options& o) {
        o.add("--temperature", temperature, "pirl: temperature (default 0.1 up to 32 px, else 0.07)",
              CLI::PositiveNumber);
        o.add("--pirl-lambda", lambda, "pirl: weight of the tiles' NCE term, in [0, 1] (default 0.5)",
              CLI::Range(0.0, 1.0));
        o.add("--bank-momentum", bank_momentum, "pirl: memory bank momentum, in [0, 1) (default 0.5)",
              CLI::Range(0.0, 0.999999));
        o.add("--negatives", negatives, "pirl: noise memories per image (default min(4096, N/4))",
              CLI::Range(std::size_t{1}, std::size_t{1} << 20));
        o.add("--permutations", permutations, "pirl: permutations the tiles are shuffled by (default 1000)",
              CLI::Range(std::size_t{2}, std::size_t{362880}));
    }
    // The paper's optimiser: SGD, weight decay 1e-4; InstDisc's lr (the same
    // memory-bank NCE) at small batches.
    recipe defaults() const { return {.base_lr = 0.03, .weight_decay = 1e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        auto c = ssl::pirl_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (temperature) c.loss.temperature = *temperature;
        if (lambda) c.loss.lambda = *lambda;
        if (bank_momentum) c.target.momentum = *bank_momentum;
        if (negatives) {
            if (*negatives >= instances)
                throw ssl::value_error("--negatives " + std::to_string(*negatives) + " must be below the " +
                                       std::to_string(instances) + " training images");
            c.target.negatives = *negatives;
        }
        if (permutations) c.augment.tiles.permutations = *permutations;
        return c;
    }
};
}  // namespace
method_entry& pirl_entry() { return make_entry<pirl_spec>(); }
}  // namespace cli
