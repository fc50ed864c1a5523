#include <doctest/doctest.h>

#include <ssl/nn/conv2d.hpp>
#include <ssl/testing/gradcheck.hpp>

#include "reference.hpp"

namespace test_conv2d {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::tensor;
using ssl::nn::conv2d;
using ssl::nn::conv2d_config;

namespace {
struct conv_case {
    std::size_t n, c, h, w, co, k, stride, pad;
    bool bias;
};
const conv_case cases[] = {
    {2, 3, 7, 7, 4, 3, 1, 1, true},  {3, 2, 8, 6, 5, 3, 2, 1, false}, {2, 4, 5, 5, 3, 1, 1, 0, true},
    {2, 4, 6, 6, 6, 1, 2, 0, false}, {1, 1, 9, 9, 2, 7, 2, 3, false}, {5, 2, 4, 4, 3, 3, 1, 0, true},
    {40, 2, 3, 3, 3, 3, 1, 1, true},  // many images per GEMM group
    {9, 8, 9, 7, 5, 3, 1, 1, true},   // >= 8 input channels, 3x3/1/1, >= 8 images: the Winograd path
    {8, 12, 4, 4, 9, 3, 1, 1, false}, // Winograd with a tile that overhangs the image
};
}  // namespace

/// Restores conv2d's tuning knobs (and the Winograd switch) at scope exit,
/// also when a REQUIRE throws.
template <class T>
struct knob_guard {
    int mode = conv2d<T>::winograd_mode;
    std::size_t tiles = conv2d<T>::winograd_target_tiles, small = conv2d<T>::small_gemm_max_channels;
    std::size_t direct_max = conv2d<T>::direct_max_channels, direct_rows = conv2d<T>::min_direct_rows;
    bool enabled = ssl::backend::host::winograd::enabled, direct = ssl::backend::host::direct::enabled;
    std::size_t tile = ssl::backend::host::winograd::output_tile;
    ~knob_guard() {
        conv2d<T>::winograd_mode = mode;
        conv2d<T>::winograd_target_tiles = tiles;
        conv2d<T>::small_gemm_max_channels = small;
        conv2d<T>::direct_max_channels = direct_max;
        conv2d<T>::min_direct_rows = direct_rows;
        ssl::backend::host::winograd::enabled = enabled;
        ssl::backend::host::winograd::output_tile = tile;
        ssl::backend::host::direct::enabled = direct;
    }
};

/// Largest |a - b| relative to the largest |b|.
template <class T>
double rel_diff(const tensor<T>& a, const tensor<T>& b) {
    REQUIRE(a.shape() == b.shape());
    double d = 0, s = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) {
        d = std::max(d, std::abs(double(a[i]) - double(b[i])));
        s = std::max(s, std::abs(double(b[i])));
    }
    return s > 0 ? d / s : d;
}

TEST_CASE("conv2d: forward matches the naive reference") {
    knob_guard<float> guard;
    for (std::size_t small : {std::size_t{64}, std::size_t{0}})  // Winograd's products: small_gemm or Eigen
    for (const auto& k : cases) {
        conv2d<float>::small_gemm_max_channels = small;
        CAPTURE(small);
        CAPTURE(k.k);
        CAPTURE(k.stride);
        CAPTURE(k.pad);
        conv2d<float> layer(conv2d_config{k.c, k.co, k.k, k.stride, k.pad, k.bias}, 3);
        auto x = ref::random<float>({k.n, k.c, k.h, k.w}, 11);
        auto y = layer.forward(x).out;
        auto expect = ref::conv2d(x, layer.weight().value, k.bias ? &layer.bias().value : nullptr, k.stride, k.pad);
        REQUIRE(y.shape() == expect.shape());
        CHECK(ref::max_abs_diff(y, expect) < 1e-5);
    }
}

TEST_CASE("conv2d: PyTorch default initialization bounds") {
    conv2d<float> layer(conv2d_config{8, 16, 3, 1, 1, true}, 0);
    const double bound = 1.0 / std::sqrt(8.0 * 9.0);
    double mx = 0;
    for (float v : layer.weight().value) mx = std::max(mx, double(std::abs(v)));
    CHECK(mx <= bound);
    CHECK(mx > 0.9 * bound);  // 1152 draws fill the interval
    conv2d<float> same(conv2d_config{8, 16, 3, 1, 1, true}, 0), other(conv2d_config{8, 16, 3, 1, 1, true}, 1);
    CHECK(ref::max_abs_diff(same.weight().value, layer.weight().value) == 0.0);
    CHECK(ref::max_abs_diff(other.weight().value, layer.weight().value) > 0.0);
}

