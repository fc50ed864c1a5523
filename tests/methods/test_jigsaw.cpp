// Jigsaw (jigsaw.hpp) end to end: the permutation loss falls through the
// trainer on real images, and the paper's settings.
#include <doctest/doctest.h>

#include "fashion_mnist_subset.hpp"

#include <ssl/data/fashion_mnist.hpp>
#include <ssl/jigsaw.hpp>
#include <ssl/trainer.hpp>

namespace test_jigsaw_method {  // each file in its own namespace: an area builds as one unity translation unit

TEST_CASE("jigsaw_config: the paper's widths, P classes, 9 copies") {
    const ssl::resnet_options net{.in_channels = 3, .width = 8, .stem = ssl::stem::cifar, .seed = 1};
    auto big = ssl::jigsaw_config(net, 225, 3, 1000);
    CHECK(big.head.row.out == 512);
    CHECK(big.head.joint.hidden == 4096);
    CHECK(big.head.joint.out == 1000);
    CHECK(!big.head.joint.batch_norm);
    CHECK(big.head.copies == 9);
    auto small = ssl::jigsaw_config(net, 28, 1);
    CHECK(small.head.row.out == 128);
    CHECK(small.augment.permutations == 100);
}

TEST_CASE("jigsaw learns the puzzle on real images: the permutation loss falls through the trainer") {
    // The puzzle needs images whose parts differ by position (objects):
    // 512 Fashion-MNIST images (the Debian package scripts/setup.sh installs).
    // The synthetic set's textures look alike in every cell once each tile is
    // normalised, so no network can tell the permutations apart there.
    const auto loaded = ssl_test::fashion_mnist_subset(512);
    if (!loaded) return;
    std::vector<std::size_t> idx(512);
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    const auto& train = *loaded;
    const ssl::resnet_options net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};
    ssl::jigsaw<> m(ssl::jigsaw_config(net, 28, 1, 24));
    ssl::trainer_config tc{.epochs = 3, .batch = 64, .lr = 0.1, .seed = 3, .progress = false};
    auto s = ssl::trainer<ssl::jigsaw<>>(m, train, tc).fit();
    REQUIRE(s.epoch_loss.size() == 3);
    MESSAGE("jigsaw on 512 Fashion-MNIST images: loss per epoch ", s.epoch_loss[0], " ", s.epoch_loss[1], " ",
            s.epoch_loss[2]);
    CHECK(s.first_loss == doctest::Approx(std::log(24.0)).epsilon(0.05));  // chance at the start
    CHECK(s.epoch_loss.back() < s.epoch_loss.front() - 0.1);
    // The features come from whole images at evaluation.
    const auto f = m.embed(train.batch(std::span<const std::size_t>(idx.data(), 8)));
    CHECK(f.shape() == ssl::shape_t{8, m.backbone().output_dim()});
}

}  // namespace test_jigsaw_method
