#pragma once
// SimCLR: "A Simple Framework for Contrastive Learning of Visual
// Representations", Chen, Kornblith, Norouzi, Hinton, ICML 2020.
// Two augmented views, an MLP projector (hidden 2048, BN, ReLU, out 128,
// BN), the NT-Xent loss (eq. 1), no target network.
// The projector ends in a batch norm, as in the paper's code
// (google-research/simclr, projection_head: every layer batch-normalized,
// the last without bias or ReLU) and in lightly's SimCLRProjectionHead.
// Without it SimCLR learned far more slowly on thin strokes on black (93
// steps on bench/data/make_glyphs.py's glyphs-c, 3 seeds: kNN 68.3 vs 77.3,
// final loss 4.5-5.3 vs 3.7-4.0; bench/README.md, issue 24).
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/mlp.hpp"
#include "loss/policies.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using simclr = method<Backbone, augment::two_views, head::mlp<float>, loss::contrastive_pair, target::none>;

/// The paper's settings for images of `size` pixels with `channels`
/// channels: temperature 0.5 (the CIFAR recipe), 0.2 for images under 32
/// pixels, which worked better at small batch sizes; and for images under
/// 32 pixels a random resized crop of at least half the image (the shared
/// small-image default is 0.2): on 28-px Fashion-MNIST, 5 epochs, kNN
/// 82.62 +- 0.21 against 82.05 +- 0.28 over seeds 0-2, linear probe level
/// (bench/README.md).
template <class Backbone = resnet18<float>>
typename simclr<Backbone>::config simclr_config(const typename Backbone::options_type& backbone, std::size_t size,
                                                std::size_t channels) {
    typename simclr<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels, size < augment::small_image_size ? 0.5 : 0.0};
    c.head = {.hidden = 2048, .out = 128, .batch_norm = true, .output_batch_norm = true};
    c.loss = {size < 32 ? 0.2 : 0.5};
    return c;
}

}  // namespace ssl