TEST_CASE("conv2d: bad input names the shapes") {
    conv2d<float> layer(conv2d_config{3, 4, 3, 1, 0, true});
    try {
        layer.forward(tensor<float>({2, 5, 8, 8}));
        FAIL("wrong channel count must throw");
    } catch (const ssl::shape_error& e) {
        const std::string m = e.what();
        CHECK(m.find("5 channels") != std::string::npos);
        CHECK(m.find("(2, 5, 8, 8)") != std::string::npos);
    }
    CHECK_THROWS_AS(layer.forward(tensor<float>({2, 3, 8})), ssl::shape_error);
    CHECK_THROWS_AS(layer.forward(tensor<float>({2, 3, 2, 2})), ssl::shape_error);
    auto r = layer.forward(tensor<float>::zeros({2, 3, 8, 8}));
    CHECK_THROWS_AS(layer.backward(r.cache, tensor<float>({2, 4, 5, 5})), ssl::shape_error);
    CHECK_THROWS_AS(conv2d<float>(conv2d_config{0, 4, 3, 1, 0, true}), ssl::value_error);
    CHECK_THROWS_AS(conv2d<float>(conv2d_config{3, 4, 3, 0, 0, true}), ssl::value_error);
}

TEST_CASE("conv2d: two forwards keep separate caches; gradients accumulate") {
    conv2d<double> layer(conv2d_config{2, 3, 3, 1, 1, true}, 5);
    auto x1 = ref::random<double>({2, 2, 5, 5}, 1), x2 = ref::random<double>({3, 2, 8, 8}, 2);
    auto a = layer.forward(x1);
    auto b = layer.forward(x2);  // different size: must not clobber a's cache
    auto dy1 = ref::random<double>(a.out.shape(), 3), dy2 = ref::random<double>(b.out.shape(), 4);
    ssl::zero_grad(layer);
    layer.backward(a.cache, dy1);
    auto g1 = layer.weight().grad.clone();
    layer.backward(b.cache, dy2);
    auto g12 = layer.weight().grad.clone();
    ssl::zero_grad(layer);
    layer.backward(b.cache, dy2);
    for (std::size_t i = 0; i < g1.numel(); ++i) CHECK(g12[i] == doctest::Approx(g1[i] + layer.weight().grad[i]));
    // skipping the input gradient returns an empty tensor but still fills dW
    ssl::zero_grad(layer);
    auto dx = layer.backward(a.cache, dy1, false);
    CHECK_FALSE(dx.defined());
    CHECK(ref::max_abs_diff(layer.weight().grad, g1) < 1e-12);
}

/// Everything a layer computes on one path: the forward output, dx, the
/// weight and bias gradients, and backward_add into a copy of acc0.
template <class T>
struct path_outputs {
    tensor<T> y, dx, dw, db, added;
};
template <class T>
path_outputs<T> run_path(conv2d<T>& layer, const tensor<T>& x, const tensor<T>& dy, const tensor<T>& acc0) {
    path_outputs<T> o;
    const auto r = layer.forward(x);
    o.y = r.out;
    ssl::zero_grad(layer);
    o.dx = layer.backward(r.cache, dy);
    o.dw = layer.weight().grad.clone();
    o.db = layer.bias().grad.clone();
    o.added = acc0.clone();
    ssl::zero_grad(layer);
    layer.backward_add(r.cache, dy, o.added);
    CHECK(rel_diff(layer.weight().grad, o.dw) < 1e-12);  // backward_add: the same weight gradient
    return o;
}
/// A path's outputs against the reference path's, to a relative tolerance.
template <class T>
void check_same(const path_outputs<T>& got, const path_outputs<T>& ref, const tensor<T>& acc0, double tol) {
    CHECK(rel_diff(got.y, ref.y) < tol);
    CHECK(rel_diff(got.dx, ref.dx) < tol);
    CHECK(rel_diff(got.dw, ref.dw) < tol);
    CHECK(rel_diff(got.db, ref.db) < tol);
    tensor<T> expect(acc0.shape());
    for (std::size_t i = 0; i < expect.numel(); ++i) expect[i] = acc0[i] + ref.dx[i];
    CHECK(rel_diff(got.added, expect) < tol);
}

