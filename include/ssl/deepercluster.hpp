#pragma once
// DeeperCluster: "Unsupervised Pre-Training of Image Features on Non-Curated
// Data", Caron, Bojanowski, Mairal, Joulin, ICCV 2019.
// RotNet's pretext and DeepCluster's clustering combined: every image at
// 0/90/180/270 degrees (augment::rotations, the four stacked into one batch),
// targets that are (rotation x level-1 cluster) super-classes and level-2
// sub-clusters inside each level-1 cluster (hierarchical k-means,
// target_update/hierarchical_cluster.hpp), a super-class classifier plus one
// sub-class classifier per super-class (head::hierarchical_classifier), and
// the loss CE(super-class) + CE(sub-class) (loss::hierarchical_classification).
//
// The paper's settings (YFCC100M, 96M images, VGG-16 with Sobel input): 16
// super-classes (4 rotations x m = 4 level-1 clusters), k = 320000 clusters in
// total (k2 = 80000 sub-classes per level-1 cluster), reassignment every 3
// epochs, PCA to 4096, 10 k-means iterations, lr 0.1, weight decay 1e-5.
// deepercluster_config keeps m = 4 (16 super-classes) and, as
// deepcluster_config, about 128 images per leaf cluster: k2 = N / (128 m),
// clamped to [2, 250] (117 for Fashion-MNIST's 60000 images, 468 leaves), PCA
// to 256 (the backbones here have at most 512 features), reassignment every 3
// epochs.
#include <algorithm>

#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/multi_classifier.hpp"
#include "loss/cluster_losses.hpp"
#include "method.hpp"
#include "target_update/hierarchical_cluster.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using deepercluster = method<Backbone, augment::rotations, head::hierarchical_classifier<float>,
                             loss::hierarchical_classification<float>, target::hierarchical_clusters>;

/// Sub-clusters per level-1 cluster for `instances` images and m level-1
/// clusters: ~128 images per leaf, clamped to [2, 250] (100 when the size is
/// not known).
inline std::size_t deepercluster_sub_clusters(std::size_t instances, std::size_t m) {
    if (instances == 0 || m == 0) return 100;
    return std::clamp<std::size_t>((instances + 64 * m) / (128 * m), 2, 250);
}

/// The paper's settings, scaled to `instances` images of `size` pixels and
/// `channels` channels (instances sizes the cluster state for resume; 0
/// leaves it to the first epoch).
template <class Backbone = resnet18<float>>
typename deepercluster<Backbone>::config deepercluster_config(const typename Backbone::options_type& backbone,
                                                              std::size_t size, std::size_t channels,
                                                              std::size_t instances) {
    constexpr std::size_t m = 4;
    typename deepercluster<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {.super_classes = 4 * m, .sub_classes = deepercluster_sub_clusters(instances, m)};
    c.target.reassign_every = 3;
    c.target.features = {.pca_dim = 256, .whiten = true, .l2_normalize = true};
    c.target.kmeans_iterations = 10;
    c.target.instances = instances;
    return c;
}

}  // namespace ssl
