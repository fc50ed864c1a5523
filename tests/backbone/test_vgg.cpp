#include <doctest/doctest.h>

#include <ssl/backbone/vgg.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

#include <set>

namespace test_vgg {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;

static_assert(ssl::backbone_policy<ssl::vgg16<float>>);
static_assert(ssl::tapped_backbone<ssl::vgg16<double>>);

TEST_CASE("vgg: parameter counts equal torchvision's vgg*_bn features") {
    // torchvision vgg11_bn / vgg16_bn / vgg19_bn: 132,868,840 / 138,365,992 / 143,678,248
    // parameters, of which the classifier (fc6, fc7, fc8) 123,642,856
    ssl::vgg11<float> v11;
    ssl::vgg16<float> v16;
    ssl::vgg19<float> v19;
    CHECK(ssl::parameter_count(v11) == 132868840 - 123642856);
    CHECK(ssl::parameter_count(v16) == 138365992 - 123642856);
    CHECK(ssl::parameter_count(v19) == 143678248 - 123642856);
    ssl::vgg13<float> v13;
    CHECK(v13.feature_dim() == 512);
    // width multiplier k = 2: conv weights x4 but the first (x2), biases and batch norms x2
    ssl::vgg16<float> wide({.width = 128});
    CHECK(wide.feature_dim() == 1024);
    const std::size_t ch = 64 * 2 + 128 * 2 + 256 * 3 + 512 * 6, first = 3 * 64 * 9;
    const std::size_t weights = 138365992 - 123642856 - 3 * ch;  // minus conv biases and bn (weight, bias)
    CHECK(ssl::parameter_count(wide) == 4 * (weights - first) + 2 * first + 2 * 3 * ch);
}

TEST_CASE("vgg: torchvision vgg16_bn names and indices") {
    ssl::vgg16<float> net({.width = 4});
    std::vector<std::string> p, b;
    net.for_each_parameter([&](const std::string& n, auto&) { p.push_back(n); }, "");
    net.for_each_buffer([&](const std::string& n, auto&) { b.push_back(n); }, "");
    REQUIRE(p.size() == 13 * 4);
    CHECK(p[0] == "features.0.weight");
    CHECK(p[1] == "features.0.bias");
    CHECK(p[2] == "features.1.weight");
    CHECK(p[4] == "features.3.weight");   // second conv of block 1
    CHECK(p[8] == "features.7.weight");   // after the pool at 6
    CHECK(p.back() == "features.41.bias");  // the last bn; 42 relu, 43 pool
    CHECK(b.size() == 13 * 3);
    CHECK(b.back() == "features.41.num_batches_tracked");
    auto taps = net.tap_names();
    CHECK(taps.size() == 44 + 1);
    CHECK(taps[43] == "features.43");
    CHECK(taps.back() == "avgpool");
    ssl::vgg16<float> small({.width = 4, .stem = ssl::stem::cifar});  // no last pool
    CHECK(small.tap_names().size() == 43 + 1);
}

TEST_CASE("vgg: shapes, stems, initialization, bad inputs") {
    ssl::vgg11<float> im({.in_channels = 1, .width = 4});
    CHECK(im.forward(ref::random<float>({2, 1, 32, 32}, 1)).out.shape() == shape_t{2, 32});
    CHECK_THROWS_WITH_AS(im.forward(ref::random<float>({2, 1, 28, 28}, 1)), doctest::Contains("at least 32x32"),
                         ssl::shape_error);
    ssl::vgg11<float> cf({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    CHECK(cf.forward(ref::random<float>({2, 1, 28, 28}, 1)).out.shape() == shape_t{2, 32});
    CHECK_THROWS_AS(cf.forward(ref::random<float>({2, 3, 28, 28}, 1)), ssl::shape_error);
    ssl::vgg16<float> a({.width = 16, .seed = 2}), b({.width = 16, .seed = 2});
    bool same = true, bias_zero = true;
    std::vector<float> wa;
    a.for_each_parameter([&](const std::string& n, auto& p) {
        if (n == "features.10.weight") wa.assign(p.value.begin(), p.value.end());
        if (n == "features.10.bias") for (float v : p.value) bias_zero &= v == 0.0f;
    }, "");
    b.for_each_parameter([&](const std::string& n, auto& p) {
        if (n == "features.10.weight") same &= std::equal(wa.begin(), wa.end(), p.value.begin());
    }, "");
    CHECK(same);
    CHECK(bias_zero);
    double s2 = 0;  // kaiming_normal_(fan_out): std = sqrt(2 / (64 * 9)) for features.10 (32 -> 64 at width 16)
    for (float v : wa) s2 += double(v) * v;
    CHECK(std::sqrt(s2 / wa.size()) == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.05));
}

TEST_SUITE("gradcheck") {
    TEST_CASE("vgg11 gradcheck, cifar stem, train and eval") {
        ssl::vgg11<double> net({.in_channels = 2, .width = 2, .stem = ssl::stem::cifar});
        const shape_t s{3, 2, 16, 16};
        net.train(true);
        for (std::uint64_t k = 0; k < 3; ++k) net.forward(ref::random<double>(s, 100 + k, -1.0, 2.0));
        for (bool train : {true, false}) {
            CAPTURE(train);
            net.train(train);
            auto r = ssl::testing::gradcheck(net, ref::random<double>(s, 5), {.rtol = 1e-3, .max_checks_per_tensor = 4});
            CHECK_MESSAGE(r.ok, r.str());
            CHECK(r.checked > 100);
        }
    }
}

}  // namespace test_vgg
