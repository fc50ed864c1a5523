#include "common.hpp"

#include <ssl/simclr.hpp>

namespace cli {
namespace {
struct simclr_spec {
    static constexpr const char* name = "simclr";
    static constexpr const char* summary = "SimCLR: two views, MLP projector, NT-Xent";
    static constexpr double base_lr = 0.3;
    template <class B>
    using method = ssl::simclr<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t) {
        auto c = ssl::simclr_config<B>(backbone_options(o, d), d.height(), d.channels());
        if (o.temperature > 0) c.loss.temperature = o.temperature;
        return c;
    }
};
}  // namespace
extern const method_entry simclr_entry = make_entry<simclr_spec>();
}  // namespace cli
