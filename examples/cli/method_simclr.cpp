#include "common.hpp"

#include <ssl/simclr.hpp>

namespace cli {
namespace {
struct simclr_spec {
    static constexpr const char* name = "simclr";
    static constexpr const char* summary = "SimCLR: two views, MLP projector, NT-Xent";
    template <class B>
    using method = ssl::simclr<B>;

    std::optional<double> temperature;

    void add_options(method_options& o) {
        o.add("--temperature", temperature, "NT-Xent temperature (default 0.2 below 32 px, else 0.5)",
              positive_number());
    }
    recipe defaults() const { return {.base_lr = 0.3, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        auto c = ssl::simclr_config<backbone_t>(backbone_options(o, d), d.height(), d.channels());
        if (temperature) c.loss.temperature = *temperature;
        return c;
    }
};
}  // namespace
method_entry& simclr_entry() { return make_entry<simclr_spec>(); }
}  // namespace cli
