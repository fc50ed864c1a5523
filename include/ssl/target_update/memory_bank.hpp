#pragma once
// Target update "memory bank" of InstDisc (Wu, Xiong, Yu, Lin, "Unsupervised
// Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018,
// sec. 3.1-3.2): one L2-normalised d-dim vector v_i per training instance,
// which the loss compares the online features f_i against (the positive v_i
// and sampled noise rows v_j), and which follows them after each step:
//     v_i <- normalize(m v_i + (1 - m) f_i),   m = 0.5,
// f_i the head's output of view 0 as the loss saw it (before the optimizer's
// update, as lemniscate.pytorch does); it travels to after_step in the batch.
//
// Choices (measurements: bench/README.md, InstDisc):
// - N is a config field (`instances`): the bank has its shape before a
//   checkpoint is restored; begin_epoch checks it against the data set.
// - Rows start uniform in [-a, a], a = sqrt(3 / d), then normalised (every
//   row a unit vector from the start); row i from philox(seed, (tag, i)).
// - Noise: per sample m indices uniform over N with replacement (the paper's
//   P_n), sample b of step t from philox(seed, (tag, t, b)) with Lemire's
//   unbiased draw: independent of threads, identical after a resume.
// - The bank asks for transparent huge pages (random-row gathers miss the
//   TLB less).
// - `written` flags the rows holding a feature: the proximal term applies to
//   those only, and the batch tells NCE whether the bank is full (its Z
//   schedule, loss/nce.hpp, lives in the loss).
// - feature_init (off by default): before epoch 0, row i = the normalised
//   head output of the initial network (the instance classifier's raw-feature
//   initialisation applied to the bank), every row marked written.
// - replace_first (off: the paper's rule): a row's first write stores
//   normalize(f) instead of mixing it with the random initialisation.
//
// - Data parallel (P ranks, dist/data_parallel.hpp): the bank is replicated.
//   Rank r's rows are rows [r n, (r + 1) n) of the global batch and draw the
//   noise of those global rows; after the step every rank writes the
//   all-gathered ids and features of the whole batch, so the banks stay
//   identical and P ranks equal one process.
//
// Checkpointed state ("target.*"): bank (N, d) float, step (1,) I64 (the
// global step the next targets() call draws for), written (N,) U8.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "../dist/communicator.hpp"
#include "../nn/parameter.hpp"
#include "../ops/rows.hpp"
#include "protocol.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ssl::target {

struct memory_bank_config {
    std::size_t instances = 0;     ///< N, the data set size (required; instdisc_config sets it)
    std::size_t dim = 128;         ///< d, the head's output width
    double momentum = 0.5;         ///< m in v_i <- normalize(m v_i + (1 - m) f_i)
    std::size_t negatives = 4096;  ///< noise samples per data sample (0: none, for the full softmax)
    std::uint64_t seed = 0;        ///< bank initialization and noise draws
    /// A row's first write stores normalize(f) instead of mixing f with the
    /// row's random initialization. Off (the paper's rule): measured at 5
    /// epochs on Fashion-MNIST, replacing costs 9 kNN points (bench/README.md):
    /// the random half of the early memories keeps the targets spread.
    bool replace_first = false;
    /// Before the first epoch, row i = the L2-normalised head output of the
    /// initial, untrained network for image i (the instance classifier's
    /// raw-feature initialisation, Liu et al. 2021, applied to the bank), and
    /// every row counts as written. Off: the paper's random rows. See the
    /// file comment.
    /// The bank is then full from the start, so NCE's z_estimate::until_filled
    /// fixes Z from the first batch, measured against the untrained
    /// network's nearly parallel embeddings: pair it with
    /// z_estimate::every_batch (the `ssl` program does).
    bool feature_init = false;
    bool init_batch_statistics = true;  ///< that pass normalises with batch statistics (train mode); false: eval mode
    std::size_t init_chunk = 256;       ///< images per forward of that pass
};

/// The memory bank's batch: what the loss compares against (the bank, the
/// positives, the noise) and what after_step stores (the online features).
/// It references the state's bank and noise buffer (valid until the next
/// targets() call); nothing large is copied.
template <class T = float>
struct bank_targets {
    const tensor<T>* bank = nullptr;        ///< (N, d), unit rows
    std::vector<std::size_t> ids;           ///< (B,) the batch's instance indices: the positives
    std::span<const std::uint32_t> noise;   ///< (B * negatives,) row b's noise at [b m, (b + 1) m)
    std::size_t negatives = 0;              ///< m
    std::span<const std::uint8_t> has_memory;  ///< (N,) 1 where the row holds a feature (written at least once)
    bool filled = false;                    ///< every row holds a feature (NCE's Z: loss/nce.hpp)
    tensor<T> features;                     ///< (B, d) the online output of view 0, stored by after_step
    /// Data parallel only: the global batch's ids and features (every rank's
    /// rows in rank order), which every rank stores; empty in one process.
    std::vector<std::size_t> global_ids;
    tensor<T> global_features;
};

