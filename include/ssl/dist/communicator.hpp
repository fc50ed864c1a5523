#pragma once
// ssl::dist::communicator: the collectives data-parallel training needs, over
// an existing engine (MPI on the host, dist/mpi.hpp; NCCL for CUDA later).
//
// Contract (every implementation):
//   - P ranks 0..P-1; every rank calls the same collectives in the same order
//     with the same counts (a collective is a meeting: a rank that skips one
//     hangs the others). Calls block until this rank's part is complete.
//   - Equal counts per rank only (allgather, reduce-scatter, all-to-all take
//     `count` elements per rank), as NCCL's ncclAllGather / ncclReduceScatter.
//   - Sums are in the buffer's own type; the order in which an engine adds the
//     P contributions is its own (results equal a one-process sum up to float
//     summation order), but every rank receives the same bits.
//   - Buffers are contiguous arrays of float, double, int32 or int64 in the
//     memory the implementation works on (host memory for single_process and
//     MPI; device memory for a future NCCL communicator, whose unique id is
//     broadcast over an MPI communicator first). Send and receive buffers of
//     one call may be the same array only where a function says "in place".
//   - Errors throw ssl::dist_error naming the collective, the counts and the
//     engine's message.
// Why this shape (one line per choice):
//   - virtual, type-erased (pointer, count, dtype) calls: one interface for
//     MPI and NCCL, whose C APIs are exactly this; typed span helpers on top.
//   - no user-defined reductions, only sum (and max via dtype int for flags):
//     NCCL offers sum/max/min/prod, nothing else.
//   - no point-to-point send/recv in the interface yet: nothing needs it, and
//     all-to-all covers shuffle-BN and sharded classifiers.
//   - the single-process communicator is the default everywhere, so code that
//     never heard of MPI behaves exactly as before.
//   - groups of ranks by split(color, key), as MPI_Comm_split (and NCCL's
//     ncclCommSplit): synchronized batch norm within groups of ranks.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"

namespace ssl {

/// A collective failed, or was called wrongly (counts, ranks, engine error).
class dist_error : public error {
public:
    using error::error;
};

namespace dist {

/// Element types the collectives carry.
enum class dtype { f32, f64, i32, i64 };

inline std::size_t size_of(dtype t) noexcept {
    return t == dtype::f32 || t == dtype::i32 ? 4 : 8;
}
inline const char* name_of(dtype t) noexcept {
    switch (t) {
        case dtype::f32: return "float32";
        case dtype::f64: return "float64";
        case dtype::i32: return "int32";
        default: return "int64";
    }
}

template <class T>
constexpr dtype dtype_of() {
    if constexpr (std::is_same_v<T, float>) return dtype::f32;
    else if constexpr (std::is_same_v<T, double>) return dtype::f64;
    else if constexpr (std::is_same_v<T, std::int32_t>) return dtype::i32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return dtype::i64;
    else static_assert(dependent_false<T>, "ssl::dist: collectives carry float, double, int32_t or int64_t");
}

class communicator {
public:
    virtual ~communicator() = default;

    virtual int rank() const noexcept = 0;
    virtual int size() const noexcept = 0;
    /// "single process", "MPI (Open MPI v4.1.4)", ... for messages and logs.
    virtual std::string name() const = 0;

    /// In place: buf[i] = sum over ranks of buf[i], `count` elements.
    virtual void allreduce_sum(void* buf, std::size_t count, dtype t) = 0;
    /// In place: buf[i] = max over ranks of buf[i] (flags: stop, non-finite).
    virtual void allreduce_max(void* buf, std::size_t count, dtype t) = 0;
    /// recv (size * count) = the ranks' send (count each), in rank order.
    virtual void allgather(const void* send, void* recv, std::size_t count, dtype t) = 0;
    /// send (size * count): rank r receives in recv (count) the sum over ranks
    /// of their block r of send. The adjoint of allgather.
    virtual void reduce_scatter_sum(const void* send, void* recv, std::size_t count, dtype t) = 0;
    /// send (size * count): block q goes to rank q; recv (size * count): block
    /// q came from rank q.
    virtual void all_to_all(const void* send, void* recv, std::size_t count, dtype t) = 0;
    /// In place: every rank's buf = root's buf.
    virtual void broadcast(void* buf, std::size_t count, dtype t, int root) = 0;
    virtual void barrier() = 0;
    /// Collective: the ranks that pass the same `color` form a communicator
    /// of their own, ranked by `key` (then by rank here). Every rank gets its
    /// group's communicator; the groups' collectives are independent.
    virtual std::unique_ptr<communicator> split(int color, int key) {
        (void)color, (void)key;
        throw dist_error("dist: the communicator '" + name() + "' cannot form groups of ranks (split)");
    }

