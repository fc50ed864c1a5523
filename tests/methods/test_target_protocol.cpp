// The target-update protocol (target_update/protocol.hpp) through the trainer:
// targets(views, ids) reaches the loss, after_step sees the batch ids and
// online outputs, begin_epoch runs before each epoch and may choose the
// sample order and reset a head's optimizer state, and a resumed run tells
// begin_epoch it restarted mid-epoch.
#include <doctest/doctest.h>

#include <ssl/augment/policies.hpp>
#include <ssl/backbone/convnet.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/head/mlp.hpp>
#include <ssl/loss/policies.hpp>
#include <ssl/method.hpp>
#include <ssl/trainer.hpp>

#include <filesystem>
#include <map>

namespace test_target_protocol {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

/// What the probe target saw, shared with the test.
struct probe_log {
    std::vector<std::size_t> begin_epochs;
    std::vector<bool> resumed;
    std::vector<std::size_t> ids_seen;        // after_step ids, in order
    std::vector<std::size_t> online_rows;     // rows of online outputs per step
    std::size_t targets_calls = 0;
};
probe_log& log() {
    static probe_log l;
    return l;
}

/// A batch's targets: the ids, handed to the loss.
struct id_targets {
    std::vector<std::size_t> ids;
};

struct probe_target {
    struct config_type {
        bool reset_head = true;
    };
    template <class Backbone, class Head>
    class state {
    public:
        state() = default;
        state(const config_type& c, Backbone&, Head&) : cfg_(c), counter_({1}) { counter_[0] = 0; }
        id_targets targets(const std::vector<ssl::tensor<float>>&, std::span<const std::size_t> ids) {
            ++log().targets_calls;
            return {std::vector<std::size_t>(ids.begin(), ids.end())};
        }
        void after_step(Backbone&, Head&, const ssl::target_step<float>& s) {
            log().ids_seen.insert(log().ids_seen.end(), s.ids.begin(), s.ids.end());
            REQUIRE(s.online != nullptr);
            log().online_rows.push_back((*s.online)[0].dim(0));
            counter_[0] += 1;
        }
        ssl::epoch_plan begin_epoch(ssl::epoch_context<Backbone, Head>& c) {
            log().begin_epochs.push_back(c.epoch);
            log().resumed.push_back(c.resumed_mid_epoch);
            auto f = c.features(32);
            CHECK(f.dim(0) == c.data.size());
            CHECK(f.dim(1) == c.head_in_features);
            CHECK(c.backbone.training());  // restored after the eval-mode pass
            ssl::epoch_plan p;
            // Only the first half of the data set, each sample twice, reversed.
            std::vector<std::size_t> order;
            for (std::size_t i = 0; i < c.data.size(); ++i) order.push_back((c.data.size() / 2 - 1) - i / 2);
            p.order = order;
            if (cfg_.reset_head) p.reset_optimizer_state = {"head"};
            return p;
        }
        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            f(ssl::join_name(prefix, "steps"), counter_);
        }
        std::int64_t steps() const { return counter_[0]; }

    private:
        config_type cfg_{};
        ssl::tensor<std::int64_t> counter_;
    };
};

/// Cross entropy of a linear head against (id mod classes): a loss that
/// takes id_targets, as a memory bank's or a cluster target's loss would.
struct id_loss {
    using config_type = ssl::loss::cross_entropy_config;
    explicit id_loss(const config_type& c = {}) : ce_(c) {}
    ssl::loss_output<float> compute(const std::vector<ssl::tensor<float>>& online, const id_targets& t,
                                    std::span<const std::int64_t>) const {
        std::vector<std::int64_t> y;
        for (auto i : t.ids) y.push_back(static_cast<std::int64_t>(i % online[0].dim(1)));
        auto r = ce_(online[0], y);
        return {r.value, {std::move(r.grad)}, {}};
    }
    ssl::loss::cross_entropy<float> ce_;
};

using probe_method =
    ssl::method<ssl::convnet<float>, ssl::augment::one_view, ssl::head::linear_classifier<float>, id_loss, probe_target>;

static_assert(ssl::loss_policy<id_loss, id_targets>);
static_assert(!ssl::loss_policy<id_loss>);

probe_method::config make_config() {
    probe_method::config c;
    c.backbone = {.in_channels = 1, .width = 4, .seed = 1};
    c.augment = {16, 1};
    c.head = {4};
    return c;
}

}  // namespace