namespace detail {
inline constexpr std::uint64_t bank_init_tag = 0xBA4C1417ull;
inline constexpr std::uint64_t bank_noise_tag = 0xBA4C4015ull;

/// Uniform in [0, n) from 32-bit draws, without bias (Lemire 2019).
inline std::uint32_t below32(philox& g, std::uint32_t n) noexcept {
    std::uint64_t p = static_cast<std::uint64_t>(g()) * n;
    auto lo = static_cast<std::uint32_t>(p);
    if (lo < n) {
        const std::uint32_t t = static_cast<std::uint32_t>(-n) % n;
        while (lo < t) {
            p = static_cast<std::uint64_t>(g()) * n;
            lo = static_cast<std::uint32_t>(p);
        }
    }
    return static_cast<std::uint32_t>(p >> 32);
}

}  // namespace detail

/// Asks the kernel to back a large tensor with transparent huge pages (a
/// hint; Linux only, ignored elsewhere or when refused). A gather of random
/// bank rows then misses the TLB far less often (about 20% faster here).
template <class T>
void advise_huge_pages(tensor<T>& t) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const std::size_t huge = std::size_t{2} << 20;
    if (t.numel() * sizeof(T) < 2 * huge) return;
    const auto begin = (reinterpret_cast<std::uintptr_t>(t.data()) + huge - 1) & ~std::uintptr_t{huge - 1};
    const auto end = reinterpret_cast<std::uintptr_t>(t.data() + t.numel()) & ~std::uintptr_t{huge - 1};
    if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
    (void)t;
#endif
}

/// Fills `bank` (N, d) as InstDisc does: uniform in [-a, a], a = sqrt(3 / d),
/// then every row normalized. Row i depends only on (seed, i).
template <class T>
void init_bank(tensor<T>& bank, std::uint64_t seed) {
    check_rank(bank, 2, "init_bank", "(N, d)");
    const std::size_t n = bank.dim(0), d = bank.dim(1);
    require<shape_error>(d > 0, "init_bank: empty rows, shape ", bank.shape().str());
    const double a = std::sqrt(3.0 / static_cast<double>(d));
    const std::size_t rows_per_task = 4096, tasks = (n + rows_per_task - 1) / rows_per_task;
    T* base = bank.data();
    parallel_for(tasks, [&](std::size_t t, std::size_t) {
        const std::size_t r1 = std::min(n, (t + 1) * rows_per_task);
        for (std::size_t r = t * rows_per_task; r < r1; ++r) {
            philox g(seed, stream_id(detail::bank_init_tag, r));
            T* v = base + r * d;
            for (std::size_t j = 0; j < d; ++j) v[j] = static_cast<T>(a * (2.0 * g.uniform() - 1.0));
            ops::normalize_row(v, d);
        }
    });
}

/// v_ids[b] <- normalize(momentum v_ids[b] + (1 - momentum) f_b) in place,
/// for the rows f (B, d) of a batch, in batch order (a repeated id is updated
/// twice, the later sample last). With `written` (N flags), a row whose flag
/// is 0 holds no memory yet and takes v <- normalize(f_b) instead (its random
/// initialization is not mixed in); the caller sets the flags afterwards, so
/// a fresh id repeated within one batch ends as its later sample's feature.
template <class T>
void update_bank(tensor<T>& bank, std::span<const std::size_t> ids, const tensor<T>& f, double momentum,
                 std::span<const std::uint8_t> written = {}) {
    check_rank(bank, 2, "update_bank", "(N, d) for the bank");
    check_rank(f, 2, "update_bank", "(B, d) for the features");
    const std::size_t n = bank.dim(0), d = bank.dim(1);
    require<shape_error>(f.dim(0) == ids.size() && f.dim(1) == d, "update_bank: features of shape ", f.shape().str(),
                         " for ", ids.size(), " ids and a bank of shape ", bank.shape().str());
    require<shape_error>(written.empty() || written.size() == n, "update_bank: ", written.size(),
                         " written flags for a bank of ", n, " rows");
    for (std::size_t i = 0; i < ids.size(); ++i) {
        require<shape_error>(ids[i] < n, "update_bank: instance ", ids[i], " out of range for a bank of ", n,
                             " rows");
        const bool fresh = !written.empty() && written[ids[i]] == 0;
        const double a = fresh ? 0.0 : momentum, b = fresh ? 1.0 : 1.0 - momentum;
        T* v = bank.data() + ids[i] * d;
        const T* x = f.data() + i * d;
        for (std::size_t j = 0; j < d; ++j) v[j] = static_cast<T>(a * v[j] + b * x[j]);
        ops::normalize_row(v, d);
    }
}

