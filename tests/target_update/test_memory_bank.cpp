#include <doctest/doctest.h>

#include <ssl/backbone/resnet.hpp>
#include <ssl/core/thread_pool.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/head/embedding.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/loss/nce.hpp>
#include <ssl/target_update/memory_bank.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unistd.h>
#include <vector>

namespace test_memory_bank {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using net_t = ssl::resnet18<float>;
using head_t = ssl::head::embedding<float>;
using bank_state = ssl::target::memory_bank::state<net_t, head_t>;

namespace {

double row_norm(const tensor<float>& t, std::size_t i) {
    const std::size_t d = t.dim(1);
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) s += double(t.data()[i * d + j]) * t.data()[i * d + j];
    return std::sqrt(s);
}

struct nets {
    net_t backbone{{.in_channels = 1, .width = 2, .stem = ssl::stem::cifar}};
    head_t head{{8}, backbone.output_dim(), 1};
};

/// The state seen as a module, for save_checkpoint / load_checkpoint.
struct state_module {
    bank_state& s;
    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        s.for_each_state(f, p);
    }
};

/// The bank and the NCE loss, named as a method checkpoints them
/// ("target.*", "loss.*").
struct bank_and_loss_module {
    bank_state& s;
    ssl::loss::instance_nce& loss;
    template <class F>
    void for_each_parameter(F&&, const std::string&) {}
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        s.for_each_state(f, ssl::join_name(p, "target"));
        loss.for_each_state(f, ssl::join_name(p, "loss"));
    }
};

tensor<float> unit_features(std::size_t b, std::size_t d, std::uint64_t seed) {
    tensor<float> f({b, d});
    ssl::philox g(seed, 1);
    for (auto& v : f) v = static_cast<float>(g.normal());
    for (std::size_t i = 0; i < b; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += double(f.at(i, j)) * f.at(i, j);
        for (std::size_t j = 0; j < d; ++j) f.at(i, j) = static_cast<float>(f.at(i, j) / std::sqrt(s));
    }
    return f;
}

}  // namespace

TEST_CASE("memory_bank: init is uniform then normalized, per-row deterministic, thread independent") {
    tensor<float> a({5000, 16}), b({5000, 16}), c({5000, 16});
    ssl::target::init_bank(a, 7);
    const std::size_t threads = ssl::num_threads();
    ssl::set_num_threads(threads == 1 ? 2 : 1);
    ssl::target::init_bank(b, 7);
    ssl::set_num_threads(threads);
    ssl::target::init_bank(c, 8);
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
    CHECK_FALSE(std::equal(a.begin(), a.end(), c.begin()));
    double mean = 0, sq = 0;
    double worst = 0;
    for (std::size_t i = 0; i < 5000; ++i) worst = std::max(worst, std::abs(row_norm(a, i) - 1.0));
    CHECK(worst < 1e-6);
    float largest = 0;
    for (float v : a) mean += v, sq += double(v) * v, largest = std::max(largest, std::abs(v));
    mean /= double(a.numel());
    CHECK(std::abs(mean) < 0.01);
    CHECK(sq / double(a.numel()) == doctest::Approx(1.0 / 16).epsilon(1e-3));  // unit rows: mean square 1/d
    // uniform before the normalization: every entry within sqrt(3/d) / (smallest row norm), well inside 1
    CHECK(largest < 0.9f);
}

