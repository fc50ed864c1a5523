// The hybrid-parallel instance classifier (issue 22; the one-million-way
// paper's section 3.1): the classifier's shards spread over the ranks, the
// features and ids gathered, the softmax merged by allreduce, the hardest
// classes merged across ranks, the feature gradient reduce-scattered. On P
// ranks the loss, the feature gradient of each rank's rows, every shard's
// weight gradient and the hardest classes equal one process on the global
// batch; shard counts not divisible by P, a rank without shards, exact ties
// across ranks; the bytes each rank sends against the formula; and
// ssl::instance_cls trained by ssl::trainer on P ranks against one process.
#include <doctest/doctest.h>

#include "reproducible.hpp"

#include <ssl/data/synthetic.hpp>
#include <ssl/dist/data_parallel.hpp>
#include <ssl/dist/mpi.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/loss/instance_ce.hpp>
#include <ssl/trainer.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace test_mpi_instance_classifier {

namespace {

using test_mpi::value_at;

/// N classes of dimension D in shards of R rows (every rank builds the same).
template <class T>
std::vector<std::unique_ptr<ssl::parameter<T>>> classifier(std::size_t N, std::size_t D, std::size_t R,
                                                           std::uint64_t seed) {
    std::vector<std::unique_ptr<ssl::parameter<T>>> w;
    for (std::size_t f = 0; f < N; f += R) {
        const std::size_t r = std::min(R, N - f);
        auto p = std::make_unique<ssl::parameter<T>>(ssl::shape_t{r, D}, ssl::param_role::weight);
        for (std::size_t i = 0; i < r * D; ++i) p->value[i] = static_cast<T>(value_at(f * D + i, seed));
        w.push_back(std::move(p));
    }
    return w;
}

template <class T>
std::vector<ssl::parameter<T>*> pointers(const std::vector<std::unique_ptr<ssl::parameter<T>>>& w) {
    std::vector<ssl::parameter<T>*> v;
    for (const auto& p : w) v.push_back(p.get());
    return v;
}

struct layout {
    std::size_t N, D, R, B;
};

/// One process on the global batch against P ranks (shard s on rank s % P),
/// for float or double; `tie` copies class 1's row into the last class (on
/// another rank for P > 1) so that two classes tie exactly in every row.
template <class T>
void equals_one_process(const layout& L, const ssl::loss::instance_ce_config& cfg, bool tie, double tol) {
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size()), me = static_cast<std::size_t>(c.rank());
    CAPTURE(P);
    REQUIRE(L.B % P == 0);
    const std::size_t b = L.B / P;
    auto whole = classifier<T>(L.N, L.D, L.R, 7);
    if (tie) {
        auto& last = *whole.back();
        const std::size_t r = last.value.dim(0) - 1;
        for (std::size_t d = 0; d < L.D; ++d) last.value[r * L.D + d] = whole[0]->value[1 * L.D + d];
    }
    ssl::tensor<T> F({L.B, L.D});
    for (std::size_t i = 0; i < F.numel(); ++i) F[i] = static_cast<T>(value_at(i, 11));
    std::vector<std::int64_t> y(L.B);
    for (std::size_t i = 0; i < L.B; ++i) y[i] = static_cast<std::int64_t>((i * 7 + 3) % L.N);

    const ssl::loss::instance_ce<T> ce(cfg);
    const auto one = ce(F, pointers(whole), y, {.grad_scale = 1.0 / static_cast<double>(L.B)});

