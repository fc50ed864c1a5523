// S4L (s4l.hpp) as methods: both variants take a step on a few labels, the
// config (with its labelled subset) survives JSON, and a hidden label changes
// nothing in a whole step; a short run through the trainer lowers the loss.
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/s4l.hpp>
#include <ssl/trainer.hpp>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace test_s4l_method {  // each file in its own namespace: an area builds as one unity translation unit

namespace {
const ssl::resnet_options net{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset images(std::size_t n) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                 .seed = 1})
        .to_dataset();
}

double metric(const ssl::step_result& r, const std::string& name) {
    for (const auto& [k, v] : r.metrics)
        if (k == name) return v;
    FAIL("no metric ", name);
    return 0;
}
}  // namespace

TEST_CASE("s4l_rotation: a step on 10 % labels; the config and its labelled subset survive JSON") {
    const auto d = images(80);
    const auto labelled = ssl::data::labelled_subset(d, 0.1, 3);
    REQUIRE(labelled.size() == 8);
    auto c = ssl::s4l_rotation_config(net, 16, 1, 4, labelled);
    CHECK(c.head.first.classes == 4);
    CHECK(c.head.second.classes == 4);
    CHECK(c.loss.self_weight == 1);
    const auto back = ssl::io::config_from_json<decltype(c)>(ssl::io::config_to_json(c), "test");
    CHECK(back.loss.labelled == labelled);
    CHECK(back.target.labelled == labelled);
    CHECK(back.target.share == 0.5);
    // a checkpoint written before the share: share 0, the loader's permutation
    auto old = ssl::io::config_to_json(c);
    old["target"] = nlohmann::json::object();
    CHECK(ssl::io::config_from_json<decltype(c)>(old, "test").target.share == 0);
    ssl::s4l_rotation<> m(c);
    // the epoch's order: half of every batch from the 8 labelled images
    const auto plan = m.begin_epoch(d, 0, 5);
    REQUIRE(plan.order);
    REQUIRE(plan.order->size() == 80);
    for (std::size_t k = 0; k < 80; k += 16) {
        std::size_t lab = 0;
        for (std::size_t q = k; q < k + 16; ++q) lab += std::binary_search(labelled.begin(), labelled.end(), (*plan.order)[q]);
        CHECK(lab == 8);
    }
    std::vector<std::size_t> ids(16);
    std::iota(ids.begin(), ids.end(), 0);
    const auto r = m.train_step(d.batch(ids), ids, {.seed = 1}, d.labels_of(ids));
    CHECK(std::isfinite(r.loss));
    std::size_t in_subset = 0;
    for (auto i : ids) in_subset += std::binary_search(labelled.begin(), labelled.end(), i);
    CHECK(metric(r, "labelled_rows") == static_cast<double>(4 * in_subset));
    CHECK(metric(r, "pretext_top1") >= 0);
    CHECK(m.head().out_features() == 8);
}

TEST_CASE("s4l: changing an unlabelled sample's label changes nothing in a whole step") {
    const auto d = images(40);
    const std::vector<std::size_t> labelled{0, 1, 2, 3};
    auto run = [&](std::vector<std::int64_t> classes) {
        ssl::s4l_rotation<> m(ssl::s4l_rotation_config(net, 16, 1, 4, labelled));
        std::vector<std::size_t> ids{0, 1, 5, 6, 7, 8};
        auto r = m.train_step(d.batch(ids), ids, {.seed = 2}, classes);
        std::vector<float> grads;
        m.for_each_parameter([&](const std::string&, auto& p) {
            for (float g : p.grad) grads.push_back(g);
        }, "");
        return std::pair{r.loss, grads};
    };
    const auto a = run({0, 1, 2, 3, 0, 1});
    const auto b = run({0, 1, 3, 0, 1, 2});  // samples 5..8 are outside the subset
    CHECK(a.first == b.first);
    CHECK(a.second == b.second);
    const auto c = run({1, 1, 2, 3, 0, 1});  // sample 0 is labelled
    CHECK(c.first != a.first);
}

TEST_CASE("s4l_exemplar: copies of every image, a normalised embedding and the class head; the loss falls") {
    const auto d = images(64);
    auto c = ssl::s4l_exemplar_config(net, 16, 1, 4, ssl::data::labelled_subset(d, 0.25, 1), 32);
    CHECK(c.augment.copies == 8);
    CHECK(c.head.first.out == 32);
    c.augment.copies = 4;
    ssl::s4l_exemplar<> m(c);
    ssl::trainer_config tc{.epochs = 4, .batch = 16, .lr = 0.05, .weight_decay = 5e-4, .warmup_epochs = 0,
                           .seed = 3, .progress = false};
    const auto s = ssl::trainer<ssl::s4l_exemplar<>>(m, d, tc).fit();
    REQUIRE(s.epoch_loss.size() == 4);
    MESSAGE("s4l exemplar on 64 synthetic images: loss ", s.epoch_loss.front(), " -> ", s.epoch_loss.back());
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    std::vector<std::size_t> ids{0, 1, 2, 3};
    CHECK(m.embed(d.batch(ids)).shape() == ssl::shape_t{4, m.backbone().output_dim()});
}

}  // namespace test_s4l_method