template <class T>
void winograd_vs_im2col(std::size_t tile, double tol) {
    knob_guard<T> guard;
    CAPTURE(tile);
    ssl::backend::host::winograd::output_tile = tile;
    constexpr std::size_t L = ssl::backend::host::winograd::block_images<T>;
    struct shape {
        std::size_t n, c, h, w, co;
    };
    // half a block, partial blocks, several blocks with a partial last one;
    // 1x1 and 2x2 images (one tile, mostly padding), odd sizes (tiles that
    // overhang), 20x20 (5x5 tiles of 4, 10x10 of 2)
    const shape shapes[] = {{L / 2, 8, 1, 1, 4},        {L - 1, 9, 2, 2, 5}, {L + 1, 8, 13, 9, 6},
                            {2 * L + 3, 10, 20, 20, 8}, {L, 16, 7, 7, 16},   {L, 8, 3, 5, 8}};
    for (const auto& sh : shapes) {
        conv2d<T> layer(conv2d_config{sh.c, sh.co, 3, 1, 1, true}, 6);
        const auto x = ref::random<T>({sh.n, sh.c, sh.h, sh.w}, 41);
        ssl::backend::host::winograd::enabled = false;
        const auto dy = ref::random<T>(layer.forward(x).out.shape(), 42);
        const auto acc0 = ref::random<T>(x.shape(), 43);
        const auto expect = run_path(layer, x, dy, acc0);
        ssl::backend::host::winograd::enabled = true;
        for (int mode : {1, 2})                                           // per chunk, whole batch
            for (std::size_t tiles : {std::size_t{256}, std::size_t{1}})  // 1: one tile row per chunk
                for (std::size_t small : {std::size_t{64}, std::size_t{0}}) {
                    CAPTURE(sh.n);
                    CAPTURE(sh.h);
                    CAPTURE(sh.w);
                    CAPTURE(mode);
                    CAPTURE(tiles);
                    CAPTURE(small);
                    conv2d<T>::winograd_mode = mode;
                    conv2d<T>::winograd_target_tiles = tiles;
                    conv2d<T>::small_gemm_max_channels = small;
                    check_same(run_path(layer, x, dy, acc0), expect, acc0, tol);
                }
    }
}

TEST_CASE("conv2d: Winograd F(2x2) and F(4x4) match im2col over blocks, chunks, modes and both GEMMs (float, double)") {
    for (std::size_t tile : {std::size_t{2}, std::size_t{4}}) {
        winograd_vs_im2col<double>(tile, 1e-10);
        winograd_vs_im2col<float>(tile, 1e-4);
    }
}

// The reason F(2x2) is the default (issue 24): inside a constant region
// every output of im2col, the direct path and F(2x2) is exactly the same
// value (F(2x2)'s transforms are sums and differences of equal numbers);
// F(4x4)'s rounding leaves a pattern that repeats with its 4x4 tiles.
TEST_CASE("conv2d: Winograd F(2x2) keeps a constant region exactly constant, F(4x4) does not") {
    knob_guard<float> guard;
    const std::size_t n = 16, c = 16, h = 14, w = 14;
    tensor<float> x({n, c, h, w});
    const auto values = ref::random<float>({n * c}, 61);
    for (std::size_t p = 0; p < n * c; ++p)
        for (std::size_t i = 0; i < h * w; ++i) x[p * h * w + i] = 3.0f + values[p];  // away from zero
    conv2d<float> layer(conv2d_config{c, 16, 3, 1, 1, true}, 62);
    auto interior_spread = [&](std::size_t tile) {
        ssl::backend::host::winograd::select(tile);
        const auto y = layer.forward(x).out;
        double worst = 0;
        for (std::size_t p = 0; p < n * 16; ++p) {
            const float* q = y.data() + p * h * w;
            const float v = q[w + 1];
            for (std::size_t i = 1; i + 1 < h; ++i)
                for (std::size_t j = 1; j + 1 < w; ++j)
                    worst = std::max(worst, std::abs(double(q[i * w + j]) - double(v)) / std::abs(double(v)));
        }
        return worst;
    };
    CHECK(interior_spread(0) == 0.0);  // im2col / direct
    CHECK(interior_spread(2) == 0.0);
    CHECK(interior_spread(4) > 1e-7);
}

