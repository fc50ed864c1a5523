#include <doctest/doctest.h>

#include <cmath>
#include <utility>

#include <ssl/nn/batch_norm.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_batch_norm {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::nn::batch_norm1d;
using ssl::nn::batch_norm2d;

TEST_CASE("batch_norm2d: train mode normalizes per channel and updates running stats as PyTorch") {
    batch_norm2d<double> bn({3});
    auto x = ref::random<double>({4, 3, 2, 5}, 1, 0.0, 4.0);
    auto y = bn.forward(x).out;
    for (std::size_t c = 0; c < 3; ++c) {
        double s = 0, s2 = 0, xs = 0, xs2 = 0;
        for (std::size_t n = 0; n < 4; ++n)
            for (std::size_t i = 0; i < 10; ++i) {
                const double v = y[(n * 3 + c) * 10 + i], u = x[(n * 3 + c) * 10 + i];
                s += v, s2 += v * v, xs += u, xs2 += u * u;
            }
        CHECK(s / 40 == doctest::Approx(0).epsilon(1e-12).scale(1));
        CHECK(s2 / 40 == doctest::Approx(1.0).epsilon(1e-4));  // eps = 1e-5 in the denominator
        const double mean = xs / 40, var_b = xs2 / 40 - mean * mean, var_u = var_b * 40 / 39;
        CHECK(bn.running_mean()[c] == doctest::Approx(0.1 * mean));
        CHECK(bn.running_var()[c] == doctest::Approx(0.9 + 0.1 * var_u));
    }
    CHECK(bn.num_batches_tracked() == 1);
}

TEST_CASE("batch_norm: eval mode uses running statistics, affine parameters apply") {
    batch_norm1d<double> bn({2});
    bn.running_mean()[0] = 1.0;
    bn.running_mean()[1] = -2.0;
    bn.running_var()[0] = 4.0;
    bn.running_var()[1] = 0.25;
    bn.weight().value[0] = 3.0;
    bn.bias().value[1] = 0.5;
    bn.train(false);
    auto x = tensor<double>::from({2, 2}, {3.0, -1.0, 1.0, -2.0});
    auto y = bn.forward(x).out;
    CHECK(y.at(0, 0) == doctest::Approx(3.0 * (3.0 - 1.0) / std::sqrt(4.0 + 1e-5)));
    CHECK(y.at(0, 1) == doctest::Approx((-1.0 + 2.0) / std::sqrt(0.25 + 1e-5) + 0.5));
    CHECK(y.at(1, 0) == doctest::Approx(0.0));
    CHECK(y.at(1, 1) == doctest::Approx(0.5));
    CHECK(bn.num_batches_tracked() == 0);
    CHECK(bn.running_mean()[0] == 1.0);  // eval does not update
}

TEST_CASE("batch_norm: bad input") {
    batch_norm2d<float> bn({3});
    CHECK_THROWS_AS(bn.forward(tensor<float>({2, 4, 3, 3})), ssl::shape_error);
    CHECK_THROWS_AS(bn.forward(tensor<float>({2, 3})), ssl::shape_error);
    CHECK_THROWS_AS(bn.forward(tensor<float>::zeros({1, 3, 1, 1})), ssl::shape_error);  // one value per channel
    CHECK_THROWS_AS(batch_norm2d<float>({0}), ssl::value_error);
    CHECK_THROWS_AS(batch_norm2d<float>({3, 1.5}), ssl::value_error);
    batch_norm1d<float> b1({3});
    CHECK_THROWS_AS(b1.forward(tensor<float>({2, 3, 1, 1})), ssl::shape_error);
}

