// One full training step of ResNet-18 (CIFAR stem, 1x28x28 input):
//   forward in train mode, loss L = 0.5 * mean_n(sum(features^2))
//   (dL/dfeatures = features / N), backward without the input gradient,
//   SGD with momentum 0.9, weight decay 5e-4, lr 0.01, then zero grads.
// At width 16 / batch 256 and width 64 / batch 128.
//
// Besides Google Benchmark's report it prints one machine-readable line per
// configuration (read by run_host_bench.sh):
//   STEP config=w16_n256 median_ms=... mean_ms=... min_ms=... steps=...
//   POOL config=w16_n256 sys_allocs_after_warmup=... sys_allocs_after_timed=...
// Own flags (before Google Benchmark's): --steps=N (timed steps, default 15
// at width 16 and 8 at width 64), --warmup=N (default 3), --config=w16_n256,
// --im2col (no Winograd: every conv through im2col + GEMM), --no-direct (no
// direct path for strided convs), --direct-max=C, --small-gemm=N
// (the largest channel count whose Winograd products use small_gemm; 0:
// always Eigen).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <ssl/backbone/resnet.hpp>
#include <ssl/core/memory_pool.hpp>

#include "shapes.hpp"

#if __has_include(<ssl/optim/sgd.hpp>) && defined(SSL_BENCH_USE_OPTIM)
#include <ssl/optim/sgd.hpp>
#endif

namespace {

int g_steps = 0, g_warmup = 3;
std::string g_only;

constexpr float lr = 0.01f, momentum = 0.9f, weight_decay = 5e-4f;

/// PyTorch's SGD (dampening 0, not Nesterov): d = g + wd * p;
/// buf = momentum * buf + d (buf = d on the first step); p -= lr * buf.
struct sgd_momentum {
    std::vector<ssl::tensor<float>> bufs;
    bool first = true;
    template <class Net>
    void step(Net& net) {
        std::size_t i = 0;
        net.for_each_parameter(
            [&](const std::string&, ssl::parameter<float>& p) {
                if (first) bufs.push_back(ssl::tensor<float>::zeros(p.value.shape()));
                float* v = p.value.data();
                float* g = p.grad.data();
                float* b = bufs[i++].data();
                const std::size_t n = p.value.numel();
                if (first) {
                    for (std::size_t k = 0; k < n; ++k) b[k] = g[k] + weight_decay * v[k];
                } else {
                    for (std::size_t k = 0; k < n; ++k) b[k] = momentum * b[k] + (g[k] + weight_decay * v[k]);
                }
                for (std::size_t k = 0; k < n; ++k) v[k] -= lr * b[k];
                p.zero_grad();
            },
            "");
        first = false;
    }
};

struct trainer {
    ssl::resnet18<float> net;
    ssl::tensor<float> x;
    sgd_momentum opt;
    double last_loss = 0;

    trainer(std::size_t width, std::size_t batch)
        : net({.in_channels = 1, .width = width, .stem = ssl::stem::cifar}), x({batch, 1, 28, 28}) {
        std::mt19937 g(42);
        std::normal_distribution<float> d(0.f, 1.f);
        for (auto& v : x) v = d(g);
        net.train(true);
    }

