#pragma once
// Semi-supervised fine-tuning (issue 21; the protocol of SimCLR's
// semi-supervised experiments, Chen et al. 2020, Sec. 6 and App. B.5, on
// class-balanced subsets drawn as S4L's, Zhai et al. 2019): the whole
// network, a copy of the trained backbone with a new linear classifier on its
// pooled features, is trained on 1 % or 10 % of the labels of the evaluation
// train set; the score is its top-1 accuracy on the test set.
//
//   auto r = ssl::eval::finetune_evaluate(backbone, train, test, {.fractions = {0.01, 0.1}});
//   for (auto& row : r.rows) row.fraction, row.images, row.epochs, row.test_top1
//   auto f = ssl::eval::finetune(backbone, train, test, 0.1, cfg, transform);   // f.backbone, f.head, f.row
//
// Contract: `backbone` is read, never written (parameters, buffers, its train
// flag): the network trained is a deep_copy. The labelled subset is
// data::labelled_subset(train, fraction, cfg.seed): round(fraction x n_c)
// images of every class c, seeded, the same on every machine. `transform` is
// the method's eval transform of raw images (N, C, H, W) in [0, 1] (identity
// when empty); with `copies` > 1 it gives copies x N rows per batch (row
// r * N + i is copy r of image i: CPC's patches, Jigsaw's tiles) and an
// image's features are the mean of its copies', as method::embed does.
// Refused with a sentence (ssl::value_error, shape_error): a fraction outside
// (0, 1], an unlabelled train or test set, a fraction that leaves a class
// without a labelled image, a subset of fewer than 2 images, test labels the
// classifier has no output for, sets of different image shapes, and bad
// settings (batch < 2, lr, momentum or weight decay out of range, no fractions).
//
// Choices (the defaults are SimCLR's fine-tuning recipe scaled to small sets):
//  - Optimizer: SGD, Nesterov momentum 0.9, lr 0.05 x batch / 256 (SimCLR's
//    rule, with the batch actually used), no weight decay (SimCLR uses no
//    regularization), a cosine decay to 0 over the run without warmup
//    (SimCLR names no decay; ours).
//  - Length: 60 epochs on subsets under 10 % of the labels, 30 from 10 % up
//    (SimCLR's 1 % / 10 % settings); batch 256, or the whole subset when it
//    is smaller (SimCLR's 4096 would be one step per epoch on a 1 % subset
//    of a small set). An epoch is ceil(n / batch) near-equal batches of a
//    fresh seeded permutation of the n labelled images, none under 2 images.
//  - Augmentation: a random crop of the image zero-padded by H / 8 px (4 at
//    32 px) and a horizontal flip, drawn per (seed, epoch, image): SimCLR
//    fine-tunes with crops and flips only; padding keeps the small images'
//    scale, as CIFAR training does. `augment = false` turns it off (use that
//    where a flip changes the class, digits).
//  - Batch norm in train mode (batch statistics, running statistics updated)
//    while fine-tuning, eval mode for the test set.
//  - The classifier: nn::linear (PyTorch's default initialization, seeded) on
//    the backbone's pooled output, trained with the backbone at one lr.
//  - Every fraction starts again from the trained backbone.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../data/dataset.hpp"
#include "../data/labelled_subset.hpp"
#include "../loss/cross_entropy.hpp"
#include "../nn/linear.hpp"
#include "../nn/parameter.hpp"
#include "../ops/rows.hpp"
#include "../optim/schedule.hpp"
#include "../optim/sgd.hpp"
#include "lowshot.hpp"
#include "metrics.hpp"

