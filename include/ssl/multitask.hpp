#pragma once
// Multi-task self-supervised learning: Doersch & Zisserman, "Multi-task
// Self-Supervised Visual Learning", ICCV 2017. Several pretexts train one
// trunk in one step, one head per task, their losses summed (sec. 3):
//     L = sum_t L_t(head_t(sum_m alpha_{t,m} block_m)) + l1 * sum |alpha|
// The lasso (sec. 3.1): each task's head reads a learned mixture of the
// outputs of M same-shape blocks; the L1 penalty makes each task choose a
// few depths (report the learned alpha per task: head().alphas(task)).
// Harmonization (sec. 3.2): with colorization among the tasks, every task
// sees lightness only (augment/multitask.hpp).
//
// Tasks are chosen at run time from the library's (multitask/tasks.hpp):
// rotation, jigsaw, exemplar and, for colour data, colorization. Parts:
// augment::multitask_views, head::multitask (the lasso and one head per
// task), loss::multitask_loss, target::none.
//
// Differences from the paper, each for a reason: a ResNet-18 (any backbone
// with taps) instead of ResNet-101 truncated after its block 3; the lasso
// over the blocks of the trunk's last stage, since evaluation reads the
// trunk's output (the paper mixes the 23 units of block 3; ResNet-18's layer4
// has 2; shallower taps are refused: the layers after them would not train); one
// synchronous step over all tasks on one process instead of asynchronous
// workers per task; exemplar as a batch-hard soft-margin triplet loss over 4
// copies per image (S4L's form of it, loss/triplet.hpp); the paper's
// relative position is not a task here (jigsaw is its 9-tile form), nor is
// motion segmentation (ssl::motion needs clips, not images).
#include <algorithm>
#include <string>
#include <vector>

#include "augment/multitask.hpp"
#include "backbone/resnet.hpp"
#include "colorization.hpp"
#include "head/multitask.hpp"
#include "io/config_json.hpp"
#include "jigsaw.hpp"
#include "loss/multitask.hpp"
#include "method.hpp"
#include "multitask/tasks.hpp"
#include "s4l.hpp"
#include "target_update/none.hpp"

