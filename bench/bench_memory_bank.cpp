// The per-step cost of InstDisc's memory bank and NCE loss at ImageNet
// scale, next to a SimCLR step of the same backbone:
//   bank      1.28 M instances x 128 dims (655 MB), batch 256, m = 4096
//             noise samples per sample: targets() (draw the 1 M noise
//             indices), the NCE loss (gather 1 M bank rows, value and
//             gradient), after_step (update 256 rows in place). The features
//             are random unit vectors: the cost does not depend on them.
//   simclr    one SimCLR training step (2 views of 256 1x28x28 images
//             through ResNet-18 with the CIFAR stem at width 16, MLP head,
//             NT-Xent, backward, SGD), augmentation included
//   instdisc  one whole InstDisc step of the same backbone (1 view,
//             embedding head, NCE against the 1.28 M bank, backward, SGD,
//             bank update)
//   softmax   (--softmax) the exact non-parametric softmax over the whole
//             bank, for comparison (one GEMM pass over 1.28 M rows twice)
//
// Besides Google Benchmark's report it prints one line per measurement:
//   BANK instances=... dim=... batch=... negatives=... sample_ms=... nce_ms=... update_ms=... total_ms=... cpu_ms=...
//   STEP method=simclr|instdisc median_ms=... min_ms=... cpu_ms=... steps=...
//   SOFTMAX median_ms=...
// Own flags (before Google Benchmark's): --instances=N (default 1281167),
// --negatives=M (4096), --batch=B (256), --steps=S (timed steps, default 10),
// --softmax.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <numeric>
#include <string>
#include <vector>

#include <ssl/instdisc.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/simclr.hpp>

namespace {

std::size_t g_instances = 1281167, g_negatives = 4096, g_batch = 256;
int g_steps = 10, g_warmup = 2;
bool g_softmax = false;

const ssl::resnet_options net_opts{.in_channels = 1, .width = 16, .stem = ssl::stem::cifar, .seed = 1};

using clock_type = std::chrono::steady_clock;
double ms_since(clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}
/// CPU time of the whole process (all threads), ms: a load-insensitive view
/// of the work, next to the wall clock.
double process_cpu_ms() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
}
double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

ssl::tensor<float> random_images(std::size_t n, std::uint64_t seed) {
    ssl::tensor<float> x({n, 1, 28, 28});
    ssl::philox g(seed, 3);
    for (auto& v : x) v = g.uniform();
    return x;
}

/// B distinct instance ids for step s (a shuffled epoch, as the loader gives).
std::vector<std::size_t> batch_ids(std::size_t s, std::size_t n, std::size_t b) {
    std::vector<std::size_t> ids(b);
    for (std::size_t i = 0; i < b; ++i) ids[i] = (s * b + i * 4999) % n;
    return ids;
}

ssl::tensor<float> unit_features(std::size_t b, std::size_t d, std::uint64_t seed) {
    ssl::tensor<float> f({b, d});
    ssl::philox g(seed, 9);
    for (auto& v : f) v = static_cast<float>(g.normal());
    for (std::size_t i = 0; i < b; ++i) {
        float* r = f.data() + i * d;
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += double(r[j]) * r[j];
        for (std::size_t j = 0; j < d; ++j) r[j] = static_cast<float>(r[j] / std::sqrt(s));
    }
    return f;
}

struct bank_times {
    std::vector<double> sample, loss, update, total, cpu;
};
bank_times g_bank;
std::vector<double> g_simclr, g_instdisc, g_soft, g_simclr_cpu, g_instdisc_cpu;

// One InstDisc model (its bank is the 1.28 M x 128 one) for the bank and the
// whole-step measurements.
ssl::instdisc<>& instdisc_model() {
    static ssl::instdisc<> m([] {
        auto c = ssl::instdisc_config(net_opts, 28, 1, g_instances);
        c.target.negatives = g_negatives;
        return c;
    }());
    return m;
}

void bench_bank(benchmark::State& st) {
    auto& m = instdisc_model();
    auto& target = m.target();
    std::vector<ssl::tensor<float>> online{unit_features(g_batch, 128, 1)};
    std::size_t s = target.step();
    auto one = [&](bool record) {
        auto ids = batch_ids(s, g_instances, g_batch);
        online[0] = unit_features(g_batch, 128, s + 100);
        const double c0 = process_cpu_ms();
        const auto t0 = clock_type::now();
        auto t = target.targets(ids, online[0]);
        const double a = ms_since(t0);
        const auto t1 = clock_type::now();
        auto out = m.loss().compute(online, t, {});
        benchmark::DoNotOptimize(out.value);
        const double b = ms_since(t1);
        const auto t2 = clock_type::now();
        target.after_step(m.backbone(), m.head(), std::move(t), ssl::target_step{s, 1000, 0});
        const double c = ms_since(t2);
        const double cpu = process_cpu_ms() - c0;
        ++s;
        if (record) {
            g_bank.cpu.push_back(cpu);
            g_bank.sample.push_back(a);
            g_bank.loss.push_back(b);
            g_bank.update.push_back(c);
            g_bank.total.push_back(a + b + c);
        }
        return a + b + c;
    };
    for (int i = 0; i < g_warmup; ++i) one(false);  // the first also estimates Z
    for (auto _ : st) st.SetIterationTime(one(true) / 1e3);
}

