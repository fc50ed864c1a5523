// InstDisc end to end: the embedding head, the config helper, the memory
// bank inside a method (when Z is estimated, the bank updated in place), training on synthetic data through the trainer (the loss falls,
// kNN beats chance) for the NCE and the full-softmax variants, and an
// interrupted run resumed bit for bit.
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/instdisc.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/testing/gradcheck.hpp>
#include <ssl/trainer.hpp>

#include "sigint_at.hpp"

#include <csignal>
#include <filesystem>
#include <unistd.h>

namespace test_instdisc {  // each file in its own namespace: an area builds as one unity translation unit

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

double row_norm(const ssl::tensor<float>& t, std::size_t i) {
    const std::size_t d = t.dim(1);
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) s += double(t.data()[i * d + j]) * t.data()[i * d + j];
    return std::sqrt(s);
}

template <class M>
std::vector<float> all_parameters(M& m) {
    std::vector<float> v;
    m.for_each_parameter([&](const std::string&, auto& p) { v.insert(v.end(), p.value.begin(), p.value.end()); }, "");
    return v;
}

}  // namespace

TEST_CASE("instdisc_config: the paper's settings") {
    auto c = ssl::instdisc_config(small_net, 28, 1, 60000);
    CHECK(c.head.out == 128);
    CHECK(c.target.instances == 60000);
    CHECK(c.target.dim == 128);
    CHECK(c.target.momentum == 0.5);
    CHECK(c.target.negatives == 4096);
    CHECK(c.target.seed == small_net.seed);
    CHECK(c.loss.temperature == 0.1);  // small images (the authors' CIFAR setting)
    CHECK(c.loss.proximal == 30);
    CHECK(c.augment.size == 28);
    CHECK(ssl::instdisc_config(small_net, 224, 3, 10).loss.temperature == 0.07);
    auto s = ssl::instdisc_full_softmax_config(small_net, 224, 3, 10);
    CHECK(s.loss.temperature == 0.07);
    CHECK(s.target.negatives == 0);
    CHECK(s.loss.proximal == 0);
    // the bank needs its size
    auto bad = c;
    bad.target.instances = 0;
    CHECK_THROWS_AS(ssl::instdisc<>{bad}, ssl::value_error);
}

TEST_CASE("head::embedding: linear to 128-d, unit rows") {
    ssl::head::embedding<float> h({128}, 64, 3);
    static_assert(ssl::head_policy<ssl::head::embedding<float>>);
    CHECK(h.out_features() == 128);
    auto x = ssl::cast<float>(ssl::testing::random_tensor({5, 64}, 1));
    auto y = h.forward(x).out;
    REQUIRE(y.shape() == ssl::shape_t{5, 128});
    for (std::size_t i = 0; i < 5; ++i) CHECK(row_norm(y, i) == doctest::Approx(1.0).epsilon(1e-6));
    std::vector<std::string> names;
    h.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "head");
    CHECK(names == std::vector<std::string>{"head.0.weight", "head.0.bias"});
    CHECK(&h.target_part() == &h);
    CHECK_THROWS_AS(ssl::head::embedding<float>({0}, 64), ssl::value_error);
}

TEST_CASE("instdisc: Z is re-estimated until the bank is filled, then fixed (or fixed after the first batch, or never)") {
    auto train = make_set(64, 1);
    for (auto mode : {ssl::loss::z_estimate::until_filled, ssl::loss::z_estimate::first_batch,
                      ssl::loss::z_estimate::every_batch}) {
        auto c = ssl::instdisc_config(small_net, 16, 1, train.size());
        CHECK(c.loss.z == ssl::loss::z_estimate::until_filled);  // the default
        c.target.negatives = 256;
        c.loss.z = mode;
        ssl::instdisc<> m(c);
        std::vector<std::size_t> ids(16);
        std::vector<double> zs;
        for (std::size_t step = 0; step < 6; ++step) {
            for (std::size_t i = 0; i < 16; ++i) ids[i] = (step % 4) * 16 + i;  // 4 batches fill the bank
            const ssl::step_context ctx{3, 0, step, 6};
            m.after_step(m.train_step(train.batch(ids), ids, ctx), ctx);
            zs.push_back(m.loss().z());
            CHECK(zs.back() > 0);
        }
        CAPTURE(static_cast<int>(mode));
        if (mode == ssl::loss::z_estimate::first_batch) {
            for (double z : zs) CHECK(z == zs[0]);
        } else if (mode == ssl::loss::z_estimate::every_batch) {
            CHECK(m.target().filled());
            for (std::size_t i = 1; i < zs.size(); ++i) CHECK(zs[i] != zs[i - 1]);  // the network and bank move
        } else {
            CHECK(zs[1] != zs[0]);  // estimated afresh while rows are still random
            CHECK(zs[3] != zs[2]);  // the batch that writes the last rows estimates it once more
            CHECK(m.target().filled());
            CHECK(zs[4] == zs[3]);  // then fixed
            CHECK(zs[5] == zs[3]);
        }
    }
}

