#include <doctest/doctest.h>

#include <ssl/backbone/any_backbone.hpp>
#include <ssl/backbone/channel_split.hpp>
#include <ssl/backbone/resnet.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"

#include <string>
#include <vector>

namespace test_channel_split {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;
using ssl::tensor;
template <class T>
using split = ssl::channel_split<ssl::resnet18<T>>;

static_assert(ssl::backbone_policy<split<float>>);
static_assert(ssl::tapped_backbone<split<float>>);
static_assert(ssl::tapped_backbone<ssl::channel_split<ssl::any_backbone<float>>>);

template <class T>
typename split<T>::options_type opts(std::size_t width = 4, std::uint64_t seed = 3) {
    return {.backbone = {.in_channels = 3, .width = width, .stem = ssl::stem::cifar}, .groups = {1, 2}, .seed = seed};
}

/// Channels [lo, lo + n) of x, for building each half's input by hand.
template <class T>
tensor<T> channels(const tensor<T>& x, std::size_t lo, std::size_t n) {
    return ssl::detail::take_channels(x, lo, n);
}

TEST_CASE("channel_split: two halves of half width, each on its channels; features side by side; names") {
    split<float> net(opts<float>(8));
    ssl::resnet18<float> h1({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 3});
    ssl::resnet18<float> h2({.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .seed = 4});
    CHECK(net.output_dim() == h1.output_dim() + h2.output_dim());
    CHECK(net.output_dim() == 64);  // = a whole resnet18 of width 8
    for (bool train : {true, false}) {
        net.train(train);
        h1.train(train);
        h2.train(train);
        const auto x = ref::random<float>({3, 3, 12, 12}, 1);
        const auto y = net.forward(x).out;
        const auto y1 = h1.forward(channels(x, 0, 1)).out, y2 = h2.forward(channels(x, 1, 2)).out;
        REQUIRE(y.shape() == shape_t{3, 64});
        for (std::size_t i = 0; i < 3; ++i)
            for (std::size_t k = 0; k < 32; ++k) {
                CHECK(y.at(i, k) == y1.at(i, k));
                CHECK(y.at(i, 32 + k) == y2.at(i, k));
            }
    }
    std::vector<std::string> names;
    net.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "backbone");
    CHECK(names.front() == "backbone.half1.conv1.weight");
    CHECK(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("backbone.half2."); }) ==
          static_cast<std::ptrdiff_t>(names.size() / 2));
    const auto taps = net.tap_names();
    CHECK(std::find(taps.begin(), taps.end(), "half1.layer4") != taps.end());
    CHECK(std::find(taps.begin(), taps.end(), "half2.relu") != taps.end());
}

TEST_CASE("channel_split: the halves do not see each other's channels") {
    split<float> net(opts<float>(4));
    const std::vector<std::string> names{"half1.layer2", "half2.layer1", "half1.relu"};
    for (bool train : {true, false}) {
        CAPTURE(train);
        net.train(train);
        const auto x = ref::random<float>({4, 3, 8, 8}, 2);
        // x2: other values in channels 1, 2 (half 2's) only; x3: in channel 0 only
        tensor<float> x2 = x.clone(), x3 = x.clone();
        for (std::size_t i = 0; i < 4; ++i)
            for (std::size_t q = 0; q < 64; ++q) {
                x2[(i * 3 + 1) * 64 + q] += 0.7f;
                x2[(i * 3 + 2) * 64 + q] *= -2.0f;
                x3[(i * 3) * 64 + q] = 0.3f * x3[(i * 3) * 64 + q] - 0.5f;
            }
        const auto a = net.forward_taps(x, names), b = net.forward_taps(x2, names), c = net.forward_taps(x3, names);
        const std::size_t d1 = net.half1().output_dim();
        bool half1_same = true, half2_same = true, half1_moved = false, half2_moved = false;
        for (std::size_t i = 0; i < 4; ++i)
            for (std::size_t k = 0; k < net.output_dim(); ++k) {
                if (k < d1) {
                    half1_same = half1_same && a.out.at(i, k) == b.out.at(i, k);
                    half1_moved = half1_moved || a.out.at(i, k) != c.out.at(i, k);
                } else {
                    half2_same = half2_same && a.out.at(i, k) == c.out.at(i, k);
                    half2_moved = half2_moved || a.out.at(i, k) != b.out.at(i, k);
                }
            }
        CHECK(half1_same);   // ab changed: half 1's features are bitwise the same
        CHECK(half2_same);   // L changed: half 2's features are bitwise the same
        CHECK(half1_moved);  // (and each half does read its own channels)
        CHECK(half2_moved);
        CHECK(ref::max_abs_diff(a.taps[0], b.taps[0]) == 0.0);
        CHECK(ref::max_abs_diff(a.taps[2], b.taps[2]) == 0.0);
        CHECK(ref::max_abs_diff(a.taps[1], c.taps[1]) == 0.0);
        CHECK(ref::max_abs_diff(a.taps[1], b.taps[1]) > 0.0);
    }
}

