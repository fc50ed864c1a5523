#include "common.hpp"

#include <ssl/instance_cls.hpp>

namespace cli {
namespace {
struct instance_cls_spec {
    static constexpr const char* name = "instance-cls";
    static constexpr const char* summary = "one-million-way instance classifier: cosine softmax over all images";
    template <class B>
    using method = ssl::instance_cls<B>;

    std::optional<double> temperature;

    void add_options(method_options& o) {
        o.add("--temperature", temperature, "cosine-softmax temperature (default 0.15)", positive_number());
    }
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        auto c = ssl::instance_cls_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (temperature) c.loss.ce.temperature = *temperature;
        return c;
    }
};
}  // namespace
method_entry& instance_cls_entry() { return make_entry<instance_cls_spec>(); }
}  // namespace cli
