#include <doctest/doctest.h>

#include <ssl/backend/host/winograd.hpp>

#include <vector>

namespace test_interleave {  // each file in its own namespace: an area builds as one unity translation unit

template <class T>
void round_trip() {
    namespace d = ssl::backend::host::winograd::detail;
    constexpr std::size_t L = d::lane_count<T>;
    // whole runs of L pixels, tails of every length, lanes without an image
    for (std::size_t count : {std::size_t{0}, std::size_t{1}, L - 1, L, L + 1, 2 * L + 5, std::size_t{49}, std::size_t{196}}) {
        CAPTURE(count);
        std::vector<std::vector<T>> planes(L, std::vector<T>(count + 3));
        for (std::size_t l = 0; l < L; ++l)
            for (std::size_t j = 0; j < count + 3; ++j) planes[l][j] = T(1000 * l + j + 1);
        const T* src[L];
        for (std::size_t l = 0; l < L; ++l) src[l] = l % 5 == 3 ? nullptr : planes[l].data();
        std::vector<T> z(count * L + 7, T(-1));
        d::interleave(src, count, z.data());
        bool ok = true;
        for (std::size_t j = 0; j < count; ++j)
            for (std::size_t l = 0; l < L; ++l) ok &= z[j * L + l] == (src[l] ? planes[l][j] : T(0));
        CHECK(ok);
        for (std::size_t i = count * L; i < z.size(); ++i) CHECK(z[i] == T(-1));  // nothing written past the end
        // back: overwrite, then accumulate, into planes with a guard value past count
        std::vector<std::vector<T>> out(L, std::vector<T>(count + 3, T(5)));
        T* dst[L];
        for (std::size_t l = 0; l < L; ++l) dst[l] = l % 4 == 1 ? nullptr : out[l].data();
        d::deinterleave(z.data(), count, dst, false);
        d::deinterleave(z.data(), count, dst, true);
        for (std::size_t l = 0; l < L; ++l)
            for (std::size_t j = 0; j < count + 3; ++j) {
                const T expect = !dst[l] || j >= count ? T(5) : T(2) * (src[l] ? planes[l][j] : T(0));
                ok &= out[l][j] == expect;
            }
        CHECK(ok);
    }
}

TEST_CASE("interleave / deinterleave: lanes, tails, null lanes, accumulate (float, double)") {
    round_trip<float>();
    round_trip<double>();
}

}  // namespace test_interleave