TEST_CASE("batch_norm: torchvision buffer names") {
    batch_norm2d<float> bn({3});
    std::vector<std::string> names;
    bn.for_each_buffer([&](const std::string& n, auto&) { names.push_back(n); }, "bn1");
    bn.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); }, "bn1");
    CHECK(names == std::vector<std::string>{"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                                            "bn1.weight", "bn1.bias"});
}

TEST_CASE("batch_norm2d: float statistics stay exact far from zero (mean 1000, std 1)") {
    // the one-pass statistics (per-plane sums combined in double) against a
    // two-pass double reference, on data whose mean dwarfs its spread
    batch_norm2d<float> bn({2, 1.0});  // momentum 1: running stats = this batch's
    auto x = ref::random<float>({8, 2, 9, 7}, 3, 1000.0 - 1.7, 1000.0 + 1.7);
    bn.forward(x);
    const std::size_t S = 63, M = 8 * S;
    for (std::size_t c = 0; c < 2; ++c) {
        double m = 0, v = 0;
        for (std::size_t n = 0; n < 8; ++n)
            for (std::size_t i = 0; i < S; ++i) m += x[(n * 2 + c) * S + i];
        m /= M;
        for (std::size_t n = 0; n < 8; ++n)
            for (std::size_t i = 0; i < S; ++i) v += (x[(n * 2 + c) * S + i] - m) * (x[(n * 2 + c) * S + i] - m);
        const double var_u = v / (M - 1);
        CHECK(bn.running_mean()[c] == doctest::Approx(m).epsilon(1e-7));
        CHECK(bn.running_var()[c] == doctest::Approx(var_u).epsilon(1e-5));
    }
}

TEST_CASE("batch_norm1d: float statistics stay exact far from zero (sums shifted by the first row)") {
    batch_norm1d<float> bn({3, 1.0});
    auto x = ref::random<float>({64, 3}, 4, 1000.0 - 1.7, 1000.0 + 1.7);
    bn.forward(x);
    for (std::size_t c = 0; c < 3; ++c) {
        double m = 0, v = 0;
        for (std::size_t n = 0; n < 64; ++n) m += x[n * 3 + c];
        m /= 64;
        for (std::size_t n = 0; n < 64; ++n) v += (x[n * 3 + c] - m) * (x[n * 3 + c] - m);
        CHECK(bn.running_mean()[c] == doctest::Approx(m).epsilon(1e-7));
        CHECK(bn.running_var()[c] == doctest::Approx(v / 63).epsilon(1e-5));
    }
}

TEST_CASE("batch_norm1d: an outlying first row does not cost the float statistics their precision") {
    batch_norm1d<float> bn({2, 1.0});
    auto x = ref::random<float>({4096, 2}, 6, -1.0, 1.0);
    x[0] = 300.0f;
    x[1] = -300.0f;
    bn.forward(x);
    for (std::size_t c = 0; c < 2; ++c) {
        double m = 0, v = 0;
        for (std::size_t n = 0; n < 4096; ++n) m += x[n * 2 + c];
        m /= 4096;
        for (std::size_t n = 0; n < 4096; ++n) v += (x[n * 2 + c] - m) * (x[n * 2 + c] - m);
        CHECK(bn.running_mean()[c] == doctest::Approx(m).epsilon(1e-6));
        CHECK(bn.running_var()[c] == doctest::Approx(v / 4095).epsilon(1e-6));
    }
}

TEST_CASE("batch_norm: backward_relu with the masked gradient out") {
    batch_norm2d<double> bn({3});
    bn.weight().value.assign(ref::random<double>({3}, 5, 0.5, 2.0));
    auto x = ref::random<double>({4, 3, 3, 2}, 1);
    auto r = bn.forward_relu(x);
    auto dy = ref::random<double>(x.shape(), 2);
    ssl::zero_grad(bn);
    auto dx = bn.backward_relu(r.cache, r.out, dy);
    auto gw = bn.weight().grad.clone();
    tensor<double> masked;
    ssl::zero_grad(bn);
    auto dx2 = bn.backward_relu(r.cache, r.out, dy, masked);
    CHECK(ref::max_abs_diff(dx, dx2) < 1e-14);  // same formula; the compiler may contract it differently
    CHECK(ref::max_abs_diff(bn.weight().grad, gw) == 0.0);
    REQUIRE(masked.shape() == dy.shape());
    std::size_t zeros = 0;
    for (std::size_t i = 0; i < dy.numel(); ++i) {
        CHECK(masked[i] == (r.out[i] > 0 ? dy[i] : 0.0));
        zeros += r.out[i] > 0 ? 0 : 1;
    }
    CHECK(zeros > 0);  // the mask does something
    CHECK(zeros < dy.numel());
}

/// The batch-norm backward by its formula, in double: dgamma, dbeta and dx
/// for the gradient g (already masked) at the output.
struct bn_reference {
    tensor<double> dx, dgamma, dbeta;
};
template <class T>
bn_reference bn_backward_reference(const tensor<T>& x, const tensor<T>& g, const tensor<T>& gamma, double eps) {
    const std::size_t n = x.dim(0), C = x.dim(1), S = x.rank() == 4 ? x.dim(2) * x.dim(3) : 1;
    const double M = double(n * S);
    bn_reference r{tensor<double>(x.shape()), tensor<double>({C}), tensor<double>({C})};
    for (std::size_t c = 0; c < C; ++c) {
        double mean = 0, var = 0, sg = 0, sgx = 0;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < S; ++i) mean += double(x[(b * C + c) * S + i]);
        mean /= M;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < S; ++i) var += std::pow(double(x[(b * C + c) * S + i]) - mean, 2);
        const double invstd = 1.0 / std::sqrt(var / M + eps);
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < S; ++i) {
                const std::size_t k = (b * C + c) * S + i;
                sg += double(g[k]);
                sgx += double(g[k]) * (double(x[k]) - mean) * invstd;
            }
        r.dgamma[c] = sgx;
        r.dbeta[c] = sg;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t i = 0; i < S; ++i) {
                const std::size_t k = (b * C + c) * S + i;
                const double xhat = (double(x[k]) - mean) * invstd;
                r.dx[k] = double(gamma[c]) * invstd / M * (M * double(g[k]) - sg - xhat * sgx);
            }
    }
    return r;
}

