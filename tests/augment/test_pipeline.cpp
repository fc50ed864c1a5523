#include <doctest/doctest.h>

#include "augment/helpers.hpp"

#include <numeric>
#include <vector>

namespace test_pipeline {  // each file in its own namespace: an area builds as one unity translation unit

using namespace aug_test;

namespace {
/// Every random op, no normalize: outputs must stay in [0, 1].
aug::pipeline train_like(std::size_t out) {
    return aug::pipeline{
        aug::random_resized_crop{.height = out, .width = out},
        aug::horizontal_flip{.p = 0.5},
        aug::color_jitter{.brightness = 0.4, .contrast = 0.4, .saturation = 0.4, .hue = 0.1, .p = 0.8},
        aug::random_grayscale{.p = 0.2},
        aug::gaussian_blur{.p = 0.5},
        aug::solarize{.p = 0.2},
    };
}
std::vector<std::size_t> iota(std::size_t n, std::size_t first = 0) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), first);
    return v;
}
struct thread_count_guard {
    std::size_t saved = ssl::num_threads();
    ~thread_count_guard() { ssl::set_num_threads(saved); }
};
}  // namespace

TEST_CASE("pipeline: output shape, value range, determinism") {
    const auto p = train_like(20);
    const auto x = batch(6, 3, 32, 28);
    const auto ids = iota(6, 100);
    const auto a = p.apply(x, ids, 42, 3, 0);
    CHECK(a.shape() == ssl::shape_t{6, 3, 20, 20});
    CHECK(in_unit_range(a, 1e-6));
    CHECK(same(a, p.apply(x, ids, 42, 3, 0)));
    CHECK(p.output_dims({3, 32, 28}) == aug::image_dims{3, 20, 20});
    const auto mono = p.apply(batch(4, 1, 28, 28), iota(4), 1, 0, 0);
    CHECK(mono.shape() == ssl::shape_t{4, 1, 20, 20});
    CHECK(in_unit_range(mono, 1e-6));
}

TEST_CASE("pipeline: views, epochs, seeds and samples give different images") {
    const auto p = train_like(16);
    const auto x = batch(4, 3, 24, 24);
    const auto ids = iota(4);
    const auto base = p.apply(x, ids, 1, 0, 0);
    const auto other_view = p.apply(x, ids, 1, 0, 1);
    const auto other_epoch = p.apply(x, ids, 1, 1, 0);
    const auto other_seed = p.apply(x, ids, 2, 0, 0);
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK_FALSE(same(item(base, i), item(other_view, i)));
        CHECK_FALSE(same(item(base, i), item(other_epoch, i)));
        CHECK_FALSE(same(item(base, i), item(other_seed, i)));
    }
    // The same image under different sample ids.
    ssl::tensor<float> copies({4, 3, 24, 24});
    const auto one = image(3, 24, 24, 9);
    for (std::size_t i = 0; i < 4; ++i) std::copy(one.begin(), one.end(), copies.data() + i * one.numel());
    const auto y = p.apply(copies, ids, 1, 0, 0);
    for (std::size_t i = 1; i < 4; ++i) CHECK_FALSE(same(item(y, 0), item(y, i)));
}

TEST_CASE("pipeline: a sample's view does not depend on the rest of the batch") {
    const auto p = train_like(16);
    const auto x = batch(8, 3, 24, 20, 5);
    const auto ids = iota(8, 0);
    const auto full = p.apply(x, ids, 7, 2, 1);
    // Sample 5 alone.
    const std::vector<std::size_t> five{5};
    const auto alone = p.apply(x.slice(5, 6), five, 7, 2, 1);
    CHECK(same(item(alone, 0), item(full, 5)));
    // The batch in reverse order.
    ssl::tensor<float> rev(x.shape());
    std::vector<std::size_t> rev_ids(8);
    const std::size_t per = 3 * 24 * 20;
    for (std::size_t i = 0; i < 8; ++i) {
        std::copy(x.data() + (7 - i) * per, x.data() + (8 - i) * per, rev.data() + i * per);
        rev_ids[i] = 7 - i;
    }
    const auto r = p.apply(rev, rev_ids, 7, 2, 1);
    for (std::size_t i = 0; i < 8; ++i) CHECK(same(item(r, i), item(full, 7 - i)));
}

TEST_CASE("pipeline: results do not depend on the number of threads") {
    thread_count_guard guard;
    const auto p = train_like(24);
    const auto x = batch(16, 3, 32, 32, 3);
    const auto ids = iota(16, 1000);
    ssl::set_num_threads(1);
    const auto one = p.apply(x, ids, 9, 4, 0);
    ssl::set_num_threads(2);
    const auto two = p.apply(x, ids, 9, 4, 0);
    ssl::set_num_threads(3);
    const auto three = p.apply(x, ids, 9, 4, 0);
    CHECK(same(one, two));
    CHECK(same(one, three));
}

TEST_CASE("pipeline: op k uses op_rng(seed, epoch, sample, view, k), as draw_params") {
    const aug::horizontal_flip flip{.p = 0.5};
    const aug::random_resized_crop crop{.height = 10, .width = 12};
    const aug::color_jitter jitter{.brightness = 0.5, .contrast = 0.5, .saturation = 0.5, .hue = 0.2, .p = 0.9};
    const aug::pipeline p{flip, crop, jitter};
    const auto x = batch(5, 3, 18, 22);
    const auto ids = iota(5, 30);
    const auto out = p.apply(x, ids, 13, 6, 1);
    for (std::size_t i = 0; i < 5; ++i) {
        auto img = item(x, i);
        img = aug::apply_op(flip, img, aug::draw_params(flip, dims(img), 13, 6, 30 + i, 1, 0));
        img = aug::apply_op(crop, img, aug::draw_params(crop, dims(img), 13, 6, 30 + i, 1, 1));
        img = aug::apply_op(jitter, img, aug::draw_params(jitter, dims(img), 13, 6, 30 + i, 1, 2));
        CHECK(same(img, item(out, i)));
    }
}

