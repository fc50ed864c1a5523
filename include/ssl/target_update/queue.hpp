#pragma once
// Target update "queue": MoCo's momentum key encoder and queue of keys
// (He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual
// Representation Learning", CVPR 2020, sec. 3.2; MoCo v2, Chen et al. 2020).
//
// Key encoder. A deep copy of the backbone and of the head's target part
// (for head::mlp, the whole MLP), updated after every optimizer step by
//     theta_k <- m theta_k + (1 - m) theta_q            (MoCo eq. 2)
// with a constant m (0.999 in the paper; 0.99 for short runs), or BYOL's
// cosine schedule from m to 1 (cosine_schedule = true). This reuses
// target::ema_update / ema_tau (ema.hpp). Only parameters are averaged; the
// key encoder's batch-norm buffers follow its own forwards (they are never
// used: only the query encoder is evaluated).
//
// Queue. A FIFO of K keys (K = 65536 in the paper), each the key encoder's
// output L2-normalized (d = the head's output width). It starts as K random
// unit vectors (normal draws, normalized, as MoCo's torch.randn + normalize),
// so the loss has K negatives from the first step. A pointer names the oldest
// key; enqueueing a batch overwrites from there, wrapping around the end, so
// K need not be a multiple of the batch (MoCo asserts it is) and the oldest
// keys are always replaced first.
//
// Order within a step (target protocol): targets(views) runs the key encoder
// on view 1 (and view 0 when symmetric) and returns those keys with the queue
// AS IT WAS BEFORE this batch, so a query never meets its own positive key
// among the negatives; after the optimizer step, after_step applies the
// momentum update and only then enqueues the batch's keys. This is MoCo's
// order shifted by one call: MoCo updates the key encoder at the start of
// step t+1 from the weights after step t's update, which is what after_step
// of step t does.
//
// Shuffling BN on one device. MoCo (sec. 3.3) trains on 8 GPUs with per-GPU
// batch norm: the query encoder normalizes each GPU's sub-batch, and the key
// encoder's batch is shuffled across GPUs before its forward and unshuffled
// after, so the key of sample i is normalized with statistics of a different
// subset of samples than its query. Without it, a query and its positive key
// carry the same batch statistics, which the negatives (keys of earlier
// batches, in the queue) do not: the network can match the pair through that
// signature instead of the image content (MoCo observed such "cheating": the
// pretext loss falls, the features are poor).
//
// Here the query encoder (ssl::method) normalizes each view over the whole
// batch. The key encoder instead runs G times (shuffle_bn_groups, default 8:
// MoCo's 8 GPUs): the batch is permuted at random (Philox, keyed by the
// seed, the step count and the view, so runs are reproducible and resume
// exactly), cut into G groups of floor(B/G) or ceil(B/G) samples (the first
// B mod G groups take one more; G is lowered to B/2 so every group has at
// least 2 samples), each group goes through backbone and head in train mode
// as its own batch, and the outputs are written back to their samples'
// positions (un-shuffled). Guarantee: the key of sample i is normalized with
// the statistics of its group only, a random subset of about B/G samples
// that changes every step; it never sees the statistics the query was
// normalized with (the whole batch of view 0), and no image outside its group
// influences it. This is the single-process form of MoCo's shuffle used by
// its own CIFAR-10 demo (batch shuffle + split batch norm); unlike the demo
// the query side is not split (the method's forward is shared by all
// methods), which only makes the query's statistics less noisy. G = 1 turns
// the shuffle off (the whole batch, MoCo's ablation that leaks).
//
// Checkpoints (for_each_state): "queue" (K, d), "queue_ptr" (1,) int64, "steps"
// (1,) int64 (after_step calls so far, which key the BN shuffle) and the key
// encoder's parameters and buffers ("backbone.*", "head.*").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../loss/info_nce.hpp"
#include "../nn/parameter.hpp"
#include "ema.hpp"
#include "../ops/rows.hpp"
#include "protocol.hpp"

namespace ssl::target {

struct queue_config {
    std::size_t size = 65536;           ///< K, the number of negative keys (MoCo: 65536)
    double momentum = 0.999;            ///< m of the key encoder (MoCo: 0.999; short runs: 0.99)
    bool cosine_schedule = false;       ///< true: BYOL's schedule from m to 1 (ema_tau); false: constant m (MoCo)
    std::size_t shuffle_bn_groups = 8;  ///< G, key-encoder batch-norm groups of a shuffled batch (1: no shuffle)
    bool symmetric = false;             ///< also encode view 0 (for loss.symmetric); enqueues both views' keys
    std::uint64_t seed = 0;             ///< the random initial queue and the BN shuffles
    double eps = 1e-12;                 ///< norm floor when the keys are L2-normalized
};

struct queue {
    using config_type = queue_config;
    static constexpr const char* name = "queue";

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;
        using head_target = typename Head::target_type;

