#include <doctest/doctest.h>

#include <ssl/backbone/resnet_v2.hpp>
#include <ssl/backbone/revnet.hpp>
#include <ssl/backbone/vgg.hpp>
#include <ssl/loss/cross_entropy.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

#include <set>

namespace test_revnet {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;

static_assert(ssl::backbone_policy<ssl::revnet18<float>>);
static_assert(ssl::tapped_backbone<ssl::revnet50<double>>);

TEST_CASE("revnet: names, shapes, widths") {
    ssl::revnet50<float> net({.in_channels = 1, .width = 8, .num_classes = 3});
    std::set<std::string> names;
    net.for_each_parameter([&](const std::string& n, auto&) { names.insert(n); }, "");
    net.for_each_buffer([&](const std::string& n, auto&) { names.insert(n); }, "");
    for (const char* n : {"conv1.weight", "layer1.0.bn1.weight", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
                          "layer1.1.f.bn1.weight", "layer1.1.f.conv1.weight", "layer1.1.g.conv3.weight",
                          "layer3.5.g.bn2.running_var", "norm.weight", "fc.bias"})
        CHECK_MESSAGE(names.count(n) == 1, n);
    CHECK(names.count("layer1.1.conv1.weight") == 0);
    CHECK(net.feature_dim() == 256);
    CHECK(net.forward(ref::random<float>({2, 1, 40, 40}, 1)).out.shape() == shape_t{2, 3});
    // a reversible bottleneck unit on C channels: F and G map C/2 -> C/8 -> C/8 -> C/2
    std::size_t f_params = 0;
    net.for_each_parameter([&](const std::string& n, auto& p) { if (n.starts_with("layer4.1.f.")) f_params += p.value.numel(); }, "");
    const std::size_t C = 8 * 8 * 4, h = C / 2, m = C / 8;
    CHECK(f_params == 2 * h + h * m + 2 * m + 9 * m * m + 2 * m + m * h);
    ssl::revnet18<float> r18({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    CHECK(r18.forward(ref::random<float>({2, 1, 28, 28}, 1)).out.shape() == shape_t{2, 32});
    CHECK_THROWS_WITH_AS(ssl::revnet18<float>({.width = 3}), doctest::Contains("even"), ssl::value_error);
}

TEST_CASE("revnet: a reversible unit inverts (eq. 2) and backward leaves the running statistics alone") {
    ssl::nn::reversible_block<double, false> unit(8, 3);
    auto x = ref::random<double>({3, 8, 5, 5}, 4);
    auto [a1, a2] = ssl::detail::split_channels(x);
    const auto x1 = a1.clone(), x2 = a2.clone();
    unit.forward(a1, a2);
    std::vector<double> stats;
    unit.for_each_buffer([&](const std::string&, auto& t) { for (auto v : t) stats.push_back(double(v)); }, "");
    tensor<double> d1, d2;
    unit.backward(a1, a2, d1, d2);  // no gradients: inversion only
    for (std::size_t i = 0; i < x1.numel(); ++i) {
        CHECK(a1[i] == doctest::Approx(x1[i]).epsilon(1e-12));
        CHECK(a2[i] == doctest::Approx(x2[i]).epsilon(1e-12));
    }
    std::vector<double> after;
    unit.for_each_buffer([&](const std::string&, auto& t) { for (auto v : t) after.push_back(double(v)); }, "");
    CHECK(stats == after);
}

TEST_CASE("revnet: the same function as a v2 net would compute from its units, stage by stage") {
    // forward / backward agree with running the stage as an ordinary network
    // that keeps activations: a revnet with one unit per stage is a resnet_v2
    // with one unit per stage (same names, same values).
    ssl::revnet<float, false> rev({1, 1}, {.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 5});
    ssl::resnet_v2<ssl::nn::preact_basic_block<float>> v2({1, 1}, {.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 5});
    std::vector<std::string> na, nb;
    rev.for_each_parameter([&](const std::string& n, auto&) { na.push_back(n); }, "");
    v2.for_each_parameter([&](const std::string& n, auto&) { nb.push_back(n); }, "");
    CHECK(na == nb);
    auto x = ref::random<float>({2, 1, 8, 8}, 1);
    auto ya = rev.forward(x).out, yb = v2.forward(x).out;
    for (std::size_t i = 0; i < ya.numel(); ++i) CHECK(ya[i] == yb[i]);
}

// As resnet's: after two steps, a training step takes every tensor from the
// pool (RevNet's recomputation included) and the loss goes down.
template <class Net>
void check_steady_state(Net& net, std::size_t classes_out) {
    ssl::nn::linear<float> fc({net.output_dim(), classes_out}, 3);
    ssl::optim::sgd<float> opt(net, {.lr = 0.01, .momentum = 0.9});
    ssl::optim::sgd<float> opt_fc(fc, {.lr = 0.01, .momentum = 0.9});
    ssl::loss::cross_entropy<float> ce;
    auto x = ref::random<float>({8, 1, 16, 16}, 1);
    std::vector<std::int64_t> y{0, 1, 2, 3, 0, 1, 2, 3};
    auto step = [&] {
        opt.zero_grad();
        opt_fc.zero_grad();
        auto f = net.forward(x);
        auto l = fc.forward(f.out);
        auto loss = ce(l.out, y);
        net.backward(f.cache, fc.backward(l.cache, loss.grad), false);
        opt.step();
        opt_fc.step();
        return loss.value;
    };
    const double first = step();
    step();
    double last = 0;
    if (!ssl::host_pool_poisoning()) {
        const auto before = ssl::host_pool_stats();
        for (int i = 0; i < 3; ++i) last = step();
        CHECK(ssl::host_pool_stats().system_allocations == before.system_allocations);
    } else {
        for (int i = 0; i < 3; ++i) last = step();
    }
    CHECK(last < first);
}

TEST_CASE("revnet, resnet_v2, vgg: a steady-state training step makes no system allocation for tensors") {
    SUBCASE("revnet") {
        ssl::revnet<float, false> net({2, 3}, {.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
        check_steady_state(net, 4);
    }
    SUBCASE("resnet18v2") {
        ssl::resnet18v2<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
        check_steady_state(net, 4);
    }
    SUBCASE("vgg11") {
        ssl::vgg11<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
        check_steady_state(net, 4);
    }
}

template <class Net>
void check_backbone(Net& net, ssl::shape_t s, std::size_t samples) {
    net.train(true);
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
    TEST_CASE("revnet gradcheck: basic units, 3 reversible units per stage, cifar stem, classifier") {
        ssl::revnet<double, false> net({4, 3}, {.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .num_classes = 3});
        check_backbone(net, {4, 2, 8, 8}, 3);
    }
    TEST_CASE("revnet50 gradcheck (sampled), imagenet stem") {
        ssl::revnet50<double> net({.in_channels = 1, .width = 4});
        check_backbone(net, {4, 1, 36, 36}, 2);
    }
}

}  // namespace test_revnet
