// Model checkpoints: names, round trips, mismatches, all-or-nothing loading.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <ssl/backbone/convnet.hpp>
#include <ssl/backbone/resnet.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/io/config_json.hpp>

#include <ssl/byol.hpp>
#include <ssl/deepcluster.hpp>
#include <ssl/deepercluster.hpp>
#include <ssl/exemplar.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/instdisc.hpp>
#include <ssl/jigsaw.hpp>
#include <ssl/moco.hpp>
#include <ssl/pirl.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/sela.hpp>
#include <ssl/simclr.hpp>

namespace test_checkpoint {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        static std::atomic<int> counter{0};
        std::random_device rd;
        path = fs::temp_directory_path() / ("ssl_test_checkpoint_" + std::to_string(::getpid()) + "_" +
                                            std::to_string(counter++) + "_" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

template <class F>
std::string io_error_of(F&& f) {
    try {
        f();
    } catch (const ssl::io_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL_CHECK("expected ssl::io_error, got another exception: ", e.what());
        return {};
    }
    FAIL_CHECK("expected ssl::io_error, nothing was thrown");
    return {};
}

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

template <class T>
ssl::tensor<T> random_input(ssl::shape_t s, std::uint64_t seed) {
    ssl::philox g(seed, 99);
    ssl::tensor<T> x(s);
    for (auto& v : x) v = static_cast<T>(g.normal());
    return x;
}

/// Trains-mode forwards so running statistics and counters move off their initial values.
template <class M>
void run_train_forwards(M& m, std::size_t in_channels, int times) {
    m.train(true);
    for (int i = 0; i < times; ++i) (void)m.forward(random_input<typename M::value_type>({2, in_channels, 8, 8}, 17 + i));
}

std::vector<std::string> names_of(const ssl::io::safetensors_file& f) {
    std::vector<std::string> v;
    for (const auto& [n, t] : f.tensors) v.push_back(n);
    return v;
}

bool same(const ssl::io::stored_tensor& a, const ssl::io::stored_tensor& b) {
    return a.dtype == b.dtype && a.shape == b.shape && a.data == b.data;
}

/// Bitwise equality of two whole state dicts.
bool same_state(const ssl::io::safetensors_file& a, const ssl::io::safetensors_file& b) {
    if (a.tensors.size() != b.tensors.size()) return false;
    for (const auto& [n, t] : a.tensors) {
        auto it = b.tensors.find(n);
        if (it == b.tensors.end() || !same(t, it->second)) return false;
    }
    return true;
}

const ssl::resnet_options small{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar};
ssl::resnet_options with_seed(ssl::resnet_options o, std::uint64_t seed) {
    o.seed = seed;
    return o;
}

}  // namespace

TEST_CASE("resnet18 checkpoint round trip: every parameter and buffer") {
    temp_dir d;
    ssl::resnet18<float> a(small), b(with_seed(small, 7));
    run_train_forwards(a, 1, 2);
    // The two models differ before loading, so the comparison below can fail.
    REQUIRE_FALSE(same_state(ssl::state_dict(a), ssl::state_dict(b)));

    const fs::path p = d / "r18.safetensors";
    ssl::save_checkpoint(p, a, {{"epoch", "3"}, {"format", "ignored"}});
    const auto file = ssl::io::read_safetensors(p);

    SUBCASE("names, dtypes and metadata in the file") {
        CHECK(file.tensors.size() == 120);  // torchvision's resnet18 state_dict without fc
        for (const char* n : {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.num_batches_tracked",
                              "layer1.0.conv1.weight", "layer1.1.bn2.running_mean", "layer2.0.downsample.0.weight",
                              "layer2.0.downsample.1.running_var", "layer3.0.downsample.1.weight",
                              "layer4.1.bn2.running_var", "layer4.1.conv2.weight"}) {
            INFO(n);
            CHECK(file.tensors.count(n) == 1);
        }
        CHECK(file.tensors.count("layer1.0.downsample.0.weight") == 0);  // stride 1, same width: no shortcut conv
        CHECK(file.tensors.count("fc.weight") == 0);
        const auto& w = file.tensors.at("conv1.weight");
        CHECK(w.dtype == ssl::io::dtype::F32);
        CHECK(w.shape == std::vector<std::size_t>{4, 1, 3, 3});
        CHECK(file.tensors.at("layer4.1.bn2.running_var").shape == std::vector<std::size_t>{32});
        const auto& nbt = file.tensors.at("bn1.num_batches_tracked");
        CHECK(nbt.dtype == ssl::io::dtype::I64);
        CHECK(nbt.shape.empty());
        CHECK(ssl::io::from_stored<std::int64_t>(nbt)[0] == 2);
        CHECK(file.metadata.at("format") == "ssl");
        CHECK(file.metadata.at("epoch") == "3");
        CHECK(file.metadata.size() == 2);
        // Running statistics really moved (so equality after loading means something).
        const auto rm = ssl::io::from_stored<float>(file.tensors.at("bn1.running_mean"));
        CHECK(std::any_of(rm.begin(), rm.end(), [](float v) { return v != 0.0f; }));
    }
    SUBCASE("load into a differently seeded model") {
        const auto report = ssl::load_checkpoint(p, b);
        CHECK(report.loaded.size() == 120);
        CHECK(report.complete());
        CHECK(same_state(ssl::state_dict(a), ssl::state_dict(b)));
        CHECK(same_state(ssl::state_dict(b), [&] {
            auto f = file;
            f.metadata.clear();
            return f;
        }()));
        // Same weights and statistics: same eval-mode output.
        a.train(false);
        b.train(false);
        const auto x = random_input<float>({2, 1, 8, 8}, 5);
        const auto ya = a.forward(x).out, yb = b.forward(x).out;
        CHECK(std::equal(ya.begin(), ya.end(), yb.begin()));
    }
}

TEST_CASE("loading writes into the existing storage, so aliases see the new values") {
    temp_dir d;
    ssl::resnet18<float> a(small), b(with_seed(small, 7));
    ssl::tensor<float> alias;
    b.for_each_parameter(
        [&](const std::string& n, ssl::parameter<float>& p) {
            if (n == "conv1.weight") alias = p.value;
        },
        "");
    const fs::path p = d / "r18.safetensors";
    ssl::save_checkpoint(p, a);
    ssl::load_checkpoint(p, b);
    const auto w = ssl::io::from_stored<float>(ssl::state_dict(a).tensors.at("conv1.weight"));
    CHECK(std::equal(alias.begin(), alias.end(), w.begin()));
}

TEST_CASE("resnet50 and convnet names") {
    SUBCASE("resnet50 (bottlenecks)") {
        ssl::resnet50<float> m({.in_channels = 3, .width = 4, .num_classes = 10});
        const auto f = ssl::state_dict(m);
        CHECK(f.tensors.size() == 320);  // torchvision's resnet50 state_dict
        for (const char* n : {"conv1.weight", "layer1.0.conv3.weight", "layer1.0.bn3.running_mean",
                              "layer1.0.downsample.0.weight", "layer3.5.bn2.num_batches_tracked",
                              "layer4.2.conv3.weight", "fc.weight", "fc.bias"}) {
            INFO(n);
            CHECK(f.tensors.count(n) == 1);
        }
        CHECK(f.tensors.at("conv1.weight").shape == std::vector<std::size_t>{4, 3, 7, 7});
        CHECK(f.tensors.at("layer1.0.conv3.weight").shape == std::vector<std::size_t>{16, 4, 1, 1});
        CHECK(f.tensors.at("fc.weight").shape == std::vector<std::size_t>{10, 128});
        CHECK(f.tensors.count("layer1.1.downsample.0.weight") == 0);
    }
    SUBCASE("resnet18 with a classifier") {
        ssl::resnet18<float> m({.width = 4, .num_classes = 3});
        const auto f = ssl::state_dict(m);
        CHECK(f.tensors.size() == 122);
        CHECK(f.tensors.at("fc.weight").shape == std::vector<std::size_t>{3, 32});
        CHECK(f.tensors.at("fc.bias").shape == std::vector<std::size_t>{3});
    }
    SUBCASE("convnet (features.<index>)") {
        temp_dir d;
        ssl::convnet<float> a({.in_channels = 1, .width = 2}), b({.in_channels = 1, .width = 2, .seed = 3});
        run_train_forwards(a, 1, 1);
        const auto f = ssl::state_dict(a);
        CHECK(f.tensors.size() == 35);  // 5 convs (weight, bias) + 5 batch norms (5 each)
        const std::set<std::string> expect{"features.0.weight", "features.0.bias", "features.1.weight",
                                           "features.1.running_mean", "features.1.num_batches_tracked",
                                           "features.4.weight", "features.5.running_var", "features.8.bias",
                                           "features.11.weight", "features.14.weight", "features.15.running_var"};
        for (const auto& n : expect) {
            INFO(n);
            CHECK(f.tensors.count(n) == 1);
        }
        for (const auto& n : names_of(f)) {  // nothing from relu / pool layers
            INFO(n);
            CHECK_FALSE(n.starts_with("features.2."));
            CHECK_FALSE(n.starts_with("features.3."));
            CHECK_FALSE(n.starts_with("features.17."));
        }
        const fs::path p = d / "convnet.safetensors";
        ssl::save_checkpoint(p, a);
        ssl::load_checkpoint(p, b);
        CHECK(same_state(ssl::state_dict(a), ssl::state_dict(b)));
    }
}

TEST_CASE("shape mismatch: width 4 into width 8") {
    temp_dir d;
    ssl::resnet18<float> a(small);
    ssl::resnet_options wide = small;
    wide.width = 8;
    ssl::resnet18<float> b(wide);
    const fs::path p = d / "w4.safetensors";
    ssl::save_checkpoint(p, a);
    const auto before = ssl::state_dict(b);
    for (bool strict : {true, false}) {
        const std::string msg = io_error_of([&] { ssl::load_checkpoint(p, b, strict); });
        INFO(msg);
        CHECK(contains(msg, "'conv1.weight'"));
        CHECK(contains(msg, "(4, 1, 3, 3)"));
        CHECK(contains(msg, "(8, 1, 3, 3)"));
        CHECK(contains(msg, p.string()));
        CHECK(same_state(ssl::state_dict(b), before));
    }
}

TEST_CASE("resnet18 checkpoint into resnet34: strict lists the missing names, non-strict loads what matches") {
    temp_dir d;
    ssl::resnet18<float> a(small);
    run_train_forwards(a, 1, 1);
    ssl::resnet34<float> b(with_seed(small, 7));
    const fs::path p = d / "r18.safetensors";
    ssl::save_checkpoint(p, a);
    const auto before = ssl::state_dict(b);
    REQUIRE(before.tensors.size() == 216);

    const std::string msg = io_error_of([&] { ssl::load_checkpoint(p, b); });
    INFO(msg);
    CHECK(contains(msg, p.string()));
    CHECK(contains(msg, "96 missing"));
    CHECK(contains(msg, "'layer1.2.conv1.weight'"));  // the first one the model asks for
    CHECK(contains(msg, "and 91 more"));
    CHECK_FALSE(contains(msg, "unexpected"));
    CHECK(same_state(ssl::state_dict(b), before));

    const auto report = ssl::load_checkpoint(p, b, false);
    CHECK(report.loaded.size() == 120);
    CHECK(report.missing.size() == 96);
    CHECK(report.unexpected.empty());
    CHECK_FALSE(report.complete());
    CHECK(std::find(report.missing.begin(), report.missing.end(), "layer3.5.bn2.num_batches_tracked") !=
          report.missing.end());
    const auto fa = ssl::state_dict(a), fb = ssl::state_dict(b);
    for (const auto& [n, t] : fb.tensors) {
        INFO(n);
        if (fa.tensors.count(n))
            CHECK(same(t, fa.tensors.at(n)));  // loaded
        else
            CHECK(same(t, before.tensors.at(n)));  // missing: untouched
    }
}

TEST_CASE("resnet34 checkpoint into resnet18: unexpected names") {
    temp_dir d;
    ssl::resnet34<float> a(small);
    ssl::resnet18<float> b(with_seed(small, 7));
    const fs::path p = d / "r34.safetensors";
    ssl::save_checkpoint(p, a);
    const auto before = ssl::state_dict(b);
    const std::string msg = io_error_of([&] { ssl::load_checkpoint(p, b); });
    CHECK(contains(msg, "96 unexpected"));
    CHECK(contains(msg, "'layer1.2."));
    CHECK(same_state(ssl::state_dict(b), before));
    const auto report = ssl::load_checkpoint(p, b, false);
    CHECK(report.loaded.size() == 120);
    CHECK(report.missing.empty());
    CHECK(report.unexpected.size() == 96);
}

TEST_CASE("a failed load leaves the model unchanged even when most tensors fit") {
    ssl::resnet18<float> a(small), b(with_seed(small, 7));
    run_train_forwards(a, 1, 1);
    const auto before = ssl::state_dict(b);

    SUBCASE("one wrong shape at the end of the traversal") {
        auto f = ssl::state_dict(a);
        f.tensors["layer4.1.bn2.running_var"] = ssl::io::to_stored(ssl::tensor<float>::zeros({31}));
        for (bool strict : {true, false}) {
            const std::string msg = io_error_of([&] { ssl::load_state_dict(b, f, strict, "edited.safetensors"); });
            CHECK(contains(msg, "'layer4.1.bn2.running_var'"));
            CHECK(contains(msg, "(31,)"));
            CHECK(contains(msg, "(32,)"));
            CHECK(contains(msg, "edited.safetensors"));
            CHECK(same_state(ssl::state_dict(b), before));
        }
    }
    SUBCASE("one wrong dtype") {
        auto f = ssl::state_dict(a);
        f.tensors["bn1.num_batches_tracked"] = ssl::io::to_stored(ssl::tensor<float>::full({}, 1.0f));
        const std::string msg = io_error_of([&] { ssl::load_state_dict(b, f); });
        CHECK(contains(msg, "'bn1.num_batches_tracked'"));
        CHECK(contains(msg, "dtype mismatch"));
        CHECK(same_state(ssl::state_dict(b), before));
    }
    SUBCASE("one unexpected extra tensor") {
        auto f = ssl::state_dict(a);
        f.tensors["projector.weight"] = ssl::io::to_stored(ssl::tensor<float>::zeros({2, 2}));
        const std::string msg = io_error_of([&] { ssl::load_state_dict(b, f); });
        CHECK(contains(msg, "1 unexpected"));
        CHECK(contains(msg, "'projector.weight'"));
        CHECK(same_state(ssl::state_dict(b), before));
        const auto report = ssl::load_state_dict(b, f, false);
        CHECK(report.unexpected == std::vector<std::string>{"projector.weight"});
        CHECK(same_state(ssl::state_dict(b), ssl::state_dict(a)));
    }
    SUBCASE("a corrupt file") {
        temp_dir d;
        const fs::path p = d / "r18.safetensors";
        ssl::save_checkpoint(p, a);
        fs::resize_file(p, fs::file_size(p) - 1);
        const std::string msg = io_error_of([&] { ssl::load_checkpoint(p, b); });
        CHECK(contains(msg, p.string()));
        CHECK(same_state(ssl::state_dict(b), before));
    }
}

TEST_CASE("float checkpoint into a double model and back") {
    temp_dir d;
    ssl::resnet18<float> a(small);
    run_train_forwards(a, 1, 1);
    ssl::resnet18<double> b(with_seed(small, 7));
    const fs::path p = d / "f32.safetensors";
    ssl::save_checkpoint(p, a);
    const auto report = ssl::load_checkpoint(p, b);
    CHECK(report.loaded.size() == 120);

    const auto fa = ssl::state_dict(a), fb = ssl::state_dict(b);
    CHECK(fb.tensors.at("conv1.weight").dtype == ssl::io::dtype::F64);
    CHECK(fb.tensors.at("bn1.num_batches_tracked").dtype == ssl::io::dtype::I64);
    for (const auto& [n, t] : fa.tensors) {
        INFO(n);
        const auto& u = fb.tensors.at(n);
        if (t.dtype == ssl::io::dtype::I64) {
            CHECK(same(t, u));
            continue;
        }
        const auto x = ssl::io::from_stored<float>(t);
        const auto y = ssl::io::from_stored<double>(u);
        REQUIRE(x.numel() == y.numel());
        for (std::size_t i = 0; i < x.numel(); ++i) CHECK(y[i] == static_cast<double>(x[i]));
    }

    // Double back into float: exact, since the doubles came from floats.
    ssl::resnet18<float> c(with_seed(small, 9));
    const fs::path q = d / "f64.safetensors";
    ssl::save_checkpoint(q, b);
    CHECK(ssl::io::read_safetensors(q).tensors.at("conv1.weight").dtype == ssl::io::dtype::F64);
    ssl::load_checkpoint(q, c);
    CHECK(same_state(ssl::state_dict(c), fa));
}

TEST_CASE("state_dict and load_state_dict carry extra tensors and metadata") {
    temp_dir d;
    ssl::resnet18<float> a(small), b(with_seed(small, 7));
    auto f = ssl::state_dict(a);
    CHECK(f.metadata.at("format") == "ssl");
    // state_dict holds copies: changing the model afterwards does not change it.
    const auto snapshot = f.tensors.at("conv1.weight");
    a.for_each_parameter([](const std::string&, ssl::parameter<float>& p) { p.value.fill(0.5f); }, "");
    CHECK(same(f.tensors.at("conv1.weight"), snapshot));

    f.tensors["optimizer.step"] = ssl::io::to_stored(ssl::tensor<std::int64_t>::full({}, 1234));
    f.metadata["optimizer"] = "lars";
    const fs::path p = d / "full.safetensors";
    ssl::io::write_safetensors(p, f);
    const auto g = ssl::io::read_safetensors(p);
    CHECK(g.metadata.at("optimizer") == "lars");
    const auto report = ssl::load_state_dict(b, g, false);
    CHECK(report.unexpected == std::vector<std::string>{"optimizer.step"});
    CHECK(ssl::io::from_stored<std::int64_t>(g.tensors.at("optimizer.step"))[0] == 1234);
}

TEST_CASE("save_checkpoint into a missing directory") {
    temp_dir d;
    ssl::resnet18<float> a(small);
    const fs::path p = d / "missing" / "r18.safetensors";
    const std::string msg = io_error_of([&] { ssl::save_checkpoint(p, a); });
    CHECK(contains(msg, p.string()));
    CHECK(fs::is_empty(d.path));
}

// ---- method configs as JSON (checkpoint metadata "ssl.config") ---------------

namespace {

using any_b = ssl::any_backbone<float>;

ssl::any_backbone_options json_backbone() {
    return {.arch = "resnet34", .in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 12345678901234567ull};
}

/// C -> JSON -> text -> JSON -> C -> JSON gives the same JSON.
template <class C>
C round_trip(const C& c) {
    const nlohmann::json j = ssl::io::config_to_json(c);
    const C back = ssl::io::config_from_json<C>(nlohmann::json::parse(j.dump()), "test");
    CHECK(ssl::io::config_to_json(back) == j);
    return back;
}

template <class F>
std::string config_error_of(F&& f) {
    return io_error_of(std::forward<F>(f));
}

}  // namespace

TEST_CASE("config_json: every method's config round-trips, values exact") {
    const auto b = json_backbone();
    {
        auto c = ssl::moco_v2_config<any_b>(b, 28, 1, true);
        c.target.size = 128;
        c.loss.temperature = 0.1;
        c.augment.crop_min_scale = 0.3;
        const auto r = round_trip(c);
        CHECK(r.target.size == 128);
        CHECK(r.loss.temperature == 0.1);  // exact, not to 6 digits
        CHECK(r.augment.crop_min_scale == 0.3);
        CHECK(r.backbone.arch == "resnet34");
        CHECK(r.backbone.stem == ssl::stem::cifar);
        CHECK(r.backbone.seed == 12345678901234567ull);
        CHECK(r.loss.symmetric);
        CHECK(r.target.momentum == 0.99);
    }
    {
        auto c = ssl::deepcluster_config<any_b>(b, 28, 1, 1000);
        c.head.classes = 7;
        const auto r = round_trip(c);
        CHECK(r.head.classes == 7);
        CHECK(r.target.instances == 1000);
        CHECK(r.target.features.pca_dim == 256);
    }
    {
        auto c = ssl::sela_config<any_b>(b, 28, 1, 640);
        c.head.classes = 5;
        c.target.lambda = 10;
        c.target.tolerance = 1e-2;
        const auto r = round_trip(c);
        CHECK(r.head.classes == 5);
        CHECK(r.head.heads == 10);
        CHECK(r.target.lambda == 10);
        CHECK(r.target.tolerance == 1e-2);
    }
    {
        auto c = ssl::instdisc_config<any_b>(b, 28, 1, 300);
        c.loss.z = ssl::loss::z_estimate::every_batch;
        c.target.feature_init = true;
        const auto r = round_trip(c);
        CHECK(r.loss.z == ssl::loss::z_estimate::every_batch);
        CHECK(r.target.feature_init);
        CHECK(r.target.instances == 300);
        CHECK(ssl::io::config_to_json(c)["loss"]["z"] == "every_batch");
    }
    round_trip(ssl::simclr_config<any_b>(b, 28, 1));
    round_trip(ssl::byol_config<any_b>(b, 28, 1));
    round_trip(ssl::rotnet_config<any_b>(b, 28, 1));
    round_trip(ssl::instdisc_full_softmax_config<any_b>(b, 28, 1, 300));
    round_trip(ssl::deepercluster_config<any_b>(b, 28, 1, 900));
    round_trip(ssl::instance_cls_config<any_b>(b, 28, 1, 900));
    {
        auto c = ssl::jigsaw_config<any_b>(b, 28, 1, 100);  // head::group<fc_relu, mlp>, augment::jigsaw_config
        c.augment.permutation_seed = 9;
        const auto r = round_trip(c);
        CHECK(r.augment.permutation_seed == 9);
        CHECK(r.head.copies == c.head.copies);
        CHECK(r.head.joint.out == 100);
    }
    {
        auto c = ssl::pirl_config<any_b>(b, 28, 1, 600);  // head::route<embedding, group<...>>, pirl_views_config
        c.loss.lambda = 0.25;
        c.augment.tiles.permutations = 24;
        c.augment.image.crop_min_scale = 0.3;
        const auto r = round_trip(c);
        CHECK(r.loss.lambda == 0.25);
        CHECK(r.loss.z == ssl::loss::z_estimate::until_filled);
        CHECK(r.augment.tiles.permutations == 24);
        CHECK(r.augment.image.crop_min_scale == 0.3);
        CHECK(std::get<1>(r.head).copies == 9);
        CHECK(r.target.negatives == 150);
    }
    {
        auto c = ssl::exemplar_config<any_b>(b, 16, 1, 500);  // exemplar_views_config: ranges and an enum
        c.augment.scale = {0.8, 1.25};
        c.augment.border = ssl::augment::border_mode::replicate;
        const auto r = round_trip(c);
        CHECK(r.augment.scale == ssl::augment::range{0.8, 1.25});
        CHECK(r.augment.border == ssl::augment::border_mode::replicate);
        CHECK(r.augment.transforms_per_class == 100);
        CHECK(r.loss.instances == 500);
        CHECK(ssl::io::config_to_json(c)["augment"]["border"] == "replicate");
    }
    // the concrete backbones' options too
    round_trip(ssl::simclr_config<ssl::resnet18<float>>({.in_channels = 1, .width = 4}, 28, 1));
    round_trip(ssl::rotnet_config<ssl::convnet<float>>({.in_channels = 3, .width = 4, .seed = 2}, 32, 3));
    // a method config has the five policy keys
    const auto j = ssl::io::config_to_json(ssl::simclr_config<any_b>(b, 28, 1));
    CHECK(j.size() == 5);
    for (const char* k : {"backbone", "augment", "head", "loss", "target"}) CHECK(j.contains(k));
    CHECK(j["target"] == nlohmann::json::object());
}

TEST_CASE("config_json: a key added later is optional: checkpoints written before it keep their behaviour") {
    using config = ssl::simclr<any_b>::config;
    const auto c = ssl::simclr_config<any_b>(json_backbone(), 28, 1);
    CHECK(c.head.output_batch_norm);  // SimCLR's projector ends in a batch norm since issue 24
    auto j = ssl::io::config_to_json(c);
    CHECK(j["head"]["output_batch_norm"] == true);
    j["head"].erase("output_batch_norm");  // as written before the key existed
    const auto old = ssl::io::config_from_json<config>(j);
    CHECK_FALSE(old.head.output_batch_norm);
    CHECK(old.head.hidden == c.head.hidden);
    j["head"]["output_batch_norm"] = "yes";  // present, it must still be a bool
    CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }), "head.output_batch_norm"));
}

