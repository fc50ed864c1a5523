#include <doctest/doctest.h>

#include <ssl/backbone/any_backbone.hpp>
#include <ssl/backbone/convnet.hpp>
#include <ssl/backbone/resnet.hpp>
#include <ssl/backbone/resnet_v2.hpp>
#include <ssl/backbone/revnet.hpp>
#include <ssl/backbone/taps.hpp>
#include <ssl/backbone/vgg.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

#include <string>
#include <vector>

namespace test_taps {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;

static_assert(ssl::tapped_backbone<ssl::resnet18<float>>);
static_assert(ssl::tapped_backbone<ssl::resnet50<double>>);
static_assert(ssl::tapped_backbone<ssl::convnet<float>>);
static_assert(ssl::tapped_backbone<ssl::any_backbone<float>>);
static_assert(!ssl::tapped_backbone<ssl::nn::conv2d<float>>);
static_assert(ssl::tapped_backbone<ssl::resnet18v2<float>>);
static_assert(ssl::tapped_backbone<ssl::vgg16<float>>);
static_assert(ssl::tapped_backbone<ssl::revnet18<float>>);

template <class T>
bool same(const tensor<T>& a, const tensor<T>& b) {
    if (a.shape() != b.shape()) return false;
    for (std::size_t i = 0; i < a.numel(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}
template <class M>
auto grads(M& m) {
    std::vector<tensor<typename M::value_type>> v;
    m.for_each_parameter([&](const std::string&, auto& p) { v.push_back(p.grad.clone()); }, "");
    return v;
}
template <class M>
tensor<typename M::value_type> param(M& m, const std::string& name) {
    tensor<typename M::value_type> t;
    m.for_each_parameter([&](const std::string& n, auto& p) { if (n == name) t = p.value; }, "");
    REQUIRE_MESSAGE(t.defined(), name);
    return t;
}

TEST_CASE("taps: names in network order") {
    ssl::resnet18<float> cifar({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    const std::vector<std::string> expect{"conv1",    "bn1",      "relu",     "layer1.0", "layer1.1", "layer1",
                                          "layer2.0", "layer2.1", "layer2",   "layer3.0", "layer3.1", "layer3",
                                          "layer4.0", "layer4.1", "layer4",   "avgpool"};
    CHECK(cifar.tap_names() == expect);
    ssl::resnet34<float> imnet({.in_channels = 1, .width = 4, .num_classes = 3});
    auto n = imnet.tap_names();
    CHECK(n[3] == "maxpool");
    CHECK(n[4] == "layer1.0");
    CHECK(n.size() == 4 + (3 + 4 + 6 + 3) + 4 + 2);
    CHECK(n[n.size() - 3] == "layer4");
    CHECK(n[n.size() - 2] == "avgpool");
    CHECK(n.back() == "fc");
    ssl::convnet<float> cn({.in_channels = 1, .width = 2});
    auto c = cn.tap_names();
    REQUIRE(c.size() == 18);
    CHECK(c.front() == "features.0");
    CHECK(c.back() == "features.17");
}

TEST_CASE("taps: names of resnet v2, vgg and revnet in network order") {
    ssl::resnet18v2<float> v2({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    const std::vector<std::string> expect{"conv1",    "layer1.0", "layer1.1", "layer1", "layer2.0", "layer2.1",
                                          "layer2",   "layer3.0", "layer3.1", "layer3", "layer4.0", "layer4.1",
                                          "layer4",   "norm",     "avgpool"};
    CHECK(v2.tap_names() == expect);
    ssl::revnet<float, false> rev({2, 3}, {.in_channels = 1, .width = 4, .num_classes = 2});
    CHECK(rev.tap_names() == std::vector<std::string>{"conv1", "maxpool", "layer1.0", "layer1.1", "layer1", "layer2.0",
                                                      "layer2.1", "layer2.2", "layer2", "norm", "avgpool", "fc"});
    ssl::vgg11<float> vgg({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar});
    auto n = vgg.tap_names();
    // 8 conv units (3 names each) and 4 pools (the cifar stem drops the fifth), then avgpool
    REQUIRE(n.size() == 8 * 3 + 4 + 1);
    CHECK(n[0] == "features.0");
    CHECK(n[3] == "features.3");  // the first pool
    CHECK(n[27] == "features.27");
    CHECK(n.back() == "avgpool");
}

TEST_CASE("taps: revnet maps: transition and reversible unit outputs, stage outputs, out bitwise") {
    ssl::revnet<float, false> net({3, 2}, {.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 2});
    const auto x = ref::random<float>({2, 1, 8, 8}, 3);
    auto r = net.forward_taps(x, {"layer1.0", "layer1.1", "layer1.2", "layer1", "norm", "avgpool"});
    CHECK(same(r.out, net.forward(x).out));
    CHECK(r.taps[5].data() == r.out.data());
    CHECK(r.taps[2].data() == r.taps[3].data());
    CHECK(r.taps[0].shape() == shape_t{2, 4, 8, 8});
    // layer1.1 is the reversible unit's output: y1 = x1 + F(x2), y2 = x2 + G(y1) of layer1.0's halves
    CHECK(r.taps[1].shape() == shape_t{2, 4, 8, 8});
    CHECK(!same(r.taps[1], r.taps[0]));
    CHECK(!same(r.taps[1], r.taps[2]));
}

TEST_CASE("taps: resnet maps equal the network run by hand, out equals forward bitwise, no copies") {
    for (auto st : {ssl::stem::cifar, ssl::stem::imagenet}) {
        CAPTURE(st == ssl::stem::cifar);
        const std::size_t in = 2, w = 4, size = st == ssl::stem::cifar ? 12 : 24;
        ssl::resnet18<float> net({.in_channels = in, .width = w, .stem = st, .num_classes = 5, .seed = 3});
        const auto x = ref::random<float>({3, in, size, size}, 7);
        auto names = net.tap_names();
        auto r = net.forward_taps(x, names);
        REQUIRE(r.taps.size() == names.size());
        CHECK(same(r.out, net.forward(x).out));
        auto tap = [&](const std::string& n) {
            for (std::size_t i = 0; i < names.size(); ++i)
                if (names[i] == n) return r.taps[i];
            FAIL("no tap " << n);
            return tensor<float>{};
        };
        // the stem by hand
        ssl::nn::conv2d<float> conv(st == ssl::stem::cifar ? ssl::nn::conv2d_config{in, w, 3, 1, 1, false}
                                                           : ssl::nn::conv2d_config{in, w, 7, 2, 3, false});
        param(conv, "weight").assign(param(net, "conv1.weight"));
        ssl::nn::batch_norm2d<float> bn({w});
        auto c1 = conv.forward(x).out;
        auto b1 = bn.forward(c1).out;
        auto r1 = ssl::nn::relu<float>{}.forward(b1).out;
        CHECK(same(tap("conv1"), c1));
        CHECK(same(tap("bn1"), b1));
        CHECK(same(tap("relu"), r1));
        tensor<float> h = r1;
        if (st == ssl::stem::imagenet) {
            h = ssl::nn::max_pool2d<float>({3, 2, 1}).forward(r1).out;
            CHECK(same(tap("maxpool"), h));
        }
        for (std::size_t s = 0; s < 4; ++s) {
            for (std::size_t b = 0; b < 2; ++b) {
                h = net.stage(s)[b].forward(h).out;
                CHECK(same(tap("layer" + std::to_string(s + 1) + "." + std::to_string(b)), h));
            }
            CHECK(same(tap("layer" + std::to_string(s + 1)), h));
        }
        CHECK(same(tap("avgpool"), ssl::nn::global_avg_pool2d<float>{}.forward(h).out));
        CHECK(same(tap("fc"), r.out));
        // shared storage: a stage output is its last block's tensor, fc is out
        CHECK(tap("layer3").data() == tap("layer3.1").data());
        CHECK(tap("fc").data() == r.out.data());
    }
    // the fused stem (no "bn1" requested) gives bitwise the same maps
    ssl::resnet18<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    const auto x = ref::random<float>({2, 1, 8, 8}, 9);
    auto a = net.forward_taps(x, {"relu", "layer2.0", "avgpool"});
    auto b = net.forward_taps(x, {"bn1", "relu", "layer2.0"});
    CHECK(same(a.taps[0], b.taps[1]));
    CHECK(same(a.taps[1], b.taps[2]));
    CHECK(same(a.out, b.out));
    CHECK(a.taps[2].data() == a.out.data());  // no classifier: avgpool is out
    auto none = net.forward_taps(x, {});
    CHECK(none.taps.empty());
    CHECK(same(none.out, a.out));
}

TEST_CASE("taps: convnet maps equal its modules run by hand") {
    ssl::convnet<float> net({.in_channels = 2, .width = 2, .seed = 4});
    const auto x = ref::random<float>({3, 2, 9, 9}, 5);
    auto r = net.forward_taps(x, {"features.17", "features.0", "features.5", "features.2"});
    CHECK(same(r.out, net.forward(x).out));
    CHECK(r.taps[0].data() == r.out.data());
    ssl::nn::conv2d<float> conv({2, 2, 5, 1, 2, true});
    param(conv, "weight").assign(param(net, "features.0.weight"));
    param(conv, "bias").assign(param(net, "features.0.bias"));
    auto c0 = conv.forward(x).out;
    auto b1 = ssl::nn::batch_norm2d<float>({2}).forward(c0).out;
    CHECK(same(r.taps[1], c0));
    CHECK(same(r.taps[3], ssl::nn::relu<float>{}.forward(b1).out));
    CHECK(r.taps[2].shape() == shape_t{3, 6, 5, 5});
}

// backward_taps with no gradient at any tap is backward, bitwise (dx and
// every parameter gradient); layers after the last gradient are skipped.
template <class Net>
void check_no_tap_grads(Net& net, const tensor<float>& x, const std::vector<std::string>& names) {
    for (bool train : {true, false}) {
        CAPTURE(train);
        net.train(train);
        ssl::zero_grad(net);
        auto f = net.forward(x);
        const auto dy = ref::random<float>(f.out.shape(), 13);
        auto dx = net.backward(f.cache, dy);
        auto g = grads(net);
        for (int variant = 0; variant < 2; ++variant) {
            ssl::zero_grad(net);
            auto r = net.forward_taps(x, names);
            std::vector<tensor<float>> d;
            if (variant == 1) d.resize(names.size());  // every entry undefined
            auto dx2 = net.backward_taps(r.cache, dy, d);
            CHECK(same(dx, dx2));
            auto g2 = grads(net);
            REQUIRE(g.size() == g2.size());
            for (std::size_t i = 0; i < g.size(); ++i) CHECK(same(g[i], g2[i]));
        }
    }
    // no gradient anywhere: zeros at the input, no parameter gradient
    ssl::zero_grad(net);
    auto r = net.forward_taps(x, names);
    auto dx = net.backward_taps(r.cache, tensor<float>{}, {});
    CHECK(dx.shape() == x.shape());
    bool zero = true;
    for (float v : dx) zero &= v == 0.0f;
    for (auto& t : grads(net))
        for (float v : t) zero &= v == 0.0f;
    CHECK(zero);
}

TEST_CASE("taps: backward_taps without tap gradients is backward bitwise") {
    ssl::resnet18<float> a({.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .num_classes = 3});
    check_no_tap_grads(a, ref::random<float>({3, 2, 8, 8}, 1), {"layer2", "layer3.1", "relu"});
    check_no_tap_grads(a, ref::random<float>({3, 2, 8, 8}, 1), {"bn1", "layer2"});  // stem run unfused
    ssl::resnet50<float> b({.in_channels = 1, .width = 2});
    check_no_tap_grads(b, ref::random<float>({2, 1, 24, 24}, 2), {"maxpool", "layer4"});
    ssl::convnet<float> c({.in_channels = 1, .width = 2});
    check_no_tap_grads(c, ref::random<float>({2, 1, 9, 9}, 3), {"features.3", "features.12"});
    ssl::resnet18v2<float> v2({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar});
    check_no_tap_grads(v2, ref::random<float>({2, 1, 8, 8}, 4), {"conv1", "layer2.1", "norm"});
    ssl::vgg11<float> vgg({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar});
    check_no_tap_grads(vgg, ref::random<float>({2, 1, 16, 16}, 5), {"features.5", "features.11"});  // a bn tap: unfused
    ssl::revnet<float, false> rev({3, 2}, {.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    check_no_tap_grads(rev, ref::random<float>({2, 1, 8, 8}, 6), {"layer1.1", "layer2"});
}

TEST_CASE("taps: tap gradients add to the flowing gradient, once per request") {
    // A gradient G at layer4 (= layer4.1 = the last map before the pool) is
    // what a pooled-output gradient dy becomes after the pool's backward:
    // dy broadcast over the map / (H W). So d_out = dy and d(layer4) = G
    // give the input gradient of 2 dy; and a gradient split over two names
    // of one tensor adds.
    ssl::resnet18<double> net({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 2});
    const auto x = ref::random<double>({2, 1, 8, 8}, 4);
    auto r = net.forward_taps(x, {"layer4", "layer4.1"});
    const shape_t s = r.taps[0].shape();
    const auto dy = ref::random<double>(r.out.shape(), 5);
    tensor<double> G(s), half(s);
    const std::size_t hw = s[2] * s[3];
    for (std::size_t i = 0; i < G.numel(); ++i) {
        G[i] = dy[i / hw] / double(hw);
        half[i] = G[i] / 2;
    }
    auto two_dy = dy.clone();
    for (auto& v : two_dy) v *= 2;
    auto ref_dx = net.backward_taps(r.cache, two_dy, {});
    auto dx1 = net.backward_taps(r.cache, dy, {G, tensor<double>{}});
    auto dx2 = net.backward_taps(r.cache, tensor<double>{}, {half, half});
    auto dx3 = net.backward_taps(r.cache, dy, {half, half});
    auto dx4 = net.backward_taps(r.cache, tensor<double>{}, {tensor<double>{}, G});
    auto single = net.backward_taps(r.cache, dy, {});
    for (std::size_t i = 0; i < x.numel(); ++i) {
        CHECK(dx1[i] == doctest::Approx(ref_dx[i]).epsilon(1e-12));
        CHECK(dx2[i] == doctest::Approx(single[i]).epsilon(1e-12));
        CHECK(dx3[i] == doctest::Approx(ref_dx[i]).epsilon(1e-12));
        CHECK(dx4[i] == doctest::Approx(single[i]).epsilon(1e-12));
    }
    // the inputs to backward_taps are not written
    CHECK(G[0] == dy[0] / double(hw));
}

TEST_CASE("taps: unknown names list the valid ones; bad tap gradients are shape errors") {
    ssl::resnet18<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    const auto x = ref::random<float>({2, 1, 8, 8}, 1);
    try {
        net.forward_taps(x, {"layer2", "layer5"});
        FAIL("an unknown tap must throw");
    } catch (const ssl::value_error& e) {
        const std::string m = e.what();
        CHECK(m.find("no tap named 'layer5'") != std::string::npos);
        CHECK(m.find("valid names: conv1, bn1, relu, layer1.0, layer1.1, layer1, layer2.0") != std::string::npos);
        CHECK(m.find("layer4, avgpool") != std::string::npos);
        CHECK(m.find("maxpool") == std::string::npos);  // cifar stem
    }
    ssl::convnet<float> cn({.in_channels = 1, .width = 2});
    try {
        cn.forward_taps(x, {"features.18"});
        FAIL("an unknown tap must throw");
    } catch (const ssl::value_error& e) {
        CHECK(std::string(e.what()).find("valid names: features.0, features.1,") != std::string::npos);
    }
    ssl::any_backbone<float> any({.arch = "resnet18", .in_channels = 1, .width = 4});
    CHECK_THROWS_WITH_AS(any.forward_taps(x, {"conv2"}), doctest::Contains("maxpool, layer1.0"), ssl::value_error);

    auto r = net.forward_taps(x, {"layer2", "layer3"});
    const auto dy = ref::random<float>(r.out.shape(), 2);
    CHECK_THROWS_AS(net.backward_taps(r.cache, dy, {r.taps[0]}), ssl::shape_error);  // one of two
    CHECK_THROWS_WITH_AS(net.backward_taps(r.cache, dy, {r.taps[1], r.taps[0]}),
                         doctest::Contains("gradient for tap 'layer2' has shape"), ssl::shape_error);
}

TEST_CASE("taps: any_backbone gives the concrete backbone's taps and gradients, bitwise") {
    auto check = [](const ssl::any_backbone_options& o, auto concrete, const std::vector<std::string>& names,
                    std::size_t size) {
        ssl::any_backbone<float> a(o);
        CHECK(a.tap_names() == concrete.tap_names());
        const auto x = ref::random<float>({3, o.in_channels, size, size}, 21);
        ssl::zero_grad(a);
        ssl::zero_grad(concrete);
        auto ra = a.forward_taps(x, names);
        auto rb = concrete.forward_taps(x, names);
        CHECK(same(ra.out, rb.out));
        REQUIRE(ra.taps.size() == names.size());
        std::vector<tensor<float>> d;
        for (std::size_t i = 0; i < names.size(); ++i) {
            CHECK(same(ra.taps[i], rb.taps[i]));
            d.push_back(i == 1 ? tensor<float>{} : ref::random<float>(ra.taps[i].shape(), 30 + i));
        }
        const auto dy = ref::random<float>(ra.out.shape(), 22);
        CHECK(same(a.backward_taps(ra.cache, dy, d), concrete.backward_taps(rb.cache, dy, d)));
        auto ga = grads(a), gb = grads(concrete);
        REQUIRE(ga.size() == gb.size());
        for (std::size_t i = 0; i < ga.size(); ++i) CHECK(same(ga[i], gb[i]));
        if (o.arch != "convnet") CHECK(!a.backward_taps(ra.cache, dy, d, false).defined());  // convnet always gives dx
    };
    check({.arch = "resnet18", .in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .seed = 5},
          ssl::resnet18<float>({.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .seed = 5}),
          {"layer2", "bn1", "layer3.1"}, 8);
    check({.arch = "resnet50", .in_channels = 1, .width = 2, .num_classes = 4, .seed = 6},
          ssl::resnet50<float>({.in_channels = 1, .width = 2, .num_classes = 4, .seed = 6}),
          {"maxpool", "layer1", "layer3.2", "fc"}, 24);
    check({.arch = "resnet50v2", .in_channels = 1, .width = 2, .num_classes = 4, .seed = 6},
          ssl::resnet50v2<float>({.in_channels = 1, .width = 2, .num_classes = 4, .seed = 6}),
          {"maxpool", "layer1", "layer3.2", "norm"}, 24);
    check({.arch = "vgg13", .in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 6},
          ssl::vgg13<float>({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 6}),
          {"features.4", "features.1", "avgpool"}, 16);
    check({.arch = "revnet50", .in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 6},
          ssl::revnet50<float>({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 6}),
          {"layer2.1", "layer1", "layer3.3", "layer4.0"}, 8);
    check({.arch = "convnet", .in_channels = 1, .width = 2, .seed = 7},
          ssl::convnet<float>({.in_channels = 1, .width = 2, .seed = 7}), {"features.6", "features.0", "features.13"},
          9);
}

// Finite-difference check of L = sum(R0 .* out) + sum_i sum(Ri .* tap_i)
// (R0 dropped when with_out is false) through forward_taps / backward_taps,
// for the input and (sampled) every parameter, in train and eval mode.
template <class Net>
void check_taps_gradient(Net& net, shape_t s, const std::vector<std::string>& names, std::size_t samples,
                         bool with_out = true) {
    ssl::testing::gradcheck_options o{.rtol = 1e-3, .max_checks_per_tensor = samples};
    net.train(true);  // running statistics away from the fresh ones (see test_resnet.cpp)
    for (std::uint64_t k = 0; k < 3; ++k) net.forward(ref::random<double>(s, 100 + k, -1.0, 2.0));
    for (bool train : {true, false}) {
        CAPTURE(train);
        net.train(train);
        tensor<double> x = ref::random<double>(s, 5);
        auto first = net.forward_taps(x, names);
        const tensor<double> R0 = with_out ? ssl::testing::random_tensor(first.out.shape(), 40) : tensor<double>{};
        std::vector<tensor<double>> R;
        for (std::size_t i = 0; i < names.size(); ++i)
            R.push_back(ssl::testing::random_tensor(first.taps[i].shape(), 41 + i));
        auto loss = [&] {
            auto r = net.forward_taps(x, names);
            double l = 0;
            if (with_out)
                for (std::size_t k = 0; k < R0.numel(); ++k) l += R0[k] * r.out[k];
            for (std::size_t i = 0; i < R.size(); ++i)
                for (std::size_t k = 0; k < R[i].numel(); ++k) l += R[i][k] * r.taps[i][k];
            return l;
        };
        ssl::zero_grad(net);
        auto dx = net.backward_taps(first.cache, R0, R);
        ssl::testing::gradcheck_report rep;
        ssl::testing::check_entries(rep, "input", x.data(), dx.data(), x.numel(), loss, o);
        net.for_each_parameter(
            [&](const std::string& n, ssl::parameter<double>& p) {
                tensor<double> g = p.grad.clone();
                ssl::testing::check_entries(rep, n, p.value.data(), g.data(), p.value.numel(), loss, o);
            },
            "");
        CHECK_MESSAGE(rep.ok, rep.str());
        CHECK(rep.checked > 100);
        CHECK(rep.skipped_kinks * 20 <= rep.checked);
    }
}

TEST_SUITE("gradcheck") {
    TEST_CASE("taps gradcheck: resnet18 cifar stem, out + layer2 + layer3.1 (+ its alias layer3)") {
        ssl::resnet18<double> net({.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .seed = 1});
        check_taps_gradient(net, {3, 2, 12, 12}, {"layer2", "layer3.1", "layer3"}, 3);
    }
    TEST_CASE("taps gradcheck: resnet18 imagenet stem with classifier, fc + conv1 + bn1 + layer2.1") {
        ssl::resnet18<double> net({.in_channels = 1, .width = 4, .num_classes = 3, .seed = 2});
        check_taps_gradient(net, {3, 1, 24, 24}, {"conv1", "bn1", "layer2.1", "fc"}, 3);
    }
    TEST_CASE("taps gradcheck: taps only (no output gradient), relu + layer1.0") {
        ssl::resnet18<double> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 3});
        check_taps_gradient(net, {2, 1, 8, 8}, {"relu", "layer1.0"}, 3, false);
    }
    TEST_CASE("taps gradcheck: resnet18v2, out + conv1 + layer2.0 + norm") {
        ssl::resnet18v2<double> net({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 5});
        check_taps_gradient(net, {3, 1, 8, 8}, {"conv1", "layer2.0", "norm"}, 3);
    }
    TEST_CASE("taps gradcheck: vgg11, out + a bn tap (unfused) + a pool") {
        ssl::vgg11<double> net({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 6});
        check_taps_gradient(net, {3, 1, 16, 16}, {"features.5", "features.7"}, 4);
    }
    TEST_CASE("taps gradcheck: revnet, reversible unit outputs inside a stage, with and without an output gradient") {
        ssl::revnet<double, false> net({4, 3}, {.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 7});
        check_taps_gradient(net, {3, 1, 8, 8}, {"layer1.2", "layer2.1", "layer1"}, 3);
        check_taps_gradient(net, {3, 1, 8, 8}, {"layer1.1"}, 3, false);
    }
    TEST_CASE("taps gradcheck: convnet, out + features.2 + features.9") {
        ssl::convnet<double> net({.in_channels = 2, .width = 2, .seed = 4});
        check_taps_gradient(net, {2, 2, 9, 9}, {"features.2", "features.9"}, 6);
    }
}

}  // namespace test_taps
