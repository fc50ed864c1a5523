#pragma once
// S4L: Zhai, Oliver, Kolesnikov, Beyer, "S4L: Self-Supervised
// Semi-Supervised Learning", ICCV 2019. A few labels (1 % or 10 % of the
// training set) and a self-supervised pretext on all images train one trunk
// (eq. 1):
//     min_theta  L_sup(labelled; theta) + w * L_self(all; theta),   w = 1
// with two heads on the trunk, one per loss (loss/s4l.hpp has the loss and
// how unlabelled samples' classes are hidden).
//   s4l_rotation   every image at 0/90/180/270 degrees (augment::rotations);
//                  4-way rotation cross entropy on all rotated copies, class
//                  cross entropy on all four rotated copies of the labelled
//                  images
//   s4l_exemplar   8 augmented copies per image (augment::augmented_copies);
//                  batch-hard soft-margin triplet loss on an L2-normalised
//                  embedding (1000-d in the paper), copies of one image are
//                  the positives; class cross entropy on the copies of the
//                  labelled images
// The supervised-only baseline is either alias with self_weight = 0: the
// same trunk, views and labelled subset, class cross entropy only.
//
// Contract: train on a labelled data set; config.loss.labelled holds the
// sorted ids of the labelled subset (data::labelled_subset: stratified,
// seeded); the trainer's labels of every other image are hidden from the
// loss. Features for evaluation are the trunk's (method::embed).
//
// Choices:
//   heads   head::concat<self head, linear classifier>: output
//           [self outputs | K class logits] on every row; both linear, as the
//           paper's heads on the ResNet's pooled features (the exemplar
//           embedding is head::embedding: linear then L2 normalisation)
//   target  target::labelled_share: each epoch's order puts the labelled
//           subset in a fixed share of every batch (0.5: the paper's equal
//           labelled and unlabelled minibatches); share 0 is the loader's
//           permutation (labelled images as often as the others)
#include "augment/copies.hpp"
#include "augment/policies.hpp"
#include "backbone/resnet.hpp"
#include "data/labelled_subset.hpp"
#include "head/combinators.hpp"
#include "head/embedding.hpp"
#include "head/mlp.hpp"
#include "io/config_json.hpp"
#include "loss/s4l.hpp"
#include "method.hpp"
#include "target_update/labelled_share.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using s4l_rotation =
    method<Backbone, augment::rotations, head::concat<head::linear_classifier<float>, head::linear_classifier<float>>,
           loss::s4l<loss::rotation_self>, target::labelled_share>;

template <class Backbone = resnet18<float>>
using s4l_exemplar =
    method<Backbone, augment::augmented_copies, head::concat<head::embedding<float>, head::linear_classifier<float>>,
           loss::s4l<loss::triplet_self>, target::labelled_share>;

/// S4L-Rotation's settings for images of `size` pixels and `channels`
/// channels, `classes` classes and the labelled subset `labelled` (sorted ids).
template <class Backbone = resnet18<float>>
typename s4l_rotation<Backbone>::config s4l_rotation_config(const typename Backbone::options_type& backbone,
                                                           std::size_t size, std::size_t channels, std::size_t classes,
                                                           std::vector<std::size_t> labelled) {
    typename s4l_rotation<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {size, channels};
    c.head = {{4}, {classes}};
    c.loss.self_outputs = 4;
    c.loss.classes = classes;
    c.target = {.share = 0.5, .labelled = labelled};
    c.loss.labelled = std::move(labelled);
    return c;
}

/// S4L-Exemplar's settings: 8 copies per image, an `embedding`-d normalised
/// embedding (the paper: 1000), the rest as s4l_rotation_config.
template <class Backbone = resnet18<float>>
typename s4l_exemplar<Backbone>::config s4l_exemplar_config(const typename Backbone::options_type& backbone,
                                                           std::size_t size, std::size_t channels, std::size_t classes,
                                                           std::vector<std::size_t> labelled,
                                                           std::size_t embedding = 1000) {
    typename s4l_exemplar<Backbone>::config c;
    c.backbone = backbone;
    c.augment = {.size = size, .channels = channels, .copies = 8};
    c.head = {{embedding}, {classes}};
    c.loss.self_outputs = embedding;
    c.loss.classes = classes;
    c.target = {.share = 0.5, .labelled = labelled};
    c.loss.labelled = std::move(labelled);
    return c;
}

}  // namespace ssl

// The policies' configs as JSON (io/config_json.hpp), so checkpoints carry them.
namespace ssl::io {
template <>
struct config_fields<augment::copies_config> {
    using S = augment::copies_config;
    static constexpr auto list = std::tuple{field("size", &S::size), field("channels", &S::channels),
                                            field("copies", &S::copies), field("crop_min_scale", &S::crop_min_scale)};
};
// Checkpoints written before the labelled share read as share 0 (the
// loader's permutation they trained with).
template <>
struct config_fields<target::labelled_share_config> {
    using S = target::labelled_share_config;
    static constexpr auto list = std::tuple{optional_field("share", &S::share), optional_field("labelled", &S::labelled)};
};
template <>
struct config_fields<loss::s4l_config> {
    using S = loss::s4l_config;
    static constexpr auto list =
        std::tuple{field("self_outputs", &S::self_outputs), field("classes", &S::classes),
                   field("self_weight", &S::self_weight),   field("labelled_fraction", &S::labelled_fraction),
                   field("subset_seed", &S::subset_seed),   field("labelled", &S::labelled)};
};
}  // namespace ssl::io
