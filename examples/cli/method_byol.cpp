#include "common.hpp"

#include <ssl/byol.hpp>

namespace cli {
namespace {
struct byol_spec {
    static constexpr const char* name = "byol";
    static constexpr const char* summary = "BYOL: projector + predictor, EMA target, 2 - 2 cos";
    template <class B>
    using method = ssl::byol<B>;

    void add_options(method_options&) {}
    recipe defaults() const { return {.base_lr = 0.3, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        return ssl::byol_config<backbone_t>(backbone_options(o, d), d.height(), d.channels());
    }
};
}  // namespace
method_entry& byol_entry() { return make_entry<byol_spec>(); }
}  // namespace cli