    // this rank's shards (copies of the same weights), rows and labels
    std::vector<std::unique_ptr<ssl::parameter<T>>> mine;
    std::vector<std::size_t> first, global;
    for (std::size_t s = 0; s < whole.size(); ++s)
        if (s % P == me) {
            mine.push_back(std::make_unique<ssl::parameter<T>>(whole[s]->value.shape(), ssl::param_role::weight));
            mine.back()->value.assign(whole[s]->value);
            first.push_back(s * L.R);
            global.push_back(s);
        }
    const ssl::tensor<T> Fr = F.slice(me * b, (me + 1) * b).clone();
    const std::vector<std::int64_t> yr(y.begin() + static_cast<std::ptrdiff_t>(me * b),
                                       y.begin() + static_cast<std::ptrdiff_t>((me + 1) * b));
    const ssl::loss::instance_ce_ranks ranks{.comm = &c, .first = first, .instances = L.N};
    ssl::dist::counting counter(c);
    const ssl::loss::instance_ce_ranks counted{.comm = &counter, .first = first, .instances = L.N};
    const auto many = ce(Fr, pointers(mine), yr, {.ranks = P > 1 ? &counted : &ranks});

    // the loss: the mean over ranks of each rank's mean is the global mean
    CHECK(std::abs(ssl::dist::mean_over_ranks(c, many.value) - one.value) <= tol * (1 + std::abs(one.value)));
    CHECK(c.sum(static_cast<std::int64_t>(many.correct)) == static_cast<std::int64_t>(one.correct));
    // this rank's hardest classes are the one-process rows' (ties: the smaller class first)
    REQUIRE(many.k == one.k);
    REQUIRE(many.hardest.size() == b * one.k);
    for (std::size_t i = 0; i < b * one.k; ++i) CHECK(many.hardest[i] == one.hardest[me * b * one.k + i]);
    if (tie) {  // class 1 and the last class tie; where both are among a row's hardest, 1 comes first
        std::size_t both = 0;
        for (std::size_t i = 0; i < b; ++i) {
            const auto* h = many.hardest.data() + i * one.k;
            const auto at = [&](std::int64_t j) { return std::find(h, h + one.k, j) - h; };
            const auto a = at(1), z = at(static_cast<std::int64_t>(L.N - 1));
            if (a < static_cast<std::ptrdiff_t>(one.k) && z < static_cast<std::ptrdiff_t>(one.k)) {
                ++both;
                CHECK(a + 1 == z);
            }
        }
        if (one.k + 1 >= L.N) CHECK(c.sum(static_cast<std::int64_t>(both)) > 0);  // every row saw the tie
    }
    // dL/dF of this rank's rows: P x the global mean's (the data-parallel convention)
    double worst_f = 0, worst_w = 0;
    for (std::size_t i = 0; i < b * L.D; ++i) {
        const double want = static_cast<double>(one.grad_features[me * b * L.D + i]) * static_cast<double>(P);
        worst_f = std::max(worst_f, std::abs(static_cast<double>(many.grad_features[i]) - want) / (1 + std::abs(want)));
    }
    // each shard's weight gradient, on its rank only: the global mean's, never reduced
    for (std::size_t q = 0; q < mine.size(); ++q) {
        const auto& g1 = whole[global[q]]->grad;
        for (std::size_t i = 0; i < g1.numel(); ++i)
            worst_w = std::max(worst_w, std::abs(static_cast<double>(mine[q]->grad[i]) - static_cast<double>(g1[i])) /
                                            (1 + std::abs(static_cast<double>(g1[i]))));
    }
    CHECK(worst_f <= tol);
    CHECK(worst_w <= tol);

    if (P > 1) {  // the bytes this rank sent: 20 + T b D + 8 b + 24 B + 16 B kh + T B D
        const std::size_t kh = std::max<std::size_t>(one.k, 1);
        const std::size_t want = 20 + sizeof(T) * b * L.D + 8 * b + 24 * L.B + 16 * L.B * kh + sizeof(T) * L.B * L.D;
        CHECK(counter.bytes == want);
        CHECK(counter.calls == 10);
    }
}

}  // namespace

