#include "common.hpp"

#include <ssl/instance_cls.hpp>

namespace cli {
namespace {
struct instance_cls_spec {
    static constexpr const char* name = "instance-cls";
    static constexpr const char* summary = "one-million-way instance classifier: cosine softmax over all images";
    static constexpr double base_lr = 0.1;
    template <class B>
    using method = ssl::instance_cls<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::instance_cls_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (o.temperature > 0) c.loss.temperature = o.temperature;
        return c;
    }
};
}  // namespace
extern const method_entry instance_cls_entry = make_entry<instance_cls_spec>();
}  // namespace cli
