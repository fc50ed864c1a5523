#include "common.hpp"

#include <ssl/rotnet.hpp>

namespace cli {
namespace {
struct rotnet_spec {
    static constexpr const char* name = "rotnet";
    static constexpr const char* summary = "RotNet: predict 0/90/180/270 degree rotations";
    static constexpr double base_lr = 0.1;
    template <class B>
    using method = ssl::rotnet<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t) {
        return ssl::rotnet_config<B>(backbone_options(o, d), d.height(), d.channels());
    }
};
}  // namespace
extern const method_entry rotnet_entry = make_entry<rotnet_spec>();
}  // namespace cli
