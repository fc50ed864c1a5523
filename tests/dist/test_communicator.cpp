// dist/communicator.hpp and dist/data_parallel.hpp in one process (no MPI):
// the single-process communicator, the counting wrapper, the step scope, the
// batch checks, the loader's rank slices and the bucketed gradient average
// (over a "mirror" communicator that plays P identical ranks). The P-rank
// behaviour itself is tested under mpirun (tests/mpi, label dist).
#include <doctest/doctest.h>
#include <ssl/loss/info_nce.hpp>
#include <ssl/loss/nce.hpp>
#include <ssl/loss/pirl_nce.hpp>
#include <ssl/loss/policies.hpp>
#include <ssl/target_update/ema.hpp>
#include <ssl/target_update/memory_bank.hpp>
#include <ssl/target_update/none.hpp>
#include <ssl/target_update/queue.hpp>

#include <ssl/data/loader.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/dist/communicator.hpp>
#include <ssl/dist/data_parallel.hpp>
#include <ssl/loss/nt_xent.hpp>
#include <ssl/nn/linear.hpp>

#include <cstring>
#include <string>
#include <vector>

namespace test_dist_communicator {

namespace {

/// P ranks that all hold the same data: sums are P x, gathers repeat.
class mirror final : public ssl::dist::communicator {
public:
    explicit mirror(int p) : p_(p) {}
    int rank() const noexcept override { return 0; }
    int size() const noexcept override { return p_; }
    std::string name() const override { return "mirror"; }
    void allreduce_sum(void* b, std::size_t n, ssl::dist::dtype t) override {
        require_f32(t);
        for (std::size_t i = 0; i < n; ++i) static_cast<float*>(b)[i] *= static_cast<float>(p_);
    }
    void allreduce_max(void*, std::size_t, ssl::dist::dtype) override {}
    void allgather(const void* s, void* r, std::size_t n, ssl::dist::dtype t) override {
        for (int q = 0; q < p_; ++q)
            std::memcpy(static_cast<char*>(r) + q * n * size_of(t), s, n * size_of(t));
    }
    void reduce_scatter_sum(const void*, void*, std::size_t, ssl::dist::dtype) override { FAIL("not used"); }
    void all_to_all(const void*, void*, std::size_t, ssl::dist::dtype) override { FAIL("not used"); }
    void broadcast(void*, std::size_t, ssl::dist::dtype, int) override {}
    void barrier() override {}
    using communicator::allgather;
    using communicator::allreduce_sum;

private:
    static void require_f32(ssl::dist::dtype t) { REQUIRE(t == ssl::dist::dtype::f32); }
    int p_;
};

struct two_layers {
    ssl::nn::linear<float>& a;
    ssl::nn::linear<float>& b;
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        a.for_each_parameter(f, p);
        b.for_each_parameter(f, p);
    }
};

}  // namespace

TEST_CASE("single_process: rank 0 of 1, collectives copy, broadcast only from rank 0") {
    auto& c = ssl::dist::single();
    CHECK(c.rank() == 0);
    CHECK(c.size() == 1);
    std::vector<float> a{1, 2, 3}, b(3);
    c.allreduce_sum(std::span<float>(a));
    CHECK(a == std::vector<float>{1, 2, 3});
    c.allgather(std::span<const float>(a), std::span<float>(b));
    CHECK(b == a);
    std::vector<double> d{4, 5}, e(2);
    c.reduce_scatter_sum(std::span<const double>(d), std::span<double>(e));
    CHECK(e == d);
    std::vector<std::int64_t> i{7, 8}, j(2);
    c.all_to_all(std::span<const std::int64_t>(i), std::span<std::int64_t>(j));
    CHECK(j == i);
    CHECK(c.sum(std::int32_t{5}) == 5);
    CHECK(c.max(2.5) == 2.5);
    c.barrier();
    CHECK_THROWS_WITH_AS(c.broadcast(std::span<float>(a), 1), doctest::Contains("root 1 is not a rank of 1"),
                         ssl::dist_error);
    // a gathered buffer of the wrong size is refused with the counts
    std::vector<float> small(2);
    CHECK_THROWS_WITH_AS(c.allgather(std::span<const float>(a), std::span<float>(small)),
                         doctest::Contains("2 elements, expected 1 ranks x 3"), ssl::dist_error);
}

