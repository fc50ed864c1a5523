// ONNX export (io/onnx.hpp): the protobuf bytes parsed back by a minimal
// reader here (no onnx library): op types in order, initializers and their
// shapes, the folded batch norm's values, input and output names and dims,
// opset and producer, refusals. Running the models is the peer check
// tests/peer/run_onnx_peer.sh (onnx's checker, ONNX Runtime, OpenCV).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <ssl/backbone/any_backbone.hpp>
#include <ssl/io/onnx.hpp>

#include "temp_files.hpp"

namespace test_onnx {

/// A protobuf message's fields: numbers to their raw values (varints, or the
/// bytes of a length-delimited field), in order.
struct pb {
    std::multimap<unsigned, std::uint64_t> ints;
    std::multimap<unsigned, std::string> bytes;
    std::vector<std::uint32_t> fixed32;

    static std::uint64_t varint(std::string_view s, std::size_t& i) {
        std::uint64_t v = 0;
        for (int shift = 0;; shift += 7) {
            REQUIRE(i < s.size());
            const auto b = static_cast<unsigned char>(s[i++]);
            v |= std::uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
    }
    static pb parse(std::string_view s) {
        pb m;
        std::size_t i = 0;
        while (i < s.size()) {
            const std::uint64_t tag = varint(s, i);
            const auto field = static_cast<unsigned>(tag >> 3);
            switch (tag & 7) {
                case 0: m.ints.emplace(field, varint(s, i)); break;
                case 2: {
                    const std::uint64_t n = varint(s, i);
                    REQUIRE(i + n <= s.size());
                    m.bytes.emplace(field, std::string(s.substr(i, n)));
                    i += n;
                    break;
                }
                case 5: {
                    REQUIRE(i + 4 <= s.size());
                    std::uint32_t u;
                    std::memcpy(&u, s.data() + i, 4);
                    m.fixed32.push_back(u);
                    i += 4;
                    break;
                }
                default: FAIL("unexpected wire type ", tag & 7);
            }
        }
        return m;
    }
    std::vector<std::string> all(unsigned f) const {
        std::vector<std::string> v;
        for (auto [a, b] = bytes.equal_range(f); a != b; ++a) v.push_back(a->second);
        return v;
    }
    std::vector<std::int64_t> all_ints(unsigned f) const {
        std::vector<std::int64_t> v;
        for (auto [a, b] = ints.equal_range(f); a != b; ++a) v.push_back(static_cast<std::int64_t>(a->second));
        return v;
    }
    std::string one(unsigned f) const {
        const auto v = all(f);
        REQUIRE(v.size() == 1);
        return v[0];
    }
    std::int64_t one_int(unsigned f) const {
        const auto v = all_ints(f);
        REQUIRE(v.size() == 1);
        return v[0];
    }
};

struct tensor_info {
    std::vector<std::int64_t> dims;
    std::vector<float> values;
};

struct parsed_model {
    pb model, graph;
    std::vector<std::string> ops, node_names;
    std::vector<std::vector<std::string>> node_inputs;
    std::map<std::string, tensor_info> init;
    std::vector<std::string> init_order;
    std::map<std::string, pb> node_by_name;
};

parsed_model parse(const std::string& bytes) {
    parsed_model p;
    p.model = pb::parse(bytes);
    p.graph = pb::parse(p.model.one(7));
    for (const auto& n : p.graph.all(1)) {
        const pb node = pb::parse(n);
        p.ops.push_back(node.one(4));
        p.node_names.push_back(node.one(3));
        p.node_inputs.push_back(node.all(1));
        p.node_by_name.emplace(node.one(3), node);
    }
    for (const auto& t : p.graph.all(5)) {
        const pb tp = pb::parse(t);
        CHECK(tp.one_int(2) == 1);  // FLOAT
        tensor_info ti;
        ti.dims = tp.all_ints(1);
        const std::string raw = tp.one(9);
        ti.values.resize(raw.size() / 4);
        std::memcpy(ti.values.data(), raw.data(), raw.size());
        std::int64_t n = 1;
        for (auto d : ti.dims) n *= d;
        CHECK(static_cast<std::int64_t>(ti.values.size()) == n);
        p.init_order.push_back(tp.one(8));
        p.init.emplace(tp.one(8), std::move(ti));
    }
    return p;
}

/// (name, dims: a dim_param as -1 with its name) of a ValueInfoProto.
std::pair<std::string, std::vector<std::string>> value_info(const std::string& bytes) {
    const pb vi = pb::parse(bytes);
    const pb type = pb::parse(vi.one(2));
    const pb tt = pb::parse(type.one(1));
    CHECK(tt.one_int(1) == 1);  // elem_type FLOAT
    const pb shape = pb::parse(tt.one(2));
    std::vector<std::string> dims;
    for (const auto& d : shape.all(1)) {
        const pb dim = pb::parse(d);
        dims.push_back(dim.bytes.contains(2) ? dim.one(2) : std::to_string(dim.one_int(1)));
    }
    return {vi.one(1), dims};
}

/// The attribute `name` of a node, as ints.
std::vector<std::int64_t> attr_ints(const pb& node, const std::string& name) {
    for (const auto& a : node.all(5)) {
        const pb at = pb::parse(a);
        if (at.one(1) == name) return at.ints.contains(8) ? at.all_ints(8) : at.all_ints(3);
    }
    FAIL("no attribute ", name);
    return {};
}

std::size_t count(const std::vector<std::string>& v, const std::string& x) {
    return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

TEST_CASE("onnx: resnet18 with the cifar stem: header, graph, initializers, input and output") {
    ssl::any_backbone<float> b({.arch = "resnet18", .in_channels = 3, .width = 8, .stem = ssl::stem::cifar, .seed = 1});
    const auto bytes = ssl::io::onnx_model_bytes(
        b, {.height = 32, .width = 32, .mean = {0.485, 0.456, 0.406}, .stddev = {0.229, 0.224, 0.225},
            .producer_version = "test", .metadata = {{"arch", "resnet18"}}});
    const auto p = parse(bytes);
    CHECK(p.model.one_int(1) == 7);      // ir_version
    CHECK(p.model.one(2) == "ssl");      // producer_name
    CHECK(p.model.one(3) == "test");     // producer_version
    const pb opset = pb::parse(p.model.one(8));
    CHECK(opset.one_int(2) == 13);
    const pb meta = pb::parse(p.model.one(14));
    CHECK(meta.one(1) == "arch");
    CHECK(meta.one(2) == "resnet18");

    // Sub, Div, stem conv + relu, 8 basic blocks (conv relu conv [downsample] add relu), pool, flatten
    std::vector<std::string> want{"Sub", "Div", "Conv", "Relu"};
    for (int s = 0; s < 4; ++s)
        for (int blk = 0; blk < 2; ++blk) {
            for (const char* op : {"Conv", "Relu", "Conv"}) want.push_back(op);
            if (s > 0 && blk == 0) want.push_back("Conv");  // the downsample
            want.push_back("Add");
            want.push_back("Relu");
        }
    want.push_back("GlobalAveragePool");
    want.push_back("Flatten");
    CHECK(p.ops == want);
    CHECK(count(p.ops, "MaxPool") == 0);
    CHECK(count(p.ops, "BatchNormalization") == 0);  // folded

    // 20 convs (17 + 3 downsamples), each a weight and a folded bias, and the mean / std
    CHECK(p.init.size() == 2 * 20 + 2);
    CHECK(p.init.at("input_mean").dims == std::vector<std::int64_t>{3, 1, 1});  // OpenCV 4.6 needs (C, 1, 1)
    CHECK(p.init.at("input_std").values[2] == doctest::Approx(0.225));
    CHECK(p.init.at("conv1.weight").dims == std::vector<std::int64_t>{8, 3, 3, 3});
    CHECK(p.init.at("conv1.bias").dims == std::vector<std::int64_t>{8});
    CHECK(p.init.at("layer4.1.conv2.weight").dims == std::vector<std::int64_t>{64, 64, 3, 3});
    CHECK(p.init.at("layer2.0.downsample.0.weight").dims == std::vector<std::int64_t>{16, 8, 1, 1});
    CHECK(p.init.contains("layer2.0.downsample.0.bias"));
    // every node input is the graph input, an initializer or an earlier output
    std::set<std::string> known{"images"};
    for (const auto& [n, t] : p.init) known.insert(n);
    for (std::size_t i = 0; i < p.ops.size(); ++i) {
        for (const auto& in : p.node_inputs[i]) CHECK_MESSAGE(known.contains(in), p.node_names[i], " reads ", in);
        known.insert(pb::parse(p.graph.all(1)[i]).one(2));
    }
    // strides as resnet.hpp builds them, pads kernel / 2
    CHECK(attr_ints(p.node_by_name.at("conv1"), "strides") == std::vector<std::int64_t>{1, 1});
    CHECK(attr_ints(p.node_by_name.at("layer2.0.conv1"), "strides") == std::vector<std::int64_t>{2, 2});
    CHECK(attr_ints(p.node_by_name.at("layer2.0.conv2"), "strides") == std::vector<std::int64_t>{1, 1});
    CHECK(attr_ints(p.node_by_name.at("layer3.0.downsample.0"), "strides") == std::vector<std::int64_t>{2, 2});
    CHECK(attr_ints(p.node_by_name.at("layer3.0.downsample.0"), "pads") == std::vector<std::int64_t>{0, 0, 0, 0});
    CHECK(attr_ints(p.node_by_name.at("layer1.0.conv1"), "pads") == std::vector<std::int64_t>{1, 1, 1, 1});

    const auto in = value_info(p.graph.one(11));
    CHECK(in.first == "images");
    CHECK(in.second == std::vector<std::string>{"N", "3", "32", "32"});
    const auto out = value_info(p.graph.one(12));
    CHECK(out.first == "features");
    CHECK(out.second == std::vector<std::string>{"N", "64"});
}

TEST_CASE("onnx: batch norm is folded into the conv with its running statistics") {
    ssl::resnet18<float> r({.in_channels = 1, .width = 4, .stem = ssl::stem::imagenet, .seed = 3});
    // bn1: gamma, beta, running mean and variance of our choosing
    std::vector<float> conv_w;
    r.for_each_parameter(
        [&](const std::string& n, ssl::parameter<float>& p) {
            if (n == "conv1.weight") conv_w.assign(p.value.begin(), p.value.end());
            if (n == "bn1.weight")
                for (std::size_t c = 0; c < 4; ++c) p.value[c] = 0.5f + static_cast<float>(c);
            if (n == "bn1.bias")
                for (std::size_t c = 0; c < 4; ++c) p.value[c] = -1.0f + static_cast<float>(c);
        },
        "");
    r.for_each_buffer(
        [&](const std::string& n, auto& t) {
            if constexpr (std::is_same_v<std::decay_t<decltype(t)>, ssl::tensor<float>>) {
                if (n == "bn1.running_mean")
                    for (std::size_t c = 0; c < 4; ++c) t[c] = 0.1f * static_cast<float>(c);
                if (n == "bn1.running_var")
                    for (std::size_t c = 0; c < 4; ++c) t[c] = 2.0f + static_cast<float>(c);
            }
        },
        "");
    r.train(true);  // exported in eval mode whatever the flag says
    const auto p = parse(ssl::io::onnx_model_bytes(r, {.height = 40, .width = 40}));
    CHECK(p.ops.front() == "Conv");  // no mean / std: no Sub, Div
    CHECK(p.ops[2] == "MaxPool");
    CHECK(attr_ints(p.node_by_name.at("conv1"), "strides") == std::vector<std::int64_t>{2, 2});
    CHECK(attr_ints(p.node_by_name.at("conv1"), "pads") == std::vector<std::int64_t>{3, 3, 3, 3});
    CHECK(attr_ints(p.node_by_name.at("maxpool"), "kernel_shape") == std::vector<std::int64_t>{3, 3});
    const auto& w = p.init.at("conv1.weight");
    const auto& b = p.init.at("conv1.bias");
    REQUIRE(w.dims == std::vector<std::int64_t>{4, 1, 7, 7});
    for (std::size_t c = 0; c < 4; ++c) {
        const double scale = (0.5 + c) / std::sqrt(2.0 + c + 1e-5);
        CHECK(b.values[c] == doctest::Approx(-1.0 + c - 0.1 * c * scale).epsilon(1e-6));
        for (std::size_t j = 0; j < 49; ++j)
            CHECK(w.values[c * 49 + j] == doctest::Approx(conv_w[c * 49 + j] * scale).epsilon(1e-6));
    }
    CHECK(r.training());  // the flag is left alone
}

TEST_CASE("onnx: resnet50 bottlenecks, the convnet, and an atomic file") {
    ssl::any_backbone<float> r50({.arch = "resnet50", .in_channels = 3, .width = 4, .stem = ssl::stem::imagenet});
    const auto p = parse(ssl::io::onnx_model_bytes(r50, {.height = 64, .width = 64}));
    CHECK(count(p.ops, "Conv") == 1 + 16 * 3 + 4);  // stem, 16 bottlenecks, 4 downsamples
    CHECK(count(p.ops, "Add") == 16);
    CHECK(count(p.ops, "MaxPool") == 1);
    CHECK(attr_ints(p.node_by_name.at("layer2.0.conv2"), "strides") == std::vector<std::int64_t>{2, 2});  // v1.5
    CHECK(attr_ints(p.node_by_name.at("layer2.0.conv1"), "strides") == std::vector<std::int64_t>{1, 1});
    CHECK(value_info(p.graph.one(12)).second == std::vector<std::string>{"N", "128"});

    ssl::any_backbone<float> cn({.arch = "convnet", .in_channels = 1, .width = 8});
    ssl_test::temp_dir dir("onnx_file");
    std::filesystem::create_directories(dir.path);
    const auto path = dir.path / "convnet.onnx";
    ssl::io::write_onnx(path, cn, {.height = 28, .width = 28, .mean = {0.286}, .stddev = {0.353}});
    const auto c = parse(ssl_test::read_text(path));
    CHECK(c.ops == std::vector<std::string>{"Sub", "Div", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv",
                                            "Relu", "Conv", "Relu", "Conv", "Relu", "GlobalAveragePool", "Flatten"});
    CHECK(c.init.at("features.0.weight").dims == std::vector<std::int64_t>{8, 1, 5, 5});
    CHECK(c.init.at("features.14.bias").dims == std::vector<std::int64_t>{32});
    CHECK(value_info(c.graph.one(11)).second == std::vector<std::string>{"N", "1", "28", "28"});
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path)) files += e.is_regular_file();
    CHECK(files == 1);  // no temporary file left
}

TEST_CASE("onnx: the backbones of Revisiting: resnet v2, revnet and vgg graphs") {
    // resnet18v2, cifar stem: per unit a standalone bn1 (Mul, Add), two convs
    // (bn2 folded into conv1), the residual Add; a final norm (Mul, Add)
    ssl::any_backbone<float> v2({.arch = "resnet18v2", .in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    const auto a = parse(ssl::io::onnx_model_bytes(v2, {.height = 16, .width = 16}));
    CHECK(count(a.ops, "Conv") == 1 + 8 * 2 + 3);  // stem, 8 units, 3 projections
    CHECK(count(a.ops, "Mul") == 8 + 1);
    CHECK(count(a.ops, "Add") == 8 + 8 + 1);  // bn shifts, residual adds, norm's shift
    CHECK(a.init.count("layer1.0.conv1.bias") == 1);   // bn2 folded in
    CHECK(a.init.count("layer1.0.conv2.bias") == 0);   // the unit's last conv has no bn after it
    CHECK(a.init.at("layer2.0.downsample.0.weight").dims == std::vector<std::int64_t>{8, 4, 1, 1});
    CHECK(a.init.at("norm.scale").dims == std::vector<std::int64_t>{32, 1, 1});
    // revnet18: one reversible unit per stage: Split, F and G (each a bn1, two convs), Concat
    ssl::any_backbone<float> rev({.arch = "revnet18", .in_channels = 1, .width = 4, .stem = ssl::stem::cifar});
    const auto r = parse(ssl::io::onnx_model_bytes(rev, {.height = 16, .width = 16}));
    CHECK(count(r.ops, "Split") == 4);
    CHECK(count(r.ops, "Concat") == 4);
    CHECK(count(r.ops, "Conv") == 1 + 4 * 2 + 3 + 4 * 2 * 2);
    CHECK(r.init.at("layer3.1.g.conv1.weight").dims == std::vector<std::int64_t>{8, 8, 3, 3});
    // vgg11 imagenet stem: 8 conv-relu (bn folded), 5 pools 2x2/2, torchvision indices
    ssl::any_backbone<float> vgg({.arch = "vgg11", .in_channels = 3, .width = 4});
    const auto g = parse(ssl::io::onnx_model_bytes(vgg, {.height = 32, .width = 32}));
    CHECK(count(g.ops, "Conv") == 8);
    CHECK(count(g.ops, "MaxPool") == 5);
    CHECK(g.init.count("features.25.weight") == 1);  // the last conv of vgg11_bn
    CHECK(attr_ints(g.node_by_name.at("features.28"), "kernel_shape") == std::vector<std::int64_t>{2, 2});
    CHECK_THROWS_WITH_AS(ssl::io::onnx_model_bytes(vgg, {.height = 16, .width = 32}),
                         doctest::Contains("vgg images must be at least 32x32"), ssl::shape_error);
    ssl::any_backbone<float> fc({.arch = "revnet50", .in_channels = 1, .width = 4, .num_classes = 3});
    CHECK_THROWS_WITH_AS(ssl::io::onnx_model_bytes(fc, {.height = 64, .width = 64}),
                         doctest::Contains("a revnet with a classifier (num_classes = 3) is not supported"),
                         ssl::value_error);
}

TEST_CASE("onnx: refusals name what is wrong") {
    ssl::any_backbone<float> b({.arch = "resnet18", .in_channels = 3, .width = 4, .stem = ssl::stem::imagenet});
    CHECK_THROWS_WITH_AS(ssl::io::onnx_model_bytes(b, {.height = 0, .width = 32}),
                         doctest::Contains("input size must be positive"), ssl::value_error);
    CHECK_THROWS_WITH_AS(ssl::io::onnx_model_bytes(b, {.height = 32, .width = 32, .mean = {0.5}, .stddev = {0.5}}),
                         doctest::Contains("the normalisation has 1 channels, the backbone takes 3"), ssl::value_error);
    ssl::any_backbone<float> cn({.arch = "convnet", .in_channels = 1, .width = 4});
    CHECK_THROWS_WITH_AS(ssl::io::onnx_model_bytes(cn, {.height = 6, .width = 28}),
                         doctest::Contains("convnet images must be at least 8x8"), ssl::shape_error);
    ssl::any_backbone<float> fc({.arch = "resnet18", .in_channels = 3, .width = 4, .num_classes = 10});
    CHECK_THROWS_WITH_AS(ssl::io::onnx_model_bytes(fc, {.height = 32, .width = 32}),
                         doctest::Contains("classifier (num_classes = 10) is not supported"), ssl::value_error);
    ssl_test::temp_dir dir("onnx_unwritable");  // absent directory: an io_error naming the path
    CHECK_THROWS_AS(ssl::io::write_onnx(dir.path / "x" / "m.onnx", b, {.height = 32, .width = 32}), ssl::io_error);
}

}  // namespace test_onnx