// F(2x2)'s float rounding is the direct path's, F(4x4)'s several times larger
// (measured at 16 x 64 x 14 x 14: relative L2 against double 2.7e-7, 4.1e-7
// and 1.6e-6).
TEST_CASE("conv2d: Winograd F(2x2) rounds as little as the direct path, F(4x4) more") {
    knob_guard<float> guard;
    const std::size_t n = 16, c = 64, h = 14, w = 14, co = 64;
    const auto xf = ref::random<float>({n, c, h, w}, 71);
    tensor<double> xd(xf.shape());
    for (std::size_t i = 0; i < xf.numel(); ++i) xd[i] = xf[i];
    conv2d<float> lf(conv2d_config{c, co, 3, 1, 1, false}, 72);
    conv2d<double> ld(conv2d_config{c, co, 3, 1, 1, false}, 72);
    for (std::size_t i = 0; i < lf.weight().value.numel(); ++i) ld.weight().value[i] = lf.weight().value[i];
    ssl::backend::host::winograd::select(0);
    const auto yd = ld.forward(xd).out;
    auto error = [&](std::size_t tile) {
        ssl::backend::host::winograd::select(tile);
        const auto y = lf.forward(xf).out;
        double num = 0, den = 0;
        for (std::size_t i = 0; i < y.numel(); ++i) {
            num += (y[i] - yd[i]) * (y[i] - yd[i]);
            den += yd[i] * yd[i];
        }
        return std::sqrt(num / den);
    };
    const double direct = error(0), f2 = error(2), f4 = error(4);
    CAPTURE(direct);
    CAPTURE(f2);
    CAPTURE(f4);
    CHECK(f2 < 1.5 * direct);
    CHECK(f4 > 2.0 * f2);
}

TEST_CASE("winograd::select takes 0, 2 and 4 only") {
    knob_guard<float> guard;
    namespace wg = ssl::backend::host::winograd;
    CHECK(wg::select(4));
    CHECK((wg::enabled && wg::output_tile == 4));
    CHECK(wg::select(0));
    CHECK(!wg::enabled);
    CHECK(!wg::select(3));
    CHECK(!wg::enabled);
    CHECK(wg::select(2));
    CHECK((wg::enabled && wg::output_tile == 2));
}

TEST_CASE("conv2d: Winograd needs half a block of images; fewer go through im2col") {
    knob_guard<float> guard;
    ssl::backend::host::winograd::select(4);  // F(4x4): its rounding differs from im2col's for sure
    constexpr std::size_t L = ssl::backend::host::winograd::block_images<float>;
    conv2d<float> layer(conv2d_config{8, 8, 3, 1, 1, false}, 2);
    for (std::size_t n : {std::size_t{1}, L / 2 - 1, L / 2}) {
        CAPTURE(n);
        const auto x = ref::random<float>({n, 8, 6, 6}, 3);
        auto y = layer.forward(x).out;
        auto expect = ref::conv2d(x, layer.weight().value, static_cast<const tensor<float>*>(nullptr), 1, 1);
        CHECK(ref::max_abs_diff(y, expect) < 1e-5);
        // Winograd (float rounding ~1e-6 relative) vs im2col (~1e-7): the paths differ in the last bits
        ssl::backend::host::winograd::enabled = false;
        auto y_im2col = layer.forward(x).out;
        ssl::backend::host::winograd::select(4);
        if (2 * n < L)
            CHECK(ref::max_abs_diff(y, y_im2col) == 0.0);
        else
            CHECK(ref::max_abs_diff(y, y_im2col) > 0.0);
    }
}