TEST_CASE("memory_bank: the update formula exactly, other rows untouched") {
    // bank row 1 = (1, 0), row 3 = (0, 1); f = (0, 1) for id 1, (0.6, 0.8) for id 3, m = 0.5:
    //   v1 <- normalize(0.5 (1, 0) + 0.5 (0, 1)) = (1, 1) / sqrt 2
    //   v3 <- normalize(0.5 (0, 1) + 0.5 (0.6, 0.8)) = (0.3, 0.9) / sqrt(0.9)
    auto bank = tensor<double>::from({4, 2}, {5, 5, 1, 0, 7, 7, 0, 1});
    auto f = tensor<double>::from({2, 2}, {0, 1, 0.6, 0.8});
    std::vector<std::size_t> ids{1, 3};
    ssl::target::update_bank(bank, ids, f, 0.5);
    CHECK(bank.at(1, 0) == doctest::Approx(1 / std::sqrt(2.0)).epsilon(1e-15));
    CHECK(bank.at(1, 1) == doctest::Approx(1 / std::sqrt(2.0)).epsilon(1e-15));
    CHECK(bank.at(3, 0) == doctest::Approx(0.3 / std::sqrt(0.9)).epsilon(1e-15));
    CHECK(bank.at(3, 1) == doctest::Approx(0.9 / std::sqrt(0.9)).epsilon(1e-15));
    CHECK(bank.at(0, 0) == 5);
    CHECK(bank.at(2, 1) == 7);
    // momentum 0.9 on a general row, against the formula
    auto b2 = tensor<double>::from({1, 3}, {0.2, -0.4, 0.1});
    auto f2 = tensor<double>::from({1, 3}, {0.5, 0.5, -0.7});
    std::vector<std::size_t> id0{0};
    ssl::target::update_bank(b2, id0, f2, 0.9);
    const double u[3] = {0.9 * 0.2 + 0.1 * 0.5, 0.9 * -0.4 + 0.1 * 0.5, 0.9 * 0.1 + 0.1 * -0.7};
    const double nu = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    for (std::size_t j = 0; j < 3; ++j) CHECK(b2.at(0, j) == doctest::Approx(u[j] / nu).epsilon(1e-15));
    // a repeated id is updated twice, in batch order
    auto b3 = tensor<double>::from({1, 2}, {1, 0});
    auto f3 = tensor<double>::from({2, 2}, {0, 1, 0, 1});
    std::vector<std::size_t> twice{0, 0};
    ssl::target::update_bank(b3, twice, f3, 0.5);
    // (1,0) -> (1,1)/sqrt2 -> normalize((1,1)/(2 sqrt2) + (0, 0.5))
    const double x = 0.5 / std::sqrt(2.0), y = 0.5 / std::sqrt(2.0) + 0.5, ny = std::sqrt(x * x + y * y);
    CHECK(b3.at(0, 0) == doctest::Approx(x / ny).epsilon(1e-15));
    CHECK(b3.at(0, 1) == doctest::Approx(y / ny).epsilon(1e-15));
    CHECK_THROWS_AS(ssl::target::update_bank(bank, std::vector<std::size_t>{4, 0}, f, 0.5), ssl::shape_error);
    CHECK_THROWS_AS(ssl::target::update_bank(bank, std::vector<std::size_t>{0}, f, 0.5), ssl::shape_error);
}

TEST_CASE("memory_bank: with written flags, a row's first write replaces its random initialization") {
    // rows 0 and 2 hold memories (flag 1), row 1 does not (flag 0); m = 0.5
    auto bank = tensor<double>::from({3, 2}, {1, 0, 1, 0, 0, 1});
    auto f = tensor<double>::from({2, 2}, {0, 2, 3, 4});
    const std::vector<std::uint8_t> written{1, 0, 1};
    std::vector<std::size_t> ids{1, 2};
    ssl::target::update_bank(bank, ids, f, 0.5, written);
    CHECK(bank.at(1, 0) == 0);  // normalize((0, 2)): no trace of the old (1, 0)
    CHECK(bank.at(1, 1) == doctest::Approx(1.0).epsilon(1e-15));
    // row 2 mixes: normalize(0.5 (0, 1) + 0.5 (3, 4)) = (1.5, 2.5) / |.|
    const double n2 = std::sqrt(1.5 * 1.5 + 2.5 * 2.5);
    CHECK(bank.at(2, 0) == doctest::Approx(1.5 / n2).epsilon(1e-15));
    CHECK(bank.at(2, 1) == doctest::Approx(2.5 / n2).epsilon(1e-15));
    CHECK(bank.at(0, 0) == 1);
    const std::vector<std::uint8_t> short_flags{1, 0};
    CHECK_THROWS_AS(ssl::target::update_bank(bank, ids, f, 0.5, short_flags), ssl::shape_error);
}

TEST_CASE("memory_bank state: replace_first stores the first feature as is, then mixes") {
    nets nw;
    bank_state st({.instances = 4, .dim = 8, .negatives = 2, .replace_first = true}, nw.backbone, nw.head);
    std::vector<std::size_t> ids{2, 0};
    auto f1 = unit_features(2, 8, 7), f2 = unit_features(2, 8, 8);
    st.after_step(nw.backbone, nw.head, st.targets(ids, f1), ssl::target_step{0, 3, 0});
    for (std::size_t j = 0; j < 8; ++j) CHECK(st.bank().at(2, j) == doctest::Approx(f1.at(0, j)).epsilon(1e-6));
    st.after_step(nw.backbone, nw.head, st.targets(ids, f2), ssl::target_step{1, 3, 0});
    auto expect = tensor<float>::from({1, 8}, std::span<const float>(f1.data(), 8));
    auto g = tensor<float>::from({1, 8}, std::span<const float>(f2.data(), 8));
    std::vector<std::size_t> one{0};
    ssl::target::update_bank(expect, one, g, 0.5);  // the second write: the momentum update
    for (std::size_t j = 0; j < 8; ++j) CHECK(st.bank().at(2, j) == doctest::Approx(expect.at(0, j)).epsilon(1e-6));
}

