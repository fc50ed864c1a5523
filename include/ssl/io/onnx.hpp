#pragma once
// A backbone as an ONNX model, for deployment without Python (ONNX Runtime,
// TensorRT, OpenCV's dnn module). Self-contained: the protobuf wire format is
// written directly (no libprotobuf, no libonnx).
//
// Format reference: onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto; the field numbers are in
// onnx_detail below) and the operator specs of opset 13 (docs/Operators.md);
// protobuf's encoding guide for varints and length-delimited fields.
//
// Contract: onnx_model_bytes(backbone, opt) / write_onnx(path, backbone, opt)
//   input   "images"   float (N, C, H, W): N symbolic ("N"), C the backbone's
//                      in_channels, H x W = opt.height x opt.width (fixed)
//   output  "features" float (N, D): the globally pooled features, D =
//                      feature_dim(); what the backbone's forward returns in
//                      eval mode, i.e. what method::embed / `ssl embed` give
//                      for images whose eval transform is a per-channel
//                      normalisation at this size
//   with opt.mean / opt.stddev: images are raw pixels in [0, 1] and the graph
//   starts with Sub(mean) and Div(stddev) per channel (augment::normalize's
//   float arithmetic); without them images are fed to the first conv as is.
// Backbones: resnet18/34/50 (any width, in_channels, either stem), convnet,
// resnet_v2 (resnet18v2/34v2/50v2), revnet (revnet18/50), vgg (vgg11..19),
// and any_backbone holding one of them. Refused (ssl::value_error naming it):
// a ResNet or RevNet with a classifier (num_classes > 0), anything else.
//
// Design choices, one a line:
// - opset 13 / IR version 7: every op used has had its present semantics since
//   then, and TensorRT 8, OpenCV >= 4.5 and every ONNX Runtime >= 1.7 read it.
// - Eval mode: batch norm uses the running statistics (eps 1e-5, the value every
//   backbone here builds its batch norms with), whatever train() was set to.
// - Batch norm is folded into the preceding conv (w' = w g / sqrt(v + eps),
//   b' = beta + (b - mean) g / sqrt(v + eps), in double, stored as float): what
//   deployment runtimes do anyway; no BatchNormalization node, one bias per
//   conv. The graph is Conv, Relu, MaxPool, Add, GlobalAveragePool, Flatten.
// - A batch norm no conv precedes (pre-activation units normalise a sum) is
//   Mul + Add with per-channel constants (C, 1, 1) (scale g / sqrt(v + eps),
//   shift beta - mean scale); RevNet's halves are Split and Concat (axis 1).
// - Initializers are named after the conv they belong to, torchvision style
//   ("layer1.0.conv1.weight", "layer1.0.conv1.bias" = the folded bn1), so the
//   graph reads like the safetensors export; nodes are named the same way.
// - The input normalisation stays Sub/Div nodes rather than being folded into
//   the first conv: folding it would change what the conv's zero padding means.
//   Its constants "input_mean" / "input_std" are (C, 1, 1), not (1, C, 1, 1),
//   which OpenCV 4.6's dnn importer (Debian 12's python3-opencv) cannot run.
// - Resizing / cropping is not in the graph: H x W is the size the backbone was
//   trained on; bring images to it first (`ssl export` refuses methods whose
//   eval transform resizes to another size or is not a per-channel affine map).
// - Float tensors are TensorProto raw_data (little endian), the whole model is
//   built in memory and written atomically (temp file + rename, temp_files.hpp);
//   models over protobuf's 2 GiB limit are refused.
// - Repeated int64 fields (dims, ints) are written unpacked, as proto2 declares
//   them (every protobuf reader also accepts packed).
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "../backbone/any_backbone.hpp"
#include "../backbone/convnet.hpp"
#include "../backbone/resnet.hpp"
#include "../backbone/resnet_v2.hpp"
#include "../backbone/revnet.hpp"
#include "../backbone/vgg.hpp"
#include "../core/error.hpp"
#include "checkpoint.hpp"
#include "temp_files.hpp"

