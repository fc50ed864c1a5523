// PIRL (pirl.hpp) end to end: the paper's settings, one step's views, specs
// and heads (view 1 through g), the bank storing f, training on Fashion-MNIST
// through the trainer, and a run stopped by max_steps and resumed equal to an
// uninterrupted one.
#include <doctest/doctest.h>

#include "fashion_mnist_subset.hpp"

#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/pirl.hpp>
#include <ssl/trainer.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace test_pirl_method {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

const ssl::resnet_options small_net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset make_set(std::size_t n, std::uint64_t seed) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                 .seed = seed})
        .to_dataset();
}

template <class M>
std::vector<float> all_parameters(M& m) {
    std::vector<float> v;
    m.for_each_parameter([&](const std::string&, auto& p) { v.insert(v.end(), p.value.begin(), p.value.end()); }, "");
    return v;
}

/// Each epoch's mean of the step metric `name`.
struct epoch_metric : ssl::train::chore {
    explicit epoch_metric(std::string n) : name(std::move(n)) {}
    std::string name;
    std::vector<double> means;
    double sum = 0;
    std::size_t steps = 0;
    void step_end(const ssl::train::step_report& r) override {
        for (const auto& [k, v] : r.metrics)
            if (k == name) sum += v;
        ++steps;
    }
    void epoch_end(const ssl::train::epoch_report&) override {
        means.push_back(sum / static_cast<double>(std::max<std::size_t>(steps, 1)));
        sum = 0;
        steps = 0;
    }
};

double grad_norm(ssl::pirl<>& m, const std::string& prefix) {
    double s = 0;
    m.for_each_parameter([&](const std::string& n, auto& p) {
        if (n.rfind(prefix, 0) == 0)
            for (float g : p.grad) s += double(g) * g;
    }, "");
    return std::sqrt(s);
}

}  // namespace

TEST_CASE("pirl_config: the paper's settings") {
    auto c = ssl::pirl_config(small_net, 28, 1, 60000);
    CHECK(std::get<0>(c.head).out == 128);          // f: linear to 128 + L2
    CHECK(std::get<1>(c.head).row.classes == 128);  // g: per tile linear to 128,
    CHECK(std::get<1>(c.head).copies == 9);         //    9 tiles concatenated,
    CHECK(std::get<1>(c.head).joint.out == 128);    //    linear to 128 + L2
    CHECK(c.loss.lambda == 0.5);
    CHECK(c.loss.temperature == 0.1);  // small images
    CHECK(c.loss.z == ssl::loss::z_estimate::until_filled);
    CHECK(ssl::pirl_config(small_net, 224, 3, 10).loss.temperature == 0.07);
    CHECK(c.target.instances == 60000);
    CHECK(c.target.dim == 128);
    CHECK(c.target.momentum == 0.5);
    CHECK(c.target.negatives == 4096);
    CHECK(ssl::pirl_config(small_net, 28, 1, 512).target.negatives == 128);  // N / 4 on small sets
    CHECK(c.target.seed == small_net.seed);
    CHECK(c.augment.image.size == 28);
    CHECK(c.augment.image.channels == 1);
    CHECK(c.augment.tiles.size == 28);
    CHECK(c.augment.tiles.permutations == 1000);
    auto bad = ssl::pirl_config(small_net, 16, 1, 64);
    bad.augment.tiles.size = 32;  // the tiles' settings must be the image's
    CHECK_THROWS_AS(ssl::pirl<>{bad}, ssl::value_error);
    bad = ssl::pirl_config(small_net, 16, 1, 0);  // the bank needs its size
    bad.augment.tiles.permutations = 24;
    CHECK_THROWS_AS(ssl::pirl<>{bad}, ssl::value_error);
}

