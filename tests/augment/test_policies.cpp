#include <doctest/doctest.h>

#include <ssl/augment/policies.hpp>
#include <ssl/loss/policies.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace test_policies {  // each file in its own namespace: an area builds as one unity translation unit

static_assert(ssl::augmentation_policy<ssl::augment::two_views>);
static_assert(ssl::augmentation_policy<ssl::augment::asymmetric_views>);
static_assert(ssl::augmentation_policy<ssl::augment::rotations>);
static_assert(ssl::loss_policy<ssl::loss::contrastive_pair>);
static_assert(ssl::loss_policy<ssl::loss::byol_pair>);
static_assert(ssl::loss_policy<ssl::loss::pretext_classification>);

namespace {
ssl::tensor<float> images(std::size_t n) {
    auto t = ssl::testing::random_tensor({n, 1, 12, 12}, 4, 0.0, 1.0);
    return ssl::cast<float>(t);
}
}  // namespace

TEST_CASE("rotations: 4N images, labels 0-3, the same crop and flip rotated") {
    ssl::augment::rotations r({12, 1});
    auto x = images(3);
    std::vector<std::size_t> ids{7, 8, 9};
    auto vb = r.make_views(x, ids, 1, 2);
    REQUIRE(vb.views.size() == 1);
    CHECK(vb.views[0].shape() == ssl::shape_t{12, 1, 12, 12});
    CHECK(vb.labels == std::vector<std::int64_t>{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3});
    // one stacked view of 4 copies per sample: row k * N + i is sample i rotated by k * 90 degrees
    REQUIRE(vb.specs.size() == 1);
    CHECK(vb.spec(0).copies == 4);
    CHECK(vb.spec(0).branch == 0);
    CHECK(vb.spec(0).grid_rows * vb.spec(0).grid_cols == 0);
    CHECK_NOTHROW(vb.validate(3));
    CHECK_THROWS_AS(vb.validate(4), ssl::shape_error);
    const auto& v = vb.views[0];
    // image 1 at 90 degrees (clockwise): out(i, j) = in(H-1-j, i)
    for (std::size_t i = 0; i < 12; ++i)
        for (std::size_t j = 0; j < 12; ++j)
            REQUIRE(v.at(4, 0, i, j) == v.at(1, 0, 11 - j, i));
    // 180 degrees
    CHECK(v.at(7, 0, 0, 0) == v.at(1, 0, 11, 11));
}

TEST_CASE("two_views / asymmetric_views: two different deterministic views, eval is deterministic") {
    ssl::augment::two_views a({12, 1});
    ssl::augment::asymmetric_views b({12, 1});
    auto x = images(4);
    std::vector<std::size_t> ids{0, 1, 2, 3};
    auto v1 = a.make_views(x, ids, 5, 0), v2 = a.make_views(x, ids, 5, 0), v3 = a.make_views(x, ids, 5, 1);
    REQUIRE(v1.views.size() == 2);
    CHECK(v1.labels.empty());
    double d01 = 0, drep = 0, depoch = 0;
    for (std::size_t i = 0; i < v1.views[0].numel(); ++i) {
        d01 += std::abs(v1.views[0][i] - v1.views[1][i]);
        drep += std::abs(v1.views[0][i] - v2.views[0][i]);
        depoch += std::abs(v1.views[0][i] - v3.views[0][i]);
    }
    CHECK(d01 > 0);
    CHECK(drep == 0);
    CHECK(depoch > 0);
    CHECK(b.make_views(x, ids, 5, 0).views.size() == 2);
    auto e1 = a.eval_transform(x), e2 = a.eval_transform(x);
    CHECK(e1.shape() == x.shape());
    for (std::size_t i = 0; i < e1.numel(); ++i) REQUIRE(e1[i] == e2[i]);
}

