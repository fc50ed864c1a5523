// End-to-end: DeepCluster, SeLa and DeeperCluster train on synthetic data
// through the trainer: the loss falls and kNN on the learned features beats
// chance; a run interrupted in the middle of an epoch and resumed from its
// checkpoint ends with exactly the weights of an uninterrupted one (the
// pseudo-labels, the head re-initialisation and the sampler order are all
// restored or recomputed identically).
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/deepcluster.hpp>
#include <ssl/deepercluster.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/sela.hpp>
#include <ssl/trainer.hpp>

#include "sigint_at.hpp"

#include <csignal>
#include <filesystem>
#include <unistd.h>

namespace test_deepcluster {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

const ssl::resnet_options small_net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset make_set(std::size_t n, std::uint64_t seed) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                 .seed = seed})
        .to_dataset();
}

template <class M>
double knn_top1(M& m, const ssl::data::image_dataset& train, const ssl::data::image_dataset& test) {
    std::vector<std::size_t> a(train.size()), b(test.size());
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = i;
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = i;
    auto ftr = m.embed(train.batch(a));
    auto fte = m.embed(test.batch(b));
    return ssl::eval::knn_evaluate(ftr, train.labels, fte, test.labels, {.k = 20}).top1;
}

template <class M>
void check_learns(M& m, const std::string& name, double lr, std::size_t epochs) {
    CAPTURE(name);
    auto train = make_set(256, 1), test = make_set(128, 2);
    ssl::trainer_config tc{.epochs = epochs, .batch = 32, .lr = lr, .weight_decay = 1e-4, .warmup_epochs = 0.5,
                           .seed = 3, .progress = false};
    ssl::trainer<M> t(m, train, tc);
    auto s = t.fit();
    CHECK(s.steps == epochs * 8);
    REQUIRE(s.epoch_loss.size() == epochs);
    // DeepCluster and DeeperCluster re-initialise the classifier at every
    // reassignment, so each such epoch starts at about log(classes): the loss
    // must fall below the first step's, and the last epoch below the first.
    CHECK(s.epoch_loss.back() < s.first_loss);
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    const double acc = knn_top1(m, train, test);
    MESSAGE(name, ": loss ", s.first_loss, " (first step), epochs ", s.epoch_loss.front(), " -> ", s.epoch_loss.back(),
            ", kNN top-1 ", acc);
    CHECK(acc > 0.5);  // 4 classes: chance is 0.25
}

/// Runs `epochs` epochs in one go, and again interrupted by Ctrl-C just after
/// the first step of epoch 2 and resumed: the weights must be equal.
template <class M>
void check_resume(const typename M::config& c, const std::string& name, double lr) {
    CAPTURE(name);
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_" + name + "_resume_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = make_set(128, 1);
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = lr, .seed = 3, .progress = false};
    M full(c);
    ssl::trainer<M>(full, train, tc).fit();

    tc.out_dir = dir;
    M part(c);
    ssl::trainer<M> t(part, train, tc);
    t.chores().template add<ssl_test::sigint_at>(5);  // Ctrl-C during the first step of epoch 2
    auto s = t.fit();
    REQUIRE(s.interrupted);
    CHECK(s.steps == 5);  // 4 steps of epoch 1, 1 of epoch 2
    M resumed(c);
    auto tc2 = tc;
    tc2.resume = true;
    auto s2 = ssl::trainer<M>(resumed, train, tc2).fit();
    CHECK(s2.steps == 3);
    std::vector<float> a, b;
    full.for_each_parameter([&](const std::string&, auto& p) { a.insert(a.end(), p.value.begin(), p.value.end()); }, "");
    resumed.for_each_parameter([&](const std::string&, auto& p) { b.insert(b.end(), p.value.begin(), p.value.end()); },
                               "");
    CHECK(a == b);
    std::filesystem::remove_all(dir);
}

ssl::deepcluster<>::config dc_config(std::size_t n) {
    auto c = ssl::deepcluster_config(small_net, 16, 1, n);
    c.head = {8};
    return c;
}
ssl::sela<>::config sela_small(std::size_t n) {
    auto c = ssl::sela_config(small_net, 16, 1, n);
    c.head = {.heads = 2, .classes = 8};
    c.target.updates = 6;
    return c;
}
ssl::deepercluster<>::config deeper_small(std::size_t n) {
    auto c = ssl::deepercluster_config(small_net, 16, 1, n);
    c.head = {.super_classes = 8, .sub_classes = 4};  // m = 2
    c.target.reassign_every = 2;
    return c;
}

}  // namespace

TEST_CASE("deepcluster: the paper's defaults scaled to the data set") {
    CHECK(ssl::deepcluster_clusters(60000) == 469);
    CHECK(ssl::deepcluster_clusters(1281167) == 1000);
    CHECK(ssl::deepcluster_clusters(300) == 10);
    auto c = ssl::deepcluster_config(small_net, 28, 1, 60000);
    CHECK(c.head.classes == 469);
    CHECK(c.target.instances == 60000);
    CHECK(c.target.features.pca_dim == 256);
    auto s = ssl::sela_config(small_net, 28, 1, 60000);
    CHECK(s.head.heads == 10);
    CHECK(s.head.classes == 128);
    CHECK(s.target.lambda == 25);
    CHECK(s.target.updates == 5);
    auto d = ssl::deepercluster_config(small_net, 28, 1, 60000);
    CHECK(d.head.super_classes == 16);
    CHECK(d.head.sub_classes == 117);
    CHECK(d.target.reassign_every == 3);
}

TEST_CASE("deepcluster trains on synthetic images") {
    ssl::deepcluster<> m(dc_config(256));
    check_learns(m, "deepcluster", 0.1, 4);
    REQUIRE(m.target().last_reassignment().has_value());
    CHECK(m.target().last_reassignment()->epoch == 3);
    CHECK(m.target().last_reassignment()->nmi_prev.has_value());
}

TEST_CASE("sela trains on synthetic images") {
    ssl::sela<> m(sela_small(256));
    check_learns(m, "sela", 0.05, 4);
    CHECK(m.target().updates_done() == ssl::target::sinkhorn_schedule(6, 32).size());  // 0, 3, 8, 14, 22
}

TEST_CASE("deepercluster trains on synthetic images") {
    ssl::deepercluster<> m(deeper_small(256));
    check_learns(m, "deepercluster", 0.05, 4);
}

TEST_CASE("deepcluster, sela, deepercluster: a run resumed mid-epoch equals an uninterrupted one") {
    check_resume<ssl::deepcluster<>>(dc_config(128), "deepcluster", 0.05);
    auto s = sela_small(128);
    s.target.updates = 8;  // 8 steps: updates at steps 0, 1, 2, 3, 4 and 6 (one in the middle of epoch 2)
    check_resume<ssl::sela<>>(s, "sela", 0.05);
    auto d = deeper_small(128);
    d.target.reassign_every = 1;  // epoch 2 reclusters: its head is re-initialised before the interruption
    check_resume<ssl::deepercluster<>>(d, "deepercluster", 0.05);
}

}  // namespace test_deepcluster