TEST_CASE("counting: calls and payload bytes of the wrapped communicator") {
    ssl::dist::counting c(ssl::dist::single());
    std::vector<float> a(10);
    std::vector<double> b(3);
    c.allreduce_sum(std::span<float>(a));
    c.broadcast(std::span<double>(b));
    c.barrier();
    CHECK(c.calls == 3);
    CHECK(c.bytes == 10 * 4 + 3 * 8);
    CHECK(c.name() == "counting(single process)");
}

TEST_CASE("split: one process is its own group; counting counts the group apart; no split is a sentence") {
    auto g = ssl::dist::single().split(3, 0);
    CHECK(g->size() == 1);
    CHECK(g->rank() == 0);
    ssl::dist::counting c(ssl::dist::single());
    auto cg = ssl::dist::consecutive_groups(c, 1);
    CHECK(c.calls == 1);
    std::vector<float> a(5);
    cg->allreduce_sum(std::span<float>(a));
    CHECK(c.calls == 1);  // the group's traffic is the group's
    CHECK(static_cast<ssl::dist::counting&>(*cg).bytes == 5 * 4);
    CHECK_THROWS_WITH_AS(ssl::dist::consecutive_groups(c, 2), "dist: groups of 2 ranks do not divide the 1 ranks "
                         "(the group size must be a divisor of the rank count)", ssl::dist_error);
    mirror two(2);
    CHECK_THROWS_WITH_AS(two.split(0, 0), "dist: the communicator 'mirror' cannot form groups of ranks (split)",
                         ssl::dist_error);
}

TEST_CASE("step_scope: a batch-norm group replaces all ranks; a group of one is local") {
    mirror four(4), two(2), one(1);
    {
        ssl::dist::step_scope s(four, {.batch_norm_group = &two});
        CHECK(ssl::dist::active() == &four);
        CHECK(ssl::dist::batch_norm_group() == &two);
    }
    {
        ssl::dist::step_scope s(four, {.batch_norm_group = &one});
        CHECK(ssl::dist::batch_norm_group() == nullptr);
    }
    {
        ssl::dist::step_scope s(four, {.sync_batch_norm = false, .batch_norm_group = &two});
        CHECK(ssl::dist::batch_norm_group() == nullptr);
    }
}

TEST_CASE("step_scope: nothing is active in one process, scopes nest and restore") {
    CHECK(ssl::dist::active() == nullptr);
    mirror two(2);
    {
        ssl::dist::step_scope s(ssl::dist::single());
        CHECK(ssl::dist::active() == nullptr);  // one rank: the local code paths
    }
    {
        ssl::dist::step_scope s(two);
        CHECK(ssl::dist::active() == &two);
        CHECK(ssl::dist::batch_norm_group() == &two);
        {
            ssl::dist::step_scope inner(two, {.sync_batch_norm = false});
            CHECK(ssl::dist::batch_norm_group() == nullptr);
        }
        CHECK(ssl::dist::batch_norm_group() == &two);
    }
    CHECK(ssl::dist::active() == nullptr);
}

TEST_CASE("check_global_batch: a batch the ranks cannot share is refused, naming both") {
    mirror four(4);
    CHECK_NOTHROW(ssl::dist::check_global_batch(32, four));
    CHECK_THROWS_WITH_AS(ssl::dist::check_global_batch(30, four),
                         doctest::Contains("global batch 30 is not divisible by the 4 ranks"), ssl::value_error);
    CHECK(ssl::dist::rank_slice(32, four) == std::pair<std::size_t, std::size_t>{0, 8});
}

