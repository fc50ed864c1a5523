#include <doctest/doctest.h>

#include <ssl/backbone/resnet.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/eval/finetune.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

namespace test_finetune {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
namespace ev = ssl::eval;
using net_t = ssl::resnet18<float>;

namespace {

// 12x12 gray images of 3 classes that crops and flips keep: horizontal
// stripes, vertical stripes, flat; random phase and noise. `per[c]` images of
// class c, classes interleaved while they last.
ssl::data::image_dataset stripes(std::vector<std::size_t> per, std::uint64_t seed) {
    const std::size_t s = 12;
    std::size_t total = 0;
    for (auto p : per) total += p;
    ssl::data::image_dataset d;
    d.images = tensor<std::uint8_t>({total, 1, s, s});
    d.num_classes = per.size();
    d.name = "stripes";
    ssl::philox g(seed, 7);
    std::size_t i = 0;
    for (std::size_t round = 0; i < total; ++round)
        for (std::size_t c = 0; c < per.size(); ++c) {
            if (round >= per[c]) continue;
            const std::size_t phase = g.below(4);
            for (std::size_t y = 0; y < s; ++y)
                for (std::size_t x = 0; x < s; ++x) {
                    const std::size_t t = c == 0 ? y : x;
                    double v = c == 2 ? 0.5 : ((t + phase) % 4 < 2 ? 0.85 : 0.15);
                    v = std::clamp(v + 0.1 * g.normal(), 0.0, 1.0);
                    d.images.data()[i * s * s + y * s + x] = static_cast<std::uint8_t>(std::lround(255 * v));
                }
            d.labels.push_back(static_cast<std::int64_t>(c));
            ++i;
        }
    return d;
}

net_t small_net(std::uint64_t seed = 3) { return net_t({.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = seed}); }

// every parameter and buffer of a module, cloned, by name
std::map<std::string, tensor<float>> snapshot(net_t& m) {
    std::map<std::string, tensor<float>> s;
    m.for_each_parameter([&](const std::string& n, ssl::parameter<float>& p) { s[n] = p.value.clone(); }, "");
    m.for_each_buffer(
        [&](const std::string& n, auto& t) {
            if constexpr (std::is_same_v<std::remove_cvref_t<decltype(t)>, tensor<float>>) s["buffer " + n] = t.clone();
        },
        "");
    return s;
}

bool same_bits(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

ev::finetune_config quick() {
    ev::finetune_config c;
    c.epochs = 15;
    c.batch = 16;
    c.lr = 0.05;
    return c;
}

}  // namespace

TEST_CASE("finetune: separable classes reach 100 % test top-1 from a quarter of the labels, whole network trained") {
    const auto train = stripes({40, 40, 40}, 1), test = stripes({20, 20, 20}, 2);
    auto net = small_net();
    const auto before = snapshot(net);
    auto f = ev::finetune(net, train, test, 0.25, quick());
    CHECK(f.row.fraction == 0.25);
    CHECK(f.row.images == 30);       // 10 of each class
    CHECK(f.row.epochs == 15);
    CHECK(f.row.steps == 15 * 2);    // 30 images in batches of 16: two of 15
    CHECK(f.row.batch == 16);
    CHECK(f.row.test_top1 == doctest::Approx(1.0));
    CHECK(f.row.train_top1 > 0.9);
    CHECK(std::isfinite(f.row.train_loss));
    // the trained backbone is untouched, bit for bit, and still in train mode
    CHECK(net.training());
    for (const auto& [name, t] : snapshot(net)) {
        CAPTURE(name);
        CHECK(same_bits(t, before.at(name)));
    }
    // the copy was fine-tuned as a whole: every parameter of the backbone moved, not only the head
    std::size_t params = 0, moved = 0;
    f.backbone.for_each_parameter(
        [&](const std::string& name, ssl::parameter<float>& p) {
            ++params;
            moved += !same_bits(p.value, before.at(name));
        },
        "");
    CHECK(params > 20);
    CHECK(moved == params);
    CHECK(!same_bits(snapshot(f.backbone).at("buffer bn1.running_mean"), before.at("buffer bn1.running_mean")));
    // the returned network scores what the row says
    CHECK(ev::finetuned_top1(f.backbone, f.head, test) == f.row.test_top1);
}

TEST_CASE("finetune: the subset is stratified (round(f n_c) of every class), the run reproducible per seed") {
    const auto train = stripes({30, 21, 10}, 3), test = stripes({5, 5, 5}, 4);
    auto net = small_net();
    auto cfg = quick();
    cfg.epochs = 2;
    auto a = ev::finetune(net, train, test, 0.3, cfg);
    CHECK(a.row.images == 9 + 6 + 3);  // round(0.3 x 30, 21, 10)
    auto b = ev::finetune(net, train, test, 0.3, cfg);
    CHECK(a.row.train_loss == b.row.train_loss);  // the same subset, order, crops and init
    CHECK(a.row.test_top1 == b.row.test_top1);
    CHECK(same_bits(a.head.weight().value, b.head.weight().value));
    cfg.seed = 1;
    auto c = ev::finetune(net, train, test, 0.3, cfg);
    CHECK(c.row.images == 18);
    CHECK(c.row.train_loss != a.row.train_loss);  // another subset and init
    // the subset is data::labelled_subset's: the classes it covers decide what runs
    CHECK(ev::labels_every_class(train, 0.05));    // round(0.05 x 10) = 1
    CHECK(!ev::labels_every_class(train, 0.04));   // class 2 rounds to none
    CHECK(!ev::labels_every_class(train, 0));
    CHECK(ev::finetune_epochs({}, 0.01) == 60);
    CHECK(ev::finetune_epochs({}, 0.1) == 30);
    // finetune_evaluate: one row per fraction, in order
    cfg.fractions = {0.5, 0.2};
    cfg.epochs = 1;
    const auto r = ev::finetune_evaluate(net, train, test, cfg);
    REQUIRE(r.rows.size() == 2);
    CHECK(r.rows[0].images == 15 + 11 + 5);  // halves round up
    CHECK(r.rows[1].images == 6 + 4 + 2);
}

TEST_CASE("finetune: an image seen as several copies is classified by the mean of its copies' features") {
    // mean_of_copies and spread_to_copies are adjoint: <spread(g), f> = <g, mean(f)>
    ssl::philox g(5, 0);
    tensor<float> f({3 * 4, 5}), dy({4, 5});
    for (auto& v : f) v = static_cast<float>(g.normal());
    for (auto& v : dy) v = static_cast<float>(g.normal());
    const auto m = ev::detail::mean_of_copies(f, 3);
    const auto s = ev::detail::spread_to_copies(dy, 3);
    REQUIRE(m.shape() == ssl::shape_t{4, 5});
    REQUIRE(s.shape() == f.shape());
    CHECK(m.at(1, 2) == doctest::Approx((f.at(1, 2) + f.at(5, 2) + f.at(9, 2)) / 3));  // rows r * N + i
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < f.numel(); ++i) lhs += static_cast<double>(s[i]) * f[i];
    for (std::size_t i = 0; i < m.numel(); ++i) rhs += static_cast<double>(dy[i]) * m[i];
    CHECK(lhs == doctest::Approx(rhs));
    // a transform that gives two copies per image (the image and its mirror) trains and tests
    const auto train = stripes({12, 12, 12}, 6), test = stripes({6, 6, 6}, 7);
    auto net = small_net();
    const ev::image_transform two = [](const tensor<float>& x) {
        const std::size_t n = x.dim(0), w = x.dim(3);
        tensor<float> out({2 * n, x.dim(1), x.dim(2), w});
        std::copy(x.begin(), x.end(), out.data());
        for (std::size_t k = 0; k < x.numel(); ++k) out.data()[x.numel() + k] = x.data()[k - k % w + (w - 1 - k % w)];
        return out;
    };
    auto cfg = quick();
    cfg.epochs = 3;
    const auto r = ev::finetune(net, train, test, 0.5, cfg, two, 2);
    CHECK(r.row.images == 18);
    CHECK(r.row.test_top1 >= 0.0);
    // a transform whose rows are not copies x images is refused
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, test, 0.5, cfg, two, 3),
                         doctest::Contains("images as 3 copies each gave backbone features of shape"), ssl::shape_error);
}