TEST_CASE("pirl: one step: the image and its 9 tiles, f on the image, g on the tiles, the bank stores f") {
    auto train = make_set(64, 1);
    auto c = ssl::pirl_config(small_net, 16, 1, train.size());
    c.augment.tiles.permutations = 24;
    ssl::pirl<> m(c);
    CHECK(m.head().out_features() == 128);  // branch 0, the bank's width
    CHECK(m.head().out_features(1) == 128);
    std::vector<std::size_t> ids(8);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = 3 * i + 1;
    const auto images = train.batch(ids);

    // the views and their specs
    const auto vb = m.augmentation().make_views(images, ids, 3, 0);
    REQUIRE(vb.views.size() == 2);
    const std::size_t t = m.augmentation().tiles().tile();
    CHECK(vb.views[0].shape() == ssl::shape_t{8, 1, 16, 16});
    CHECK(vb.views[1].shape() == ssl::shape_t{9 * 8, 1, t, t});
    CHECK(vb.spec(0).copies == 1);
    CHECK(vb.spec(0).branch == 0);
    CHECK(vb.spec(1).copies == 9);
    CHECK(vb.spec(1).branch == 1);
    CHECK(vb.spec(1).grid_rows == 3);
    CHECK(vb.spec(1).grid_cols == 3);
    CHECK(vb.labels.empty());
    // view 0 is one_view's image, the tiles jigsaw_tiles' with their own seed
    const auto alone = m.augmentation().image().make_views(images, ids, 3, 0);
    CHECK(std::equal(vb.views[0].begin(), vb.views[0].end(), alone.views[0].begin()));
    const auto same_seed = m.augmentation().tiles().make_views(images, ids, 3, 0);
    CHECK(!std::equal(vb.views[1].begin(), vb.views[1].end(), same_seed.views[0].begin()));
    // evaluation sees the image
    const auto e = m.augmentation().eval_transform(images);
    const auto e1 = m.augmentation().image().eval_transform(images);
    CHECK(std::equal(e.begin(), e.end(), e1.begin()));

    // the route: view 1 through g (one 128-d row per sample), view 0 through f
    auto feats = m.backbone().forward(vb.views[1]).out;
    auto y1 = ssl::head::forward_view(m.head(), feats, vb.spec(1), 8);
    CHECK(y1.out.shape() == ssl::shape_t{8, 128});
    auto g = m.head().get<1>().forward(feats, vb.spec(1), 8).out;
    CHECK(std::equal(g.begin(), g.end(), y1.out.begin()));
    for (std::size_t i = 0; i < 8; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < 128; ++j) s += double(y1.out.at(i, j)) * y1.out.at(i, j);
        CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
    }
    std::vector<std::string> names;
    m.head().for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "head");
    CHECK(names == std::vector<std::string>{"head.0.0.weight", "head.0.0.bias", "head.1.row.weight", "head.1.row.bias",
                                            "head.1.joint.0.weight", "head.1.joint.0.bias"});

    // a step: both views reach their heads and the backbone
    ssl::zero_grad(m);
    const ssl::step_context ctx{3, 0, 0, 4};
    auto r = m.train_step(images, ids, ctx);
    CHECK(std::isfinite(r.loss));
    std::vector<std::string> metrics;
    for (const auto& [n, v] : r.metrics) metrics.push_back(n);
    CHECK(metrics == std::vector<std::string>{"nce_f", "nce_g", "pos_sim", "pos_sim_g"});
    CHECK(r.loss == doctest::Approx(0.5 * r.metrics[0].second + 0.5 * r.metrics[1].second).epsilon(1e-9));
    CHECK(grad_norm(m, "head.0.") > 0);
    CHECK(grad_norm(m, "head.1.row.") > 0);
    CHECK(grad_norm(m, "head.1.joint.") > 0);
    CHECK(grad_norm(m, "backbone.") > 0);
    CHECK(m.loss().z() > 0);

    // after the step the bank holds normalize(0.5 v + 0.5 f(v_I)) for the batch
    REQUIRE(r.targets.features.shape() == ssl::shape_t{8, 128});
    auto want = m.target().bank().clone();
    ssl::target::update_bank(want, ids, r.targets.features, 0.5);
    m.after_step(std::move(r), ctx);
    const auto& bank = m.target().bank();
    CHECK(std::equal(bank.begin(), bank.end(), want.begin()));
    CHECK(m.target().step() == 1);
    bool has_z = false, has_bank = false;
    m.for_each_buffer([&](const std::string& n, auto&) {
        has_z |= n == "loss.z";
        has_bank |= n == "target.bank";
    }, "");
    CHECK(has_z);
    CHECK(has_bank);
}

