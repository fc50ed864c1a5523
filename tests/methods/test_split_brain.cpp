// Split-brain (split_brain.hpp) end to end: the Lab views and quantized
// targets (known colours to known bins), the head's and the loss's
// gradients, the halves' isolation through the whole model, bad input, the
// config's JSON round trip, and the loss falling through the trainer.
#include <doctest/doctest.h>

#include <cmath>

#include <ssl/backbone/convnet.hpp>
#include <ssl/split_brain.hpp>
#include <ssl/testing/gradcheck.hpp>
#include <ssl/trainer.hpp>

namespace test_split_brain_method {

using ssl::shape_t;
using ssl::tensor;

/// n images (N, C, S, S) of one colour each, C = rgb.size() (1: grey, 3: sRGB).
tensor<float> solid(std::size_t n, std::size_t S, std::initializer_list<float> rgb) {
    const std::size_t C = rgb.size();
    tensor<float> x({n, C, S, S});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < C; ++c)
            for (std::size_t q = 0; q < S * S; ++q) x[(i * C + c) * S * S + q] = rgb.begin()[c];
    return x;
}

/// n colour images, 32 x 32, as tests/methods/test_colorization.cpp's: left
/// of a random column horizontal stripes in red, right of it vertical
/// stripes in blue, random lightness and noise.
ssl::data::image_dataset striped(std::size_t n, std::uint64_t seed) {
    ssl::data::image_dataset d;
    d.images = ssl::tensor<std::uint8_t>({n, 3, 32, 32});
    d.name = "striped";
    ssl::philox g(seed, 1);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t cut = 8 + g.below(16);
        const double base = g.uniform(0.3, 0.7);
        for (std::size_t y = 0; y < 32; ++y)
            for (std::size_t x = 0; x < 32; ++x) {
                const bool left = x < cut;
                const double s = 0.25 * std::sin(2.1 * double(left ? y : x)) + g.uniform(-0.05, 0.05);
                const double v = std::clamp(base + s, 0.05, 0.95);
                const double r = left ? v : 0.3 * v, gg = 0.3 * v, b = left ? 0.3 * v : v;
                const double rgb[3] = {r, gg, b};
                for (std::size_t c = 0; c < 3; ++c)
                    d.images[((i * 3 + c) * 32 + y) * 32 + x] = static_cast<std::uint8_t>(std::lround(rgb[c] * 255));
            }
    }
    return d;
}

