#include "common.hpp"

#include <ssl/deepcluster.hpp>

namespace cli {
namespace {
struct deepcluster_spec {
    static constexpr const char* name = "deepcluster";
    static constexpr const char* summary = "DeepCluster: k-means pseudo-labels every epoch, CE";
    static constexpr double base_lr = 0.05;
    template <class B>
    using method = ssl::deepcluster<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::deepcluster_config<B>(backbone_options<B>(o, d), d.height(), d.channels(), instances);
        if (o.clusters > 0) c.head.classes = o.clusters;
        return c;
    }
};
}  // namespace
extern const method_entry deepcluster_entry = make_entry<deepcluster_spec>();
}  // namespace cli