template <class T>
void direct_vs_im2col(double tol) {
    knob_guard<T> guard;
    constexpr std::size_t L = ssl::backend::host::direct::block_images<T>;
    struct shape {
        std::size_t n, c, h, w, co, k, stride, pad;
    };
    // half a block, partial blocks, several blocks with a partial last one;
    // strides 1-3, kernels 2-7 (1x1 convolutions stay on im2col), padding 0-3 (padding wider than the image: 1x1 images), output
    // channel counts that leave row-block tails (5, 13), the ResNet strided
    // shape 3x3 / 2 / 1 on even and odd sizes, the stem (1 input channel)
    const shape shapes[] = {
        {L / 2, 3, 9, 7, 5, 3, 2, 1},     {L - 1, 2, 8, 8, 13, 3, 2, 1},   {L + 1, 4, 7, 7, 8, 2, 2, 0},
        {2 * L + 3, 3, 6, 5, 9, 5, 3, 2}, {L, 1, 28, 28, 16, 3, 1, 1},     {L + 2, 2, 1, 1, 4, 3, 1, 3},
        {L, 5, 11, 10, 6, 7, 2, 3},       {L - 3, 6, 5, 9, 3, 2, 1, 0},    {L, 16, 14, 14, 32, 3, 2, 1},
        {L, 4, 10, 10, 20, 4, 2, 1},      {3 * L, 2, 4, 4, 3, 3, 1, 0},
    };
    for (const auto& sh : shapes) {
        CAPTURE(sh.n);
        CAPTURE(sh.c);
        CAPTURE(sh.h);
        CAPTURE(sh.w);
        CAPTURE(sh.k);
        CAPTURE(sh.stride);
        CAPTURE(sh.pad);
        conv2d<T> layer(conv2d_config{sh.c, sh.co, sh.k, sh.stride, sh.pad, true}, 7);
        const auto x = ref::random<T>({sh.n, sh.c, sh.h, sh.w}, 51);
        ssl::backend::host::winograd::enabled = false;  // the 3x3 / 1 / 1 shape goes direct too
        ssl::backend::host::direct::enabled = false;
        const auto dy = ref::random<T>(layer.forward(x).out.shape(), 52);
        const auto acc0 = ref::random<T>(x.shape(), 53);
        const auto expect = run_path(layer, x, dy, acc0);
        ssl::backend::host::direct::enabled = true;
        check_same(run_path(layer, x, dy, acc0), expect, acc0, tol);
        // the first layer's backward: no input gradient, the same weight gradient
        const auto r = layer.forward(x);
        ssl::zero_grad(layer);
        CHECK_FALSE(layer.backward(r.cache, dy, false).defined());
        CHECK(rel_diff(layer.weight().grad, expect.dw) < tol);
    }
}

TEST_CASE("conv2d: the direct path matches im2col over blocks, strides, kernels and padding (float, double)") {
    direct_vs_im2col<double>(1e-12);
    direct_vs_im2col<float>(1e-5);
}

TEST_CASE("conv2d: the direct path needs half a block of images and at most direct_max_channels inputs") {
    knob_guard<float> guard;
    constexpr std::size_t L = ssl::backend::host::direct::block_images<float>;
    conv2d<float> layer(conv2d_config{4, 8, 3, 2, 1, false}, 2);
    for (std::size_t n : {std::size_t{1}, L / 2 - 1, L / 2}) {
        CAPTURE(n);
        const auto x = ref::random<float>({n, 4, 9, 9}, 3);
        auto y = layer.forward(x).out;
        auto expect = ref::conv2d(x, layer.weight().value, static_cast<const tensor<float>*>(nullptr), 2, 1);
        CHECK(ref::max_abs_diff(y, expect) < 1e-5);
        // the paths sum in different orders: they differ in the last bits
        ssl::backend::host::direct::enabled = false;
        auto y_im2col = layer.forward(x).out;
        ssl::backend::host::direct::enabled = true;
        if (2 * n < L)
            CHECK(ref::max_abs_diff(y, y_im2col) == 0.0);
        else
            CHECK(ref::max_abs_diff(y, y_im2col) > 0.0);
        conv2d<float>::direct_max_channels = 3;  // fewer than the layer's 4 inputs: im2col
        CHECK(ref::max_abs_diff(layer.forward(x).out, y_im2col) == 0.0);
        conv2d<float>::direct_max_channels = guard.direct_max;
    }
    // a forward with fewer than min_direct_rows unrolled kernel rows (the
    // 1-channel stem: 9) stays on im2col; its backward goes direct
    conv2d<float> stem(conv2d_config{1, 16, 3, 1, 1, false}, 4);
    const auto x = ref::random<float>({L, 1, 12, 12}, 5);
    const auto dy = ref::random<float>({L, 16, 12, 12}, 6);
    const auto y = stem.forward(x);
    ssl::zero_grad(stem);
    stem.backward(y.cache, dy, false);
    const auto dw = stem.weight().grad.clone();
    ssl::backend::host::direct::enabled = false;
    const auto y_im2col = stem.forward(x);
    ssl::zero_grad(stem);
    stem.backward(y_im2col.cache, dy, false);
    CHECK(ref::max_abs_diff(y.out, y_im2col.out) == 0.0);
    CHECK(ref::max_abs_diff(stem.weight().grad, dw) > 0.0);
    CHECK(rel_diff(stem.weight().grad, dw) < 1e-5);
    ssl::backend::host::direct::enabled = true;
    conv2d<float>::min_direct_rows = 0;  // (both paths sum the 9 products in the same order here)
    CHECK(rel_diff(stem.forward(x).out, y_im2col.out) < 1e-6);
}

