#include <doctest/doctest.h>

#include <ssl/backbone/resnet.hpp>
#include <ssl/head/mlp.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/target_update/queue.hpp>
#include <ssl/testing/gradcheck.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <unistd.h>

namespace test_queue {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using net_t = ssl::resnet18<float>;
using head_t = ssl::head::mlp<float>;
using state_t = ssl::target::queue::state<net_t, head_t>;

struct fixture {
    net_t net{{.in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 5}};
    head_t head{{8, 4, false}, net.output_dim(), 6};
};

ssl::tensor<float> images(std::size_t n, std::uint64_t seed) {
    return ssl::cast<float>(ssl::testing::random_tensor({n, 1, 8, 8}, seed));
}

std::vector<float> row(const ssl::tensor<float>& t, std::size_t r) {
    const std::size_t d = t.dim(1);
    return {t.data() + r * d, t.data() + (r + 1) * d};
}

double norm(const std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    return std::sqrt(s);
}

// The key encoder's output for `x` as one batch (train mode), L2-normalized.
ssl::tensor<float> reference_keys(state_t& s, const ssl::tensor<float>& x) {
    auto y = s.head().forward(s.backbone().forward(x).out).out;
    for (std::size_t r = 0; r < y.dim(0); ++r) {
        const double n = norm(row(y, r));
        for (std::size_t j = 0; j < y.dim(1); ++j) y.at(r, j) = static_cast<float>(y.at(r, j) / n);
    }
    return y;
}

ssl::tensor<float> gather(const ssl::tensor<float>& x, const std::vector<std::size_t>& idx) {
    const std::size_t per = x.numel() / x.dim(0);
    ssl::shape_t s = x.shape();
    s[0] = idx.size();
    ssl::tensor<float> out(s);
    for (std::size_t r = 0; r < idx.size(); ++r) std::copy_n(x.data() + idx[r] * per, per, out.data() + r * per);
    return out;
}

// The target state as a module, for save_checkpoint / load_checkpoint.
struct state_module {
    state_t& s;
    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        s.for_each_state(f, p);
    }
};

}  // namespace

TEST_CASE("queue: initial state: K random unit keys, pointer 0, the key encoder a deep copy") {
    fixture fx;
    state_t s({.size = 12, .momentum = 0.99, .seed = 3}, fx.net, fx.head);
    CHECK(s.size() == 12);
    CHECK(s.dim() == 4);
    CHECK(s.pointer() == 0);
    CHECK(s.steps() == 0);
    REQUIRE(s.keys().shape() == ssl::shape_t{12, 4});
    std::set<std::vector<float>> distinct;
    for (std::size_t r = 0; r < 12; ++r) {
        CHECK(norm(row(s.keys(), r)) == doctest::Approx(1.0).epsilon(1e-6));
        distinct.insert(row(s.keys(), r));
    }
    CHECK(distinct.size() == 12);
    // reproducible from the seed
    state_t same({.size = 12, .seed = 3}, fx.net, fx.head), other({.size = 12, .seed = 4}, fx.net, fx.head);
    CHECK(std::equal(s.keys().begin(), s.keys().end(), same.keys().begin()));
    CHECK_FALSE(std::equal(s.keys().begin(), s.keys().end(), other.keys().begin()));
    // the key encoder starts equal to the query encoder, in its own storage
    auto on = ssl::parameter_list<float>(fx.net), tg = ssl::parameter_list<float>(s.backbone());
    REQUIRE(on.size() == tg.size());
    for (std::size_t i = 0; i < on.size(); ++i) {
        CHECK_FALSE(on[i]->value.shares_storage_with(tg[i]->value));
        CHECK(std::equal(on[i]->value.begin(), on[i]->value.end(), tg[i]->value.begin()));
    }
    CHECK(s.backbone().training());
}