TEST_CASE("pirl trains on real images: the loss falls through the trainer, the bank follows f") {
    // 512 Fashion-MNIST images (the Debian package scripts/setup.sh installs).
    const auto loaded = ssl_test::fashion_mnist_subset(512);
    if (!loaded) return;
    std::vector<std::size_t> idx(512);
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    const auto& train = *loaded;
    auto c = ssl::pirl_config(small_net, 28, 1, train.size());
    c.augment.tiles.permutations = 100;
    ssl::pirl<> m(c);
    const auto before = m.target().bank().clone();
    ssl::trainer_config tc{.epochs = 3, .batch = 64, .lr = 0.03, .weight_decay = 1e-4, .seed = 3, .progress = false};
    ssl::trainer<ssl::pirl<>> t(m, train, tc);
    auto& sim_g = t.chores().add<epoch_metric>("pos_sim_g");
    auto s = t.fit();
    REQUIRE(s.epoch_loss.size() == 3);
    REQUIRE(sim_g.means.size() == 3);
    MESSAGE("pirl on 512 Fashion-MNIST images: loss per epoch ", s.epoch_loss[0], " ", s.epoch_loss[1], " ",
            s.epoch_loss[2], ", mean m_I . g(v_It) per epoch ", sim_g.means[0], " ", sim_g.means[1], " ",
            sim_g.means[2], ", Z ", m.loss().z());
    CHECK(s.epoch_loss.back() < s.epoch_loss.front() - 1.0);
    // the tiles' embedding comes to its image's memory (the invariance)
    CHECK(sim_g.means.back() > sim_g.means.front() + 0.2);
    CHECK(m.target().filled());
    CHECK(m.target().step() == 3 * 8);
    const auto& bank = m.target().bank();
    std::size_t moved = 0;
    for (std::size_t i = 0; i < train.size(); ++i) {
        bool ch = false;
        for (std::size_t j = 0; j < 128; ++j) ch |= bank.at(i, j) != before.at(i, j);
        moved += ch;
    }
    CHECK(moved == train.size());
    // features come from whole images at evaluation
    const auto f = m.embed(train.batch(std::span<const std::size_t>(idx.data(), 8)));
    CHECK(f.shape() == ssl::shape_t{8, m.backbone().output_dim()});
}

TEST_CASE("pirl: a run stopped by max_steps and resumed equals an uninterrupted one, bank and Z included") {
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_pirl_resume_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = make_set(128, 1);
    auto c = ssl::pirl_config(small_net, 16, 1, train.size());
    c.augment.tiles.permutations = 24;
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.03, .seed = 3, .progress = false};
    ssl::pirl<> full(c);
    ssl::trainer<ssl::pirl<>>(full, train, tc).fit();

    tc.out_dir = dir;
    tc.max_steps = 5;  // stops after the first step of epoch 2 (4 steps per epoch)
    ssl::pirl<> part(c);
    auto s = ssl::trainer<ssl::pirl<>>(part, train, tc).fit();
    CHECK(s.steps == 5);

    ssl::pirl<> resumed(c);
    tc.max_steps = 0;
    tc.resume = true;
    auto s2 = ssl::trainer<ssl::pirl<>>(resumed, train, tc).fit();
    CHECK(s2.steps == 3);
    CHECK(resumed.loss().z() == full.loss().z());
    CHECK(resumed.target().step() == full.target().step());
    CHECK(all_parameters(resumed) == all_parameters(full));
    const auto& a = full.target().bank();
    const auto& b = resumed.target().bank();
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
    std::filesystem::remove_all(dir);
}

}  // namespace test_pirl_method
