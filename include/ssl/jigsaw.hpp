#pragma once
// Jigsaw: the context-free network (CFN) of Noroozi & Favaro, "Unsupervised
// Learning of Visual Representations by Solving Jigsaw Puzzles", ECCV 2016.
// Nine tiles of an image, shuffled by one of P permutations chosen for
// maximal Hamming distance (augment/jigsaw.hpp), go through one shared tower
// (the backbone, per tile), a per-tile fc layer, their concatenation in slot
// order, an fc layer and a P-way softmax:
//     L = CE(fc8(relu(fc7([fc6(f(t_1)), ..., fc6(f(t_9))]))), k)
// with k the permutation's index (sec. 3, fig. 3).
//
// Choices: the tower is any backbone (the paper's AlexNet; here ResNet-18 by
// default); fc6 is head::fc_relu per tile and fc7 + fc8 a head::mlp without
// batch norm (linear, ReLU, linear), joined by head::group over the 9 copies.
// Widths: the paper's 512 (fc6) and 4096 (fc7) for ImageNet-size images, 128
// and 512 below 32 px (the tower's features are 8-16x narrower there).
#include "augment/jigsaw.hpp"
#include "backbone/resnet.hpp"
#include "head/combinators.hpp"
#include "head/mlp.hpp"
#include "loss/policies.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using jigsaw = method<Backbone, augment::jigsaw_tiles, head::group<head::fc_relu<float>, head::mlp<float>>,
                      loss::pretext_classification, target::none>;

/// The paper's settings for images of `size` pixels with `channels`
/// channels and P = `permutations` classes (100 or 1000).
template <class Backbone = resnet18<float>>
typename jigsaw<Backbone>::config jigsaw_config(const typename Backbone::options_type& backbone, std::size_t size,
                                                std::size_t channels, std::size_t permutations = 100) {
    typename jigsaw<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {.size = size, .channels = channels, .permutations = permutations};
    const bool small = size < 32;
    c.head = {.row = {.out = small ? std::size_t{128} : std::size_t{512}},
              .joint = {.hidden = small ? std::size_t{512} : std::size_t{4096}, .out = permutations, .batch_norm = false},
              .copies = augment::jigsaw_tiles::cells};
    return c;
}

}  // namespace ssl
