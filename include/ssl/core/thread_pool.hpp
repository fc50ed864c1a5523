#pragma once
// A small persistent thread pool. `parallel_for(n, fn)` runs fn(i, worker)
// for i in [0, n) on the pool; the calling thread takes part, and a call made
// from inside a pool task runs serially (no nested oversubscription).
// `ssl::set_num_threads(k)` resizes it (default: hardware concurrency).
// Tasks are split into one contiguous block per thread (a static schedule),
// so results that combine per-thread partials are reproducible run to run.
//
// Waiting spins, then blocks: a worker that finished its tasks polls for the
// next job for up to `spin_wait()` (default 200 us) before it sleeps on a
// condition variable, and the caller polls for the workers' completion the
// same way. A training step issues ~140 parallel_for calls a few microseconds
// apart; with condition variables alone every call paid two sleeps and two
// wake-ups (~19 us a call measured on a 2-core VM, and the woken thread
// starting late left the other core idle), as OpenMP runtimes spin before
// sleeping for the same reason. `ssl::set_spin_wait(0us)` restores pure
// blocking (for machines shared with other busy processes).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "error.hpp"

namespace ssl {
namespace detail {

class thread_pool {
public:
    static thread_pool& instance() {
        static thread_pool pool(default_threads());
        return pool;
    }

    explicit thread_pool(std::size_t n) { start(n); }
    ~thread_pool() { stop(); }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    /// Number of threads taking part in a parallel_for (workers + caller).
    std::size_t size() const noexcept { return workers_.size() + 1; }

    void resize(std::size_t n) {
        require(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
        std::lock_guard call(call_mu_);
        stop();
        start(n);
    }

    template <class F>
    void parallel_for(std::size_t n, F&& fn) {
        if (n == 0) return;
        if (n == 1 || workers_.empty() || in_task_) {
            for (std::size_t i = 0; i < n; ++i) fn(i, std::size_t{0});
            return;
        }
        std::lock_guard call(call_mu_);
        std::function<void(std::size_t, std::size_t)> f = [&fn](std::size_t i, std::size_t w) { fn(i, w); };
        {
            std::lock_guard lk(mu_);
            job_ = &f;
            n_tasks_ = n;
            pending_.store(workers_.size(), std::memory_order_relaxed);
            error_ = nullptr;
            generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
        }
        cv_.notify_all();  // no system call when no worker sleeps
        run_tasks(0);
        if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
            std::unique_lock lk(mu_);
            done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
        }
        std::lock_guard lk(mu_);
        job_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

    /// How long an idle thread polls for work before it sleeps.
    std::chrono::microseconds spin_wait() const noexcept {
        return std::chrono::microseconds(spin_us_.load(std::memory_order_relaxed));
    }
    void set_spin_wait(std::chrono::microseconds t) {
        require(t.count() >= 0 && t <= max_spin, "set_spin_wait: ", t.count(), " us is outside [0, ",
                max_spin.count(), "] us");
        spin_us_.store(t.count(), std::memory_order_relaxed);
    }
    static constexpr std::chrono::microseconds max_spin{1000000};

private:
    static std::size_t default_threads() {
        unsigned h = std::thread::hardware_concurrency();
        return h == 0 ? 1 : h;
    }

    static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");  // the spin-wait hint (as pause on x86)
#endif
    }
    /// Polls ready() for up to spin_wait(); true when it became true. No
    /// spinning when the pool has more threads than the machine has
    /// hardware threads (a spinner would hold a core another thread needs),
    /// and a yield now and then for containers limited to fewer cores.
    template <class Ready>
    bool spin_until(Ready ready) const {
        const auto limit = spin_wait();
        if (limit.count() == 0 || oversubscribed_) return ready();
        const auto until = std::chrono::steady_clock::now() + limit;
        for (unsigned round = 1;; ++round) {
            for (int i = 0; i < 64; ++i) {
                if (ready()) return true;
                cpu_relax();
            }
            if (std::chrono::steady_clock::now() >= until) return ready();
            if (round % 16 == 0) std::this_thread::yield();
        }
    }