TEST_CASE("memory_bank: negatives are uniform, reproducible per (seed, step, sample), thread independent") {
    const std::size_t n = 10, B = 50, m = 400;
    std::vector<std::uint32_t> a(B * m), b(B * m), c(B * m), d(B * m);
    ssl::target::sample_negatives(a, B, m, n, 3, 17);
    const std::size_t threads = ssl::num_threads();
    ssl::set_num_threads(threads == 1 ? 2 : 1);
    ssl::target::sample_negatives(b, B, m, n, 3, 17);
    ssl::set_num_threads(threads);
    ssl::target::sample_negatives(c, B, m, n, 3, 18);
    ssl::target::sample_negatives(d, B, m, n, 4, 17);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a != d);
    std::vector<double> count(n);
    REQUIRE(*std::max_element(a.begin(), a.end()) < n);
    for (auto v : a) count[v] += 1;
    // chi-square with 9 degrees of freedom: 99.99th percentile about 33.7
    double chi = 0;
    const double expect = double(B * m) / double(n);
    for (double k : count) chi += (k - expect) * (k - expect) / expect;
    CHECK(chi < 34);
    // every sample has its own draws
    CHECK(!std::equal(a.begin(), a.begin() + m, a.begin() + m));
    // bad sizes
    CHECK_THROWS_AS(ssl::target::sample_negatives(a, B, m + 1, n, 3, 17), ssl::shape_error);
    CHECK_THROWS_AS(ssl::target::sample_negatives(a, B, m, 0, 3, 17), ssl::value_error);
}