        state() = default;
        state(const queue_config& c, Backbone& b, Head& h)
            : cfg_(c), backbone_(deep_copy(b)), head_(deep_copy(h.target_part())) {
            require(c.size >= 1, "target::queue: the queue size K must be at least 1, got ", c.size);
            require(c.momentum >= 0 && c.momentum <= 1, "target::queue: momentum must be in [0, 1], got ", c.momentum);
            require(c.shuffle_bn_groups >= 1, "target::queue: shuffle_bn_groups must be at least 1, got ",
                    c.shuffle_bn_groups);
            require(c.eps > 0, "target::queue: eps must be > 0, got ", c.eps);
            backbone_.train(true);
            head_.train(true);
            dim_ = head_.out_features();
            require(dim_ >= 1, "target::queue: the head's target part has no outputs");
            tau_ = c.momentum;
            // MoCo: queue = normalize(randn(K, d)). One Philox stream per row,
            // so the draw does not depend on the thread count.
            queue_ = tensor<T>({c.size, dim_});
            parallel_for(c.size, [&](std::size_t r, std::size_t) {
                philox g(c.seed, stream_id(0x71756575u /* "queu" */, r));
                T* row = queue_.data() + r * dim_;
                for (std::size_t j = 0; j < dim_; ++j) row[j] = static_cast<T>(g.normal());
                normalize_row(row);
            });
            ptr_ = tensor<std::int64_t>::zeros({1});
            steps_ = tensor<std::int64_t>::zeros({1});
        }

        const queue_config& config() const noexcept { return cfg_; }
        /// K.
        std::size_t size() const noexcept { return cfg_.size; }
        /// d, the width of a key.
        std::size_t dim() const noexcept { return dim_; }
        /// The momentum of the last update (m, or the schedule's value).
        double momentum() const noexcept { return tau_; }
        /// Index of the oldest key: where the next enqueue writes.
        std::size_t pointer() const noexcept { return static_cast<std::size_t>(ptr_[0]); }
        /// after_step calls so far.
        std::size_t steps() const noexcept { return static_cast<std::size_t>(steps_[0]); }
        /// The live queue (K, d); enqueue writes into it.
        const tensor<T>& keys() const noexcept { return queue_; }
        Backbone& backbone() noexcept { return backbone_; }
        head_target& head() noexcept { return head_; }

        /// The key encoder's batch-norm groups for the next targets() call:
        /// positions in a batch of `batch` samples, a random permutation cut
        /// into G contiguous groups (sizes differ by at most 1). View v uses
        /// its own permutation.
        std::vector<std::vector<std::size_t>> bn_groups(std::size_t batch, std::size_t view = 1) const {
            const std::size_t G = std::max<std::size_t>(1, std::min(cfg_.shuffle_bn_groups, batch / 2));
            std::vector<std::size_t> perm(batch);
            std::iota(perm.begin(), perm.end(), std::size_t{0});
            if (G == 1) return {perm};
            philox g(cfg_.seed, stream_id(0x73627566u /* "sbuf" */, static_cast<std::uint64_t>(steps_[0]), view));
            for (std::size_t i = batch; i-- > 1;) std::swap(perm[i], perm[g.below(i + 1)]);
            std::vector<std::vector<std::size_t>> groups(G);
            const std::size_t base = batch / G, extra = batch % G;
            std::size_t at = 0;
            for (std::size_t k = 0; k < G; ++k) {
                const std::size_t n = base + (k < extra ? 1 : 0);
                groups[k].assign(perm.begin() + static_cast<std::ptrdiff_t>(at),
                                 perm.begin() + static_cast<std::ptrdiff_t>(at + n));
                at += n;
            }
            return groups;
        }

