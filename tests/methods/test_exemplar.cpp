// Exemplar-CNN (exemplar.hpp) end to end: surrogate classes from seed patches
// of real images, trained through the trainer; the paper's settings.
#include <doctest/doctest.h>

#include "fashion_mnist_subset.hpp"

#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/exemplar.hpp>
#include <ssl/trainer.hpp>

#include <numeric>
#include <string>

namespace test_exemplar_method {  // each file in its own namespace: an area builds as one unity translation unit

namespace {
const ssl::resnet_options ex_net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};
}  // namespace

TEST_CASE("exemplar_config: the paper's transformations, N surrogate classes, plain cross entropy") {
    const auto c = ssl::exemplar_config(ex_net, 16, 1, 300);
    CHECK(c.augment.size == 16);
    CHECK(c.augment.translate == 0.2);
    CHECK(c.augment.scale == ssl::augment::range{0.7, 1.4});
    CHECK(c.augment.degrees == 20);
    CHECK(c.augment.transforms_per_class == 100);
    CHECK(c.head.hidden == 128);
    CHECK(c.head.out == 128);
    CHECK(c.loss.ce.smoothing == 0);
    CHECK(c.loss.instances == 300);
    CHECK(ssl::exemplar_config(ex_net, 32, 3, 8000).head.hidden == 512);
    // A smoke step on synthetic images (no data set needed): 24 patches of
    // 48 images, one step, a finite loss and the surrogate-class accuracy.
    const auto images = ssl::data::synthetic({.size = 48, .classes = 4, .channels = 1, .height = 28, .width = 28,
                                              .noise = 0.2, .seed = 1})
                            .to_dataset();
    const auto patches = ssl::data::exemplar_patches(images, {.count = 24, .patch_size = 16, .seed = 1});
    auto cfg = ssl::exemplar_config(ex_net, 16, 1, patches.size());
    ssl::exemplar<> m(cfg);
    m.begin_epoch(patches, 0, 0);
    std::vector<std::size_t> ids(16);
    std::iota(ids.begin(), ids.end(), 4);
    const auto r = m.train_step(patches.batch(ids), ids, {.seed = 1});
    CHECK(std::isfinite(r.loss));
    REQUIRE(r.metrics.size() == 1);
    CHECK(r.metrics[0].first == "inst_top1");
}

TEST_CASE("exemplar learns 256 surrogate classes of Fashion-MNIST patches: the loss falls through the trainer") {
    const auto loaded = ssl_test::fashion_mnist_subset(256);
    if (!loaded) return;
    std::vector<std::size_t> idx(256);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    const auto& images = *loaded;
    // 256 seed patches of 16 px (24-px windows), one per image at its place
    // of largest gradient among 8 candidates; each is its own class. Every
    // image must give one, so only flat places are excluded (quantile 0).
    const auto patches =
        ssl::data::exemplar_patches(images, {.count = 256, .patch_size = 16, .quantile = 0, .seed = 1});
    REQUIRE(patches.size() == 256);
    CHECK(patches.images.shape() == ssl::shape_t{256, 1, 24, 24});
    ssl::exemplar<> m(ssl::exemplar_config(ex_net, 16, 1, 256));
    // The paper's transformations are strong (contrast 2 alone raises values
    // to powers in [1/4, 4]): 12 epochs of 8 steps.
    ssl::trainer_config tc{.epochs = 12, .batch = 32, .lr = 0.1, .weight_decay = 5e-4, .warmup_epochs = 0.5,
                           .seed = 3, .progress = false};
    const auto s = ssl::trainer<ssl::exemplar<>>(m, patches, tc).fit();
    REQUIRE(s.epoch_loss.size() == 12);
    std::string per_epoch;
    for (double l : s.epoch_loss) per_epoch += " " + std::to_string(l);
    MESSAGE("exemplar on 256 Fashion-MNIST patches: loss per epoch", per_epoch, " (first step ", s.first_loss,
            ", chance log 256 = ", std::log(256.0), "), ", s.seconds, " s");
    CHECK(s.epoch_loss.back() < s.epoch_loss.front() - 0.4);
    // Features of whole images at evaluation.
    const auto f = m.embed(images.batch(std::span<const std::size_t>(idx.data(), 8)));
    CHECK(f.shape() == ssl::shape_t{8, m.backbone().output_dim()});
}

}  // namespace test_exemplar_method