TEST_CASE("queue: enqueue wraps around when K is not a multiple of the batch; oldest keys go first") {
    fixture fx;
    state_t s({.size = 10, .seed = 1}, fx.net, fx.head);
    // batch b, row r: every entry (10 b + r)
    auto batch = [](std::size_t b, std::size_t n) {
        ssl::tensor<float> k({n, 4});
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t j = 0; j < 4; ++j) k.at(r, j) = static_cast<float>(10 * b + r);
        return k;
    };
    auto at = [&](std::size_t r) { return s.keys().at(r, 0); };
    s.enqueue(batch(0, 4));
    CHECK(s.pointer() == 4);
    s.enqueue(batch(1, 4));
    CHECK(s.pointer() == 8);
    s.enqueue(batch(2, 4));  // rows 8, 9, then 0, 1: batch 0's first two keys are the oldest
    CHECK(s.pointer() == 2);
    const std::vector<float> expect{22, 23, 2, 3, 10, 11, 12, 13, 20, 21};
    for (std::size_t r = 0; r < 10; ++r) {
        CAPTURE(r);
        CHECK(at(r) == expect[r]);
        CHECK(s.keys().at(r, 3) == expect[r]);  // whole rows
    }
    s.enqueue(batch(3, 4));  // replaces batch 0's last keys, then batch 1's first two
    CHECK(s.pointer() == 6);
    const std::vector<float> expect2{22, 23, 30, 31, 32, 33, 12, 13, 20, 21};
    for (std::size_t r = 0; r < 10; ++r) CHECK(at(r) == expect2[r]);
    // more keys than the queue holds: the last K win, in FIFO order
    s.enqueue(batch(5, 13));  // rows 6..9, 0..9 (wrapping), 0..8
    CHECK(s.pointer() == 9);
    const std::vector<float> expect3{54, 55, 56, 57, 58, 59, 60, 61, 62, 53};
    for (std::size_t r = 0; r < 10; ++r) CHECK(at(r) == expect3[r]);
    CHECK_THROWS_AS(s.enqueue(ssl::tensor<float>::zeros({2, 3})), ssl::shape_error);
}

TEST_CASE("queue: the loss gets the queue as before the batch; after_step enqueues the batch's keys") {
    fixture fx;
    state_t s({.size = 10, .momentum = 0.99, .shuffle_bn_groups = 2, .seed = 1}, fx.net, fx.head);
    std::vector<ssl::tensor<float>> all_keys;
    for (std::size_t step = 0; step < 3; ++step) {
        CAPTURE(step);
        const auto before = s.keys().clone();
        const std::size_t ptr = s.pointer();
        auto t = s.keys({images(4, 10 + step), images(4, 20 + step)});
        REQUIRE(t.keys.size() == 2);
        CHECK_FALSE(t.keys[0].defined());  // asymmetric: view 0 is the query only
        REQUIRE(t.keys[1].shape() == ssl::shape_t{4, 4});
        for (std::size_t r = 0; r < 4; ++r) CHECK(norm(row(t.keys[1], r)) == doctest::Approx(1.0).epsilon(1e-5));
        // the queue handed to the loss is the queue before this batch, and
        // holds none of this batch's keys (the positives)
        REQUIRE(t.queue.shape() == before.shape());
        CHECK(std::equal(t.queue.begin(), t.queue.end(), before.begin()));
        for (std::size_t r = 0; r < 4; ++r)
            for (std::size_t m = 0; m < 10; ++m) CHECK(row(t.keys[1], r) != row(t.queue, m));
        const auto keys = t.keys[1].clone();
        all_keys.push_back(keys);
        CHECK_FALSE(s.after_step(fx.net, fx.head, std::move(t), ssl::target_step{step, 3, 0}).data_pass);
        // now they are in, from the old pointer on, wrapping
        for (std::size_t r = 0; r < 4; ++r) CHECK(row(s.keys(), (ptr + r) % 10) == row(keys, r));
        CHECK(s.pointer() == (ptr + 4) % 10);
        CHECK(s.steps() == step + 1);
    }
    // after 3 batches of 4 in a queue of 10: rows 0, 1 hold batch 2's last keys,
    // rows 2, 3 still batch 0's last ones
    CHECK(row(s.keys(), 0) == row(all_keys[2], 2));
    CHECK(row(s.keys(), 1) == row(all_keys[2], 3));
    CHECK(row(s.keys(), 2) == row(all_keys[0], 2));
    CHECK(row(s.keys(), 9) == row(all_keys[2], 1));
    // after_step with a batch without keys: only the momentum update
    const auto q = s.keys().clone();
    s.after_step(fx.net, fx.head, {}, ssl::target_step{3, 4});
    CHECK(std::equal(q.begin(), q.end(), s.keys().begin()));
    CHECK(s.pointer() == 2);
}

TEST_CASE("queue: targets(target_input) are the keys of the batch's views") {
    fixture fx;
    state_t s({.size = 10, .shuffle_bn_groups = 2, .seed = 1}, fx.net, fx.head);
    const auto x0 = images(4, 1), x1 = images(4, 2);
    auto k = s.keys({x0, x1});
    ssl::view_batch<float> vb{{x0, x1}, {}};
    vb.ids = {0, 1, 2, 3};
    const std::vector<ssl::tensor<float>> online;
    auto t = s.targets(ssl::target_input<float>{vb, online, 0, 1, 0});
    REQUIRE(t.keys.size() == 2);
    CHECK_FALSE(t.keys[0].defined());
    REQUIRE(t.keys[1].shape() == k.keys[1].shape());
    CHECK(std::equal(t.keys[1].begin(), t.keys[1].end(), k.keys[1].begin()));
    CHECK(std::equal(t.queue.begin(), t.queue.end(), k.queue.begin()));
}

