#pragma once
// The target-update protocol: explicit phases, no state parked between them.
// A target update is a tag type with a config and a nested state
// (ssl::target_policy in core/concepts.hpp checks it):
//
//   struct my_target {
//       using config_type = ...;
//       template <class Backbone, class Head> class state {
//           state(const config_type&, Backbone&, Head&);
//           // Required. The step's batch of targets: what the loss compares
//           // against (target outputs, bank rows and noise, pseudo-labels).
//           // The method hands it to Loss::compute(online, batch, views), then
//           // to after_step, which consumes it: whatever after_step needs of
//           // the step (ids, the online features, keys to enqueue) travels in
//           // the batch, never in the method or in the state.
//           Batch targets(const target_input<T>&);
//           // Required. After the optimizer's update: EMA targets follow,
//           // banks store the batch's features, queues enqueue its keys. May
//           // ask for a pass over the data set (target_request::data_pass).
//           target_request after_step(Backbone&, Head&, Batch&&, const target_step&);
//           // Required. The state a checkpoint keeps ("target.*").
//           template <class F> void for_each_state(F&& f, const std::string& prefix);
//           // Optional. Before every epoch: recompute pseudo-labels over the
//           // data set, choose the epoch's sample order, ask the method to
//           // re-initialise the head (epoch_plan).
//           epoch_plan begin_epoch(epoch_context<Backbone, Head>&);
//           // Required when after_step may ask for a data pass.
//           void data_pass(epoch_context<Backbone, Head>&, const target_step&);
//       };
//   };
//
// A target update reads the networks (forwards in passes over the data) and
// writes only its own state; trainable per-instance weights belong to a head
// or a loss, loss state (NCE's Z) to the loss.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <utility>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../data/dataset.hpp"
#include "../dist/communicator.hpp"

namespace ssl {

/// What begin_epoch may ask of the method and the trainer for the epoch about
/// to start.
struct epoch_plan {
    /// The samples this epoch visits, in order (indices into the data set,
    /// repeats allowed, exactly N of them); none: the loader's shuffled
    /// permutation. DeepCluster's sampler, uniform over pseudo-labels.
    std::optional<std::vector<std::size_t>> order;
    /// Re-initialise the head with this seed before the epoch (DeepCluster's
    /// classifier after a reassignment). The method does it (a target never
    /// writes into the head) and resets the head's optimizer state.
    std::optional<std::uint64_t> reinit_head;
    /// A policy re-initialised its own trainable parameters (the loss's
    /// instance classifier from raw features): their optimizer state is reset.
    bool reset_own_parameters = false;
    /// Filled by the method from the requests above, not by the policies:
    /// parameter-name prefixes ("head", "loss") whose optimizer state
    /// (momentum, moments) the trainer zeroes.
    std::vector<std::string> reset_optimizer_state;
};

/// What begin_epoch sees: the networks, the data and a way to compute
/// features of all of it.
template <class Backbone, class Head>
struct epoch_context {
    Backbone& backbone;
    Head& head;
    std::size_t head_in_features = 0;  ///< the backbone's output width
    const data::image_dataset& data;
    std::size_t epoch = 0;
    std::uint64_t seed = 0;
    /// True when the run resumed from a checkpoint in the middle of this
    /// epoch: the state restored from it (pseudo-labels, ...) is what the
    /// epoch started with, so it must not be recomputed, only used (the
    /// order must come out the same as in the uninterrupted run).
    bool resumed_mid_epoch = false;
    /// Images (B, C, H, W) in [0, 1] as the backbone sees them at evaluation
    /// (the augmentation's eval_transform).
    std::function<tensor<float>(const tensor<float>&)> eval_transform;
    /// Data parallel: the ranks the passes that can be split are split over
    /// (each rank computes its share, every rank receives all); null: all here.
    dist::communicator* ranks = nullptr;

