// SeLa's target update: Sinkhorn-Knopp labels per head, the quadratic
// label-update schedule, random balanced initial labels, checkpointed labels.
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/sela.hpp>
#include <ssl/target_update/sinkhorn.hpp>

#include <filesystem>
#include <unistd.h>

namespace test_sinkhorn_target {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

const ssl::resnet_options tiny_net{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset make_set(std::size_t n) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                 .seed = 1})
        .to_dataset();
}

std::vector<std::int64_t> as_vector(const ssl::tensor<std::int64_t>& t) { return {t.begin(), t.end()}; }

ssl::sela<>::config small_config(std::size_t instances) {
    auto c = ssl::sela_config(tiny_net, 16, 1, instances);
    c.head = {.heads = 2, .classes = 4};
    c.target.updates = 4;
    return c;
}

}  // namespace

TEST_CASE("sinkhorn_schedule: SeLa's quadratic spacing, first update at step 0, last inside the run") {
    // floor(100 (i/4)^2): 0, 6.25, 25, 56.25
    CHECK(ssl::target::sinkhorn_schedule(4, 100) == std::vector<std::size_t>{0, 6, 25, 56});
    auto s = ssl::target::sinkhorn_schedule(10, 1000);
    REQUIRE(s.size() == 10);
    CHECK(s.front() == 0);
    CHECK(s.back() == 810);  // 1000 (9/10)^2
    for (std::size_t i = 2; i < s.size(); ++i) CHECK(s[i] - s[i - 1] > s[i - 1] - s[i - 2]);  // denser early
    // more updates than steps early on: merged, still increasing
    CHECK(ssl::target::sinkhorn_schedule(10, 5) == std::vector<std::size_t>{0, 1, 2, 3, 4});
    CHECK(ssl::target::sinkhorn_schedule(1, 50) == std::vector<std::size_t>{0});
}

TEST_CASE("sinkhorn_labels: labels per head from Sinkhorn-Knopp, updates on schedule, head-major targets") {
    auto data = make_set(64);
    ssl::sela<> m(small_config(64));
    CHECK(m.target().heads() == 2);
    CHECK(m.target().classes() == 4);
    REQUIRE(m.target().labels().shape() == ssl::shape_t{2, 64});
    m.begin_epoch(data, 0, 5);
    CHECK(m.target().updates_done() == 1);  // update 0, at step 0
    const auto l0 = as_vector(m.target().labels());
    for (std::size_t h = 0; h < 2; ++h) {
        std::vector<std::size_t> count(4, 0);
        for (std::size_t i = 0; i < 64; ++i) {
            const auto v = l0[h * 64 + i];
            REQUIRE((v >= 0 && v < 4));
            ++count[static_cast<std::size_t>(v)];
        }
        for (auto c : count) CHECK((c > 0 && c <= 32));  // equal-size constraint: no cluster takes over
    }
    auto t = m.target().targets({ssl::tensor<float>::zeros({3, 1, 16, 16})}, std::vector<std::size_t>{7, 0, 63});
    CHECK(t.heads == 2);
    CHECK(t.labels == std::vector<std::int64_t>{l0[7], l0[0], l0[63], l0[64 + 7], l0[64], l0[64 + 63]});
    CHECK_THROWS_AS(m.target().targets({ssl::tensor<float>::zeros({2, 1, 16, 16})}, std::vector<std::size_t>{0}),
                    ssl::shape_error);

    // targets(target_input): the labels of the view batch's ids
    ssl::view_batch<float> vb{{ssl::tensor<float>::zeros({3, 1, 16, 16})}, {}};
    vb.ids = {7, 0, 63};
    const std::vector<ssl::tensor<float>> online;
    CHECK(m.target().targets(ssl::target_input<float>{vb, online}).labels == t.labels);

    // 40 steps, 4 updates: at steps 0, 2, 10, 22 (floor(40 (i/4)^2)); the
    // method runs the data pass the target's after_step asks for
    const std::size_t total = 40;
    std::vector<std::size_t> updated_at;
    for (std::size_t s = 0; s < total; ++s) {
        if (s > 0 && s % 8 == 0) m.begin_epoch(data, s / 8, 5);  // epochs of 8 steps: no update at their start
        const std::size_t before = m.target().updates_done();
        m.after_step({}, {5, s / 8, s, total}, &data);
        if (m.target().updates_done() > before) updated_at.push_back(s + 1);
    }
    CHECK(updated_at == std::vector<std::size_t>{2, 10, 22});
    CHECK(m.target().updates_done() == 4);
    REQUIRE(m.target().last_update().has_value());
    CHECK(m.target().last_update()->step == 22);
    REQUIRE(m.target().last_update()->nmi_prev.has_value());
}