/// Draws m noise indices uniform in [0, n) for each of `batch` samples of
/// global step `step` into out (batch * m): sample b from
/// philox(seed, (tag, step, b)).
/// Row b's m draws come from philox(seed, (tag, step, first_row + b)):
/// first_row is the batch's offset in the global batch (data parallel).
inline void sample_negatives(std::span<std::uint32_t> out, std::size_t batch, std::size_t m, std::size_t n,
                             std::uint64_t seed, std::uint64_t step, std::size_t first_row = 0) {
    require<shape_error>(out.size() == batch * m, "sample_negatives: buffer of ", out.size(), " for ", batch, " x ",
                         m, " draws");
    require(n > 0 && n <= std::numeric_limits<std::uint32_t>::max(), "sample_negatives: ", n,
            " instances is out of range (1 to 2^32 - 1)");
    const auto n32 = static_cast<std::uint32_t>(n);
    parallel_for(batch, [&](std::size_t b, std::size_t) {
        philox g(seed, stream_id(detail::bank_noise_tag, step, first_row + b));
        std::uint32_t* o = out.data() + b * m;
        for (std::size_t k = 0; k < m; ++k) o[k] = detail::below32(g, n32);
    });
}

struct memory_bank {
    using config_type = memory_bank_config;
    static constexpr const char* name = "memory_bank";
    static constexpr bool data_parallel = true;  ///< dist/data_parallel.hpp (replicated bank, see Choices)

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;

        state(const memory_bank_config& c, Backbone&, Head& h) : cfg_(c) {
            require(c.instances > 0,
                    "target::memory_bank: config.instances (the number of images in the training set) must be set: "
                    "the bank needs its shape before a checkpoint is restored (instdisc_config(..., instances) sets it)");
            require(c.instances <= std::numeric_limits<std::uint32_t>::max(), "target::memory_bank: ", c.instances,
                    " instances is more than the 2^32 - 1 the noise indices can address");
            require(c.dim > 0, "target::memory_bank: dim must be positive");
            require(h.out_features() == c.dim, "target::memory_bank: the bank holds ", c.dim,
                    "-d vectors but the head outputs ", h.out_features(), " features (set config.dim to the head's width)");
            require(c.momentum >= 0 && c.momentum <= 1, "target::memory_bank: momentum must be in [0, 1], got ",
                    c.momentum);
            require(!c.feature_init || c.init_chunk >= (c.init_batch_statistics ? 2u : 1u),
                    "target::memory_bank: init_chunk (images per forward of the feature initialisation) must be at "
                    "least ", c.init_batch_statistics ? "2 with batch statistics" : "1", ", got ", c.init_chunk);
            bank_ = tensor<T>({c.instances, c.dim});
            advise_huge_pages(bank_);  // before the first touch
            init_bank(bank_, c.seed);
            written_ = tensor<std::uint8_t>({c.instances}, std::uint8_t{0});
            step_ = tensor<std::int64_t>({1}, std::int64_t{0});
        }

        const memory_bank_config& config() const noexcept { return cfg_; }
        /// The bank (N, d); rows are unit vectors.
        const tensor<T>& bank() const noexcept { return bank_; }
        tensor<T>& bank() noexcept { return bank_; }
        /// The global step the next targets() call draws its noise for.
        std::size_t step() const noexcept { return static_cast<std::size_t>(step_[0]); }
        /// (N,) 1 for the rows written at least once (holding a feature, not
        /// the random initialization).
        const tensor<std::uint8_t>& written() const noexcept { return written_; }
        /// Whether every row has been written at least once.
        bool filled() const noexcept {
            const std::uint8_t* w = written_.data();
            return std::all_of(w, w + written_.numel(), [](std::uint8_t x) { return x != 0; });
        }

        /// Whether no row has been written yet (the bank is as initialised).
        bool none_written() const noexcept {
            const std::uint8_t* w = written_.data();
            return std::none_of(w, w + written_.numel(), [](std::uint8_t x) { return x != 0; });
        }