    // --- typed helpers -------------------------------------------------------
    template <class T>
    void allreduce_sum(std::span<T> buf) {
        allreduce_sum(buf.data(), buf.size(), dtype_of<T>());
    }
    template <class T>
    void allreduce_max(std::span<T> buf) {
        allreduce_max(buf.data(), buf.size(), dtype_of<T>());
    }
    template <class T>
    void allgather(std::span<const T> send, std::span<T> recv) {
        check_blocks("allgather", recv.size(), send.size());
        allgather(send.data(), recv.data(), send.size(), dtype_of<T>());
    }
    template <class T>
    void reduce_scatter_sum(std::span<const T> send, std::span<T> recv) {
        check_blocks("reduce_scatter_sum", send.size(), recv.size());
        reduce_scatter_sum(send.data(), recv.data(), recv.size(), dtype_of<T>());
    }
    template <class T>
    void all_to_all(std::span<const T> send, std::span<T> recv) {
        require<dist_error>(send.size() == recv.size() && send.size() % static_cast<std::size_t>(size()) == 0,
                            "dist::all_to_all: send has ", send.size(), " and recv ", recv.size(),
                            " elements; both must be the same multiple of the ", size(), " ranks");
        all_to_all(send.data(), recv.data(), send.size() / static_cast<std::size_t>(size()), dtype_of<T>());
    }
    template <class T>
    void broadcast(std::span<T> buf, int root = 0) {
        require<dist_error>(root >= 0 && root < size(), "dist::broadcast: root ", root, " is not a rank of ", size());
        broadcast(buf.data(), buf.size(), dtype_of<T>(), root);
    }
    /// One value summed (or maxed) over ranks.
    template <class T>
    T sum(T v) {
        allreduce_sum(std::span<T>(&v, 1));
        return v;
    }
    template <class T>
    T max(T v) {
        allreduce_max(std::span<T>(&v, 1));
        return v;
    }

protected:
    void check_blocks(const char* what, std::size_t whole, std::size_t block) const {
        require<dist_error>(whole == block * static_cast<std::size_t>(size()), "dist::", what, ": the gathered buffer has ",
                            whole, " elements, expected ", size(), " ranks x ", block);
    }
};

/// One process: rank 0 of 1. Every collective is a copy (or nothing).
class single_process final : public communicator {
public:
    int rank() const noexcept override { return 0; }
    int size() const noexcept override { return 1; }
    std::string name() const override { return "single process"; }
    void allreduce_sum(void*, std::size_t, dtype) override {}
    void allreduce_max(void*, std::size_t, dtype) override {}
    void allgather(const void* send, void* recv, std::size_t count, dtype t) override { copy(send, recv, count, t); }
    void reduce_scatter_sum(const void* send, void* recv, std::size_t count, dtype t) override {
        copy(send, recv, count, t);
    }
    void all_to_all(const void* send, void* recv, std::size_t count, dtype t) override { copy(send, recv, count, t); }
    void broadcast(void*, std::size_t, dtype, int root) override {
        require<dist_error>(root == 0, "dist::broadcast: root ", root, " in a single process (only rank 0)");
    }
    void barrier() override {}
    std::unique_ptr<communicator> split(int, int) override { return std::make_unique<single_process>(); }
    using communicator::allgather;
    using communicator::allreduce_max;
    using communicator::allreduce_sum;
    using communicator::all_to_all;
    using communicator::broadcast;
    using communicator::reduce_scatter_sum;

private:
    static void copy(const void* s, void* d, std::size_t count, dtype t) {
        if (s != d && count) std::memmove(d, s, count * size_of(t));
    }
};

/// The process-wide single-process communicator (the default).
inline communicator& single() {
    static single_process s;
    return s;
}

/// Wraps another communicator and counts calls and bytes each rank sends
/// (payload only: allreduce and broadcast count `count` elements, allgather
/// `count`, reduce-scatter and all-to-all `size * count`), for tests and the
/// traffic reports.
class counting final : public communicator {
public:
    explicit counting(communicator& inner) : c_(inner) {}
    /// Owns its inner communicator (a group made by split).
    explicit counting(std::unique_ptr<communicator> inner) : owned_(std::move(inner)), c_(*owned_) {}
    int rank() const noexcept override { return c_.rank(); }
    int size() const noexcept override { return c_.size(); }
    std::string name() const override { return "counting(" + c_.name() + ")"; }
    void allreduce_sum(void* b, std::size_t n, dtype t) override { note(n, t), c_.allreduce_sum(b, n, t); }
    void allreduce_max(void* b, std::size_t n, dtype t) override { note(n, t), c_.allreduce_max(b, n, t); }
    void allgather(const void* s, void* r, std::size_t n, dtype t) override { note(n, t), c_.allgather(s, r, n, t); }
    void reduce_scatter_sum(const void* s, void* r, std::size_t n, dtype t) override {
        note(n * static_cast<std::size_t>(size()), t), c_.reduce_scatter_sum(s, r, n, t);
    }
    void all_to_all(const void* s, void* r, std::size_t n, dtype t) override {
        note(n * static_cast<std::size_t>(size()), t), c_.all_to_all(s, r, n, t);
    }
    void broadcast(void* b, std::size_t n, dtype t, int root) override { note(n, t), c_.broadcast(b, n, t, root); }
    void barrier() override {
        ++calls;
        c_.barrier();
    }
    /// The group counts its own traffic (one counting communicator per group).
    std::unique_ptr<communicator> split(int color, int key) override {
        ++calls;
        return std::make_unique<counting>(c_.split(color, key));
    }
    using communicator::allgather;
    using communicator::allreduce_max;
    using communicator::allreduce_sum;
    using communicator::all_to_all;
    using communicator::broadcast;
    using communicator::reduce_scatter_sum;

