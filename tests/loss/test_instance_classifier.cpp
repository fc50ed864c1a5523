// loss::instance_classifier: the sharded N-way classifier the instance
// classification method trains — layout and names, stable parameter
// addresses, the raw-feature initialisation (checked against features
// computed here), when it runs, the policy's loss against instance_ce,
// checkpoints.
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/optim/sgd.hpp>

#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <unistd.h>
#include <vector>

namespace test_instance_classifier {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

using method_t = ssl::instance_cls<>;
const ssl::resnet_options tiny_net{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 5};

method_t::config tiny_config(std::size_t n, std::size_t shard_rows = 0) {
    auto c = ssl::instance_cls_config(tiny_net, 16, 1, n);
    c.head = {32, 8, true};
    c.loss.shard_rows = shard_rows;
    return c;
}

ssl::data::image_dataset make_set(std::size_t n) {
    return ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .seed = 3})
        .to_dataset();
}

std::vector<std::string> shard_names(method_t& m) {
    std::vector<std::string> names;
    m.for_each_parameter(
        [&](const std::string& n, ssl::parameter<float>&) {
            if (n.rfind("loss.", 0) == 0) names.push_back(n);
        },
        "");
    return names;
}

std::vector<ssl::parameter<float>*> shard_params(method_t& m) {
    std::vector<ssl::parameter<float>*> p;
    m.for_each_parameter(
        [&](const std::string& n, ssl::parameter<float>& q) {
            if (n.rfind("loss.", 0) == 0) p.push_back(&q);
        },
        "");
    return p;
}

std::vector<float> all_rows(method_t& m) {
    std::vector<float> v;
    for (auto* p : shard_params(m)) v.insert(v.end(), p->value.begin(), p->value.end());
    return v;
}

/// The networks' buffers (running statistics, batch counts).
std::vector<float> buffers(method_t& m) {
    std::vector<float> v;
    const auto f = [&](const std::string&, auto& t) {
        for (auto x : t) v.push_back(static_cast<float>(x));
    };
    m.backbone().for_each_buffer(f, "");
    m.head().for_each_buffer(f, "");
    return v;
}

/// Normalised head outputs of images [b, e) in train or eval mode, computed
/// here, independently of the target.
std::vector<float> head_features(method_t& m, const ssl::data::image_dataset& d, std::size_t b, std::size_t e,
                                 bool batch_stats) {
    std::vector<std::size_t> idx(e - b);
    std::iota(idx.begin(), idx.end(), b);
    auto x = m.augmentation().eval_transform(d.batch(idx));
    m.backbone().train(batch_stats);
    m.head().train(batch_stats);
    auto f = m.head().forward(m.backbone().forward(x).out).out;
    m.train(true);
    const std::size_t D = f.dim(1);
    std::vector<float> out(f.numel());
    for (std::size_t i = 0; i < f.dim(0); ++i) {
        double s = 0;
        for (std::size_t k = 0; k < D; ++k) s += double(f[i * D + k]) * f[i * D + k];
        for (std::size_t k = 0; k < D; ++k) out[i * D + k] = static_cast<float>(f[i * D + k] / std::sqrt(s));
    }
    return out;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
    return m;
}

}  // namespace

TEST_CASE("instance_classifier: shards by class, names, rows of unit length") {
    method_t m(tiny_config(10, 4));
    auto& t = m.loss();
    CHECK(t.instances() == 10);
    CHECK(t.dim() == 8);
    CHECK(t.shard_rows() == 4);
    REQUIRE(t.shard_count() == 3);
    CHECK(t.shard(0).value.shape() == ssl::shape_t{4, 8});
    CHECK(t.shard(2).value.shape() == ssl::shape_t{2, 8});
    CHECK(shard_names(m) == std::vector<std::string>{"loss.classifier.shard_000", "loss.classifier.shard_001",
                                                       "loss.classifier.shard_002"});
    CHECK(t.row(9) == t.shard(2).value.data() + 8);  // class 9: shard 2, row 1
    for (std::size_t j = 0; j < 10; ++j) {
        double s = 0;
        for (std::size_t k = 0; k < 8; ++k) s += double(t.row(j)[k]) * t.row(j)[k];
        CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
    }
    // the random rows are reproducible
    method_t m2(tiny_config(10, 4));
    CHECK(all_rows(m) == all_rows(m2));
    // shard counts from the config
    auto c = tiny_config(10);
    c.loss.shards = 5;
    CHECK(method_t(c).loss().shard_count() == 5);
    c.loss.shards = 3;
    CHECK(method_t(c).loss().shard_rows() == 4);
    CHECK(method_t(tiny_config(10)).loss().shard_count() == 1);
    CHECK(ssl::loss::instance_shard_count({.instances = 1'281'167}) == 79);
    CHECK_THROWS_AS(method_t(tiny_config(0)), ssl::value_error);
}

