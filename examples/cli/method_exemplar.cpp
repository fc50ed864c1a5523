#include "common.hpp"

#include <ssl/exemplar.hpp>

namespace cli {
namespace {
struct exemplar_spec {
    static constexpr const char* name = "exemplar";
    static constexpr const char* summary =
        "Exemplar CNN: N seed patches are N classes, each shown under random transformations";
    template <class B>
    using method = ssl::exemplar<B>;

    std::optional<std::size_t> classes, patch_size;
    std::optional<double> temperature;

    void add_options(method_options& o) {
        o.add("--surrogate-classes", classes,
              "exemplar: N, the seed patches (one surrogate class each; default min(8000, images/4))",
              CLI::Range(std::size_t{2}, std::size_t{1} << 26));
        o.add("--patch-size", patch_size,
              "exemplar: the seed patch side p, the network's input (default 16 up to 48-px images, else a third of "
              "the side: the paper's 32 of 96)",
              CLI::Range(std::size_t{4}, std::size_t{4096}));
        o.add("--temperature", temperature, "exemplar: cosine-softmax temperature (default 0.15)", CLI::PositiveNumber);
    }
    // lr 0.1 per 256 patches, weight decay 5e-4, cosine: the instance
    // classifier's recipe (the same N-way cosine softmax).
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        const std::size_t side = std::min(d.height(), d.width());
        const std::size_t p = patch_size ? *patch_size : side <= 48 ? std::min<std::size_t>(16, side) : side / 3;
        if (p > side)
            throw ssl::value_error("--patch-size " + std::to_string(p) + " is larger than the " +
                                   std::to_string(d.height()) + "x" + std::to_string(d.width()) + " images");
        const std::size_t n = classes ? *classes : std::max<std::size_t>(2, std::min<std::size_t>(8000, instances / 4));
        auto c = ssl::exemplar_config<backbone_t>(backbone_options(o, d), p, d.channels(), n);
        if (temperature) c.loss.ce.temperature = *temperature;
        return c;
    }
    // The seed patches, from the config alone (p, N and the seed): --resume
    // and every epoch see the same surrogate classes.
    ssl::data::image_dataset training_set(const typename method<backbone_t>::config& c,
                                          const ssl::data::image_dataset& images) const {
        return ssl::data::exemplar_patches(
            images, {.count = c.loss.instances, .patch_size = c.augment.size, .seed = c.backbone.seed});
    }
};
}  // namespace
method_entry& exemplar_entry() { return make_entry<exemplar_spec>(); }
}  // namespace cli
