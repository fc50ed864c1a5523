// End-to-end: SimCLR, BYOL and RotNet train on synthetic data through the
// trainer; the loss must fall and kNN on the learned features must beat
// chance by a clear margin.
#include <doctest/doctest.h>

#include <ssl/byol.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>

#include "sigint_at.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace test_methods {  // each file in its own namespace: an area builds as one unity translation unit

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
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    const double acc = knn_top1(m, train, test);
    MESSAGE(name, ": loss ", s.epoch_loss.front(), " -> ", s.epoch_loss.back(), ", kNN top-1 ", acc);
    CHECK(acc > 0.5);  // 4 classes: chance is 0.25
}

}  // namespace

TEST_CASE("simclr trains on synthetic images") {
    auto c = ssl::simclr_config(small_net, 16, 1);
    c.head = {128, 32, true};
    ssl::simclr<> m(c);
    check_learns(m, "simclr", 0.1, 4);
}

TEST_CASE("simclr_config: crops of at least half the image below 32 px, the shared recipe's from 32 px") {
    namespace aug = ssl::augment;
    const auto small = ssl::simclr_config(small_net, 28, 1);
    CHECK(small.augment.crop_min_scale == 0.5);
    CHECK(aug::two_views(small.augment).pipelines()[1].find<aug::random_resized_crop>()->scale == aug::range{0.5, 1.0});
    const auto large = ssl::simclr_config(small_net, 32, 3);
    CHECK(large.augment.crop_min_scale == 0.0);
    CHECK(aug::two_views(large.augment).pipelines()[0].find<aug::random_resized_crop>()->scale == aug::range{0.08, 1.0});
}

TEST_CASE("byol trains on synthetic images, the target follows by EMA") {
    auto c = ssl::byol_config(small_net, 16, 1);
    c.head = {{128, 32, true}, {128, 32, true}};
    ssl::byol<> m(c);
    check_learns(m, "byol", 0.1, 4);
    CHECK(m.target().tau() > 0.99);
}

TEST_CASE("rotnet trains on synthetic images") {
    ssl::rotnet<> m(ssl::rotnet_config(small_net, 16, 1));
    check_learns(m, "rotnet", 0.05, 4);
}

TEST_CASE("trainer: checkpoints, resume continues where it stopped, NaN stops with the checkpoint intact") {
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_trainer_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = make_set(128, 1);
    auto c = ssl::simclr_config(small_net, 16, 1);
    c.head = {64, 16, true};
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.05, .seed = 3, .out_dir = dir, .progress = false};
    // a full run of 2 epochs
    ssl::simclr<> full(c);
    ssl::trainer<ssl::simclr<>>(full, train, tc).fit();
    // the same run cut after epoch 1, then resumed
    const auto dir2 = dir / "resumed";
    ssl::simclr<> part(c);
    auto tc1 = tc;
    tc1.out_dir = dir2;
    tc1.max_steps = 4;  // one epoch
    ssl::trainer<ssl::simclr<>>(part, train, tc1).fit();
    CHECK(std::filesystem::exists(dir2 / "last.safetensors"));
    CHECK(std::filesystem::exists(dir2 / "epoch_001.safetensors"));
    CHECK(std::filesystem::exists(dir2 / "metrics.csv"));
    CHECK(std::filesystem::exists(dir2 / "plot.svg"));
    ssl::simclr<> resumed(c);
    auto tc2 = tc;
    tc2.out_dir = dir2;
    tc2.resume = true;
    ssl::trainer<ssl::simclr<>>(resumed, train, tc2).fit();
    double diff = 0;
    std::vector<float> a, b;
    full.for_each_parameter([&](const std::string&, auto& p) { a.insert(a.end(), p.value.begin(), p.value.end()); }, "");
    resumed.for_each_parameter([&](const std::string&, auto& p) { b.insert(b.end(), p.value.begin(), p.value.end()); }, "");
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) diff = std::max(diff, double(std::abs(a[i] - b[i])));
    CHECK(diff == 0.0);  // the resumed run continues the same trajectory, bit for bit
    // a diverging run (absurd learning rate) stops with a message and keeps the last good checkpoint
    const auto before = std::filesystem::file_size(dir2 / "epoch_002.safetensors");
    ssl::simclr<> boom(c);
    auto tc3 = tc;
    tc3.out_dir = dir / "boom";
    tc3.lr = 1e30;
    tc3.epochs = 3;
    try {
        ssl::trainer<ssl::simclr<>>(boom, train, tc3).fit();
        FAIL("a diverging run must stop");
    } catch (const ssl::error& e) {
        const std::string msg = e.what();
        CHECK_MESSAGE(msg.find("diverged") != std::string::npos, msg);
    }
    CHECK(std::filesystem::file_size(dir2 / "epoch_002.safetensors") == before);
    std::filesystem::remove_all(dir);
}

