#include "common.hpp"

#include <ssl/rotnet.hpp>

namespace cli {
namespace {
struct rotnet_spec {
    static constexpr const char* name = "rotnet";
    static constexpr const char* summary = "RotNet: predict 0/90/180/270 degree rotations";
    template <class B>
    using method = ssl::rotnet<B>;

    void add_options(method_options&) {}
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        return ssl::rotnet_config<backbone_t>(backbone_options(o, d), d.height(), d.channels());
    }
};
}  // namespace
method_entry& rotnet_entry() { return make_entry<rotnet_spec>(); }
}  // namespace cli