    /// The pass an initialisation from the initial network makes (the
    /// instance classifier's raw-feature rows, a memory bank's feature
    /// init): fn(head outputs (n, D) of images [first, first + n), first)
    /// for the whole data set in order, images as the backbone sees them at
    /// evaluation. With batch_statistics, batch norm normalises with each
    /// chunk's own statistics (train mode, no gradient: the statistics the
    /// first training steps use, "a random network with running BNs") over
    /// consecutive chunks of `chunk` .. 2 chunk - 1 images (no tiny last
    /// batch); otherwise eval mode, `chunk` images at a time. Either way the
    /// networks' buffers (running statistics) and modes are restored
    /// afterwards: the pass has no side effect. With `ranks` (P > 1) the
    /// chunks are split over the ranks (rank q computes chunks q, q + P, ...,
    /// each exactly as one process would) and all-gathered round by round:
    /// every rank's fn sees every chunk, in order, with the same values;
    /// compute / P, traffic N x D floats per rank.
    template <class F>
    void for_each_initial_output(F&& fn, bool batch_statistics, std::size_t chunk = 256) {
        const std::size_t n = data.size();
        require<value_error>(chunk >= (batch_statistics ? 2u : 1u), "epoch_context: the initial pass needs chunks of ",
                             batch_statistics ? "at least 2 images with batch statistics" : "at least 1 image",
                             ", got ", chunk);
        require<value_error>(!batch_statistics || n >= 2,
                             "epoch_context: an initial pass with batch statistics needs at least 2 images, the data "
                             "set '", data.name, "' has ", n);
        // Restores the modes and every buffer (running statistics) on the way
        // out, also when a forward or fn throws.
        struct restorer {
            epoch_context& c;
            bool bt, ht;
            std::vector<std::function<void()>> buffers;
            ~restorer() {
                c.backbone.train(bt);
                c.head.train(ht);
                for (auto& r : buffers) r();
            }
        } guard{*this, backbone.training(), head.training(), {}};
        const auto save = [&](const std::string&, auto& t) {
            guard.buffers.push_back([p = &t, saved = t.clone()]() { p->assign(saved); });
        };
        backbone.for_each_buffer(save, "");
        head.for_each_buffer(save, "");
        backbone.train(batch_statistics);
        head.train(batch_statistics);
        const std::size_t chunks = batch_statistics ? std::max<std::size_t>(1, n / chunk) : (n + chunk - 1) / chunk;
        const auto bounds = [&](std::size_t c) -> std::pair<std::size_t, std::size_t> {
            const std::size_t b = batch_statistics ? c * n / chunks : c * chunk;
            return {b, batch_statistics ? (c + 1) * n / chunks : std::min(n, b + chunk)};
        };
        std::vector<std::size_t> idx;
        const auto output = [&](std::size_t c) {
            const auto [b, e] = bounds(c);
            idx.resize(e - b);
            for (std::size_t i = b; i < e; ++i) idx[i - b] = i;
            return head.forward(backbone.forward(eval_transform(data.batch(idx))).out).out;
        };
        over_chunks(chunks, bounds, output, fn);
    }

    /// fn(compute(c), first image of c) for every chunk c in [0, chunks), in
    /// order, compute(c) an (n_c, D) tensor for images bounds(c) = [b, e).
    /// With `ranks` (P > 1) the chunks are split over the ranks: in round r
    /// rank q computes chunk r P + q (the very chunk one process computes, so
    /// the same values), then every rank receives the round's chunks
    /// (allgather, padded to the largest chunk) and fn sees all of them in
    /// order, as in one process: compute / P, traffic N x D floats per rank.
    /// A failure on one rank stops every rank (none waits in a gather).
    template <class Bounds, class Compute, class F>
    void over_chunks(std::size_t chunks, Bounds&& bounds, Compute&& compute, F&& fn) {
        if (!ranks || ranks->size() == 1) {
            for (std::size_t c = 0; c < chunks; ++c) fn(compute(c), bounds(c).first);
            return;
        }
        const auto P = static_cast<std::size_t>(ranks->size()), me = static_cast<std::size_t>(ranks->rank());
        std::size_t rows = 0;
        for (std::size_t c = 0; c < chunks; ++c) rows = std::max(rows, bounds(c).second - bounds(c).first);
        std::size_t D = 0;
        for (std::size_t r = 0; r * P < chunks; ++r) {
            tensor<float> mine;
            std::exception_ptr failed;
            try {
                if (r * P + me < chunks) {
                    mine = compute(r * P + me);
                    const auto [b, e] = bounds(r * P + me);
                    require<shape_error>(mine.rank() == 2 && mine.dim(0) == e - b, "epoch_context: outputs of shape ",
                                         mine.shape().str(), " for ", e - b, " images, expected (", e - b, ", D)");
                    require<shape_error>(r == 0 || mine.dim(1) == D, "epoch_context: outputs of width ", mine.dim(1),
                                         " in this round, ", D, " in the first");
                }
            } catch (...) {
                failed = std::current_exception();
            }
            if (ranks->max(static_cast<std::int32_t>(failed != nullptr)) != 0) {
                if (failed) std::rethrow_exception(failed);
                throw error("epoch_context: the pass over the data set failed on another rank");
            }
            if (r == 0) {  // the output width, from the ranks that computed a chunk; all of them agree or all stop
                const auto w = static_cast<std::int64_t>(mine.defined() ? mine.dim(1) : 0);
                const std::int64_t widest = ranks->max(w);
                const std::int64_t narrowest = -ranks->max(mine.defined() ? -w : -widest);
                if (widest != narrowest)
                    throw shape_error(ssl::detail::cat("epoch_context: outputs of width ", w, " on this rank, from ",
                                                       narrowest, " to ", widest, " over the ranks"));
                D = static_cast<std::size_t>(widest);
            }
            std::vector<float> send(rows * D, 0.0f), all(P * rows * D);
            if (mine.defined()) std::copy(mine.begin(), mine.end(), send.begin());
            ranks->allgather(std::span<const float>(send), std::span<float>(all));
            for (std::size_t q = 0; q < P && r * P + q < chunks; ++q) {
                const auto [b, e] = bounds(r * P + q);
                tensor<float> f({e - b, D});
                std::copy(all.begin() + static_cast<std::ptrdiff_t>(q * rows * D),
                          all.begin() + static_cast<std::ptrdiff_t>((q * rows + (e - b)) * D), f.begin());
                fn(f, b);
            }
        }
    }