TEST_CASE("split_brain_views: known colours map to known ab and L bins, per grid cell in row c * N + i") {
    ssl::augment::split_brain_views v({.size = 8, .grid = 2, .l_bins = 100});
    const auto& ab = ssl::color::ab_gamut_bins();
    CHECK(v.ab_classes() == 261);
    // image 0: left half sRGB red (L 53.24, a 80.09, b 67.20), right half
    // blue (32.30, 79.19, -107.86); image 1: white (100, 0, 0) on top, black below
    tensor<float> x({2, 3, 8, 8});
    for (std::size_t y = 0; y < 8; ++y)
        for (std::size_t q = 0; q < 8; ++q) {
            const bool left = q < 4, top = y < 4;
            const float rgb0[3] = {left ? 1.0f : 0.0f, 0.0f, left ? 0.0f : 1.0f};
            for (std::size_t c = 0; c < 3; ++c) {
                x[(0 * 3 + c) * 64 + y * 8 + q] = rgb0[c];
                x[(1 * 3 + c) * 64 + y * 8 + q] = top ? 1.0f : 0.0f;
            }
        }
    const auto t = v.targets(ssl::color::srgb_to_lab(x));
    REQUIRE(t.shape() == shape_t{8, 2});
    auto ab_centre = [&](std::size_t row) { return ab.centre(static_cast<std::size_t>(t.at(row, 0))); };
    using P = std::pair<double, double>;
    // cells c = gy * 2 + gx; row c * 2 + i
    for (std::size_t gy = 0; gy < 2; ++gy) {
        CHECK(ab_centre((gy * 2 + 0) * 2 + 0) == P{80, 70});    // red: a 80.09 -> 80, b 67.20 -> 70
        CHECK(ab_centre((gy * 2 + 1) * 2 + 0) == P{80, -110});  // blue: 79.19 -> 80, -107.86 -> -110
        CHECK(t.at((gy * 2 + 0) * 2 + 0, 1) == 53.0f);          // L 53.24: bin 53 of 100
        CHECK(t.at((gy * 2 + 1) * 2 + 0, 1) == 32.0f);          // L 32.30: bin 32
    }
    for (std::size_t gx = 0; gx < 2; ++gx) {
        CHECK(ab_centre((0 * 2 + gx) * 2 + 1) == P{0, 0});  // white
        CHECK(ab_centre((1 * 2 + gx) * 2 + 1) == P{0, 0});  // black
        CHECK(t.at((0 * 2 + gx) * 2 + 1, 1) == 99.0f);      // L 100: the last bin
        CHECK(t.at((1 * 2 + gx) * 2 + 1, 1) == 0.0f);       // L 0
    }
    // 50 L bins: bin width 2
    ssl::augment::split_brain_views v50({.size = 8, .grid = 2, .l_bins = 50});
    CHECK(v50.targets(ssl::color::srgb_to_lab(x)).at(0, 1) == 26.0f);  // L 53.24 / 2
    // a cell's target is its mean colour: half red, half white in one cell
    tensor<float> m = solid(1, 2, {1, 1, 1});
    m[0 * 4 + 0] = 1.0f, m[1 * 4 + 0] = 0.0f, m[2 * 4 + 0] = 0.0f;  // pixel 0 red
    m[0 * 4 + 1] = 1.0f, m[1 * 4 + 1] = 0.0f, m[2 * 4 + 1] = 0.0f;  // pixel 1 red
    const auto lab = ssl::color::srgb_to_lab(m);
    ssl::augment::split_brain_views v1({.size = 2, .grid = 1});
    const auto t1 = v1.targets(lab);
    const double ma = (lab[4] + lab[5] + lab[6] + lab[7]) / 4.0, mb = (lab[8] + lab[9] + lab[10] + lab[11]) / 4.0;
    CHECK(static_cast<std::size_t>(t1[0]) == ab.bin_of(ma, mb));
    CHECK(ab.centre(static_cast<std::size_t>(t1[0])) == P{40, 30});  // (40.05, 33.60)
}