TEST_CASE("instance_classifier: shard parameters keep their addresses (optimizer attached before begin_epoch)") {
    auto data = make_set(24);
    method_t m(tiny_config(24, 10));
    const auto before = shard_params(m);
    REQUIRE(before.size() == 3);
    ssl::optim::sgd<float> opt(m, {.lr = 0.1, .momentum = 0.9});
    std::vector<ssl::parameter<float>*> attached;
    for (const auto& s : opt.parameters())
        if (s.name.rfind("loss.", 0) == 0) attached.push_back(s.param);
    CHECK(attached == before);
    m.begin_epoch(data, 0, 0);  // re-initialises the rows in place
    CHECK(shard_params(m) == before);
    // a step through the optimizer updates the shards
    const auto rows0 = all_rows(m);
    std::vector<std::size_t> ids{0, 5, 11, 23};
    std::vector<std::size_t> all(24);
    std::iota(all.begin(), all.end(), 0);
    opt.zero_grad();
    m.train_step(data.batch(ids), ids, {.seed = 1, .epoch = 0, .step = 0, .total_steps = 1});
    opt.step();
    CHECK(max_diff(all_rows(m), rows0) > 0);
    // moving the method moves the shards' owners, not the shards
    method_t moved(std::move(m));
    CHECK(shard_params(moved) == before);
}

TEST_CASE("instance_classifier: raw-feature initialisation = normalised head outputs of the initial network") {
    const std::size_t n = 40;
    auto data = make_set(n);
    SUBCASE("batch statistics, one chunk") {
        auto c = tiny_config(n, 16);
        c.loss.init_chunk = 64;
        method_t m(c), ref(c);
        const auto bufs = buffers(m);
        auto plan = m.begin_epoch(data, 0, 7);
        CHECK(m.loss().initialised());
        CHECK_FALSE(plan.order.has_value());
        // the loss re-initialised its own parameters: the method resets the
        // optimizer state of "loss", the prefix of every shard
        CHECK(plan.reset_optimizer_state == std::vector<std::string>{"loss"});
        for (const auto& name : shard_names(m)) CHECK(name.rfind(plan.reset_optimizer_state[0] + ".", 0) == 0);
        CHECK(max_diff(all_rows(m), head_features(ref, data, 0, n, true)) < 1e-5);
        CHECK(buffers(m) == bufs);  // running statistics restored: the pass has no side effect
        CHECK(m.training());
    }
    SUBCASE("batch statistics, two chunks of 20") {
        auto c = tiny_config(n, 16);
        c.loss.init_chunk = 16;  // 40 / 16 -> 2 chunks: [0, 20), [20, 40)
        method_t m(c), ref(c);
        m.begin_epoch(data, 0, 7);
        auto expect = head_features(ref, data, 0, 20, true);
        const auto second = head_features(ref, data, 20, 40, true);
        expect.insert(expect.end(), second.begin(), second.end());
        CHECK(max_diff(all_rows(m), expect) < 1e-5);
    }
    SUBCASE("eval mode") {
        auto c = tiny_config(n, 16);
        c.loss.init_batch_statistics = false;
        method_t m(c), ref(c);
        m.begin_epoch(data, 0, 7);
        CHECK(max_diff(all_rows(m), head_features(ref, data, 0, n, false)) < 1e-5);
    }
    SUBCASE("disabled: the random rows stay") {
        auto c = tiny_config(n, 16);
        c.loss.raw_feature_init = false;
        method_t m(c);
        const auto rows = all_rows(m);
        auto plan = m.begin_epoch(data, 0, 7);
        CHECK(all_rows(m) == rows);
        CHECK(plan.reset_optimizer_state.empty());
    }
}

TEST_CASE("instance_classifier: initialised once; not at later epochs, nor when resumed mid-epoch") {
    auto data = make_set(20);
    method_t a(tiny_config(20));
    const auto random_rows = all_rows(a);
    a.begin_epoch(data, 0, 0, /*resumed_mid_epoch=*/true);
    CHECK(all_rows(a) == random_rows);
    a.begin_epoch(data, 1, 0);
    CHECK(all_rows(a) == random_rows);
    CHECK_FALSE(a.loss().initialised());
    a.begin_epoch(data, 0, 0);
    CHECK(a.loss().initialised());
    const auto init_rows = all_rows(a);
    CHECK(init_rows != random_rows);
    a.loss().shard(0).value[0] += 1.0f;  // as training would
    const auto trained = all_rows(a);
    a.begin_epoch(data, 0, 0);  // a second fit() from epoch 0: no re-initialisation
    CHECK(all_rows(a) == trained);
    // the wrong data set is an error that names the sizes
    auto other = make_set(21);
    try {
        a.begin_epoch(other, 1, 0);
        FAIL("a data set of another size must be refused");
    } catch (const ssl::value_error& e) {
        CHECK(std::string(e.what()).find("21 images") != std::string::npos);
    }
}

