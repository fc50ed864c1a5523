#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11).
// A stream is keyed by a 64-bit seed and a 64-bit stream id (for example
// hash(epoch, sample, view)), and the n-th draw of a stream is a pure function
// of (seed, stream, n). The same draws can therefore be made on any thread,
// in any order, and on any backend. Distributions are written here (not
// std::normal_distribution, whose output differs between standard libraries)
// so results are bit-identical everywhere.
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

namespace ssl {

class philox {
public:
    using result_type = std::uint32_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

    explicit philox(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept
        : key_{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)},
          stream_(stream) {}

    /// The four 32-bit words of block `n` of this stream.
    std::array<std::uint32_t, 4> block(std::uint64_t n) const noexcept {
        std::array<std::uint32_t, 4> c{static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(n >> 32),
                                       static_cast<std::uint32_t>(stream_),
                                       static_cast<std::uint32_t>(stream_ >> 32)};
        std::array<std::uint32_t, 2> k = key_;
        for (int r = 0; r < 10; ++r) {
            const std::uint64_t p0 = std::uint64_t{0xD2511F53u} * c[0];
            const std::uint64_t p1 = std::uint64_t{0xCD9E8D57u} * c[2];
            c = {static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<std::uint32_t>(p1),
                 static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<std::uint32_t>(p0)};
            k[0] += 0x9E3779B9u;
            k[1] += 0xBB67AE85u;
        }
        return c;
    }

    result_type operator()() noexcept {
        if (idx_ == 4) {
            buf_ = block(counter_++);
            idx_ = 0;
        }
        return buf_[idx_++];
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable in float).
    float uniform() noexcept { return static_cast<float>((*this)() >> 8) * (1.0f / 16777216.0f); }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept {
        const std::uint64_t a = (*this)(), b = (*this)();
        const double u = static_cast<double>(((a << 32) | b) >> 11) * (1.0 / 9007199254740992.0);
        return lo + (hi - lo) * u;
    }
    /// Standard normal by Box-Muller.
    double normal() noexcept {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = uniform(0.0, 1.0), u2 = uniform(0.0, 1.0);
        if (u1 < 1e-300) u1 = 1e-300;
        const double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = r * std::sin(2.0 * std::numbers::pi * u2);
        has_spare_ = true;
        return r * std::cos(2.0 * std::numbers::pi * u2);
    }
    /// Uniform integer in [0, n) (n > 0), without modulo bias.
    std::uint64_t below(std::uint64_t n) noexcept {
        const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
        for (;;) {
            const std::uint64_t a = (*this)(), b = (*this)();
            const std::uint64_t v = (a << 32) | b;
            if (v < limit) return v % n;
        }
    }

private:
    std::array<std::uint32_t, 2> key_;
    std::uint64_t stream_;
    std::uint64_t counter_ = 0;
    std::array<std::uint32_t, 4> buf_{};
    int idx_ = 4;
    double spare_ = 0;
    bool has_spare_ = false;
};

/// Mixes several integers into one 64-bit stream id (splitmix64 steps).
inline std::uint64_t stream_id(std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0, std::uint64_t d = 0) noexcept {
    auto mix = [](std::uint64_t z) {
        z += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    return mix(mix(mix(mix(a) ^ b) ^ c) ^ d);
}

}  // namespace ssl
