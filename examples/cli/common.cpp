// Data loading for the `ssl` program (the only translation unit that
// compiles the image-folder reader's stb decoder).
#include "common.hpp"

#include <ssl/data/cifar.hpp>
#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/data/image_folder.hpp>
#include <ssl/data/synthetic.hpp>

// The four architectures behind --backbone, compiled here only (common.hpp
// keeps every other translation unit from instantiating them).
SSL_INSTANTIATE_ANY_BACKBONE(float);

namespace cli {

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}

std::string fmt(const std::optional<double>& v) {
    if (!v) return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", *v);
    return b;
}

data_sets load_data(const std::string& spec_in, std::size_t limit, std::size_t eval_limit) {
    std::string spec = spec_in;
    if (spec.empty())
        spec = fs::exists(fs::path(ssl::data::fashion_mnist_default_dir) / "train-images-idx3-ubyte.gz") ||
                       fs::exists(fs::path(ssl::data::fashion_mnist_default_dir) / "train-images-idx3-ubyte")
                   ? "fashion-mnist"
                   : "synthetic";
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon), arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    data_sets d;
    d.name = spec;
    using ssl::data::split;
    if (kind == "fashion-mnist") {
        const fs::path dir = arg.empty() ? fs::path(ssl::data::fashion_mnist_default_dir) : fs::path(arg);
        d.train = ssl::data::load_fashion_mnist(dir, split::train);
        d.test = ssl::data::load_fashion_mnist(dir, split::test);
    } else if (kind == "cifar10" || kind == "cifar100") {
        ssl::require(!arg.empty(), "--data ", kind, ":DIR needs the directory of the binary batches");
        d.train = kind == "cifar10" ? ssl::data::load_cifar10(arg, split::train) : ssl::data::load_cifar100(arg, split::train);
        d.test = kind == "cifar10" ? ssl::data::load_cifar10(arg, split::test) : ssl::data::load_cifar100(arg, split::test);
    } else if (kind == "folder") {
        ssl::require(!arg.empty(), "--data folder:DIR needs a directory");
        d.train = ssl::data::load_image_folder(arg, {.height = 32, .width = 32, .channels = 3});
    } else if (kind == "idx") {
        ssl::require(!arg.empty(), "--data idx:IMAGES[,LABELS] needs the IDX images file");
        const auto comma = arg.find(',');
        d.train = comma == std::string::npos ? ssl::data::read_idx(arg)
                                             : ssl::data::read_idx(arg.substr(0, comma), arg.substr(comma + 1));
    } else if (kind == "synthetic") {
        d.train = ssl::data::synthetic({.size = 4096, .classes = 10, .height = 28, .width = 28, .seed = 1}).to_dataset();
        d.test = ssl::data::synthetic({.size = 1000, .classes = 10, .height = 28, .width = 28, .seed = 2}).to_dataset();
    } else {
        throw ssl::value_error("--data '" + spec +
                               "' is not one of fashion-mnist[:DIR], cifar10:DIR, cifar100:DIR, folder:DIR, "
                               "idx:IMAGES[,LABELS], synthetic");
    }
    d.eval_train = d.train;
    if (eval_limit && eval_limit < d.eval_train.size()) d.eval_train = d.train.subset(iota(eval_limit));
    if (limit && limit < d.train.size()) d.train = d.train.subset(iota(limit));
    return d;
}

}  // namespace cli
