#include "common.hpp"

#include <ssl/instdisc.hpp>

namespace cli {
namespace {
struct instdisc_spec {
    static constexpr const char* name = "instdisc";
    static constexpr const char* summary = "InstDisc: memory bank, NCE with 4096 noise samples";
    static constexpr double base_lr = 0.03;
    template <class B>
    using method = ssl::instdisc<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::instdisc_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (o.temperature > 0) c.loss.temperature = o.temperature;
        if (o.proximal >= 0) c.loss.proximal = o.proximal;
        if (o.nce_z == "first-batch") c.target.z = ssl::target::z_estimate::first_batch;
        if (o.nce_z == "until-filled") c.target.z = ssl::target::z_estimate::until_filled;
        if (o.nce_z == "every-batch") c.target.z = ssl::target::z_estimate::every_batch;
        if (!o.first_write.empty()) c.target.replace_first = o.first_write == "replace";
        return c;
    }
};
}  // namespace
extern const method_entry instdisc_entry = make_entry<instdisc_spec>();
}  // namespace cli
