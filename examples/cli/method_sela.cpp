#include "common.hpp"

#include <ssl/sela.hpp>

namespace cli {
namespace {
struct sela_spec {
    static constexpr const char* name = "sela";
    static constexpr const char* summary = "SeLa: Sinkhorn-Knopp self-labelling, several heads";
    static constexpr double base_lr = 0.05;
    template <class B>
    using method = ssl::sela<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::sela_config<B>(backbone_options<B>(o, d), d.height(), d.channels(), instances);
        if (o.clusters > 0) c.head.classes = o.clusters;
        if (o.label_updates > 0) c.target.updates = o.label_updates;
        return c;
    }
};
}  // namespace
extern const method_entry sela_entry = make_entry<sela_spec>();
}  // namespace cli
