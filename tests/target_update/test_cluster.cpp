// DeepCluster's target update (k-means reassignment, uniform sampler, head
// re-initialisation, checkpointed labels) and DeeperCluster's hierarchical
// one (target arithmetic, two-level labels).
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/deepcluster.hpp>
#include <ssl/deepercluster.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/target_update/cluster.hpp>
#include <ssl/target_update/hierarchical_cluster.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

namespace test_cluster {  // each file in its own namespace: an area builds as one unity translation unit

namespace {

const ssl::resnet_options tiny_net{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};

ssl::data::image_dataset make_set(std::size_t n, std::uint64_t seed = 1) {
    auto d = ssl::data::synthetic({.size = n, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                   .seed = seed})
                 .to_dataset();
    d.name = "synthetic";
    return d;
}

std::vector<float> values_of(auto& head) {
    std::vector<float> v;
    head.for_each_parameter([&](const std::string&, auto& p) { v.insert(v.end(), p.value.begin(), p.value.end()); },
                            "");
    return v;
}

std::vector<float> head_values(auto& m) { return values_of(m.head()); }

/// The head a method re-initialised with the seed the target asked for at
/// (seed, epoch) holds: what Head(config, in, reinit_seed) builds.
template <class M>
std::vector<float> reinitialised_head(M& m, std::uint64_t seed, std::size_t epoch) {
    typename M::head_type h(m.cfg().head, m.backbone().output_dim(), ssl::target::detail::reinit_seed(seed, epoch));
    return values_of(h);
}

std::vector<std::int64_t> as_vector(const ssl::tensor<std::int64_t>& t) { return {t.begin(), t.end()}; }

}  // namespace

TEST_CASE("uniform_label_order: N entries, an equal share per non-empty cluster, deterministic") {
    // 3 clusters of sizes 1, 4 and 15; label -1 (unassigned) is never drawn
    std::vector<std::int64_t> labels;
    for (int i = 0; i < 15; ++i) labels.push_back(7);
    for (int i = 0; i < 4; ++i) labels.push_back(2);
    labels.push_back(0);
    labels.push_back(-1);
    const std::size_t n = labels.size();  // 21
    auto o = ssl::target::uniform_label_order(labels, n, 5, 0);
    REQUIRE(o.size() == n);
    std::map<std::int64_t, std::size_t> count;
    for (auto i : o) {
        REQUIRE(i < n);
        ++count[labels[i]];
    }
    CHECK(count.count(-1) == 0);
    REQUIRE(count.size() == 3);
    for (auto& [label, c] : count) CHECK((c == 7));  // 21 / 3
    // the big cluster gives 7 distinct members; the singleton repeats
    std::set<std::size_t> big;
    for (auto i : o)
        if (labels[i] == 7) big.insert(i);
    CHECK(big.size() == 7);
    // a small cluster is covered as evenly as possible: 7 draws from 4 members, each 1 or 2 times
    std::map<std::size_t, int> small;
    for (auto i : o)
        if (labels[i] == 2) ++small[i];
    CHECK(small.size() == 4);
    for (auto& [i, c] : small) CHECK((c == 1 || c == 2));
    // a pure function of (labels, count, seed, epoch)
    CHECK(ssl::target::uniform_label_order(labels, n, 5, 0) == o);
    CHECK(ssl::target::uniform_label_order(labels, n, 5, 1) != o);
    CHECK(ssl::target::uniform_label_order(labels, n, 6, 0) != o);
    // shares that do not divide: differ by at most one
    auto o2 = ssl::target::uniform_label_order(labels, 20, 5, 3);
    CHECK(o2.size() == 20);
    std::map<std::int64_t, std::size_t> c2;
    for (auto i : o2) ++c2[labels[i]];
    for (auto& [label, c] : c2) CHECK((c == 6 || c == 7));
    CHECK_THROWS_AS(ssl::target::uniform_label_order(std::vector<std::int64_t>{-1, -1}, 2, 0, 0), ssl::value_error);
}

TEST_CASE("cluster_reassignment: k-means labels, head re-initialised, uniform order; every R epochs") {
    auto data = make_set(96);
    auto c = ssl::deepcluster_config(tiny_net, 16, 1, data.size());
    c.head = {6};
    c.target.reassign_every = 2;
    c.target.kmeans_iterations = 5;
    ssl::deepcluster<> m(c);
    CHECK(m.target().clusters() == 6);
    REQUIRE(m.target().labels().shape() == ssl::shape_t{96});
    CHECK(m.target().labels()[0] == -1);
    CHECK_THROWS_WITH_AS(m.target().targets({ssl::tensor<float>::zeros({2, 1, 16, 16})}, std::vector<std::size_t>{0, 1}),
                         doctest::Contains("no pseudo-labels yet"), ssl::value_error);

    const auto h0 = head_values(m);
    std::vector<const void*> addr0;
    m.head().for_each_parameter([&](const std::string&, auto& p) { addr0.push_back(&p); }, "");
    auto plan = m.begin_epoch(data, 0, 3);
    const auto l0 = as_vector(m.target().labels());
    for (auto v : l0) CHECK((v >= 0 && v < 6));
    REQUIRE(m.target().last_reassignment().has_value());
    CHECK(m.target().last_reassignment()->nonempty <= 6);
    CHECK_FALSE(m.target().last_reassignment()->nmi_prev.has_value());  // the first assignment
    // the head was re-initialised in place and its optimizer state is to be reset
    CHECK(head_values(m) != h0);
    std::vector<const void*> addr1;
    m.head().for_each_parameter([&](const std::string&, auto& p) { addr1.push_back(&p); }, "");
    CHECK(addr0 == addr1);
    CHECK(head_values(m) == reinitialised_head(m, 3, 0));  // rebuilt with the seed the target asked for
    CHECK(plan.reset_optimizer_state == std::vector<std::string>{"head"});
    // the order: N entries, uniform over the pseudo-labels
    REQUIRE(plan.order.has_value());
    CHECK(plan.order->size() == 96);
    std::map<std::int64_t, std::size_t> count;
    for (auto i : *plan.order) ++count[l0[i]];
    const std::size_t nonempty = count.size();
    for (auto& [label, n] : count) CHECK((n == 96 / nonempty || n == 96 / nonempty + 1));
    // targets: the batch's labels
    auto t = m.target().targets({ssl::tensor<float>::zeros({3, 1, 16, 16})}, std::vector<std::size_t>{5, 0, 95});
    CHECK(t.labels == std::vector<std::int64_t>{l0[5], l0[0], l0[95]});
    CHECK(t.heads == 1);

    // epoch 1 (R = 2): no reassignment, the same labels, the head untouched, a new order
    const auto h1 = head_values(m);
    auto plan1 = m.begin_epoch(data, 1, 3);
    CHECK(as_vector(m.target().labels()) == l0);
    CHECK(head_values(m) == h1);
    CHECK(plan1.reset_optimizer_state.empty());
    REQUIRE(plan1.order.has_value());
    CHECK(*plan1.order != *plan.order);
    // epoch 2: reassignment again, NMI with the previous assignment reported
    auto plan2 = m.begin_epoch(data, 2, 3);
    CHECK(head_values(m) == reinitialised_head(m, 3, 2));
    CHECK(plan2.reset_optimizer_state == std::vector<std::string>{"head"});
    REQUIRE(m.target().last_reassignment()->nmi_prev.has_value());
    const double nmi = *m.target().last_reassignment()->nmi_prev;
    CHECK((nmi >= 0 && nmi <= 1));
    auto t2 = m.target().targets({ssl::tensor<float>::zeros({1, 1, 16, 16})}, std::vector<std::size_t>{1});
    REQUIRE(t2.metrics.size() == 1);
    CHECK(t2.metrics[0].first == "nmi_prev");
    // resumed in the middle of a due epoch: the restored labels are used, not recomputed
    const auto l2 = as_vector(m.target().labels());
    const auto h2 = head_values(m);
    auto plan4 = m.begin_epoch(data, 4, 3, /*resumed_mid_epoch=*/true);
    CHECK(as_vector(m.target().labels()) == l2);
    CHECK(head_values(m) == h2);
    CHECK(plan4.reset_optimizer_state.empty());
    CHECK(plan4.order == ssl::target::uniform_label_order(l2, 96, 3, 4));
}

TEST_CASE("cluster_reassignment: the target asks for the head's re-initialisation, never writes into the head") {
    auto data = make_set(48);
    auto c = ssl::deepcluster_config(tiny_net, 16, 1, data.size());
    c.head = {4};
    c.target.kmeans_iterations = 3;
    ssl::deepcluster<> m(c);
    const auto h0 = head_values(m);
    // the target's own begin_epoch: labels and a request, the head untouched
    ssl::epoch_context<decltype(m)::backbone_type, decltype(m)::head_type> ctx{
        m.backbone(), m.head(), m.backbone().output_dim(), data, 0, 5, false,
        [&](const ssl::tensor<float>& x) { return m.augmentation().eval_transform(x); }};
    auto plan = m.target().begin_epoch(ctx);
    REQUIRE(plan.reinit_head.has_value());
    CHECK(*plan.reinit_head == ssl::target::detail::reinit_seed(5, 0));
    CHECK(plan.reset_optimizer_state.empty());  // the method fills it, not the policy
    CHECK(head_values(m) == h0);
    CHECK(m.target().labels()[0] >= 0);
    // without reinit_head, the method's plan re-initialises nothing
    auto c2 = c;
    c2.target.reinit_head = false;
    ssl::deepcluster<> keep(c2);
    const auto k0 = head_values(keep);
    auto plan2 = keep.begin_epoch(data, 0, 5);
    CHECK_FALSE(plan2.reinit_head.has_value());
    CHECK(plan2.reset_optimizer_state.empty());
    CHECK(head_values(keep) == k0);
}

TEST_CASE("cluster_reassignment: instance count errors, labels restored by a checkpoint round trip") {
    auto data = make_set(64);
    auto c = ssl::deepcluster_config(tiny_net, 16, 1, 50);  // wrong size
    c.head = {4};
    ssl::deepcluster<> wrong(c);
    CHECK_THROWS_WITH_AS(wrong.begin_epoch(data, 0, 0), doctest::Contains("for 50 images"), ssl::shape_error);

    c.target.instances = 64;
    ssl::deepcluster<> m(c);
    m.begin_epoch(data, 0, 7);
    const auto labels = as_vector(m.target().labels());
    const auto path = std::filesystem::temp_directory_path() / ("ssl_dc_ckpt_" + std::to_string(::getpid()) + ".safetensors");
    ssl::save_checkpoint(path, m);
    ssl::deepcluster<> fresh(c);
    CHECK(fresh.target().labels()[0] == -1);
    ssl::load_checkpoint(path, fresh);
    CHECK(as_vector(fresh.target().labels()) == labels);
    CHECK(head_values(fresh) == head_values(m));
    // without the instance count the state has no place for the labels
    auto c0 = c;
    c0.target.instances = 0;
    ssl::deepcluster<> unsized(c0);
    CHECK_THROWS_WITH_AS(ssl::load_checkpoint(path, unsized), doctest::Contains("target.labels"), ssl::io_error);
    // another data-set size in the checkpoint: the shapes are named
    auto c2 = c;
    c2.target.instances = 65;
    ssl::deepcluster<> other(c2);
    CHECK_THROWS_WITH_AS(ssl::load_checkpoint(path, other), doctest::Contains("target.labels"), ssl::io_error);
    std::filesystem::remove(path);
}

TEST_CASE("hierarchical targets: super = rotation * m + c1, sub = c2, rotation-major rows (hand example)") {
    // m = 3 level-1 clusters, k2 = 5, a batch of 2 images with (c1, c2) = (2, 4) and (0, 1)
    auto t = ssl::target::hierarchical_batch_targets(std::vector<std::int64_t>{2, 0}, std::vector<std::int64_t>{4, 1},
                                                     4, 3, 5);
    CHECK(t.super_classes == 12);
    CHECK(t.sub_classes == 5);
    CHECK(t.clusters == 3);
    // rows: rotation 0 (images 0, 1), rotation 1, rotation 2, rotation 3
    CHECK(t.super == std::vector<std::int64_t>{2, 0, 5, 3, 8, 6, 11, 9});
    CHECK(t.sub == std::vector<std::int64_t>{4, 1, 4, 1, 4, 1, 4, 1});
}

TEST_CASE("hierarchical_clusters: two-level k-means, leaves sampled uniformly, head re-initialised") {
    auto data = make_set(96);
    auto c = ssl::deepercluster_config(tiny_net, 16, 1, data.size());
    c.head = {.super_classes = 8, .sub_classes = 3};  // m = 2
    c.target.kmeans_iterations = 5;
    ssl::deepercluster<> m(c);
    CHECK(m.target().clusters() == 2);
    CHECK(m.target().sub_clusters() == 3);
    const auto h0 = head_values(m);
    auto plan = m.begin_epoch(data, 0, 11);
    CHECK(head_values(m) != h0);
    CHECK(head_values(m) == reinitialised_head(m, 11, 0));
    CHECK(plan.reset_optimizer_state == std::vector<std::string>{"head"});
    const auto c1 = as_vector(m.target().level1()), c2 = as_vector(m.target().level2());
    for (std::size_t i = 0; i < 96; ++i) {
        CHECK((c1[i] >= 0 && c1[i] < 2));
        CHECK((c2[i] >= 0 && c2[i] < 3));
    }
    REQUIRE(plan.order.has_value());
    CHECK(plan.order->size() == 96);
    std::map<std::int64_t, std::size_t> leaves;
    for (auto i : *plan.order) ++leaves[c1[i] * 3 + c2[i]];
    for (auto& [leaf, n] : leaves) CHECK((n == 96 / leaves.size() || n == 96 / leaves.size() + 1));
    // targets of a rotated batch of 2 images: 8 rows
    const std::vector<std::size_t> ids{4, 9};
    auto t = m.target().targets({ssl::tensor<float>::zeros({8, 1, 16, 16})}, ids);
    REQUIRE(t.super.size() == 8);
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t i = 0; i < 2; ++i) {
            CHECK(t.super[r * 2 + i] == static_cast<std::int64_t>(r * 2) + c1[ids[i]]);
            CHECK(t.sub[r * 2 + i] == c2[ids[i]]);
        }
    CHECK_THROWS_AS(m.target().targets({ssl::tensor<float>::zeros({2, 1, 16, 16})}, ids), ssl::shape_error);
    // checkpoint names
    std::vector<std::string> names;
    m.target().for_each_state([&](const std::string& n, auto&) { names.push_back(n); }, "target");
    CHECK(names == std::vector<std::string>{"target.clusters", "target.sub_clusters"});
    // not due at epoch 1 (every 3 epochs)
    const auto h1 = head_values(m);
    auto plan1 = m.begin_epoch(data, 1, 11);
    CHECK(head_values(m) == h1);
    CHECK(as_vector(m.target().level1()) == c1);
    CHECK(plan1.reset_optimizer_state.empty());
}

}  // namespace test_cluster
