#pragma once
// PIRL: "Self-Supervised Learning of Pretext-Invariant Representations",
// Misra & van der Maaten, CVPR 2020.
// The representation of an image should not change when the image is cut
// into a jigsaw puzzle. One network (the backbone) sees the image I and, tile
// by tile, its jigsaw transform I^t (augment::pirl_views); two heads make
// 128-d unit embeddings of them:
//   f(v_I)   linear to 128 + L2                      (head::embedding)
//   g(v_It)  per-tile linear to 128, the 9 in slot order concatenated,
//            linear to 128 + L2                      (head::group)
// joined by head::route (branch 0: f, branch 1: g). A memory bank keeps m_I,
// a running average of f(v_I) (momentum 0.5; target::memory_bank), and the
// loss pulls both embeddings toward the image's memory against m negatives
// drawn from the bank (eq. 5, loss::pirl_nce):
//   L = lambda L_NCE(m_I, g(v_It)) + (1 - lambda) L_NCE(m_I, f(v_I)),
// lambda 0.5, temperature 0.07. The paper trains with SGD, momentum 0.9,
// weight decay 1e-4 (trainer settings, not part of the config).
//
// Choices:
// - Temperature 0.1 for images of 32 px or less (InstDisc's CIFAR setting,
//   instdisc_temperature); 0.07 otherwise, the paper's.
// - Negatives m = min(4096, N / 4): the paper's 32000 are for ImageNet;
//   InstDisc's 4096 for CIFAR- and MNIST-size sets, a quarter of N below
//   that, so the noise stays a part of the set (NCE assumes N >> m).
// - The bank stores f(v_I), view 0's output, as the paper's m_I; it needs the
//   number of training images up front (`instances`).
// - Batch-norm running statistics are moved by both views, the image's and
//   the tiles' (as VISSL's PIRL, which runs both through the trunk in train
//   mode); keeping the image's alone evaluated worse (bench/README.md).
#include <algorithm>

#include "augment/pirl.hpp"
#include "backbone/resnet.hpp"
#include "head/combinators.hpp"
#include "head/embedding.hpp"
#include "head/mlp.hpp"
#include "instdisc.hpp"
#include "loss/pirl_nce.hpp"
#include "method.hpp"
#include "target_update/memory_bank.hpp"

namespace ssl {

namespace head {
/// PIRL's heads: f on the image (branch 0), g on its 9 tiles (branch 1).
template <class T = float>
using pirl_heads = route<embedding<T>, group<linear_classifier<T>, embedding<T>>>;
}  // namespace head

template <class Backbone = resnet18<float>>
using pirl = method<Backbone, augment::pirl_views, head::pirl_heads<float>, loss::pirl_nce, target::memory_bank>;

/// The paper's settings for a training set of `instances` images of `size`
/// pixels with `channels` channels: f and g to 128-d (per-tile projection to
/// 128), bank momentum 0.5, m = min(4096, N / 4) negatives, lambda 0.5,
/// temperature 0.07 (0.1 for images of 32 pixels or less), tiles shuffled by
/// a set of 1000 permutations.
template <class Backbone = resnet18<float>>
typename pirl<Backbone>::config pirl_config(const typename Backbone::options_type& backbone, std::size_t size,
                                            std::size_t channels, std::size_t instances) {
    constexpr std::size_t dim = 128;
    typename pirl<Backbone>::config c;
    c.backbone = backbone;
    c.augment.image = {.size = size, .channels = channels};
    c.augment.tiles = {.size = size, .channels = channels, .permutations = 1000};
    c.head = {head::embedding_config{dim},
              {.row = {.classes = dim}, .joint = {dim}, .copies = augment::jigsaw_tiles::cells}};
    c.loss = {.temperature = detail::instdisc_temperature(size), .lambda = 0.5};
    c.target.instances = instances;
    c.target.dim = dim;
    c.target.momentum = 0.5;
    c.target.negatives = std::min<std::size_t>(4096, std::max<std::size_t>(1, instances / 4));
    if constexpr (requires { backbone.seed; }) c.target.seed = backbone.seed;
    return c;
}

}  // namespace ssl
