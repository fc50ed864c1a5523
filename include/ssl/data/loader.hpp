#pragma once
// ssl::data::loader: an image_dataset in batches, epoch by epoch.
//
//   ssl::data::loader ld(ds, {.batch_size = 256, .seed = 1, .workers = 2});
//   for (std::size_t e = 0; e < epochs; ++e)
//       for (auto& b : ld.epoch(e)) {   // b.images (B, C, H, W) floats in [0, 1]
//           train_step(b.images, b.labels);
//       }
//
// Order: with shuffle, epoch e visits the samples in a permutation drawn from
// ssl::philox(seed, stream_id(loader_stream_tag, e)), so it depends on the
// seed and the epoch only (not on the number of workers or threads, nor on
// what was read before); without shuffle, in index order. The last, short
// batch is kept unless drop_last.
//
// Prefetch: with workers > 0, that many background threads prepare the next
// `prefetch` batches while the consumer works on the current one; batches are
// still delivered in order. With workers = 0 each batch is made on the
// consumer's thread when the iteration reaches it. Batches are made on the
// calling / worker thread only (never on ssl's thread pool), so they do not
// compete with the training step's parallel kernels for the pool.
//
// prepare: an optional callable run on the worker for every batch (the
// trainer's augmentations). Either
//   void(batch&)      modifies the batch in place; the loop yields batches, or
//   R(batch&&)        returns something else (two augmented views, ...); the
//                     loop yields R.
// With workers > 1 (or two epochs' ranges alive at once) it is called
// concurrently from several threads, so it must be safe for that (draw random
// numbers from philox keyed by b.epoch and b.indices, not from shared state).
//
// Ending early: leaving the loop (break, return, an exception) destroys the
// epoch's range, which stops the workers and joins them; a batch being
// prepared is finished first, nothing more is started. An exception thrown
// while making or preparing batch k is rethrown to the consumer when the
// iteration reaches batch k (batches before it are delivered normally).
#include <algorithm>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {

/// One batch: which samples, their images as floats and their labels.
struct batch {
    std::size_t epoch = 0;
    std::size_t number = 0;            ///< position of the batch in its epoch (0, 1, ...)
    std::vector<std::size_t> indices;  ///< the samples' indices in the data set
    tensor<float> images;              ///< (B, C, H, W), values in [0, 1]
    std::vector<std::int64_t> labels;  ///< B labels, or empty when the set is unlabelled
    std::size_t size() const noexcept { return indices.size(); }
};

struct loader_options {
    std::size_t batch_size = 256;
    bool shuffle = true;
    bool drop_last = false;    ///< drop the last batch when it is shorter than batch_size
    std::uint64_t seed = 0;    ///< shuffling seed
    std::size_t workers = 0;   ///< background threads making batches; 0: made on the consumer's thread
    std::size_t prefetch = 2;  ///< batches made ahead of the consumer (with workers > 0), >= 1
    // data parallel (dist/data_parallel.hpp): batch_size is the global batch;
    // this process gets rows [rank B / ranks, (rank + 1) B / ranks) of every
    // batch of the shared permutation (B divisible by ranks, drop_last).
    std::size_t rank = 0;   ///< this process's rank
    std::size_t ranks = 1;  ///< processes sharing every batch
};

/// The philox stream tag of the loader's shuffles (the stream of epoch e is
/// stream_id(loader_stream_tag, e)), distinct from other users of a seed.
inline constexpr std::uint64_t loader_stream_tag = 0x10ade7;

/// The default prepare step: leaves the batch as it is.
struct no_prepare {
    void operator()(batch&) const noexcept {}
};

namespace detail {

template <class P>
concept prepares_in_place = std::invocable<P&, batch&> && std::same_as<std::invoke_result_t<P&, batch&>, void>;

template <class P>
auto apply_prepare(P& p, batch&& b) {
    if constexpr (prepares_in_place<P>) {
        std::invoke(p, b);
        return std::move(b);
    } else if constexpr (std::is_invocable_v<P&, batch&&>) {
        static_assert(!std::is_void_v<std::invoke_result_t<P&, batch&&>>,
                      "ssl::data::loader: a prepare callable that returns nothing must take `batch&` (it modifies the "
                      "batch in place); one that takes `batch&&` or `batch` must return what the loop should yield");
        return std::invoke(p, std::move(b));
    } else {
        static_assert(dependent_false<P>,
                      "ssl::data::loader: prepare must be callable as void(ssl::data::batch&) or R(ssl::data::batch&&)");
    }
}

}  // namespace detail

template <class Prepare = no_prepare>
class loader {
public:
    /// What iterating an epoch yields: batch, or what prepare returns.
    using value_type = decltype(detail::apply_prepare(std::declval<Prepare&>(), std::declval<batch&&>()));
    static_assert(std::is_move_constructible_v<value_type> && std::is_move_assignable_v<value_type>,
                  "ssl::data::loader: what prepare returns must be movable");

