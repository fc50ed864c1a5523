// dist/communicator.hpp and dist/data_parallel.hpp in one process (no MPI):
// the single-process communicator, the counting wrapper, the step scope, the
// batch checks, the loader's rank slices and the bucketed gradient average
// (over a "mirror" communicator that plays P identical ranks). The P-rank
// behaviour itself is tested under mpirun (tests/mpi, label dist).
#include <doctest/doctest.h>
#include <ssl/loss/cluster_losses.hpp>
#include <ssl/loss/colorization.hpp>
#include <ssl/loss/cpc.hpp>
#include <ssl/loss/info_nce.hpp>
#include <ssl/loss/instance_classifier.hpp>
#include <ssl/loss/mask_bce.hpp>
#include <ssl/loss/multitask.hpp>
#include <ssl/loss/nce.hpp>
#include <ssl/loss/pirl_nce.hpp>
#include <ssl/loss/policies.hpp>
#include <ssl/loss/split_brain.hpp>
#include <ssl/target_update/cluster.hpp>
#include <ssl/target_update/ema.hpp>
#include <ssl/target_update/hierarchical_cluster.hpp>
#include <ssl/target_update/memory_bank.hpp>
#include <ssl/target_update/none.hpp>
#include <ssl/target_update/queue.hpp>
#include <ssl/target_update/sinkhorn.hpp>

#include <ssl/data/loader.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/dist/communicator.hpp>
#include <ssl/dist/data_parallel.hpp>
#include <ssl/loss/nt_xent.hpp>
#include <ssl/nn/linear.hpp>

#include <cmath>
#include <cstring>
#include <memory>
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
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
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

TEST_CASE("data parallel leaves parameters that are not replicated (a rank's shards) alone") {
    ssl::nn::linear<float> a({5, 3}, 1), b({40, 2}, 2);
    two_layers m{a, b};
    std::size_t own = 0;
    b.for_each_parameter([&](const std::string&, ssl::parameter<float>& p) {
        p.replicated = false;
        p.grad.fill(2.0f);
        own += p.value.numel();
    }, "");
    mirror three(3);
    ssl::dist::counting c(three);
    ssl::dist::gradient_averager<float> avg(c, 1000);
    avg(m);
    CHECK(c.bytes == (15 + 3) * sizeof(float));  // a's gradient only
    b.for_each_parameter([&](const std::string&, ssl::parameter<float>& p) {
        for (float g : p.grad) CHECK(g == 2.0f);
    }, "");
    c.bytes = 0;
    ssl::dist::broadcast_state(m, c);
    CHECK(c.bytes == (15 + 3) * sizeof(float));
    CHECK(own == 82);
}

namespace {
/// Rank `r` of `p` ranks that never communicates (distribute() needs none).
class silent_rank final : public ssl::dist::communicator {
public:
    silent_rank(int r, int p) : r_(r), p_(p) {}
    int rank() const noexcept override { return r_; }
    int size() const noexcept override { return p_; }
    std::string name() const override { return "silent"; }
    void allreduce_sum(void*, std::size_t, ssl::dist::dtype) override { FAIL("no collective expected"); }
    void allreduce_max(void*, std::size_t, ssl::dist::dtype) override { FAIL("no collective expected"); }
    void allgather(const void*, void*, std::size_t, ssl::dist::dtype) override { FAIL("no collective expected"); }
    void reduce_scatter_sum(const void*, void*, std::size_t, ssl::dist::dtype) override { FAIL("no collective expected"); }
    void all_to_all(const void*, void*, std::size_t, ssl::dist::dtype) override { FAIL("no collective expected"); }
    void broadcast(void*, std::size_t, ssl::dist::dtype, int) override { FAIL("no collective expected"); }
    void barrier() override {}

private:
    int r_, p_;
};
}  // namespace

TEST_CASE("instance_classifier::distribute: rank r keeps global shards r, r + P, ... under their global names") {
    const ssl::loss::instance_classifier_config cfg{.instances = 23, .shard_rows = 4, .raw_feature_init = false, .seed = 9};
    ssl::loss::instance_classifier whole(cfg, 6);
    REQUIRE(whole.shard_count() == 6);
    ssl::loss::instance_classifier part(cfg, 6);
    silent_rank r1(1, 4);
    part.distribute(r1);
    REQUIRE(part.shard_count() == 2);  // shards 1 and 5 (classes 4-7 and 20-22)
    CHECK(part.shard_index(0) == 1);
    CHECK(part.shard_index(1) == 5);
    std::vector<std::string> names;
    part.for_each_parameter([&](const std::string& n, ssl::parameter<float>& p) {
        names.push_back(n);
        CHECK_FALSE(p.replicated);
    }, "loss");
    CHECK(names == std::vector<std::string>{"loss.classifier.shard_001", "loss.classifier.shard_005"});
    // the same random rows as the whole classifier (one stream per global shard)
    for (std::size_t j : {std::size_t(4), std::size_t(7), std::size_t(20), std::size_t(22)}) {
        CHECK(part.holds(j));
        CHECK(std::memcmp(part.row(j), whole.row(j), 6 * sizeof(float)) == 0);
    }
    CHECK_FALSE(part.holds(0));
    CHECK_THROWS_WITH(part.row(8), doctest::Contains("held by another rank"));
    CHECK_THROWS_WITH(part.distribute(r1), doctest::Contains("already"));
    // set_rows writes only the rows held here
    ssl::tensor<float> f({23, 6});
    f.fill(1.0f);
    part.set_rows(f, 0);
    CHECK(part.row(21)[0] == doctest::Approx(1.0 / std::sqrt(6.0)));
    // one rank: nothing changes
    ssl::loss::instance_classifier same(cfg, 6);
    same.distribute(ssl::dist::single());
    CHECK(same.shard_count() == 6);
}

