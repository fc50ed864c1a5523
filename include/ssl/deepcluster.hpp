#pragma once
// DeepCluster: "Deep Clustering for Unsupervised Learning of Visual
// Features", Caron, Bojanowski, Joulin, Douze, ECCV 2018.
// One augmented view per image, a k-way linear classifier on the backbone
// features, cross entropy against k-means pseudo-labels that are recomputed
// over the whole data set every epoch (PCA-whitened to 256 dimensions,
// L2-normalised), the classifier re-initialised after each reassignment, and
// each epoch sampled uniformly over the pseudo-labels
// (target_update/cluster.hpp says how and where this differs from the paper).
//
// The paper's settings (ImageNet, AlexNet/VGG-16 with Sobel input): k = 10000
// clusters for 1.28M images, reassignment every epoch, PCA to 256 + L2,
// SGD lr 0.05, momentum 0.9, weight decay 1e-5, batch 256, 500 epochs.
// deepcluster_config keeps the paper's ratio of images per cluster (about
// 128: 1.28M / 10k), clamped to [10, 1000] clusters: 469 clusters for
// Fashion-MNIST's 60000 training images. Over-segmenting (k well above the
// number of classes) is what the paper found best (sec. 5.1, fig. 3c); the
// ratio keeps every cluster large enough to be learnable in a few epochs and
// k-means cheap (60000 x 469 x 128 per Lloyd iteration).
#include <algorithm>

#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/mlp.hpp"
#include "loss/cluster_losses.hpp"
#include "method.hpp"
#include "target_update/cluster.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using deepcluster = method<Backbone, augment::one_view, head::linear_classifier<float>,
                           loss::pseudo_label_classification<float>, target::cluster_reassignment>;

/// DeepCluster's number of clusters for a data set of `instances` images:
/// the paper's ~128 images per cluster, clamped to [10, 1000] (500 when the
/// size is not known).
inline std::size_t deepcluster_clusters(std::size_t instances) {
    if (instances == 0) return 500;
    return std::clamp<std::size_t>((instances + 64) / 128, 10, 1000);
}

/// The paper's settings for `instances` images of `size` pixels and
/// `channels` channels. instances sizes the pseudo-label state, so a
/// checkpoint loads into a fresh method (resume); 0 leaves it to the first
/// epoch.
template <class Backbone = resnet18<float>>
typename deepcluster<Backbone>::config deepcluster_config(const typename Backbone::options_type& backbone,
                                                          std::size_t size, std::size_t channels,
                                                          std::size_t instances) {
    typename deepcluster<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {deepcluster_clusters(instances)};
    c.target.reassign_every = 1;
    c.target.features = {.pca_dim = 256, .whiten = true, .l2_normalize = true};
    c.target.instances = instances;
    return c;
}

}  // namespace ssl