TEST_CASE("config_json: missing, unknown and mistyped keys are errors naming the key") {
    using config = ssl::moco_v2<any_b>::config;
    const nlohmann::json good = ssl::io::config_to_json(ssl::moco_v2_config<any_b>(json_backbone(), 28, 1));
    {
        auto j = good;
        j["target"].erase("size");
        const auto msg = config_error_of([&] { (void)ssl::io::config_from_json<config>(j, "checkpoint 'x'"); });
        CHECK(contains(msg, "checkpoint 'x'"));
        CHECK(contains(msg, "key 'target.size' is missing"));
    }
    {
        auto j = good;
        j.erase("head");
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }), "key 'head' is missing"));
    }
    {
        auto j = good;
        j["loss"]["tau"] = 0.2;
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }),
                       "key 'loss.tau' is not a field"));
    }
    {
        auto j = good;
        j["extra"] = 1;
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }), "key 'extra' is not a field"));
    }
    {
        auto j = good;
        j["target"]["size"] = "big";
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }),
                       "key 'target.size' must be a non-negative integer, got \"big\""));
        j["target"]["size"] = -3;
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }),
                       "key 'target.size' must be a non-negative integer"));
    }
    {
        auto j = good;
        j["backbone"]["stem"] = "tiny";
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }),
                       "key 'backbone.stem' must be one of imagenet, cifar"));
    }
    {
        auto j = good;
        j["loss"]["symmetric"] = 1;
        CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }),
                       "key 'loss.symmetric' must be true or false"));
    }
    CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(nlohmann::json::array()); }),
                   "must be a JSON object"));
}