TEST_CASE("hybrid parallel instance_ce: P ranks equal one process (shards not divisible by P, double and float)") {
    // 29 classes in shards of 4: 8 shards (the last of 1 row): 2 ranks take 4
    // each, 4 ranks 2 each; shards of 6: 5 shards, indivisible by 2 and 4
    for (std::size_t R : {std::size_t(4), std::size_t(6)}) {
        CAPTURE(R);
        equals_one_process<double>({.N = 29, .D = 5, .R = R, .B = 8},
                                   {.temperature = 0.3, .top_k = 4, .smoothing = 0.2, .block_columns = 3}, false, 1e-12);
        equals_one_process<float>({.N = 29, .D = 5, .R = R, .B = 8},
                                  {.temperature = 0.3, .top_k = 4, .smoothing = 0.2, .block_columns = 3}, false, 2e-6);
    }
}

TEST_CASE("hybrid parallel instance_ce: a rank without shards, plain cross entropy, exact ties across ranks") {
    // 3 shards on 4 ranks: rank 3 holds none and still takes part
    equals_one_process<double>({.N = 9, .D = 4, .R = 3, .B = 8}, {.temperature = 0.5, .top_k = 0}, false, 1e-12);
    equals_one_process<double>({.N = 9, .D = 4, .R = 3, .B = 8}, {.temperature = 0.5, .top_k = 3}, false, 1e-12);
    equals_one_process<double>({.N = 17, .D = 3, .R = 5, .B = 8}, {.temperature = 0.2, .top_k = 16}, true, 1e-12);
    equals_one_process<double>({.N = 17, .D = 3, .R = 5, .B = 8}, {.temperature = 0.2, .top_k = 5}, true, 1e-12);
}

TEST_CASE("hybrid parallel instance_ce: ranks with different local batches are refused on every rank") {
    ssl::dist::mpi c;
    if (c.size() == 1) return;
    auto w = classifier<float>(10, 4, 5, 3);
    const std::size_t b = c.rank() == 0 ? 3 : 2;
    ssl::tensor<float> F = ssl::tensor<float>::zeros({b, 4});
    F.fill(1.0f);
    std::vector<std::int64_t> y(b, 0);
    std::vector<ssl::parameter<float>*> mine;
    std::vector<std::size_t> first;
    for (std::size_t s = 0; s < w.size(); ++s)
        if (s % static_cast<std::size_t>(c.size()) == static_cast<std::size_t>(c.rank()))
            mine.push_back(w[s].get()), first.push_back(s * 5);
    const ssl::loss::instance_ce_ranks ranks{.comm = &c, .first = first, .instances = 10};
    CHECK_THROWS_WITH_AS(ssl::loss::instance_ce<float>()(F, mine, y, {.ranks = &ranks}),
                         doctest::Contains("every rank needs the same local batch"), ssl::shape_error);
}

// ---------------------------------------------------------------------------
// ssl::instance_cls trained on P ranks: the classifier split over the ranks.

