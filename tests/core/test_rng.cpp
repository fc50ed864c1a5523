#include <doctest/doctest.h>

#include <ssl/core/rng.hpp>

#include <cmath>

namespace test_rng {  // each file in its own namespace: an area builds as one unity translation unit

TEST_CASE("philox: known-answer vectors of Philox4x32-10") {
    // Salmon et al.'s published known answers (counter, key) -> output.
    ssl::philox zero(0, 0);
    auto a = zero.block(0);
    CHECK(a[0] == 0x6627e8d5u);
    CHECK(a[1] == 0xe169c58du);
    CHECK(a[2] == 0xbc57ac4cu);
    CHECK(a[3] == 0x9b00dbd8u);
    ssl::philox ones(0xffffffffffffffffull, 0xffffffffffffffffull);
    auto b = ones.block(0xffffffffffffffffull);
    CHECK(b[0] == 0x408f276du);
    CHECK(b[1] == 0x41c83b0eu);
    CHECK(b[2] == 0xa20bc7c6u);
    CHECK(b[3] == 0x6d5451fdu);
}

TEST_CASE("philox: streams are reproducible and independent") {
    ssl::philox a(42, 7), b(42, 7), c(42, 8), d(43, 7);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 64; ++i) {
        const auto x = a();
        CHECK(x == b());
        same_c += x == c();
        same_d += x == d();
    }
    CHECK(same_c < 2);
    CHECK(same_d < 2);
    CHECK(ssl::stream_id(1, 2) != ssl::stream_id(2, 1));
}

TEST_CASE("philox: distributions have the right moments") {
    ssl::philox g(5, 0);
    const int n = 200000;
    double s = 0, s2 = 0, u = 0;
    std::uint64_t below_hist[5] = {};
    for (int i = 0; i < n; ++i) {
        const double z = g.normal();
        s += z;
        s2 += z * z;
        const float f = g.uniform();
        CHECK_UNARY(f >= 0.0f);
        CHECK_UNARY(f < 1.0f);
        u += f;
        below_hist[g.below(5)]++;
    }
    CHECK(std::abs(s / n) < 0.01);
    CHECK(std::abs(s2 / n - 1) < 0.02);
    CHECK(std::abs(u / n - 0.5) < 0.005);
    for (auto h : below_hist) CHECK(std::abs(static_cast<double>(h) / n - 0.2) < 0.005);
}

}  // namespace test_rng
