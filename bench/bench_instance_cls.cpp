// What the one-million-way instance classifier (ssl::instance_cls, Liu et al.
// AAAI 2021) costs per step on the host, at ImageNet's scale: N = 1 281 167
// instance classes of D = 128, batch B = 256.
//   instance_ce      the loss alone: forward + backward + weight gradient
//                    (2 x B x N x D GEMMs per pass, 4 in all, the B x N logits
//                    never stored), random features and unit rows
//   classifier_sgd   torch-style SGD (momentum 0.9, weight decay 5e-4) over the
//                    N x D classifier shards: a dense update, every row has a
//                    gradient (the softmax touches all classes)
//   simclr_step      one SimCLR step (train_step: 2 views, ResNet-18 CIFAR stem
//                    width 16 on 1x28x28, MLP head, NT-Xent; then SGD)
//   instance_cls_step one instance_cls step (1 view, same backbone, MLP head,
//                    the N-way classifier, SGD over network + classifier)
// The "overhead" line is instance_cls_step - simclr_step, and the
// classifier's own part (instance_ce + classifier_sgd).
//
// Prints, besides Google Benchmark's report:
//   ICLS part=<name> median_ms=... min_ms=... steps=...
//   ICLS overhead_ms=... classifier_ms=...
// Own flags (before Google Benchmark's): --instances=N (default 1281167),
// --steps=N (timed steps per part, default 3), --warmup=N (default 1),
// --only=<part>, --block=N (the loss's block_columns, default 256).
// cpu_ms: process CPU time per step, all threads (a view of the work that
// other load on the machine does not inflate).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <ssl/core/rng.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/simclr.hpp>

