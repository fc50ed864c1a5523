// Synchronized batch norm (nn/batch_norm.hpp inside a dist::step_scope) and
// the losses with negatives from all ranks (NT-Xent, the batch-hard triplet,
// CPC's InfoNCE) on P ranks against
// one process on the concatenated global batch; SyncBN's gradient against
// finite differences of the global loss.
#include <doctest/doctest.h>

#include "reproducible.hpp"

#include <ssl/dist/data_parallel.hpp>
#include <ssl/dist/mpi.hpp>
#include <ssl/loss/cpc.hpp>
#include <ssl/loss/nt_xent.hpp>
#include <ssl/loss/triplet.hpp>
#include <ssl/nn/batch_norm.hpp>

#include <cmath>
#include <memory>
#include <vector>

namespace test_mpi_sync_layers {

namespace {

using test_mpi::value_at;

template <class T>
ssl::tensor<T> global_tensor(ssl::shape_t s, std::uint64_t stream, double scale = 1.0, double shift = 0.0) {
    ssl::tensor<T> t(s);
    for (std::size_t i = 0; i < t.numel(); ++i) t[i] = static_cast<T>(value_at(i, stream) * scale + shift);
    return t;
}

/// Rank r's rows of a global (B, ...) tensor.
template <class T>
ssl::tensor<T> rows_of(const ssl::tensor<T>& g, const ssl::dist::communicator& c) {
    const auto [b, e] = ssl::dist::rank_slice(g.dim(0), c);
    return g.slice(b, e).clone();
}

template <class T>
void check_close(const ssl::tensor<T>& a, const ssl::tensor<T>& b, double tol, const char* what) {
    REQUIRE(a.numel() == b.numel());
    double worst = 0;
    for (std::size_t i = 0; i < a.numel(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])) /
                                    (1.0 + std::abs(static_cast<double>(b[i]))));
    CAPTURE(what);
    CHECK(worst <= tol);
}

enum class variant { plain, relu, add_relu };

/// group: batch norm within groups of that many consecutive ranks (0: all),
/// each group against one process on the group's rows.
template <class BN>
void sync_bn_equals_one_process(ssl::shape_t global_shape, variant v, std::size_t group = 0) {
    using T = float;
    ssl::dist::mpi c;
    const std::size_t C = global_shape[1], P = static_cast<std::size_t>(c.size()), G = group ? group : P;
    const std::size_t per = global_shape[0] / P, first = static_cast<std::size_t>(c.rank()) / G * G;
    std::unique_ptr<ssl::dist::communicator> g;  // this rank's group when G < P
    if (G < P) g = ssl::dist::consecutive_groups(c, G);
    ssl::dist::communicator& within = g ? *g : static_cast<ssl::dist::communicator&>(c);
    const auto group_rows = [&](const ssl::tensor<T>& t) { return t.slice(first * per, (first + G) * per).clone(); };
    const auto own_rows = [&](const ssl::tensor<T>& t) {
        const std::size_t r = static_cast<std::size_t>(c.rank()) - first;
        return t.slice(r * per, (r + 1) * per).clone();
    };
    CAPTURE(G);
    CAPTURE(c.size());
    CAPTURE(static_cast<int>(v));
    CAPTURE(global_shape.str());
    auto xg = global_tensor<T>(global_shape, 1, 2.0, 0.5);
    auto sg = global_tensor<T>(global_shape, 2);
    auto wg = global_tensor<T>(global_shape, 3);
    BN one({C}), many({C});
    for (std::size_t ch = 0; ch < C; ++ch) {
        one.weight().value[ch] = many.weight().value[ch] = static_cast<T>(1.0 + 0.1 * static_cast<double>(ch));
        one.bias().value[ch] = many.bias().value[ch] = static_cast<T>(-0.2 * static_cast<double>(ch));
    }
    auto run = [&](BN& bn, const ssl::tensor<T>& x, const ssl::tensor<T>& s, const ssl::tensor<T>& w) {
        std::pair<ssl::tensor<T>, ssl::tensor<T>> r;  // y, dx
        ssl::tensor<T> masked;
        if (v == variant::plain) {
            auto f = bn.forward(x);
            r = {f.out, bn.backward(f.cache, w)};
        } else if (v == variant::relu) {
            auto f = bn.forward_relu(x);
            r = {f.out, bn.backward_relu(f.cache, f.out, w)};
        } else {
            auto f = bn.forward_add_relu(x, s);
            r = {f.out, bn.backward_relu(f.cache, f.out, w, masked)};
        }
        return r;
    };
    auto [yg, dxg] = run(one, group_rows(xg), group_rows(sg), group_rows(wg));
    std::pair<ssl::tensor<T>, ssl::tensor<T>> local;
    {
        ssl::dist::step_scope scope(c, {.batch_norm_group = g.get()});
        local = run(many, rows_of(xg, c), rows_of(sg, c), rows_of(wg, c));
    }
    check_close(local.first, own_rows(yg), 2e-5, "forward");
    check_close(local.second, own_rows(dxg), 2e-5, "input gradient");
    // the affine gradients are each rank's share; their sum over the group is one process's
    within.allreduce_sum(many.weight().grad.span());
    within.allreduce_sum(many.bias().grad.span());
    check_close(many.weight().grad, one.weight().grad, 2e-5, "weight gradient");
    check_close(many.bias().grad, one.bias().grad, 2e-5, "bias gradient");
    check_close(many.running_mean(), one.running_mean(), 1e-6, "running mean");
    check_close(many.running_var(), one.running_var(), 1e-6, "running var");
    CHECK(many.num_batches_tracked() == 1);
}

}  // namespace

