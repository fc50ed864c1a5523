#include <doctest/doctest.h>

#include <ssl/backend/host/im2col.hpp>

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace test_im2col {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::backend::host::conv_geometry;

conv_geometry geometry(std::size_t c, std::size_t h, std::size_t w, std::size_t k, std::size_t stride,
                       std::size_t pad) {
    return {c, h, w, k, k, stride, pad, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1};
}

/// The definition, one element at a time: col[(c, ki, kj)][(g, oh, ow)] =
/// x[g][c][oh * s + ki - pad][ow * s + kj - pad], 0 outside the image.
std::vector<double> naive_im2col(const std::vector<double>& x, std::size_t gc, const conv_geometry& q) {
    const std::size_t ncols = gc * q.hw_out();
    std::vector<double> col(q.rows() * ncols, 0.0);
    for (std::size_t c = 0; c < q.c; ++c)
        for (std::size_t ki = 0; ki < q.kh; ++ki)
            for (std::size_t kj = 0; kj < q.kw; ++kj)
                for (std::size_t g = 0; g < gc; ++g)
                    for (std::size_t oh = 0; oh < q.ho; ++oh)
                        for (std::size_t ow = 0; ow < q.wo; ++ow) {
                            const auto ih = std::int64_t(oh * q.stride + ki) - std::int64_t(q.pad);
                            const auto iw = std::int64_t(ow * q.stride + kj) - std::int64_t(q.pad);
                            if (ih < 0 || iw < 0 || ih >= std::int64_t(q.h) || iw >= std::int64_t(q.w)) continue;
                            col[((c * q.kh + ki) * q.kw + kj) * ncols + (g * q.ho + oh) * q.wo + ow] =
                                x[((g * q.c + c) * q.h + std::size_t(ih)) * q.w + std::size_t(iw)];
                        }
    return col;
}

TEST_CASE("im2col and col2im_add match the definition over strides, paddings and kernel sizes") {
    // strides 1, 2 (the specialised loops) and 3 (the generic one); paddings
    // up to larger than the kernel reach (whole rows and columns of zeros);
    // images narrower than the kernel
    for (std::size_t stride : {1, 2, 3})
        for (std::size_t k : {1, 2, 3, 5})
            for (std::size_t pad : {0, 1, 2, 4})
                for (auto [h, w] : {std::pair<std::size_t, std::size_t>{7, 9}, {1, 1}, {4, 2}, {28, 28}}) {
                    if (h + 2 * pad < k || w + 2 * pad < k) continue;
                    CAPTURE(stride);
                    CAPTURE(k);
                    CAPTURE(pad);
                    CAPTURE(h);
                    CAPTURE(w);
                    const std::size_t gc = 2;
                    const auto q = geometry(3, h, w, k, stride, pad);
                    std::vector<double> x(gc * q.c * q.hw_in());
                    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 1.0 + double(i % 97) * 0.25;
                    const auto expect = naive_im2col(x, gc, q);
                    std::vector<double> col(expect.size(), -1.0);  // every entry must be written
                    ssl::backend::host::im2col(x.data(), gc, q, col.data());
                    CHECK(col == expect);
                    // col2im_add is the adjoint: <im2col(x), c> = <x, col2im(c)>; and
                    // it adds (starting from 1 everywhere)
                    std::vector<double> c(col.size());
                    for (std::size_t i = 0; i < c.size(); ++i) c[i] = double(int(i % 13) - 6) * 0.5;
                    std::vector<double> dx(x.size(), 1.0);
                    ssl::backend::host::col2im_add(c.data(), gc, q, dx.data());
                    double lhs = 0, rhs = 0;
                    for (std::size_t i = 0; i < c.size(); ++i) lhs += expect[i] * c[i];
                    for (std::size_t i = 0; i < x.size(); ++i) rhs += x[i] * (dx[i] - 1.0);
                    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
                    // and elementwise: dx - 1 = naive scatter of c
                    std::vector<double> naive(x.size(), 0.0);
                    const std::size_t ncols = gc * q.hw_out();
                    for (std::size_t r = 0; r < q.rows(); ++r) {
                        const std::size_t ch = r / (k * k), ki = r / k % k, kj = r % k;
                        for (std::size_t g = 0; g < gc; ++g)
                            for (std::size_t oh = 0; oh < q.ho; ++oh)
                                for (std::size_t ow = 0; ow < q.wo; ++ow) {
                                    const auto ih = std::int64_t(oh * stride + ki) - std::int64_t(pad);
                                    const auto iw = std::int64_t(ow * stride + kj) - std::int64_t(pad);
                                    if (ih < 0 || iw < 0 || ih >= std::int64_t(h) || iw >= std::int64_t(w)) continue;
                                    naive[((g * q.c + ch) * h + std::size_t(ih)) * w + std::size_t(iw)] +=
                                        c[r * ncols + (g * q.ho + oh) * q.wo + ow];
                                }
                    }
                    double err = 0;
                    for (std::size_t i = 0; i < x.size(); ++i) err = std::max(err, std::abs(dx[i] - 1.0 - naive[i]));
                    CHECK(err < 1e-12);
                }
}

}  // namespace test_im2col