namespace {

std::size_t g_instances = 1'281'167, g_dim = 128, g_batch = 256;
int g_steps = 3, g_warmup = 1;
std::string g_only;
std::size_t g_block = 256;
std::map<std::string, std::vector<double>> g_ms;
std::map<std::string, double> g_cpu_ms;  // process CPU time per step (all threads): insensitive to other load

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

const ssl::resnet_options net_options{.in_channels = 1, .width = 16, .stem = ssl::stem::cifar, .seed = 1};
const ssl::optim::sgd_config sgd_cfg{.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4};

/// Times `step` (after warm-up) into the part's list and the benchmark.
template <class F>
void timed(benchmark::State& st, const std::string& part, F&& step) {
    for (int i = 0; i < g_warmup; ++i) step();
    const double cpu0 = process_cpu_seconds();
    std::size_t n = 0;
    for (auto _ : st) {
        ++n;
        const auto t0 = std::chrono::steady_clock::now();
        step();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        st.SetIterationTime(s);
        g_ms[part].push_back(s * 1e3);
    }
    g_cpu_ms[part] = (process_cpu_seconds() - cpu0) * 1e3 / static_cast<double>(std::max<std::size_t>(n, 1));
}

/// The classifier alone: N x D unit rows in shards, as the target owns them.
struct classifier {
    std::vector<std::unique_ptr<ssl::parameter<float>>> shards;
    std::vector<ssl::parameter<float>*> ptr;
    classifier() {
        const std::size_t R = ssl::loss::instance_shard_rows({.instances = g_instances});
        for (std::size_t s = 0; s * R < g_instances; ++s) {
            const std::size_t r = std::min(R, g_instances - s * R);
            shards.push_back(std::make_unique<ssl::parameter<float>>(ssl::shape_t{r, g_dim}, ssl::param_role::weight));
            ptr.push_back(shards.back().get());
        }
        ssl::parallel_for(shards.size(), [&](std::size_t s, std::size_t) {
            ssl::philox g(7, s);
            for (auto& v : shards[s]->value) v = static_cast<float>(g.normal() / std::sqrt(double(g_dim)));
        });
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        for (std::size_t s = 0; s < shards.size(); ++s) f(ssl::join_name(prefix, std::to_string(s)), *shards[s]);
    }
};

ssl::tensor<float> random_images(std::size_t n) {
    ssl::tensor<float> x({n, 1, 28, 28});
    ssl::philox g(3, 1);
    for (auto& v : x) v = static_cast<float>(g.uniform(0, 1));
    return x;
}

void bench_instance_ce(benchmark::State& st) {
    classifier w;
    ssl::tensor<float> f({g_batch, g_dim});
    ssl::philox g(5, 2);
    for (auto& v : f) v = static_cast<float>(g.normal());
    std::vector<std::int64_t> y(g_batch);
    for (std::size_t i = 0; i < g_batch; ++i) y[i] = static_cast<std::int64_t>(g.below(g_instances));
    const ssl::loss::instance_ce<float> ce({.block_columns = g_block});  // the paper's tau 0.15, k 10, eps 0.2
    std::size_t scratch = 0;
    timed(st, "instance_ce", [&] {
        auto r = ce(f, w.ptr, y);
        scratch = r.scratch_bytes;
        benchmark::DoNotOptimize(r.value);
    });
    st.counters["scratch_MiB"] = static_cast<double>(scratch) / (1 << 20);
    st.counters["shards"] = static_cast<double>(w.ptr.size());
}

void bench_classifier_sgd(benchmark::State& st) {
    classifier w;
    ssl::optim::sgd<float> opt(w, sgd_cfg);
    for (auto* p : w.ptr) p->grad.fill(1e-3f);
    timed(st, "classifier_sgd", [&] { opt.step(); });
}

void bench_simclr_step(benchmark::State& st) {
    auto c = ssl::simclr_config(net_options, 28, 1);
    ssl::simclr<> m(c);
    ssl::optim::sgd<float> opt(m, sgd_cfg);
    const auto x = random_images(g_batch);
    std::vector<std::size_t> ids(g_batch);
    std::iota(ids.begin(), ids.end(), 0);
    std::size_t step = 0;
    timed(st, "simclr_step", [&] {
        opt.zero_grad();
        m.train_step(x, ids, {.seed = 1, .epoch = 0, .step = step++, .total_steps = 100});
        opt.step();
    });
}

void bench_instance_cls_step(benchmark::State& st) {
    auto c = ssl::instance_cls_config(net_options, 28, 1, g_instances);
    c.loss.raw_feature_init = false;  // no data set of 1.28 M images here: random unit rows
    ssl::instance_cls<> m(c);
    ssl::optim::sgd<float> opt(m, sgd_cfg);
    const auto x = random_images(g_batch);
    std::vector<std::size_t> ids(g_batch);
    for (std::size_t i = 0; i < g_batch; ++i) ids[i] = (i * 5003) % g_instances;
    std::size_t step = 0;
    timed(st, "instance_cls_step", [&] {
        opt.zero_grad();
        m.train_step(x, ids, {.seed = 1, .epoch = 0, .step = step++, .total_steps = 100});
        opt.step();
    });
    st.counters["params_M"] = static_cast<double>(ssl::parameter_count(m)) / 1e6;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--instances=", 12) == 0)
            g_instances = std::strtoull(argv[i] + 12, nullptr, 10);
        else if (std::strncmp(argv[i], "--steps=", 8) == 0)
            g_steps = std::atoi(argv[i] + 8);
        else if (std::strncmp(argv[i], "--warmup=", 9) == 0)
            g_warmup = std::atoi(argv[i] + 9);
        else if (std::strncmp(argv[i], "--block=", 8) == 0)
            g_block = std::strtoull(argv[i] + 8, nullptr, 10);
        else if (std::strncmp(argv[i], "--only=", 7) == 0)
            g_only = argv[i] + 7;
        else
            rest.push_back(argv[i]);
    }
    int rargc = static_cast<int>(rest.size());
    const std::pair<const char*, void (*)(benchmark::State&)> parts[] = {
        {"instance_ce", bench_instance_ce},
        {"classifier_sgd", bench_classifier_sgd},
        {"simclr_step", bench_simclr_step},
        {"instance_cls_step", bench_instance_cls_step}};
    for (const auto& [name, fn] : parts) {
        if (!g_only.empty() && g_only != name) continue;
        benchmark::RegisterBenchmark(name, fn)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(g_steps);
    }
    benchmark::Initialize(&rargc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(rargc, rest.data())) return 1;
    std::printf("instances=%zu dim=%zu batch=%zu threads=%zu\n", g_instances, g_dim, g_batch, ssl::num_threads());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    std::map<std::string, double> med;
    for (auto& [part, ms] : g_ms) {
        if (ms.empty()) continue;
        med[part] = median(ms);
        std::printf("ICLS part=%s median_ms=%.1f min_ms=%.1f cpu_ms=%.1f steps=%zu\n", part.c_str(), med[part],
                    *std::min_element(ms.begin(), ms.end()), g_cpu_ms[part], ms.size());
    }
    if (med.contains("simclr_step") && med.contains("instance_cls_step"))
        std::printf("ICLS overhead_ms=%.1f (instance_cls_step - simclr_step; instance_cls runs 1 view, SimCLR 2)\n",
                    med["instance_cls_step"] - med["simclr_step"]);
    if (med.contains("instance_ce") && med.contains("classifier_sgd"))
        std::printf("ICLS classifier_ms=%.1f (instance_ce + classifier_sgd)\n",
                    med["instance_ce"] + med["classifier_sgd"]);
    return 0;
}
