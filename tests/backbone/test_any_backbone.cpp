#include <doctest/doctest.h>

#include <ssl/backbone/any_backbone.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/io/config_json.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/simclr.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "../nn/reference.hpp"
#include "../temp_files.hpp"

#include <cmath>

namespace test_any_backbone {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::shape_t;

static_assert(ssl::layer<ssl::any_backbone<float>>);
static_assert(ssl::backbone_policy<ssl::any_backbone<float>>);

namespace {

template <class M>
std::vector<std::string> parameter_names(M& m) {
    std::vector<std::string> v;
    m.for_each_parameter([&](const std::string& n, auto&) { v.push_back(n); }, "");
    return v;
}
template <class M>
std::vector<std::string> buffer_names(M& m) {
    std::vector<std::string> v;
    m.for_each_buffer([&](const std::string& n, auto&) { v.push_back(n); }, "");
    return v;
}
template <class M>
std::vector<ssl::tensor<float>> gradients(M& m) {
    std::vector<ssl::tensor<float>> v;
    m.for_each_parameter([&](const std::string&, ssl::parameter<float>& p) { v.push_back(p.grad.clone()); }, "");
    return v;
}
bool equal(const ssl::tensor<float>& a, const ssl::tensor<float>& b) {
    if (a.shape() != b.shape()) return false;
    for (std::size_t i = 0; i < a.numel(); ++i)
        if (a.data()[i] != b.data()[i]) return false;
    return true;
}

// The erased backbone and the concrete one built from the same options give
// bitwise the same outputs, input gradients, parameter gradients and names.
template <class B>
void check_same_as(const ssl::any_backbone_options& o, const typename B::options_type& concrete_options,
                   std::size_t size) {
    ssl::any_backbone<float> a(o);
    B b(concrete_options);
    CHECK(a.arch() == o.arch);
    CHECK(a.as<B>() != nullptr);
    CHECK(a.output_dim() == b.output_dim());
    CHECK(a.feature_dim() == b.feature_dim());
    CHECK(parameter_names(a) == parameter_names(b));
    CHECK(buffer_names(a) == buffer_names(b));
    for (bool train : {true, false}) {
        a.train(train);
        b.train(train);
        CHECK(a.training() == train);
        ssl::zero_grad(a);
        ssl::zero_grad(b);
        auto x = ref::random<float>({3, o.in_channels, size, size}, 11);
        auto ra = a.forward(x);
        auto rb = b.forward(x);
        CHECK(equal(ra.out, rb.out));
        auto dy = ref::random<float>(ra.out.shape(), 12);
        CHECK(equal(a.backward(ra.cache, dy), b.backward(rb.cache, dy)));
        auto ga = gradients(a), gb = gradients(b);
        REQUIRE(ga.size() == gb.size());
        for (std::size_t i = 0; i < ga.size(); ++i) CHECK(equal(ga[i], gb[i]));
    }
}

}  // namespace

TEST_CASE("any_backbone: the same network, names and gradients as the concrete backbone") {
    const ssl::resnet_options r{.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .seed = 5};
    SUBCASE("resnet18") {
        check_same_as<ssl::resnet18<float>>({.arch = "resnet18", .in_channels = 2, .width = 4, .stem = ssl::stem::cifar,
                                             .seed = 5}, r, 8);
    }
    SUBCASE("resnet34") {
        check_same_as<ssl::resnet34<float>>({.arch = "resnet34", .in_channels = 2, .width = 4, .stem = ssl::stem::cifar,
                                             .seed = 5}, r, 8);
    }
    SUBCASE("resnet50, imagenet stem, classifier") {
        ssl::resnet_options r50 = r;
        r50.stem = ssl::stem::imagenet;
        r50.num_classes = 7;
        check_same_as<ssl::resnet50<float>>({.arch = "resnet50", .in_channels = 2, .width = 4,
                                             .stem = ssl::stem::imagenet, .num_classes = 7, .seed = 5}, r50, 32);
    }
    SUBCASE("resnet18v2") {
        check_same_as<ssl::resnet18v2<float>>({.arch = "resnet18v2", .in_channels = 2, .width = 4,
                                               .stem = ssl::stem::cifar, .num_classes = 3, .seed = 5},
                                              {.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .num_classes = 3,
                                               .seed = 5}, 8);
    }
    SUBCASE("resnet50v2, imagenet stem") {
        check_same_as<ssl::resnet50v2<float>>({.arch = "resnet50v2", .in_channels = 2, .width = 4, .seed = 5},
                                              {.in_channels = 2, .width = 4, .seed = 5}, 32);
    }
    SUBCASE("vgg16, cifar stem") {
        check_same_as<ssl::vgg16<float>>({.arch = "vgg16", .in_channels = 2, .width = 4, .stem = ssl::stem::cifar,
                                          .seed = 5}, {.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .seed = 5},
                                         16);
    }
    SUBCASE("revnet18, classifier") {
        check_same_as<ssl::revnet18<float>>({.arch = "revnet18", .in_channels = 2, .width = 4,
                                             .stem = ssl::stem::cifar, .num_classes = 3, .seed = 5},
                                            {.in_channels = 2, .width = 4, .stem = ssl::stem::cifar, .num_classes = 3,
                                             .seed = 5}, 8);
    }
    SUBCASE("revnet50") {
        check_same_as<ssl::revnet50<float>>({.arch = "revnet50", .in_channels = 2, .width = 4, .seed = 5},
                                            {.in_channels = 2, .width = 4, .seed = 5}, 32);
    }
    SUBCASE("convnet") {
        check_same_as<ssl::convnet<float>>({.arch = "convnet", .in_channels = 2, .width = 4, .seed = 5},
                                           {.in_channels = 2, .width = 4, .seed = 5}, 12);
    }
    SUBCASE("convnet-ln") {
        check_same_as<ssl::convnet_ln<float>>({.arch = "convnet-ln", .in_channels = 2, .width = 4, .seed = 5},
                                              {.in_channels = 2, .width = 4, .seed = 5}, 12);
    }
}

TEST_CASE("any_backbone: copies share storage like layer copies, deep_copy clones") {
    ssl::any_backbone<float> a({.arch = "resnet18", .in_channels = 1, .width = 2, .stem = ssl::stem::cifar});
    ssl::any_backbone<float> shared = a;
    auto deep = ssl::deep_copy(a);
    auto first = [](ssl::any_backbone<float>& m) {
        ssl::parameter<float>* p = nullptr;
        m.for_each_parameter([&](const std::string&, ssl::parameter<float>& q) { if (!p) p = &q; }, "");
        return p;
    };
    const float before = first(a)->value.data()[0];
    first(a)->value.data()[0] = before + 1.0f;
    CHECK(first(shared)->value.data()[0] == before + 1.0f);
    CHECK(first(deep)->value.data()[0] == before);
    // Buffers (running statistics and the int64 batch counters) are cloned too.
    std::vector<const void*> pa, pd;
    a.for_each_buffer([&](const std::string&, auto& t) { pa.push_back(t.data()); }, "");
    deep.for_each_buffer([&](const std::string&, auto& t) { pd.push_back(t.data()); }, "");
    REQUIRE(pa.size() == pd.size());
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(pa[i] != pd[i]);
    // Assignment and moves keep a working backbone.
    ssl::any_backbone<float> assigned;
    assigned = deep;
    CHECK(assigned.output_dim() == a.output_dim());
    ssl::any_backbone<float> moved = std::move(assigned);
    CHECK(moved.forward(ref::random<float>({2, 1, 8, 8}, 1)).out.shape() == shape_t{2, 16});
}

TEST_CASE("any_backbone: bad options and misuse say what is wrong") {
    CHECK_THROWS_WITH_AS(ssl::any_backbone<float>({.arch = "vgg17"}),
                         doctest::Contains("unknown architecture 'vgg17' (resnet18, resnet34, resnet50, convnet, "
                                           "resnet18v2, resnet34v2, resnet50v2, vgg11, vgg13, vgg16, vgg19, revnet18, "
                                           "revnet50, convnet-ln)"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::any_backbone<float>({.arch = "vgg16", .num_classes = 10}),
                         doctest::Contains("vgg16 has no classifier"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::any_backbone<float>({.arch = "convnet", .num_classes = 10}),
                         doctest::Contains("convnet has no classifier"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::any_backbone<float>({.arch = "convnet-ln", .num_classes = 10}),
                         doctest::Contains("convnet-ln has no classifier"), ssl::value_error);
    ssl::any_backbone<float> empty;
    CHECK_THROWS_WITH(empty.output_dim(), doctest::Contains("used before a backbone was built"));
    CHECK(empty.as<ssl::resnet18<float>>() == nullptr);
    ssl::any_backbone<float> r18({.arch = "resnet18", .in_channels = 1, .width = 2});
    CHECK(r18.as<ssl::resnet34<float>>() == nullptr);  // another type, even with the same blocks
    CHECK(r18.as<ssl::convnet<float>>() == nullptr);
    CHECK_THROWS_AS(r18.forward(ref::random<float>({2, 3, 32, 32}, 1)), ssl::shape_error);
}

TEST_CASE("any_backbone: a method over it trains and names its state as over the concrete backbone") {
    using erased = ssl::simclr<ssl::any_backbone<float>>;
    using concrete = ssl::simclr<ssl::resnet18<float>>;
    auto ce = ssl::simclr_config<ssl::any_backbone<float>>(
        {.arch = "resnet18", .in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 3}, 12, 1);
    auto cc = ssl::simclr_config<ssl::resnet18<float>>({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar, .seed = 3},
                                                       12, 1);
    ce.head.hidden = cc.head.hidden = 16;
    ce.head.out = cc.head.out = 8;
    erased me(ce);
    concrete mc(cc);
    CHECK(parameter_names(me) == parameter_names(mc));
    CHECK(buffer_names(me) == buffer_names(mc));
    auto images = ref::random<float>({8, 1, 12, 12}, 4);
    for (std::size_t i = 0; i < images.numel(); ++i) images.data()[i] = 0.5f + 0.5f * images.data()[i];
    std::vector<std::size_t> ids{0, 1, 2, 3, 4, 5, 6, 7};
    auto le = me.train_step(images, ids, {.seed = 9});
    auto lc = mc.train_step(images, ids, {.seed = 9});
    CHECK(std::isfinite(le.loss));
    CHECK(le.loss == doctest::Approx(lc.loss).epsilon(1e-6));
}

// Each architecture of "Revisiting" trains a step through a method (RotNet),
// and a checkpoint with the method's config (JSON, as `ssl train` writes it)
// rebuilds the model elsewhere: the same names, the same embeddings.
TEST_CASE("any_backbone: resnet v2, vgg and revnet train a RotNet step; a checkpoint with its config reloads") {
    using model = ssl::rotnet<ssl::any_backbone<float>>;
    ssl_test::temp_dir dir("any_backbone_revisiting");
    std::filesystem::create_directories(dir.path);
    for (const std::string arch : {"resnet18v2", "resnet50v2", "vgg16", "revnet18", "revnet50"}) {
        CAPTURE(arch);
        auto cfg = ssl::rotnet_config<ssl::any_backbone<float>>(
            {.arch = arch, .in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 3}, 16, 1);
        model m(cfg);
        ssl::optim::sgd<float> opt(m, {.lr = 0.05, .momentum = 0.9});
        auto images = ref::random<float>({8, 1, 16, 16}, 4);
        for (auto& v : images) v = 0.5f + 0.5f * v;
        std::vector<std::size_t> ids{0, 1, 2, 3, 4, 5, 6, 7};
        const auto before = m.embed(images);
        double first = 0, last = 0;
        for (std::size_t step = 0; step < 3; ++step) {
            opt.zero_grad();
            auto out = m.train_step(images, ids, {.seed = 9, .step = step, .total_steps = 3});
            opt.step();
            REQUIRE(std::isfinite(out.loss));
            (step == 0 ? first : last) = out.loss;
            m.after_step(std::move(out), {.seed = 9, .step = step, .total_steps = 3});
        }
        CHECK(last < first);  // it learns the four rotations of eight images
        const auto after = m.embed(images);
        CHECK(!equal(before, after));

        const auto path = dir.path / (arch + ".safetensors");
        ssl::save_checkpoint(path, m, {{"ssl.config", ssl::io::config_to_json(m.cfg()).dump()}});
        const auto file = ssl::io::read_safetensors(path);
        const auto back = ssl::io::config_from_json<model::config>(nlohmann::json::parse(file.metadata.at("ssl.config")),
                                                                   "test");
        CHECK(back.backbone.arch == arch);
        model r(back);
        ssl::load_checkpoint(path, r);  // strict: every name and shape matches
        CHECK(parameter_names(r) == parameter_names(m));
        CHECK(equal(r.embed(images), after));
    }
}

TEST_SUITE("gradcheck") {
    TEST_CASE("any_backbone gradcheck (double), resnet18 and convnet") {
        for (const char* arch : {"resnet18", "convnet"}) {
            CAPTURE(arch);
            ssl::any_backbone<double> net({.arch = arch, .in_channels = 2, .width = 2, .stem = ssl::stem::cifar});
            for (bool train : {true, false}) {
                net.train(train);
                auto r = ssl::testing::gradcheck(net, ref::random<double>({2, 2, 9, 9}, 3), {.max_checks_per_tensor = 4});
                CHECK_MESSAGE(r.ok, r.str());
            }
        }
    }
}

}  // namespace test_any_backbone