template <class M>
void run_steps(benchmark::State& st, M& m, std::vector<double>& out, std::vector<double>& cpu) {
    ssl::optim::sgd<float> opt(m, {.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4});
    const auto images = random_images(g_batch, 7);
    std::size_t s = 0;
    auto one = [&](bool record) {
        const auto ids = batch_ids(s, g_instances, g_batch);
        const ssl::step_context ctx{0, 0, s, 1000};
        const double c0 = process_cpu_ms();
        const auto t0 = clock_type::now();
        opt.zero_grad();
        auto r = m.train_step(images, ids, ctx);
        benchmark::DoNotOptimize(r.loss);
        opt.step();
        m.after_step(std::move(r), ctx);
        const double t = ms_since(t0);
        ++s;
        if (record) {
            out.push_back(t);
            cpu.push_back(process_cpu_ms() - c0);
        }
        return t;
    };
    for (int i = 0; i < g_warmup; ++i) one(false);
    for (auto _ : st) st.SetIterationTime(one(true) / 1e3);
}

void bench_simclr(benchmark::State& st) {
    ssl::simclr<> m(ssl::simclr_config(net_opts, 28, 1));
    run_steps(st, m, g_simclr, g_simclr_cpu);
}

void bench_instdisc(benchmark::State& st) { run_steps(st, instdisc_model(), g_instdisc, g_instdisc_cpu); }

void bench_softmax(benchmark::State& st) {
    auto& m = instdisc_model();
    ssl::loss::nonparametric_softmax<float> loss({.temperature = 0.07});
    const auto f = unit_features(g_batch, 128, 5);
    const auto ids = batch_ids(0, g_instances, g_batch);
    for (auto _ : st) {
        const auto t0 = clock_type::now();
        auto r = loss(f, m.target().bank(), ids);
        benchmark::DoNotOptimize(r.value);
        const double t = ms_since(t0);
        g_soft.push_back(t);
        st.SetIterationTime(t / 1e3);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--instances=", 12) == 0)
            g_instances = std::strtoull(argv[i] + 12, nullptr, 10);
        else if (std::strncmp(argv[i], "--negatives=", 12) == 0)
            g_negatives = std::strtoull(argv[i] + 12, nullptr, 10);
        else if (std::strncmp(argv[i], "--batch=", 8) == 0)
            g_batch = std::strtoull(argv[i] + 8, nullptr, 10);
        else if (std::strncmp(argv[i], "--steps=", 8) == 0)
            g_steps = std::atoi(argv[i] + 8);
        else if (std::strcmp(argv[i], "--softmax") == 0)
            g_softmax = true;
        else
            rest.push_back(argv[i]);
    }
    benchmark::RegisterBenchmark("memory_bank_nce", bench_bank)
        ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(g_steps);
    benchmark::RegisterBenchmark("simclr_step", bench_simclr)
        ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(g_steps);
    benchmark::RegisterBenchmark("instdisc_step", bench_instdisc)
        ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(g_steps);
    if (g_softmax)
        benchmark::RegisterBenchmark("nonparametric_softmax", bench_softmax)
            ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(std::max(1, g_steps / 5));
    int rargc = static_cast<int>(rest.size());
    benchmark::Initialize(&rargc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(rargc, rest.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    std::printf("threads=%zu\n", ssl::num_threads());
    if (!g_bank.total.empty())
        std::printf("BANK instances=%zu dim=128 batch=%zu negatives=%zu sample_ms=%.2f nce_ms=%.2f update_ms=%.3f "
                    "total_ms=%.2f cpu_ms=%.1f (medians of %zu steps)\n",
                    g_instances, g_batch, g_negatives, median(g_bank.sample), median(g_bank.loss),
                    median(g_bank.update), median(g_bank.total), median(g_bank.cpu), g_bank.total.size());
    if (!g_simclr.empty())
        std::printf("STEP method=simclr median_ms=%.1f min_ms=%.1f cpu_ms=%.1f steps=%zu\n", median(g_simclr),
                    *std::min_element(g_simclr.begin(), g_simclr.end()), median(g_simclr_cpu), g_simclr.size());
    if (!g_instdisc.empty())
        std::printf("STEP method=instdisc median_ms=%.1f min_ms=%.1f cpu_ms=%.1f steps=%zu\n", median(g_instdisc),
                    *std::min_element(g_instdisc.begin(), g_instdisc.end()), median(g_instdisc_cpu), g_instdisc.size());
    if (!g_soft.empty()) std::printf("SOFTMAX median_ms=%.1f steps=%zu\n", median(g_soft), g_soft.size());
    if (!g_bank.total.empty() && !g_simclr.empty())
        std::printf("bank + NCE per step = %.1f%% of a SimCLR step (wall), %.1f%% (CPU)\n",
                    100.0 * median(g_bank.total) / median(g_simclr), 100.0 * median(g_bank.cpu) / median(g_simclr_cpu));
    return 0;
}
