#pragma once
// The one-million-way instance classifier: "Train a One-Million-Way Instance
// Classifier for Unsupervised Visual Representation Learning", Liu, Huang,
// Pan, Wang, Xu, Jin, AAAI 2021 (arXiv 2102.04848).
//
// Supervised classification with instance ids as the classes: every image of
// the training set is its own class of an N-way classifier. The paper's
// framework (its Fig. 1: encoder, "Pool + MLP", N instance classes) with
// SimCLR-style ingredients:
//   augmentation  one_view: one SimCLR-augmented view per image per step, as a
//                 supervised classifier sees its data (instance_cls_two_views:
//                 two views of each image per step, both classified against
//                 the same id: PIC's "multiple augmentations per iteration")
//   head          head::mlp: linear - BN - ReLU - linear to 128 (the paper's
//                 two-layer MLP; the classifier normalises the output itself,
//                 so no L2-normalisation layer is needed)
//   loss          loss::instance_classifier: owns the N x 128 weights,
//                 sharded by class, initialised from the raw features of the
//                 untrained network; cosine softmax with temperature tau over
//                 all N classes, label smoothing over the k hardest wrong
//                 classes only (loss/instance_classifier.hpp, instance_ce.hpp)
//   target        target::none: the optimizer trains the shards with the
//                 network ("loss.classifier.shard_NNN"); nothing else updates
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/mlp.hpp"
#include "loss/instance_classifier.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using instance_cls =
    method<Backbone, augment::one_view, head::mlp<float>, loss::instance_classifier, target::none>;

template <class Backbone = resnet18<float>>
using instance_cls_two_views =
    method<Backbone, augment::two_views, head::mlp<float>, loss::instance_classifier, target::none>;

/// The paper's settings for a training set of `instances` images of `size`
/// pixels with `channels` channels:
///   temperature 0.15, smoothing epsilon 0.2 over the k = 10 hardest classes,
///   head: 2048 hidden (BN, ReLU) -> 128, raw-feature initialisation.
/// Adapted to small images: nothing in tau, k or epsilon depends on the image
/// size (they depend on the number of instances; k = 10 is "a few" of N
/// whether N is 60 000 or 1.28 M, and is clamped to N - 1 for tiny sets); the
/// crops are SimCLR's at `size` pixels (augment::one_view), and the
/// raw-feature pass uses chunks of 256 images, the usual small-image batch.
template <class Backbone = resnet18<float>, class Method = instance_cls<Backbone>>
typename Method::config instance_cls_config(const typename Backbone::options_type& backbone, std::size_t size,
                                            std::size_t channels, std::size_t instances) {
    typename Method::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {2048, 128, true};
    c.loss.ce = {.temperature = 0.15, .top_k = 10, .smoothing = 0.2};
    c.loss.instances = instances;
    c.loss.init_chunk = 256;
    if constexpr (requires { backbone.seed; }) c.loss.seed = static_cast<std::uint64_t>(backbone.seed) + 977;
    return c;
}

}  // namespace ssl
