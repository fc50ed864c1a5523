// conv2d forward and backward (weight + input gradient) for every distinct
// conv shape of ResNet-18 (CIFAR stem, 1x28x28 input), at width 16 / batch
// 256 and width 64 / batch 128. Counter GFLOPs: useful FLOPs of the direct
// convolution (2 * N * Cout * Cin * K * K * Ho * Wo forward, twice that
// backward) per second, so algorithms with fewer FLOPs (Winograd) show up as
// higher rates. Flag --im2col turns the Winograd path off;
// --wg-mode=1|2 forces per-chunk / whole-batch Winograd, --wg-tiles=N the
// chunk size, --small-gemm=N the largest channel count whose Winograd
// products use backend::host::small_gemm (0: always Eigen).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>
#include <ssl/nn/conv2d.hpp>

#include "shapes.hpp"

namespace {

ssl::tensor<float> random_tensor(ssl::shape_t s, unsigned seed) {
    ssl::tensor<float> t(s);
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, 1.f);
    for (auto& v : t) v = d(g);
    return t;
}

void bench_forward(benchmark::State& st, ssl_bench::conv_shape s, std::size_t n) {
    ssl::nn::conv2d<float> conv({s.cin, s.cout, s.kernel, s.stride, s.pad, false}, 1);
    auto x = random_tensor({n, s.cin, s.hw_in, s.hw_in}, 2);
    for (auto _ : st) {
        auto r = conv.forward(x);
        benchmark::DoNotOptimize(r.out.data());
    }
    st.counters["GFLOPs"] = benchmark::Counter(s.flops(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_backward(benchmark::State& st, ssl_bench::conv_shape s, std::size_t n) {
    ssl::nn::conv2d<float> conv({s.cin, s.cout, s.kernel, s.stride, s.pad, false}, 1);
    auto x = random_tensor({n, s.cin, s.hw_in, s.hw_in}, 2);
    auto r = conv.forward(x);
    auto dy = random_tensor(r.out.shape(), 3);
    for (auto _ : st) {
        auto dx = conv.backward(r.cache, dy, true);
        benchmark::DoNotOptimize(dx.data());
    }
    st.counters["GFLOPs"] = benchmark::Counter(2 * s.flops(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
    // --winograd: Winograd F(4x4, 3x3) (F(2x2, 3x3) is the default);
    // --winograd=N: 0 (off), 2, 4; --im2col: disable the Winograd path; --no-direct: disable the direct
    // path (strided and other non-Winograd convolutions); --direct-max=C:
    // direct path only up to C input channels
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--winograd")
            ssl::backend::host::winograd::select(4);
        else if (a.rfind("--winograd=", 0) == 0) {
            if (!ssl::backend::host::winograd::select(std::stoul(a.substr(11)))) {
                std::fprintf(stderr, "bench_conv: --winograd= takes 0, 2 or 4, not '%s'\n", a.c_str() + 11);
                return 2;
            }
        }
        else if (a == "--im2col")
            ssl::backend::host::winograd::enabled = false;
        else if (a == "--no-direct")
            ssl::backend::host::direct::enabled = false;
        else if (a.rfind("--direct-max=", 0) == 0)
            ssl::nn::conv2d<float>::direct_max_channels = std::stoul(a.substr(13));
        else if (a.rfind("--wg-mode=", 0) == 0)
            ssl::nn::conv2d<float>::winograd_mode = std::stoi(a.substr(10));
        else if (a.rfind("--wg-tiles=", 0) == 0)
            ssl::nn::conv2d<float>::winograd_target_tiles = std::stoul(a.substr(11));
        else if (a.rfind("--small-gemm=", 0) == 0)
            ssl::nn::conv2d<float>::small_gemm_max_channels = std::stoul(a.substr(13));
        else
            rest.push_back(argv[i]);
    }
    argc = static_cast<int>(rest.size());
    argv = rest.data();
    for (const auto& c : ssl_bench::configs())
        for (const auto& s : ssl_bench::resnet18_convs(c.width)) {
            const std::string tag = c.name() + "/" + s.name;
            benchmark::RegisterBenchmark(("conv_fwd/" + tag).c_str(), bench_forward, s, c.batch)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
            benchmark::RegisterBenchmark(("conv_bwd/" + tag).c_str(), bench_backward, s, c.batch)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
        }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