        /// Keys of a batch of images (B, C, H, W) as view `view`: the key
        /// encoder runs on each BN group of bn_groups(B, view) as its own
        /// batch (train mode), outputs are put back in batch order and
        /// L2-normalized. (B, d), no gradient.
        tensor<T> encode(const tensor<T>& images, std::size_t view = 1) {
            require<shape_error>(images.rank() >= 2 && images.dim(0) >= 1,
                                 "target::queue: expected a batch of images (B, C, H, W), got shape ",
                                 images.shape().str());
            const std::size_t n = images.dim(0), per = images.numel() / n;
            tensor<T> out({n, dim_});
            for (const auto& grp : bn_groups(n, view)) {
                tensor<T> x;
                if (grp.size() == n) {
                    x = images;  // one group: the batch in its own order
                } else {
                    shape_t s = images.shape();
                    s[0] = grp.size();
                    x = tensor<T>(s);
                    for (std::size_t r = 0; r < grp.size(); ++r)
                        std::copy_n(images.data() + grp[r] * per, per, x.data() + r * per);
                }
                auto f = backbone_.forward(x);
                auto y = head_.forward(f.out).out;
                require<shape_error>(y.rank() == 2 && y.dim(0) == grp.size() && y.dim(1) == dim_,
                                     "target::queue: the key encoder gave shape ", y.shape().str(), " for ",
                                     grp.size(), " images, expected (", grp.size(), ", ", dim_, ")");
                for (std::size_t r = 0; r < grp.size(); ++r) {
                    T* dst = out.data() + grp[r] * dim_;
                    std::copy_n(y.data() + r * dim_, dim_, dst);
                    normalize_row(dst);
                }
            }
            return out;
        }

        /// The batch's keys (view 1; view 0 too when symmetric) and the queue
        /// as it was before this batch. after_step enqueues the batch's keys.
        loss::queue_targets<T> targets(const target_input<T>& in) { return keys(in.views()); }
        loss::queue_targets<T> keys(const std::vector<tensor<T>>& views) {
            require(views.size() == 2, "target::queue: needs exactly 2 views (query, key), got ", views.size());
            require<shape_error>(views[0].rank() >= 1 && views[1].rank() >= 1 && views[0].dim(0) == views[1].dim(0),
                                 "target::queue: the two views have different batch sizes, shapes ",
                                 views[0].shape().str(), " and ", views[1].shape().str());
            loss::queue_targets<T> t;
            t.keys.resize(2);
            if (cfg_.symmetric) t.keys[0] = encode(views[0], 0);
            t.keys[1] = encode(views[1], 1);
            t.queue = queue_;
            return t;
        }

        /// After the optimizer's update: momentum update of the key encoder,
        /// then the batch's keys join the queue (view 0's first when symmetric).
        target_request after_step(Backbone& b, Head& h, loss::queue_targets<T>&& batch, const target_step& s) {
            tau_ = ema_tau(ema_config{cfg_.momentum, cfg_.cosine_schedule}, s.step, s.total_steps);
            ema_update<T>(backbone_, b, tau_);
            ema_update<T>(head_, h.target_part(), tau_);
            for (const auto& k : batch.keys)
                if (k.defined()) enqueue(k);
            steps_[0] += 1;
            return {};
        }

        /// Writes `keys` (n, d) (used as given) into the queue from the
        /// pointer on, wrapping around: the oldest keys are replaced first.
        void enqueue(const tensor<T>& keys) {
            check_rank(keys, 2, "target::queue::enqueue", "(n, d)");
            require<shape_error>(keys.dim(1) == dim_, "target::queue::enqueue: keys of shape ", keys.shape().str(),
                                 " do not fit a queue of shape ", queue_.shape().str());
            const std::size_t K = cfg_.size;
            require(ptr_[0] >= 0 && static_cast<std::size_t>(ptr_[0]) < K, "target::queue: the queue pointer ",
                    ptr_[0], " is outside [0, ", K, ") (a checkpoint from a different queue size?)");
            std::size_t p = static_cast<std::size_t>(ptr_[0]);
            for (std::size_t r = 0; r < keys.dim(0); ++r) {
                std::copy_n(keys.data() + r * dim_, dim_, queue_.data() + p * dim_);
                p = p + 1 == K ? 0 : p + 1;
            }
            ptr_[0] = static_cast<std::int64_t>(p);
        }

        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            f(join_name(prefix, "queue"), queue_);
            f(join_name(prefix, "queue_ptr"), ptr_);
            f(join_name(prefix, "steps"), steps_);
            backbone_.for_each_parameter([&](const std::string& n, parameter<T>& p) { f(n, p.value); },
                                         join_name(prefix, "backbone"));
            backbone_.for_each_buffer(f, join_name(prefix, "backbone"));
            head_.for_each_parameter([&](const std::string& n, parameter<T>& p) { f(n, p.value); },
                                     join_name(prefix, "head"));
            head_.for_each_buffer(f, join_name(prefix, "head"));
        }

    private:
        void normalize_row(T* row) const { ops::normalize_row(row, dim_, cfg_.eps); }

        queue_config cfg_{};
        Backbone backbone_{};
        head_target head_{};
        std::size_t dim_ = 0;
        double tau_ = 0;
        tensor<T> queue_;                 // (K, d)
        tensor<std::int64_t> ptr_;        // (1,): the oldest key
        tensor<std::int64_t> steps_;      // (1,): after_step calls
    };
};

}  // namespace ssl::target