TEST_CASE("pipeline: editing ops, names, description, empty pipeline") {
    aug::pipeline p;
    CHECK(p.empty());
    const auto x = batch(2, 1, 5, 5);
    CHECK(same(p.apply(x, iota(2), 0, 0, 0), x));
    p.add(aug::horizontal_flip{.p = 1.0}).add(aug::solarize{.p = 0.0}).add(aug::normalize{.mean = {0.5}, .stddev = {0.5}});
    CHECK(p.names() == std::vector<std::string_view>{"horizontal_flip", "solarize", "normalize"});
    CHECK(p.index_of<aug::solarize>() == 1);
    CHECK_FALSE(p.index_of<aug::gaussian_blur>().has_value());
    CHECK(p.find<aug::gaussian_blur>() == nullptr);
    REQUIRE(p.find<aug::solarize>() != nullptr);
    CHECK(p.find<aug::solarize>()->p == 0.0);
    p.replace(1, aug::solarize{.p = 1.0});
    CHECK(p.find<aug::solarize>()->p == 1.0);
    CHECK(p.str() == "0 horizontal_flip(p=1)\n1 solarize(threshold=0.5, p=1)\n2 normalize(mean=[0.5], stddev=[0.5])\n");
    CHECK(aug::describe(aug::random_resized_crop{.height = 28, .width = 28, .scale = {0.2, 1}}) ==
          "random_resized_crop(size=28x28, scale=(0.2, 1), ratio=(0.75, 1.33333), attempts=10)");
    p.remove(0);
    CHECK(p.size() == 2);
    CHECK_THROWS_AS(p.remove(5), ssl::value_error);
    CHECK_THROWS_AS(p.replace(2, aug::solarize{}), ssl::value_error);
    CHECK_THROWS_WITH_AS(p.add(aug::horizontal_flip{.p = 2.0}), "horizontal_flip: p = 2 is outside [0, 1]",
                         ssl::value_error);
    CHECK_THROWS_AS(p.replace(0, aug::solarize{.threshold = -1}), ssl::value_error);
    CHECK(p.size() == 2);
    CHECK(p.find<aug::solarize>()->p == 1.0);  // a rejected replace leaves the op alone
}

TEST_CASE("pipeline: shape errors name the shapes") {
    const aug::pipeline p{aug::random_resized_crop{.height = 8, .width = 8}, aug::normalize{.mean = {0.5}, .stddev = {0.2}}};
    const auto x = batch(3, 1, 12, 12);
    CHECK_THROWS_AS(p.apply(x, iota(2), 0, 0, 0), ssl::shape_error);
    CHECK_THROWS_AS(p.apply(item(x, 0), iota(1), 0, 0, 0), ssl::shape_error);
    CHECK_THROWS_WITH_AS(p.apply(batch(3, 3, 12, 12), iota(3), 0, 0, 0),
                         "normalize: configured for 1 channels, got an image of shape (3, 8, 8)", ssl::shape_error);
    CHECK_THROWS_AS(aug::pipeline{aug::color_jitter{}}.apply(batch(1, 2, 4, 4), iota(1), 0, 0, 0), ssl::shape_error);
    CHECK_NOTHROW(p.apply(x, iota(3), 0, 0, 0));
}

TEST_CASE("multi_view: view v is pipeline v applied with view index v") {
    const aug::multi_view mv({train_like(12), aug::pipeline{aug::random_resized_crop{.height = 10, .width = 10}}});
    const auto x = batch(4, 3, 16, 16);
    const auto ids = iota(4, 7);
    const auto views = mv.apply(x, ids, 5, 1);
    REQUIRE(views.size() == 2);
    CHECK(views[0].shape() == ssl::shape_t{4, 3, 12, 12});
    CHECK(views[1].shape() == ssl::shape_t{4, 3, 10, 10});
    CHECK(same(views[0], mv[0].apply(x, ids, 5, 1, 0)));
    CHECK(same(views[1], mv[1].apply(x, ids, 5, 1, 1)));
    // Two copies of one pipeline still give two different views.
    const aug::multi_view twins(2, train_like(12));
    const auto t = twins.apply(x, ids, 5, 1);
    CHECK_FALSE(same(t[0], t[1]));
    CHECK_THROWS_AS(mv[2], ssl::value_error);
}

TEST_CASE("rotation views for RotNet: view k is the input turned k times") {
    const auto x = batch(3, 1, 6, 6);
    std::vector<aug::pipeline> rots;
    for (int k = 0; k < 4; ++k) rots.push_back(aug::pipeline{aug::rotate90{.k = k}});
    const auto views = aug::multi_view(rots).apply(x, iota(3), 0, 0);
    for (int k = 0; k < 4; ++k)
        for (std::size_t i = 0; i < 3; ++i)
            CHECK(same(item(views[std::size_t(k)], i), aug::apply_op(aug::rotate90{.k = k}, item(x, i), {})));
    CHECK(item(views[1], 0).at(0, 0, 5) == x.at(0, 0, 0, 0));
}

}  // namespace test_pipeline
