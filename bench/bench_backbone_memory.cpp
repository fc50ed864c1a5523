// Memory of one training step (forward + backward) of a pre-activation
// ResNet (resnet_v2.hpp) and a RevNet (revnet.hpp) of the same shape, at any
// depth: RevNet recomputes its reversible units' activations in backward
// (Gomez et al. 2017), so what a step holds should not grow with depth.
//
//   bench_backbone_memory ARCH UNITS [BATCH SIZE WIDTH]
//     ARCH   resnet_v2 | revnet   (basic units, cifar stem, 3 input channels)
//     UNITS  units per stage, the same in all four stages (2 = resnet18v2 / revnet18)
//   prints one line of key=value: parameters, the bytes the step's forward
//   keeps for backward (live after forward minus live before), the step's
//   pool footprint (the host pool's cached + live bytes after the step minus
//   before it: the pool never returns memory, so this bounds what the step held
//   at once from above, by whole blocks per size), and the process's peak
//   resident set (getrusage) and its growth during the step. With
//   SSL_POISON_ALLOCATIONS=1 the pool caches nothing (every tensor goes back to
//   the system when freed), so step_rss_MiB is the step's true peak.
// Run each configuration in its own process (bench/README.md has the table).
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <ssl/backbone/resnet_v2.hpp>
#include <ssl/backbone/revnet.hpp>
#include <ssl/core/memory_pool.hpp>
#include <ssl/core/rng.hpp>

namespace {

template <class Net>
int run(Net& net, const char* arch, std::size_t units, std::size_t batch, std::size_t size) {
    ssl::tensor<float> x({batch, 3, size, size});
    ssl::philox g(1, 2);
    for (auto& v : x) v = static_cast<float>(g.normal());
    net.train(true);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const double rss_before = ru.ru_maxrss / 1024.0;
    const auto before = ssl::host_pool_stats();
    auto f = net.forward(x);
    const auto after_forward = ssl::host_pool_stats();
    ssl::tensor<float> dy(f.out.shape(), 1.0f);
    (void)net.backward(f.cache, dy, false);
    const auto after = ssl::host_pool_stats();
    getrusage(RUSAGE_SELF, &ru);
    const double mib = 1024.0 * 1024.0;
    std::printf("arch=%s units_per_stage=%zu depth=%zu batch=%zu size=%zu parameters=%zu kept_for_backward_MiB=%.1f "
                "step_pool_footprint_MiB=%.1f max_rss_MiB=%.1f step_rss_MiB=%.1f\n",
                arch, units, 2 + 4 * units * 2, batch, size, ssl::parameter_count(net),
                (after_forward.live_bytes - before.live_bytes) / mib,
                ((after.live_bytes + after.cached_bytes) - (before.live_bytes + before.cached_bytes)) / mib,
                ru.ru_maxrss / 1024.0, ru.ru_maxrss / 1024.0 - rss_before);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s resnet_v2|revnet UNITS [BATCH SIZE WIDTH]\n", argv[0]);
        return 2;
    }
    const std::string arch = argv[1];
    const std::size_t units = std::strtoul(argv[2], nullptr, 10);
    const std::size_t batch = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 32;
    const std::size_t size = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 32;
    const std::size_t width = argc > 5 ? std::strtoul(argv[5], nullptr, 10) : 16;
    const ssl::resnet_options o{.in_channels = 3, .width = width, .stem = ssl::stem::cifar, .seed = 1};
    const std::vector<std::size_t> blocks(4, units);
    if (arch == "resnet_v2") {
        ssl::resnet_v2<ssl::nn::preact_basic_block<float>> net(blocks, o);
        return run(net, arch.c_str(), units, batch, size);
    }
    if (arch == "revnet") {
        ssl::revnet<float, false> net(blocks, o);
        return run(net, arch.c_str(), units, batch, size);
    }
    std::fprintf(stderr, "unknown arch '%s' (resnet_v2 or revnet)\n", arch.c_str());
    return 2;
}
