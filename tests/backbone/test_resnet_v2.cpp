#include <doctest/doctest.h>

#include <ssl/backbone/resnet_v2.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

#include <set>

namespace test_resnet_v2 {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;

static_assert(ssl::layer<ssl::resnet18v2<float>>);
static_assert(ssl::backbone_policy<ssl::resnet50v2<float>>);
static_assert(ssl::tapped_backbone<ssl::resnet50v2<double>>);

TEST_CASE("resnet_v2: parameter counts") {
    // torchvision resnet18 / resnet50 without fc: 11,176,512 / 23,508,032, of which
    // batch norm 9,600 / 53,120. v2 has the same convs; its batch norms are
    // bn1(in) + bn2(planes) [+ bn3(planes)] per unit plus the final norm, no stem
    // bn and none in the projection: 7,808 / 45,440.
    ssl::resnet18v2<float> r18;
    CHECK(ssl::parameter_count(r18) == 11176512 - 9600 + 7808);
    ssl::resnet50v2<float> r50;
    CHECK(ssl::parameter_count(r50) == 23508032 - 53120 + 45440);
    CHECK(r50.feature_dim() == 2048);
    ssl::resnet18v2<float> fc({.num_classes = 1000});
    CHECK(ssl::parameter_count(fc) == 11176512 - 9600 + 7808 + 513000);
    // width multiplier: every conv scales by k^2 (k = 2 here)
    ssl::resnet18v2<float> wide({.width = 128});
    CHECK(wide.feature_dim() == 1024);
    CHECK(ssl::parameter_count(wide) == 4 * (11176512 - 9600) + 2 * 7808 - 3 * 64 * 49 * 2 + 0);
}

TEST_CASE("resnet_v2: torchvision-style names") {
    ssl::resnet50v2<float> net({.width = 4, .num_classes = 3});
    std::set<std::string> names;
    net.for_each_parameter([&](const std::string& n, auto&) { names.insert(n); }, "");
    net.for_each_buffer([&](const std::string& n, auto&) { names.insert(n); }, "");
    for (const char* n : {"conv1.weight", "layer1.0.bn1.weight", "layer1.0.conv1.weight", "layer1.0.bn3.running_var",
                          "layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer2.0.downsample.0.weight",
                          "layer4.2.bn2.num_batches_tracked", "norm.weight", "norm.running_mean", "fc.weight", "fc.bias"})
        CHECK_MESSAGE(names.count(n) == 1, n);
    CHECK(names.count("bn1.weight") == 0);                     // no stem bn in v2
    CHECK(names.count("layer2.0.downsample.1.weight") == 0);   // the projection has no bn
    CHECK(names.count("layer1.1.downsample.0.weight") == 0);
}

TEST_CASE("resnet_v2: shapes, stems, a unit by hand") {
    ssl::resnet18v2<float> cifar({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    CHECK(cifar.forward(ref::random<float>({2, 1, 28, 28}, 1)).out.shape() == shape_t{2, 32});
    ssl::resnet50v2<float> imnet({.in_channels = 3, .width = 2});
    CHECK(imnet.forward(ref::random<float>({2, 3, 40, 40}, 2)).out.shape() == shape_t{2, 64});
    CHECK_THROWS_AS(cifar.forward(ref::random<float>({2, 3, 8, 8}, 1)), ssl::shape_error);
    CHECK_THROWS_AS(ssl::resnet18v2<float>({.width = 0}), ssl::value_error);

    // layer1.0 of a basic v2 net at width 4: x + conv2(relu(bn2(conv1(relu(bn1(x)))))) (eq. 2)
    auto& unit = cifar.stage(0)[0];
    const auto x = ref::random<float>({3, 4, 6, 6}, 3);
    auto get = [&](const std::string& name) {
        tensor<float> t;
        unit.for_each_parameter([&](const std::string& n, auto& p) { if (n == name) t = p.value; }, "");
        REQUIRE(t.defined());
        return t;
    };
    ssl::nn::conv2d<float> c1({4, 4, 3, 1, 1, false}), c2({4, 4, 3, 1, 1, false});
    c1.weight().value.assign(get("conv1.weight"));
    c2.weight().value.assign(get("conv2.weight"));
    ssl::nn::batch_norm2d<float> b1({4}), b2({4});
    ssl::nn::relu<float> r;
    auto h = c2.forward(r.forward(b2.forward(c1.forward(r.forward(b1.forward(x).out).out).out).out).out).out;
    auto y = unit.forward(x).out;
    REQUIRE(y.shape() == x.shape());
    for (std::size_t i = 0; i < y.numel(); ++i) CHECK(y[i] == doctest::Approx(h[i] + x[i]).epsilon(1e-5));
}

template <class Net>
void check_backbone(Net& net, ssl::shape_t s, std::size_t samples) {
    net.train(true);  // running statistics away from the fresh ones (see test_resnet.cpp)
    for (std::uint64_t k = 0; k < 3; ++k) net.forward(ref::random<double>(s, 100 + k, -1.0, 2.0));
    for (bool train : {true, false}) {
        CAPTURE(train);
        net.train(train);
        auto r = ssl::testing::gradcheck(net, ref::random<double>(s, 5), {.rtol = 1e-3, .max_checks_per_tensor = samples});
        CHECK_MESSAGE(r.ok, r.str());
        CHECK(r.checked > 100);
        CHECK(r.skipped_kinks * 20 <= r.checked);
    }
}

TEST_SUITE("gradcheck") {
    TEST_CASE("resnet18v2 gradcheck, cifar stem with classifier") {
        ssl::resnet18v2<double> net({.in_channels = 2, .width = 2, .stem = ssl::stem::cifar, .num_classes = 3});
        check_backbone(net, {4, 2, 12, 12}, 3);
    }
    TEST_CASE("resnet50v2 gradcheck (sampled), imagenet stem") {
        ssl::resnet50v2<double> net({.in_channels = 1, .width = 2});
        check_backbone(net, {4, 1, 36, 36}, 2);
    }
}

}  // namespace test_resnet_v2
