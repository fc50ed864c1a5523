#include <doctest/doctest.h>

#include <ssl/backbone/resnet.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <ssl/loss/cross_entropy.hpp>
#include <ssl/optim/sgd.hpp>

#include "../nn/reference.hpp"

#include <set>

namespace test_resnet {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;

static std::size_t count(auto& net) { return ssl::parameter_count(net); }

TEST_CASE("resnet: parameter counts equal torchvision's") {
    // torchvision.models.resnet18() / resnet34() / resnet50(): 11,689,512 / 21,797,672 / 25,557,032
    ssl::resnet18<float> r18({.num_classes = 1000});
    CHECK(count(r18) == 11689512);
    ssl::resnet34<float> r34({.num_classes = 1000});
    CHECK(count(r34) == 21797672);
    ssl::resnet50<float> r50({.num_classes = 1000});
    CHECK(count(r50) == 25557032);
    ssl::resnet18<float> feat;  // no fc: 512*1000 + 1000 fewer
    CHECK(count(feat) == 11689512 - 513000);
    CHECK(feat.feature_dim() == 512);
    CHECK(r50.feature_dim() == 2048);
    CHECK(r50.output_dim() == 1000);
}

TEST_CASE("resnet: torchvision state_dict names") {
    ssl::resnet18<float> net({.width = 8, .num_classes = 10});
    std::set<std::string> names;
    net.for_each_parameter([&](const std::string& n, auto&) { names.insert(n); }, "");
    net.for_each_buffer([&](const std::string& n, auto&) { names.insert(n); }, "");
    for (const char* n : {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                          "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.running_var",
                          "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean",
                          "layer4.1.conv2.weight", "fc.weight", "fc.bias"})
        CHECK_MESSAGE(names.count(n) == 1, n);
    CHECK(names.count("layer1.0.downsample.0.weight") == 0);
    // resnet18 state_dict has 122 entries with fc (62 params + 60 buffers)
    CHECK(names.size() == 122);
}

TEST_CASE("resnet: stems, channels, widths, stage outputs") {
    ssl::resnet18<float> cifar({.in_channels = 1, .width = 16, .stem = ssl::stem::cifar});
    auto [y, c] = cifar.forward(ref::random<float>({2, 1, 28, 28}, 1));
    CHECK(y.shape() == shape_t{2, 128});
    REQUIRE(c.stages.size() == 6);
    CHECK(c.stages[0].shape() == shape_t{2, 16, 28, 28});  // stem, no max pool
    CHECK(c.stages[1].shape() == shape_t{2, 16, 28, 28});
    CHECK(c.stages[2].shape() == shape_t{2, 32, 14, 14});
    CHECK(c.stages[3].shape() == shape_t{2, 64, 7, 7});
    CHECK(c.stages[4].shape() == shape_t{2, 128, 4, 4});
    CHECK(c.stages[5].shape() == shape_t{2, 128});
    ssl::resnet50<float> imnet({.in_channels = 4, .width = 8});
    auto [y2, c2] = imnet.forward(ref::random<float>({2, 4, 64, 64}, 2));
    CHECK(y2.shape() == shape_t{2, 256});
    CHECK(c2.stages[0].shape() == shape_t{2, 8, 16, 16});  // 7x7/2 then max pool /2
    CHECK(c2.stages[4].shape() == shape_t{2, 256, 2, 2});
    try {
        cifar.forward(tensor<float>({2, 3, 28, 28}));
        FAIL("wrong channels must throw");
    } catch (const ssl::shape_error& e) {
        CHECK(std::string(e.what()).find("built for 1") != std::string::npos);
    }
    CHECK_THROWS_AS(ssl::resnet18<float>({.width = 0}), ssl::value_error);
    CHECK_THROWS_AS(ssl::resnet18<float>({.in_channels = 0}), ssl::value_error);
}

TEST_CASE("resnet: torchvision initialization, reproducible from the seed") {
    ssl::resnet18<float> a({.width = 16, .seed = 3}), b({.width = 16, .seed = 3}), c({.width = 16, .seed = 4});
    std::vector<float> wa, wb, wc;
    a.for_each_parameter([&](const std::string& n, auto& p) { if (n == "layer3.0.conv1.weight") wa.assign(p.value.begin(), p.value.end()); }, "");
    b.for_each_parameter([&](const std::string& n, auto& p) { if (n == "layer3.0.conv1.weight") wb.assign(p.value.begin(), p.value.end()); }, "");
    c.for_each_parameter([&](const std::string& n, auto& p) { if (n == "layer3.0.conv1.weight") wc.assign(p.value.begin(), p.value.end()); }, "");
    CHECK(wa == wb);
    CHECK(wa != wc);
    // kaiming_normal_(fan_out): std = sqrt(2 / (64 * 9))
    double s2 = 0;
    for (float v : wa) s2 += double(v) * v;
    CHECK(std::sqrt(s2 / wa.size()) == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.05));
    bool bn_ok = true;
    a.for_each_parameter([&](const std::string& n, auto& p) {
        if (n == "bn1.weight") for (float v : p.value) bn_ok &= v == 1.0f;
        if (n == "bn1.bias") for (float v : p.value) bn_ok &= v == 0.0f;
    }, "");
    CHECK(bn_ok);
}

