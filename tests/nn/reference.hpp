#pragma once
// Naive reference implementations for the layer tests (obviously correct
// loops, no GEMM), and small helpers.
#include <ssl/core/rng.hpp>
#include <ssl/core/tensor.hpp>

#include <cmath>

namespace ref {

template <class T>
ssl::tensor<T> random(ssl::shape_t s, std::uint64_t seed, double lo = -1, double hi = 1) {
    ssl::tensor<T> t(s);
    ssl::philox g(seed, 3);
    for (auto& v : t) v = static_cast<T>(g.uniform(lo, hi));
    return t;
}

template <class T>
ssl::tensor<T> conv2d(const ssl::tensor<T>& x, const ssl::tensor<T>& w, const ssl::tensor<T>* b, std::size_t stride,
                      std::size_t pad) {
    const std::size_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
    const std::size_t co = w.dim(0), k = w.dim(2);
    const std::size_t ho = (h + 2 * pad - k) / stride + 1, wo = (wd + 2 * pad - k) / stride + 1;
    ssl::tensor<T> y({n, co, ho, wo});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t o = 0; o < co; ++o)
            for (std::size_t p = 0; p < ho; ++p)
                for (std::size_t q = 0; q < wo; ++q) {
                    double s = b ? (*b)[o] : 0.0;
                    for (std::size_t ci = 0; ci < c; ++ci)
                        for (std::size_t a = 0; a < k; ++a)
                            for (std::size_t bb = 0; bb < k; ++bb) {
                                const long ih = long(p * stride + a) - long(pad), iw = long(q * stride + bb) - long(pad);
                                if (ih < 0 || iw < 0 || ih >= long(h) || iw >= long(wd)) continue;
                                s += double(x.at(i, ci, ih, iw)) * double(w.at(o, ci, a, bb));
                            }
                    y.at(i, o, p, q) = static_cast<T>(s);
                }
    return y;
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

}  // namespace ref