namespace {

const ssl::resnet_options tiny{.in_channels = 1, .width = 4, .stem = ssl::stem::cifar, .seed = 1};

const ssl::data::image_dataset& images() {
    static const auto d = ssl::data::synthetic({.size = 40, .classes = 4, .channels = 1, .height = 16, .width = 16,
                                                .noise = 0.2, .seed = 5})
                              .to_dataset();
    return d;
}

using method_t = ssl::instance_cls<>;

struct named_state {
    std::vector<double> losses;
    std::map<std::string, std::vector<float>> values;  // every parameter and float buffer held here
};

/// nudge != 0: every initial network parameter moved by about one float
/// rounding (1e-7 relative), the yardstick of what rounding alone does.
/// out: checkpoints there (resume: continue from its last.safetensors).
named_state fit(std::size_t steps, ssl::dist::communicator* comm, double nudge = 0,
                const std::filesystem::path& out = {}, bool resume = false, std::size_t shard_rows = 7) {
    auto cfg = ssl::instance_cls_config(tiny, 16, 1, images().size());
    cfg.head = {32, 16, true};
    cfg.loss.shard_rows = shard_rows;  // 7: 40 classes in 6 shards, indivisible by 4
    cfg.loss.init_chunk = 16;
    method_t m(cfg);
    if (nudge != 0) {
        std::size_t q = 0;
        m.for_each_parameter([&](const std::string&, auto& p) {
            for (auto& v : p.value) v *= static_cast<float>(1 + 1e-7 * std::sin(nudge * static_cast<double>(++q)));
        }, "");
    }
    ssl::trainer_config tc{.epochs = 2, .batch = 8, .optimizer = "sgd", .lr = 0.05, .weight_decay = 1e-4,
                           .warmup_epochs = 0, .seed = 3, .out_dir = out, .resume = resume, .progress = false,
                           .max_steps = steps, .comm = comm};
    ssl::trainer<method_t> t(m, images(), tc);
    named_state s;
    s.losses = t.fit().step_loss;
    m.for_each_parameter([&](const std::string& n, auto& p) { s.values[n].assign(p.value.begin(), p.value.end()); },
                         "");
    m.for_each_buffer(
        [&](const std::string& n, auto& t) {
            if constexpr (std::is_same_v<typename std::remove_cvref_t<decltype(t)>::value_type, float>)
                s.values[n].assign(t.begin(), t.end());
        },
        "");
    return s;
}

/// Largest |a - b| / (1 + |b|) over the tensors `a` holds (b holds them all).
double largest_difference(const named_state& a, const named_state& b) {
    double w = 0;
    for (const auto& [name, v] : a.values) {
        CAPTURE(name);
        REQUIRE(b.values.contains(name));
        const auto& ref = b.values.at(name);
        REQUIRE(ref.size() == v.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            w = std::max(w, std::abs(static_cast<double>(v[i]) - ref[i]) / (1 + std::abs(static_cast<double>(ref[i]))));
    }
    return w;
}

/// What rounding alone does to a one-process run of `steps` steps: the
/// largest difference two 1e-7 nudges of the initial weights make.
double rounding_noise(std::size_t steps, const named_state& one) {
    return std::max(largest_difference(fit(steps, nullptr, 1.0), one), largest_difference(fit(steps, nullptr, 3.7), one));
}

}  // namespace

TEST_CASE("hybrid parallel instance_cls: P ranks train what one process trains; each rank holds its shards only") {
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size());
    CAPTURE(P);
    for (std::size_t steps : {std::size_t(1), std::size_t(3)}) {
        CAPTURE(steps);
        const named_state one = fit(steps, nullptr);
        const named_state many = fit(steps, &c);
        REQUIRE(many.losses.size() == steps);
        for (std::size_t i = 0; i < steps; ++i)
            CHECK(std::abs(many.losses[i] - one.losses[i]) <= 1e-4 * (1 + std::abs(one.losses[i])));
        std::size_t shards = 0;
        const double w = largest_difference(many, one);
        for (const auto& [name, v] : many.values) {
            if (name.find("classifier.shard_") != std::string::npos) {
                ++shards;  // shard s lives on rank s % P
                const std::size_t s = std::stoul(name.substr(name.rfind('_') + 1));
                CHECK(s % P == static_cast<std::size_t>(c.rank()));
            }
        }
        CHECK(c.sum(static_cast<std::int64_t>(shards)) == 6);  // every shard somewhere, once
        if (steps == 1) {
            CHECK(w <= 2e-5);
            if (c.rank() == 0) MESSAGE("instance_cls on ", P, " ranks, 1 step: largest state difference ", w);
        } else {  // against what rounding alone does in one process (two nudge patterns)
            const double noise = rounding_noise(steps, one);
            if (c.rank() == 0)
                MESSAGE("instance_cls on ", P, " ranks, ", steps, " steps: largest state difference ", w,
                        " (rounding noise ", noise, ")");
            CHECK(w <= std::max(1e-5, 20 * noise));
        }
    }
}

