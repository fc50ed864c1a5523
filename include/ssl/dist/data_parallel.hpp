#pragma once
// Data parallelism (synchronous SGD over P ranks, as Goyal et al. 2017,
// "Accurate, Large Minibatch SGD", section 3): every rank holds the same
// parameters, takes its contiguous slice of the global batch, runs forward and
// backward, and the gradients are averaged before the optimizer's step, so the
// P ranks compute what one process computes on the global batch.
//
// Contract:
//   - global batch B divisible by P (check_global_batch refuses otherwise,
//     before any communication); rank r's rows are [r B/P, (r+1) B/P) of the
//     global batch (rank_slice), the loader's shared permutation cut in P.
//   - every rank's loss is the mean over its own rows (and, for losses coupled
//     across the batch, the gradient each rank holds is that of P x the global
//     loss with respect to its rows: loss/nt_xent.hpp, nn/batch_norm.hpp);
//     averaging the parameter gradients then gives the one-process gradient.
//   - gradient_averager: the parameters in for_each_parameter order (the same
//     on every rank), packed into buckets of at most `bucket_elements` values,
//     one allreduce per bucket, in that fixed order; then divided by P.
// Design choices:
//   - buckets bound the staging memory and the size of one MPI call, and are
//     the unit a later backward-overlapped version (PyTorch DDP's) launches
//     asynchronously; here they run after backward, blocking.
//   - parameters are broadcast from rank 0 at the start (and after a resume
//     every rank loads the same checkpoint), so identical seeds are not relied on.
#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../nn/parameter.hpp"
#include "communicator.hpp"

namespace ssl::dist {

/// A loss or target-update policy declares `static constexpr bool
/// data_parallel = true` when P ranks running it on their slices compute what
/// one process computes on the global batch (no coupling across samples, or
/// its coupling gathered over dist::active(): NT-Xent, the triplet, CPC; state
/// kept identical on every rank: queues, banks, pseudo-labels). Every policy
/// ssl ships declares it; a policy that does not (a user's, until it is made
/// data parallel) makes the trainer refuse P > 1 ranks instead of silently
/// training something else.
template <class Policy>
inline constexpr bool declares_data_parallel = requires { requires Policy::data_parallel; };

/// Whether method M's loss and target update both declare data_parallel.
template <class M>
inline constexpr bool data_parallel_ready =
    declares_data_parallel<typename M::loss_type> && declares_data_parallel<typename M::target_type>;

/// Refuses a global batch the ranks cannot share equally (before any collective).
inline void check_global_batch(std::size_t global_batch, const communicator& c) {
    const auto p = static_cast<std::size_t>(c.size());
    require<value_error>(global_batch % p == 0, "data parallel: the global batch ", global_batch,
                         " is not divisible by the ", p, " ranks; choose a batch that is a multiple of ", p, " (e.g. ",
                         (global_batch / p + 1) * p, ")");
    require<value_error>(global_batch / p >= 1, "data parallel: the global batch ", global_batch, " gives the ", p,
                         " ranks no rows each");
}

/// Rank r's rows [begin, end) of a global batch of B rows.
inline std::pair<std::size_t, std::size_t> rank_slice(std::size_t global_batch, const communicator& c) {
    check_global_batch(global_batch, c);
    const std::size_t n = global_batch / static_cast<std::size_t>(c.size());
    return {n * static_cast<std::size_t>(c.rank()), n * static_cast<std::size_t>(c.rank() + 1)};
}

/// Rank `root`'s parameter values and buffers to every rank, in the module's
/// for_each_parameter / for_each_buffer order; parameters that are not
/// replicated (shards of a model-parallel layer) are left alone.
template <class M>
void broadcast_state(M& m, communicator& c, int root = 0) {
    if (c.size() == 1) return;
    m.for_each_parameter(
        [&](const std::string&, auto& p) {
            if (p.replicated) c.broadcast(p.value.span(), root);  // a shard stays on its rank
        },
        "");
    m.for_each_buffer(
        [&](const std::string&, auto& t) {
            using U = typename std::remove_cvref_t<decltype(t)>::value_type;
            if constexpr (std::is_same_v<U, float> || std::is_same_v<U, double> || std::is_same_v<U, std::int64_t> ||
                          std::is_same_v<U, std::int32_t>)
                c.broadcast(t.span(), root);
        },
        "");
}

/// Averages the parameter gradients of a module over the ranks, in buckets
/// (the replicated parameters only: a shard's gradient is its rank's own).
template <class T = float>
class gradient_averager {
public:
    static constexpr std::size_t default_bucket_elements = std::size_t(1) << 20;  ///< 4 MiB of float

    explicit gradient_averager(communicator& c, std::size_t bucket_elements = default_bucket_elements)
        : c_(c), cap_(bucket_elements) {
        require<value_error>(bucket_elements > 0, "gradient_averager: bucket_elements must be positive");
    }

    /// grad = (sum over ranks of grad) / P for every parameter of m.
    template <class M>
    void operator()(M& m) {
        if (c_.size() == 1) return;
        std::vector<tensor<T>*> grads;
        m.for_each_parameter(
            [&](const std::string&, parameter<T>& p) {
                if (p.replicated) grads.push_back(&p.grad);  // a shard's gradient is complete on its rank
            },
            "");
        const T inv = T(1) / static_cast<T>(c_.size());
        std::size_t i = 0;
        buckets_ = 0;
        while (i < grads.size()) {
            // one bucket: whole parameters while they fit (a larger one alone, in chunks)
            std::size_t j = i, n = 0;
            while (j < grads.size() && (j == i || n + grads[j]->numel() <= cap_)) n += grads[j++]->numel();
            if (j == i + 1 && n > cap_) {  // one big parameter: reduce it in place, chunk by chunk
                T* g = grads[i]->data();
                for (std::size_t off = 0; off < n; off += cap_) {
                    const std::size_t k = std::min(cap_, n - off);
                    c_.allreduce_sum(std::span<T>(g + off, k));
                    ++buckets_;
                }
                for (std::size_t e = 0; e < n; ++e) g[e] *= inv;
                i = j;
                continue;
            }
            staging_.resize(n);
            std::size_t off = 0;
            for (std::size_t q = i; q < j; ++q) {
                std::copy(grads[q]->begin(), grads[q]->end(), staging_.begin() + static_cast<std::ptrdiff_t>(off));
                off += grads[q]->numel();
            }
            c_.allreduce_sum(std::span<T>(staging_.data(), n));
            ++buckets_;
            off = 0;
            for (std::size_t q = i; q < j; ++q) {
                T* g = grads[q]->data();
                for (std::size_t e = 0; e < grads[q]->numel(); ++e) g[e] = staging_[off + e] * inv;
                off += grads[q]->numel();
            }
            i = j;
        }
    }

    /// Allreduce calls made by the last averaging.
    std::size_t buckets() const noexcept { return buckets_; }

private:
    communicator& c_;
    std::size_t cap_;
    std::size_t buckets_ = 0;
    std::vector<T> staging_;
};

/// The mean over ranks of one value per rank (losses, metrics).
inline double mean_over_ranks(communicator& c, double v) {
    if (c.size() == 1) return v;
    return c.sum(v) / static_cast<double>(c.size());
}

/// True on every rank when `flag` is true on any rank (collective stop, NaN).
inline bool any_rank(communicator& c, bool flag) {
    if (c.size() == 1) return flag;
    return c.max(static_cast<std::int32_t>(flag)) != 0;
}

}  // namespace ssl::dist
