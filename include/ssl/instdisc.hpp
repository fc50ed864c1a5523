#pragma once
// InstDisc (NPID): "Unsupervised Feature Learning via Non-Parametric Instance
// Discrimination", Wu, Xiong, Yu, Lin, CVPR 2018.
// Every image is its own class. One augmented view per image (one_view);
// the head maps the backbone's features to a 128-d unit vector
// (head::embedding); a memory bank keeps one such vector per training image,
// updated with momentum 0.5 after every step (target::memory_bank); the loss
// tells an image's feature apart from its own memory among the others:
//   instdisc               NCE against m = 4096 noise samples, eq. (5)-(7),
//                          Z estimated until every bank row holds a
//                          feature, then fixed (memory_bank_config::z;
//                          z_estimate::first_batch is the paper's literal
//                          rule, which diverges on small data sets: see
//                          target_update/memory_bank.hpp), plus the proximal term
//                          lambda ||f - v||^2 (sec. 3.3, lambda = 30) for
//                          instances that already have a memory
//                                                        (loss::instance_nce)
//   instdisc_full_softmax  the exact non-parametric softmax over all N
//                          memories, eq. (2)            (loss::instance_softmax)
// Temperature 0.07 (the paper's ImageNet setting); 0.1 for images of 32
// pixels or less (the authors' CIFAR setting). The paper trains with SGD,
// lr 0.03, momentum 0.9, weight decay 5e-4, batch 256 (trainer settings,
// not part of the method's config).
//
// The bank needs the number of training images up front (a resumed run
// restores it before training starts): pass it as `instances`.
//
// Small data sets: the NCE approximation assumes N >> m. On a few hundred
// images use far fewer noise samples (the tests use m = 64 for N = 256).
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/embedding.hpp"
#include "loss/nce.hpp"
#include "method.hpp"
#include "target_update/memory_bank.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using instdisc = method<Backbone, augment::one_view, head::embedding<float>, loss::instance_nce, target::memory_bank>;

template <class Backbone = resnet18<float>>
using instdisc_full_softmax =
    method<Backbone, augment::one_view, head::embedding<float>, loss::instance_softmax, target::memory_bank>;

namespace detail {
template <class Config, class Options>
void instdisc_common(Config& c, const Options& backbone, std::size_t size, std::size_t channels,
                     std::size_t instances) {
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {128};
    c.target.instances = instances;
    c.target.dim = 128;
    c.target.momentum = 0.5;
    if constexpr (requires { backbone.seed; }) c.target.seed = backbone.seed;
}
/// The paper's temperature: 0.07, and 0.1 for CIFAR-size (<= 32 pixel) images.
inline double instdisc_temperature(std::size_t size) { return size <= 32 ? 0.1 : 0.07; }
}  // namespace detail

/// The paper's settings for a training set of `instances` images of `size`
/// pixels with `channels` channels: 128-d embedding, bank momentum 0.5,
/// m = 4096 noise samples, proximal lambda = 30, temperature 0.07 (0.1 for
/// images of 32 pixels or less).
template <class Backbone = resnet18<float>>
typename instdisc<Backbone>::config instdisc_config(const typename Backbone::options_type& backbone, std::size_t size,
                                                   std::size_t channels, std::size_t instances) {
    typename instdisc<Backbone>::config c;
    detail::instdisc_common(c, backbone, size, channels, instances);
    c.target.negatives = 4096;
    c.loss = {detail::instdisc_temperature(size), 30.0};
    return c;
}

/// The same for the full-softmax variant: no noise samples, no proximal term.
template <class Backbone = resnet18<float>>
typename instdisc_full_softmax<Backbone>::config instdisc_full_softmax_config(
    const typename Backbone::options_type& backbone, std::size_t size, std::size_t channels, std::size_t instances) {
    typename instdisc_full_softmax<Backbone>::config c;
    detail::instdisc_common(c, backbone, size, channels, instances);
    c.target.negatives = 0;
    c.loss = {detail::instdisc_temperature(size), 0.0};
    return c;
}

}  // namespace ssl