    /// fn(outputs (n, D), first) over the data set in chunks of `chunk`
    /// images, eval mode (restored afterwards), split over `ranks` as
    /// over_chunks; `net` maps the images as the backbone sees them to outputs.
    template <class Net, class F>
    void for_each_eval_output(Net&& net, F&& fn, std::size_t chunk) {
        require<value_error>(chunk >= 1, "epoch_context: chunks of at least 1 image, got ", chunk);
        struct restorer {
            epoch_context& c;
            bool bt, ht;
            ~restorer() {
                c.backbone.train(bt);
                c.head.train(ht);
            }
        } guard{*this, backbone.training(), head.training()};
        backbone.train(false);
        head.train(false);
        const std::size_t n = data.size(), chunks = (n + chunk - 1) / chunk;
        const auto bounds = [&](std::size_t c) -> std::pair<std::size_t, std::size_t> {
            return {c * chunk, std::min(n, (c + 1) * chunk)};
        };
        std::vector<std::size_t> idx;
        const auto compute = [&](std::size_t c) {
            const auto [b, e] = bounds(c);
            idx.resize(e - b);
            for (std::size_t i = b; i < e; ++i) idx[i - b] = i;
            return net(eval_transform(data.batch(idx)));
        };
        over_chunks(chunks, bounds, compute, fn);
    }
    /// Backbone features of every image, (N, head_in_features), eval mode;
    /// split over `ranks` (every rank receives all of them).
    tensor<float> features(std::size_t chunk = 512) {
        tensor<float> out({data.size(), head_in_features});
        for_each_eval_output([&](const tensor<float>& x) { return as_rows(backbone.forward(x).out); },
                             [&](const tensor<float>& f, std::size_t first) {
                                 require<shape_error>(f.numel() == f.dim(0) * head_in_features,
                                                      "epoch_context: backbone features of width ", f.dim(1),
                                                      ", expected ", head_in_features);
                                 std::copy(f.begin(), f.end(), out.data() + first * head_in_features);
                             }, chunk);
        return out;
    }
    /// Head outputs of every image, (N, head.out_features()), eval mode;
    /// split over `ranks` (every rank receives all of them).
    tensor<float> head_outputs(std::size_t chunk = 512) {
        const std::size_t d = head.out_features();
        tensor<float> out({data.size(), d});
        for_each_eval_output([&](const tensor<float>& x) { return as_rows(head.forward(backbone.forward(x).out).out); },
                             [&](const tensor<float>& f, std::size_t first) {
                                 require<shape_error>(f.numel() == f.dim(0) * d, "epoch_context: head outputs of width ",
                                                      f.dim(1), ", expected ", d);
                                 std::copy(f.begin(), f.end(), out.data() + first * d);
                             }, chunk);
        return out;
    }

    /// t as (t.dim(0), the rest) rows.
    static tensor<float> as_rows(tensor<float> t) {
        if (t.rank() == 2) return t;
        const std::size_t n = t.rank() ? t.dim(0) : 1;
        return t.reshape({n, n ? t.numel() / n : 0});
    }
};

}  // namespace ssl