    /// Keeps a copy of `ds` (cheap: the image bytes are shared, not copied).
    explicit loader(image_dataset ds, loader_options opt = {}, Prepare prepare = {})
        : st_(std::make_shared<state>(state{std::move(ds), opt, std::move(prepare)})) {
        require(opt.batch_size >= 1, "loader: batch_size must be at least 1, got ", opt.batch_size);
        require(opt.workers <= 1024, "loader: workers = ", opt.workers, " is more than 1024 threads");
        require(opt.workers == 0 || (opt.prefetch >= 1 && opt.prefetch <= 1u << 16), "loader: prefetch must be in [1, 65536] when workers > 0, got ",
                opt.prefetch);
        require(opt.ranks >= 1 && opt.rank < opt.ranks, "loader: rank ", opt.rank, " is not one of ", opt.ranks, " ranks");
        require(opt.ranks == 1 || (opt.batch_size % opt.ranks == 0 && opt.drop_last), "loader: the global batch ",
                opt.batch_size, " must be divisible by the ", opt.ranks, " ranks (with drop_last) to split it");
        const auto& d = st_->ds;
        require(d.images.rank() == 4, "loader: ", d.describe(), " has images of shape ", d.images.shape().str(),
                ", expected (N, C, H, W)");
        require(!opt.drop_last || d.size() == 0 || opt.batch_size <= d.size(), "loader: batch_size ", opt.batch_size,
                " with drop_last gives no batch at all from the ", d.size(), " images of ", d.describe());
    }

    const image_dataset& dataset() const noexcept { return st_->ds; }
    const loader_options& options() const noexcept { return st_->opt; }

    /// Batches in one epoch.
    std::size_t batches_per_epoch() const noexcept {
        const std::size_t n = st_->ds.size(), b = st_->opt.batch_size;
        return st_->opt.drop_last ? n / b : (n + b - 1) / b;
    }
    std::size_t size() const noexcept { return batches_per_epoch(); }

    /// The order in which epoch `e` visits the samples (all N of them, also
    /// those a drop_last epoch leaves out at the end).
    std::vector<std::size_t> order(std::size_t e) const {
        const std::size_t n = st_->ds.size();
        std::vector<std::size_t> o(n);
        for (std::size_t i = 0; i < n; ++i) o[i] = i;
        if (st_->opt.shuffle && n > 1) {
            philox g(st_->opt.seed, stream_id(loader_stream_tag, e));
            for (std::size_t i = n - 1; i > 0; --i) std::swap(o[i], o[static_cast<std::size_t>(g.below(i + 1))]);
        }
        return o;
    }

    /// Batch `k` of epoch `e`, made on the calling thread (prepare included).
    value_type get(std::size_t e, std::size_t k) const {
        require(k < batches_per_epoch(), "loader: batch ", k, " requested from an epoch of ", batches_per_epoch(),
                " batches");
        return st_->make(order(e), e, k);
    }

private:
    struct state {
        image_dataset ds;
        loader_options opt;
        Prepare prepare;

        value_type make(const std::vector<std::size_t>& order, std::size_t e, std::size_t k) {
            std::size_t begin = k * opt.batch_size;
            std::size_t end = std::min(order.size(), begin + opt.batch_size);
            if (opt.ranks > 1) {  // this rank's contiguous slice of the global batch
                const std::size_t share = opt.batch_size / opt.ranks;
                begin += opt.rank * share;
                end = begin + share;
            }
            batch b;
            b.epoch = e;
            b.number = k;
            b.indices.assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                             order.begin() + static_cast<std::ptrdiff_t>(end));
            b.images = ds.batch(b.indices);
            b.labels = ds.labels_of(b.indices);
            return detail::apply_prepare(prepare, std::move(b));
        }
    };
    std::shared_ptr<state> st_;