TEST_CASE("target protocol: ids reach targets and after_step, begin_epoch picks the order, resume is flagged") {
    log() = {};
    auto train = ssl::data::synthetic({.size = 64, .classes = 4, .channels = 1, .height = 16, .width = 16, .seed = 5})
                     .to_dataset();
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_protocol_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    probe_method m(make_config());
    ssl::trainer_config tc{.epochs = 2, .batch = 16, .lr = 0.01, .momentum = 0.9, .seed = 3, .out_dir = dir,
                           .progress = false};
    {
        ssl::trainer<probe_method> t(m, train, tc);
        auto s = t.fit();
        CHECK(s.steps == 8);
    }
    auto& l = log();
    CHECK(l.begin_epochs == std::vector<std::size_t>{0, 1});
    CHECK(l.resumed == std::vector<bool>{false, false});
    CHECK(l.targets_calls == 8);
    CHECK(m.target().steps() == 8);
    REQUIRE(l.ids_seen.size() == 128);
    // Each epoch visits exactly the plan's order: 31, 31, 30, 30, ..., 0, 0.
    for (std::size_t e = 0; e < 2; ++e)
        for (std::size_t i = 0; i < 64; ++i) CHECK(l.ids_seen[e * 64 + i] == 31 - i / 2);
    for (auto r : l.online_rows) CHECK(r == 16);

    // The head's momentum is zeroed at each epoch start; after the last
    // epoch's steps it is non-zero again. A resumed run restarting inside
    // epoch 2 is told so, and continues with the plan's order.
    log() = {};
    probe_method m2(make_config());
    tc.max_steps = 6;  // stop inside epoch 2 (4 steps per epoch)
    tc.out_dir = dir / "b";
    {
        ssl::trainer<probe_method> t(m2, train, tc);
        t.fit();
    }
    CHECK(m2.target().steps() == 6);
    {
        // max_steps stopped the run inside epoch 2: the checkpoint says where.
        auto f = ssl::io::read_safetensors(tc.out_dir / "last.safetensors");
        CHECK(f.metadata.at("epoch") == "1");
        CHECK(f.metadata.at("step_in_epoch") == "2");
        CHECK(!std::filesystem::exists(tc.out_dir / "epoch_002.safetensors"));
    }
    log() = {};
    probe_method m3(make_config());
    tc.max_steps = 0;
    tc.resume = true;
    ssl::trainer<probe_method> t3(m3, train, tc);
    t3.fit();
    CHECK(log().begin_epochs == std::vector<std::size_t>{1});
    CHECK(log().resumed == std::vector<bool>{true});
    CHECK(m3.target().steps() == 8);  // the counter came back from the checkpoint
    REQUIRE(log().ids_seen.size() == 32);
    for (std::size_t i = 0; i < 32; ++i) CHECK(log().ids_seen[i] == 31 - (32 + i) / 2);
    std::filesystem::remove_all(dir);
}

TEST_CASE("target protocol: reset_optimizer_state zeroes the named parameters' momentum at the epoch start") {
    auto train = ssl::data::synthetic({.size = 64, .classes = 4, .channels = 1, .height = 16, .width = 16, .seed = 5})
                     .to_dataset();
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_protocol_reset_" + std::to_string(::getpid()));
    std::map<std::string, ssl::tensor<float>> momentum[2];
    for (int reset = 0; reset < 2; ++reset) {
        auto c = make_config();
        c.target.reset_head = reset == 1;
        probe_method m(c);
        // One step into epoch 2: with the reset, the head's momentum buffer is
        // that step's gradient alone; without it, it also carries epoch 1's.
        ssl::trainer_config tc{.epochs = 2, .batch = 16, .lr = 0.01, .momentum = 0.9, .seed = 3,
                               .out_dir = dir / std::to_string(reset), .progress = false, .max_steps = 5};
        ssl::trainer<probe_method> t(m, train, tc);
        t.fit();
        t.save_to(tc.out_dir / "state.safetensors", 1, 1);
        auto f = ssl::io::read_safetensors(tc.out_dir / "state.safetensors");
        for (auto& [name, st] : f.tensors)
            if (name.find(".momentum_buffer") != std::string::npos) momentum[reset][name] = ssl::io::from_stored<float>(st);
    }
    REQUIRE(!momentum[0].empty());
    bool head_differs = false, backbone_same = true;
    for (auto& [name, a] : momentum[0]) {
        const auto& b = momentum[1].at(name);
        bool same = std::equal(a.begin(), a.end(), b.begin());
        if (name.find("head.") != std::string::npos) head_differs = head_differs || !same;
        else backbone_same = backbone_same && same;
    }
    CHECK(head_differs);
    // The two runs are identical up to the reset, and the step after it
    // computes the same gradients in both: only the head's buffers differ.
    CHECK(backbone_same);
    CHECK(momentum[0].size() == momentum[1].size());
    std::filesystem::remove_all(dir);
}

TEST_CASE("loader: a custom epoch order must have N entries inside the data set") {
    auto train = ssl::data::synthetic({.size = 8, .classes = 2, .channels = 1, .height = 8, .width = 8, .seed = 5})
                     .to_dataset();
    ssl::data::loader<> ld(train, {.batch_size = 4});
    CHECK_THROWS_WITH_AS(ld.epoch(0, 0, {0, 1, 2}), doctest::Contains("one entry per sample (8), got 3"),
                         ssl::error);
    CHECK_THROWS_WITH_AS(ld.epoch(0, 0, {0, 1, 2, 3, 4, 5, 6, 9}), doctest::Contains("names sample 9"), ssl::error);
    std::vector<std::size_t> seen;
    for (auto& b : ld.epoch(0, 0, {7, 7, 6, 6, 5, 5, 4, 4})) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    CHECK(seen == std::vector<std::size_t>{7, 7, 6, 6, 5, 5, 4, 4});
}

}  // namespace test_target_protocol