namespace ssl::io {

/// What write_onnx needs besides the backbone.
struct onnx_options {
    std::size_t height = 0, width = 0;   ///< the input's H x W (the size the backbone was trained on)
    std::vector<double> mean{}, stddev{};  ///< per-channel normalisation baked in (empty: none)
    std::string producer_version{};      ///< e.g. the program's version; optional
    std::string doc{};                   ///< the model's doc_string; optional
    std::map<std::string, std::string> metadata{};  ///< metadata_props (key -> value)
};

inline constexpr std::int64_t onnx_opset = 13;
inline constexpr std::int64_t onnx_ir_version = 7;

namespace onnx_detail {

static_assert(std::endian::native == std::endian::little, "onnx raw_data is written as the host's little-endian floats");

// Wire types and the onnx.proto field numbers used here.
enum wire : unsigned { varint_wire = 0, fixed32_wire = 5, bytes_wire = 2 };
namespace model { inline constexpr unsigned ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6,
                      graph = 7, opset_import = 8, metadata_props = 14; }
namespace opset_id { inline constexpr unsigned domain = 1, version = 2; }
namespace string_entry { inline constexpr unsigned key = 1, value = 2; }
namespace graph { inline constexpr unsigned node = 1, name = 2, initializer = 5, doc_string = 10, input = 11,
                      output = 12; }
namespace node { inline constexpr unsigned input = 1, output = 2, name = 3, op_type = 4, attribute = 5; }
namespace attribute { inline constexpr unsigned name = 1, f = 2, i = 3, ints = 8, type = 20;
                      inline constexpr std::int64_t FLOAT = 1, INT = 2, INTS = 7; }
namespace tensor_proto { inline constexpr unsigned dims = 1, data_type = 2, name = 8, raw_data = 9;
                         inline constexpr std::int64_t FLOAT = 1; }
namespace value_info { inline constexpr unsigned name = 1, type = 2; }
namespace type_proto { inline constexpr unsigned tensor_type = 1, elem_type = 1, shape = 2; }
namespace shape_proto { inline constexpr unsigned dim = 1, dim_value = 1, dim_param = 2; }

/// A protobuf message being written: fields appended in the order given.
class message {
public:
    const std::string& bytes() const noexcept { return buf_; }
    std::string& bytes() noexcept { return buf_; }
    message& int64(unsigned field, std::int64_t v) {
        tag(field, varint_wire);
        varint(static_cast<std::uint64_t>(v));  // negative int64: ten bytes, as protobuf does
        return *this;
    }
    message& float32(unsigned field, float v) {
        tag(field, fixed32_wire);
        const auto u = std::bit_cast<std::uint32_t>(v);
        for (int k = 0; k < 4; ++k) buf_.push_back(static_cast<char>((u >> (8 * k)) & 0xff));
        return *this;
    }
    message& bytes(unsigned field, std::string_view s) {
        tag(field, bytes_wire);
        varint(s.size());
        buf_.append(s);
        return *this;
    }
    message& sub(unsigned field, const message& m) { return bytes(field, m.buf_); }

private:
    void tag(unsigned field, wire w) { varint((std::uint64_t{field} << 3) | w); }
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        buf_.push_back(static_cast<char>(v));
    }
    std::string buf_;
};

struct attr {
    std::string name;
    std::int64_t type = 0;
    std::int64_t i = 0;
    float f = 0;
    std::vector<std::int64_t> ints;
    static attr integer(std::string n, std::int64_t v) { return {std::move(n), attribute::INT, v, 0, {}}; }
    static attr list(std::string n, std::vector<std::int64_t> v) { return {std::move(n), attribute::INTS, 0, 0, std::move(v)}; }
};

inline message tensor_type(const std::vector<std::string>& dims_param, const std::vector<std::int64_t>& dims) {
    message shape;
    for (std::size_t k = 0; k < dims.size(); ++k) {
        message d;
        if (!dims_param[k].empty())
            d.bytes(shape_proto::dim_param, dims_param[k]);
        else
            d.int64(shape_proto::dim_value, dims[k]);
        shape.sub(shape_proto::dim, d);
    }
    message t;
    t.int64(type_proto::elem_type, tensor_proto::FLOAT).sub(type_proto::shape, shape);
    message type;
    type.sub(type_proto::tensor_type, t);
    return type;
}

/// The graph being built: nodes and initializers in order.
class graph_builder {
public:
    /// A float initializer; returns its name.
    std::string initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                            const std::vector<float>& values) {
        message t;
        for (auto d : dims) t.int64(tensor_proto::dims, d);
        t.int64(tensor_proto::data_type, tensor_proto::FLOAT);
        t.bytes(tensor_proto::name, name);
        t.bytes(tensor_proto::raw_data,
                std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
        init_.sub(graph::initializer, t);
        return name;
    }
    /// A node with one output, named `out`; returns it.
    std::string node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                     const std::string& out, const std::vector<attr>& attrs = {}) {
        node_outputs(op, name, inputs, {out}, attrs);
        return out;
    }
    /// A node with several outputs (Split).
    void node_outputs(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                      const std::vector<std::string>& outs, const std::vector<attr>& attrs = {}) {
        message n;
        for (const auto& i : inputs) n.bytes(node::input, i);
        for (const auto& o : outs) n.bytes(node::output, o);
        n.bytes(node::name, name);
        n.bytes(node::op_type, op);
        for (const auto& a : attrs) {
            message m;
            m.bytes(attribute::name, a.name);
            if (a.type == attribute::INT) m.int64(attribute::i, a.i);
            if (a.type == attribute::FLOAT) m.float32(attribute::f, a.f);
            if (a.type == attribute::INTS)
                for (auto v : a.ints) m.int64(attribute::ints, v);
            m.int64(attribute::type, a.type);
            n.sub(node::attribute, m);
        }
        nodes_.sub(graph::node, n);
    }
    const message& nodes() const noexcept { return nodes_; }
    const message& initializers() const noexcept { return init_; }

private:
    message nodes_, init_;
};