        /// The bank, the batch's ids (the positives), view 0's online features
        /// and, when config.negatives > 0, m fresh noise indices per sample.
        bank_targets<T> targets(const target_input<T>& in) {
            require(!in.online.empty(), "target::memory_bank: the step has no online outputs");
            return targets(in.ids(), in.online[0]);
        }
        bank_targets<T> targets(std::span<const std::size_t> ids, const tensor<T>& features) {
            require<shape_error>(features.rank() == 2 && features.dim(0) == ids.size() && features.dim(1) == cfg_.dim,
                                 "target::memory_bank: online features of shape ", features.shape().str(), " for ",
                                 ids.size(), " ids and a bank of ", cfg_.dim, "-d rows");
            for (std::size_t i : ids)
                require<shape_error>(i < cfg_.instances, "target::memory_bank: sample index ", i,
                                     " is out of range for a bank of ", cfg_.instances,
                                     " instances (config.instances must be the data set size)");
            const std::size_t m = cfg_.negatives;
            dist::communicator* c = dist::active();
            const std::size_t first_row = c ? static_cast<std::size_t>(c->rank()) * ids.size() : 0;
            noise_.resize(ids.size() * m);
            if (m > 0) sample_negatives(noise_, ids.size(), m, cfg_.instances, cfg_.seed, step(), first_row);
            if (!filled_) filled_ = filled();
            bank_targets<T> t{&bank_, {ids.begin(), ids.end()}, noise_, m,
                              std::span<const std::uint8_t>(written_.data(), written_.numel()), filled_, features};
            if (c) {
                const auto P = static_cast<std::size_t>(c->size());
                std::vector<std::int64_t> mine(ids.begin(), ids.end()), all(P * ids.size());
                c->allgather(std::span<const std::int64_t>(mine), std::span<std::int64_t>(all));
                t.global_ids.assign(all.begin(), all.end());
                t.global_features = tensor<T>({P * ids.size(), cfg_.dim});
                c->allgather(std::span<const T>(features.data(), features.numel()),
                             std::span<T>(t.global_features.data(), t.global_features.numel()));
            }
            return t;
        }

        /// v_i <- normalize(m v_i + (1 - m) f_i) for the batch's ids, f the
        /// online output of view 0.
        target_request after_step(Backbone&, Head&, bank_targets<T>&& batch, const target_step& s) {
            require(batch.features.defined(), "target::memory_bank: after_step needs the batch from targets()");
            const bool global = !batch.global_ids.empty();
            const std::vector<std::size_t>& ids = global ? batch.global_ids : batch.ids;
            update_bank(bank_, ids, global ? batch.global_features : batch.features, cfg_.momentum,
                        cfg_.replace_first ? std::span<const std::uint8_t>(written_.data(), written_.numel())
                                           : std::span<const std::uint8_t>{});
            for (std::size_t i : ids) written_[i] = 1;
            step_[0] = static_cast<std::int64_t>(s.step + 1);
            return {};
        }

        /// Checks that the bank matches the data set; with feature_init, fills
        /// the bank from the initial network before the first epoch.
        epoch_plan begin_epoch(epoch_context<Backbone, Head>& c) {
            require(c.data.size() == cfg_.instances, "target::memory_bank: the bank has ", cfg_.instances,
                    " rows but the training set '", c.data.name, "' has ", c.data.size(),
                    " images; set config.instances to the data set size");
            if (cfg_.feature_init && c.epoch == 0 && !c.resumed_mid_epoch && none_written()) initialise_from_network(c);
            return {};
        }

        /// Rows = normalised head outputs of the current networks (batch
        /// statistics or eval mode as configured), every row marked written;
        /// running statistics are left unchanged. begin_epoch calls it once
        /// with feature_init.
        void initialise_from_network(epoch_context<Backbone, Head>& c) {
            const std::size_t d = cfg_.dim;
            c.for_each_initial_output(
                [&](const tensor<T>& f, std::size_t first) {
                    require<shape_error>(f.dim(1) == d && first + f.dim(0) <= cfg_.instances,
                                         "target::memory_bank: head outputs of shape ", f.shape().str(),
                                         " at row ", first, " do not fit the bank of shape ", bank_.shape().str());
                    std::copy(f.begin(), f.end(), bank_.data() + first * d);
                    for (std::size_t i = 0; i < f.dim(0); ++i) ops::normalize_row(bank_.data() + (first + i) * d, d);
                },
                cfg_.init_batch_statistics, cfg_.init_chunk);
            std::fill(written_.data(), written_.data() + written_.numel(), std::uint8_t{1});
            filled_ = true;
        }

        template <class F>
        void for_each_state(F&& f, const std::string& prefix) {
            f(join_name(prefix, "bank"), bank_);
            f(join_name(prefix, "step"), step_);
            f(join_name(prefix, "written"), written_);
            filled_ = false;  // a restore may change the flags: look again
        }

    private:
        memory_bank_config cfg_{};
        tensor<T> bank_{};                   // (N, d)
        tensor<std::int64_t> step_{};        // (1,)
        tensor<std::uint8_t> written_{};     // (N,)
        bool filled_ = false;                // cache of filled() (only ever goes false -> true)
        std::vector<std::uint32_t> noise_;   // (B * m,), reused every step
    };
};

}  // namespace ssl::target