    void step() {
        auto r = net.forward(x);
        const std::size_t n = r.out.dim(0);
        ssl::tensor<float> dy(r.out.shape());
        double loss = 0;
        const float inv_n = 1.0f / static_cast<float>(n);
        for (std::size_t i = 0; i < r.out.numel(); ++i) {
            const float f = r.out[i];
            loss += 0.5 * static_cast<double>(f) * f;
            dy[i] = f * inv_n;
        }
        last_loss = loss / static_cast<double>(n);
        net.backward(r.cache, dy, /*need_input_grad=*/false);
        opt.step(net);
    }
};

/// CPU time of the whole process (all threads), seconds: a load-insensitive
/// view of the work done, next to the wall clock.
double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct result {
    std::string config;
    std::vector<double> ms;
    double cpu_ms_per_step = 0;
    std::size_t allocs_warm = 0, allocs_timed = 0;
    double loss = 0;
};
std::vector<result> g_results;

void bench_step(benchmark::State& st, ssl_bench::config c) {
    trainer t(c.width, c.batch);
    for (int i = 0; i < g_warmup; ++i) t.step();
    result res{c.name(), {}, 0, ssl::host_pool_stats().system_allocations, 0, 0};
    const double cpu0 = process_cpu_seconds();
    for (auto _ : st) {
        const auto t0 = std::chrono::steady_clock::now();
        t.step();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        st.SetIterationTime(s);
        res.ms.push_back(s * 1e3);
    }
    res.cpu_ms_per_step = (process_cpu_seconds() - cpu0) * 1e3 / static_cast<double>(res.ms.size());
    res.allocs_timed = ssl::host_pool_stats().system_allocations;
    res.loss = t.last_loss;
    st.counters["loss"] = res.loss;
    g_results.push_back(std::move(res));
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--steps=", 8) == 0)
            g_steps = std::atoi(argv[i] + 8);
        else if (std::strncmp(argv[i], "--warmup=", 9) == 0)
            g_warmup = std::atoi(argv[i] + 9);
        else if (std::strncmp(argv[i], "--config=", 9) == 0)
            g_only = argv[i] + 9;
        else if (std::strcmp(argv[i], "--winograd") == 0)  // F(4x4, 3x3); F(2x2, 3x3) is the default
            ssl::backend::host::winograd::select(4);
        else if (std::strncmp(argv[i], "--winograd=", 11) == 0) {  // 0 (off), 2, 4
            if (!ssl::backend::host::winograd::select(std::strtoul(argv[i] + 11, nullptr, 10))) {
                std::fprintf(stderr, "bench_step: --winograd= takes 0, 2 or 4, not '%s'\n", argv[i] + 11);
                return 2;
            }
        } else if (std::strcmp(argv[i], "--im2col") == 0)
            ssl::backend::host::winograd::enabled = false;
        else if (std::strcmp(argv[i], "--no-direct") == 0)
            ssl::backend::host::direct::enabled = false;
        else if (std::strncmp(argv[i], "--direct-max=", 13) == 0)
            ssl::nn::conv2d<float>::direct_max_channels = std::strtoul(argv[i] + 13, nullptr, 10);
        else if (std::strncmp(argv[i], "--small-gemm=", 13) == 0)
            ssl::nn::conv2d<float>::small_gemm_max_channels = std::strtoul(argv[i] + 13, nullptr, 10);
        else
            rest.push_back(argv[i]);
    }
    int rargc = static_cast<int>(rest.size());
    for (const auto& c : ssl_bench::configs()) {
        if (!g_only.empty() && g_only != c.name()) continue;
        const int steps = g_steps > 0 ? g_steps : (c.width <= 16 ? 15 : 8);
        benchmark::RegisterBenchmark(("resnet18_step/" + c.name()).c_str(), bench_step, c)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime()
            ->Iterations(steps);
    }
    benchmark::Initialize(&rargc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(rargc, rest.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    for (auto& r : g_results) {
        if (r.ms.empty()) continue;
        std::vector<double> s = r.ms;
        std::sort(s.begin(), s.end());
        const double median = s.size() % 2 ? s[s.size() / 2] : 0.5 * (s[s.size() / 2 - 1] + s[s.size() / 2]);
        const double mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
        std::printf("STEP config=%s median_ms=%.1f mean_ms=%.1f min_ms=%.1f cpu_ms=%.1f steps=%zu loss=%.4g\n",
                    r.config.c_str(), median, mean, s.front(), r.cpu_ms_per_step, s.size(), r.loss);
        std::printf("POOL config=%s sys_allocs_after_warmup=%zu sys_allocs_after_timed=%zu (steady state: %zu)\n",
                    r.config.c_str(), r.allocs_warm, r.allocs_timed, r.allocs_timed - r.allocs_warm);
    }
    return 0;
}