TEST_CASE("loader: the ranks' slices of a global batch are the one-process batch, row for row") {
    auto ds = ssl::data::synthetic({.size = 40, .classes = 4, .channels = 1, .height = 4, .width = 4, .seed = 3})
                  .to_dataset();
    ssl::data::loader<> one(ds, {.batch_size = 12, .drop_last = true, .seed = 5});
    for (std::size_t ranks : {2u, 3u, 4u}) {
        for (std::size_t k = 0; k < one.batches_per_epoch(); ++k) {
            const auto whole = one.get(1, k);
            std::vector<std::size_t> joined;
            std::vector<float> pixels;
            for (std::size_t r = 0; r < ranks; ++r) {
                ssl::data::loader<> part(ds, {.batch_size = 12, .drop_last = true, .seed = 5, .rank = r, .ranks = ranks});
                CHECK(part.batches_per_epoch() == one.batches_per_epoch());
                const auto b = part.get(1, k);
                CHECK(b.size() == 12 / ranks);
                joined.insert(joined.end(), b.indices.begin(), b.indices.end());
                pixels.insert(pixels.end(), b.images.begin(), b.images.end());
            }
            CHECK(joined == whole.indices);
            CHECK(pixels == std::vector<float>(whole.images.begin(), whole.images.end()));
        }
    }
    CHECK_THROWS_WITH(ssl::data::loader<>(ds, {.batch_size = 10, .drop_last = true, .rank = 0, .ranks = 4}),
                      doctest::Contains("global batch 10 must be divisible by the 4 ranks"));
    CHECK_THROWS_WITH(ssl::data::loader<>(ds, {.batch_size = 12, .drop_last = true, .rank = 4, .ranks = 4}),
                      doctest::Contains("rank 4 is not one of 4 ranks"));
}

TEST_CASE("gradient_averager: buckets in a fixed order, whole parameters or chunks of a large one") {
    ssl::nn::linear<float> a({5, 3}, 1), b({40, 2}, 2);  // 15 + 3, 80 + 2 values
    two_layers m{a, b};
    std::vector<float> before;
    m.for_each_parameter([&](const std::string&, ssl::parameter<float>& p) {
        for (std::size_t i = 0; i < p.grad.numel(); ++i) p.grad[i] = static_cast<float>(i % 7) - 3.0f;
        before.insert(before.end(), p.grad.begin(), p.grad.end());
    }, "");
    mirror three(3);
    ssl::dist::gradient_averager<float> avg(three, 32);
    avg(m);
    // buckets: [15 + 3], [80 in three chunks], [2]
    CHECK(avg.buckets() == 5);
    std::vector<float> after;
    m.for_each_parameter([&](const std::string&, ssl::parameter<float>& p) {
        after.insert(after.end(), p.grad.begin(), p.grad.end());
    }, "");
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i] == doctest::Approx(before[i]).epsilon(1e-6));
    CHECK_THROWS_WITH(ssl::dist::gradient_averager<float>(three, 0), doctest::Contains("bucket_elements must be positive"));
}

TEST_CASE("nt_xent: no communicator or one rank is the one-process loss, bit for bit") {
    ssl::tensor<float> z1({6, 4}), z2({6, 4});
    for (std::size_t i = 0; i < z1.numel(); ++i) {
        z1[i] = static_cast<float>((i * 37) % 11) - 5.0f;
        z2[i] = static_cast<float>((i * 53) % 13) - 6.0f;
    }
    ssl::loss::nt_xent<float> l({.temperature = 0.3});
    const auto a = l(z1, z2);
    const auto b = l(z1, z2, nullptr);
    const auto c = l(z1, z2, &ssl::dist::single());
    CHECK(a.value == b.value);
    CHECK(a.value == c.value);
    CHECK(std::vector<float>(a.grad_z1.begin(), a.grad_z1.end()) == std::vector<float>(c.grad_z1.begin(), c.grad_z1.end()));
}

}  // namespace test_dist_communicator

// Which policies declare that P ranks equal one process (dist/data_parallel.hpp).
static_assert(ssl::dist::declares_data_parallel<ssl::loss::contrastive_pair>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::pretext_classification>);
static_assert(ssl::dist::declares_data_parallel<ssl::target::none>);
static_assert(ssl::dist::declares_data_parallel<ssl::target::ema>);
static_assert(ssl::dist::declares_data_parallel<ssl::target::queue>);  // global shuffle BN, replicated queue
static_assert(ssl::dist::declares_data_parallel<ssl::loss::info_nce_queue>);
static_assert(ssl::dist::declares_data_parallel<ssl::target::memory_bank>);  // replicated bank
static_assert(ssl::dist::declares_data_parallel<ssl::loss::instance_nce>);
static_assert(!ssl::dist::declares_data_parallel<ssl::loss::pirl_nce>);
