#pragma once
// RotNet: "Unsupervised Representation Learning by Predicting Image
// Rotations", Gidaris, Singh, Komodakis, ICLR 2018. Every image at 0, 90,
// 180 and 270 degrees (labels 0-3) in one batch, a 4-way linear classifier,
// cross entropy.
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/mlp.hpp"
#include "loss/policies.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using rotnet = method<Backbone, augment::rotations, head::linear_classifier<float>, loss::pretext_classification,
                      target::none>;

template <class Backbone = resnet18<float>>
typename rotnet<Backbone>::config rotnet_config(const typename Backbone::options_type& backbone, std::size_t size,
                                                std::size_t channels) {
    typename rotnet<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {4};
    return c;
}

}  // namespace ssl