namespace ssl::eval {

enum class finetune_schedule { cosine, constant };

struct finetune_config {
    std::vector<double> fractions{0.01, 0.1};  ///< of the train set's labels, each in (0, 1]
    std::size_t epochs = 0;        ///< 0: 60 below 10 % of the labels, 30 from 10 % (SimCLR)
    std::size_t batch = 256;       ///< images per step (at most the subset)
    double lr = 0;                 ///< 0: 0.05 x batch / 256 (SimCLR)
    double momentum = 0.9;
    bool nesterov = true;
    double weight_decay = 0;
    finetune_schedule schedule = finetune_schedule::cosine;
    bool augment = true;           ///< padded random crop + horizontal flip
    std::size_t pad = 0;           ///< crop padding in px; 0: H / 8 (at least 1)
    std::uint64_t seed = 0;        ///< the subset, the order, the crops and the classifier's init
    std::size_t eval_chunk = 256;  ///< test images per forward
};

struct finetune_row {
    double fraction = 0;
    std::size_t images = 0;   ///< in the labelled subset
    std::size_t epochs = 0, steps = 0, batch = 0;
    double lr = 0;
    double train_loss = 0;    ///< mean cross entropy of the last epoch
    double train_top1 = 0;    ///< of the last epoch's (augmented) batches, during training
    double test_top1 = 0;
    double seconds = 0;       ///< fine-tuning and testing
};

struct finetune_result {
    std::vector<finetune_row> rows;  ///< one per fraction, in the order asked
};

/// The fine-tuned network of one fraction: the backbone copy, its classifier and the numbers.
template <class B>
struct finetuned {
    B backbone;
    nn::linear<float> head;
    finetune_row row;
};

/// A method's eval transform of raw images (identity when empty).
using image_transform = std::function<tensor<float>(const tensor<float>&)>;

/// The epochs one fraction trains for (cfg.epochs, or SimCLR's 60 / 30).
inline std::size_t finetune_epochs(const finetune_config& cfg, double fraction) {
    return cfg.epochs > 0 ? cfg.epochs : fraction < 0.1 ? 60 : 30;
}

/// Whether `fraction` of d's labels leaves no class of d without a labelled
/// image (labelled_subset's rounding), i.e. whether finetune can run on it.
inline bool labels_every_class(const data::image_dataset& d, double fraction) {
    if (!d.labelled() || !(fraction > 0 && fraction <= 1)) return false;
    return data::labelled_count(fraction, smallest_class(d.labels).first) > 0;
}

namespace detail {

inline constexpr std::uint64_t finetune_order_stream = 0x66746f72;    // "ftor"
inline constexpr std::uint64_t finetune_augment_stream = 0x66746175;  // "ftau"

/// A bit pattern of the fraction, so that fractions draw different orders and crops.
inline std::uint64_t fraction_key(double f) {
    return static_cast<std::uint64_t>(std::llround(f * 1e9));
}

/// Images x (N, C, H, W), each shifted by up to `pad` px each way with zeros
/// coming in (a crop of the zero-padded image) and mirrored left-right with
/// probability 1/2; image i draws from (seed, epoch, ids[i], key).
inline tensor<float> padded_crop_flip(const tensor<float>& x, std::span<const std::size_t> ids, std::size_t pad,
                                      std::uint64_t seed, std::uint64_t epoch, std::uint64_t key) {
    const std::size_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    tensor<float> out = tensor<float>::zeros(x.shape());
    parallel_for(n, [&](std::size_t i, std::size_t) {
        philox g(seed, stream_id(finetune_augment_stream, epoch, ids[i], key));
        const auto dy = static_cast<std::ptrdiff_t>(g.below(2 * pad + 1)) - static_cast<std::ptrdiff_t>(pad);
        const auto dx = static_cast<std::ptrdiff_t>(g.below(2 * pad + 1)) - static_cast<std::ptrdiff_t>(pad);
        const bool flip = g.uniform() < 0.5f;
        const auto H = static_cast<std::ptrdiff_t>(h), W = static_cast<std::ptrdiff_t>(w);
        for (std::size_t ch = 0; ch < c; ++ch) {
            const float* src = x.data() + (i * c + ch) * h * w;
            float* dst = out.data() + (i * c + ch) * h * w;
            for (std::ptrdiff_t y = 0; y < H; ++y) {
                const std::ptrdiff_t sy = y + dy;
                if (sy < 0 || sy >= H) continue;
                for (std::ptrdiff_t q = 0; q < W; ++q) {
                    const std::ptrdiff_t sx = (flip ? W - 1 - q : q) + dx;
                    if (sx >= 0 && sx < W) dst[y * W + q] = src[sy * W + sx];
                }
            }
        }
    });
    return out;
}

/// Features (copies * m, D) -> (m, D), the mean of each image's copies.
inline tensor<float> mean_of_copies(const tensor<float>& f, std::size_t copies) {
    if (copies == 1) return f;
    const std::size_t m = f.dim(0) / copies, d = f.dim(1);
    tensor<float> out({m, d});
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t k = 0; k < d; ++k) {
            double s = 0;
            for (std::size_t r = 0; r < copies; ++r) s += static_cast<double>(f.data()[(r * m + i) * d + k]);
            out.data()[i * d + k] = static_cast<float>(s / static_cast<double>(copies));
        }
    return out;
}

/// The gradient of mean_of_copies: (m, D) -> (copies * m, D), each copy 1 / copies of it.
inline tensor<float> spread_to_copies(const tensor<float>& g, std::size_t copies) {
    if (copies == 1) return g;
    const std::size_t m = g.dim(0), d = g.dim(1);
    const float inv = 1.0f / static_cast<float>(copies);
    tensor<float> out({copies * m, d});
    for (std::size_t r = 0; r < copies; ++r)
        for (std::size_t j = 0; j < m * d; ++j) out.data()[r * m * d + j] = g.data()[j] * inv;
    return out;
}

/// Backbone features of raw images, one row per image.
template <class B>
auto features(B& b, const tensor<float>& images, const image_transform& transform,
                                                       std::size_t copies) {
    auto r = b.forward(transform ? transform(images) : images);
    require<shape_error>(r.out.rank() == 2 && r.out.dim(0) == copies * images.dim(0), "finetune: ", images.dim(0),
                         " images as ", copies, " copies each gave backbone features of shape ", r.out.shape().str(),
                         " (expected (", copies * images.dim(0), ", D))");
    return r;
}

inline void check_config(const finetune_config& c) {
    constexpr const char* who = "finetune";
    require<value_error>(!c.fractions.empty(), who, ": no fraction of the labels to fine-tune on");
    require<value_error>(c.batch >= 2, who, ": batch must be at least 2 images (batch norm trains on batch "
                         "statistics), got ", c.batch);
    require<value_error>(std::isfinite(c.lr) && c.lr >= 0, who, ": lr must be finite and >= 0 (0: 0.05 x batch / "
                         "256), got ", c.lr);
    require<value_error>(c.momentum >= 0 && c.momentum < 1, who, ": momentum must be in [0, 1), got ", c.momentum);
    require<value_error>(!c.nesterov || c.momentum > 0, who, ": Nesterov momentum needs momentum > 0");
    require<value_error>(std::isfinite(c.weight_decay) && c.weight_decay >= 0, who,
                         ": weight_decay must be finite and >= 0, got ", c.weight_decay);
    require<value_error>(c.eval_chunk > 0, who, ": eval_chunk must be > 0");
}

}  // namespace detail