namespace {

/// A folder of its own for this test and rank count, empty, the same path on every rank.
std::filesystem::path fresh_dir(ssl::dist::communicator& c, const std::string& what) {
    const std::int64_t id = c.rank() == 0 ? static_cast<std::int64_t>(::getpid()) : 0;
    const std::int64_t run = c.sum(id);  // rank 0's pid on every rank
    const auto d = std::filesystem::temp_directory_path() /
                   ("ssl-hybrid-" + what + "-np" + std::to_string(c.size()) + "-" + std::to_string(run));
    if (c.rank() == 0) {
        std::filesystem::remove_all(d);
        std::filesystem::create_directories(d);
    }
    c.barrier();
    return d;
}

}  // namespace

TEST_CASE("hybrid parallel instance_cls: checkpoints of the split classifier resume on the same and other rank counts") {
    ssl::dist::mpi c;
    const std::size_t P = static_cast<std::size_t>(c.size());
    CAPTURE(P);
    if (P == 1) return;
    const auto dir = fresh_dir(c, "ckpt");
    // two steps on P ranks (inside the first epoch of 5 steps), each rank writing its shards
    fit(2, &c, 0, dir);
    c.barrier();
    namespace fs = std::filesystem;
    REQUIRE(fs::exists(dir / "last.safetensors"));
    const auto meta = ssl::io::read_safetensors_metadata(dir / "last.safetensors");
    REQUIRE(meta.contains("split_state"));
    CHECK(meta.at("split_state") == "shards/step_000000002");
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir / meta.at("split_state"))) files += e.is_regular_file();
    CHECK(files == 6);  // one per global shard, whoever held it
    // the main file holds no shard
    const auto main_file = ssl::io::read_safetensors(dir / "last.safetensors");
    for (const auto& [name, t] : main_file.tensors) CHECK(name.find("classifier.shard_") == std::string::npos);

    // resumed on P ranks: the uninterrupted P-rank run, exactly
    const named_state straight = fit(3, &c);
    const named_state resumed = fit(3, &c, 0, dir, true);
    REQUIRE(resumed.losses.size() == 1);
    CHECK(resumed.losses[0] == doctest::Approx(straight.losses[2]).epsilon(1e-6));
    CHECK(largest_difference(resumed, straight) <= 1e-6);

    // resumed in one process (each rank on its own copy): every shard read back
    const auto mine = dir.string() + "-rank" + std::to_string(c.rank());
    fs::remove_all(mine);
    c.barrier();
    // the copy is of step 2 (the resume above wrote step 3 into dir): write step 2 again
    const auto two = fresh_dir(c, "ckpt2");
    fit(2, &c, 0, two);
    c.barrier();
    fs::copy(two, mine, fs::copy_options::recursive);
    const named_state alone = fit(3, nullptr, 0, mine, true);
    const named_state one = fit(3, nullptr);
    REQUIRE(alone.losses.size() == 1);
    CHECK(alone.losses[0] == doctest::Approx(straight.losses[2]).epsilon(1e-4));
    // one process from a P-rank checkpoint: within what rounding does to one process
    const double noise = rounding_noise(3, one);
    CHECK(largest_difference(alone, one) <= std::max(1e-5, 20 * noise));
    fs::remove_all(mine);

    // resumed on P ranks from `from` (written at step 2): step 3 as one process's, within rounding
    const auto resumes_close = [&](const std::filesystem::path& from) {
        const named_state r = fit(3, &c, 0, from, true);
        REQUIRE(r.losses.size() == 1);
        CHECK(r.losses[0] == doctest::Approx(one.losses[2]).epsilon(1e-4));
        CHECK(largest_difference(r, one) <= std::max(1e-5, 20 * noise));
    };
    const auto d2 = fresh_dir(c, "ckpt-2to4");
    if (P == 4) {  // written on 2 ranks (a group of the 4), resumed on 4
        auto pair = c.split(c.rank() < 2 ? 0 : 1, c.rank());
        if (c.rank() < 2) fit(2, pair.get(), 0, d2);
        c.barrier();
        resumes_close(d2);
    }
    // written whole by one process (no split), resumed split on P ranks
    const auto whole = fresh_dir(c, "ckpt-whole");
    if (c.rank() == 0) fit(2, nullptr, 0, whole);
    c.barrier();
    resumes_close(whole);

    // fewer shards than ranks (2 of 40 classes each): the ranks without one take part in every write and read
    const auto few = fresh_dir(c, "ckpt-few");
    fit(2, &c, 0, few, false, 20);
    c.barrier();
    const named_state few_resumed = fit(3, &c, 0, few, true, 20);
    const named_state few_straight = fit(3, &c, 0, {}, false, 20);
    REQUIRE(few_resumed.losses.size() == 1);
    CHECK(few_resumed.losses[0] == doctest::Approx(few_straight.losses[2]).epsilon(1e-6));
    CHECK(largest_difference(few_resumed, few_straight) <= 1e-6);

    // a shard's file missing: every rank refuses to resume (none waits), the owner names the file
    c.barrier();
    if (c.rank() == 0) fs::remove(two / "shards" / "step_000000002" / "loss.classifier.shard_001.safetensors");
    c.barrier();
    try {
        fit(3, &c, 0, two, true);
        CHECK(false);
    } catch (const ssl::io_error& e) {
        const std::string m = e.what();
        CAPTURE(m);
        CHECK(m.find(c.rank() == 1 % c.size() ? "shard_001.safetensors' does not exist" : "another rank") !=
              std::string::npos);
    }
    c.barrier();
    if (c.rank() == 0) fs::remove_all(dir), fs::remove_all(two), fs::remove_all(whole), fs::remove_all(few), fs::remove_all(d2);
}

