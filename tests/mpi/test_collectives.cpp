// dist/mpi.hpp: every collective of the communicator on float, double, int32
// and int64 buffers, against what the definitions say, on P ranks.
#include <doctest/doctest.h>

#include <ssl/dist/data_parallel.hpp>
#include <ssl/dist/mpi.hpp>
#include <ssl/nn/batch_norm.hpp>
#include <ssl/nn/linear.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

namespace test_mpi_collectives {

template <class T>
void check_type() {
    ssl::dist::mpi c;
    const int P = c.size(), r = c.rank();
    CAPTURE(P);
    CAPTURE(r);
    // allreduce sum / max: rank r contributes (r + 1) * (i + 1)
    std::vector<T> a(5);
    for (int i = 0; i < 5; ++i) a[i] = static_cast<T>((r + 1) * (i + 1));
    auto m = a;
    c.allreduce_sum(std::span<T>(a));
    c.allreduce_max(std::span<T>(m));
    for (int i = 0; i < 5; ++i) {
        CHECK(a[i] == static_cast<T>(P * (P + 1) / 2 * (i + 1)));
        CHECK(m[i] == static_cast<T>(P * (i + 1)));
    }
    // allgather: block q is rank q's
    std::vector<T> mine{static_cast<T>(10 * r), static_cast<T>(10 * r + 1)}, all(2 * P);
    c.allgather(std::span<const T>(mine), std::span<T>(all));
    for (int q = 0; q < P; ++q) {
        CHECK(all[2 * q] == static_cast<T>(10 * q));
        CHECK(all[2 * q + 1] == static_cast<T>(10 * q + 1));
    }
    // reduce-scatter: rank r gets the sum over ranks of their block r
    std::vector<T> send(3 * P), recv(3);
    for (int q = 0; q < P; ++q)
        for (int i = 0; i < 3; ++i) send[3 * q + i] = static_cast<T>(100 * q + i + r);
    c.reduce_scatter_sum(std::span<const T>(send), std::span<T>(recv));
    for (int i = 0; i < 3; ++i) CHECK(recv[i] == static_cast<T>(P * (100 * r + i) + P * (P - 1) / 2));
    // all-to-all: block q of rank r goes to rank q
    std::vector<T> out(2 * P), in(2 * P);
    for (int q = 0; q < P; ++q) {
        out[2 * q] = static_cast<T>(r * 1000 + q);
        out[2 * q + 1] = static_cast<T>(-1);
    }
    c.all_to_all(std::span<const T>(out), std::span<T>(in));
    for (int q = 0; q < P; ++q) CHECK(in[2 * q] == static_cast<T>(q * 1000 + r));
    // broadcast from the last rank
    std::vector<T> b{static_cast<T>(r), static_cast<T>(2 * r)};
    c.broadcast(std::span<T>(b), P - 1);
    CHECK(b[0] == static_cast<T>(P - 1));
    CHECK(b[1] == static_cast<T>(2 * (P - 1)));
    c.barrier();
}

TEST_CASE("mpi: allreduce, allgather, reduce-scatter, all-to-all, broadcast, barrier on four types") {
    check_type<float>();
    check_type<double>();
    check_type<std::int32_t>();
    check_type<std::int64_t>();
}

TEST_CASE("mpi: float sums arrive with the same bits on every rank") {
    ssl::dist::mpi c;
    std::vector<float> v(1000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 1.0f / static_cast<float>(i + 1 + 7 * c.rank()) * 1e-3f + 0.1f;
    c.allreduce_sum(std::span<float>(v));
    auto root = v;
    c.broadcast(std::span<float>(root), 0);
    CHECK(std::memcmp(root.data(), v.data(), v.size() * sizeof(float)) == 0);
}

TEST_CASE("mpi: bad calls are refused with the counts") {
    ssl::dist::mpi c;
    std::vector<float> a(3), small(1);
    CHECK_THROWS_WITH_AS(c.allgather(std::span<const float>(a), std::span<float>(small)),
                         doctest::Contains("expected"), ssl::dist_error);
    CHECK_THROWS_WITH_AS(c.broadcast(std::span<float>(a), c.size()), doctest::Contains("is not a rank of"),
                         ssl::dist_error);
    CHECK(c.name().find("MPI") == 0);
}

TEST_CASE("mpi: a global batch the ranks cannot share (indivisible) is refused before any collective") {
    ssl::dist::mpi c;
    const std::size_t bad = static_cast<std::size_t>(c.size()) * 4 + (c.size() > 1 ? 1 : 0);
    if (c.size() > 1)
        CHECK_THROWS_WITH_AS(ssl::dist::check_global_batch(bad, c), doctest::Contains("is not divisible by the"),
                             ssl::value_error);
    CHECK_NOTHROW(ssl::dist::check_global_batch(static_cast<std::size_t>(c.size()) * 4, c));
}

struct both {
    ssl::nn::linear<float>& l;
    ssl::nn::batch_norm1d<float>& b;
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        l.for_each_parameter(f, p);
        b.for_each_parameter(f, p);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        b.for_each_buffer(f, p);
    }
};

TEST_CASE("mpi: broadcast_state gives every rank rank 0's parameters and buffers") {
    ssl::dist::mpi c;
    ssl::nn::linear<float> lin({3, 2}, 7 + static_cast<std::uint64_t>(c.rank()));  // different weights per rank
    ssl::nn::batch_norm1d<float> bn({2});
    bn.running_mean()[0] = static_cast<float>(c.rank());
    both m{lin, bn};
    ssl::nn::linear<float> ref({3, 2}, 7);  // rank 0's
    ssl::dist::broadcast_state(m, c);
    CHECK(std::vector<float>(lin.weight().value.begin(), lin.weight().value.end()) ==
          std::vector<float>(ref.weight().value.begin(), ref.weight().value.end()));
    CHECK(bn.running_mean()[0] == 0.0f);
}

TEST_CASE("mpi: mean_over_ranks, any_rank and the counting communicator's bytes") {
    ssl::dist::mpi c;
    const int P = c.size();
    CHECK(ssl::dist::mean_over_ranks(c, static_cast<double>(c.rank())) == doctest::Approx((P - 1) / 2.0));
    CHECK(ssl::dist::any_rank(c, c.rank() == P - 1));
    CHECK_FALSE(ssl::dist::any_rank(c, false));
    ssl::dist::counting k(c);
    std::vector<float> a(4), g(4 * static_cast<std::size_t>(P));
    k.allreduce_sum(std::span<float>(a));
    k.allgather(std::span<const float>(a), std::span<float>(g));
    k.reduce_scatter_sum(std::span<const float>(g), std::span<float>(a));
    CHECK(k.calls == 3);
    CHECK(k.bytes == (4 + 4 + 4 * static_cast<std::size_t>(P)) * sizeof(float));
}

}  // namespace test_mpi_collectives
