#include "common.hpp"

#include <ssl/deepcluster.hpp>

namespace cli {
namespace {
struct deepcluster_spec {
    static constexpr const char* name = "deepcluster";
    static constexpr const char* summary = "DeepCluster: k-means pseudo-labels every epoch, CE";
    template <class B>
    using method = ssl::deepcluster<B>;

    std::optional<std::size_t> clusters;

    void add_options(method_options& o) {
        o.add("--clusters", clusters, "k of k-means (default: ~128 images per cluster, 10 to 1000)",
              positive_number());
    }
    // The reference's weight decay, 1e-5 (main.py --wd). The classifier head
    // is re-initialised after every reassignment, so a cosine to 0 leaves the
    // late heads little lr to learn with; measured at 5 epochs on
    // Fashion-MNIST (bench/README.md, weight decay 5e-4 then): constant
    // 79.79 / 83.68 kNN / linear against cosine 78.36 / 81.65. --schedule
    // cosine restores it.
    recipe defaults() const { return {.base_lr = 0.05, .weight_decay = 1e-5, .schedule = "constant"}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t instances) const {
        auto c = ssl::deepcluster_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), instances);
        if (clusters) c.head.classes = *clusters;
        return c;
    }
};
}  // namespace
method_entry& deepcluster_entry() { return make_entry<deepcluster_spec>(); }
}  // namespace cli
