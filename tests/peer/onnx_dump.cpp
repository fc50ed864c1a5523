// Writes ONNX exports of every backbone kind and stem (ssl/io/onnx.hpp) with
// raw input images in [0, 1] and ssl's features of them, for
// tests/peer/onnx_runtime_check.py: <dir>/<case>.onnx, <dir>/<case>_io.safetensors
// ("images", "features"), and <dir>/cases.txt listing the cases.
// The features are what method::embed computes: the eval pipeline (resize and
// center crop at this size: no-ops; the default per-channel normalisation),
// then the backbone in eval mode. Batch norm statistics and affine
// parameters are made non-trivial first (training-mode passes, random
// gamma / beta), so folding them into the convs is exercised.
#include <cmath>
#include <fstream>
#include <iostream>
#include <ssl/augment/presets.hpp>
#include <ssl/backbone/any_backbone.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/io/onnx.hpp>

namespace {

ssl::tensor<float> uniform(ssl::shape_t s, ssl::philox& g) {
    ssl::tensor<float> x(s);
    for (auto& v : x) v = static_cast<float>(g.uniform());
    return x;
}

void make(const std::string& dir, std::ofstream& list, const std::string& tag, const ssl::any_backbone_options& o,
          std::size_t size, bool normalize) {
    ssl::any_backbone<float> b(o);
    ssl::philox g(7, ssl::detail::fnv1a(tag));
    const ssl::shape_t in{4, o.in_channels, size, size};
    const auto pipe = ssl::augment::eval_pipeline(size, o.in_channels);
    std::vector<std::size_t> ids{0, 1, 2, 3};
    b.train(true);
    for (int i = 0; i < 8; ++i) (void)b.forward(pipe.apply(uniform(in, g), ids, 0, 0, 0));
    b.for_each_parameter(
        [&](const std::string&, ssl::parameter<float>& p) {
            if (p.value.rank() != 1) return;  // batch norm gamma / beta, conv biases
            for (auto& v : p.value) v = static_cast<float>(0.5 + g.uniform());
        },
        "");
    b.train(false);
    const auto x = uniform(in, g);
    const auto y = b.forward(normalize ? pipe.apply(x, ids, 0, 0, 0) : x).out;
    ssl::io::onnx_options opt{.height = size, .width = size};
    if (normalize) {
        const auto n = ssl::augment::default_normalize(o.in_channels);
        opt.mean = n.mean;
        opt.stddev = n.stddev;
    }
    opt.metadata = {{"arch", o.arch}, {"case", tag}};
    ssl::io::write_onnx(dir + "/" + tag + ".onnx", b, opt);
    ssl::io::safetensors_file io;
    io.tensors["images"] = ssl::io::to_stored(x);
    io.tensors["features"] = ssl::io::to_stored(y);
    ssl::io::write_safetensors(dir + "/" + tag + "_io.safetensors", io);
    list << tag << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    std::ofstream list(dir + "/cases.txt");
    using ssl::stem;
    make(dir, list, "resnet18_cifar", {.arch = "resnet18", .in_channels = 3, .width = 8, .stem = stem::cifar, .seed = 1}, 32, true);
    make(dir, list, "resnet18_imagenet", {.arch = "resnet18", .in_channels = 1, .width = 8, .stem = stem::imagenet, .seed = 2}, 64, true);
    make(dir, list, "resnet34_cifar_raw", {.arch = "resnet34", .in_channels = 3, .width = 4, .stem = stem::cifar, .seed = 3}, 16, false);
    make(dir, list, "resnet50_imagenet", {.arch = "resnet50", .in_channels = 3, .width = 4, .stem = stem::imagenet, .seed = 4}, 64, true);
    make(dir, list, "resnet50_cifar", {.arch = "resnet50", .in_channels = 1, .width = 4, .stem = stem::cifar, .seed = 5}, 28, true);
    make(dir, list, "convnet", {.arch = "convnet", .in_channels = 1, .width = 8, .seed = 6}, 28, true);
    // the backbones of "Revisiting" (pre-activation units, reversible units, VGG-BN)
    make(dir, list, "resnet18v2_cifar", {.arch = "resnet18v2", .in_channels = 3, .width = 8, .stem = stem::cifar, .seed = 7}, 32, true);
    make(dir, list, "resnet50v2_imagenet", {.arch = "resnet50v2", .in_channels = 1, .width = 4, .stem = stem::imagenet, .seed = 8}, 64, true);
    make(dir, list, "revnet18_cifar", {.arch = "revnet18", .in_channels = 1, .width = 8, .stem = stem::cifar, .seed = 9}, 28, true);
    make(dir, list, "revnet50_imagenet", {.arch = "revnet50", .in_channels = 3, .width = 4, .stem = stem::imagenet, .seed = 10}, 64, false);
    make(dir, list, "vgg16_cifar", {.arch = "vgg16", .in_channels = 1, .width = 8, .stem = stem::cifar, .seed = 11}, 28, true);
    make(dir, list, "vgg11_imagenet", {.arch = "vgg11", .in_channels = 3, .width = 4, .stem = stem::imagenet, .seed = 12}, 32, true);
    std::cout << "written\n";
}