TEST_CASE("split_brain_views: the Lab view, solid images' targets through make_views, grey eval, bad input") {
    ssl::augment::split_brain_views v({.size = 16, .grid = 4});
    const auto red = solid(3, 20, {1, 0, 0});
    std::vector<std::size_t> ids{0, 1, 2};
    const auto vb = v.make_views(red, ids, 5, 0);
    REQUIRE(vb.views.size() == 1);
    REQUIRE(vb.views[0].shape() == shape_t{3, 3, 16, 16});
    CHECK(vb.views[0].at(1, 0, 3, 4) == doctest::Approx(53.2408 / 50 - 1).epsilon(1e-4));
    CHECK(vb.views[0].at(1, 1, 3, 4) == doctest::Approx(0.800925).epsilon(1e-4));
    CHECK(vb.views[0].at(1, 2, 3, 4) == doctest::Approx(0.672032).epsilon(1e-4));
    REQUIRE(vb.soft_targets.shape() == shape_t{16 * 3, 2});
    const auto& ab = ssl::color::ab_gamut_bins();
    for (std::size_t r = 0; r < 48; ++r) {
        CHECK(ab.centre(static_cast<std::size_t>(vb.soft_targets.at(r, 0))) == std::pair<double, double>{80, 70});
        CHECK(vb.soft_targets.at(r, 1) == 53.0f);
    }
    // evaluation: a grey image (1 channel) is L with a = b = 0
    const auto e = v.eval_transform(solid(2, 16, {0.5f}));
    REQUIRE(e.shape() == shape_t{2, 3, 16, 16});
    const auto g = v.eval_transform(solid(2, 16, {0.5f, 0.5f, 0.5f}));
    for (std::size_t k = 0; k < e.numel(); ++k) REQUIRE(e[k] == g[k]);
    CHECK(std::abs(e.at(0, 1, 5, 5)) < 1e-6f);
    CHECK(e.at(0, 0, 5, 5) == doctest::Approx(53.3890 / 50 - 1).epsilon(1e-4));
    // bad input
    CHECK_THROWS_WITH_AS(v.make_views(solid(3, 16, {0.5f}), ids, 5, 0),
                         doctest::Contains("1-channel (grey) images have no colour"), ssl::value_error);
    CHECK_THROWS_WITH_AS(v.make_views(solid(3, 16, {255, 0, 0}), ids, 5, 0),
                         doctest::Contains("outside [0, 1] (images must be scaled to [0, 1], not 0..255)"),
                         ssl::value_error);
    CHECK_THROWS_AS(v.eval_transform(tensor<float>({2, 2, 16, 16})), ssl::shape_error);
    CHECK_THROWS_AS(ssl::augment::split_brain_views({.size = 16, .grid = 5}), ssl::value_error);
    CHECK_THROWS_AS(ssl::augment::split_brain_views({.l_bins = 1}), ssl::value_error);
}

TEST_CASE("split_brain_ce: the sum of both halves' cross entropies; bad targets refused") {
    ssl::loss::split_brain_ce ce({.ab_bins = 3, .l_bins = 2});
    tensor<double> z({2, 5});
    const double zv[10] = {1, 2, 0.5, -1, 1, 0, 0, 0, 3, 2};
    for (std::size_t k = 0; k < 10; ++k) z[k] = zv[k];
    tensor<double> y({2, 2});
    y[0] = 1, y[1] = 0, y[2] = 2, y[3] = 1;
    auto lse = [](std::initializer_list<double> v) {
        double s = 0;
        for (double x : v) s += std::exp(x);
        return std::log(s);
    };
    const double want = ((lse({1, 2, 0.5}) - 2) + (lse({-1, 1}) + 1) + (lse({0, 0, 0}) - 0) + (lse({3, 2}) - 2)) / 2;
    const auto out = ce(z, y);
    CHECK(out.value == doctest::Approx(want).epsilon(1e-12));
    CHECK(out.metrics[2].second == 50.0);   // ab top-1: row 0 right, row 1 a tie read as bin 0 (target 2)
    CHECK(out.metrics[3].second == 0.0);    // L top-1: both wrong
    y[0] = 3;
    CHECK_THROWS_WITH_AS(ce(z, y), doctest::Contains("row 0 has ab target 3, not a class index in 0..2"), ssl::value_error);
    y[0] = 0.5;
    CHECK_THROWS_AS(ce(z, y), ssl::value_error);
    CHECK_THROWS_AS(ce(tensor<double>({2, 4}), tensor<double>({2, 2})), ssl::shape_error);
    CHECK_THROWS_AS(ce(z, tensor<double>({2, 1})), ssl::shape_error);
}

ssl::head::split_hypercolumns_config head_config(double p = 0.0) {
    ssl::head::split_hypercolumns_config c;
    c.first = {.taps = {"half1.a", "half1.b"}, .tap_channels = {3, 2}, .grid = 2, .hidden = 5, .dropout = p, .outputs = 4};
    c.second = {.taps = {"half2.a"}, .tap_channels = {2}, .grid = 2, .hidden = 4, .dropout = p, .outputs = 3};
    return c;
}