TEST_CASE("memory_bank state: targets reference the bank, after_step updates it in place") {
    nets nw;
    ssl::target::memory_bank_config cfg{.instances = 100, .dim = 8, .momentum = 0.5, .negatives = 16, .seed = 5};
    bank_state st(cfg, nw.backbone, nw.head);
    ssl::loss::instance_nce loss({.temperature = 0.1, .z = ssl::loss::z_estimate::first_batch});
    const float* data = st.bank().data();
    const tensor<float> before = st.bank().clone();
    CHECK(loss.z() == 0);
    CHECK(st.step() == 0);
    for (std::size_t i = 0; i < 100; ++i) CHECK(row_norm(st.bank(), i) == doctest::Approx(1.0).epsilon(1e-6));

    std::vector<std::size_t> ids{3, 50, 99, 0};
    const tensor<float> online0 = unit_features(4, 8, 9);
    auto t = st.targets(ids, online0);
    CHECK(t.bank == &st.bank());  // a reference, not a copy
    CHECK(t.bank->data() == data);
    CHECK(t.ids == ids);
    REQUIRE(t.features.shape() == online0.shape());  // view 0's online output, for after_step
    CHECK(std::equal(online0.begin(), online0.end(), t.features.begin()));
    CHECK(t.negatives == 16);
    CHECK_FALSE(t.filled);
    REQUIRE(t.noise.size() == 4 * 16);
    for (auto j : t.noise) CHECK(j < 100);
    std::vector<std::uint32_t> want(4 * 16);
    ssl::target::sample_negatives(want, 4, 16, 100, 5, 0);
    CHECK(std::equal(want.begin(), want.end(), t.noise.begin()));
    // the same step draws the same noise; the loss estimates Z from the batch and keeps it
    std::vector<std::uint32_t> first(t.noise.begin(), t.noise.end());
    auto t2 = st.targets(ids, online0);
    CHECK(std::equal(first.begin(), first.end(), t2.noise.begin()));
    loss.compute({online0}, t2, {});
    const double z0 = loss.z();
    CHECK(z0 > 0);
    CHECK(z0 == ssl::loss::nce<float>({.temperature = 0.1}).estimate_z(online0, st.bank(), t2.noise));
    // targets(target_input): ids from the view batch, features from view 0's online output
    ssl::view_batch<float> vb{{tensor<float>::zeros({4, 1, 8, 8})}, {}};
    vb.ids = ids;
    const std::vector<tensor<float>> online{online0};
    auto t3 = st.targets(ssl::target_input<float>{vb, online, 0, 10, 0});
    CHECK(t3.ids == ids);
    REQUIRE(t3.features.shape() == online0.shape());
    CHECK(std::equal(online0.begin(), online0.end(), t3.features.begin()));
    CHECK(std::equal(first.begin(), first.end(), t3.noise.begin()));
    const std::vector<tensor<float>> no_online;
    CHECK_THROWS_AS(st.targets(ssl::target_input<float>{vb, no_online, 0, 10, 0}), ssl::value_error);

    // after_step: the batch's rows follow the features, the others stay
    CHECK_FALSE(st.after_step(nw.backbone, nw.head, std::move(t3), ssl::target_step{0, 10, 0}).data_pass);
    CHECK(st.bank().data() == data);  // updated in place
    CHECK(st.step() == 1);
    tensor<float> expect = before.clone();
    ssl::target::update_bank(expect, ids, online0, 0.5);
    CHECK(std::equal(expect.begin(), expect.end(), st.bank().begin()));
    std::size_t changed_rows = 0;
    for (std::size_t i = 0; i < 100; ++i) {
        bool changed = false;
        for (std::size_t j = 0; j < 8; ++j) changed |= st.bank().at(i, j) != before.at(i, j);
        changed_rows += changed;
        CHECK(row_norm(st.bank(), i) == doctest::Approx(1.0).epsilon(1e-6));
    }
    CHECK(changed_rows == 4);
    // the next step draws new noise
    auto t4 = st.targets(ids, online0);
    CHECK_FALSE(std::equal(first.begin(), first.end(), t4.noise.begin()));

    // many steps: rows stay unit, the storage is the same; the loss keeps its Z
    for (std::size_t s = 1; s < 30; ++s) {
        std::vector<std::size_t> b{s, s + 30, s + 60};
        const auto o = unit_features(3, 8, 100 + s);
        auto tb = st.targets(b, o);
        loss.compute({o}, tb, {});
        st.after_step(nw.backbone, nw.head, std::move(tb), ssl::target_step{s, 30, 0});
    }
    CHECK(st.bank().data() == data);
    CHECK(st.step() == 30);
    for (std::size_t i = 0; i < 100; ++i) CHECK(row_norm(st.bank(), i) == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(loss.z() == z0);  // nothing in the bank changes Z

    // bad ids, features that do not fit the ids or the bank
    CHECK_THROWS_AS(st.targets(std::vector<std::size_t>{1, 2, 3, 100}, online0), ssl::shape_error);
    CHECK_THROWS_AS(st.targets(std::vector<std::size_t>{1, 2}, online0), ssl::shape_error);
    CHECK_THROWS_AS(st.targets(ids, unit_features(4, 7, 1)), ssl::shape_error);
    // after_step needs a batch from targets(): features to store
    CHECK_THROWS_AS(st.after_step(nw.backbone, nw.head, ssl::target::bank_targets<float>{}, ssl::target_step{30, 31, 0}),
                    ssl::value_error);
    CHECK(st.step() == 30);
}

TEST_CASE("memory_bank state: after_step stores exactly the features the batch carries, for the batch's ids") {
    nets nw;
    bank_state st({.instances = 20, .dim = 8, .negatives = 4, .seed = 3}, nw.backbone, nw.head);
    const tensor<float> before = st.bank().clone();
    std::vector<std::size_t> ids{1, 7, 12};
    const auto seen = unit_features(3, 8, 21), carried = unit_features(3, 8, 22), later = unit_features(2, 8, 23);
    auto t = st.targets(ids, seen);
    t.features = carried;  // the batch is what after_step reads, not what targets() saw
    // another targets() call in between (its ids and features) does not leak into the consumed batch
    std::vector<std::size_t> other{2, 7};
    auto t_other = st.targets(other, later);
    (void)t_other;
    st.after_step(nw.backbone, nw.head, std::move(t), ssl::target_step{0, 5, 0});
    tensor<float> expect = before.clone();
    ssl::target::update_bank(expect, ids, carried, 0.5);
    CHECK(std::equal(expect.begin(), expect.end(), st.bank().begin()));
    for (std::size_t i = 0; i < 20; ++i) CHECK(st.written()[i] == (i == 1 || i == 7 || i == 12 ? 1 : 0));
    for (std::size_t j = 0; j < 8; ++j) CHECK(st.bank().at(2, j) == before.at(2, j));  // only in the other batch
    // the same features at other ids: the ids travel in the batch too
    auto t2 = st.targets(ids, seen);
    t2.ids = {4, 5, 6};
    const tensor<float> mid = st.bank().clone();
    st.after_step(nw.backbone, nw.head, std::move(t2), ssl::target_step{1, 5, 0});
    tensor<float> expect2 = mid.clone();
    ssl::target::update_bank(expect2, std::vector<std::size_t>{4, 5, 6}, seen, 0.5);
    CHECK(std::equal(expect2.begin(), expect2.end(), st.bank().begin()));
    for (std::size_t i : {1, 7, 12}) CHECK(st.written()[i] == 1);
    for (std::size_t i : {4, 5, 6}) CHECK(st.written()[i] == 1);
    CHECK(st.written()[2] == 0);
    CHECK(st.step() == 2);
}

TEST_CASE("memory_bank state: no negatives for the full softmax") {
    nets nw;
    bank_state st({.instances = 10, .dim = 8, .negatives = 0}, nw.backbone, nw.head);
    std::vector<std::size_t> ids{1, 2};
    auto t = st.targets(ids, unit_features(2, 8, 1));
    CHECK(t.noise.empty());
    CHECK(t.negatives == 0);
}

TEST_CASE("memory_bank state: config errors, data set size checked at begin_epoch") {
    nets nw;
    CHECK_THROWS_AS(bank_state({.instances = 0, .dim = 8}, nw.backbone, nw.head), ssl::value_error);
    try {
        bank_state({.instances = 0, .dim = 8}, nw.backbone, nw.head);
    } catch (const ssl::error& e) {
        CHECK(std::string(e.what()).find("instances") != std::string::npos);
    }
    CHECK_THROWS_AS(bank_state({.instances = 10, .dim = 128}, nw.backbone, nw.head), ssl::value_error);  // head is 8-d
    CHECK_THROWS_AS(bank_state({.instances = 10, .dim = 8, .momentum = 1.5}, nw.backbone, nw.head), ssl::value_error);

    bank_state st({.instances = 12, .dim = 8}, nw.backbone, nw.head);
    auto data = ssl::data::synthetic({.size = 12, .classes = 2, .height = 8, .width = 8}).to_dataset();
    auto other = ssl::data::synthetic({.size = 13, .classes = 2, .height = 8, .width = 8}).to_dataset();
    auto id = [](const tensor<float>& x) { return x; };
    ssl::epoch_context<net_t, head_t> ok{nw.backbone, nw.head, 16, data, 0, 0, false, id};
    CHECK(!st.begin_epoch(ok).order);
    ssl::epoch_context<net_t, head_t> bad{nw.backbone, nw.head, 16, other, 0, 0, false, id};
    CHECK_THROWS_AS(st.begin_epoch(bad), ssl::value_error);
}

TEST_CASE("memory_bank state: checkpoint round trip restores bank, step and written flags in place; Z with the loss") {
    nets nw;
    const auto path = std::filesystem::temp_directory_path() / ("ssl_bank_" + std::to_string(::getpid()) + ".safetensors");
    bank_state a({.instances = 40, .dim = 8, .negatives = 8, .seed = 1}, nw.backbone, nw.head);
    ssl::loss::instance_nce la({.temperature = 0.1});
    std::vector<std::size_t> ids{1, 2, 3};
    const auto o = unit_features(3, 8, 3);
    auto t = a.targets(ids, o);
    la.compute({o}, t, {});  // the loss estimates Z from this batch
    REQUIRE(la.z() > 0);
    a.after_step(nw.backbone, nw.head, std::move(t), ssl::target_step{6, 10, 0});
    std::vector<std::string> names;
    a.for_each_state([&](const std::string& n, auto&) { names.push_back(n); }, "target");
    CHECK(names == std::vector<std::string>{"target.bank", "target.step", "target.written"});  // Z is the loss's
    bank_and_loss_module ma{a, la};
    ssl::save_checkpoint(path, ma);
    CHECK(ssl::io::read_safetensors(path).tensors.contains("loss.z"));

    bank_state b({.instances = 40, .dim = 8, .negatives = 8, .seed = 1}, nw.backbone, nw.head);
    ssl::loss::instance_nce lb({.temperature = 0.1});
    ssl::target::init_bank(b.bank(), 99);  // another bank
    const float* data = b.bank().data();
    CHECK_FALSE(std::equal(a.bank().begin(), a.bank().end(), b.bank().begin()));
    bank_and_loss_module mb{b, lb};
    ssl::load_checkpoint(path, mb);
    CHECK(b.bank().data() == data);  // restored into the existing storage
    CHECK(std::equal(a.bank().begin(), a.bank().end(), b.bank().begin()));
    CHECK(lb.z() == la.z());
    CHECK(b.step() == 7);
    for (std::size_t i = 0; i < 40; ++i) CHECK(b.written()[i] == (i >= 1 && i <= 3 ? 1 : 0));
    auto ta = a.targets(ids, o);
    std::vector<std::uint32_t> na(ta.noise.begin(), ta.noise.end());
    auto tb = b.targets(ids, o);
    CHECK(std::equal(na.begin(), na.end(), tb.noise.begin()));  // the resumed state draws the same noise
    // a bank of another size does not load
    bank_state c({.instances = 41, .dim = 8}, nw.backbone, nw.head);
    state_module mc{c};
    CHECK_THROWS_AS(ssl::load_checkpoint(path, mc), ssl::io_error);
    std::filesystem::remove(path);
}

TEST_CASE("memory_bank state: which rows hold a memory, and when the loss estimates Z") {
    nets nw;
    // One step: the bank's batch for ids, the loss on it, after_step. Returns
    // whether the loss estimated Z from this batch (the Z it holds is the
    // estimate from this batch's noise against the bank as the loss saw it)
    // and the Z it holds after the step.
    struct outcome {
        bool estimated;
        double z;
    };
    auto step = [&](bank_state& st, ssl::loss::instance_nce& loss, std::size_t s, std::vector<std::size_t> ids) {
        const auto f = unit_features(2, 8, 40 + s);
        auto t = st.targets(ids, f);
        REQUIRE(t.has_memory.size() == 6);
        CHECK(t.has_memory.data() == st.written().data());
        CHECK(t.filled == st.filled());  // the bank says whether every row holds a memory
        const double fresh = ssl::loss::nce<float>({.temperature = loss.config().temperature}).estimate_z(f, st.bank(), t.noise);
        const double held = loss.z();
        REQUIRE(fresh != held);
        loss.compute({f}, t, {});
        st.after_step(nw.backbone, nw.head, std::move(t), ssl::target_step{s, 3, 0});
        CHECK((loss.z() == fresh || loss.z() == held));
        return outcome{loss.z() == fresh, loss.z()};
    };
    SUBCASE("until_filled (the default): every batch re-estimates until each row was written once") {
        bank_state st({.instances = 6, .dim = 8, .negatives = 4}, nw.backbone, nw.head);
        ssl::loss::instance_nce loss;
        for (std::size_t i = 0; i < 6; ++i) CHECK(st.written()[i] == 0);
        CHECK_FALSE(st.filled());
        CHECK(step(st, loss, 0, {0, 1}).estimated);  // not estimated yet
        CHECK(st.written()[0] == 1);
        CHECK(st.written()[1] == 1);
        CHECK(st.written()[2] == 0);
        CHECK(step(st, loss, 1, {2, 1}).estimated);  // rows 3..5 still random: estimated afresh
        CHECK(step(st, loss, 2, {3, 4}).estimated);
        CHECK_FALSE(st.filled());
        const auto last = step(st, loss, 3, {5, 0});  // the last unwritten row: Z from this batch
        CHECK(last.estimated);
        CHECK(st.filled());
        const auto r4 = step(st, loss, 4, {1, 2});  // from now on fixed
        CHECK_FALSE(r4.estimated);
        CHECK(r4.z == last.z);
        const auto r5 = step(st, loss, 5, {3, 4});
        CHECK_FALSE(r5.estimated);
        CHECK(loss.z() == last.z);
    }
    SUBCASE("first_batch (the paper's text): estimated once") {
        bank_state st({.instances = 6, .dim = 8, .negatives = 4}, nw.backbone, nw.head);
        ssl::loss::instance_nce loss({.z = ssl::loss::z_estimate::first_batch});
        const auto r0 = step(st, loss, 0, {0, 1});
        CHECK(r0.estimated);
        CHECK_FALSE(step(st, loss, 1, {2, 3}).estimated);
        CHECK_FALSE(step(st, loss, 2, {4, 5}).estimated);
        CHECK(loss.z() == r0.z);
    }
    SUBCASE("every_batch: estimated afresh from every batch, before and after the bank is filled") {
        bank_state st({.instances = 6, .dim = 8, .negatives = 4}, nw.backbone, nw.head);
        ssl::loss::instance_nce loss({.z = ssl::loss::z_estimate::every_batch});
        CHECK(step(st, loss, 0, {0, 1}).estimated);
        CHECK(step(st, loss, 1, {2, 3}).estimated);
        CHECK(step(st, loss, 2, {4, 5}).estimated);
        CHECK(st.filled());
        CHECK(step(st, loss, 3, {0, 1}).estimated);  // filled, still estimated
    }
    SUBCASE("a restored bank that is not yet filled keeps estimating") {
        const auto path = std::filesystem::temp_directory_path() /
                          ("ssl_bank_fill_" + std::to_string(::getpid()) + ".safetensors");
        bank_state a({.instances = 6, .dim = 8, .negatives = 4}, nw.backbone, nw.head);
        ssl::loss::instance_nce la;
        step(a, la, 0, {0, 1});
        const double za = step(a, la, 1, {2, 3}).z;
        bank_and_loss_module ma{a, la};
        ssl::save_checkpoint(path, ma);
        bank_state b({.instances = 6, .dim = 8, .negatives = 4}, nw.backbone, nw.head);
        ssl::loss::instance_nce lb;
        step(b, lb, 0, {0, 1});
        step(b, lb, 1, {2, 3});
        step(b, lb, 2, {4, 5});  // b is filled, Z fixed from this batch
        CHECK(b.filled());
        CHECK_FALSE(step(b, lb, 3, {0, 1}).estimated);
        bank_and_loss_module mb{b, lb};
        ssl::load_checkpoint(path, mb);  // back to a's state: rows 4, 5 unwritten, a's Z
        CHECK_FALSE(b.filled());
        CHECK(lb.z() == za);
        const auto r = step(b, lb, 2, {4, 5});
        CHECK(r.estimated);
        CHECK(b.filled());
        const auto r3 = step(b, lb, 3, {0, 1});
        CHECK_FALSE(r3.estimated);
        CHECK(r3.z == r.z);
        std::filesystem::remove(path);
    }
}

TEST_CASE("memory_bank state: feature_init fills the bank with the initial network's normalised head outputs, once") {
    nets nw;
    nw.backbone.train(true);
    nw.head.train(true);
    const std::size_t n = 40, d = 8;
    auto data = ssl::data::synthetic({.size = n, .classes = 4, .height = 8, .width = 8, .seed = 2}).to_dataset();
    auto id = [](const tensor<float>& x) { return x; };
    // what the bank must hold: head outputs computed here, per chunk, then normalised
    auto expected = [&](std::size_t chunk, bool batch_stats) {
        std::vector<float> out;
        const std::size_t chunks = batch_stats ? std::max<std::size_t>(1, n / chunk) : (n + chunk - 1) / chunk;
        nets ref;  // same seeds: the same initial network
        ref.backbone.train(batch_stats);
        ref.head.train(batch_stats);
        for (std::size_t c = 0; c < chunks; ++c) {
            const std::size_t b = batch_stats ? c * n / chunks : c * chunk;
            const std::size_t e = batch_stats ? (c + 1) * n / chunks : std::min(n, b + chunk);
            std::vector<std::size_t> idx;
            for (std::size_t i = b; i < e; ++i) idx.push_back(i);
            auto f = ref.head.forward(ref.backbone.forward(data.batch(idx)).out).out;
            for (std::size_t i = 0; i < f.dim(0); ++i) {
                double s = 0;
                for (std::size_t j = 0; j < d; ++j) s += double(f.at(i, j)) * f.at(i, j);
                for (std::size_t j = 0; j < d; ++j) out.push_back(static_cast<float>(f.at(i, j) / std::sqrt(s)));
            }
        }
        return out;
    };
    auto max_diff = [](const tensor<float>& bank, const std::vector<float>& e) {
        REQUIRE(bank.numel() == e.size());
        double m = 0;
        for (std::size_t i = 0; i < e.size(); ++i) m = std::max(m, double(std::abs(bank.data()[i] - e[i])));
        return m;
    };
    auto buffers = [&] {
        std::vector<float> v;
        const auto f = [&](const std::string&, auto& t) {
            for (auto x : t) v.push_back(static_cast<float>(x));
        };
        nw.backbone.for_each_buffer(f, "");
        nw.head.for_each_buffer(f, "");
        return v;
    };
    SUBCASE("batch statistics in chunks of 20, no side effect, every row written, Z estimated once") {
        bank_state st({.instances = n, .dim = d, .negatives = 4, .feature_init = true, .init_chunk = 16}, nw.backbone,
                      nw.head);
        nw.backbone.train(false);  // the pass switches to train mode; eval must come back
        nw.head.train(false);
        const auto bufs = buffers();
        ssl::epoch_context<net_t, head_t> ctx{nw.backbone, nw.head, 16, data, 0, 0, false, id};
        st.begin_epoch(ctx);
        CHECK(max_diff(st.bank(), expected(16, true)) < 1e-5);  // 40 / 16 -> chunks [0, 20), [20, 40)
        for (std::size_t i = 0; i < n; ++i) CHECK(row_norm(st.bank(), i) == doctest::Approx(1.0).epsilon(1e-6));
        CHECK(buffers() == bufs);  // running statistics restored
        CHECK_FALSE(nw.backbone.training());
        CHECK_FALSE(nw.head.training());
        CHECK(st.filled());
        // until_filled on a full bank: Z from the first batch, then kept
        ssl::loss::instance_nce loss;
        std::vector<std::size_t> ids{3, 4};
        const auto f = unit_features(2, d, 5);
        auto t = st.targets(ids, f);
        CHECK(t.filled);
        CHECK(t.has_memory[0] == 1);
        CHECK(loss.z() == 0);
        loss.compute({f}, t, {});
        const double z = loss.z();
        CHECK(z == ssl::loss::nce<float>({.temperature = loss.config().temperature}).estimate_z(f, st.bank(), t.noise));
        const auto f2 = unit_features(2, d, 6);
        auto t2 = st.targets(ids, f2);
        REQUIRE(ssl::loss::nce<float>({.temperature = loss.config().temperature}).estimate_z(f2, st.bank(), t2.noise) != z);
        loss.compute({f2}, t2, {});
        CHECK(loss.z() == z);
    }
    SUBCASE("eval mode") {
        bank_state st({.instances = n, .dim = d, .feature_init = true, .init_batch_statistics = false, .init_chunk = 16},
                      nw.backbone, nw.head);
        const auto bufs = buffers();
        ssl::epoch_context<net_t, head_t> ctx{nw.backbone, nw.head, 16, data, 0, 0, false, id};
        st.begin_epoch(ctx);
        CHECK(max_diff(st.bank(), expected(16, false)) < 1e-5);  // chunks [0, 16), [16, 32), [32, 40)
        CHECK(nw.backbone.training());  // train mode back after the eval-mode pass
        CHECK(nw.head.training());
        CHECK(buffers() == bufs);
    }
    SUBCASE("a pass that throws leaves modes and running statistics as they were") {
        bank_state st({.instances = n, .dim = d, .feature_init = true, .init_chunk = 16}, nw.backbone, nw.head);
        nw.backbone.train(false);
        const auto bufs = buffers();
        int calls = 0;
        auto failing = [&](const tensor<float>& x) {
            if (++calls == 2) throw ssl::io_error("test: image decoding failed");
            return x;
        };
        ssl::epoch_context<net_t, head_t> ctx{nw.backbone, nw.head, 16, data, 0, 0, false, failing};
        CHECK_THROWS_AS(st.begin_epoch(ctx), ssl::io_error);
        CHECK_FALSE(nw.backbone.training());
        CHECK(nw.head.training());
        CHECK(buffers() == bufs);
        CHECK(st.none_written());  // nothing counts as a memory: a retry runs the whole pass again
    }
    SUBCASE("chunks too small for batch statistics are refused") {
        CHECK_THROWS_AS(bank_state({.instances = n, .dim = d, .feature_init = true, .init_chunk = 1}, nw.backbone,
                                   nw.head),
                        ssl::value_error);
        CHECK_NOTHROW(bank_state({.instances = n, .dim = d, .feature_init = true, .init_batch_statistics = false,
                                  .init_chunk = 1},
                                 nw.backbone, nw.head));
    }
    SUBCASE("only before the first epoch of a fresh run") {
        bank_state st({.instances = n, .dim = d, .feature_init = true}, nw.backbone, nw.head);
        const std::vector<float> random_rows(st.bank().begin(), st.bank().end());
        auto unchanged = [&] { return std::equal(random_rows.begin(), random_rows.end(), st.bank().begin()); };
        ssl::epoch_context<net_t, head_t> mid{nw.backbone, nw.head, 16, data, 0, 0, true, id};
        st.begin_epoch(mid);  // resumed in the middle of epoch 0: the checkpoint's bank stands
        CHECK(unchanged());
        ssl::epoch_context<net_t, head_t> later{nw.backbone, nw.head, 16, data, 1, 0, false, id};
        st.begin_epoch(later);
        CHECK(unchanged());
        // a row already written (a restored bank, a second fit): no re-initialisation
        std::vector<std::size_t> ids{5, 6};
        st.after_step(nw.backbone, nw.head, st.targets(ids, unit_features(2, d, 9)), ssl::target_step{0, 10, 0});
        const std::vector<float> after(st.bank().begin(), st.bank().end());
        ssl::epoch_context<net_t, head_t> first{nw.backbone, nw.head, 16, data, 0, 0, false, id};
        st.begin_epoch(first);
        CHECK(std::equal(after.begin(), after.end(), st.bank().begin()));
    }
    SUBCASE("off (the paper's random rows)") {
        bank_state st({.instances = n, .dim = d}, nw.backbone, nw.head);
        const std::vector<float> rows(st.bank().begin(), st.bank().end());
        ssl::epoch_context<net_t, head_t> ctx{nw.backbone, nw.head, 16, data, 0, 0, false, id};
        st.begin_epoch(ctx);
        CHECK(std::equal(rows.begin(), rows.end(), st.bank().begin()));
        CHECK(st.none_written());
    }
}

}  // namespace test_memory_bank