    std::size_t calls = 0, bytes = 0;

private:
    void note(std::size_t n, dtype t) {
        ++calls;
        bytes += n * size_of(t);
    }
    std::unique_ptr<communicator> owned_;
    communicator& c_;
};

/// Collective: every rank's `mine` (its local batch's sizes) must equal rank
/// 0's, as a loss that gathers rows over the ranks needs; otherwise every rank
/// throws shape_error naming the first rank that differs, describe(sizes)
/// wording them ("3 pairs of dimension 4").
template <class Describe>
void require_same_on_ranks(communicator& c, std::span<const std::int64_t> mine, const char* what, Describe&& describe) {
    const auto P = static_cast<std::size_t>(c.size()), n = mine.size();
    std::vector<std::int64_t> all(n * P);
    c.allgather(mine, std::span<std::int64_t>(all));
    const std::span<const std::int64_t> first(all.data(), n);
    for (std::size_t q = 1; q < P; ++q) {
        const std::span<const std::int64_t> theirs(all.data() + q * n, n);
        if (!std::equal(theirs.begin(), theirs.end(), first.begin()))
            throw shape_error(ssl::detail::cat(what, " over ", P, " ranks: rank ", q, " has ", describe(theirs), ", rank 0 ",
                                          describe(first), "; every rank needs the same local batch"));
    }
}

// --- the communicator of the running step ------------------------------------
// Layers and losses that must see the whole global batch (synchronized batch
// norm, NT-Xent's negatives from all ranks) take their communicator from the
// step that runs them: the trainer opens a step_scope around forward and
// backward. Outside a scope (evaluation, embedding, a plain one-process
// program) they see none and compute over the local batch, exactly as before.
// Thread-local: a scope opened on one thread is not seen by another.

struct step_options {
    bool sync_batch_norm = true;  ///< batch norm statistics over all ranks of the scope
    /// With sync_batch_norm: statistics within this group of ranks (a
    /// communicator from split) instead of all ranks; null: all ranks.
    communicator* batch_norm_group = nullptr;
};

namespace detail {
struct active_state {
    communicator* comm = nullptr;
    step_options opt{};
};
inline active_state& active_slot() noexcept {
    thread_local active_state s;
    return s;
}
}  // namespace detail

/// The communicator of the running step, or null (one process, or outside a step).
inline communicator* active() noexcept {
    auto* c = detail::active_slot().comm;
    return c && c->size() > 1 ? c : nullptr;
}
/// The communicator batch norm synchronizes over (all ranks of the step, or
/// its batch-norm group), or null (local statistics: no sync, or a group of one).
inline communicator* batch_norm_group() noexcept {
    const auto& s = detail::active_slot();
    if (!s.opt.sync_batch_norm || !active()) return nullptr;
    if (communicator* g = s.opt.batch_norm_group) return g->size() > 1 ? g : nullptr;
    return active();
}

/// Groups of `group_size` consecutive ranks of c (ranks [g G, (g + 1) G)), by
/// split; collective. Refuses a size that does not divide c's ranks.
inline std::unique_ptr<communicator> consecutive_groups(communicator& c, std::size_t group_size) {
    const auto P = static_cast<std::size_t>(c.size());
    require<dist_error>(group_size >= 1 && group_size <= P && P % group_size == 0, "dist: groups of ", group_size,
                        " ranks do not divide the ", P, " ranks (the group size must be a divisor of the rank count)");
    const int g = static_cast<int>(group_size);
    return c.split(c.rank() / g, c.rank());
}

/// Makes `c` the active communicator until the scope ends (nesting restores).
class step_scope {
public:
    explicit step_scope(communicator& c, step_options o = {}) : prev_(detail::active_slot()) {
        detail::active_slot() = {&c, o};
    }
    step_scope(const step_scope&) = delete;
    step_scope& operator=(const step_scope&) = delete;
    ~step_scope() { detail::active_slot() = prev_; }

private:
    detail::active_state prev_;
};

}  // namespace dist
}  // namespace ssl