TEST_CASE("sync batch norm: P ranks normalize as one process on the global batch (2d and 1d, fused relu)") {
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size());
    for (variant v : {variant::plain, variant::relu, variant::add_relu}) {
        sync_bn_equals_one_process<ssl::nn::batch_norm2d<float>>({3 * P, 5, 4, 3}, v);
        sync_bn_equals_one_process<ssl::nn::batch_norm1d<float>>({4 * P, 19}, v);
    }
    // one row per rank: (N, C) statistics need the other ranks' rows
    if (P >= 2) sync_bn_equals_one_process<ssl::nn::batch_norm1d<float>>({P, 7}, variant::plain);
}

TEST_CASE("sync batch norm in groups of ranks: each group normalizes as one process on its rows") {
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size());
    for (std::size_t G = 1; G <= P; ++G) {
        if (P % G) continue;
        for (variant v : {variant::plain, variant::add_relu}) {
            sync_bn_equals_one_process<ssl::nn::batch_norm2d<float>>({3 * P, 5, 4, 3}, v, G);
            sync_bn_equals_one_process<ssl::nn::batch_norm1d<float>>({2 * P, 11}, v, G);
        }
    }
    // a size that does not divide the ranks: refused on every rank, before the split
    CHECK_THROWS_WITH_AS(ssl::dist::consecutive_groups(c, P + 1), doctest::Contains("do not divide the"),
                         ssl::dist_error);
}

TEST_CASE("sync batch norm: eval mode and no scope are local, as before") {
    ssl::dist::mpi c;
    ssl::nn::batch_norm1d<float> bn({3});
    auto x = global_tensor<float>({4, 3}, 10 + static_cast<std::uint64_t>(c.rank()));  // different data per rank
    ssl::nn::batch_norm1d<float> ref({3});
    auto a = bn.forward(x);
    auto b = ref.forward(x);
    check_close(a.out, b.out, 0, "no scope");
    bn.train(false);
    ref.train(false);
    ssl::dist::step_scope scope(c);
    check_close(bn.forward(x).out, ref.forward(x).out, 0, "eval mode");  // no collective: ranks may differ
}

