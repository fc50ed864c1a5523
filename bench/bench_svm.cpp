// Timing of ssl::eval's linear SVM (linear_svm_fit at one cost, and the
// VOC07 protocol's 3-fold CV over the cost grid) on synthetic features,
// written so that bench/peer/sklearn_svm.py times scikit-learn's LinearSVC on
// exactly the same data (bench/run_svm_bench.sh runs both). Into --data DIR:
//   svm_train.f32 (n, d) float32   10 overlapping Gaussian classes, rectified (ReLU-like, not separable)
//   svm_train_y.i64 (n) int64
//   svm_folds.i64 (n) int64        the stratified folds the CV used
// One line per measurement (wall seconds of one call; cpu = process CPU time, all threads):
//   SVM_FIT n=.. d=.. classes=.. cost=.. threads=.. seconds=.. cpu_seconds=.. train_top1=.. converged=.. passes=..
//   SVM_CV  n=.. d=.. classes=.. costs=.. threads=.. seconds=.. cpu_seconds=.. best_cost=.. cv_top1=..
//
//   bench_svm [--data DIR] [--threads 2] [--n 10000] [--d 512] [--classes 10] [--cost 0.1] [--spread 0.08]
//             [--what all|fit|cv]
#include <ssl/core/rng.hpp>
#include <ssl/core/thread_pool.hpp>
#include <ssl/eval/linear_svm.hpp>

#include <sys/resource.h>

#include <chrono>
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
void write_raw(const std::filesystem::path& p, const T* v, std::size_t n) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v), static_cast<std::streamsize>(n * sizeof(T)));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace

int main(int argc, char** argv) {
    std::string data = "svm_bench_data", what = "all";
    std::size_t threads = 2, n = 10000, d = 512, classes = 10;
    double cost = 0.1, spread = 0.08;  // spread: the class centres' per-dimension std (0.08: ~99 % separable, 0.012: ~21 %)
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--data") data = v;
        else if (k == "--threads") threads = std::stoul(v);
        else if (k == "--n") n = std::stoul(v);
        else if (k == "--d") d = std::stoul(v);
        else if (k == "--classes") classes = std::stoul(v);
        else if (k == "--cost") cost = std::stod(v);
        else if (k == "--spread") spread = std::stod(v);
        else if (k == "--what") what = v;
        else {
            std::fprintf(stderr, "bench_svm: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    ssl::set_num_threads(threads);
    ssl::philox g(2019, 21);
    std::vector<std::vector<double>> centre(classes, std::vector<double>(d));
    for (auto& c : centre)
        for (auto& v : c) v = spread * g.normal();
    ssl::tensor<float> x({n, d});
    std::vector<std::int64_t> y(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = static_cast<std::size_t>(g.below(classes));
        y[i] = static_cast<std::int64_t>(c);
        for (std::size_t j = 0; j < d; ++j) x.at(i, j) = static_cast<float>(std::max(0.0, centre[c][j] + 0.3 * g.normal() + 0.1));
    }
    std::filesystem::create_directories(data);
    const ssl::eval::svm_cv_config cv{};
    const auto folds = ssl::eval::stratified_folds(y, cv.folds, cv.fold_seed);
    std::vector<std::int64_t> f64(folds.begin(), folds.end());
    write_raw(std::filesystem::path(data) / "svm_train.f32", x.data(), x.numel());
    write_raw(std::filesystem::path(data) / "svm_train_y.i64", y.data(), n);
    write_raw(std::filesystem::path(data) / "svm_folds.i64", f64.data(), n);
    using clock = std::chrono::steady_clock;
    if (what == "all" || what == "fit") {
        const double c0 = cpu_seconds();
        const auto t0 = clock::now();
        const auto r = ssl::eval::linear_svm_fit(x, y, {.cost = cost});
        const double s = std::chrono::duration<double>(clock::now() - t0).count(), cs = cpu_seconds() - c0;
        std::size_t passes = 0;
        for (const auto& p : r.per_class) passes = std::max(passes, p.iterations);
        std::printf("SVM_FIT n=%zu d=%zu classes=%zu cost=%g threads=%zu seconds=%.3f cpu_seconds=%.3f train_top1=%.4f "
                    "converged=%d passes=%zu\n",
                    n, d, classes, cost, threads, s, cs, r.train_top1, r.converged ? 1 : 0, passes);
    }
    if (what == "all" || what == "cv") {
        const double c0 = cpu_seconds();
        const auto t0 = clock::now();
        const auto r = ssl::eval::svm_cross_validate(x, y, cv);
        const double s = std::chrono::duration<double>(clock::now() - t0).count(), cs = cpu_seconds() - c0;
        std::string tops;
        for (double a : r.top1) {
            if (!tops.empty()) tops += ",";
            tops += std::to_string(a);
        }
        std::printf("SVM_CV n=%zu d=%zu classes=%zu costs=%zu threads=%zu seconds=%.3f cpu_seconds=%.3f best_cost=%g "
                    "cv_top1=%s\n",
                    n, d, classes, r.costs.size(), threads, s, cs, r.cost(), tops.c_str());
    }
    return 0;
}