TEST_CASE("sinkhorn_labels: after_step asks for a data pass when an update is due; data_pass runs it") {
    auto data = make_set(64);
    ssl::sela<> m(small_config(64));
    m.begin_epoch(data, 0, 5);
    REQUIRE(m.target().updates_done() == 1);
    const auto l0 = as_vector(m.target().labels());
    using method_t = ssl::sela<>;
    ssl::epoch_context<method_t::backbone_type, method_t::head_type> ctx{
        m.backbone(), m.head(), m.backbone().output_dim(), data, 0, 5, false,
        [&](const ssl::tensor<float>& x) { return m.augmentation().eval_transform(x); }};
    // 40 steps: updates due at steps 2, 10, 22, asked for by after_step of the step before
    const std::size_t total = 40;
    std::vector<std::size_t> asked_at;
    for (std::size_t s = 0; s < total; ++s) {
        const ssl::target_step ts{s, total, s / 8};
        const auto req = m.target().after_step(m.backbone(), m.head(), {}, ts);
        if (!req.data_pass) continue;
        asked_at.push_back(s + 1);
        CHECK(m.target().updates_done() == asked_at.size());  // asking runs nothing
        m.target().data_pass(ctx, ts);
        CHECK(m.target().updates_done() == asked_at.size() + 1);
        REQUIRE(m.target().last_update().has_value());
        CHECK(m.target().last_update()->step == s + 1);
    }
    CHECK(asked_at == std::vector<std::size_t>{2, 10, 22});
    CHECK(m.target().updates_done() == 4);
    // the networks did not train: the same head outputs give the same labels
    REQUIRE(m.target().last_update()->nmi_prev.has_value());
    CHECK(as_vector(m.target().labels()) == l0);
    // the schedule follows total_steps: with 100 steps, 0, 6, 25, 56
    CHECK(m.target().after_step(m.backbone(), m.head(), {}, ssl::target_step{5, 100, 0}).data_pass);
    CHECK_FALSE(m.target().after_step(m.backbone(), m.head(), {}, ssl::target_step{6, 100, 0}).data_pass);
    CHECK_FALSE(m.target().after_step(m.backbone(), m.head(), {}, ssl::target_step{99, 100, 0}).data_pass);
}

TEST_CASE("sinkhorn_labels: random balanced initial labels; an update due without the data set is an error") {
    auto data = make_set(64);
    auto c = small_config(64);
    c.target.random_initial_labels = true;
    ssl::sela<> m(c);
    m.begin_epoch(data, 0, 9);
    CHECK(m.target().updates_done() == 0);
    const auto l = as_vector(m.target().labels());
    for (std::size_t h = 0; h < 2; ++h) {
        std::vector<std::size_t> count(4, 0);
        for (std::size_t i = 0; i < 64; ++i) ++count[static_cast<std::size_t>(l[h * 64 + i])];
        CHECK(count == std::vector<std::size_t>(4, 16));  // exactly balanced
    }
    CHECK(std::vector<std::int64_t>(l.begin(), l.begin() + 64) != std::vector<std::int64_t>(l.begin() + 64, l.end()));

    ssl::sela<> lone(small_config(64));
    CHECK_THROWS_WITH_AS(lone.target().targets({ssl::tensor<float>::zeros({1, 1, 16, 16})}, std::vector<std::size_t>{0}),
                         doctest::Contains("no labels yet"), ssl::value_error);
    lone.after_step({}, {0, 0, 0, 40});  // nothing due at step 1
    CHECK_THROWS_WITH_AS(lone.after_step({}, {0, 0, 1, 40}), doctest::Contains("at step 2; pass the data set"),
                         ssl::value_error);
    CHECK(lone.target().updates_done() == 0);
    // nothing is cached between the phases: with the data set, the due update
    // runs without begin_epoch
    lone.after_step({}, {0, 0, 1, 40}, &data);
    CHECK(lone.target().updates_done() == 1);
    REQUIRE(lone.target().last_update().has_value());
    CHECK(lone.target().last_update()->step == 2);
    for (auto v : as_vector(lone.target().labels())) CHECK((v >= 0 && v < 4));
    // a data set of another size than the configured instances
    ssl::sela<> wrong(small_config(50));
    CHECK_THROWS_WITH_AS(wrong.begin_epoch(data, 0, 0), doctest::Contains("for 50 images"), ssl::shape_error);
}

TEST_CASE("sinkhorn_labels: labels restored by a checkpoint round trip; a mid-epoch resume does not recompute") {
    auto data = make_set(64);
    ssl::sela<> m(small_config(64));
    m.begin_epoch(data, 0, 3);
    const auto labels = as_vector(m.target().labels());
    const auto path =
        std::filesystem::temp_directory_path() / ("ssl_sela_ckpt_" + std::to_string(::getpid()) + ".safetensors");
    ssl::save_checkpoint(path, m);
    ssl::sela<> fresh(small_config(64));
    ssl::load_checkpoint(path, fresh);
    CHECK(as_vector(fresh.target().labels()) == labels);
    fresh.begin_epoch(data, 0, 3, /*resumed_mid_epoch=*/true);
    CHECK(fresh.target().updates_done() == 0);
    CHECK(as_vector(fresh.target().labels()) == labels);
    std::filesystem::remove(path);
}

}  // namespace test_sinkhorn_target