TEST_CASE("conv2d: backward_add adds the input gradient into the accumulator, on every path") {
    knob_guard<double> guard;
    for (int mode : {0, 1, 2})  // Winograd: per shape, per chunk, whole batch
    for (std::size_t small : {std::size_t{64}, std::size_t{0}}) {  // small_gemm or Eigen for its products
        ssl::nn::conv2d<double>::winograd_mode = mode;
        ssl::nn::conv2d<double>::small_gemm_max_channels = small;
        for (const auto& k : cases) {
            CAPTURE(mode);
            CAPTURE(small);
            CAPTURE(k.k);
            CAPTURE(k.stride);
            CAPTURE(k.c);
            conv2d<double> layer(conv2d_config{k.c, k.co, k.k, k.stride, k.pad, k.bias}, 4);
            auto x = ref::random<double>({k.n, k.c, k.h, k.w}, 31);
            auto r = layer.forward(x);
            auto dy = ref::random<double>(r.out.shape(), 32);
            ssl::zero_grad(layer);
            auto dx = layer.backward(r.cache, dy);
            auto gw = layer.weight().grad.clone();
            auto acc0 = ref::random<double>(x.shape(), 33);
            auto acc = acc0.clone();
            ssl::zero_grad(layer);
            auto out = layer.backward_add(r.cache, dy, acc);
            CHECK(out.data() == acc.data());  // written in place
            double err = 0;
            for (std::size_t i = 0; i < dx.numel(); ++i) err = std::max(err, std::abs(out[i] - (acc0[i] + dx[i])));
            CHECK(err < 1e-12);
            CHECK(ref::max_abs_diff(layer.weight().grad, gw) < 1e-12);
        }
    }
    conv2d<float> layer(conv2d_config{3, 4, 3, 1, 1, false});
    auto r = layer.forward(tensor<float>::zeros({2, 3, 5, 5}));
    CHECK_THROWS_AS(layer.backward_add(r.cache, tensor<float>::zeros({2, 4, 5, 5}), tensor<float>({2, 3, 5, 4})),
                    ssl::shape_error);
}

TEST_SUITE("gradcheck") {
    TEST_CASE("conv2d gradcheck: kernels, strides, padding, bias, grouping") {
        for (const auto& k : cases) {
            CAPTURE(k.k);
            CAPTURE(k.stride);
            CAPTURE(k.pad);
            CAPTURE(k.n);
            conv2d<double> layer(conv2d_config{k.c, k.co, k.k, k.stride, k.pad, k.bias}, 9);
            for (bool train : {true, false}) {
                layer.train(train);
                auto rep = ssl::testing::gradcheck(layer, ref::random<double>({k.n, k.c, k.h, k.w}, 21),
                                                   {.max_checks_per_tensor = 60});
                CHECK_MESSAGE(rep.ok, rep.str());
                CHECK(rep.checked > 0);
            }
        }
    }
    TEST_CASE("gradcheck harness catches a wrong gradient") {
        // A layer whose backward is off by a factor must fail the check.
        struct broken : conv2d<double> {
            using conv2d<double>::conv2d;
            tensor<double> backward(const cache_type& c, const tensor<double>& dy) {
                auto dx = conv2d<double>::backward(c, dy);
                for (auto& v : dx) v *= 1.01;
                return dx;
            }
        };
        broken layer(conv2d_config{1, 2, 3, 1, 1, false}, 1);
        auto rep = ssl::testing::gradcheck(layer, ref::random<double>({1, 1, 4, 4}, 2));
        CHECK_FALSE(rep.ok);
        CHECK(rep.failed > 0);
    }
}

}  // namespace test_conv2d
