// Writes ssl's linear SVM (include/ssl/eval/linear_svm.hpp) on fixed
// features for tests/peer/sklearn_svm_check.py, which redoes it with
// scikit-learn's LinearSVC (liblinear's L2-loss dual solver):
//
//   svm_dump DIR  ->  DIR/{train_x,train_y,test_x,test_y,folds,decision}.txt, DIR/ours.txt
//
// The features: 10 overlapping Gaussian classes in 32 dimensions with an
// offset (not separable: the cost matters), raw (both sides L2-normalize the
// rows). ours.txt: "key value..." lines (costs, cv_top1, best_cost,
// test_top1 of the CV protocol; fixed_cost and fixed_test_top1 of one fit,
// whose decision values are decision.txt).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <ssl/core/rng.hpp>
#include <ssl/eval/linear_svm.hpp>

namespace {

using ssl::tensor;

void write_matrix(const std::string& path, const double* v, std::size_t rows, std::size_t cols) {
    std::ofstream f(path);
    char buf[64];
    for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < cols; ++j) {
            std::snprintf(buf, sizeof buf, "%.17g", v[i * cols + j]);
            f << (j ? " " : "") << buf;
        }
        f << '\n';
    }
    if (!f) throw std::runtime_error("cannot write " + path);
}

template <class T>
void write_tensor(const std::string& path, const tensor<T>& t) {
    std::vector<double> v(t.begin(), t.end());
    write_matrix(path, v.data(), t.dim(0), t.rank() > 1 ? t.dim(1) : 1);
}

void write_labels(const std::string& path, const std::vector<std::int64_t>& y) {
    std::vector<double> v(y.begin(), y.end());
    write_matrix(path, v.data(), y.size(), 1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: svm_dump DIR\n";
        return 2;
    }
    const std::string dir = argv[1];
    const std::size_t classes = 10, dim = 32, per_train = 60, per_test = 40;
    ssl::philox g(21, 1);
    std::vector<std::vector<double>> centre(classes, std::vector<double>(dim));
    for (auto& c : centre)
        for (auto& v : c) v = 0.35 * g.normal();
    auto make = [&](std::size_t per, tensor<float>& x, std::vector<std::int64_t>& y) {
        x = tensor<float>({classes * per, dim});
        for (std::size_t i = 0; i < classes * per; ++i) {
            const std::size_t c = (i * 7) % classes;
            y.push_back(static_cast<std::int64_t>(c));
            for (std::size_t j = 0; j < dim; ++j) x.at(i, j) = static_cast<float>(centre[c][j] + g.normal() + 0.3);
        }
    };
    tensor<float> xtr, xte;
    std::vector<std::int64_t> ytr, yte;
    make(per_train, xtr, ytr);
    make(per_test, xte, yte);

    ssl::eval::svm_cv_config cv;
    cv.costs = {1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0};
    cv.svm.tolerance = 1e-6;
    cv.svm.max_iterations = 100000;
    const auto r = ssl::eval::linear_svm_evaluate(xtr, ytr, xte, yte, cv);
    const auto folds = ssl::eval::stratified_folds(ytr, cv.folds, cv.fold_seed);  // the folds r used

    ssl::eval::svm_config fixed = cv.svm;
    fixed.cost = 0.1;
    const auto f = ssl::eval::linear_svm_fit(xtr, ytr, fixed);
    const auto dec = f.model.decision_function(xte);
    const double fixed_top1 = ssl::eval::top1_accuracy(f.model.predict(xte), yte);

    write_tensor(dir + "/train_x.txt", xtr);
    write_tensor(dir + "/test_x.txt", xte);
    write_labels(dir + "/train_y.txt", ytr);
    write_labels(dir + "/test_y.txt", yte);
    write_labels(dir + "/folds.txt", std::vector<std::int64_t>(folds.begin(), folds.end()));
    write_tensor(dir + "/decision.txt", dec);
    std::ofstream o(dir + "/ours.txt");
    o.precision(17);
    o << "costs";
    for (double c : r.cv.costs) o << ' ' << c;
    o << "\ncv_top1";
    for (double a : r.cv.top1) o << ' ' << a;
    o << "\nbest_cost " << r.cost << "\ntest_top1 " << r.test_top1 << "\nconverged " << (r.converged && f.converged)
      << "\nfixed_cost " << fixed.cost << "\nfixed_test_top1 " << fixed_top1 << "\ntolerance " << cv.svm.tolerance
      << '\n';
    if (!o) {
        std::cerr << "cannot write " << dir << "/ours.txt\n";
        return 1;
    }
    std::cout << "ssl: cv " << r.cv.costs.size() << " costs, best C " << r.cost << ", test top-1 " << r.test_top1
              << "; C " << fixed.cost << ": test top-1 " << fixed_top1 << '\n';
    return 0;
}
