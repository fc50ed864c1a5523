// Multi-task SSL (multitask.hpp): the task list, the lasso head (gradient
// checks through its taps and alpha), the loss's layout and sums, the views
// (branches, labels, harmonization), and the method: a step per task set, a
// short run that lowers the loss, the config through JSON, colour data with
// colorization.
#include <doctest/doctest.h>

#include <ssl/backbone/any_backbone.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/multitask.hpp>
#include <ssl/testing/gradcheck.hpp>
#include <ssl/trainer.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "nn/reference.hpp"

namespace test_multitask {  // each file in its own namespace: an area builds as one unity translation unit

namespace {
using ssl::tensor;
namespace pretext = ssl::pretext;

const ssl::resnet_options net{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset images(std::size_t n, std::size_t channels = 1) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = channels, .height = 16, .width = 16,
                                 .noise = 0.2, .seed = 1})
        .to_dataset();
}

bool has_metric(const ssl::step_result& r, const std::string& name) {
    for (const auto& [k, v] : r.metrics)
        if (k == name) return std::isfinite(v);
    return false;
}

/// A small head config over two same-shape taps of C channels.
ssl::head::multitask_config small_head(std::vector<std::string> tasks, bool lasso = true, double l1 = 0) {
    ssl::head::multitask_config c;
    c.tasks = std::move(tasks);
    c.taps = {"a", "b"};
    c.channels = 3;
    c.lasso = lasso;
    c.l1 = l1;
    c.jigsaw = {.row = {.out = 4}, .joint = {.hidden = 5, .out = 6, .batch_norm = false}, .copies = 9};
    c.exemplar = {.out = 4};
    return c;
}
}  // namespace

