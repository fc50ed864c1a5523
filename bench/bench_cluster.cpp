// Timing of ssl::cluster::kmeans and ssl::eval::knn_evaluate on synthetic
// features, written so that a peer (bench/peer/faiss_cluster.py) can run
// faiss on exactly the same data: the data is generated here from a fixed
// seed and written as raw little-endian files into --data DIR:
//   kmeans_x.f32     (n, d) float32     k-means input: a mixture of 2000 overlapping Gaussians
//   knn_train.f32    (nt, dim) float32  kNN train features: 100 classes, unit-norm centres + noise
//   knn_train_y.i64  (nt) int64
//   knn_query.f32    (nq, dim) float32
//   knn_query_y.i64  (nq) int64
//   knn_pred_ours.i64 (nq) int64        our predictions (the peer compares its own to them)
// and prints one line per measurement:
//   KMEANS n=.. d=.. k=.. iters=.. threads=.. seconds=.. cpu_seconds=.. objective=.. updates=.. reseeded=..
//   KNN nt=.. nq=.. dim=.. k=.. threads=.. seconds=.. cpu_seconds=.. top1=..
// (wall seconds of one call; cpu_seconds = process CPU time of the call, all threads).
//
//   bench_cluster [--data DIR] [--what all|kmeans|knn] [--threads 2] [--n 100000] [--d 128] [--k 1000]
//                 [--iters 20] [--nt 60000] [--nq 10000] [--dim 512] [--knn-k 200] [--reps 1]
// With --reps > 1 the call is repeated and the fastest wall time is reported.
#include <ssl/cluster/kmeans.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/core/thread_pool.hpp>
#include <ssl/eval/knn.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

template <class T>
void write_raw(const std::filesystem::path& p, const T* data, std::size_t count) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}

// Rows of the mixture: centre[i % classes] + noise, generated in parallel from per-row streams.
ssl::tensor<float> mixture(std::size_t n, std::size_t d, const std::vector<float>& centres, std::size_t classes,
                           double noise, std::uint64_t seed, std::vector<std::int64_t>* labels,
                           std::uint64_t (*cls)(std::uint64_t, std::size_t)) {
    ssl::tensor<float> x({n, d});
    if (labels) labels->resize(n);
    ssl::parallel_for(n, [&](std::size_t i, std::size_t) {
        ssl::philox g(seed, ssl::stream_id(i));
        const std::size_t c = cls(g.below(1u << 30), i) % classes;
        if (labels) (*labels)[i] = static_cast<std::int64_t>(c);
        for (std::size_t j = 0; j < d; ++j)
            x.data()[i * d + j] = static_cast<float>(centres[c * d + j] + noise * g.normal());
    });
    return x;
}

std::vector<float> centres_of(std::size_t classes, std::size_t d, double scale, bool unit, std::uint64_t seed) {
    std::vector<float> c(classes * d);
    ssl::philox g(seed, 7);
    for (std::size_t i = 0; i < classes; ++i) {
        double s = 0;
        std::vector<double> v(d);
        for (auto& e : v) e = g.normal(), s += e * e;
        const double f = unit ? scale / std::sqrt(s) : scale;
        for (std::size_t j = 0; j < d; ++j) c[i * d + j] = static_cast<float>(v[j] * f);
    }
    return c;
}

}  // namespace

int main(int argc, char** argv) {
    std::string data = "cluster_bench_data", what = "all";
    std::size_t threads = 2, n = 100000, d = 128, k = 1000, iters = 20, nt = 60000, nq = 10000, dim = 512,
                knn_k = 200, reps = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
            return argv[++i];
        };
        auto num = [&]() { return static_cast<std::size_t>(std::stoull(next())); };
        if (a == "--data") data = next();
        else if (a == "--what") what = next();
        else if (a == "--threads") threads = num();
        else if (a == "--n") n = num();
        else if (a == "--d") d = num();
        else if (a == "--k") k = num();
        else if (a == "--iters") iters = num();
        else if (a == "--nt") nt = num();
        else if (a == "--nq") nq = num();
        else if (a == "--dim") dim = num();
        else if (a == "--knn-k") knn_k = num();
        else if (a == "--reps") reps = num();
        else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    ssl::set_num_threads(threads);
    std::filesystem::create_directories(data);
    const std::filesystem::path dir(data);

    if (what == "all" || what == "kmeans") {
        const auto centres = centres_of(2000, d, 1.0, false, 11);
        auto x = mixture(n, d, centres, 2000, 1.0, 12, nullptr,
                         [](std::uint64_t r, std::size_t) { return r; });
        write_raw(dir / "kmeans_x.f32", x.data(), x.numel());
        double best = 1e300, cpu = 0;
        ssl::cluster::kmeans_result<float> r;
        for (std::size_t rep = 0; rep < reps; ++rep) {
            const double c0 = cpu_seconds();
            const auto t0 = std::chrono::steady_clock::now();
            r = ssl::cluster::kmeans(x, {.k = k, .iterations = iters, .seed = 1234});
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (s < best) best = s, cpu = cpu_seconds() - c0;
        }
        std::printf("KMEANS n=%zu d=%zu k=%zu iters=%zu threads=%zu seconds=%.3f cpu_seconds=%.3f objective=%.9g "
                    "updates=%zu reseeded=%zu passes=%zu\n",
                    n, d, k, iters, threads, best, cpu, r.objective, r.iterations, r.reseeded, r.objectives.size());
        std::fflush(stdout);
    }
    if (what == "all" || what == "knn") {
        const auto centres = centres_of(100, dim, 1.0, true, 21);
        std::vector<std::int64_t> ty, qy;
        auto by_index = [](std::uint64_t, std::size_t i) { return static_cast<std::uint64_t>(i); };
        // noise 0.2 per coordinate: |noise| ~ 4.5 against unit centres (same-class cosines ~0.05,
        // about one standard deviation of a random cosine in 512 dims): a hard task, top-1 well below 1
        auto train = mixture(nt, dim, centres, 100, 0.2, 22, &ty, by_index);
        auto query = mixture(nq, dim, centres, 100, 0.2, 23, &qy, by_index);
        write_raw(dir / "knn_train.f32", train.data(), train.numel());
        write_raw(dir / "knn_train_y.i64", ty.data(), ty.size());
        write_raw(dir / "knn_query.f32", query.data(), query.numel());
        write_raw(dir / "knn_query_y.i64", qy.data(), qy.size());
        double best = 1e300, cpu = 0;
        ssl::eval::knn_result r;
        for (std::size_t rep = 0; rep < reps; ++rep) {
            const double c0 = cpu_seconds();
            const auto t0 = std::chrono::steady_clock::now();
            r = ssl::eval::knn_evaluate(train, ty, query, qy, {.k = knn_k, .temperature = 0.1});
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (s < best) best = s, cpu = cpu_seconds() - c0;
        }
        write_raw(dir / "knn_pred_ours.i64", r.predictions.data(), r.predictions.size());
        std::printf("KNN nt=%zu nq=%zu dim=%zu k=%zu threads=%zu seconds=%.3f cpu_seconds=%.3f top1=%.6f\n", nt, nq,
                    dim, knn_k, threads, best, cpu, r.top1);
        std::fflush(stdout);
    }
    return 0;
}