/// backward and backward_relu (with the masked gradient out) of bn at x
/// against the formula: dx, dgamma, dbeta.
template <class BN, class T>
void backward_matches_formula(BN& bn, const tensor<T>& x, const tensor<T>& dy, double tol) {
    // plain backward
    auto r = bn.forward(x);
    ssl::zero_grad(bn);
    auto dx = bn.backward(r.cache, dy);
    auto expect = bn_backward_reference(x, dy, bn.weight().value, 1e-5);
    CHECK(ref::max_abs_diff(dx, expect.dx) < tol);
    CHECK(ref::max_abs_diff(bn.weight().grad, expect.dgamma) < tol * 100);
    CHECK(ref::max_abs_diff(bn.bias().grad, expect.dbeta) < tol * 100);
    // through the relu: the gradient passes where the output is positive
    auto rr = bn.forward_relu(x);
    tensor<T> masked;
    ssl::zero_grad(bn);
    auto dxr = bn.backward_relu(rr.cache, rr.out, dy, masked);
    tensor<T> g(dy.shape());
    for (std::size_t i = 0; i < g.numel(); ++i) g[i] = rr.out[i] > T(0) ? dy[i] : T(0);
    CHECK(ref::max_abs_diff(masked, g) == 0.0);
    expect = bn_backward_reference(x, g, bn.weight().value, 1e-5);
    CHECK(ref::max_abs_diff(dxr, expect.dx) < tol);
    CHECK(ref::max_abs_diff(bn.weight().grad, expect.dgamma) < tol * 100);
    CHECK(ref::max_abs_diff(bn.bias().grad, expect.dbeta) < tol * 100);
}

template <class T>
void backward_on_vector_planes(double tol) {
    // planes of several vectors plus a tail (7x7, 5x7 in double), of whole
    // vectors (8x8), and shorter than one vector (2x3); more images than the
    // image-major backward's tasks
    for (auto [h, w] : {std::pair<std::size_t, std::size_t>{7, 7}, {5, 7}, {8, 8}, {2, 3}}) {
        CAPTURE(h);
        CAPTURE(w);
        batch_norm2d<T> bn({5});
        bn.weight().value.assign(ref::random<T>({5}, 5, 0.5, 2.0));
        bn.bias().value.assign(ref::random<T>({5}, 6));
        const auto x = ref::random<T>({11, 5, h, w}, 7, -2.0, 3.0);
        const auto dy = ref::random<T>(x.shape(), 8);
        backward_matches_formula(bn, x, dy, tol);
    }
}