TEST_CASE("the raw-feature initialisation split over the ranks gives every rank the one-process rows, bit for bit") {
    ssl::dist::mpi c;
    for (bool batch_statistics : {true, false}) {
        for (std::size_t chunk : {std::size_t(6), std::size_t(16), std::size_t(64)}) {  // 6 or 7, 2 or 3, 1 chunks
            CAPTURE(batch_statistics);
            CAPTURE(chunk);
            auto cfg = ssl::instance_cls_config(tiny, 16, 1, images().size());
            cfg.head = {32, 16, true};
            cfg.loss.init_chunk = chunk;
            cfg.loss.init_batch_statistics = batch_statistics;
            method_t one(cfg), many(cfg);
            one.begin_epoch(images(), 0, 3);
            many.begin_epoch(images(), 0, 3, false, &c);
            REQUIRE(many.loss().initialised());
            for (std::size_t j = 0; j < images().size(); ++j)
                CHECK(std::memcmp(one.loss().row(j), many.loss().row(j), 16 * sizeof(float)) == 0);
        }
    }
}

TEST_CASE("hybrid parallel instance_cls: shard_over_ranks = false keeps the classifier replicated") {
    ssl::dist::mpi c;
    if (c.size() == 1) return;
    auto cfg = ssl::instance_cls_config(tiny, 16, 1, images().size());
    cfg.head = {32, 16, true};
    method_t r(cfg);
    ssl::trainer_config tc{.epochs = 1, .batch = 8, .progress = false, .max_steps = 1, .comm = &c,
                           .shard_over_ranks = false};
    ssl::trainer<method_t> t(r, images(), tc);
    t.fit();
    std::size_t shards = 0, split = 0;
    r.for_each_parameter([&](const std::string& n, auto& p) {
        shards += n.find("classifier.shard_") != std::string::npos;
        split += !p.replicated;
    }, "");
    CHECK(shards == r.loss().shard_count());
    CHECK(shards >= 1);
    CHECK(split == 0);
}

}  // namespace test_mpi_instance_classifier
