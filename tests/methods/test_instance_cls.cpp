// End-to-end: the one-million-way instance classifier (here a 256-way one)
// trains on synthetic images through the trainer; the loss falls and kNN on
// the learned features beats chance. The raw-feature initialisation lowers
// the initial loss, and an interrupted run resumes bit for bit.
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/trainer.hpp>

#include <filesystem>
#include <numeric>
#include <unistd.h>

namespace test_instance_cls {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

const ssl::resnet_options icls_net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset icls_set(std::size_t n, std::uint64_t seed) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                 .seed = seed})
        .to_dataset();
}

template <class M = ssl::instance_cls<>>
typename M::config icls_config(std::size_t n) {
    auto c = ssl::instance_cls_config<ssl::resnet18<float>, M>(icls_net, 16, 1, n);
    c.head = {128, 32, true};
    c.loss.shard_rows = 100;  // 256 instances in 3 shards
    return c;
}

std::vector<float> all_parameters(ssl::instance_cls<>& m) {
    std::vector<float> v;
    m.for_each_parameter([&](const std::string&, auto& p) { v.insert(v.end(), p.value.begin(), p.value.end()); }, "");
    return v;
}

}  // namespace

TEST_CASE("instance_cls trains on synthetic images: the loss falls, kNN beats chance") {
    auto train = icls_set(256, 1), test = icls_set(128, 2);
    ssl::instance_cls<> m(icls_config(256));
    REQUIRE(m.loss().shard_count() == 3);
    ssl::trainer_config tc{.epochs = 4, .batch = 32, .lr = 0.1, .weight_decay = 1e-4, .warmup_epochs = 0.5,
                           .seed = 3, .progress = false};
    ssl::trainer<ssl::instance_cls<>> t(m, train, tc);
    auto s = t.fit();
    CHECK(s.steps == 32);
    REQUIRE(s.epoch_loss.size() == 4);
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    CHECK(m.loss().initialised());
    std::vector<std::size_t> a(train.size()), b(test.size());
    std::iota(a.begin(), a.end(), 0);
    std::iota(b.begin(), b.end(), 0);
    const double acc =
        ssl::eval::knn_evaluate(m.embed(train.batch(a)), train.labels, m.embed(test.batch(b)), test.labels, {.k = 20})
            .top1;
    MESSAGE("instance_cls: loss ", s.epoch_loss.front(), " -> ", s.epoch_loss.back(), " (chance: log 256 = ",
            std::log(256.0), "), kNN top-1 ", acc);
    CHECK(acc > 0.5);  // 4 classes: chance is 0.25
}

TEST_CASE("instance_cls: the raw-feature initialisation starts from a lower loss than random rows") {
    auto train = icls_set(256, 1);
    auto with = icls_config(256), without = icls_config(256);
    without.loss.raw_feature_init = false;
    ssl::instance_cls<> a(with), b(without);
    a.begin_epoch(train, 0, 0);
    b.begin_epoch(train, 0, 0);
    std::vector<std::size_t> ids(32);
    std::iota(ids.begin(), ids.end(), 100);
    const ssl::step_context ctx{.seed = 1, .epoch = 0, .step = 0, .total_steps = 1};
    const auto ra = a.train_step(train.batch(ids), ids, ctx), rb = b.train_step(train.batch(ids), ids, ctx);
    REQUIRE(ra.metrics.size() == 1);
    REQUIRE(rb.metrics.size() == 1);
    MESSAGE("first step: raw-feature init loss ", ra.loss, ", instance top-1 ", ra.metrics[0].second,
            "%; random rows loss ", rb.loss, ", instance top-1 ", rb.metrics[0].second, "%");
    CHECK(ra.loss < rb.loss - 0.2);
}

TEST_CASE("instance_cls: a run stopped after one epoch and resumed equals an uninterrupted one; two views train") {
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_icls_resume_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = icls_set(128, 1);
    auto c = icls_config(128);
    c.head = {64, 16, true};
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.05, .seed = 3, .out_dir = dir / "full", .progress = false};
    ssl::instance_cls<> full(c);
    ssl::trainer<ssl::instance_cls<>>(full, train, tc).fit();
    auto tc1 = tc;
    tc1.out_dir = dir / "part";
    tc1.max_steps = 4;  // one epoch
    ssl::instance_cls<> part(c);
    ssl::trainer<ssl::instance_cls<>>(part, train, tc1).fit();
    ssl::instance_cls<> resumed(c);
    auto tc2 = tc1;
    tc2.max_steps = 0;
    tc2.resume = true;
    ssl::trainer<ssl::instance_cls<>>(resumed, train, tc2).fit();
    CHECK(all_parameters(resumed) == all_parameters(full));
    std::filesystem::remove_all(dir);

    using two_t = ssl::instance_cls_two_views<>;
    two_t two(icls_config<two_t>(128));
    two.begin_epoch(train, 0, 0);
    std::vector<std::size_t> ids(16);
    std::iota(ids.begin(), ids.end(), 0);
    auto r = two.train_step(train.batch(ids), ids, {.seed = 1});
    CHECK(std::isfinite(r.loss));
    REQUIRE(r.metrics.size() == 1);
    CHECK(r.metrics[0].first == "inst_top1");
}

}  // namespace test_instance_cls