TEST_CASE("batch_norm2d backward on planes of whole vectors and tails matches the formula (float, double)") {
    backward_on_vector_planes<double>(1e-12);
    backward_on_vector_planes<float>(2e-5);
}

template <class T>
void rows_match_formula(double tol) {
    // (N, C): channels in blocks of whole vectors and a tail, fewer channels
    // than one vector, and more rows than the 64 summed in T at a time
    constexpr std::size_t L = 64 / sizeof(T);
    for (std::size_t C : {L + 5, std::size_t{3}, 2 * L}) {
        for (std::size_t n : {std::size_t{150}, std::size_t{7}, std::size_t{2}}) {
            // two rows: the outputs are +-1 whatever x, dx cancels to ~0;
            // float's rounding dominates, so that case only in double
            if (n == 2 && sizeof(T) == 4) continue;
            CAPTURE(C);
            CAPTURE(n);
            batch_norm1d<T> bn({C});
            bn.weight().value.assign(ref::random<T>({C}, 5, 0.5, 2.0));
            bn.bias().value.assign(ref::random<T>({C}, 6));
            const auto x = ref::random<T>({n, C}, 7, -2.0, 3.0);
            const auto dy = ref::random<T>(x.shape(), 8);
            const auto shortcut = ref::random<T>(x.shape(), 9);
            // forward: (x - mean) / sqrt(var + eps) * gamma + beta, then + shortcut, relu
            auto r = bn.forward(x);
            auto ra = bn.forward_add_relu(x, shortcut);
            for (std::size_t c = 0; c < C; ++c) {
                double m = 0, v = 0;
                for (std::size_t b = 0; b < n; ++b) m += double(x[b * C + c]);
                m /= double(n);
                for (std::size_t b = 0; b < n; ++b) v += std::pow(double(x[b * C + c]) - m, 2);
                v /= double(n);
                for (std::size_t b = 0; b < n; ++b) {
                    const double y = (double(x[b * C + c]) - m) / std::sqrt(v + 1e-5) * double(bn.weight().value[c]) +
                                     double(bn.bias().value[c]);
                    CHECK(std::abs(double(r.out[b * C + c]) - y) < tol);
                    CHECK(std::abs(double(ra.out[b * C + c]) - std::max(0.0, y + double(shortcut[b * C + c]))) < tol);
                }
            }
            backward_matches_formula(bn, x, dy, tol);
        }
    }
}

TEST_CASE("batch_norm1d forward and backward over channel blocks and tails match the formula (float, double)") {
    rows_match_formula<double>(1e-12);
    rows_match_formula<float>(2e-5);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("batch_norm2d and 1d gradcheck, train and eval, affine and not") {
        for (bool affine : {true, false}) {
            batch_norm2d<double> bn2({3, 0.1, 1e-5, affine});
            batch_norm1d<double> bn1({4, 0.1, 1e-5, affine});
            if (affine) {  // non-trivial gamma / beta
                bn2.weight().value.assign(ref::random<double>({3}, 5, 0.5, 2.0));
                bn2.bias().value.assign(ref::random<double>({3}, 6));
                bn1.weight().value.assign(ref::random<double>({4}, 7, 0.5, 2.0));
            }
            for (bool train : {true, false}) {
                CAPTURE(affine);
                CAPTURE(train);
                bn2.train(train);
                bn1.train(train);
                auto r2 = ssl::testing::gradcheck(bn2, ref::random<double>({3, 3, 2, 3}, 8));
                CHECK_MESSAGE(r2.ok, r2.str());
                // planes longer than a vector (25 = 3 x 8 + 1 in double)
                auto r3 = ssl::testing::gradcheck(bn2, ref::random<double>({2, 3, 5, 5}, 10));
                CHECK_MESSAGE(r3.ok, r3.str());
                auto r1 = ssl::testing::gradcheck(bn1, ref::random<double>({5, 4}, 9));
                CHECK_MESSAGE(r1.ok, r1.str());
            }
        }
    }
}

}  // namespace test_batch_norm