/// The backbone's parameters and buffers by name, as doubles.
template <class B>
std::map<std::string, std::vector<double>> state_values(B& b) {
    std::map<std::string, std::vector<double>> s;
    ssl::detail::for_each_state(b, [&](const std::string& name, auto& t) {
        using U = typename std::decay_t<decltype(t)>::value_type;
        if constexpr (std::is_floating_point_v<U>) s.emplace(name, std::vector<double>(t.begin(), t.end()));
    });
    return s;
}


/// The backbone's tensor shapes by name.
template <class B>
std::map<std::string, std::vector<std::size_t>> state_shapes(B& b) {
    std::map<std::string, std::vector<std::size_t>> s;
    ssl::detail::for_each_state(b, [&](const std::string& name, auto& t) {
        std::vector<std::size_t> d;
        for (std::size_t k = 0; k < t.rank(); ++k) d.push_back(t.dim(k));
        s.emplace(name, std::move(d));
    });
    return s;
}

/// Writes a backbone's nodes: convs with batch norm folded in, relu, max
/// pool, add, pooling. Tracks every map's spatial size and refuses a window
/// larger than its padded map (with padding kernel / 2, as every backbone
/// here has, every map is at least 1x1: the check guards the arithmetic).
class backbone_writer {
public:
    static constexpr double bn_eps = 1e-5;

    template <class B>
    backbone_writer(graph_builder& g, B& b, const std::string& input, std::size_t h, std::size_t w)
        : g_(g), values_(state_values(b)), shapes_(state_shapes(b)) {
        size_[input] = {h, w};
    }