TEST_CASE("instance_classifier: compute() classifies every view against the ids, mean over views, dW into the shards") {
    const std::size_t D = 8, B = 3;
    method_t m(tiny_config(10, 4));
    auto& l = m.loss();
    ssl::view_batch<float> vb{{ssl::tensor<float>::zeros({B, 1, 16, 16}), ssl::tensor<float>::zeros({B, 1, 16, 16})}, {}};
    vb.ids = {9, 0, 4};
    std::vector<ssl::tensor<float>> online(2, ssl::tensor<float>({B, D}));
    for (std::size_t i = 0; i < B * D; ++i) {
        online[0][i] = static_cast<float>(std::sin(0.7 * double(i) + 0.1));
        online[1][i] = static_cast<float>(std::cos(1.3 * double(i) - 0.4));
    }
    for (auto* p : shard_params(m)) p->grad.fill(0.0f);
    const auto out = l.compute(online, std::vector<ssl::tensor<float>>{}, vb);
    REQUIRE(out.grads.size() == 2);
    REQUIRE(out.metrics.size() == 1);
    CHECK(out.metrics[0].first == "inst_top1");
    // the same as the two views' instance cross entropies averaged, on copies of the shards
    std::vector<std::unique_ptr<ssl::parameter<float>>> copies;
    std::vector<ssl::parameter<float>*> ptrs;
    for (auto* p : shard_params(m)) {
        copies.push_back(std::make_unique<ssl::parameter<float>>(p->value.shape(), ssl::param_role::weight));
        std::copy(p->value.begin(), p->value.end(), copies.back()->value.begin());
        copies.back()->grad.fill(0.0f);
        ptrs.push_back(copies.back().get());
    }
    ssl::loss::instance_ce<float> ce(l.config().ce);
    const std::vector<std::int64_t> labels{9, 0, 4};
    const auto r0 = ce(online[0], ptrs, labels), r1 = ce(online[1], ptrs, labels);
    CHECK(out.value == doctest::Approx(0.5 * (r0.value + r1.value)).epsilon(1e-6));
    for (std::size_t i = 0; i < B * D; ++i) {
        CHECK(out.grads[0][i] == doctest::Approx(0.5 * r0.grad_features[i]).epsilon(1e-5));
        CHECK(out.grads[1][i] == doctest::Approx(0.5 * r1.grad_features[i]).epsilon(1e-5));
    }
    const auto own = shard_params(m);
    for (std::size_t s = 0; s < own.size(); ++s)
        for (std::size_t i = 0; i < own[s]->grad.numel(); ++i)
            CHECK(own[s]->grad[i] == doctest::Approx(0.5 * ptrs[s]->grad[i]).epsilon(1e-5).scale(1e-6));
    // an id outside the N instances is an error naming it
    vb.ids = {10, 0, 4};
    CHECK_THROWS_WITH_AS(l.compute(online, std::vector<ssl::tensor<float>>{}, vb),
                         doctest::Contains("sample id 10 is outside the 10 instances"), ssl::error);
    // rows and ids must agree
    vb.ids = {1, 2};
    CHECK_THROWS_AS(l.compute(online, std::vector<ssl::tensor<float>>{}, vb), ssl::shape_error);
}

TEST_CASE("instance_classifier: checkpoint round trip of the shards and the initialised flag") {
    auto data = make_set(20);
    const auto path = std::filesystem::temp_directory_path() /
                      ("ssl_icls_ckpt_" + std::to_string(::getpid()) + ".safetensors");
    method_t a(tiny_config(20, 8));
    a.begin_epoch(data, 0, 0);
    ssl::save_checkpoint(path, a);
    auto file = ssl::io::read_safetensors(path);
    CHECK(file.tensors.contains("loss.classifier.shard_000"));
    CHECK(file.tensors.contains("loss.classifier.shard_002"));
    CHECK(file.tensors.contains("loss.classifier.initialised"));
    auto c = tiny_config(20, 8);
    c.loss.seed = 99;  // other random rows, replaced by the load
    method_t b(c);
    CHECK(all_rows(b) != all_rows(a));
    ssl::load_checkpoint(path, b);
    CHECK(all_rows(b) == all_rows(a));
    CHECK(b.loss().initialised());
    b.begin_epoch(data, 0, 0);  // loaded: not re-initialised
    CHECK(all_rows(b) == all_rows(a));
    std::filesystem::remove(path);
}

}  // namespace test_instance_classifier