TEST_CASE("queue: two targets() calls before one after_step enqueue only the consumed batch's keys") {
    fixture fx;
    state_t s({.size = 10, .shuffle_bn_groups = 2, .seed = 1}, fx.net, fx.head);
    const auto before = s.keys().clone();
    auto t1 = s.keys({images(4, 1), images(4, 2)});
    auto t2 = s.keys({images(4, 3), images(4, 4)});
    const auto k1 = t1.keys[1].clone(), k2 = t2.keys[1].clone();
    for (std::size_t r = 0; r < 4; ++r) CHECK(row(k1, r) != row(k2, r));
    // neither call enqueued anything
    CHECK(std::equal(before.begin(), before.end(), s.keys().begin()));
    CHECK(s.pointer() == 0);
    // consuming the first batch: its keys, not the last call's
    s.after_step(fx.net, fx.head, std::move(t1), ssl::target_step{0, 2});
    CHECK(s.pointer() == 4);
    for (std::size_t r = 0; r < 4; ++r) CHECK(row(s.keys(), r) == row(k1, r));
    for (std::size_t r = 4; r < 10; ++r) CHECK(row(s.keys(), r) == row(before, r));
    for (std::size_t m = 0; m < 10; ++m)
        for (std::size_t r = 0; r < 4; ++r) CHECK(row(s.keys(), m) != row(k2, r));
    // then the second: its keys follow
    s.after_step(fx.net, fx.head, std::move(t2), ssl::target_step{1, 2});
    CHECK(s.pointer() == 8);
    for (std::size_t r = 0; r < 4; ++r) {
        CHECK(row(s.keys(), r) == row(k1, r));
        CHECK(row(s.keys(), 4 + r) == row(k2, r));
    }
    for (std::size_t r = 8; r < 10; ++r) CHECK(row(s.keys(), r) == row(before, r));
    CHECK(s.steps() == 2);
}

TEST_CASE("queue: symmetric encodes both views and enqueues view 0's keys, then view 1's") {
    fixture fx;
    state_t s({.size = 16, .shuffle_bn_groups = 2, .symmetric = true}, fx.net, fx.head);
    auto t = s.keys({images(4, 1), images(4, 2)});
    REQUIRE(t.keys[0].defined());
    REQUIRE(t.keys[1].defined());
    const auto k0 = t.keys[0].clone(), k1 = t.keys[1].clone();
    s.after_step(fx.net, fx.head, std::move(t), ssl::target_step{0, 1});
    CHECK(s.pointer() == 8);
    for (std::size_t r = 0; r < 4; ++r) {
        CHECK(row(s.keys(), r) == row(k0, r));
        CHECK(row(s.keys(), 4 + r) == row(k1, r));
    }
}

TEST_CASE("queue: the key encoder follows by momentum (constant m, or BYOL's cosine schedule)") {
    fixture fx;
    state_t s({.size = 4, .momentum = 0.9}, fx.net, fx.head);
    auto on = ssl::parameter_list<float>(fx.net), tg = ssl::parameter_list<float>(s.backbone());
    auto hon = ssl::parameter_list<float>(fx.head), htg = ssl::parameter_list<float>(s.head());
    const float t0 = tg[0]->value[0], o0 = on[0]->value[0], h0 = htg.back()->value[0];
    on[0]->value[0] = o0 + 1.0f;
    hon.back()->value[0] += 2.0f;
    const float hn = hon.back()->value[0];
    s.after_step(fx.net, fx.head, {}, ssl::target_step{0, 100});
    CHECK(s.momentum() == doctest::Approx(0.9));
    CHECK(tg[0]->value[0] == doctest::Approx(0.9 * t0 + 0.1 * (o0 + 1.0)));
    CHECK(htg.back()->value[0] == doctest::Approx(0.9 * h0 + 0.1 * hn));
    s.after_step(fx.net, fx.head, {}, ssl::target_step{70, 100});  // constant: m whatever the step
    CHECK(s.momentum() == doctest::Approx(0.9));
    state_t c({.size = 4, .momentum = 0.9, .cosine_schedule = true}, fx.net, fx.head);
    c.after_step(fx.net, fx.head, {}, ssl::target_step{50, 100});
    CHECK(c.momentum() == doctest::Approx(ssl::target::ema_tau({0.9, true}, 50, 100)));
    CHECK(c.momentum() == doctest::Approx(0.95));
}