    /// Conv `conv` (its weight, its bias if any; padding kernel / 2) with
    /// batch norm `bn` folded in, into a map named `conv`.
    std::string conv_bn(const std::string& x, const std::string& conv, const std::string& bn, std::size_t stride) {
        const auto& wt = at(conv + ".weight");
        const auto& shape = shapes_.at(conv + ".weight");
        const std::size_t O = shape[0], k = shape[2], per = wt.size() / O, pad = k / 2;
        const auto& gamma = at(bn + ".weight");
        const auto& beta = at(bn + ".bias");
        const auto& mean = at(bn + ".running_mean");
        const auto& var = at(bn + ".running_var");
        const auto bias = values_.find(conv + ".bias");
        std::vector<float> wf(wt.size()), bf(O);
        for (std::size_t o = 0; o < O; ++o) {
            const double scale = gamma[o] / std::sqrt(var[o] + bn_eps);
            const double b = bias != values_.end() ? bias->second[o] : 0.0;
            for (std::size_t j = 0; j < per; ++j) wf[o * per + j] = static_cast<float>(wt[o * per + j] * scale);
            bf[o] = static_cast<float>(beta[o] + (b - mean[o]) * scale);
        }
        window(x, conv, "conv '" + conv + "'", k, stride, pad);
        const auto wname = g_.initializer(conv + ".weight", std::vector<std::int64_t>(shape.begin(), shape.end()), wf);
        const auto bname = g_.initializer(conv + ".bias", {static_cast<std::int64_t>(O)}, bf);
        const auto K = static_cast<std::int64_t>(k), S = static_cast<std::int64_t>(stride),
                   P = static_cast<std::int64_t>(pad);
        return g_.node("Conv", conv, {x, wname, bname}, conv,
                       {attr::list("dilations", {1, 1}), attr::integer("group", 1), attr::list("kernel_shape", {K, K}),
                        attr::list("pads", {P, P, P, P}), attr::list("strides", {S, S})});
    }
    /// Conv `conv` alone (its weight, its bias if any; padding kernel / 2),
    /// into a map named `conv`: a pre-activation unit's last conv and projection.
    std::string conv(const std::string& x, const std::string& conv, std::size_t stride) {
        const auto& wt = at(conv + ".weight");
        const auto& shape = shapes_.at(conv + ".weight");
        const std::size_t k = shape[2], pad = k / 2;
        window(x, conv, "conv '" + conv + "'", k, stride, pad);
        std::vector<std::string> in{x, g_.initializer(conv + ".weight",
                                                     std::vector<std::int64_t>(shape.begin(), shape.end()),
                                                     std::vector<float>(wt.begin(), wt.end()))};
        if (has(conv + ".bias")) {
            const auto& b = at(conv + ".bias");
            in.push_back(g_.initializer(conv + ".bias", {static_cast<std::int64_t>(b.size())},
                                        std::vector<float>(b.begin(), b.end())));
        }
        const auto K = static_cast<std::int64_t>(k), S = static_cast<std::int64_t>(stride),
                   P = static_cast<std::int64_t>(pad);
        return g_.node("Conv", conv, in, conv,
                       {attr::list("dilations", {1, 1}), attr::integer("group", 1), attr::list("kernel_shape", {K, K}),
                        attr::list("pads", {P, P, P, P}), attr::list("strides", {S, S})});
    }
    /// Batch norm `bn` (eval mode) on its own, as x * scale + shift per channel
    /// (Mul, Add; constants (C, 1, 1)), into a map named `bn`: pre-activation
    /// units normalise a sum, which no conv precedes.
    std::string batch_norm(const std::string& x, const std::string& bn) {
        const auto& gamma = at(bn + ".weight");
        const auto& beta = at(bn + ".bias");
        const auto& mean = at(bn + ".running_mean");
        const auto& var = at(bn + ".running_var");
        std::vector<float> scale(gamma.size()), shift(gamma.size());
        for (std::size_t c = 0; c < gamma.size(); ++c) {
            const double k = gamma[c] / std::sqrt(var[c] + bn_eps);
            scale[c] = static_cast<float>(k);
            shift[c] = static_cast<float>(beta[c] - mean[c] * k);
        }
        const auto C = static_cast<std::int64_t>(gamma.size());
        const auto sn = g_.initializer(bn + ".scale", {C, 1, 1}, scale);
        const auto bn_ = g_.initializer(bn + ".shift", {C, 1, 1}, shift);
        size_[bn + ".mul"] = size_[bn] = size_.at(x);
        const auto m = g_.node("Mul", bn + ".mul", {x, sn}, bn + ".mul");
        return g_.node("Add", bn, {m, bn_}, bn);
    }
    /// Split into two halves along the channels (Split, opset 13: equal parts).
    std::pair<std::string, std::string> split_halves(const std::string& x, const std::string& name) {
        size_[name + ".0"] = size_[name + ".1"] = size_.at(x);
        g_.node_outputs("Split", name, {x}, {name + ".0", name + ".1"}, {attr::integer("axis", 1)});
        return {name + ".0", name + ".1"};
    }
    std::string concat(const std::string& a, const std::string& b, const std::string& name) {
        size_[name] = size_.at(a);
        return g_.node("Concat", name, {a, b}, name, {attr::integer("axis", 1)});
    }
    std::string relu(const std::string& x, const std::string& name) {
        size_[name] = size_.at(x);
        return g_.node("Relu", name, {x}, name);
    }
    std::string add(const std::string& a, const std::string& b, const std::string& name) {
        size_[name] = size_.at(a);
        return g_.node("Add", name, {a, b}, name);
    }
    /// nn::max_pool2d's semantics: floor (ceil_mode 0), padding never the max.
    std::string max_pool(const std::string& x, std::size_t k, std::size_t stride, std::size_t pad,
                         const std::string& name) {
        window(x, name, "max pool '" + name + "'", k, stride, pad);
        const auto K = static_cast<std::int64_t>(k), S = static_cast<std::int64_t>(stride),
                   P = static_cast<std::int64_t>(pad);
        return g_.node("MaxPool", name, {x}, name,
                       {attr::integer("ceil_mode", 0), attr::list("kernel_shape", {K, K}),
                        attr::list("pads", {P, P, P, P}), attr::list("strides", {S, S})});
    }
    /// GlobalAveragePool, then Flatten (axis 1) into `out`: (N, C, h, w) -> (N, C).
    std::string pool_flatten(const std::string& x, const std::string& out) {
        const auto p = g_.node("GlobalAveragePool", "avgpool", {x}, "avgpool");
        return g_.node("Flatten", "flatten", {p}, out, {attr::integer("axis", 1)});
    }
    bool has(const std::string& name) const { return values_.contains(name); }

private:
    /// Records the output size of a k x k window (stride, pad) over x, or
    /// refuses an input too small for it.
    void window(const std::string& x, const std::string& out, const std::string& what, std::size_t k,
                std::size_t stride, std::size_t pad) {
        const auto [h, w] = size_.at(x);
        require<shape_error>(h + 2 * pad >= k && w + 2 * pad >= k, "onnx export: the ", what, " (", k, "x", k,
                             " window) gets a ", h, "x", w, " map: the input size is too small for this backbone");
        size_[out] = {(h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1};
    }
    const std::vector<double>& at(const std::string& name) const {
        auto it = values_.find(name);
        require(it != values_.end(), "onnx export: the backbone has no tensor '", name, "'");
        return it->second;
    }
    graph_builder& g_;
    std::map<std::string, std::vector<double>> values_;
    std::map<std::string, std::vector<std::size_t>> shapes_;
    std::map<std::string, std::pair<std::size_t, std::size_t>> size_;
};

/// A ResNet (torchvision's layout, strides as resnet.hpp builds them).
template <class Block>
std::string add_backbone(graph_builder& g, resnet<Block>& r, const std::string& x, const onnx_options& o) {
    require(r.options().num_classes == 0, "onnx export: a resnet with a classifier (num_classes = ",
            r.options().num_classes, ") is not supported: export the backbone without its fc");
    backbone_writer w(g, r, x, o.height, o.width);
    const bool imagenet = r.options().stem == stem::imagenet;
    std::string h = w.relu(w.conv_bn(x, "conv1", "bn1", imagenet ? 2 : 1), "relu");
    if (imagenet) h = w.max_pool(h, 3, 2, 1, "maxpool");
    for (std::size_t s = 0; s < r.blocks().size(); ++s)
        for (std::size_t b = 0; b < r.blocks()[s]; ++b) {
            const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
            const std::size_t stride = (s > 0 && b == 0) ? 2 : 1;
            std::string y;
            if constexpr (Block::expansion == 4) {  // bottleneck: the stride on the 3x3 conv (v1.5)
                y = w.relu(w.conv_bn(h, p + ".conv1", p + ".bn1", 1), p + ".relu1");
                y = w.relu(w.conv_bn(y, p + ".conv2", p + ".bn2", stride), p + ".relu2");
                y = w.conv_bn(y, p + ".conv3", p + ".bn3", 1);
            } else {
                y = w.relu(w.conv_bn(h, p + ".conv1", p + ".bn1", stride), p + ".relu1");
                y = w.conv_bn(y, p + ".conv2", p + ".bn2", 1);
            }
            const std::string shortcut = w.has(p + ".downsample.0.weight")
                                             ? w.conv_bn(h, p + ".downsample.0", p + ".downsample.1", stride)
                                             : h;
            h = w.relu(w.add(y, shortcut, p + ".add"), p + ".relu");
        }
    return w.pool_flatten(h, "features");
}

/// The convnet (convnet.hpp): five conv-bn-relu, max pools after the first two.
template <class T>
std::string add_backbone(graph_builder& g, convnet<T>& c, const std::string& x, const onnx_options& o) {
    require<shape_error>(o.height >= 8 && o.width >= 8, "onnx export: convnet images must be at least 8x8 (as "
                         "the backbone requires), got ", o.height, "x", o.width);
    backbone_writer w(g, c, x, o.height, o.width);
    std::string h = x;
    // module indices of the convs (their bn is the next module, the relu the one after)
    for (std::size_t i : {0u, 4u, 8u, 11u, 14u}) {
        const std::string conv = "features." + std::to_string(i);
        h = w.relu(w.conv_bn(h, conv, "features." + std::to_string(i + 1), 1), "features." + std::to_string(i + 2));
        if (i == 0 || i == 4) h = w.max_pool(h, 3, 2, 1, "features." + std::to_string(i + 3));
    }
    return w.pool_flatten(h, "features");
}

/// F of a pre-activation unit (backbone/preact.hpp) whose input is already
/// relu(bn1(x)) = pre: conv1 [- bn2 - relu - conv2 ...], later bns folded
/// into the conv before them; the stride on the 3x3 conv.
template <bool Bottleneck>
std::string preact_residual(backbone_writer& w, const std::string& pre, const std::string& p, std::size_t stride) {
    if constexpr (Bottleneck) {
        std::string y = w.relu(w.conv_bn(pre, p + ".conv1", p + ".bn2", 1), p + ".relu2");
        y = w.relu(w.conv_bn(y, p + ".conv2", p + ".bn3", stride), p + ".relu3");
        return w.conv(y, p + ".conv3", 1);
    } else {
        std::string y = w.relu(w.conv_bn(pre, p + ".conv1", p + ".bn2", stride), p + ".relu2");
        return w.conv(y, p + ".conv2", 1);
    }
}
/// A whole pre-activation unit: pre = relu(bn1(h)); F(pre) + (h or conv1x1(pre)).
template <bool Bottleneck>
std::string preact_unit(backbone_writer& w, const std::string& h, const std::string& p, std::size_t stride) {
    const std::string pre = w.relu(w.batch_norm(h, p + ".bn1"), p + ".relu1");
    const std::string y = preact_residual<Bottleneck>(w, pre, p, stride);
    const std::string sc = w.has(p + ".downsample.0.weight") ? w.conv(pre, p + ".downsample.0", stride) : h;
    return w.add(y, sc, p + ".add");
}
/// Stem (conv1 [+ maxpool]) of a pre-activation network.
inline std::string preact_stem(backbone_writer& w, const std::string& x, bool imagenet) {
    std::string h = w.conv(x, "conv1", imagenet ? 2 : 1);
    if (imagenet) h = w.max_pool(h, 3, 2, 1, "maxpool");
    return h;
}
inline std::string preact_head(backbone_writer& w, const std::string& h) {
    return w.pool_flatten(w.relu(w.batch_norm(h, "norm"), "norm.relu"), "features");
}

/// ResNet v2 (resnet_v2.hpp).
template <class Block>
std::string add_backbone(graph_builder& g, resnet_v2<Block>& r, const std::string& x, const onnx_options& o) {
    require(r.options().num_classes == 0, "onnx export: a resnet_v2 with a classifier (num_classes = ",
            r.options().num_classes, ") is not supported: export the backbone without its fc");
    backbone_writer w(g, r, x, o.height, o.width);
    std::string h = preact_stem(w, x, r.options().stem == stem::imagenet);
    for (std::size_t s = 0; s < r.blocks().size(); ++s)
        for (std::size_t b = 0; b < r.blocks()[s]; ++b)
            h = preact_unit<Block::expansion == 4>(w, h, "layer" + std::to_string(s + 1) + "." + std::to_string(b),
                                                   (s > 0 && b == 0) ? 2 : 1);
    return preact_head(w, h);
}

/// RevNet (revnet.hpp): per stage a pre-activation unit, then the reversible
/// units on the two channel halves (Split, eq. 1 as Adds, Concat).
template <class T, bool Bottleneck>
std::string add_backbone(graph_builder& g, revnet<T, Bottleneck>& r, const std::string& x, const onnx_options& o) {
    require(r.options().num_classes == 0, "onnx export: a revnet with a classifier (num_classes = ",
            r.options().num_classes, ") is not supported: export the backbone without its fc");
    backbone_writer w(g, r, x, o.height, o.width);
    std::string h = preact_stem(w, x, r.options().stem == stem::imagenet);
    for (std::size_t s = 0; s < r.blocks().size(); ++s) {
        const std::string layer = "layer" + std::to_string(s + 1);
        h = preact_unit<Bottleneck>(w, h, layer + ".0", s > 0 ? 2 : 1);
        if (r.blocks()[s] == 1) continue;
        auto [a1, a2] = w.split_halves(h, layer + ".split");
        for (std::size_t b = 1; b < r.blocks()[s]; ++b) {
            const std::string p = layer + "." + std::to_string(b);
            auto branch = [&](const std::string& in, const std::string& q) {
                return preact_residual<Bottleneck>(w, w.relu(w.batch_norm(in, q + ".bn1"), q + ".relu1"), q, 1);
            };
            a1 = w.add(a1, branch(a2, p + ".f"), p + ".y1");  // y1 = x1 + F(x2)
            a2 = w.add(a2, branch(a1, p + ".g"), p + ".y2");  // y2 = x2 + G(y1)
        }
        h = w.concat(a1, a2, layer + ".concat");
    }
    return preact_head(w, h);
}

/// VGG with batch norm (vgg.hpp): conv-bn-relu units, 2x2 max pools.
template <class T>
std::string add_backbone(graph_builder& g, vgg<T>& v, const std::string& x, const onnx_options& o) {
    require<shape_error>(o.height >= v.min_size() && o.width >= v.min_size(), "onnx export: vgg images must be at "
                         "least ", v.min_size(), "x", v.min_size(), " (as the backbone requires), got ", o.height, "x",
                         o.width);
    backbone_writer w(g, v, x, o.height, o.width);
    std::string h = x;
    const auto taps = v.tap_names();  // features.0 .. features.K, avgpool: a conv is followed by its bn
    for (std::size_t i = 0; i + 1 < taps.size(); ++i) {
        const std::string& m = taps[i];
        if (w.has(m + ".weight") && i + 2 < taps.size() && w.has(taps[i + 1] + ".running_mean")) {
            h = w.relu(w.conv_bn(h, m, taps[i + 1], 1), taps[i + 2]);
            i += 2;
        } else {
            h = w.max_pool(h, 2, 2, 0, m);
        }
    }
    return w.pool_flatten(h, "features");
}

/// any_backbone: the concrete backbone it holds.
template <class T>
std::string add_backbone(graph_builder& g, any_backbone<T>& b, const std::string& x, const onnx_options& o) {
    if (auto* r = b.template as<resnet18<T>>()) return add_backbone(g, *r, x, o);
    if (auto* r = b.template as<resnet34<T>>()) return add_backbone(g, *r, x, o);
    if (auto* r = b.template as<resnet50<T>>()) return add_backbone(g, *r, x, o);
    if (auto* c = b.template as<convnet<T>>()) return add_backbone(g, *c, x, o);
    if (auto* r = b.template as<resnet18v2<T>>()) return add_backbone(g, *r, x, o);
    if (auto* r = b.template as<resnet34v2<T>>()) return add_backbone(g, *r, x, o);
    if (auto* r = b.template as<resnet50v2<T>>()) return add_backbone(g, *r, x, o);
    if (auto* r = b.template as<revnet18<T>>()) return add_backbone(g, *r, x, o);
    if (auto* r = b.template as<revnet50<T>>()) return add_backbone(g, *r, x, o);
    if (auto* v = b.template as<vgg11<T>>()) return add_backbone(g, *v, x, o);
    if (auto* v = b.template as<vgg13<T>>()) return add_backbone(g, *v, x, o);
    if (auto* v = b.template as<vgg16<T>>()) return add_backbone(g, *v, x, o);
    if (auto* v = b.template as<vgg19<T>>()) return add_backbone(g, *v, x, o);
    throw value_error("onnx export: backbone '" + b.arch() + "' is not supported");
}

template <class T>
std::size_t in_channels(resnet<T>& r) { return r.options().in_channels; }
template <class T>
std::size_t in_channels(convnet<T>& c) { return c.options().in_channels; }
template <class B>
std::size_t in_channels(resnet_v2<B>& r) { return r.options().in_channels; }
template <class T, bool B>
std::size_t in_channels(revnet<T, B>& r) { return r.options().in_channels; }
template <class T>
std::size_t in_channels(vgg<T>& v) { return v.options().in_channels; }
template <class T>
std::size_t in_channels(any_backbone<T>& b) { return b.options().in_channels; }

}  // namespace onnx_detail