TEST_CASE("channel_split: bad options, inputs and tap names are refused with a sentence") {
    auto o = opts<float>();
    o.groups = {1, 1};
    CHECK_THROWS_WITH_AS(split<float>{o}, doctest::Contains("groups 1 + 1 channels, but the backbone's in_channels is 3"),
                         ssl::value_error);
    o = opts<float>(5);
    CHECK_THROWS_WITH_AS(split<float>{o}, doctest::Contains("width 5 must be even"), ssl::value_error);
    o = opts<float>();
    o.groups = {3};
    CHECK_THROWS_AS(split<float>{o}, ssl::value_error);
    o = opts<float>();
    o.backbone.num_classes = 10;
    CHECK_THROWS_WITH_AS(split<float>{o}, doctest::Contains("no classifier"), ssl::value_error);
    split<float> net(opts<float>());
    CHECK_THROWS_WITH_AS(net.forward(ref::random<float>({2, 1, 8, 8}, 1)),
                         doctest::Contains("expected (N, 3, H, W) images (1 channels for half 1, 2 for half 2)"),
                         ssl::shape_error);
    CHECK_THROWS_WITH_AS(net.forward_taps(ref::random<float>({2, 3, 8, 8}, 1), {"layer2"}),
                         doctest::Contains("no tap named 'layer2' (tap names start with half1. or half2.)"),
                         ssl::value_error);
    CHECK_THROWS_AS(net.forward_taps(ref::random<float>({2, 3, 8, 8}, 1), {"half1.layer9"}), ssl::value_error);
    auto r = net.forward_taps(ref::random<float>({2, 3, 8, 8}, 1), {"half1.layer2"});
    CHECK_THROWS_AS(net.backward_taps(r.cache, tensor<float>{}, {tensor<float>({2, 1, 1, 1})}), ssl::shape_error);
    CHECK_THROWS_AS(net.backward_taps(r.cache, tensor<float>({2, 5}), {}), ssl::shape_error);
}

// Finite differences of L = sum(R0 .* out) + sum_i sum(Ri .* tap_i) through
// forward_taps / backward_taps (taps of both halves, or of half 1 only: half
// 2 then gets no gradient and its input gradient is 0), for the input and
// (sampled) every parameter of both halves, in train and eval mode.
void check_split_taps(const std::vector<std::string>& names, bool with_out) {
    split<double> net(opts<double>(4, 7));
    const shape_t s{3, 3, 8, 8};
    net.train(true);  // running statistics away from the fresh ones (see test_resnet.cpp)
    for (std::uint64_t k = 0; k < 3; ++k) net.forward(ref::random<double>(s, 100 + k, -1.0, 2.0));
    ssl::testing::gradcheck_options o{.rtol = 1e-3, .max_checks_per_tensor = 3};
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
    TEST_CASE("channel_split gradcheck: forward / backward, input and every parameter of both halves") {
        split<double> net(opts<double>(4, 5));
        const shape_t s{3, 3, 8, 8};
        net.train(true);
        for (std::uint64_t k = 0; k < 3; ++k) net.forward(ref::random<double>(s, 100 + k, -1.0, 2.0));
        for (bool train : {true, false}) {
            CAPTURE(train);
            net.train(train);
            auto r = ssl::testing::gradcheck(net, ref::random<double>(s, 5), {.rtol = 1e-3, .max_checks_per_tensor = 3});
            CHECK_MESSAGE(r.ok, r.str());
            CHECK(r.checked > 100);
        }
    }
    TEST_CASE("channel_split gradcheck: taps of both halves and the output") {
        check_split_taps({"half2.layer1", "half1.layer2", "half1.relu", "half2.layer3"}, true);
    }
    TEST_CASE("channel_split gradcheck: taps of half 1 only, no output gradient (half 2 untouched)") {
        check_split_taps({"half1.layer1", "half1.layer3"}, false);
    }
}

}  // namespace test_channel_split