/// Top-1 accuracy of backbone + head on the labelled set d, in eval mode,
/// cfg.eval_chunk images at a time (the train flags are restored).
template <backbone_policy B>
double finetuned_top1(B& backbone, nn::linear<float>& head, const data::image_dataset& d,
                      const image_transform& transform = {}, std::size_t copies = 1, std::size_t chunk = 256) {
    require<value_error>(d.labelled() && !d.empty(), "finetune: ", d.describe(), " has no labelled images to test on");
    require<value_error>(chunk > 0, "finetune: chunk must be > 0");
    const bool was = backbone.training();
    backbone.train(false);
    std::size_t hit = 0;
    for (std::size_t s = 0; s < d.size(); s += chunk) {
        const std::size_t e = std::min(d.size(), s + chunk);
        std::vector<std::size_t> idx(e - s);
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = s + i;
        const auto f = detail::mean_of_copies(detail::features(backbone, d.batch(idx), transform, copies).out, copies);
        const auto pred = ops::topk_rows(head.forward(f).out, 1).indices;
        for (std::size_t i = 0; i < idx.size(); ++i) hit += pred.data()[i] == d.labels[s + i];
    }
    backbone.train(was);
    return static_cast<double>(hit) / static_cast<double>(d.size());
}

/// Fine-tunes a copy of `trained` and a new classifier on `fraction` of the
/// labels of `train`, and tests them on `test` (see the top of the file).
template <backbone_policy B>
finetuned<B> finetune(const B& trained, const data::image_dataset& train, const data::image_dataset& test,
                      double fraction, const finetune_config& cfg = {}, const image_transform& transform = {},
                      std::size_t copies = 1) {
    constexpr const char* who = "finetune";
    const auto t0 = std::chrono::steady_clock::now();
    detail::check_config(cfg);
    require<value_error>(copies >= 1, who, ": copies must be >= 1");
    require<value_error>(test.labelled() && !test.empty(), who, ": the test set ", test.describe(),
                         " has no labels; fine-tuning is scored by its top-1 accuracy on a labelled test set");
    const auto subset = data::labelled_subset(train, fraction, cfg.seed, "finetune");
    require<value_error>(subset.size() >= 2, who, " ", fraction, ": the labelled subset of ", train.describe(),
                         " has ", subset.size(), " image; fine-tuning trains batch norm on batch statistics, which "
                         "needs at least 2 images: raise the fraction");
    require<shape_error>(test.channels() == train.channels() && test.height() == train.height() &&
                             test.width() == train.width(),
                         who, ": the train images are ", train.channels(), "x", train.height(), "x", train.width(),
                         " and the test images ", test.channels(), "x", test.height(), "x", test.width(),
                         "; the network needs one shape");
    const std::size_t classes = train.num_classes;
    ssl::eval::detail::check_labels(test.labels, who, "test", classes);

    const std::size_t n = subset.size();
    const std::size_t batch = std::min(cfg.batch, n);
    const std::size_t epochs = finetune_epochs(cfg, fraction);
    const std::size_t per_epoch = std::min((n + batch - 1) / batch, n / 2);  // near-equal batches of >= 2 images
    const std::size_t steps = epochs * per_epoch;
    const double lr = cfg.lr > 0 ? cfg.lr : 0.05 * static_cast<double>(batch) / 256.0;
    const std::size_t pad = cfg.pad > 0 ? cfg.pad : std::max<std::size_t>(1, train.height() / 8);
    const std::uint64_t key = detail::fraction_key(fraction);

    finetuned<B> out{deep_copy(trained), nn::linear<float>({.in_features = trained.output_dim(), .out_features = classes},
                                                           cfg.seed),
                     {}};
    B& net = out.backbone;
    auto& head = out.head;
    net.train(true);
    head.train(true);
    optim::sgd<float> opt({.lr = lr, .momentum = cfg.momentum, .nesterov = cfg.nesterov,
                           .weight_decay = cfg.weight_decay});
    opt.attach(net, "backbone");
    opt.attach(head, "head");
    const optim::warmup_cosine cosine(lr, 0, std::max<std::size_t>(steps, 1));
    const loss::cross_entropy<float> ce;

    std::vector<std::size_t> order = subset;
    double loss_sum = 0;
    std::size_t correct = 0, seen = 0, step = 0;
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        philox g(cfg.seed, stream_id(detail::finetune_order_stream, epoch, key));
        order = subset;
        for (std::size_t j = n - 1; j > 0; --j) std::swap(order[j], order[static_cast<std::size_t>(g.below(j + 1))]);
        loss_sum = 0, correct = 0, seen = 0;
        for (std::size_t b = 0; b < per_epoch; ++b) {
            const std::span<const std::size_t> ids(order.data() + b * n / per_epoch, (b + 1) * n / per_epoch - b * n / per_epoch);
            std::vector<std::int64_t> y(ids.size());
            for (std::size_t i = 0; i < ids.size(); ++i) y[i] = train.labels[ids[i]];
            tensor<float> x = train.batch(ids);
            if (cfg.augment) x = detail::padded_crop_flip(x, ids, pad, cfg.seed, epoch, key);
            opt.zero_grad();
            auto f = detail::features(net, x, transform, copies);
            auto h = head.forward(detail::mean_of_copies(f.out, copies));
            const auto l = ce(h.out, y);
            const auto df = detail::spread_to_copies(head.backward(h.cache, l.grad), copies);
            if constexpr (requires { net.backward(f.cache, df, false); })
                net.backward(f.cache, df, false);
            else
                net.backward(f.cache, df);
            opt.set_lr(cfg.schedule == finetune_schedule::cosine ? cosine(step) : lr);
            opt.step();
            ++step;
            loss_sum += l.value * static_cast<double>(ids.size());
            correct += l.correct;
            seen += ids.size();
        }
    }
    auto& row = out.row;
    row.fraction = fraction;
    row.images = n;
    row.epochs = epochs;
    row.steps = steps;
    row.batch = batch;
    row.lr = lr;
    row.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0;
    row.train_top1 = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0;
    row.test_top1 = finetuned_top1(net, head, test, transform, copies, cfg.eval_chunk);
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

/// finetune() for every fraction of cfg.fractions, each from `trained`.
template <backbone_policy B>
finetune_result finetune_evaluate(const B& trained, const data::image_dataset& train, const data::image_dataset& test,
                                  const finetune_config& cfg = {}, const image_transform& transform = {},
                                  std::size_t copies = 1) {
    detail::check_config(cfg);
    finetune_result r;
    for (double f : cfg.fractions) r.rows.push_back(finetune(trained, train, test, f, cfg, transform, copies).row);
    return r;
}

}  // namespace ssl::eval
