// The trainer on streamed shards (trainer(m, shard_set, config)): it trains,
// resumes mid-epoch on the same trajectory bit for bit, and refuses methods
// that need the whole set in memory.
#include <doctest/doctest.h>

#include <ssl/data/shards.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/instdisc.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>

#include <cmath>
#include <vector>

#include "temp_files.hpp"

namespace test_shards_trainer {

namespace {

const ssl::resnet_options small_net{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::shard_set make_shards(const std::filesystem::path& dir) {
    const auto ds = ssl::data::synthetic({.size = 72, .classes = 4, .channels = 1, .height = 12, .width = 12, .seed = 1})
                        .to_dataset();
    ssl::data::write_shards(ds, dir, 12);  // 6 shards
    return ssl::data::shard_set::open(dir);
}

ssl::simclr<>::config simclr_small() {
    auto c = ssl::simclr_config(small_net, 12, 1);
    c.head = {32, 16, true};
    return c;
}

std::vector<float> parameters(ssl::simclr<>& m) {
    std::vector<float> v;
    m.for_each_parameter([&](const std::string&, auto& p) { v.insert(v.end(), p.value.begin(), p.value.end()); }, "");
    return v;
}

}  // namespace

TEST_CASE("trainer: trains from streamed shards; resuming inside an epoch continues the same trajectory") {
    ssl_test::temp_dir d("shards_trainer");
    const auto set = make_shards(d.path / "shards");
    ssl::trainer_config tc{.epochs = 2, .batch = 16, .lr = 0.05, .seed = 3, .progress = false, .shuffle_buffer = 20};
    ssl::simclr<> full(simclr_small());
    ssl::trainer<ssl::simclr<>> t(full, set, tc);
    CHECK(t.steps_per_epoch() == 72 / 16);  // drop: 4 whole batches of 16
    const auto s = t.fit();
    CHECK(s.steps == 8);
    CHECK(std::isfinite(s.last_loss));

    // the same run stopped after 6 steps (inside epoch 2), then resumed
    auto tc1 = tc;
    tc1.out_dir = d.path / "run";
    tc1.max_steps = 6;
    ssl::simclr<> part(simclr_small());
    ssl::trainer<ssl::simclr<>>(part, set, tc1).fit();
    auto tc2 = tc;
    tc2.out_dir = d.path / "run";
    tc2.resume = true;
    ssl::simclr<> resumed(simclr_small());
    const auto s2 = ssl::trainer<ssl::simclr<>>(resumed, set, tc2).fit();
    CHECK(s2.steps == 2);
    CHECK(parameters(resumed) == parameters(full));
}

TEST_CASE("trainer: a method that needs the whole set in memory is refused on shards, naming why") {
    ssl_test::temp_dir d("shards_trainer_refused");
    const auto set = make_shards(d.path / "shards");
    auto c = ssl::instdisc_config(small_net, 12, 1, 72);
    ssl::instdisc<> m(c);
    ssl::trainer_config tc{.epochs = 1, .batch = 16, .lr = 0.05, .progress = false};
    CHECK_THROWS_WITH_AS(ssl::trainer<ssl::instdisc<>>(m, set, tc),
                         doctest::Contains("needs the whole training set in memory"), ssl::value_error);
}

}  // namespace test_shards_trainer