TEST_CASE("instance_ce: shards given with their first classes, in any order, give the contiguous result") {
    const std::size_t N = 13, D = 4, R = 5, B = 6;
    std::vector<std::unique_ptr<ssl::parameter<double>>> w, v;
    for (std::size_t f = 0; f < N; f += R) {
        const std::size_t r = std::min(R, N - f);
        w.push_back(std::make_unique<ssl::parameter<double>>(ssl::shape_t{r, D}, ssl::param_role::weight));
        for (std::size_t i = 0; i < r * D; ++i) w.back()->value[i] = std::sin(static_cast<double>(f * D + i) * 1.3);
    }
    for (std::size_t s : {std::size_t(2), std::size_t(0), std::size_t(1)}) {
        v.push_back(std::make_unique<ssl::parameter<double>>(w[s]->value.shape(), ssl::param_role::weight));
        v.back()->value.assign(w[s]->value);
    }
    ssl::tensor<double> F({B, D});
    for (std::size_t i = 0; i < F.numel(); ++i) F[i] = std::cos(static_cast<double>(i) * 0.7);
    const std::vector<std::int64_t> y{0, 12, 5, 7, 3, 10};
    const ssl::loss::instance_ce<double> ce({.temperature = 0.4, .top_k = 3, .block_columns = 2});
    const auto a = ce(F, std::vector<ssl::parameter<double>*>{w[0].get(), w[1].get(), w[2].get()}, y);
    const std::vector<std::size_t> first{10, 0, 5};
    const ssl::loss::instance_ce_ranks layout{.comm = nullptr, .first = first, .instances = N};
    const auto b = ce(F, std::vector<ssl::parameter<double>*>{v[0].get(), v[1].get(), v[2].get()}, y, {.ranks = &layout});
    CHECK(b.value == doctest::Approx(a.value).epsilon(1e-13));
    CHECK(b.hardest == a.hardest);
    CHECK(b.correct == a.correct);
    for (std::size_t i = 0; i < a.grad_features.numel(); ++i)
        CHECK(b.grad_features[i] == doctest::Approx(a.grad_features[i]).epsilon(1e-12));
    for (std::size_t q = 0; q < 3; ++q) {
        const std::size_t s = std::vector<std::size_t>{2, 0, 1}[q];
        for (std::size_t i = 0; i < w[s]->grad.numel(); ++i)
            CHECK(v[q]->grad[i] == doctest::Approx(w[s]->grad[i]).epsilon(1e-12));
    }
    const std::vector<std::size_t> bad{10, 0, 9};  // shard 2 would hold classes 9-13 of 13
    const ssl::loss::instance_ce_ranks wrong{.comm = nullptr, .first = bad, .instances = N};
    CHECK_THROWS_WITH_AS(ce(F, std::vector<ssl::parameter<double>*>{v[0].get(), v[1].get(), v[2].get()}, y, {.ranks = &wrong}),
                         doctest::Contains("holds classes [9, 14) of only 13"), ssl::shape_error);
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
static_assert(ssl::dist::declares_data_parallel<ssl::loss::instance_classifier>);  // replicated or split over ranks
static_assert(ssl::dist::declares_data_parallel<ssl::loss::instance_nce>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::pirl_nce>);  // Z from the global batch's f
static_assert(ssl::dist::declares_data_parallel<ssl::loss::cpc_nce>);   // negatives from every rank's patches
static_assert(ssl::dist::declares_data_parallel<ssl::loss::colorization_kl>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::split_brain_ce>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::mask_bce>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::multitask_loss>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::pseudo_label_classification<float>>);
static_assert(ssl::dist::declares_data_parallel<ssl::loss::hierarchical_classification<float>>);
static_assert(ssl::dist::declares_data_parallel<ssl::target::cluster_reassignment>);  // the pass split, labels broadcast
static_assert(ssl::dist::declares_data_parallel<ssl::target::sinkhorn_labels>);
static_assert(ssl::dist::declares_data_parallel<ssl::target::hierarchical_clusters>);