TEST_CASE("split_hypercolumns: head k reads only its taps; logits side by side") {
    static_assert(ssl::head::tap_reading<ssl::head::split_hypercolumns<float>>);
    static_assert(ssl::head_policy<ssl::head::split_hypercolumns<float>>);
    ssl::head::split_hypercolumns<double> h(head_config(), 0, 2);
    h.train(false);
    CHECK(h.tap_names() == std::vector<std::string>{"half1.a", "half1.b", "half2.a"});
    CHECK(h.out_features() == 7);
    const auto a = ssl::testing::random_tensor({2, 3, 4, 4}, 1), b = ssl::testing::random_tensor({2, 2, 2, 2}, 2),
               c = ssl::testing::random_tensor({2, 2, 4, 4}, 3), c2 = ssl::testing::random_tensor({2, 2, 4, 4}, 4);
    const auto z = h.forward_taps({a, b, c}).out, z2 = h.forward_taps({a, b, c2}).out;
    REQUIRE(z.shape() == shape_t{8, 7});
    const auto z1 = h.first().forward_taps({a, b}).out, zs = h.second().forward_taps({c}).out;
    for (std::size_t r = 0; r < 8; ++r) {
        for (std::size_t k = 0; k < 4; ++k) CHECK(z.at(r, k) == z1.at(r, k));
        for (std::size_t k = 0; k < 4; ++k) CHECK(z2.at(r, k) == z.at(r, k));  // half 2's map changed: head 1 unmoved
        for (std::size_t k = 0; k < 3; ++k) CHECK(z.at(r, 4 + k) == zs.at(r, k));
    }
    CHECK_THROWS_AS(h.forward_taps({a, b}), ssl::shape_error);
    CHECK_THROWS_AS(h.forward(a), ssl::value_error);
    auto bad = head_config();
    bad.second.grid = 4;
    CHECK_THROWS_WITH_AS(ssl::head::split_hypercolumns<double>(bad, 0, 0), doctest::Contains("grids differ"),
                         ssl::value_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("split_hypercolumns gradcheck: every tap and parameter of both heads") {
        ssl::head::split_hypercolumns<double> h(head_config(), 0, 4);
        h.train(true);
        std::vector<tensor<double>> taps{ssl::testing::random_tensor({2, 3, 4, 4}, 1),
                                         ssl::testing::random_tensor({2, 2, 3, 3}, 2),
                                         ssl::testing::random_tensor({2, 2, 4, 4}, 3)};
        const auto first = h.forward_taps(taps);
        const auto R = ssl::testing::random_tensor(first.out.shape(), 9);
        auto loss = [&] {
            const auto z = h.forward_taps(taps).out;
            double l = 0;
            for (std::size_t k = 0; k < z.numel(); ++k) l += R[k] * z[k];
            return l;
        };
        ssl::zero_grad(h);
        const auto d = h.backward_taps(first.cache, R);
        REQUIRE(d.size() == 3);
        ssl::testing::gradcheck_report rep;
        for (std::size_t i = 0; i < 3; ++i)
            ssl::testing::check_entries(rep, "tap " + std::to_string(i), taps[i].data(), d[i].data(), taps[i].numel(),
                                        loss, {});
        h.for_each_parameter(
            [&](const std::string& n, ssl::parameter<double>& p) {
                tensor<double> g = p.grad.clone();
                ssl::testing::check_entries(rep, n, p.value.data(), g.data(), p.value.numel(), loss, {});
            },
            "head");
        CHECK_MESSAGE(rep.ok, rep.str());
        CHECK(rep.checked > 150);
    }
    TEST_CASE("split_brain_ce gradcheck: d loss / d logits of both parts") {
        ssl::loss::split_brain_ce ce({.ab_bins = 5, .l_bins = 4});
        tensor<double> z = ssl::testing::random_tensor({6, 9}, 3, -2.0, 2.0);
        tensor<double> y({6, 2});
        for (std::size_t r = 0; r < 6; ++r) y[r * 2] = double(r % 5), y[r * 2 + 1] = double((r * 3) % 4);
        const auto g = ce(z, y).grads[0].clone();
        ssl::testing::gradcheck_report rep;
        ssl::testing::check_entries(rep, "logits", z.data(), g.data(), z.numel(), [&] { return ce(z, y).value; }, {});
        CHECK_MESSAGE(rep.ok, rep.str());
        CHECK(rep.checked == 54);
    }
}

using M = ssl::split_brain<ssl::convnet<float>>;

M::config small_config(std::size_t hidden = 16) {
    return ssl::split_brain_config<ssl::convnet<float>>({.in_channels = 1, .width = 8, .seed = 1},
                                                         {.size = 32, .grid = 4, .hidden = hidden, .dropout = 0.2});
}

TEST_CASE("split_brain_config: the Lab split, prefixed taps with measured channels, 261 + 100 classes; JSON round trip") {
    const auto c = small_config();
    CHECK(c.backbone.backbone.in_channels == 3);
    CHECK(c.backbone.groups == std::vector<std::size_t>{1, 2});
    CHECK(c.head.first.taps.front() == "half1.features.2");
    CHECK(c.head.second.taps.back() == "half2.features.16");
    CHECK(c.head.first.tap_channels.size() == c.head.first.taps.size());
    CHECK(c.head.first.outputs == 261);
    CHECK(c.head.second.outputs == 100);
    CHECK(c.loss.ab_bins == 261);
    CHECK(c.loss.l_bins == 100);
    M m(c);
    CHECK(m.backbone().output_dim() == 2 * ssl::convnet<float>({.in_channels = 1, .width = 4}).output_dim());
    const auto j = ssl::io::config_to_json(c);
    const auto back = ssl::io::config_from_json<M::config>(j);
    CHECK(ssl::io::config_to_json(back) == j);
    CHECK(j["backbone"]["groups"] == nlohmann::json::array({1, 2}));
}

TEST_CASE("split_brain: a change in the ab channels cannot change half 1's prediction (nor L half 2's)") {
    M m(small_config());
    m.train(false);
    const auto& v = m.augmentation();
    const auto d = striped(4, 7);
    std::vector<std::size_t> idx{0, 1, 2, 3};
    const auto x = v.eval_transform(d.batch(std::span<const std::size_t>(idx.data(), 4)));
    tensor<float> x2 = x.clone(), x3 = x.clone();
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t q = 0; q < 32 * 32; ++q) {
            x2[(i * 3 + 1) * 1024 + q] = -x2[(i * 3 + 1) * 1024 + q] + 0.2f;  // other a and b
            x2[(i * 3 + 2) * 1024 + q] = 0.5f * x2[(i * 3 + 2) * 1024 + q];
            x3[(i * 3) * 1024 + q] = 0.1f - x3[(i * 3) * 1024 + q];  // other L
        }
    auto predict = [&](const tensor<float>& in) {
        auto t = m.backbone().forward_taps(in, m.head().tap_names());
        return m.head().forward_taps(t.taps, {}, 4).out;
    };
    const auto z = predict(x), z2 = predict(x2), z3 = predict(x3);
    const std::size_t qab = 261, W = 361;
    double d1_ab = 0, d1_l = 0, d2_ab = 0, d2_l = 0;
    for (std::size_t r = 0; r < z.dim(0); ++r)
        for (std::size_t k = 0; k < W; ++k) {
            const double e2 = std::abs(z[r * W + k] - z2[r * W + k]), e3 = std::abs(z[r * W + k] - z3[r * W + k]);
            (k < qab ? d1_ab : d1_l) += e2;
            (k < qab ? d2_ab : d2_l) += e3;
        }
    CHECK(d1_ab == 0.0);  // ab changed: the ab logits (half 1, from L) are bitwise the same
    CHECK(d1_l > 0.0);    // ... and the L logits (half 2, from ab) moved
    CHECK(d2_l == 0.0);   // L changed: the L logits are bitwise the same
    CHECK(d2_ab > 0.0);
    // in training mode (batch norm on batch statistics) too, and the features
    m.train(true);
    auto f = m.backbone().forward(x).out, f2 = m.backbone().forward(x2).out;
    const std::size_t D = m.backbone().output_dim(), D1 = m.backbone().half1().output_dim();
    double moved1 = 0, moved2 = 0;
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t k = 0; k < D; ++k) (k < D1 ? moved1 : moved2) += std::abs(f[i * D + k] - f2[i * D + k]);
    CHECK(moved1 == 0.0);
    CHECK(moved2 > 0.0);
}

