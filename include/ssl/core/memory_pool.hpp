#pragma once
// A caching allocator for host tensor storage: freed blocks are kept in
// per-size free lists and handed out again, so the steady-state training step
// makes no call to the system allocator (the same idea as PyTorch's caching
// allocators). Blocks are 64-byte aligned (one cache line, one AVX-512 vector).
// With the environment variable SSL_POISON_ALLOCATIONS=1 every block handed
// out (new or reused) is filled with 0xFF bytes, a NaN in float and double:
// a kernel that reads storage it never wrote (the contents of a new tensor
// are unspecified) then produces NaNs instead of whatever the previous owner
// left there; freed blocks are filled the same way and go back to the system
// (no caching), so a reader of freed storage sees NaNs too and AddressSanitizer
// reports it. Tests and the sanitizer pass run with it.
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace ssl {

struct pool_stats {
    std::size_t system_allocations = 0;  ///< calls to the system allocator so far
    std::size_t reuses = 0;              ///< requests served from the free lists
    std::size_t cached_bytes = 0;        ///< bytes sitting in free lists now
    std::size_t live_bytes = 0;          ///< bytes handed out and not yet returned
};

namespace detail {

class host_pool {
public:
    static constexpr std::size_t alignment = 64;

    static host_pool& instance() {
        static host_pool* p = new host_pool();  // never destroyed: tensors in statics may outlive main
        return *p;
    }

    void* allocate(std::size_t bytes) {
        bytes = round(bytes);
        void* p = allocate_rounded(bytes);
        if (poison_) std::memset(p, 0xFF, bytes);
        return p;
    }

private:
    void* allocate_rounded(std::size_t bytes) {
        {
            std::lock_guard lk(mu_);
            auto it = free_.find(bytes);
            if (it != free_.end() && !it->second.empty()) {
                void* p = it->second.back();
                it->second.pop_back();
                stats_.reuses++;
                stats_.cached_bytes -= bytes;
                stats_.live_bytes += bytes;
                return p;
            }
            stats_.system_allocations++;
            stats_.live_bytes += bytes;
        }
        void* p = std::aligned_alloc(alignment, bytes);
        if (!p) {
            // Give the cache back to the system and try once more.
            release_cached();
            p = std::aligned_alloc(alignment, bytes);
            if (!p) throw std::bad_alloc();
        }
        return p;
    }

public:
    void deallocate(void* p, std::size_t bytes) noexcept {
        bytes = round(bytes);
        if (poison_) {  // no caching: a stale reader sees NaNs, and ASan sees the use after free
            std::memset(p, 0xFF, bytes);
            std::free(p);
            std::lock_guard lk(mu_);
            stats_.live_bytes -= bytes;
            return;
        }
        std::lock_guard lk(mu_);
        try {
            free_[bytes].push_back(p);
            stats_.cached_bytes += bytes;
        } catch (...) {
            std::free(p);
        }
        stats_.live_bytes -= bytes;
    }

    /// Frees every cached block (live blocks are untouched).
    void release_cached() noexcept {
        std::lock_guard lk(mu_);
        for (auto& [sz, v] : free_) {
            for (void* p : v) std::free(p);
            v.clear();
        }
        stats_.cached_bytes = 0;
    }

    bool poisoning() const noexcept { return poison_; }

    pool_stats stats() const {
        std::lock_guard lk(mu_);
        return stats_;
    }

private:
    static std::size_t round(std::size_t b) {
        if (b == 0) b = 1;
        return (b + alignment - 1) / alignment * alignment;
    }
    static bool poison_from_environment() noexcept {
        const char* v = std::getenv("SSL_POISON_ALLOCATIONS");
        return v && v[0] != '\0' && v[0] != '0';
    }
    const bool poison_ = poison_from_environment();
    mutable std::mutex mu_;
    std::unordered_map<std::size_t, std::vector<void*>> free_;
    pool_stats stats_;
};

}  // namespace detail

/// Statistics of the host caching allocator (for tests and diagnostics).
inline pool_stats host_pool_stats() { return detail::host_pool::instance().stats(); }
/// Whether SSL_POISON_ALLOCATIONS is on (blocks NaN-filled, no caching).
inline bool host_pool_poisoning() { return detail::host_pool::instance().poisoning(); }
/// Returns all cached (unused) host blocks to the system.
inline void host_pool_release() { detail::host_pool::instance().release_cached(); }

}  // namespace ssl
