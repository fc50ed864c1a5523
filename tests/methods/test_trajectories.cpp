// Every method's first steps, pinned: the losses of 8 training steps (two
// epochs of 128 synthetic images, batch 32, fixed seeds, one thread) must
// equal the values recorded at commit 0cd80f1, before the policy seam was
// redesigned. A change to the seam (views, heads, losses, the target
// protocol, ssl::ops) that changes what a method computes fails here.
// SSL_PRINT_TRAJECTORIES=1 prints the current values in this file's format.
#include <doctest/doctest.h>

#include <ssl/byol.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/deepcluster.hpp>
#include <ssl/deepercluster.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/instdisc.hpp>
#include <ssl/moco.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/sela.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>

#include <cstdio>
#include <cstdlib>

namespace test_trajectories {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

const ssl::resnet_options net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};
constexpr std::size_t n_images = 128;

template <class M>
std::vector<double> trajectory(const typename M::config& c, double lr) {
    const auto data = ssl::data::synthetic({.size = n_images, .classes = 4, .channels = 1, .height = 16, .width = 16,
                                            .noise = 0.2, .seed = 1})
                          .to_dataset();
    const std::size_t threads = ssl::num_threads();
    ssl::set_num_threads(1);
    M m(c);
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = lr, .weight_decay = 1e-4, .warmup_epochs = 0.5,
                           .seed = 3, .progress = false};
    auto s = ssl::trainer<M>(m, data, tc).fit();
    ssl::set_num_threads(threads);
    return s.step_loss;
}

void check(const char* name, const std::vector<double>& got, const std::vector<double>& want) {
    CAPTURE(name);
    if (std::getenv("SSL_PRINT_TRAJECTORIES")) {
        std::printf("    %s: {", name);
        for (std::size_t i = 0; i < got.size(); ++i) std::printf("%s%.9g", i ? ", " : "", got[i]);
        std::printf("}\n");
        return;
    }
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        // Summation order may change in a refactor (one shared row
        // normalisation instead of nine), values may not.
        CHECK(got[i] == doctest::Approx(want[i]).epsilon(2e-5));
    }
}

}  // namespace

TEST_CASE("pinned trajectories: simclr, byol, rotnet") {
    auto sc = ssl::simclr_config(net, 16, 1);
    sc.head.hidden = 64;  // with simclr_config's output batch norm (issue 24)
    sc.head.out = 16;
    check("simclr", trajectory<ssl::simclr<>>(sc, 0.1),
          {5.5608855, 4.90552885, 4.91637832, 5.03724111, 5.0999672, 5.27352652, 4.95859332, 6.14425028});
    auto bc = ssl::byol_config(net, 16, 1);
    bc.head = {{64, 16, true}, {64, 16, true}};
    check("byol", trajectory<ssl::byol<>>(bc, 0.1),
          {3.67299849, 3.58062278, 2.08857986, 1.67106651, 1.66980134, 1.68550488, 1.65065219, 1.6532656});
    check("rotnet", trajectory<ssl::rotnet<>>(ssl::rotnet_config(net, 16, 1), 0.05),
          {1.45272639, 1.46535628, 1.42694977, 1.4160367, 1.46573523, 1.44532124, 1.36746085, 1.39974639});
}

TEST_CASE("pinned trajectories: moco_v2, instdisc (NCE and full softmax), instance_cls") {
    auto mc = ssl::moco_v2_config(net, 16, 1);
    mc.head = {64, 16, false};
    mc.target.size = 64;
    mc.target.shuffle_bn_groups = 4;
    check("moco_v2", trajectory<ssl::moco_v2<>>(mc, 0.1),
          {0.236370499, 8.44204925, 8.86768064, 8.30729565, 8.40256737, 8.26044714, 8.1652523, 8.3459024});
    auto ic = ssl::instdisc_config(net, 16, 1, n_images);
    ic.head = {16};
    ic.target.dim = 16;
    ic.target.negatives = 64;
    check("instdisc", trajectory<ssl::instdisc<>>(ic, 0.1),
          {7.18754094, 10.3894256, 9.6822015, 8.99034377, 64.2651296, 82.6118801, 94.7078365, 99.0432972});
    auto fc = ssl::instdisc_full_softmax_config(net, 16, 1, n_images);
    fc.head = {16};
    fc.target.dim = 16;
    check("instdisc_full_softmax", trajectory<ssl::instdisc_full_softmax<>>(fc, 0.1),
          {6.93214146, 10.0992154, 9.24948115, 9.11441283, 8.85865727, 11.8387509, 12.4271675, 11.6738102});
    auto cc = ssl::instance_cls_config(net, 16, 1, n_images);
    cc.head = {64, 16, true};
    cc.loss.shard_rows = 50;
    check("instance_cls", trajectory<ssl::instance_cls<>>(cc, 0.1),
          {4.99237845, 4.92847497, 5.14904286, 4.97367207, 4.80785972, 5.01750389, 4.95166324, 4.95284903});
}

TEST_CASE("pinned trajectories: deepcluster, sela, deepercluster") {
    auto dc = ssl::deepcluster_config(net, 16, 1, n_images);
    dc.head = {8};
    dc.target.features.pca_dim = 16;
    check("deepcluster", trajectory<ssl::deepcluster<>>(dc, 0.05),
          {2.35269103, 2.16898063, 2.07694074, 2.13010389, 2.20959907, 2.20700338, 2.18545195, 2.10388048});
    auto se = ssl::sela_config(net, 16, 1, n_images);
    se.head = {.heads = 2, .classes = 8};
    check("sela", trajectory<ssl::sela<>>(se, 0.05),
          {2.27687527, 2.40202189, 2.19830594, 2.1385202, 2.14408093, 2.07659467, 2.08784328, 2.15287407});
    auto dd = ssl::deepercluster_config(net, 16, 1, n_images);
    dd.target.features.pca_dim = 16;
    check("deepercluster", trajectory<ssl::deepercluster<>>(dd, 0.05),
          {3.65870225, 3.70900172, 3.61534909, 3.61373258, 3.47678102, 3.50142674, 3.47180847, 3.5054131});
}

}  // namespace test_trajectories
