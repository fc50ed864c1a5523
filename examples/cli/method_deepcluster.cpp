#include "common.hpp"

#include <ssl/deepcluster.hpp>

namespace cli {
namespace {
struct deepcluster_spec {
    static constexpr const char* name = "deepcluster";
    static constexpr const char* summary = "DeepCluster: k-means pseudo-labels every epoch, CE";
    static constexpr double base_lr = 0.05;
    // The classifier head is re-initialised after every reassignment, so a
    // cosine to 0 leaves the late heads little lr to learn with; measured at
    // 5 epochs on Fashion-MNIST (bench/README.md): constant 79.79 / 83.68
    // kNN / linear against cosine 78.36 / 81.65. --schedule cosine restores it.
    static constexpr const char* schedule = "constant";
    template <class B>
    using method = ssl::deepcluster<B>;
    template <class B>
    static auto config(const run_options& o, const ssl::data::image_dataset& d, std::size_t instances) {
        auto c = ssl::deepcluster_config<B>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (o.clusters > 0) c.head.classes = o.clusters;
        return c;
    }
};
}  // namespace
extern const method_entry deepcluster_entry = make_entry<deepcluster_spec>();
}  // namespace cli
