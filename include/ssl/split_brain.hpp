#pragma once
// Split-brain autoencoders: Zhang, Isola & Efros, "Split-Brain Autoencoders:
// Unsupervised Learning by Cross-Channel Prediction", CVPR 2017. The image
// in CIE Lab; the network is split in two over channels: half 1 sees L and
// predicts ab, half 2 sees ab and predicts L, each as a classification over
// quantized values; the two cross entropies are summed (eq. 3):
//
//   L = CE(H_1(F_1(L)), Q_ab(ab)) + CE(H_2(F_2(ab)), Q_L(L))          (loss/split_brain.hpp)
//
// Q_ab: the 261 in-gamut bins of the 10-unit ab grid (color/bins.hpp; the
// paper's 313 come from a looser gamut test); Q_L: 100 uniform L bins, the
// paper's (split_brain_options::l_bins). The representation is both halves'
// features, concatenated.
//
// Parts: channel_split<Backbone> (two backbones of half width, half 1 on
// channel 0 = L, half 2 on channels 1, 2 = ab; backbone/channel_split.hpp),
// augment::split_brain_views (Lab view, the bins of each grid cell's mean
// colour as targets), head::split_hypercolumns (a hypercolumn on each half's
// taps; head 1 reads only half 1's maps, head 2 only half 2's),
// loss::split_brain_ce, target::none. Evaluation (embed, kNN, linear probe)
// feeds the full Lab image to both halves. Grey images: training refuses
// them (no colour, nothing to predict); evaluation takes them as L with
// a = b = 0.
//
// Differences from the paper, each for a reason: ResNet / VGG halves with a
// hypercolumn head on each (taps of every stage: default_hypercolumn_taps)
// instead of AlexNet halves whose conv-ified fc layers predict at 1/4
// resolution; targets at the centres of a G x G grid (the mean colour of
// each cell); small images (32 px crops instead of 180 px); hidden width
// 1024 per head unless the config says less.
#include <string>
#include <vector>

#include "augment/split_brain.hpp"
#include "backbone/channel_split.hpp"
#include "backbone/resnet.hpp"
#include "color/bins.hpp"
#include "colorization.hpp"  // default_hypercolumn_taps, the hypercolumn config's JSON fields
#include "head/split_hypercolumns.hpp"
#include "io/config_json.hpp"
#include "loss/split_brain.hpp"
#include "method.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using split_brain = method<channel_split<Backbone>, augment::split_brain_views, head::split_hypercolumns<float>,
                           loss::split_brain_ce, target::none>;

struct split_brain_options {
    std::size_t size = 32;      ///< crop size S
    std::size_t grid = 8;       ///< G x G target cells
    std::size_t l_bins = 100;   ///< lightness bins (the paper: 100)
    std::size_t hidden = 1024;  ///< each head's fc width
    double dropout = 0.5;
    std::vector<std::string> taps;  ///< each half's taps, without the half1. / half2. prefix; empty: default_hypercolumn_taps
};

/// The full config: the backbone split 1 | 2 over the Lab channels (its
/// in_channels set to 3, each half width / 2), the taps' channels measured
/// by one forward of a zero image.
template <class Backbone = resnet18<float>>
typename split_brain<Backbone>::config split_brain_config(typename Backbone::options_type backbone,
                                                         const split_brain_options& o = {}) {
    typename split_brain<Backbone>::config c;
    backbone.in_channels = 3;
    c.backbone = {.backbone = backbone, .groups = {1, 2}, .seed = backbone.seed};
    c.augment = {.size = o.size, .grid = o.grid, .l_bins = o.l_bins};
    const std::size_t qab = color::ab_gamut_bins().count();
    c.loss = {.ab_bins = qab, .l_bins = o.l_bins};
    channel_split<Backbone> probe(c.backbone);
    probe.train(false);
    auto head_for = [&](Backbone& half, const std::string& prefix, std::size_t outputs) {
        head::hypercolumn_config h;
        for (const auto& n : o.taps.empty() ? default_hypercolumn_taps(half.tap_names()) : o.taps)
            h.taps.push_back(prefix + n);
        h.grid = o.grid;
        h.hidden = o.hidden;
        h.dropout = o.dropout;
        h.outputs = outputs;
        return h;
    };
    c.head.first = head_for(probe.half1(), "half1.", qab);
    c.head.second = head_for(probe.half2(), "half2.", o.l_bins);
    std::vector<std::string> all = c.head.first.taps;
    all.insert(all.end(), c.head.second.taps.begin(), c.head.second.taps.end());
    auto r = probe.forward_taps(tensor<float>::zeros({1, 3, o.size, o.size}), all);
    for (std::size_t i = 0; i < all.size(); ++i)
        (i < c.head.first.taps.size() ? c.head.first : c.head.second).tap_channels.push_back(r.taps[i].dim(1));
    return c;
}

}  // namespace ssl

// The policies' configs as JSON (io/config_json.hpp), so checkpoints carry them.
namespace ssl::io {
template <class O>
struct config_fields<channel_split_options<O>> {
    using S = channel_split_options<O>;
    static constexpr auto list = std::tuple{field("backbone", &S::backbone), field("groups", &S::groups),
                                            field("seed", &S::seed)};
};
template <>
struct config_fields<augment::split_brain_views_config> {
    using S = augment::split_brain_views_config;
    static constexpr auto list = std::tuple{field("size", &S::size), field("grid", &S::grid),
                                            field("l_bins", &S::l_bins), field("crop_min_scale", &S::crop_min_scale)};
};
template <>
struct config_fields<head::split_hypercolumns_config> {
    using S = head::split_hypercolumns_config;
    static constexpr auto list = std::tuple{field("first", &S::first), field("second", &S::second)};
};
template <>
struct config_fields<loss::split_brain_ce_config> {
    using S = loss::split_brain_ce_config;
    static constexpr auto list = std::tuple{field("ab_bins", &S::ab_bins), field("l_bins", &S::l_bins)};
};
}  // namespace ssl::io