TEST_CASE("loss policies: values and gradients are the underlying losses'") {
    auto a = ssl::cast<float>(ssl::testing::random_tensor({4, 3}, 1));
    auto b = ssl::cast<float>(ssl::testing::random_tensor({4, 3}, 2));
    ssl::loss::byol_pair bp;
    ssl::loss::cosine<float> cos;
    auto r = bp.compute({a, b}, {b, a}, {});
    // cos(a, target[1] = a) = 1 -> 0; cos(b, target[0] = b) -> 0
    CHECK(r.value == doctest::Approx(0.0).epsilon(1e-5).scale(1));
    auto r2 = bp.compute({a, b}, {a, b}, {});
    CHECK(r2.value == doctest::Approx(cos(a, b).value + cos(b, a).value));
    REQUIRE(r2.grads.size() == 2);
    CHECK_THROWS_AS(bp.compute({a, b}, {}, {}), ssl::value_error);
    ssl::loss::contrastive_pair cp({0.5});
    ssl::loss::nt_xent<float> nx({0.5});
    CHECK(cp.compute({a, b}, {}, {}).value == doctest::Approx(nx(a, b).value));
    CHECK_THROWS_AS(cp.compute({a}, {}, {}), ssl::value_error);
    ssl::loss::pretext_classification pc;
    std::vector<std::int64_t> y{0, 1, 2, 0};
    auto r3 = pc.compute({a}, {}, ssl::view_batch<float>{{}, y});
    CHECK(r3.value > 0);
    CHECK(r3.metrics.at(0).first == "pretext_top1");
    // the labels come from the view batch: the cross entropy with them
    ssl::loss::cross_entropy<float> ce;
    CHECK(r3.value == doctest::Approx(ce(a, y).value));
    std::vector<std::int64_t> y2{1, 1, 0, 2};
    CHECK(pc.compute({a}, {}, ssl::view_batch<float>{{}, y2}).value == doctest::Approx(ce(a, y2).value));
}

}  // namespace test_policies

namespace test_policies {

double max_diff(const ssl::tensor<float>& a, const ssl::tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    double d = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
    return d;
}

TEST_CASE("views_config::crop_min_scale sets every policy's crop scale; 0 keeps the recipe's; out of range throws") {
    namespace aug = ssl::augment;
    using aug::range;
    // the recipes' defaults (28 px: 0.2)
    CHECK(aug::two_views({28, 1}).pipelines()[1].find<aug::random_resized_crop>()->scale == range{0.2, 1.0});
    CHECK(aug::two_views({32, 3}).pipelines()[0].find<aug::random_resized_crop>()->scale == range{0.08, 1.0});
    // set: both views of two_views and asymmetric_views, one_view's pipeline; the other ops stay
    aug::two_views tv({28, 1, 0.08});
    for (std::size_t v = 0; v < 2; ++v) CHECK(tv.pipelines()[v].find<aug::random_resized_crop>()->scale == range{0.08, 1.0});
    CHECK(tv.pipelines()[0].names() == aug::two_views({28, 1}).pipelines()[0].names());
    aug::asymmetric_views av({28, 1, 0.5});
    for (std::size_t v = 0; v < 2; ++v) CHECK(av.pipelines()[v].find<aug::random_resized_crop>()->scale == range{0.5, 1.0});
    CHECK(aug::one_view({28, 1, 0.3}).view().find<aug::random_resized_crop>()->scale == range{0.3, 1.0});
    // the views change with the scale, deterministically
    auto x = images(4);
    std::vector<std::size_t> ids{0, 1, 2, 3};
    const auto a = tv.make_views(x, ids, 3, 0), b = tv.make_views(x, ids, 3, 0);
    const auto c = aug::two_views({12, 1, 1.0}).make_views(x, ids, 3, 0);  // 1.0: crops of the whole image only
    const auto d = aug::two_views({12, 1}).make_views(x, ids, 3, 0);
    CHECK(max_diff(a.views[0], b.views[0]) == 0.0);
    CHECK(max_diff(c.views[0], d.views[0]) > 0.0);
    // rotations: every one of the four rotations' crops
    aug::rotations r({12, 1, 1.0}), r0({12, 1});
    CHECK(max_diff(r.make_views(x, ids, 1, 0).views[0], r0.make_views(x, ids, 1, 0).views[0]) > 0.0);
    CHECK_THROWS_AS(aug::two_views({28, 1, 1.5}), ssl::value_error);
    CHECK_THROWS_AS(aug::rotations({28, 1, -0.1}), ssl::value_error);
}

}  // namespace test_policies
