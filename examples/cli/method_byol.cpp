#include "common.hpp"

#include <ssl/byol.hpp>

namespace cli {
namespace {
struct byol_spec {
    static constexpr const char* name = "byol";
    static constexpr const char* summary = "BYOL: projector + predictor, EMA target, 2 - 2 cos";
    static constexpr double base_lr = 0.3;
    template <class B>
    using method = ssl::byol<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t) {
        return ssl::byol_config<B>(backbone_options(o, d), d.height(), d.channels());
    }
};
}  // namespace
extern const method_entry byol_entry = make_entry<byol_spec>();
}  // namespace cli
