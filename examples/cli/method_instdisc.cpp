#include "common.hpp"

#include <ssl/instdisc.hpp>

namespace cli {
namespace {
/// The options both InstDisc losses share: temperature, proximal lambda and
/// the memory bank's first write and initialisation.
struct bank_options {
    std::optional<double> temperature, proximal;
    std::optional<std::string> first_write, bank_init;

    void add(method_options& o, const char* proximal_default) {
        o.add("--temperature", temperature, "temperature (default 0.1 up to 32 px, else 0.07)", positive_number());
        o.add("--proximal", proximal, std::string("proximal term lambda (default ") + proximal_default + ")",
              non_negative_number());
        o.add("--first-write", first_write,
              "a bank row's first write: mix (with its random initialization, momentum; the default) or replace",
              CLI::IsMember({"mix", "replace"}));
        o.add("--bank-init", bank_init,
              "memory bank rows before the first epoch: random (the paper's, the default) or features (the initial "
              "network's normalised embedding of each image)",
              CLI::IsMember({"random", "features"}));
    }
    template <class Config>
    void apply(Config& c) const {
        if (temperature) c.loss.temperature = *temperature;
        if (proximal) c.loss.proximal = *proximal;
        if (first_write) c.target.replace_first = *first_write == "replace";
        if (bank_init) c.target.feature_init = *bank_init == "features";
        if (c.target.feature_init && c.target.replace_first)
            throw ssl::value_error("--first-write replace has no effect with --bank-init features: every bank row "
                                   "holds a feature from the start");
    }
};

// The lemniscate reference's CIFAR settings: lr 0.03, weight decay 5e-4.
constexpr recipe instdisc_recipe{.base_lr = 0.03, .weight_decay = 5e-4};

struct instdisc_spec {
    static constexpr const char* name = "instdisc";
    static constexpr const char* summary = "InstDisc: memory bank, NCE with 4096 noise samples";
    template <class B>
    using method = ssl::instdisc<B>;

    bank_options bank;
    std::optional<std::string> nce_z;

    void add_options(method_options& o) {
        bank.add(o, "30");
        o.add("--nce-z", nce_z, "when NCE's Z is estimated: until-filled (the default), first-batch or every-batch",
              CLI::IsMember({"until-filled", "first-batch", "every-batch"}));
    }
    recipe defaults() const { return instdisc_recipe; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        auto c = ssl::instdisc_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
        bank.apply(c);
        if (nce_z == "first-batch") c.loss.z = ssl::loss::z_estimate::first_batch;
        if (nce_z == "until-filled") c.loss.z = ssl::loss::z_estimate::until_filled;
        if (nce_z == "every-batch") c.loss.z = ssl::loss::z_estimate::every_batch;
        return c;
    }
};
/// The exact non-parametric softmax over all N memories (the paper's eq. 2;
/// what the authors' CIFAR code trains): no noise sampling, no Z to estimate,
/// and no proximal term unless --proximal asks for one.
struct instdisc_softmax_spec {
    static constexpr const char* name = "instdisc-softmax";
    static constexpr const char* summary = "InstDisc, exact non-parametric softmax over the whole memory bank";
    template <class B>
    using method = ssl::instdisc_full_softmax<B>;

    bank_options bank;

    void add_options(method_options& o) { bank.add(o, "0: off"); }
    recipe defaults() const { return instdisc_recipe; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        auto c =
            ssl::instdisc_full_softmax_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
        bank.apply(c);
        return c;
    }
};
}  // namespace
method_entry& instdisc_entry() { return make_entry<instdisc_spec>(); }
method_entry& instdisc_softmax_entry() { return make_entry<instdisc_softmax_spec>(); }
}  // namespace cli
