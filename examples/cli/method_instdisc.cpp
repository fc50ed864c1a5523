#include "common.hpp"

#include <ssl/instdisc.hpp>

namespace cli {
namespace {
/// The options both InstDisc losses share: temperature, proximal lambda and
/// the memory bank's first write and initialisation.
template <class Config>
void apply_bank_options(Config& c, const run_options& o) {
    if (o.temperature > 0) c.loss.temperature = o.temperature;
    if (o.proximal >= 0) c.loss.proximal = o.proximal;
    if (!o.first_write.empty()) c.target.replace_first = o.first_write == "replace";
    if (!o.bank_init.empty()) c.target.feature_init = o.bank_init == "features";
    if (c.target.feature_init && c.target.replace_first)
        throw ssl::value_error("--first-write replace has no effect with --bank-init features: every bank row holds a "
                               "feature from the start");
}

struct instdisc_spec {
    static constexpr const char* name = "instdisc";
    static constexpr const char* summary = "InstDisc: memory bank, NCE with 4096 noise samples";
    static constexpr double base_lr = 0.03;
    template <class B>
    using method = ssl::instdisc<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::instdisc_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);
        apply_bank_options(c, o);
        if (o.nce_z == "first-batch") c.loss.z = ssl::loss::z_estimate::first_batch;
        if (o.nce_z == "until-filled") c.loss.z = ssl::loss::z_estimate::until_filled;
        if (o.nce_z == "every-batch") c.loss.z = ssl::loss::z_estimate::every_batch;
        return c;
    }
};
/// The exact non-parametric softmax over all N memories (the paper's eq. 2;
/// what the authors' CIFAR code trains): no noise sampling, no Z to estimate,
/// and no proximal term unless --proximal asks for one.
struct instdisc_softmax_spec {
    static constexpr const char* name = "instdisc-softmax";
    static constexpr const char* summary = "InstDisc, exact non-parametric softmax over the whole memory bank";
    static constexpr double base_lr = 0.03;
    template <class B>
    using method = ssl::instdisc_full_softmax<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::instdisc_full_softmax_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);
        apply_bank_options(c, o);
        return c;
    }
};
}  // namespace
extern const method_entry instdisc_entry = make_entry<instdisc_spec>();
extern const method_entry instdisc_softmax_entry = make_entry<instdisc_softmax_spec>();
}  // namespace cli