    void start(std::size_t n) {
        quit_.store(false, std::memory_order_relaxed);
        oversubscribed_ = n > default_threads();
        // New workers must not take the last job (already done) for a new one.
        const std::size_t current = generation_.load(std::memory_order_relaxed);
        for (std::size_t w = 1; w < n; ++w) workers_.emplace_back([this, w, current] { loop(w, current); });
    }
    void stop() {
        {
            std::lock_guard lk(mu_);
            quit_.store(true, std::memory_order_release);
        }
        cv_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    }

    // Static schedule: worker w runs the contiguous block of tasks
    // [w n / W, (w + 1) n / W) in order. Which worker computes which task is
    // then fixed for a given thread count, so per-worker partial sums (weight
    // gradients) add up in the same order every run: training is bitwise
    // reproducible at a fixed number of threads.
    void run_tasks(std::size_t w) {
        in_task_ = true;
        const std::size_t W = workers_.size() + 1;
        const std::size_t begin = w * n_tasks_ / W, end = (w + 1) * n_tasks_ / W;
        for (std::size_t i = begin; i < end; ++i) {
            try {
                (*job_)(i, w);
            } catch (...) {
                std::lock_guard lk(mu_);
                if (!error_) error_ = std::current_exception();
            }
        }
        in_task_ = false;
    }

    void loop(std::size_t w, std::size_t seen) {
        for (;;) {
            if (!spin_until([&] {
                    return quit_.load(std::memory_order_acquire) ||
                           generation_.load(std::memory_order_acquire) != seen;
                })) {
                std::unique_lock lk(mu_);
                cv_.wait(lk, [&] { return quit_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_acquire) != seen; });
            }
            if (quit_.load(std::memory_order_acquire)) return;
            seen = generation_.load(std::memory_order_acquire);
            run_tasks(w);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                // The caller checks pending_ under mu_ before it sleeps: taking
                // mu_ here orders this notify after that check.
                { std::lock_guard lk(mu_); }
                done_cv_.notify_one();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::mutex mu_, call_mu_;
    std::condition_variable cv_, done_cv_;
    std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
    std::size_t n_tasks_ = 0;
    std::atomic<std::size_t> pending_{0};
    std::atomic<std::size_t> generation_{0};
    std::atomic<long long> spin_us_{200};
    std::atomic<bool> quit_{false};
    bool oversubscribed_ = false;  // more threads than hardware threads: no spinning
    std::exception_ptr error_;
    static inline thread_local bool in_task_ = false;
};

}  // namespace detail

/// Sets the number of host threads used by ssl's parallel kernels. A set-up
/// call: make it while no other thread runs ssl work (the pool's workers are
/// stopped and restarted).
inline void set_num_threads(std::size_t n) { detail::thread_pool::instance().resize(n); }
/// How long idle pool threads poll for the next parallel_for before they
/// sleep (default 200 us, at most 1 s; 0: sleep at once, for machines shared
/// with other busy processes). Pools with more threads than the machine has
/// hardware threads never spin.
inline void set_spin_wait(std::chrono::microseconds t) { detail::thread_pool::instance().set_spin_wait(t); }
/// The current polling time of idle pool threads (set_spin_wait).
inline std::chrono::microseconds spin_wait() { return detail::thread_pool::instance().spin_wait(); }
/// The number of host threads ssl's parallel kernels use.
inline std::size_t num_threads() { return detail::thread_pool::instance().size(); }

/// Runs fn(i, worker) for every i in [0, n) on the host thread pool.
template <class F>
void parallel_for(std::size_t n, F&& fn) {
    detail::thread_pool::instance().parallel_for(n, std::forward<F>(fn));
}

namespace detail {
/// p[0..n) = value, split over the pool in runs of at least 16 K elements
/// (zeroing a convolution's multi-megabyte buffers on the calling thread
/// alone left the other cores idle meanwhile).
template <class T>
void parallel_fill(T* p, std::size_t n, T value) {
    constexpr std::size_t min_run = std::size_t{1} << 14;
    const std::size_t runs = std::min(n / min_run, 4 * num_threads());
    if (runs <= 1) {
        std::fill(p, p + n, value);
        return;
    }
    parallel_for(runs, [&](std::size_t r, std::size_t) { std::fill(p + r * n / runs, p + (r + 1) * n / runs, value); });
}
}  // namespace detail

}  // namespace ssl
