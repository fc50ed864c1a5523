#include "common.hpp"

#include <ssl/deepercluster.hpp>

namespace cli {
namespace {
struct deepercluster_spec {
    static constexpr const char* name = "deepercluster";
    static constexpr const char* summary = "DeeperCluster: rotation x k-means super-classes and sub-clusters";
    static constexpr double base_lr = 0.05;
    template <class B>
    using method = ssl::deepercluster<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::deepercluster_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);

        return c;
    }
};
}  // namespace
extern const method_entry deepercluster_entry = make_entry<deepercluster_spec>();
}  // namespace cli
