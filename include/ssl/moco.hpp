#pragma once
// MoCo v2: Chen, Fan, Girshick, He, "Improved Baselines with Momentum
// Contrastive Learning", 2020, on MoCo (He, Fan, Wu, Xie, Girshick, CVPR 2020).
//
// Two augmented views of each image; the query encoder (backbone + MLP head)
// sees view 0, the momentum key encoder (target_update/queue.hpp: an EMA copy
// of both, updated after each step) sees view 1 with shuffled batch norm;
// InfoNCE (loss/info_nce.hpp) of each query against its key and a queue of the
// K most recent earlier keys, temperature tau:
//   L_q = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_{k- in queue} exp(q.k- / tau)) ).
//
// moco_v2_config(backbone, size, channels, small):
//   paper  (small = false): K 65536, m 0.999, tau 0.2, asymmetric, 8 BN groups, head 2048 -> 128
//   small  (small = true):  K 4096,  m 0.99,  tau 0.1, symmetric,  8 BN groups, head 2048 -> 128
// The optimizer is trainer_config's (the paper: SGD, lr 0.03 per 256 images,
// momentum 0.9, weight decay 1e-4, cosine schedule).
//
// Choices:
//  - Head fc - ReLU - fc with NO batch norm (the reference code), 128 outputs,
//    hidden 2048 for every backbone (the paper's; the code uses the backbone's
//    width, 512 for ResNet-18).
//  - Loss asymmetric in the paper's setting (query view 0, key view 1),
//    symmetrised in the small one; c.loss.symmetric and c.target.symmetric must agree.
//  - augment::two_views, SimCLR's ops, which MoCo v2 shares; its crop starts at
//    0.08 from 32 px (MoCo v2: 0.2); below 32 px 0.2 and no blur, as SimCLR's CIFAR recipe.
//  - small (the default) is MoCo's CIFAR-10 demo recipe, for short runs on small data:
//    m 0.99: at 0.999 the key encoder averages ~1000 steps and barely leaves its init;
//    K 4096 (16 batches of 256): a queue longer than the data set (65536 > 60000
//    Fashion-MNIST images) holds an image's own earlier key among its negatives;
//    symmetric loss at tau 0.1: more accurate for ~1.6x the compute per step
//    (bench/README.md, issue-5 methods at the scale, MoCo).
// Expect a slower start than SimCLR on short runs: the untrained key encoder's
// keys carry little instance information across two strong augmentations, so
// the first epochs bootstrap it (bench/README.md, issue-5 methods: first look).
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/mlp.hpp"
#include "loss/info_nce.hpp"
#include "method.hpp"
#include "target_update/queue.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using moco_v2 = method<Backbone, augment::two_views, head::mlp<float>, loss::info_nce_queue, target::queue>;

/// MoCo v2's settings for images of `size` pixels with `channels` channels;
/// `small` (the default) for short runs: K 4096, m 0.99, tau 0.1, symmetric
/// (MoCo's CIFAR-10 recipe, see above); `small = false` for the paper's.
template <class Backbone = resnet18<float>>
typename moco_v2<Backbone>::config moco_v2_config(const typename Backbone::options_type& backbone, std::size_t size,
                                                  std::size_t channels, bool small = true) {
    typename moco_v2<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {.hidden = 2048, .out = 128, .batch_norm = false};
    c.loss = {.temperature = small ? 0.1 : 0.2, .symmetric = small};
    c.target = {.size = small ? std::size_t{4096} : std::size_t{65536},
                .momentum = small ? 0.99 : 0.999,
                .cosine_schedule = false,
                .shuffle_bn_groups = 8,
                .symmetric = small,
                .seed = backbone.seed};
    return c;
}

}  // namespace ssl