/// The ONNX model (serialized ModelProto) of `backbone` in eval mode; see
/// the top of this file for the contract.
template <class B>
std::string onnx_model_bytes(B& backbone, const onnx_options& o) {
    using namespace onnx_detail;
    require(o.height > 0 && o.width > 0, "onnx export: the input size must be positive, got ", o.height, "x",
            o.width);
    const std::size_t C = onnx_detail::in_channels(backbone);
    require(o.mean.size() == o.stddev.size(), "onnx export: mean has ", o.mean.size(), " values, stddev ",
            o.stddev.size());
    require(o.mean.empty() || o.mean.size() == C, "onnx export: the normalisation has ", o.mean.size(),
            " channels, the backbone takes ", C);
    for (double s : o.stddev) require(s > 0 && std::isfinite(s), "onnx export: stddev ", s, " must be > 0");
    const auto Ci = static_cast<std::int64_t>(C);
    graph_builder g;
    std::string x = "images";
    if (!o.mean.empty()) {
        std::vector<float> m(o.mean.begin(), o.mean.end()), s(o.stddev.begin(), o.stddev.end());
        // (C, 1, 1), broadcast over (N, C, H, W): OpenCV 4.6's importer fails on (1, C, 1, 1)
        const auto mn = g.initializer("input_mean", {Ci, 1, 1}, m);
        const auto sn = g.initializer("input_std", {Ci, 1, 1}, s);
        x = g.node("Sub", "input_sub_mean", {x, mn}, "input_sub_mean");
        x = g.node("Div", "input_normalized", {x, sn}, "input_normalized");
    }
    const std::string out = add_backbone(g, backbone, x, o);
    const auto D = static_cast<std::int64_t>(backbone.feature_dim());

    message gm;
    gm.bytes() = g.nodes().bytes();
    gm.bytes(graph::name, "ssl_backbone");
    gm.bytes() += g.initializers().bytes();
    message in, outp;
    in.bytes(value_info::name, "images")
        .sub(value_info::type, tensor_type({"N", "", "", ""}, {0, Ci, static_cast<std::int64_t>(o.height),
                                                               static_cast<std::int64_t>(o.width)}));
    outp.bytes(value_info::name, out).sub(value_info::type, tensor_type({"N", ""}, {0, D}));
    gm.sub(graph::input, in).sub(graph::output, outp);

    message opset;
    opset.bytes(opset_id::domain, "").int64(opset_id::version, onnx_opset);
    message m;
    m.int64(model::ir_version, onnx_ir_version).sub(model::opset_import, opset).bytes(model::producer_name, "ssl");
    if (!o.producer_version.empty()) m.bytes(model::producer_version, o.producer_version);
    if (!o.doc.empty()) m.bytes(model::doc_string, o.doc);
    m.sub(model::graph, gm);
    for (const auto& [k, v] : o.metadata) {
        message e;
        e.bytes(string_entry::key, k).bytes(string_entry::value, v);
        m.sub(model::metadata_props, e);
    }
    require(m.bytes().size() < (std::size_t{1} << 31), "onnx export: the model is ", m.bytes().size(),
            " bytes, over protobuf's 2 GiB limit");
    return std::move(m.bytes());
}

/// Writes onnx_model_bytes(backbone, o) to `path` atomically.
template <class B>
void write_onnx(const std::filesystem::path& path, B& backbone, const onnx_options& o) {
    write_text_atomic(path, onnx_model_bytes(backbone, o), "onnx model");
}

}  // namespace ssl::io
