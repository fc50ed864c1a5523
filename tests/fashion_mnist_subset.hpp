// The first n Fashion-MNIST training images, for tests that need real
// objects (the Debian package dataset-fashion-mnist, which scripts/setup.sh
// installs); nullopt with a visible MESSAGE when the data set is absent.
#pragma once
#include <doctest/doctest.h>

#include <ssl/data/fashion_mnist.hpp>

#include <optional>
#include <vector>

namespace ssl_test {
inline std::optional<ssl::data::image_dataset> fashion_mnist_subset(std::size_t n) {
    ssl::data::image_dataset full;
    try {
        full = ssl::data::load_fashion_mnist();
    } catch (const ssl::io_error& e) {
        MESSAGE("skipped: ", e.what());
        return std::nullopt;
    }
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    return full.subset(idx);
}
}  // namespace ssl_test