TEST_CASE("multitask tasks: names in slot order, refusals name the problem") {
    CHECK(pretext::parse_tasks({"exemplar", "rotation"}) ==
          std::vector<pretext::task>{pretext::task::rotation, pretext::task::exemplar});
    CHECK(pretext::split_task_list("rotation, jigsaw") == std::vector<std::string>{"rotation", "jigsaw"});
    CHECK_THROWS_WITH_AS(pretext::parse_tasks({"rotation", "rotation"}), doctest::Contains("listed twice"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(pretext::parse_tasks({"context"}), doctest::Contains("rotation, jigsaw, exemplar, colorization"),
                         ssl::value_error);
    CHECK_THROWS_AS(pretext::parse_tasks({}), ssl::value_error);
    CHECK_THROWS_AS(pretext::split_task_list("rotation,,jigsaw"), ssl::value_error);
}

TEST_CASE("multitask: the default lasso taps are the last stage's blocks") {
    const auto c = ssl::multitask_config<ssl::resnet18<float>>(net, {.size = 16});
    CHECK(c.head.taps == std::vector<std::string>{"layer4.0", "layer4.1"});
    CHECK(c.head.channels == ssl::resnet18<float>(net).output_dim());
    CHECK(c.backbone.in_channels == 1);
    CHECK_THROWS_AS(ssl::multitask_config<ssl::resnet18<float>>(net, {.tasks = {"colorization"}, .size = 16}),
                    ssl::value_error);  // colorization on 1 channel
    CHECK_THROWS_AS(ssl::multitask_config<ssl::resnet18<float>>(net, {.size = 16, .lasso_taps = {"layer3.1", "layer4.1"}}),
                    ssl::value_error);  // different shapes
    // taps that end before the trunk's last map would leave layer4 untrained
    CHECK_THROWS_WITH_AS(
        ssl::multitask_config<ssl::resnet18<float>>(net, {.size = 16, .lasso_taps = {"layer3.0", "layer3.1"}}),
        doctest::Contains("is not the trunk's last map ('layer4"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::multitask_config<ssl::resnet18<float>>(net, {.size = 16, .lasso_taps = {"avgpool"}}),
                         doctest::Contains("4-d maps"), ssl::value_error);
}

TEST_CASE("multitask: default lasso taps on other architectures end at the trunk's last map, and a step runs") {
    const auto d = images(8);
    const std::vector<std::size_t> ids{0, 1, 2, 3, 4, 5, 6, 7};
    for (const char* arch : {"convnet", "resnet18v2"}) {
        const ssl::any_backbone_options o{.arch = arch, .in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};
        const auto c = ssl::multitask_config<ssl::any_backbone<float>>(o, {.tasks = {"rotation", "exemplar"}, .size = 16});
        MESSAGE(std::string(arch), " lasso taps: ", c.head.taps.front(), " .. ", c.head.taps.back(), " (", c.head.taps.size(), ")");
        CHECK(!c.head.taps.empty());
        ssl::multitask<ssl::any_backbone<float>> m(c);
        const auto r = m.train_step(d.batch(ids), ids, {.seed = 1});
        CHECK_MESSAGE(std::isfinite(r.loss), arch);
    }
}

TEST_SUITE("gradcheck") {
    /// The head of one task as a layer of one tap (the other fixed).
    struct on_tap {
        using value_type = double;
        using cache_type = ssl::head::multitask<double>::cache_type;
        ssl::head::multitask<double>& h;
        tensor<double> other;
        std::size_t which;
        ssl::view_spec spec;
        std::size_t n;
        auto forward(const tensor<double>& x) {
            return which == 0 ? h.forward_taps({x, other}, spec, n) : h.forward_taps({other, x}, spec, n);
        }
        tensor<double> backward(const cache_type& c, const tensor<double>& dy) {
            auto d = h.backward_taps(c, dy);
            REQUIRE(d.size() == 2);
            return d[which].defined() ? d[which] : tensor<double>::zeros(c.map_shape);
        }
        template <class F>
        void for_each_parameter(F&& f, const std::string& p) {
            h.for_each_parameter(f, p);
        }
    };

    TEST_CASE("multitask head gradcheck: each task through both lasso taps, alpha and every parameter") {
        for (bool lasso : {true, false}) {
            ssl::head::multitask<double> h(small_head({"rotation", "jigsaw", "exemplar"}, lasso), 3, 7);
            const std::size_t n = 2;
            struct c {
                pretext::task t;
                std::size_t copies;
            };
            for (auto [t, copies] : {c{pretext::task::rotation, 4}, c{pretext::task::jigsaw, 9},
                                     c{pretext::task::exemplar, 3}}) {
                const ssl::view_spec s{.copies = copies, .branch = pretext::slot(t)};
                for (std::size_t which : {0, 1}) {
                    const auto x = ref::random<double>({copies * n, 3, 2, 2}, 10 + which);
                    const auto o = ref::random<double>({copies * n, 3, 2, 2}, 20 + which);
                    on_tap a{h, o, which, s, n};
                    auto r = ssl::testing::gradcheck(a, x);
                    CHECK_MESSAGE(r.ok, pretext::name(t), " tap ", which, " lasso ", lasso, ": ", r.str());
                }
            }
        }
    }
}

TEST_CASE("multitask head: alpha starts at 1/M, the L1 subgradient is added, lasso off reads the last tap") {
    ssl::head::multitask<double> h(small_head({"rotation", "exemplar"}, true, 0.25), 3, 7);
    CHECK(h.alphas(pretext::task::rotation) == std::vector<double>{0.5, 0.5});
    CHECK(h.alphas(pretext::task::jigsaw).empty());
    CHECK(h.penalty() == doctest::Approx(0.25 * 2.0));
    CHECK(h.summary() == "lasso alpha rotation: a 0.5 b 0.5; exemplar: a 0.5 b 0.5");
    const auto x = ref::random<double>({8, 3, 2, 2}, 1), y = ref::random<double>({8, 3, 2, 2}, 2);
    const ssl::view_spec s{.copies = 4, .branch = 0};
    auto fwd = h.forward_taps({x, y}, s, 2);
    const auto dy = ref::random<double>(fwd.out.shape(), 3);
    ssl::zero_grad(h);
    h.backward_taps(fwd.cache, dy);
    std::vector<double> with;
    h.for_each_parameter([&](const std::string& name, auto& p) { if (name == "lasso.alpha") for (double g : p.grad) with.push_back(g); }, "");
    ssl::head::multitask<double> h0(small_head({"rotation", "exemplar"}, true, 0.0), 3, 7);
    auto f0 = h0.forward_taps({x, y}, s, 2);
    ssl::zero_grad(h0);
    h0.backward_taps(f0.cache, dy);
    std::vector<double> without;
    h0.for_each_parameter([&](const std::string& name, auto& p) { if (name == "lasso.alpha") for (double g : p.grad) without.push_back(g); }, "");
    REQUIRE(with.size() == 4);
    CHECK(with[0] == doctest::Approx(without[0] + 0.25));  // rotation's row, alpha > 0
    CHECK(with[1] == doctest::Approx(without[1] + 0.25));
    CHECK(with[2] == 0.0);  // exemplar's row: no view of it in this backward
    // the subgradient's other branches: -l1 for a negative alpha, 0 at 0
    h.for_each_parameter([&](const std::string& name, auto& p) {
        if (name == "lasso.alpha") {
            p.value[0] = -0.5;
            p.value[1] = 0.0;
        }
    }, "");
    auto fn = h.forward_taps({x, y}, s, 2);
    ssl::zero_grad(h);
    h.backward_taps(fn.cache, dy);
    h0.for_each_parameter([&](const std::string& name, auto& p) {
        if (name == "lasso.alpha") {
            p.value[0] = -0.5;
            p.value[1] = 0.0;
        }
    }, "");
    auto f0n = h0.forward_taps({x, y}, s, 2);
    ssl::zero_grad(h0);
    h0.backward_taps(f0n.cache, dy);
    std::vector<double> gn, g0n;
    h.for_each_parameter([&](const std::string& name, auto& p) { if (name == "lasso.alpha") for (double g : p.grad) gn.push_back(g); }, "");
    h0.for_each_parameter([&](const std::string& name, auto& p) { if (name == "lasso.alpha") for (double g : p.grad) g0n.push_back(g); }, "");
    CHECK(gn[0] == doctest::Approx(g0n[0] - 0.25));
    CHECK(gn[1] == doctest::Approx(g0n[1]));
    CHECK_THROWS_AS(ssl::head::multitask<double>(small_head({"rotation"}, true, -1.0), 3, 7), ssl::value_error);
    // colorization alone reads its own taps: no alpha
    auto col = small_head({"colorization"});
    col.colorization = {.taps = {"c"}, .tap_channels = {3}, .grid = 2, .hidden = 4, .dropout = 0, .outputs = 4};
    ssl::head::multitask<double> hc(col, 3, 7);
    CHECK(hc.tap_names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(hc.summary() == "no task reads the lasso (colorization reads its hypercolumn taps)");
    auto fc = hc.forward_taps({x, y, ref::random<double>({2, 3, 4, 4}, 5)}, {.branch = 3}, 2);
    CHECK(fc.out.shape() == ssl::shape_t{8, 4});
    const auto dc = hc.backward_taps(fc.cache, ref::random<double>({8, 4}, 6));
    CHECK_FALSE(dc[0].defined());
    CHECK(dc[2].defined());
    // lasso off: the gradient reaches the last tap only
    ssl::head::multitask<double> off(small_head({"rotation"}, false), 3, 7);
    auto fo = off.forward_taps({x, y}, s, 2);
    const auto d = off.backward_taps(fo.cache, ref::random<double>(fo.out.shape(), 3));
    CHECK(off.summary() == "lasso off: every task reads b");
    CHECK_FALSE(d[0].defined());
    CHECK(d[1].defined());
    // a view of a task the head does not have
    CHECK_THROWS_WITH_AS(h.forward_taps({x, y}, {.copies = 4, .branch = 1}, 2), doctest::Contains("'jigsaw'"),
                         ssl::value_error);
    CHECK_THROWS_AS(h.forward_taps({x, ref::random<double>({8, 3, 1, 1}, 2)}, s, 2), ssl::shape_error);
}

TEST_CASE("multitask loss: the weighted sum of each task's loss, labels taken per view in order") {
    const std::size_t n = 3;
    ssl::view_batch<float> vb;
    vb.views = {tensor<float>::zeros({4 * n, 1, 2, 2}), tensor<float>::zeros({9 * n, 1, 2, 2}),
                tensor<float>::zeros({2 * n, 1, 2, 2})};
    vb.specs = {{.copies = 4, .branch = 0}, {.copies = 9, .branch = 1}, {.copies = 2, .branch = 2}};
    vb.ids = {0, 1, 2};
    for (std::size_t k = 0; k < 4 * n; ++k) vb.labels.push_back(static_cast<std::int64_t>(k / n));
    for (std::size_t i = 0; i < n; ++i) vb.labels.push_back(static_cast<std::int64_t>(i + 1));
    const std::vector<tensor<float>> online{ref::random<float>({4 * n, 4}, 1), ref::random<float>({n, 6}, 2),
                                            ref::random<float>({2 * n, 5}, 3)};
    const ssl::loss::multitask_loss plain, weighted(ssl::loss::multitask_loss_config{.rotation_weight = 2, .jigsaw_weight = 0.5, .exemplar_weight = 3});
    const auto a = plain.compute(online, {}, vb), b = weighted.compute(online, {}, vb);
    const ssl::loss::cross_entropy<float> ce;
    const std::span<const std::int64_t> all(vb.labels);
    const auto rot = ce(online[0], all.subspan(0, 4 * n)), jig = ce(online[1], all.subspan(4 * n, n));
    const std::vector<std::int64_t> groups{0, 1, 2, 0, 1, 2};
    const auto tri = ssl::loss::batch_hard_triplet(online[2], groups);
    CHECK(a.value == doctest::Approx(rot.value + jig.value + tri.value));
    CHECK(b.value == doctest::Approx(2 * rot.value + 0.5 * jig.value + 3 * tri.value));
    CHECK(ref::max_abs_diff(a.grads[0], rot.grad) == 0.0);
    CHECK(ref::max_abs_diff(a.grads[1], jig.grad) == 0.0);
    CHECK(ref::max_abs_diff(a.grads[2], tri.grad) == 0.0);
    CHECK(b.grads[1][0] == doctest::Approx(0.5 * jig.grad[0]));
    // layouts that do not add up
    auto extra = vb;
    extra.labels.push_back(0);
    CHECK_THROWS_WITH_AS(plain.compute(online, {}, extra), doctest::Contains("left over"), ssl::shape_error);
    auto missing = vb;
    missing.labels.resize(4 * n + 1);
    CHECK_THROWS_WITH_AS(plain.compute(online, {}, missing), doctest::Contains("labels are left"), ssl::shape_error);
    auto twice = vb;
    twice.specs[1].branch = 0;
    CHECK_THROWS_WITH_AS(plain.compute(online, {}, twice), doctest::Contains("two views of task 'rotation'"),
                         ssl::value_error);
    CHECK_THROWS_AS(ssl::loss::multitask_loss(ssl::loss::multitask_loss_config{.jigsaw_weight = -1}), ssl::value_error);
}

TEST_CASE("multitask views: one view per task, its branch and its labels; colour with colorization is harmonized") {
    const auto d = images(6);
    const auto c = ssl::multitask_config<ssl::resnet18<float>>(net, {.size = 16});
    const ssl::augment::multitask_views a(c.augment);
    const std::vector<std::size_t> ids{0, 1, 2, 3, 4, 5};
    const auto vb = a.make_views(d.batch(ids), ids, 5, 0);
    REQUIRE(vb.views.size() == 3);
    CHECK(vb.specs[0].branch == 0);
    CHECK(vb.specs[0].copies == 4);
    CHECK(vb.specs[1].branch == 1);
    CHECK(vb.specs[1].copies == 9);
    CHECK(vb.specs[2].branch == 2);
    CHECK(vb.specs[2].copies == 4);
    REQUIRE(vb.labels.size() == 4 * 6 + 6);
    for (std::size_t k = 0; k < 4 * 6; ++k) CHECK(vb.labels[k] == static_cast<std::int64_t>(k / 6));  // row k N + i: k
    for (std::size_t i = 0; i < 6; ++i) CHECK((vb.labels[24 + i] >= 0 && vb.labels[24 + i] < 100));   // permutations
    const auto again = a.make_views(d.batch(ids), ids, 5, 0);
    for (std::size_t v = 0; v < 3; ++v) CHECK(ref::max_abs_diff(vb.views[v], again.views[v]) == 0.0);
    CHECK(a.eval_transform(d.batch(ids)).shape() == ssl::shape_t{6, 1, 16, 16});

    const auto colour = images(6, 3);
    auto cc = ssl::multitask_config<ssl::resnet18<float>>(net, {.tasks = {"colorization", "rotation"}, .size = 16,
                                                                .channels = 3, .colorization = {.grid = 4, .hidden = 8}});
    CHECK(cc.backbone.in_channels == 1);
    const ssl::augment::multitask_views h(cc.augment);
    CHECK(h.harmonized());
    const auto hv = h.make_views(colour.batch(ids), ids, 5, 0);
    REQUIRE(hv.views.size() == 2);
    CHECK(hv.specs[0].branch == 0);
    CHECK(hv.specs[1].branch == 3);
    for (const auto& v : hv.views) CHECK(v.dim(1) == 1);
    CHECK(hv.soft_targets.defined());
    CHECK(h.eval_transform(colour.batch(ids)).shape() == ssl::shape_t{6, 1, 16, 16});
    // both tasks see lightness under one normalisation: a constant gray image
    // gives the same value in the rotation view and in colorization's
    tensor<float> flat = tensor<float>::zeros({1, 3, 16, 16});
    for (auto& x : flat) x = 0.4f;
    const std::vector<std::size_t> one{0};
    const auto fv = h.make_views(flat, one, 1, 0);
    CHECK(fv.views[0][0] == doctest::Approx(fv.views[1][0]).epsilon(1e-4));
}

TEST_CASE("multitask: a step trains every task; a short run lowers the loss and moves alpha; JSON rebuilds it") {
    const auto d = images(48);
    for (const std::vector<std::string>& tasks : {std::vector<std::string>{"rotation"},
                                                 std::vector<std::string>{"jigsaw", "exemplar"},
                                                 std::vector<std::string>{"rotation", "jigsaw", "exemplar"}}) {
        ssl::multitask<> m(ssl::multitask_config<ssl::resnet18<float>>(net, {.tasks = tasks, .size = 16}));
        const std::vector<std::size_t> ids{0, 1, 2, 3, 4, 5, 6, 7};
        const auto r = m.train_step(d.batch(ids), ids, {.seed = 1});
        CHECK(std::isfinite(r.loss));
        for (const auto& t : tasks) CHECK_MESSAGE(has_metric(r, t + "_loss"), t);
    }
    auto c = ssl::multitask_config<ssl::resnet18<float>>(net, {.size = 16, .l1 = 1e-2});
    ssl::multitask<> m(c);
    ssl::trainer_config tc{.epochs = 3, .batch = 16, .lr = 0.05, .weight_decay = 5e-4, .warmup_epochs = 0, .seed = 3,
                           .progress = false};
    const auto s = ssl::trainer<ssl::multitask<>>(m, d, tc).fit();
    REQUIRE(s.epoch_loss.size() == 3);
    MESSAGE("multitask on 48 synthetic images: loss ", s.epoch_loss.front(), " -> ", s.epoch_loss.back());
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    const auto al = m.head().alphas(pretext::task::rotation);
    REQUIRE(al.size() == 2);
    CHECK((al[0] != 0.5 || al[1] != 0.5));
    const std::vector<std::size_t> ids{0, 1, 2, 3};
    CHECK(m.embed(d.batch(ids)).shape() == ssl::shape_t{4, m.backbone().output_dim()});

    const auto j = ssl::io::config_to_json(c);
    const auto back = ssl::io::config_from_json<ssl::multitask<>::config>(j, "test");
    CHECK(ssl::io::config_to_json(back) == j);
    ssl::multitask<> a(c), b(back);
    const auto ra = a.train_step(d.batch(ids), ids, {.seed = 9}), rb = b.train_step(d.batch(ids), ids, {.seed = 9});
    CHECK(ra.loss == rb.loss);
}

TEST_CASE("multitask on colour images with colorization: the trunk sees lightness, all tasks train") {
    const auto d = images(16, 3);
    auto c = ssl::multitask_config<ssl::resnet18<float>>(
        net, {.tasks = {"rotation", "colorization"}, .size = 16, .channels = 3, .colorization = {.grid = 4, .hidden = 8}});
    ssl::multitask<> m(c);
    const std::vector<std::size_t> ids{0, 1, 2, 3, 4, 5};
    const auto r = m.train_step(d.batch(ids), ids, {.seed = 1});
    CHECK(std::isfinite(r.loss));
    CHECK(has_metric(r, "rotation_loss"));
    CHECK(has_metric(r, "colorization_loss"));
    CHECK(has_metric(r, "colorization_hue_kl"));
    CHECK(m.embed(d.batch(ids)).shape() == ssl::shape_t{6, m.backbone().output_dim()});
    std::size_t grads = 0;
    m.for_each_parameter([&](const std::string& name, auto& p) {
        double s = 0;
        for (float g : p.grad) s += std::abs(g);
        if (name.starts_with("head.colorization.") || name.starts_with("head.rotation.")) grads += s > 0;
    }, "");
    CHECK(grads >= 4);
    double trunk = 0, alpha = 0;
    m.for_each_parameter([&](const std::string& name, auto& p) {
        for (float g : p.grad) (name == "head.lasso.alpha" ? alpha : trunk) += std::abs(g) * name.starts_with("backbone.");
        if (name == "head.lasso.alpha") for (float g : p.grad) alpha += std::abs(g);
    }, "");
    CHECK(trunk > 0);
    CHECK(alpha > 0);
}

}  // namespace test_multitask