TEST_CASE("trainer: the constant schedule holds the peak lr after warmup; an unknown schedule is refused") {
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_schedule_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = make_set(128, 1);
    auto c = ssl::simclr_config(small_net, 16, 1);
    c.head = {64, 16, true};
    // the lr column of metrics.csv, one row per logged step
    auto lrs = [](const std::filesystem::path& csv) {
        std::ifstream in(csv);
        std::string line;
        std::getline(in, line);
        std::size_t col = 0, i = 0;
        std::stringstream hs(line);
        for (std::string h; std::getline(hs, h, ','); ++i)
            if (h == "lr") col = i;
        std::vector<double> v;
        while (std::getline(in, line)) {
            std::stringstream ls(line);
            std::string cell;
            for (std::size_t k = 0; k <= col; ++k) std::getline(ls, cell, ',');
            v.push_back(std::stod(cell));
        }
        return v;
    };
    for (const std::string sched : {"constant", "cosine"}) {
        ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.05, .warmup_epochs = 0.5, .schedule = sched,
                               .seed = 3, .out_dir = dir / sched, .progress = false};
        ssl::simclr<> m(c);
        ssl::trainer<ssl::simclr<>>(m, train, tc).fit();
        const auto v = lrs(dir / sched / "metrics.csv");
        CAPTURE(sched);
        REQUIRE(v.size() >= 2);
        if (sched == "constant")
            CHECK(v.back() == doctest::Approx(0.05));
        else
            CHECK(v.back() < 0.025);
        CHECK(v.front() < 0.05);  // warmup either way
    }
    ssl::simclr<> m(c);
    ssl::trainer_config bad{.epochs = 1, .batch = 32, .lr = 0.05, .schedule = "step", .progress = false};
    CHECK_THROWS_WITH_AS(ssl::trainer<ssl::simclr<>>(m, train, bad), doctest::Contains("unknown schedule 'step'"),
                         ssl::value_error);
    std::filesystem::remove_all(dir);
}

TEST_CASE("trainer: Ctrl-C saves a resumable checkpoint; the resumed run equals an uninterrupted one") {
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_sigint_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = make_set(128, 1);
    auto c = ssl::simclr_config(small_net, 16, 1);
    c.head = {64, 16, true};
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.05, .seed = 3, .progress = false};
    ssl::simclr<> full(c);
    ssl::trainer<ssl::simclr<>>(full, train, tc).fit();

    tc.out_dir = dir;
    ssl::simclr<> part(c);
    ssl::trainer<ssl::simclr<>> t(part, train, tc);
    // Ctrl-C arrives during the first step of epoch 2: the run stops after it.
    t.chores().add<ssl_test::sigint_at>(5);
    auto s = t.fit();
    CHECK(s.interrupted);
    CHECK(s.steps == 5);  // 4 steps of epoch 1 and one of epoch 2
    REQUIRE(std::filesystem::exists(dir / "last.safetensors"));
    {
        auto prev = std::signal(SIGINT, SIG_DFL);  // the trainer put the previous handler back
        CHECK((prev != &ssl::detail::ssl_on_sigint));
        std::signal(SIGINT, prev);
    }

    ssl::simclr<> resumed(c);
    auto tc2 = tc;
    tc2.resume = true;
    auto s2 = ssl::trainer<ssl::simclr<>>(resumed, train, tc2).fit();
    CHECK_FALSE(s2.interrupted);
    CHECK(s2.steps == 3);
    std::vector<float> a, b;
    full.for_each_parameter([&](const std::string&, auto& p) { a.insert(a.end(), p.value.begin(), p.value.end()); }, "");
    resumed.for_each_parameter([&](const std::string&, auto& p) { b.insert(b.end(), p.value.begin(), p.value.end()); }, "");
    CHECK(a == b);
    std::filesystem::remove_all(dir);
}

TEST_CASE("method: embed returns xtensor features") {
    auto c = ssl::simclr_config(small_net, 16, 1);
    c.head = {64, 16, true};
    ssl::simclr<> m(c);
    xt::xtensor<float, 4> images = xt::zeros<float>({3, 1, 16, 16});
    images(1, 0, 3, 3) = 1.0f;
    xt::xtensor<float, 2> f = m.embed(images);
    CHECK(f.shape()[0] == 3);
    CHECK(f.shape()[1] == m.backbone().output_dim());
}

}  // namespace test_methods
