#pragma once
// BYOL: "Bootstrap Your Own Latent", Grill et al., NeurIPS 2020.
// Online network = backbone + projector + predictor; target network = EMA of
// backbone + projector (tau_base 0.99, cosine schedule to 1); loss
// 2 - 2 cos(p, sg(z')) symmetrised over the two asymmetric views (eq. 2).
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "head/mlp.hpp"
#include "loss/policies.hpp"
#include "method.hpp"
#include "target_update/ema.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using byol = method<Backbone, augment::asymmetric_views, head::projector_predictor<float>, loss::byol_pair, target::ema>;

/// The paper's settings (projector and predictor 4096 -> 256, tau 0.996 at
/// ImageNet scale); `small` uses 1024 -> 128 heads and tau_base 0.99, the
/// setting for short runs on small images.
template <class Backbone = resnet18<float>>
typename byol<Backbone>::config byol_config(const typename Backbone::options_type& backbone, std::size_t size,
                                            std::size_t channels, bool small = true) {
    typename byol<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    if (small) {
        c.head = {{1024, 128, true}, {1024, 128, true}};
        c.target = {0.99, true};
    } else {
        c.head = {{4096, 256, true}, {4096, 256, true}};
        c.target = {0.996, true};
    }
    return c;
}

}  // namespace ssl
