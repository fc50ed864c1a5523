#pragma once
// Values every rank can make alike without communicating (the tests build the
// same global tensors on every rank and take their slices).
#include <cstddef>
#include <cstdint>

namespace test_mpi {

/// A reproducible value in [-1, 1) for element i of stream s (splitmix64).
inline double value_at(std::size_t i, std::uint64_t s) {
    std::uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ (s * 0xBF58476D1CE4E5B9ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) / static_cast<double>(1ull << 53) * 2.0 - 1.0;
}

}  // namespace test_mpi
