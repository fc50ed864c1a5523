#include "common.hpp"

#include <ssl/moco.hpp>

namespace cli {
namespace {
struct moco_spec {
    static constexpr const char* name = "moco";
    static constexpr const char* summary = "MoCo v2: EMA key encoder, queue of negatives, InfoNCE";
    template <class B>
    using method = ssl::moco_v2<B>;

    std::optional<double> temperature;
    std::optional<std::size_t> queue;
    std::optional<bool> symmetric;

    void add_options(method_options& o) {
        o.add("--temperature", temperature, "InfoNCE temperature (default 0.1)", positive_number());
        o.add("--queue", queue, "queue length K (default 4096)", positive_number());
        auto* sym = o.add_flag("--symmetric", symmetric, true,
                               "both views as queries against the other's key, losses summed (the default)");
        auto* asym = o.add_flag("--asymmetric", symmetric, false, "view 0 as the query only, as in the MoCo v2 paper");
        sym->excludes(asym);
    }
    // The paper's SGD settings: weight decay 1e-4, cosine schedule. The lr
    // is the small-run recipe's 0.06 per 256 images (MoCo's CIFAR-10 demo,
    // whose K, m, tau and symmetric loss moco_v2_config(small) takes); the
    // paper's is 0.03.
    recipe defaults() const { return {.base_lr = 0.06, .weight_decay = 1e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        auto c = ssl::moco_v2_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), true);
        if (temperature) c.loss.temperature = *temperature;
        if (queue) c.target.size = *queue;
        if (symmetric) c.loss.symmetric = c.target.symmetric = *symmetric;
        return c;
    }
};
}  // namespace
method_entry& moco_entry() { return make_entry<moco_spec>(); }
}  // namespace cli