TEST_SUITE("gradcheck") {
TEST_CASE("sync batch norm: gradient of the global loss against finite differences (double)") {
    using T = double;
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size()), n = 2, C = 2;
    const ssl::shape_t gs{n * P, C, 2, 3};
    auto xg = global_tensor<T>(gs, 21, 1.5, 0.3);
    auto wg = global_tensor<T>(gs, 22);
    ssl::nn::batch_norm2d<T> bn({C});
    bn.weight().value[0] = 1.3;
    bn.weight().value[1] = 0.7;
    bn.bias().value[1] = 0.25;
    auto x = rows_of(xg, c);
    const auto w = rows_of(wg, c);
    ssl::dist::step_scope scope(c);
    // L = sum over all ranks of w . relu(bn(x))
    auto global_loss = [&](const ssl::tensor<T>& xin) {
        auto f = bn.forward_relu(xin);
        double l = 0;
        for (std::size_t i = 0; i < f.out.numel(); ++i) l += w[i] * f.out[i];
        return c.sum(l);
    };
    auto f = bn.forward_relu(x);
    bn.weight().zero_grad();
    bn.bias().zero_grad();
    const auto dx = bn.backward_relu(f.cache, f.out, w);
    auto dgamma = bn.weight().grad.clone(), dbeta = bn.bias().grad.clone();
    c.allreduce_sum(dgamma.span());
    c.allreduce_sum(dbeta.span());
    const double eps = 1e-6;
    std::size_t bad = 0, checked = 0;
    // every rank's every input, one at a time (all ranks run every forward)
    for (std::size_t owner = 0; owner < P; ++owner)
        for (std::size_t i = 0; i < x.numel(); ++i) {
            const bool mine = owner == static_cast<std::size_t>(c.rank());
            const T keep = x[i];
            if (mine) x[i] = keep + eps;
            const double lp = global_loss(x);
            if (mine) x[i] = keep - eps;
            const double lm = global_loss(x);
            if (mine) {
                x[i] = keep;
                const double num = (lp - lm) / (2 * eps), ana = dx[i];
                ++checked;
                if (std::abs(num - ana) > 1e-6 + 1e-4 * std::max(std::abs(num), std::abs(ana))) ++bad;
            }
        }
    for (auto* p : {&bn.weight(), &bn.bias()})
        for (std::size_t ch = 0; ch < C; ++ch) {
            const T keep = p->value[ch];
            p->value[ch] = keep + eps;
            const double lp = global_loss(x);
            p->value[ch] = keep - eps;
            const double lm = global_loss(x);
            p->value[ch] = keep;
            const double num = (lp - lm) / (2 * eps), ana = (p == &bn.weight() ? dgamma : dbeta)[ch];
            ++checked;
            if (std::abs(num - ana) > 1e-6 + 1e-4 * std::max(std::abs(num), std::abs(ana))) ++bad;
        }
    CHECK(checked == x.numel() + 2 * C);
    CHECK(bad == 0);
}
}

TEST_CASE("nt_xent: negatives from all ranks equal one process; the gather's gradient is reduce-scattered") {
    using T = float;
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size());
    for (std::size_t n : {1u, 3u}) {
        if (n * P < 2) continue;
        CAPTURE(n);
        const std::size_t B = n * P, D = 6;
        auto z1 = global_tensor<T>({B, D}, 31), z2 = global_tensor<T>({B, D}, 32);
        for (std::size_t i = 0; i < B * D; ++i) z2[i] = static_cast<T>(0.6 * z1[i] + 0.4 * z2[i]);  // positives closer
        ssl::loss::nt_xent<T> loss({.temperature = 0.2});
        const auto one = loss(z1, z2);
        const auto mine = loss(rows_of(z1, c), rows_of(z2, c), &c);
        // each rank's value is its anchors' mean; the mean over ranks is the global loss
        CHECK(ssl::dist::mean_over_ranks(c, mine.value) == doctest::Approx(one.value).epsilon(1e-6));
        CHECK(c.sum(static_cast<std::int64_t>(mine.correct)) == static_cast<std::int64_t>(one.correct));
        // each rank holds d(P L)/dz of its rows
        auto g1 = mine.grad_z1.clone(), g2 = mine.grad_z2.clone();
        for (auto& v : g1) v /= static_cast<T>(P);
        for (auto& v : g2) v /= static_cast<T>(P);
        check_close(g1, rows_of(one.grad_z1, c), 1e-6, "dL/dz1");
        check_close(g2, rows_of(one.grad_z2, c), 1e-6, "dL/dz2");
    }
}

TEST_CASE("nt_xent: ranks with different local batches are refused, naming the ranks") {
    ssl::dist::mpi c;
    if (c.size() == 1) return;
    const std::size_t n = c.rank() == 1 ? 3 : 2;
    ssl::tensor<float> z1({n, 4}), z2({n, 4});
    z1.fill(1.0f);
    z2.fill(0.5f);
    ssl::loss::nt_xent<float> loss;
    CHECK_THROWS_WITH_AS(loss(z1, z2, &c), doctest::Contains("rank 1 has 3 pairs"), ssl::shape_error);
}