TEST_CASE("instdisc: the bank is updated in place and stays unit") {
    auto train = make_set(64, 1);
    auto c = ssl::instdisc_config(small_net, 16, 1, train.size());
    c.target.negatives = 256;
    c.loss.z = ssl::loss::z_estimate::first_batch;
    ssl::instdisc<> m(c);
    auto& bank = m.target().bank();
    const float* data = bank.data();
    const ssl::tensor<float> before = bank.clone();
    CHECK(m.loss().z() == 0);
    std::vector<std::size_t> ids(16);
    double z1 = 0;
    for (std::size_t step = 0; step < 4; ++step) {
        for (std::size_t i = 0; i < 16; ++i) ids[i] = step * 16 + i;
        const ssl::step_context ctx{3, 0, step, 4};
        auto r = m.train_step(train.batch(ids), ids, ctx);
        CHECK(std::isfinite(r.loss));
        m.after_step(std::move(r), ctx);
        if (step == 0) {
            z1 = m.loss().z();
            CHECK(z1 > 0);
        }
        CHECK(m.loss().z() == z1);  // kept fixed
        CHECK(m.target().step() == step + 1);
    }
    CHECK(bank.data() == data);  // never reallocated or copied
    CHECK(&m.target().bank() == &bank);
    std::size_t changed = 0;
    for (std::size_t i = 0; i < 64; ++i) {
        CHECK(row_norm(bank, i) == doctest::Approx(1.0).epsilon(1e-5));
        bool ch = false;
        for (std::size_t j = 0; j < 128; ++j) ch |= bank.at(i, j) != before.at(i, j);
        changed += ch;
    }
    CHECK(changed == 64);  // every instance was in one of the 4 batches
    // The bank is the running average of the features: after one update with
    // m = 0.5 from a random start, each row is closer to its feature.
    // Z is part of the checkpointed state (the loss's)
    bool has_z = false, has_bank = false;
    m.for_each_buffer([&](const std::string& n, auto&) {
        has_z |= n == "loss.z";
        has_bank |= n == "target.bank";
    }, "");
    CHECK(has_z);
    CHECK(has_bank);
}

TEST_CASE("instdisc: SGD on one batch against a fixed bank lowers the loss (the gradients reach the network)") {
    // No after_step: the bank, the noise (keyed by the step counter) and Z
    // stay as they are, and the same ids give the same augmented view, so
    // the loss is a fixed function of the weights.
    auto train = make_set(64, 1);
    auto c = ssl::instdisc_config(small_net, 16, 1, train.size());
    c.target.negatives = 64;
    c.loss.z = ssl::loss::z_estimate::first_batch;  // Z fixed after the first call (the bank never fills here)
    ssl::instdisc<> m(c);
    // small steps: NCE at tau 0.1 is sharp, larger ones overshoot on some step
    ssl::optim::sgd<float> opt(m, {.lr = 0.002, .momentum = 0, .weight_decay = 0});
    std::vector<std::size_t> ids(32);
    for (std::size_t i = 0; i < 32; ++i) ids[i] = 2 * i;
    const ssl::step_context ctx{3, 0, 0, 10};
    std::vector<double> loss;
    for (int it = 0; it < 6; ++it) {
        opt.zero_grad();
        loss.push_back(m.train_step(train.batch(ids), ids, ctx).loss);
        opt.step();
    }
    MESSAGE("same-batch loss ", loss.front(), " -> ", loss.back());
    for (std::size_t i = 1; i < loss.size(); ++i) CHECK(loss[i] < loss[i - 1]);
    CHECK(m.target().step() == 0);
}

