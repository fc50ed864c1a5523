#include "common.hpp"

#include <ssl/moco.hpp>

namespace cli {
namespace {
struct moco_spec {
    static constexpr const char* name = "moco";
    static constexpr const char* summary = "MoCo v2: EMA key encoder, queue of negatives, InfoNCE";
    static constexpr double base_lr = 0.06;
    template <class B>
    using method = ssl::moco_v2<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        (void)instances;  // no per-instance state
        auto c = ssl::moco_v2_config<B>(backbone_options(o, d), d.height(), d.channels(), true);
        if (o.temperature > 0) c.loss.temperature = o.temperature;
        if (o.queue > 0) c.target.size = o.queue;
        if (o.symmetric >= 0) c.loss.symmetric = c.target.symmetric = o.symmetric == 1;
        return c;
    }
};
}  // namespace
extern const method_entry moco_entry = make_entry<moco_spec>();
}  // namespace cli
