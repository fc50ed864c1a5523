// target::labelled_share (S4L's labelled share of every batch): the share in
// every window, balanced passes over both pools, a pure function of
// (config, N, seed, epoch), and what the S4L method asks of the trainer.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include <ssl/target_update/labelled_share.hpp>

namespace test_labelled_share {

using ssl::target::labelled_share_order;

TEST_CASE("labelled_share_order: every batch holds floor or ceil of share x B labelled samples, at any B") {
    std::vector<std::size_t> lab;
    for (std::size_t i = 0; i < 1000; i += 50) lab.push_back(i + 7);  // 20 of 1000 (2 %)
    const auto order = labelled_share_order(lab, 1000, 0.5, 3, 0);
    REQUIRE(order.size() == 1000);
    auto labelled = [&](std::size_t id) { return std::binary_search(lab.begin(), lab.end(), id); };
    for (std::size_t B : {2u, 7u, 64u, 256u})
        for (std::size_t b = 0; b + B <= order.size(); b += B) {
            const auto n = std::count_if(order.begin() + long(b), order.begin() + long(b + B), labelled);
            CHECK(n >= long(B / 2));
            CHECK(n <= long((B + 1) / 2));
        }
    // passes: each labelled id 25 times (500 draws / 20), unlabelled ids at most once (500 of 980)
    std::map<std::size_t, int> count;
    for (auto i : order) ++count[i];
    for (auto i : lab) CHECK(count[i] == 25);
    for (const auto& [id, c] : count)
        if (!labelled(id)) CHECK(c == 1);
    // a share of 0.3: 300 labelled draws, 15 per id
    const auto o3 = labelled_share_order(lab, 1000, 0.3, 3, 0);
    CHECK(std::count_if(o3.begin(), o3.end(), labelled) == 300);
}

TEST_CASE("labelled_share_order: the same per (seed, epoch), another per epoch; off at share 0; bad input refused") {
    const std::vector<std::size_t> lab{1, 4, 9};
    CHECK(labelled_share_order(lab, 20, 0.5, 1, 2) == labelled_share_order(lab, 20, 0.5, 1, 2));
    CHECK(labelled_share_order(lab, 20, 0.5, 1, 2) != labelled_share_order(lab, 20, 0.5, 1, 3));
    CHECK(labelled_share_order(lab, 20, 0.0, 1, 2).empty());
    CHECK(labelled_share_order(std::vector<std::size_t>{}, 20, 0.5, 1, 2).empty());
    // every id labelled: the order is the labelled pool alone
    const std::vector<std::size_t> all{0, 1, 2, 3};
    const auto o = labelled_share_order(all, 4, 0.5, 1, 0);
    CHECK(std::is_permutation(o.begin(), o.end(), all.begin()));
    CHECK_THROWS_AS(labelled_share_order(lab, 20, 1.0, 1, 0), ssl::value_error);
    CHECK_THROWS_AS(labelled_share_order(lab, 20, -0.1, 1, 0), ssl::value_error);
    CHECK_THROWS_WITH_AS(labelled_share_order(std::vector<std::size_t>{3, 25}, 20, 0.5, 1, 0), doctest::Contains("not below the 20"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(labelled_share_order(std::vector<std::size_t>{4, 3}, 20, 0.5, 1, 0), doctest::Contains("sorted"), ssl::value_error);
}

}  // namespace test_labelled_share
