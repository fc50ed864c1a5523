#pragma once
// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70000 grayscale 28x28
// images of clothing in 10 classes, 60000 for training and 10000 for test,
// in the IDX format of MNIST (see idx.hpp).
//
// On Debian the data set is the package dataset-fashion-mnist, which puts the
// four gzip files in /usr/share/datasets/fashion-mnist:
//   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
//   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
// Uncompressed copies (the same names without .gz) are read as well.
#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "dataset.hpp"
#include "idx.hpp"

namespace ssl::data {

/// The directory the Debian package dataset-fashion-mnist installs into.
inline constexpr std::string_view fashion_mnist_default_dir = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, by label.
inline const std::array<std::string_view, 10> fashion_mnist_classes = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

namespace detail {

inline constexpr std::string_view fashion_mnist_install_hint =
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)";

/// dir/name or dir/name.gz, whichever exists (plain first); throws io_error otherwise.
inline std::filesystem::path find_idx_file(const std::filesystem::path& dir, const std::string& name) {
    std::error_code ec;
    for (const std::string& candidate : {name, name + ".gz"}) {
        const auto p = dir / candidate;
        if (std::filesystem::exists(p, ec)) return p;
    }
    throw io_error(ssl::detail::cat("Fashion-MNIST: neither '", (dir / name).string(), "' nor '",
                                    (dir / (name + ".gz")).string(), "' exists; ", fashion_mnist_install_hint,
                                    " or pass the directory that holds the IDX files"));
}

}  // namespace detail

/// Loads a split of Fashion-MNIST: (N, 1, 28, 28) bytes, labels 0..9, the
/// 10 class names. Throws io_error naming the path, with the install hint,
/// when the files are not there. `opt`: the IDX reader's limits (read only
/// the first opt.limit images, at most opt.max_bytes).
inline image_dataset load_fashion_mnist(const std::filesystem::path& dir = fashion_mnist_default_dir,
                                        split s = split::train, const idx_options& opt = {}) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw io_error(ssl::detail::cat("Fashion-MNIST: the directory '", dir.string(), "' does not exist; ",
                                        detail::fashion_mnist_install_hint,
                                        " or pass the directory that holds the IDX files"));
    const std::string prefix = s == split::train ? "train" : "t10k";
    const auto images = detail::find_idx_file(dir, prefix + "-images-idx3-ubyte");
    const auto labels = detail::find_idx_file(dir, prefix + "-labels-idx1-ubyte");
    std::vector<std::string> names(fashion_mnist_classes.begin(), fashion_mnist_classes.end());
    auto ds = read_idx(images, labels, names.size(), std::move(names), opt);
    ds.name = std::string("fashion-mnist/") + split_name(s);
    ds.source = dir.string();
    return ds;
}

}  // namespace ssl::data