// Deep nets: relu and max-pool kinks crossed by a finite-difference step
// cost accuracy, so the relative tolerance is 1e-3 here (a wrong backward is
// off by O(1)). Eval mode runs with running statistics from a few training
// batches: with fresh statistics (mean 0, beta 0) zero-padded regions give
// pre-activations of exactly 0, a kink that no step size resolves.
template <class Net>
void warm_running_stats(Net& net, ssl::shape_t s) {
    net.train(true);
    for (std::uint64_t k = 0; k < 3; ++k) net.forward(ref::random<double>(s, 100 + k, -1.0, 2.0));
}

template <class Net>
void check_backbone(Net& net, ssl::shape_t s, std::size_t samples) {
    warm_running_stats(net, s);
    for (bool train : {true, false}) {
        CAPTURE(train);
        net.train(train);
        auto r = ssl::testing::gradcheck(net, ref::random<double>(s, 5), {.rtol = 1e-3, .max_checks_per_tensor = samples});
        CHECK_MESSAGE(r.ok, r.str());
        CHECK(r.checked > 100);
        CHECK(r.skipped_kinks * 20 <= r.checked);  // kinks are rare
    }
}

TEST_SUITE("gradcheck") {
    TEST_CASE("resnet18 gradcheck, cifar and imagenet stems, with classifier") {
        ssl::resnet18<double> a({.in_channels = 2, .width = 2, .stem = ssl::stem::cifar, .num_classes = 3});
        check_backbone(a, {4, 2, 16, 16}, 3);
        ssl::resnet18<double> b({.in_channels = 1, .width = 2, .stem = ssl::stem::imagenet});
        check_backbone(b, {4, 1, 40, 40}, 3);
    }
    TEST_CASE("resnet34 gradcheck (sampled)") {
        ssl::resnet34<double> net({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar});
        check_backbone(net, {4, 1, 16, 16}, 2);
    }
    TEST_CASE("resnet50 gradcheck (sampled)") {
        ssl::resnet50<double> net({.in_channels = 1, .width = 2, .stem = ssl::stem::imagenet});
        check_backbone(net, {4, 1, 40, 40}, 2);
    }
}

TEST_CASE("resnet: a steady-state training step makes no system allocation for tensors") {
    ssl::resnet18<float> net({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .num_classes = 5});
    ssl::optim::sgd<float> opt(net, {.lr = 0.01, .momentum = 0.9, .weight_decay = 1e-4});
    ssl::loss::cross_entropy<float> ce;
    auto x = ref::random<float>({8, 1, 12, 12}, 1);
    std::vector<std::int64_t> y{0, 1, 2, 3, 4, 0, 1, 2};
    auto step = [&] {
        opt.zero_grad();
        auto [logits, cache] = net.forward(x);
        auto l = ce(logits, y);
        net.backward(cache, l.grad, false);
        opt.step();
        return l.value;
    };
    const double first = step();
    step();
    if (ssl::host_pool_poisoning()) return;  // SSL_POISON_ALLOCATIONS: no caching by design
    const auto before = ssl::host_pool_stats();
    double last = 0;
    for (int i = 0; i < 3; ++i) last = step();
    const auto after = ssl::host_pool_stats();
    CHECK(after.system_allocations == before.system_allocations);
    CHECK(after.reuses > before.reuses);
    CHECK(last < first);  // and it learns
}

}  // namespace test_resnet