TEST_CASE("queue: shuffle BN groups: a random partition, sizes within 1, new every step") {
    fixture fx;
    state_t s({.size = 8, .shuffle_bn_groups = 4, .seed = 2}, fx.net, fx.head);
    auto g = s.bn_groups(10);
    REQUIRE(g.size() == 4);
    std::vector<std::size_t> sizes, all;
    for (const auto& grp : g) {
        sizes.push_back(grp.size());
        all.insert(all.end(), grp.begin(), grp.end());
    }
    CHECK(sizes == std::vector<std::size_t>{3, 3, 2, 2});  // 10 = 3 + 3 + 2 + 2: the remainder goes first
    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i < 10; ++i) CHECK(all[i] == i);  // every sample in exactly one group
    CHECK(s.bn_groups(10) == g);                              // a function of (seed, step, view)
    CHECK(s.bn_groups(10, 0) != g);                           // each view its own shuffle
    s.after_step(fx.net, fx.head, {}, ssl::target_step{0, 1});
    CHECK(s.bn_groups(10) != g);                              // a new shuffle every step
    // the groups are not the batch order cut in pieces (over a few steps)
    bool shuffled = false;
    for (int k = 0; k < 4; ++k, s.after_step(fx.net, fx.head, {}, ssl::target_step{0, 1}))
        for (const auto& grp : s.bn_groups(10)) shuffled = shuffled || !std::is_sorted(grp.begin(), grp.end());
    CHECK(shuffled);
    // G is lowered so that every group has at least 2 samples; G = 1 is the whole batch in order
    CHECK(s.bn_groups(5).size() == 2);
    CHECK(s.bn_groups(3).size() == 1);
    state_t one({.size = 8, .shuffle_bn_groups = 1}, fx.net, fx.head);
    auto g1 = one.bn_groups(6);
    REQUIRE(g1.size() == 1);
    CHECK(g1[0] == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("queue: shuffle BN: a key is normalized with its group's statistics only, never the query's batch") {
    fixture fx;
    state_t s({.size = 8, .shuffle_bn_groups = 3, .seed = 7}, fx.net, fx.head);
    const std::size_t B = 9;
    auto x = images(B, 31);
    const auto groups = s.bn_groups(B);
    REQUIRE(groups.size() == 3);
    auto keys = s.encode(x);
    REQUIRE(keys.shape() == ssl::shape_t{B, 4});
    // (1) the key of sample i is the key encoder's output on i's group alone,
    //     put back at position i
    for (const auto& grp : groups) {
        auto ref = reference_keys(s, gather(x, grp));
        for (std::size_t r = 0; r < grp.size(); ++r)
            for (std::size_t j = 0; j < 4; ++j) CHECK(keys.at(grp[r], j) == doctest::Approx(ref.at(r, j)).epsilon(1e-6));
    }
    // (2) an image outside i's group does not influence key i at all; one
    //     inside does (through the group's batch statistics)
    const std::size_t i = groups[0][0], other = groups[1][0], mate = groups[0][1];
    auto x2 = x.clone();
    for (std::size_t p = 0; p < 64; ++p) x2[other * 64 + p] += 3.0f;
    auto keys2 = s.encode(x2);
    CHECK(row(keys2, i) == row(keys, i));
    CHECK(row(keys2, other) != row(keys, other));
    auto x3 = x.clone();
    for (std::size_t p = 0; p < 64; ++p) x3[mate * 64 + p] += 3.0f;
    CHECK(row(s.encode(x3), i) != row(keys, i));
    // (3) the query encoder normalizes view 0 over the whole batch; the keys
    //     are not what whole-batch statistics give (no key shares them)
    auto whole = reference_keys(s, x);
    for (std::size_t r = 0; r < B; ++r) {
        double diff = 0;
        for (std::size_t j = 0; j < 4; ++j) diff = std::max(diff, double(std::abs(whole.at(r, j) - keys.at(r, j))));
        CHECK(diff > 1e-4);
    }
    // G = 1 (MoCo's ablation without shuffle): exactly the whole-batch keys
    state_t one({.size = 8, .shuffle_bn_groups = 1}, fx.net, fx.head);
    auto k1 = one.encode(x);
    for (std::size_t r = 0; r < B * 4; ++r) CHECK(k1[r] == doctest::Approx(whole[r]).epsilon(1e-6));
}

TEST_CASE("queue: checkpoint round trip of queue, pointer, step count and key encoder") {
    fixture fx;
    const auto path =
        std::filesystem::temp_directory_path() / ("ssl_queue_test_" + std::to_string(::getpid()) + ".safetensors");
    state_t a({.size = 7, .momentum = 0.9, .shuffle_bn_groups = 2, .seed = 1}, fx.net, fx.head);
    for (std::size_t step = 0; step < 2; ++step) {
        auto t = a.keys({images(4, step), images(4, 50 + step)});
        for (auto* p : ssl::parameter_list<float>(fx.net)) p->value[0] += 0.1f;  // the online network moves
        a.after_step(fx.net, fx.head, std::move(t), ssl::target_step{step, 10});
    }
    REQUIRE(a.pointer() == 1);
    state_module ma{a};
    ssl::save_checkpoint(path, ma);
    // a fresh state (same configuration, as a resumed run has): queue, pointer,
    // step count and key encoder come from the file
    fixture fy;
    state_t b({.size = 7, .momentum = 0.9, .shuffle_bn_groups = 2, .seed = 1}, fy.net, fy.head);
    CHECK_FALSE(std::equal(a.keys().begin(), a.keys().end(), b.keys().begin()));
    const auto& wa = ssl::parameter_list<float>(a.backbone())[0]->value;
    const auto& wb = ssl::parameter_list<float>(b.backbone())[0]->value;
    CHECK(wa[0] != wb[0]);
    state_module mb{b};
    auto rep = ssl::load_checkpoint(path, mb);
    CHECK(rep.complete());
    CHECK(std::equal(a.keys().begin(), a.keys().end(), b.keys().begin()));
    CHECK(b.pointer() == 1);
    CHECK(b.steps() == 2);
    CHECK(wa[0] == wb[0]);
    std::vector<std::string> names;
    b.for_each_state([&](const std::string& n, auto&) { names.push_back(n); }, "target");
    CHECK(names[0] == "target.queue");
    CHECK(names[1] == "target.queue_ptr");
    CHECK(names[2] == "target.steps");
    CHECK(names.size() > 100);  // and the key encoder's parameters and buffers
    // the two continue identically: same BN shuffle, same keys, same queue
    auto x0 = images(4, 70), x1 = images(4, 71);
    auto ta = a.keys({x0, x1});
    auto tb = b.keys({x0, x1});
    CHECK(a.bn_groups(4) == b.bn_groups(4));
    CHECK(std::equal(ta.keys[1].begin(), ta.keys[1].end(), tb.keys[1].begin()));
    a.after_step(fx.net, fx.head, std::move(ta), ssl::target_step{2, 10});
    b.after_step(fx.net, fx.head, std::move(tb), ssl::target_step{2, 10});
    CHECK(std::equal(a.keys().begin(), a.keys().end(), b.keys().begin()));
    CHECK(b.pointer() == 5);
    // a queue of another size does not load
    state_t c({.size = 8}, fy.net, fy.head);
    state_module mc{c};
    CHECK_THROWS_AS(ssl::load_checkpoint(path, mc), ssl::io_error);
    std::filesystem::remove(path);
}

TEST_CASE("queue: bad configuration and input") {
    fixture fx;
    CHECK_THROWS_AS(state_t({.size = 0}, fx.net, fx.head), ssl::value_error);
    CHECK_THROWS_AS(state_t({.size = 4, .momentum = 1.5}, fx.net, fx.head), ssl::value_error);
    CHECK_THROWS_AS(state_t({.size = 4, .momentum = -0.1}, fx.net, fx.head), ssl::value_error);
    CHECK_THROWS_AS(state_t({.size = 4, .shuffle_bn_groups = 0}, fx.net, fx.head), ssl::value_error);
    state_t s({.size = 4}, fx.net, fx.head);
    CHECK_THROWS_AS(s.keys({images(4, 1)}), ssl::value_error);
    CHECK_THROWS_AS(s.keys({images(4, 1), images(4, 2), images(4, 3)}), ssl::value_error);
    CHECK_THROWS_AS(s.keys({images(4, 1), images(6, 2)}), ssl::shape_error);
    // the same through targets(target_input)
    const std::vector<ssl::tensor<float>> online;
    ssl::view_batch<float> one{{images(4, 1)}, {}};
    CHECK_THROWS_AS(s.targets(ssl::target_input<float>{one, online}), ssl::value_error);
    ssl::view_batch<float> uneven{{images(4, 1), images(6, 2)}, {}};
    CHECK_THROWS_AS(s.targets(ssl::target_input<float>{uneven, online}), ssl::shape_error);
}

}  // namespace test_queue