TEST_CASE("finetune: bad input is refused with a sentence") {
    const auto train = stripes({10, 10, 10}, 8), test = stripes({4, 4, 4}, 9);
    auto net = small_net();
    const auto cfg = quick();
    for (double bad : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
        CAPTURE(bad);
        CHECK_THROWS_WITH_AS(ev::finetune(net, train, test, bad, cfg),
                             doctest::Contains("finetune: the fraction of labelled images must be in (0, 1]"),
                             ssl::value_error);
    }
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, test, 0.01, cfg),
                         doctest::Contains("rounds to none labelled, which leaves the class without a label"),
                         ssl::value_error);
    auto unlabelled = train;
    unlabelled.labels.clear();
    unlabelled.num_classes = 0;
    CHECK_THROWS_WITH_AS(ev::finetune(net, unlabelled, test, 0.5, cfg), doctest::Contains("has no labels"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, unlabelled, 0.5, cfg),
                         doctest::Contains("has no labels; fine-tuning is scored by its top-1 accuracy"),
                         ssl::value_error);
    const auto one_class = stripes({3}, 10);
    CHECK_THROWS_WITH_AS(ev::finetune(net, one_class, one_class, 0.3, cfg),
                         doctest::Contains("has 1 image; fine-tuning trains batch norm on batch statistics"),
                         ssl::value_error);
    auto big = test;
    big.images = tensor<std::uint8_t>({12, 1, 16, 16});
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, big, 0.5, cfg), doctest::Contains("the network needs one shape"),
                         ssl::shape_error);
    auto more_classes = test;
    more_classes.labels[0] = 3;
    more_classes.num_classes = 4;
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, more_classes, 0.5, cfg),
                         doctest::Contains("test label 3 at index 0 is outside [0, 3)"), ssl::value_error);
    auto c = cfg;
    c.batch = 1;
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, test, 0.5, c), doctest::Contains("batch must be at least 2 images"),
                         ssl::value_error);
    c = cfg;
    c.lr = -1;
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, test, 0.5, c), doctest::Contains("lr must be finite and >= 0"),
                         ssl::value_error);
    c = cfg;
    c.momentum = 1;
    CHECK_THROWS_WITH_AS(ev::finetune(net, train, test, 0.5, c), doctest::Contains("momentum must be in [0, 1)"),
                         ssl::value_error);
    c = cfg;
    c.fractions.clear();
    CHECK_THROWS_WITH_AS(ev::finetune_evaluate(net, train, test, c), doctest::Contains("no fraction of the labels"),
                         ssl::value_error);
}

}  // namespace test_finetune
