// Writes resnet18 checkpoints and eval-mode input/output pairs for tests/peer/torch_load_check.py.
#include <iostream>
#include <ssl/backbone/resnet.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/io/checkpoint.hpp>

template <class M>
void make(const std::string& dir, const std::string& tag, M& m, ssl::shape_t in) {
    ssl::philox g(1, 2);
    m.train(true);
    for (int i = 0; i < 3; ++i) {
        ssl::tensor<float> x(in);
        for (auto& v : x) v = static_cast<float>(g.normal());
        (void)m.forward(x);
    }
    ssl::save_checkpoint(dir + "/" + tag + ".safetensors", m, {{"arch", "resnet18"}});
    m.train(false);
    ssl::tensor<float> x(in);
    for (auto& v : x) v = static_cast<float>(g.normal());
    auto y = m.forward(x).out;
    ssl::io::safetensors_file io;
    io.tensors["input"] = ssl::io::to_stored(x);
    io.tensors["output"] = ssl::io::to_stored(y);
    ssl::io::write_safetensors(dir + "/" + tag + "_io.safetensors", io);
}

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    ssl::resnet18<float> a({.in_channels = 3, .width = 8, .stem = ssl::stem::cifar, .num_classes = 10, .seed = 1});
    make(dir, "cifar", a, {4, 3, 16, 16});
    ssl::resnet18<float> b({.in_channels = 1, .width = 4, .stem = ssl::stem::imagenet, .seed = 2});
    make(dir, "imagenet", b, {2, 1, 64, 64});
    std::cout << "written\n";
}
