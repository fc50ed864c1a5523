#include "common.hpp"

#include <ssl/deepercluster.hpp>

namespace cli {
namespace {
struct deepercluster_spec {
    static constexpr const char* name = "deepercluster";
    static constexpr const char* summary = "DeeperCluster: rotation x k-means super-classes and sub-clusters";
    template <class B>
    using method = ssl::deepercluster<B>;

    void add_options(method_options&) {}
    // The reference's weight decay, 1e-5 (main.py --wd, as DeepCluster's).
    recipe defaults() const { return {.base_lr = 0.05, .weight_decay = 1e-5}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        return ssl::deepercluster_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
    }
};
}  // namespace
method_entry& deepercluster_entry() { return make_entry<deepercluster_spec>(); }
}  // namespace cli
