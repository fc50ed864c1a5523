// Writes checkpoints of the backbones of "Revisiting self-supervised visual
// representation learning" (vgg*_bn, resnet v2, revnet) with eval- and
// train-mode input/output pairs, for tests/peer/torch_backbone_check.py:
// <dir>/<case>.safetensors (state dict, metadata arch / width / stem /
// in_channels), <dir>/<case>_io.safetensors ("input", "eval", "train"), and
// <dir>/cases.txt. Batch norm statistics and affine parameters are made
// non-trivial first so the comparison sees them.
#include <fstream>
#include <iostream>
#include <ssl/backbone/any_backbone.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/io/checkpoint.hpp>

namespace {

ssl::tensor<float> normal(ssl::shape_t s, ssl::philox& g) {
    ssl::tensor<float> x(s);
    for (auto& v : x) v = static_cast<float>(g.normal());
    return x;
}

void make(const std::string& dir, std::ofstream& list, const std::string& tag, const ssl::any_backbone_options& o,
          std::size_t size) {
    ssl::any_backbone<float> m(o);
    ssl::philox g(3, ssl::detail::fnv1a(tag));
    const ssl::shape_t in{4, o.in_channels, size, size};
    m.train(true);
    for (int i = 0; i < 4; ++i) (void)m.forward(normal(in, g));
    m.for_each_parameter(
        [&](const std::string&, ssl::parameter<float>& p) {
            if (p.value.rank() != 1) return;
            for (auto& v : p.value) v = static_cast<float>(0.5 + g.uniform());
        },
        "");
    const auto x = normal(in, g);
    m.train(false);
    const auto y_eval = m.forward(x).out;
    // the checkpoint holds the statistics before the train-mode pass below
    ssl::save_checkpoint(dir + "/" + tag + ".safetensors", m,
                         {{"arch", o.arch},
                          {"width", std::to_string(o.width)},
                          {"in_channels", std::to_string(o.in_channels)},
                          {"stem", o.stem == ssl::stem::cifar ? "cifar" : "imagenet"}});
    m.train(true);
    const auto y_train = m.forward(x).out;
    ssl::io::safetensors_file io;
    io.tensors["input"] = ssl::io::to_stored(x);
    io.tensors["eval"] = ssl::io::to_stored(y_eval);
    io.tensors["train"] = ssl::io::to_stored(y_train);
    ssl::io::write_safetensors(dir + "/" + tag + "_io.safetensors", io);
    list << tag << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    std::ofstream list(dir + "/cases.txt");
    using ssl::stem;
    make(dir, list, "vgg16_bn_imagenet", {.arch = "vgg16", .in_channels = 3, .width = 8, .stem = stem::imagenet, .seed = 1}, 32);
    make(dir, list, "vgg11_bn_cifar", {.arch = "vgg11", .in_channels = 1, .width = 4, .stem = stem::cifar, .seed = 2}, 28);
    make(dir, list, "vgg19_bn_cifar", {.arch = "vgg19", .in_channels = 3, .width = 4, .stem = stem::cifar, .seed = 3}, 16);
    make(dir, list, "resnet18v2_cifar", {.arch = "resnet18v2", .in_channels = 3, .width = 8, .stem = stem::cifar, .seed = 4}, 16);
    make(dir, list, "resnet50v2_imagenet", {.arch = "resnet50v2", .in_channels = 1, .width = 4, .stem = stem::imagenet, .seed = 5}, 48);
    make(dir, list, "revnet18_cifar", {.arch = "revnet18", .in_channels = 1, .width = 8, .stem = stem::cifar, .seed = 6}, 16);
    make(dir, list, "revnet50_imagenet", {.arch = "revnet50", .in_channels = 3, .width = 4, .stem = stem::imagenet, .seed = 7}, 48);
    std::cout << "written\n";
}