TEST_CASE("split_brain learns: the loss falls through the trainer; half 1 beats the best constant guess on fresh images") {
    const auto train = striped(256, 3);
    M m(small_config(64));
    ssl::trainer_config tc{.epochs = 4, .batch = 32, .lr = 0.05, .seed = 3, .progress = false};
    auto s = ssl::trainer<M>(m, train, tc).fit();
    REQUIRE(s.epoch_loss.size() == 4);
    MESSAGE("split-brain on 256 striped colour images: loss per epoch ", s.epoch_loss[0], " ", s.epoch_loss[1], " ",
            s.epoch_loss[2], " ", s.epoch_loss[3]);
    CHECK(std::isfinite(s.first_loss));
    CHECK(s.epoch_loss.back() < 0.7 * s.epoch_loss.front());
    // on fresh images, half 1's cross entropy (eval mode) is below that of
    // the best constant guess, the batch's class frequencies: it reads colour
    // from the texture of L. Half 2 (L from ab) is at that budget only below
    // the uniform guess, log 100 (it has learned the marginal, 32 steps are
    // too few to beat it).
    const auto fresh = striped(64, 99);
    std::vector<std::size_t> all(64);
    for (std::size_t i = 0; i < 64; ++i) all[i] = i;
    const auto vb = m.augmentation().make_views(fresh.batch(std::span<const std::size_t>(all.data(), 64)), all, 11, 0);
    m.train(false);
    auto taps = m.backbone().forward_taps(vb.views[0], m.head().tap_names());
    const auto trained = m.loss()(m.head().forward_taps(taps.taps, {}, 64).out, vb.soft_targets);
    const std::size_t R = vb.soft_targets.dim(0), W = 361;
    std::vector<double> freq(W, 0.0);
    for (std::size_t r = 0; r < R; ++r) {
        freq[static_cast<std::size_t>(vb.soft_targets[r * 2])] += 1.0 / double(R);
        freq[261 + static_cast<std::size_t>(vb.soft_targets[r * 2 + 1])] += 1.0 / double(R);
    }
    tensor<float> prior({R, W});
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t k = 0; k < W; ++k) prior[r * W + k] = float(std::log(std::max(freq[k], 1e-12)));
    const auto best_constant = m.loss()(prior, vb.soft_targets);
    MESSAGE("held-out CE: ab ", trained.metrics[0].second, " (best constant ", best_constant.metrics[0].second, "), L ",
            trained.metrics[1].second, " (best constant ", best_constant.metrics[1].second, ")");
    CHECK(trained.metrics[0].second < best_constant.metrics[0].second);
    CHECK(trained.metrics[1].second < std::log(100.0));
    // features: both halves, from the full Lab image
    std::vector<std::size_t> idx{0, 1, 2, 3};
    const auto f = m.embed(train.batch(std::span<const std::size_t>(idx.data(), 4)));
    CHECK(f.shape() == ssl::shape_t{4, m.backbone().output_dim()});
    std::vector<std::string> names;
    m.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "");
    CHECK(names.front() == "backbone.half1.features.0.weight");
    CHECK(names.back() == "head.second.fc2.bias");
}

}  // namespace test_split_brain_method
