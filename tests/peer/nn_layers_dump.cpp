// Writes the issue-20 layers' outputs for tests/peer/torch_nn_layers_check.py:
//
//   nn_layers_dump DIR  ->  DIR/layers.safetensors
//
// Float32 tensors, metadata "case/<name>" = JSON of the case's settings:
//   upsample/<name>/{x,y}        upsample_bilinear2d to (out_h, out_w)
//   layer_norm/<name>/{x,weight,bias,y}   layer_norm (affine or not)
//   masked_conv/<name>/{x,weight,bias,y}  masked_conv2d (weight as stored: masked)
//   dropout/<name>/{x,y,y_eval}  one training forward (p) and one eval forward
#include <iostream>
#include <sstream>
#include <string>

#include <ssl/io/safetensors.hpp>
#include <ssl/nn/dropout.hpp>
#include <ssl/nn/layer_norm.hpp>
#include <ssl/nn/masked_conv2d.hpp>
#include <ssl/nn/upsample.hpp>

namespace {

using ssl::tensor;

tensor<float> random(ssl::shape_t s, std::uint64_t seed, double lo = -1, double hi = 1) {
    tensor<float> t(s);
    ssl::philox g(seed, 3);
    for (auto& v : t) v = static_cast<float>(g.uniform(lo, hi));
    return t;
}

struct writer {
    ssl::io::safetensors_file file;
    void put(const std::string& name, const tensor<float>& t) { file.tensors[name] = ssl::io::to_stored(t); }
    void meta(const std::string& name, const std::string& json) { file.metadata["case/" + name] = json; }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: nn_layers_dump DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    writer w;
    // upsampling: integer factors, odd ratios, downsampling, same size
    const auto xu = random({2, 3, 5, 4}, 1);
    std::size_t k = 0;
    for (auto [ho, wo] : {std::pair<std::size_t, std::size_t>{10, 8}, {56, 56}, {7, 9}, {3, 2}, {5, 4}, {13, 4}}) {
        const std::string c = "upsample/" + std::to_string(k++);
        ssl::nn::upsample_bilinear2d<float> up({ho, wo});
        w.put(c + "/x", xu);
        w.put(c + "/y", up.forward(xu).out);
        w.meta(c, "{\"out_h\": " + std::to_string(ho) + ", \"out_w\": " + std::to_string(wo) + "}");
    }
    // layer norm
    for (bool affine : {true, false}) {
        const std::string c = std::string("layer_norm/") + (affine ? "affine" : "plain");
        ssl::nn::layer_norm<float> ln({6, 1e-5, affine});
        const auto x = random({4, 6, 7, 5}, 2, -2.0, 5.0);
        if (affine) {
            ln.weight().value.assign(random({6}, 3, 0.5, 2.0));
            ln.bias().value.assign(random({6}, 4));
            w.put(c + "/weight", ln.weight().value);
            w.put(c + "/bias", ln.bias().value);
        }
        w.put(c + "/x", x);
        w.put(c + "/y", ln.forward(x).out);
        w.meta(c, std::string("{\"affine\": ") + (affine ? "true" : "false") + ", \"eps\": 1e-5}");
    }
    // masked convolution
    for (std::size_t kernel : {std::size_t{3}, std::size_t{5}})
        for (bool centre : {true, false}) {
            const std::string c =
                "masked_conv/k" + std::to_string(kernel) + (centre ? "_centre" : "_strict");
            ssl::nn::masked_conv2d<float> m({4, 6, kernel, true, centre}, 5 + kernel);
            const auto x = random({3, 4, 7, 6}, 6);
            auto y = m.forward(x).out;
            w.put(c + "/x", x);
            w.put(c + "/weight", m.weight().value);
            w.put(c + "/bias", m.bias().value);
            w.put(c + "/y", y);
            w.meta(c, "{\"kernel\": " + std::to_string(kernel) + ", \"include_centre_row\": " +
                          (centre ? "true" : "false") + "}");
        }
    // dropout
    for (double p : {0.1, 0.5}) {
        const std::string c = "dropout/p" + std::to_string(int(p * 10));
        ssl::nn::dropout<float> d({p, 17});
        const auto x = random({64, 32, 8, 8}, 7, 0.5, 1.5);
        w.put(c + "/x", x);
        w.put(c + "/y", d.forward(x).out);
        d.train(false);
        w.put(c + "/y_eval", d.forward(x).out);
        std::ostringstream os;
        os << "{\"p\": " << p << "}";
        w.meta(c, os.str());
    }
    ssl::io::write_safetensors(dir + "/layers.safetensors", w.file);
    std::cout << "wrote " << w.file.tensors.size() << " tensors to " << dir << "/layers.safetensors\n";
    return 0;
}
