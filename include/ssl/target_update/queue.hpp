#pragma once
// Target update "queue": MoCo's momentum key encoder and queue of keys
// (He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual
// Representation Learning", CVPR 2020, sec. 3.2-3.3; MoCo v2, Chen et al. 2020).
//
// Key encoder: a deep copy of the backbone and of the head's target part (for
// head::mlp, the whole MLP), updated after every optimizer step by
//     theta_k <- m theta_k + (1 - m) theta_q            (MoCo eq. 2)
// with a constant m, or BYOL's cosine from m to 1 (cosine_schedule; both via
// target::ema_update / ema_tau). Only parameters are averaged; it always runs
// in train mode (batch statistics), so its batch-norm buffers are never used
// and keep their initial values (restored after every key forward: MoCo's
// code updates them to no effect; fixed, they are the same on every rank).
// Queue: K keys (K, d), each a key-encoder output L2-normalized (d = the head's
// output width). A pointer names the oldest key; an enqueue overwrites from
// there, wrapping around, so K need not be a multiple of B (MoCo asserts that it is).
// Per step: targets(views) encodes view 1 (and view 0 when symmetric) and
// returns those keys with the queue AS IT WAS BEFORE this batch; after_step,
// after the optimizer, applies the momentum update, then enqueues the keys.
// Checkpoints (for_each_state): "queue" (K, d), "queue_ptr" and "steps" (1,)
// int64 (steps: after_step calls so far, which key the BN shuffle), and the
// key encoder's parameters and buffers ("backbone.*", "head.*").
//
// Choices:
//  - The queue starts as K random unit vectors (as MoCo): K negatives at step 0.
//  - The pre-batch queue: a query never meets its own key among the negatives.
//  - Momentum update at the end of step t: MoCo's at the start of t+1, same weights.
//  - Shuffle BN on one device (the form of MoCo's CIFAR-10 demo), so a query
//    and its key cannot match through shared batch statistics (MoCo's
//    "cheating", sec. 3.3): the key encoder runs each of G groups of a random
//    permutation as its own batch in train mode (sizes floor(B/G) or ceil(B/G);
//    G lowered to B/2 so each has >= 2) and puts the outputs back in order. A
//    key sees only its group's statistics, which change every step, never its query's.
//  - G = shuffle_bn_groups = 8, MoCo's 8 GPUs; 1: no shuffle (MoCo's leaking ablation).
//  - The query side is not split (the forward is shared by all methods).
//  - Permutations from Philox keyed by (seed, steps, view): reproducible, resumable.
//  - Data parallel (P ranks, dist/data_parallel.hpp): the shuffle is over the
//    GLOBAL batch, as MoCo's multi-GPU code (which all-gathers the images and
//    shuffles across GPUs): the key-view images are all-gathered, rank r encodes
//    the BN groups g with g % P == r (local statistics: a group is one BN batch),
//    and the keys come back to every rank by a sum over ranks of rows only one
//    rank wrote (exact: the others add zeros). Every rank enqueues all B keys,
//    so the replicated queues stay identical and P ranks equal one process.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../dist/communicator.hpp"
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
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp (global shuffle BN, replicated queue)

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
        tensor<T> encode(const tensor<T>& images, std::size_t view = 1) { return encode_groups(images, view, 0, 1); }

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
            dist::communicator* c = dist::active();
            if (c) t.global_keys.resize(2);
            for (std::size_t v = cfg_.symmetric ? 0 : 1; v < 2; ++v) {
                if (!c) {
                    t.keys[v] = encode(views[v], v);
                    continue;
                }
                t.global_keys[v] = encode_global(views[v], v, *c);
                const std::size_t n = views[v].dim(0), r = static_cast<std::size_t>(c->rank());
                t.keys[v] = tensor<T>({n, dim_});
                std::copy_n(t.global_keys[v].data() + r * n * dim_, n * dim_, t.keys[v].data());
            }
            t.queue = queue_;
            return t;
        }

        /// After the optimizer's update: momentum update of the key encoder,
        /// then the batch's keys join the queue (view 0's first when symmetric).
        target_request after_step(Backbone& b, Head& h, loss::queue_targets<T>&& batch, const target_step& s) {
            tau_ = ema_tau(ema_config{cfg_.momentum, cfg_.cosine_schedule}, s.step, s.total_steps);
            ema_update<T>(backbone_, b, tau_);
            ema_update<T>(head_, h.target_part(), tau_);
            for (const auto& k : batch.global_keys.empty() ? batch.keys : batch.global_keys)
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
        /// encode() of the groups g with g % stride == first; the other rows stay 0.
        tensor<T> encode_groups(const tensor<T>& images, std::size_t view, std::size_t first, std::size_t stride) {
            require<shape_error>(images.rank() >= 2 && images.dim(0) >= 1,
                                 "target::queue: expected a batch of images (B, C, H, W), got shape ",
                                 images.shape().str());
            const std::size_t n = images.dim(0), per = images.numel() / n;
            tensor<T> out = tensor<T>::zeros({n, dim_});
            const auto groups = bn_groups(n, view);
            buffer_snapshot keep(*this);
            for (std::size_t g = first; g < groups.size(); g += stride) {
                const auto& grp = groups[g];
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

        /// Data parallel: the keys (P n, d) of the global batch whose rank-r
        /// rows are this rank's `local` images (n, C, H, W); see Choices.
        tensor<T> encode_global(const tensor<T>& local, std::size_t view, dist::communicator& c) {
            require<shape_error>(local.rank() >= 2 && local.dim(0) >= 1,
                                 "target::queue: expected a batch of images (B, C, H, W), got shape ",
                                 local.shape().str());
            const auto P = static_cast<std::size_t>(c.size());
            shape_t s = local.shape();
            s[0] *= P;
            tensor<T> all(s);
            c.allgather(std::span<const T>(local.data(), local.numel()), std::span<T>(all.data(), all.numel()));
            tensor<T> keys;
            {  // a BN group is one batch on one rank: no statistics across ranks here
                dist::step_scope local_bn(c, {.sync_batch_norm = false});
                keys = encode_groups(all, view, static_cast<std::size_t>(c.rank()), P);
            }
            c.allreduce_sum(std::span<T>(keys.data(), keys.numel()));
            return keys;
        }

        void normalize_row(T* row) const { ops::normalize_row(row, dim_, cfg_.eps); }

        /// The key encoder's buffers, put back when the snapshot ends.
        class buffer_snapshot {
        public:
            explicit buffer_snapshot(state& s) : s_(s) {
                s_.visit_buffers([&](auto& t) { saved_.emplace_back(t.clone()); });
            }
            buffer_snapshot(const buffer_snapshot&) = delete;
            buffer_snapshot& operator=(const buffer_snapshot&) = delete;
            ~buffer_snapshot() {
                std::size_t i = 0;
                s_.visit_buffers([&](auto& t) {
                    auto& from = std::get<std::remove_cvref_t<decltype(t)>>(saved_[i++]);
                    std::copy(from.begin(), from.end(), t.begin());
                });
            }

        private:
            state& s_;
            std::vector<std::variant<tensor<float>, tensor<double>, tensor<std::int64_t>>> saved_;
        };
        template <class F>
        void visit_buffers(F&& f) {
            auto g = [&](const std::string&, auto& t) { f(t); };
            backbone_.for_each_buffer(g, "");
            head_.for_each_buffer(g, "");
        }

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