public:
    /// One epoch's batches. Not copyable or movable (its workers refer to it);
    /// keep it as the temporary of a range-for or as a local variable.
    class epoch_range {
    public:
        epoch_range(const epoch_range&) = delete;
        epoch_range& operator=(const epoch_range&) = delete;
        ~epoch_range() { stop(); }

        class iterator {
        public:
            using iterator_category = std::input_iterator_tag;
            using value_type = typename loader::value_type;
            using difference_type = std::ptrdiff_t;
            using pointer = value_type*;
            using reference = value_type&;

            iterator() = default;
            value_type& operator*() const { return *r_->current_; }
            value_type* operator->() const { return &*r_->current_; }
            iterator& operator++() {
                r_->advance();
                return *this;
            }
            void operator++(int) { ++*this; }
            friend bool operator==(const iterator& i, std::default_sentinel_t) noexcept { return i.at_end(); }

        private:
            bool at_end() const noexcept { return !r_ || !r_->current_.has_value(); }
            friend class epoch_range;
            explicit iterator(epoch_range* r) : r_(r) {}
            epoch_range* r_ = nullptr;
        };

        /// Waits for the first batch. Call once.
        iterator begin() {
            require(!begun_, "loader::epoch_range: begin() called twice; iterate an epoch once (call epoch(e) again "
                             "for another pass)");
            begun_ = true;
            advance();
            return iterator(this);
        }
        std::default_sentinel_t end() const noexcept { return {}; }

        /// Batches in this epoch (including any skipped by starting later).
        std::size_t size() const noexcept { return count_; }
        std::size_t epoch() const noexcept { return epoch_; }
        /// The sample order of this epoch.
        const std::vector<std::size_t>& order() const noexcept { return order_; }

    private:
        friend class loader;

        struct slot {
            std::optional<value_type> value;
            std::exception_ptr error;
            bool ready = false;
        };

        epoch_range(std::shared_ptr<state> st, std::vector<std::size_t> order, std::size_t e, std::size_t first)
            : st_(std::move(st)), order_(std::move(order)), epoch_(e) {
            const std::size_t n = order_.size(), b = st_->opt.batch_size;
            count_ = st_->opt.drop_last ? n / b : (n + b - 1) / b;
            require(first <= count_, "loader: cannot start epoch ", e, " at batch ", first, ", it has ", count_,
                    " batches");
            pos_ = next_ = taken_ = first;
            const std::size_t workers = std::min(st_->opt.workers, count_ - first);
            if (workers == 0) return;
            ring_.resize(std::min(st_->opt.prefetch, count_ - first));
            try {
                for (std::size_t w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
            } catch (...) {
                stop();
                throw;
            }
        }

        void stop() noexcept {
            {
                std::lock_guard lk(mu_);
                stop_ = true;
            }
            work_cv_.notify_all();
            for (auto& t : threads_)
                if (t.joinable()) t.join();
            threads_.clear();
        }

        void work() {
            const std::size_t cap = ring_.size();
            for (;;) {
                std::size_t k;
                {
                    std::unique_lock lk(mu_);
                    work_cv_.wait(lk, [&] { return stop_ || failed_ || next_ >= count_ || next_ < taken_ + cap; });
                    if (stop_ || failed_ || next_ >= count_) return;
                    k = next_++;
                }
                std::optional<value_type> v;
                std::exception_ptr err;
                try {
                    v.emplace(st_->make(order_, epoch_, k));
                } catch (...) {
                    err = std::current_exception();
                }
                {
                    std::lock_guard lk(mu_);
                    slot& s = ring_[k % cap];
                    s.value = std::move(v);
                    s.error = err;
                    s.ready = true;
                    if (err) failed_ = true;
                }
                ready_cv_.notify_all();
                if (err) work_cv_.notify_all();
            }
        }

        /// Makes the next batch current (or ends the iteration).
        void advance() {
            current_.reset();
            if (error_) std::rethrow_exception(error_);
            if (pos_ >= count_) return;
            const std::size_t k = pos_++;
            if (threads_.empty()) {
                try {
                    current_.emplace(st_->make(order_, epoch_, k));
                } catch (...) {
                    error_ = std::current_exception();
                    throw;
                }
                return;
            }
            std::optional<value_type> v;
            {
                std::unique_lock lk(mu_);
                slot& s = ring_[k % ring_.size()];
                ready_cv_.wait(lk, [&] { return s.ready; });
                v = std::move(s.value);
                error_ = s.error;
                s.value.reset();
                s.error = nullptr;
                s.ready = false;
                ++taken_;
            }
            work_cv_.notify_all();
            if (error_) std::rethrow_exception(error_);
            current_ = std::move(v);
        }

        std::shared_ptr<state> st_;
        std::vector<std::size_t> order_;
        std::size_t epoch_ = 0;
        std::size_t count_ = 0;  // batches in the epoch
        std::size_t pos_ = 0;    // batches handed to the consumer so far
        bool begun_ = false;
        std::optional<value_type> current_;
        std::exception_ptr error_;  // set once a batch failed: the iteration cannot go on

        std::mutex mu_;
        std::condition_variable work_cv_, ready_cv_;
        std::vector<slot> ring_;  // batch k waits in ring_[k % size]
        std::size_t next_ = 0;    // next batch number for a worker to make
        std::size_t taken_ = 0;   // batches the consumer has taken from the ring
        bool stop_ = false, failed_ = false;
        std::vector<std::thread> threads_;
    };

    /// The batches of epoch `e`, as a range for a range-for loop, starting at
    /// batch `first` (to resume inside an epoch; earlier batches are not
    /// made). With workers > 0 the workers start now; destroying the range
    /// stops them.
    epoch_range epoch(std::size_t e, std::size_t first = 0) const { return epoch_range(st_, order(e), e, first); }

    /// The batches of epoch `e` in a given sample order instead of the
    /// loader's own (a sampler's: uniform over pseudo-labels, ...): exactly N
    /// indices into the data set, repeats allowed; batching, drop_last,
    /// workers and prefetch as for epoch(e, first).
    epoch_range epoch(std::size_t e, std::size_t first, std::vector<std::size_t> order) const {
        const std::size_t n = st_->ds.size();
        require(order.size() == n, "loader: a custom epoch order must have one entry per sample (", n, "), got ",
                order.size());
        for (std::size_t i : order)
            require(i < n, "loader: a custom epoch order names sample ", i, " of a data set of ", n);
        return epoch_range(st_, std::move(order), e, first);
    }
};

}  // namespace ssl::data
