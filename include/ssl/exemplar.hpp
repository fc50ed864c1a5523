#pragma once
// Exemplar-CNN: Dosovitskiy, Springenberg, Riedmiller, Brox, "Discriminative
// Unsupervised Feature Learning with Convolutional Neural Networks", NIPS
// 2014 (arXiv 1406.6909).
//
// N seed patches taken at places of large gradient (data/exemplar_patches.hpp)
// are N surrogate classes; each is shown as random compositions T of
// translation, scaling, rotation, contrast and colour changes
// (augment/exemplar.hpp), and the network is trained to tell which seed a
// transformed patch came from (sec. 2):
//     min_W  1 / (N K) sum_{i=1..N} sum_{T in T_i} l(i, T x_i),
// l the multinomial cross entropy of an N-way softmax over the network's
// output, T_i the K transformations drawn for seed x_i.
//
// Contract: train on the patch set (data::exemplar_patches), whose sample i
// is surrogate class i; the trainer passes sample ids, which the instance
// classifier uses as labels, so no pretext labels travel in the view batch.
// Features for evaluation are the backbone's on whole images resized to the
// patch side (eval_transform).
//
// Choices:
//   augmentation  exemplar_views: one transformed version per patch per step;
//                 K = transforms_per_class versions per class (draws keyed by
//                 epoch mod K)
//   head          head::mlp: linear - BN - ReLU - linear to 128: the paper's
//                 fully connected layer before the softmax (128 units in its
//                 small network, 512 in its medium one; here 128 for patches
//                 under 32 px, else 512), with BN in place of dropout, then a
//                 projection to the classifier's 128-d space so the N-way
//                 weights stay N x 128 whatever the hidden width
//   loss          loss::instance_classifier without label smoothing (the
//                 paper's plain cross entropy), on cosine logits with
//                 temperature 0.15; it owns the N-way weights in class shards
//                 (any N, 10^6 included), trained by the same optimizer,
//                 initialised from the initial network's outputs on the
//                 patches (a faster start than the paper's random weights)
//   target        target::none
#include "augment/exemplar.hpp"
#include "backbone/resnet.hpp"
#include "data/exemplar_patches.hpp"
#include "head/mlp.hpp"
#include "loss/instance_classifier.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using exemplar = method<Backbone, augment::exemplar_views, head::mlp<float>, loss::instance_classifier, target::none>;

/// The paper's settings for seed patches of `patch_size` pixels with
/// `channels` channels and `surrogate_classes` = N patches:
///   transformations: translation 0.2 of the side, scale [0.7, 1.4],
///   rotation +-20 degrees, contrast 1 [0.5, 1.5] (the paper: [0.5, 2]),
///   contrast 2 power [1/4, 4], factor [0.7, 1.4], offset +-0.1, hue +-0.1,
///   K = 100 transformed versions per class;
///   head 128 (patches under 32 px) or 512 hidden, 128 out; plain cross
///   entropy, temperature 0.15.
/// Scaled to small images: the paper's 32-px patches of 96-px STL-10 images
/// become `patch_size` patches of the data set's images (16 of 28 px for
/// Fashion-MNIST); every transformation range is relative to the patch side,
/// so none changes with it.
template <class Backbone = resnet18<float>, class Method = exemplar<Backbone>>
typename Method::config exemplar_config(const typename Backbone::options_type& backbone, std::size_t patch_size,
                                        std::size_t channels, std::size_t surrogate_classes) {
    typename Method::config c;
    c.backbone = backbone;
    c.augment = {.size = patch_size, .channels = channels, .transforms_per_class = 100};
    c.head = {patch_size < 32 ? std::size_t{128} : std::size_t{512}, 128, true};
    c.loss.ce = {.temperature = 0.15, .top_k = 0, .smoothing = 0.0};
    c.loss.instances = surrogate_classes;
    c.loss.init_chunk = 256;
    if constexpr (requires { backbone.seed; }) c.loss.seed = static_cast<std::uint64_t>(backbone.seed) + 977;
    return c;
}

}  // namespace ssl