TEST_CASE("config_json: a value nested a million levels deep is an error, not a stack overflow") {
    // The error message showed the value with dump(), which recursed once per
    // level (the JSON parser and destructor do not recurse).
    using config = ssl::moco_v2<any_b>::config;
    auto j = ssl::io::config_to_json(ssl::moco_v2_config<any_b>(json_backbone(), 28, 1));
    const std::size_t depth = 1'000'000;
    j["backbone"] = nlohmann::json::parse(std::string(depth, '[') + std::string(depth, ']'));
    CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }),
                   "key 'backbone' must be a JSON object, got an array nested over 32 levels deep"));
    j["backbone"] = nlohmann::json::parse("[[[1]]]");  // shallow values are still shown
    CHECK(contains(config_error_of([&] { (void)ssl::io::config_from_json<config>(j); }), "got [[[1]]]"));
}

TEST_CASE("config_json: a config stored in checkpoint metadata rebuilds a model of the same shapes") {
    temp_dir d;
    auto c = ssl::moco_v2_config<any_b>({.arch = "convnet", .in_channels = 1, .width = 4, .seed = 3}, 16, 1, true);
    c.target.size = 96;
    c.head = {.hidden = 24, .out = 12, .batch_norm = false};
    ssl::moco_v2<any_b> a(c);
    const fs::path p = d / "moco.safetensors";
    ssl::save_checkpoint(p, a, {{"ssl.config", ssl::io::config_to_json(c).dump()}});
    const auto f = ssl::io::read_safetensors(p);
    const auto back = ssl::io::config_from_json<ssl::moco_v2<any_b>::config>(
        nlohmann::json::parse(f.metadata.at("ssl.config")), p.string());
    ssl::moco_v2<any_b> b(back);
    const auto report = ssl::load_state_dict(b, f, true, p.string());
    CHECK(report.complete());
    // the default config's queue does not fit: the reason the config is stored
    ssl::moco_v2<any_b> wrong(ssl::moco_v2_config<any_b>({.arch = "convnet", .in_channels = 1, .width = 4}, 16, 1, true));
    CHECK(contains(io_error_of([&] { (void)ssl::load_state_dict(wrong, f, true, p.string()); }), "shape"));
}

}  // namespace test_checkpoint
