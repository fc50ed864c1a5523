// The target-update protocol (target_update/protocol.hpp) through the trainer:
// targets(input) sees the view batch and online outputs, its batch reaches
// the loss and then after_step, which consumes it; begin_epoch runs before
// each epoch and may choose the sample order and ask for the head to be
// re-initialised (the method does it and the trainer resets its optimizer
// state); a data pass asked for by after_step runs over the training set; a
// resumed run tells begin_epoch it restarted mid-epoch.
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
    std::vector<std::size_t> passes;          // steps after which a data pass ran
    std::size_t targets_calls = 0;
};
probe_log& log() {
    static probe_log l;
    return l;
}

/// A batch's targets: the ids, handed to the loss, then consumed by after_step.
struct id_targets {
    std::vector<std::size_t> ids;
    std::size_t online_rows = 0;
    std::size_t step = 0;
};

struct probe_target {
    struct config_type {
        bool reinit_head = true;
        std::size_t pass_every = 0;  ///< ask for a data pass after every k-th step (0: never)
    };
    template <class Backbone, class Head>
    class state {
    public:
        state() = default;
        state(const config_type& c, Backbone&, Head&) : cfg_(c), counter_({1}) { counter_[0] = 0; }
        id_targets targets(const ssl::target_input<float>& in) {
            ++log().targets_calls;
            CHECK(in.batch.ids.size() == in.online[0].dim(0));
            return {std::vector<std::size_t>(in.ids().begin(), in.ids().end()), in.online[0].dim(0), in.step};
        }
        ssl::target_request after_step(Backbone&, Head&, id_targets&& t, const ssl::target_step& s) {
            CHECK(t.step == s.step);  // the batch of this very step
            log().ids_seen.insert(log().ids_seen.end(), t.ids.begin(), t.ids.end());
            log().online_rows.push_back(t.online_rows);
            counter_[0] += 1;
            return {.data_pass = cfg_.pass_every > 0 && (s.step + 1) % cfg_.pass_every == 0};
        }
        void data_pass(ssl::epoch_context<Backbone, Head>& c, const ssl::target_step& s) {
            log().passes.push_back(s.step);
            CHECK(c.features(32).dim(0) == c.data.size());
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
            if (cfg_.reinit_head) p.reinit_head = 1000 + c.epoch;
            p.reset_optimizer_state = {"backbone"};  // ignored: the method decides what was re-initialised
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
                                    const ssl::view_batch<float>& vb) const {
        CHECK(vb.ids == t.ids);
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

TEST_CASE("target protocol: reinit_head rebuilds the head from its seed, the trainer resets its momentum") {
    auto train = ssl::data::synthetic({.size = 64, .classes = 4, .channels = 1, .height = 16, .width = 16, .seed = 5})
                     .to_dataset();
    {
        probe_method m(make_config());
        const auto plan = m.begin_epoch(train, 2, 3);
        CHECK(plan.reset_optimizer_state == std::vector<std::string>{"head"});  // not the policy's "backbone"
        ssl::head::linear_classifier<float> fresh(make_config().head, m.backbone().output_dim(), 1002);
        std::vector<float> a, b;
        m.head().for_each_parameter([&](const std::string&, auto& p) { a.insert(a.end(), p.value.begin(), p.value.end()); }, "");
        fresh.for_each_parameter([&](const std::string&, auto& p) { b.insert(b.end(), p.value.begin(), p.value.end()); }, "");
        CHECK(a == b);
        auto c = make_config();
        c.target.reinit_head = false;
        probe_method keep(c);
        CHECK(keep.begin_epoch(train, 2, 3).reset_optimizer_state.empty());
    }
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_protocol_reset_" + std::to_string(::getpid()));
    for (int reinit = 0; reinit < 2; ++reinit) {
        CAPTURE(reinit);
        auto c = make_config();
        c.target.reinit_head = reinit == 1;
        probe_method m(c);
        // One step into epoch 2. With the reset, the head's momentum buffer
        // is that step's gradient alone (no weight decay); without it, it
        // also carries epoch 1's.
        ssl::trainer_config tc{.epochs = 2, .batch = 16, .lr = 0.01, .momentum = 0.9, .weight_decay = 0, .seed = 3,
                               .out_dir = dir / std::to_string(reinit), .progress = false, .max_steps = 5};
        ssl::trainer<probe_method> t(m, train, tc);
        t.fit();
        t.save_to(tc.out_dir / "state.safetensors", 1, 1);
        auto f = ssl::io::read_safetensors(tc.out_dir / "state.safetensors");
        std::size_t checked = 0;
        m.head().for_each_parameter([&](const std::string& name, ssl::parameter<float>& p) {
            const auto it = f.tensors.find("optim.head." + name + ".momentum_buffer");
            REQUIRE(it != f.tensors.end());
            const auto buf = ssl::io::from_stored<float>(it->second);
            CHECK(std::equal(buf.begin(), buf.end(), p.grad.begin()) == (reinit == 1));
            ++checked;
        }, "");
        CHECK(checked == 2);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("target protocol: a data pass asked for by after_step runs over the training set") {
    log() = {};
    auto train = ssl::data::synthetic({.size = 64, .classes = 4, .channels = 1, .height = 16, .width = 16, .seed = 5})
                     .to_dataset();
    auto c = make_config();
    c.target.pass_every = 3;
    probe_method m(c);
    ssl::trainer_config tc{.epochs = 2, .batch = 16, .lr = 0.01, .seed = 3, .progress = false};
    ssl::trainer<probe_method>(m, train, tc).fit();
    CHECK(log().passes == std::vector<std::size_t>{2, 5});
    // Without the data set, the method says what is missing.
    probe_method m2(c);
    m2.begin_epoch(train, 0, 3);
    std::vector<std::size_t> ids(16);
    for (std::size_t i = 0; i < 16; ++i) ids[i] = i;
    const ssl::step_context ctx{3, 0, 2, 8};
    auto r = m2.train_step(train.batch(ids), ids, ctx);
    CHECK_THROWS_WITH_AS(m2.after_step(std::move(r), ctx), doctest::Contains("pass the data set to after_step"),
                         ssl::error);
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