/// Rank r's rows of a global tensor whose rows are `blocks` consecutive
/// blocks of N samples each (copy-major, or grid-cell-major): in every block
/// the rows of samples [r n, (r + 1) n).
template <class T>
ssl::tensor<T> sample_rows(const ssl::tensor<T>& g, std::size_t blocks, const ssl::dist::communicator& c) {
    const std::size_t N = g.dim(0) / blocks, P = static_cast<std::size_t>(c.size()), n = N / P;
    const std::size_t width = g.numel() / g.dim(0), me = static_cast<std::size_t>(c.rank());
    ssl::shape_t s = g.shape();
    s[0] = blocks * n;
    ssl::tensor<T> out(s);
    for (std::size_t b = 0; b < blocks; ++b)
        std::copy_n(g.data() + (b * N + me * n) * width, n * width, out.data() + b * n * width);
    return out;
}

TEST_CASE("batch-hard triplet: positives and negatives from all ranks equal one process; gradient reduce-scattered") {
    using T = double;
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size());
    for (std::size_t n : {1u, 3u}) {
        if (n * P < 2) continue;  // one process needs two groups
        CAPTURE(n);
        const std::size_t copies = 3, N = n * P, D = 5;
        const auto z = global_tensor<T>({copies * N, D}, 41);
        std::vector<std::int64_t> groups(copies * N);
        for (std::size_t k = 0; k < groups.size(); ++k) groups[k] = static_cast<std::int64_t>(k % N);
        const auto one = ssl::loss::batch_hard_triplet(z, groups);
        const auto mine_groups = ssl::loss::copy_groups(copies * n, n, &c);  // numbered across the ranks
        const auto mine = ssl::loss::batch_hard_triplet(sample_rows(z, copies, c), mine_groups, c);
        CHECK(ssl::dist::mean_over_ranks(c, mine.value) == doctest::Approx(one.value).epsilon(1e-12));
        CHECK(ssl::dist::mean_over_ranks(c, mine.violated) == doctest::Approx(one.violated).epsilon(1e-12));
        auto g = mine.grad.clone();
        for (auto& v : g) v /= static_cast<T>(P);
        check_close(g, sample_rows(one.grad, copies, c), 1e-12, "dL/dz");
    }
}

TEST_CASE("batch-hard triplet: ranks with different local batches are refused, naming the ranks") {
    ssl::dist::mpi c;
    if (c.size() == 1) return;
    const std::size_t n = c.rank() == 1 ? 6 : 4;
    const auto z = global_tensor<float>({n, 3}, 42);
    std::vector<std::int64_t> groups(n);
    for (std::size_t k = 0; k < n; ++k) groups[k] = static_cast<std::int64_t>(k % 2 + 2 * c.rank());
    CHECK_THROWS_WITH_AS(ssl::loss::batch_hard_triplet(z, groups, c), doctest::Contains("rank 1 has 6 rows"),
                         ssl::shape_error);
}

TEST_CASE("batch-hard triplet: a row without a positive on one rank is refused on every rank") {
    ssl::dist::mpi c;
    if (c.size() == 1) return;
    const auto z = global_tensor<float>({2, 3}, 44);
    // rank 0's two rows share a group; every other rank's rows are alone in theirs
    const std::int64_t q = c.rank();
    const std::vector<std::int64_t> groups = q == 0 ? std::vector<std::int64_t>{0, 0}
                                                    : std::vector<std::int64_t>{10 * q, 10 * q + 1};
    CHECK_THROWS_WITH_AS(ssl::loss::batch_hard_triplet(z, groups, c), doctest::Contains("has no positive"),
                         ssl::value_error);
    c.barrier();  // every rank got here: none waits in a collective
}

TEST_CASE("cpc InfoNCE: negatives from every rank's patches equal one process; gradient reduce-scattered") {
    using T = double;
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size()), R = 3, C = 2, K = 2, D = 4;
    for (std::size_t n : {1u, 2u}) {
        CAPTURE(n);
        const std::size_t N = n * P;
        const auto y = global_tensor<T>({R * C * N, K + 1, D}, 43, 0.7);
        ssl::loss::cpc_info_nce<T> loss({.temperature = 0.5, .block_rows = 5});
        const auto one = loss(y, N, R, C);
        const auto mine = loss(sample_rows(y, R * C, c), n, R, C, &c);
        CHECK(ssl::dist::mean_over_ranks(c, mine.value) == doctest::Approx(one.value).epsilon(1e-12));
        CHECK(c.sum(static_cast<std::int64_t>(mine.correct)) == static_cast<std::int64_t>(one.correct));
        auto g = mine.grad.clone();
        for (auto& v : g) v /= static_cast<T>(P);
        check_close(g, sample_rows(one.grad, R * C, c), 1e-12, "dL/dy");
    }
}

}  // namespace test_mpi_sync_layers