TEST_CASE("instdisc trains on synthetic images: the loss falls, kNN beats chance") {
    auto train = make_set(256, 1), test = make_set(128, 2);
    auto c = ssl::instdisc_config(small_net, 16, 1, train.size());
    // The paper's regime is N >> m (1.28 M or 50 000 images, m = 4096). With
    // 256 images, m = 64 keeps the noise a small part of the set; m / N = 1/4
    // is still far from N >> m, and there tau = 0.2 trains more steadily
    // than the paper's 0.1 in so short a run.
    c.target.negatives = 64;
    c.loss.temperature = 0.2;
    ssl::instdisc<> m(c);
    ssl::trainer_config tc{.epochs = 5, .batch = 32, .lr = 0.03, .weight_decay = 5e-4, .warmup_epochs = 0.5,
                           .seed = 3, .progress = false};
    ssl::trainer<ssl::instdisc<>> t(m, train, tc);
    auto s = t.fit();
    REQUIRE(s.epoch_loss.size() == 5);
    // The first epoch has no proximal term (no instance has a memory yet: 8
    // batches of 32 visit each of the 256 once), so the loss falls from the
    // second epoch on, when every term is in.
    CHECK(m.target().filled());
    CHECK(s.epoch_loss.back() < s.epoch_loss[1]);
    const double acc = knn_top1(m, train, test);
    MESSAGE("instdisc: epoch losses ", s.epoch_loss[0], " ", s.epoch_loss[1], " ", s.epoch_loss[2], " ",
            s.epoch_loss[3], " ", s.epoch_loss[4], ", kNN top-1 ", acc, ", Z ", m.loss().z());
    CHECK(acc > 0.5);  // 4 classes: chance is 0.25
}

TEST_CASE("instdisc_full_softmax trains on synthetic images") {
    auto train = make_set(256, 1), test = make_set(128, 2);
    auto c = ssl::instdisc_full_softmax_config(small_net, 16, 1, train.size());
    ssl::instdisc_full_softmax<> m(c);
    ssl::trainer_config tc{.epochs = 5, .batch = 32, .lr = 0.03, .weight_decay = 5e-4, .warmup_epochs = 0.5,
                           .seed = 3, .progress = false};
    auto s = ssl::trainer<ssl::instdisc_full_softmax<>>(m, train, tc).fit();
    REQUIRE(s.epoch_loss.size() == 5);
    CHECK(s.epoch_loss.back() < s.epoch_loss.front());
    const double acc = knn_top1(m, train, test);
    MESSAGE("instdisc_full_softmax: loss ", s.epoch_loss.front(), " -> ", s.epoch_loss.back(), ", kNN top-1 ", acc);
    CHECK(acc > 0.5);
}

TEST_CASE("instdisc: a run interrupted mid-epoch and resumed equals an uninterrupted one, bank and Z included") {
    const auto dir = std::filesystem::temp_directory_path() / ("ssl_instdisc_resume_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto train = make_set(128, 1);
    auto c = ssl::instdisc_config(small_net, 16, 1, train.size());
    c.target.negatives = 512;
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.03, .seed = 3, .progress = false};
    ssl::instdisc<> full(c);
    ssl::trainer<ssl::instdisc<>>(full, train, tc).fit();

    tc.out_dir = dir;
    ssl::instdisc<> part(c);
    ssl::trainer<ssl::instdisc<>> t(part, train, tc);
    t.chores().add<ssl_test::sigint_at>(5);  // Ctrl-C during the first step of epoch 2: stops after it
    auto s = t.fit();
    REQUIRE(s.interrupted);
    CHECK(s.steps == 5);

    ssl::instdisc<> resumed(c);
    auto tc2 = tc;
    tc2.resume = true;
    auto s2 = ssl::trainer<ssl::instdisc<>>(resumed, train, tc2).fit();
    CHECK(s2.steps == 3);
    CHECK(resumed.loss().z() == full.loss().z());
    CHECK(resumed.target().step() == full.target().step());
    CHECK(all_parameters(resumed) == all_parameters(full));
    const auto& a = full.target().bank();
    const auto& b = resumed.target().bank();
    CHECK(std::equal(a.begin(), a.end(), b.begin()));

    // a bank sized for another data set is refused when training starts
    auto wrong = c;
    wrong.target.instances = 100;
    ssl::instdisc<> w(wrong);
    ssl::trainer_config tc3{.epochs = 1, .batch = 32, .lr = 0.03, .seed = 3, .progress = false};
    CHECK_THROWS_AS(ssl::trainer<ssl::instdisc<>>(w, train, tc3).fit(), ssl::value_error);
    std::filesystem::remove_all(dir);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("head::embedding gradcheck") {
        ssl::head::embedding<double> h({6}, 5, 2);
        auto x = ssl::testing::random_tensor({4, 5}, 3);
        auto r = ssl::testing::gradcheck(h, x);
        CHECK_MESSAGE(r.ok, r.str());
        CHECK(r.checked == 4 * 5 + 6 * 5 + 6);
    }
}

}  // namespace test_instdisc