namespace ssl {

template <class Backbone = resnet18<float>>
using multitask = method<Backbone, augment::multitask_views, head::multitask<float>, loss::multitask_loss, target::none>;

struct multitask_options {
    std::vector<std::string> tasks{"rotation", "jigsaw", "exemplar"};
    std::size_t size = 28;                ///< the images' side
    std::size_t channels = 1;             ///< the images' channels (3 for colorization)
    bool lasso = true;                    ///< false: every task reads the last block (the ablation)
    double l1 = 1e-3;                     ///< the lasso's L1 weight
    std::vector<std::string> lasso_taps;  ///< empty: the blocks of the backbone's last stage (default_lasso_taps)
    std::size_t permutations = 100;       ///< jigsaw's P
    std::size_t exemplar_copies = 4;      ///< exemplar's copies per image
    std::size_t embedding = 128;          ///< exemplar's embedding width
    colorization_options colorization{};  ///< its crop size is always the images' (size)
};

/// The lasso's default taps, from the backbone's tap names and the maps a
/// probe image gives (maps[i] of names[i]): the blocks "<stage>.<k>" of the
/// last stage that have 4-d maps of the shape of the trunk's last 4-d map,
/// ending with that map (resnet18: layer4.0, layer4.1; a backbone with a
/// final norm after its last block: layer4.0, ..., that norm's output).
inline std::vector<std::string> default_lasso_taps(const std::vector<std::string>& names,
                                                   const std::vector<tensor<float>>& maps) {
    auto block = [](const std::string& n, std::string& stage) {
        const auto dot = n.rfind('.');
        if (dot == std::string::npos || dot + 1 == n.size()) return false;
        if (!std::all_of(n.begin() + static_cast<std::ptrdiff_t>(dot) + 1, n.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        stage = n.substr(0, dot);
        return true;
    };
    std::size_t final_map = names.size();
    for (std::size_t i = names.size(); i-- > 0;)
        if (maps[i].rank() == 4) {
            final_map = i;
            break;
        }
    require<value_error>(final_map < names.size(), "default_lasso_taps: the backbone has no 4-d maps among its taps");
    std::string last_stage, st;
    std::size_t last = names.size();
    for (std::size_t i = final_map + 1; i-- > 0;)
        if (maps[i].rank() == 4 && block(names[i], last_stage)) {
            last = i;
            break;
        }
    require<value_error>(last < names.size(), "default_lasso_taps: no block taps (\"stage.k\") among the backbone's; "
                         "name the lasso taps");
    std::vector<std::string> out;
    for (std::size_t i = 0; i <= last; ++i)
        if (maps[i].rank() == 4 && block(names[i], st) && st == last_stage && maps[i].shape() == maps[final_map].shape())
            out.push_back(names[i]);
    const auto same = [](const tensor<float>& a, const tensor<float>& b) {
        return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
    };
    if (out.empty() || !same(maps[last], maps[final_map])) out.push_back(names[final_map]);
    return out;
}

/// The full config for images of o.size pixels and o.channels channels.
/// With colorization a task the backbone takes 1 channel (lightness).
template <class Backbone = resnet18<float>>
typename multitask<Backbone>::config multitask_config(typename Backbone::options_type backbone,
                                                     const multitask_options& o = {}) {
    const std::vector<pretext::task> tasks = pretext::parse_tasks(o.tasks);
    const bool harmonize = pretext::has(tasks, pretext::task::colorization);
    require<value_error>(!harmonize || o.channels == 3, "multitask: the colorization task needs colour images "
                         "(3 channels); these have ", o.channels);
    const std::size_t in = harmonize ? 1 : o.channels;
    backbone.in_channels = in;
    typename multitask<Backbone>::config c;
    c.backbone = backbone;
    std::vector<std::string> names;
    for (pretext::task t : tasks) names.push_back(pretext::name(t));
    c.augment.tasks = names;
    c.augment.size = o.size;
    c.augment.channels = o.channels;
    c.augment.rotation = {.size = o.size, .channels = in};
    const auto jig = jigsaw_config<Backbone>(backbone, o.size, in, o.permutations);
    c.augment.jigsaw = jig.augment;
    c.augment.exemplar = {.size = o.size, .channels = in, .copies = o.exemplar_copies};
    c.head.tasks = names;
    c.head.lasso = o.lasso;
    c.head.l1 = o.l1;
    c.head.jigsaw = jig.head;
    c.head.exemplar = {.out = o.embedding};
    if (harmonize) {
        colorization_options co = o.colorization;
        co.size = o.size;
        const auto col = colorization_config<Backbone>(backbone, co);
        c.augment.colorization = col.augment;
        c.head.colorization = col.head;
        c.loss.colorization = col.loss;
    }
    // a probe image (not zeros: equal maps must mean one point of the network)
    Backbone probe(backbone);
    probe.train(false);
    tensor<float> x({1, in, o.size, o.size});
    for (std::size_t k = 0; k < x.numel(); ++k) x[k] = static_cast<float>((k * 7919) % 101) / 101.0f - 0.5f;
    const std::vector<std::string> all = probe.tap_names();
    const auto r = probe.forward_taps(x, all);
    c.head.taps = o.lasso_taps.empty() ? default_lasso_taps(all, r.taps) : o.lasso_taps;
    require<value_error>(!c.head.taps.empty(), "multitask: no lasso taps");
    const auto chosen = probe.forward_taps(x, c.head.taps);
    for (std::size_t m = 0; m < c.head.taps.size(); ++m)
        require<value_error>(chosen.taps[m].rank() == 4 && chosen.taps[m].shape() == chosen.taps.back().shape(),
                             "multitask: the lasso taps must be 4-d maps of one shape; '", c.head.taps[m], "' is ",
                             chosen.taps[m].shape().str(), ", '", c.head.taps.back(), "' ",
                             chosen.taps.back().shape().str());
    // The trunk's last 4-d map must be the last lasso tap: backward stops at
    // the deepest tap with a gradient, and evaluation reads the layers after it.
    std::size_t final_map = all.size();
    for (std::size_t i = all.size(); i-- > 0;)
        if (r.taps[i].rank() == 4) {
            final_map = i;
            break;
        }
    const auto& a = chosen.taps.back();
    const auto& b = r.taps.at(final_map);
    require<value_error>(a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin()), "multitask: the last lasso "
                         "tap '", c.head.taps.back(), "' is not the trunk's last map ('", all[final_map], "'): the layers "
                         "after it would get no gradient, and evaluation reads them");
    c.head.channels = chosen.taps.back().dim(1);
    return c;
}

}  // namespace ssl

// The policies' configs as JSON (io/config_json.hpp), so checkpoints carry them.
namespace ssl::io {
template <>
struct config_fields<augment::multitask_views_config> {
    using S = augment::multitask_views_config;
    static constexpr auto list =
        std::tuple{field("tasks", &S::tasks),       field("size", &S::size),         field("channels", &S::channels),
                   field("rotation", &S::rotation), field("jigsaw", &S::jigsaw),     field("exemplar", &S::exemplar),
                   field("colorization", &S::colorization)};
};
template <>
struct config_fields<head::multitask_config> {
    using S = head::multitask_config;
    static constexpr auto list =
        std::tuple{field("tasks", &S::tasks),       field("taps", &S::taps),         field("channels", &S::channels),
                   field("lasso", &S::lasso),       field("l1", &S::l1),             field("rotation", &S::rotation),
                   field("jigsaw", &S::jigsaw),     field("exemplar", &S::exemplar), field("colorization", &S::colorization)};
};
template <>
struct config_fields<loss::multitask_loss_config> {
    using S = loss::multitask_loss_config;
    static constexpr auto list =
        std::tuple{field("rotation_weight", &S::rotation_weight), field("jigsaw_weight", &S::jigsaw_weight),
                   field("exemplar_weight", &S::exemplar_weight), field("colorization_weight", &S::colorization_weight),
                   field("colorization", &S::colorization)};
};
}  // namespace ssl::io
