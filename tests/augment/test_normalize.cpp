#include <doctest/doctest.h>

#include "augment/helpers.hpp"

namespace test_normalize {  // each file in its own namespace: an area builds as one unity translation unit

using namespace aug_test;

TEST_CASE("normalize: (x - mean[c]) / stddev[c] by hand") {
    auto img = ssl::tensor<float>::from({2, 1, 2}, {0.0f, 1.0f, 0.5f, 0.25f});
    const aug::normalize op{.mean = {0.5, 0.25}, .stddev = {0.5, 0.25}};
    const auto out = aug::apply_op(op, img, {});
    CHECK(out.shape() == img.shape());
    CHECK(out.at(0, 0, 0) == doctest::Approx(-1.0));
    CHECK(out.at(0, 0, 1) == doctest::Approx(1.0));
    CHECK(out.at(1, 0, 0) == doctest::Approx(1.0));
    CHECK(out.at(1, 0, 1) == doctest::Approx(0.0));
    const auto id = aug::apply_op(aug::normalize{.mean = {0.0}, .stddev = {1.0}}, image(1, 4, 4), {});
    CHECK(same(id, image(1, 4, 4)));
}

TEST_CASE("normalize: channel mismatch is a shape_error, bad statistics a value_error") {
    const aug::normalize op{.mean = {0.5, 0.5, 0.5}, .stddev = {0.2, 0.2, 0.2}};
    CHECK_THROWS_AS(aug::apply_op(op, image(1, 4, 4), {}), ssl::shape_error);
    CHECK_THROWS_WITH_AS((aug::normalize{.mean = {0.5}, .stddev = {0.0}}.validate()),
                         "normalize: stddev[0] = 0 must be > 0", ssl::value_error);
    CHECK_THROWS_AS((aug::normalize{.mean = {0.5, 0.5}, .stddev = {0.2}}.validate()), ssl::value_error);
    CHECK_THROWS_AS(aug::normalize{}.validate(), ssl::value_error);
    CHECK_NOTHROW(op.validate());
}

}  // namespace test_normalize
