#pragma once
// The training loop. It knows no paper: it feeds batches to a method's
// train_step, runs the optimizer and the schedule, calls after_step, stops on
// a NaN or infinite loss, and leaves everything else to its chores
// (train/chores.hpp): a progress line, a CSV log, an SVG plot, a checkpoint
// per epoch (atomic, so a failed run never loses the last good one) and a
// resumable checkpoint on Ctrl-C. The chores are a value the trainer holds
// (chores()), built from the config; the loop calls them at fixed points and
// never asks which are there.
//
// Data parallel (dist/data_parallel.hpp): with `comm` a communicator of P > 1
// ranks, `batch` is the global batch; each rank trains on its contiguous
// slice of every batch, inside a dist::step_scope (synchronized batch norm,
// negatives from all ranks), parameters and optimizer state are broadcast from
// rank 0 at the start, gradients are averaged in buckets before the
// optimizer's step, the reported loss and metrics are means over the ranks,
// Ctrl-C and a non-finite loss stop every rank at the same step, and only
// rank 0 has the progress line, the log, the plot and the checkpoints.
// Hybrid parallel: a layer too large to replicate (the instance classifier)
// is split over the ranks (method::distribute, before the optimizer
// attaches; shard_over_ranks); its parts are neither broadcast nor averaged,
// every rank writes its parts beside rank 0's checkpoint (write_state), and
// a run resumes on any number of ranks (resume).
//
// Streaming (data/shards.hpp): built from a shard_set instead of an
// image_dataset, the trainer reads each epoch's batches from tar shards on
// disk (shard order and shuffle buffer seeded by `seed` and the epoch, the
// tails dropped so every rank takes the same steps); the loop, resuming and
// the chores are the same. Methods that need the whole set in memory
// (needs_whole_data_set below) are refused.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/cpu_check.hpp"
#include "data/dataset.hpp"
#include "data/loader.hpp"
#include "data/shards.hpp"
#include "dist/data_parallel.hpp"
#include "io/checkpoint.hpp"
#include "method.hpp"
#include "optim.hpp"
#include "train/chores.hpp"

namespace ssl {

struct trainer_config {
    std::size_t epochs = 5;
    std::size_t batch = 256;
    std::string optimizer = "sgd";  ///< sgd, lars, adam, adamw
    double lr = 0.06;               ///< peak learning rate
    double momentum = 0.9;
    double weight_decay = 5e-4;
    double warmup_epochs = 0.5;     ///< linear warmup, then the schedule below
    std::string schedule = "cosine";  ///< after warmup: "cosine" (decay to 0) or "constant" (DeepCluster's)
    std::uint64_t seed = 0;
    std::size_t workers = 1;        ///< loader threads preparing batches ahead
    std::filesystem::path out_dir;  ///< checkpoints, metrics.csv, plot.svg; empty: none
    bool resume = false;            ///< continue from out_dir/last.safetensors
    bool progress = true;           ///< progress line on stderr
    std::map<std::string, std::string> metadata;  ///< written into every checkpoint (method, backbone, ...)
    std::size_t max_steps = 0;      ///< stop after this many steps in total (0: all epochs); the
                                    ///< schedules still span all epochs, so a stopped run resumes exactly
    // data parallel (dist/): null or one rank: one process, as before
    dist::communicator* comm = nullptr;  ///< the ranks sharing every batch (not owned)
    bool sync_batch_norm = true;         ///< batch norm statistics over the global batch
    /// With sync_batch_norm on P ranks: statistics within groups of this many
    /// consecutive ranks (a divisor of P; 1: each rank's own slice); 0: all P.
    std::size_t sync_batch_norm_group = 0;
    /// On P > 1 ranks, layers too large to replicate (the instance classifier)
    /// are split over the ranks (method::distribute: hybrid parallel); false:
    /// replicated like the network. Checkpoints of a split layer: each rank
    /// writes its parts (write_state); they resume on any number of ranks.
    bool shard_over_ranks = true;
    // streaming data (data/shards.hpp): samples in each rank's shuffle buffer
    std::size_t shuffle_buffer = 10000;
};

/// Whether a method's target update or loss needs the whole training set in
/// memory (a pass over it per epoch or on request: memory banks sized by it,
/// cluster and Sinkhorn labels, instance classifiers initialised from it):
/// such methods cannot train from streamed shards.
template <class Method>
inline constexpr bool needs_whole_data_set = [] {
    using B = typename Method::backbone_type;
    using H = typename Method::head_type;
    using S = typename Method::target_type::template state<B, H>;
    return requires(S& t, epoch_context<B, H>& c, const target_step& s) { t.begin_epoch(c); } ||
           requires(S& t, epoch_context<B, H>& c, const target_step& s) { t.data_pass(c, s); } ||
           requires(typename Method::loss_type& l, epoch_context<B, H>& c) { l.begin_epoch(c); };
}();

struct train_summary {
    std::size_t epochs_done = 0;
    std::size_t steps = 0;
    double seconds = 0;          ///< wall time of the training steps in this run
    double images_per_second = 0;
    double first_loss = 0, last_loss = 0;
    bool interrupted = false;
    std::vector<double> epoch_loss;  ///< mean loss per epoch
    std::vector<double> step_loss;   ///< the loss of every step of this run, in order
};

template <class Method>
class trainer {
    using optimizer_variant = std::variant<optim::sgd<float>, optim::lars<float>, optim::adam<float>>;
    using clock = std::chrono::steady_clock;

public:
    trainer(Method& m, const data::image_dataset& train, const trainer_config& c)
        : trainer(m, train, c, std::nullopt) {}

private:
    trainer(Method& m, const data::image_dataset& train, const trainer_config& c,
            std::optional<data::shard_set> shards)
        : m_(m), data_(train), cfg_(c), opt_(make_optimizer(split_over_ranks(m, c), c)),
          comm_(c.comm ? c.comm : &dist::single()) {
        check_cpu();  // a CPU without the instruction sets this program was compiled for: an error, not SIGILL
        if constexpr (!dist::data_parallel_ready<Method>) {  // a policy with batch-built state: refused, not wrong
            using target_type = typename Method::target_type;
            std::string what = "loss";
            if constexpr (!dist::declares_data_parallel<target_type>) {
                what = "target update";
                if constexpr (requires { std::string(target_type::name); })
                    what += std::string(" '") + target_type::name + "'";
            }
            require<value_error>(comm_->size() == 1, "data parallel: this method's ", what,
                                 " couples the samples of the batch (or keeps state built from it) in a way "
                                 "not shared between ranks yet, so ",
                                 comm_->size(), " ranks would not train what one process trains; run it in one "
                                 "process (every method ssl ships declares it; a policy of your own must declare "
                                 "data_parallel = true once it is)");
        }
        dist::check_global_batch(c.batch, *comm_);  // before any collective
        if (c.sync_batch_norm && c.sync_batch_norm_group > 0 && comm_->size() > 1) {
            const auto P = static_cast<std::size_t>(comm_->size());
            require<value_error>(c.sync_batch_norm_group <= P && P % c.sync_batch_norm_group == 0,
                                 "data parallel: batch norm groups of ", c.sync_batch_norm_group,
                                 " ranks do not divide the ", P, " ranks");
            // the same on every rank, so every rank reaches the split
            if (c.sync_batch_norm_group < P) bn_group_ = dist::consecutive_groups(*comm_, c.sync_batch_norm_group);
        }
        require(c.epochs > 0, "trainer: epochs must be positive");
        require(c.batch >= 2, "trainer: batch must be at least 2, got ", c.batch);
        if (shards) {
            if constexpr (needs_whole_data_set<Method>) {
                std::string what = "target update";
                if constexpr (requires { std::string(Method::target_type::name); })
                    what += std::string(" '") + Method::target_type::name + "'";
                throw value_error(detail::cat(shards->describe(), ": this method's ", what, " or loss needs the whole "
                                  "training set in memory (a pass over it, or state sized by it), which streamed shards "
                                  "do not give; train it on an in-memory data set, or stream a method without one "
                                  "(SimCLR, BYOL, RotNet, Jigsaw, MoCo, colorization)"));
            }
            stream_.emplace(std::move(*shards),
                            data::shard_options{.batch_size = c.batch / static_cast<std::size_t>(comm_->size()),
                                                .buffer = c.shuffle_buffer, .shuffle = true,
                                                .tail = data::shard_tail::drop, .seed = c.seed,
                                                .rank = static_cast<std::size_t>(comm_->rank()),
                                                .ranks = static_cast<std::size_t>(comm_->size())});
        } else {
            require(train.size() >= c.batch, "trainer: the data set has ", train.size(),
                    " images, fewer than one batch of ", c.batch);
        }
        require(c.lr > 0 && std::isfinite(c.lr), "trainer: lr must be positive, got ", c.lr);
        require(c.schedule == "cosine" || c.schedule == "constant", "trainer: unknown schedule '", c.schedule,
                "' (choose cosine or constant)");
        steps_per_epoch_ = stream_ ? stream_->batches_per_epoch() : train.size() / c.batch;  // drop_last
        total_steps_ = steps_per_epoch_ * c.epochs;  // the schedules span the whole run
        stop_at_ = c.max_steps ? std::min(total_steps_, c.max_steps) : total_steps_;
        // the same on every rank (a rank may hold no part of the split layer)
        split_ = Method::splits_over_ranks && comm_->size() > 1 && c.shard_over_ranks;
        chores_ = standard_chores(c, split_);
    }

    /// The training set of a streaming trainer (begin_epoch of the methods it
    /// accepts does not read it).
    static const data::image_dataset& empty_set() {
        static const data::image_dataset e = [] {
            data::image_dataset d;
            d.images = tensor<std::uint8_t>({0, 1, 1, 1});
            d.name = "streamed shards";
            return d;
        }();
        return e;
    }

public:
    /// Trains from tar shards streamed from disk (data/shards.hpp): each rank
    /// reads its share of the shards (the shard count divisible by the ranks)
    /// in batches of batch / ranks, the tails dropped so that every rank takes
    /// the same number of steps; memory holds c.shuffle_buffer encoded samples,
    /// not the set. Methods that need the whole set in memory are refused.
    trainer(Method& m, const data::shard_set& shards, const trainer_config& c)
        : trainer(m, empty_set(), c, shards) {}

    std::size_t steps_per_epoch() const noexcept { return steps_per_epoch_; }
    std::size_t total_steps() const noexcept { return total_steps_; }

    /// Called after every epoch with (epoch, summary so far); the CLI runs
    /// evaluation here. Returned pairs are logged as accuracy series.
    std::function<std::vector<std::pair<std::string, double>>(std::size_t)> on_epoch_end;

    /// What the loop calls besides training, in order. Built from the config
    /// (standard_chores); add, remove or replace chores before fit().
    train::chore_list& chores() noexcept { return chores_; }

    /// The config's chores: with an output directory the plot (plot.svg) and
    /// the CSV log (metrics.csv); with `progress` the progress line; with an
    /// output directory the checkpoints; always Ctrl-C. The order matters on
    /// Ctrl-C: the progress line ends, the checkpoint is saved, then the
    /// notice says so. `split`: a layer is split over the ranks (every rank
    /// then has a checkpointer, as the writer is collective).
    static train::chore_list standard_chores(const trainer_config& c, bool split = false) {
        train::chore_list l;
        const bool out = !c.out_dir.empty();
        if (c.comm && c.comm->rank() != 0) {  // data parallel: rank 0 alone prints and writes the replicated state
            if (out && split) l.add<train::checkpointer>(c.out_dir, checkpoint_metadata(c), stderr, false);
            l.add<train::interrupt_guard>(out);
            return l;
        }
        if (out) {
            l.add<train::run_plot>(c.out_dir / "plot.svg", plot_title(c));
            l.add<train::metrics_csv>(c.out_dir / "metrics.csv");
        }
        if (c.progress) l.add<train::progress_bar>();
        if (out) l.add<train::checkpointer>(c.out_dir, checkpoint_metadata(c));
        l.add<train::interrupt_guard>(out);
        return l;
    }

    /// The plot's title: the run's method, backbone and data (from the
    /// metadata, where given) and its settings, e.g. "rotnet, resnet18 width 4,
    /// synthetic: batch 32, 5 epochs, sgd lr 0.0125, weight decay 0.0005, cosine".
    static std::string plot_title(const trainer_config& c) {
        auto get = [&](const char* k) {
            const auto it = c.metadata.find(k);
            return it == c.metadata.end() ? std::string() : it->second;
        };
        std::string what = get("method");
        if (const std::string b = get("backbone"); !b.empty())
            what += (what.empty() ? "" : ", ") + b + (get("width").empty() ? "" : " width " + get("width"));
        if (const std::string d = get("data"); !d.empty()) what += (what.empty() ? "" : ", ") + d;
        return (what.empty() ? std::string("ssl training run") : what) +
               detail::cat(": batch ", c.batch, ", ", c.epochs, " epochs, ", c.optimizer, " lr ", c.lr,
                           ", weight decay ", c.weight_decay, ", ", c.schedule);
    }

    train_summary fit() {
        train::run_position start{};
        if (cfg_.resume) {  // a rank that cannot resume stops them all (no rank waits in a collective)
            std::exception_ptr failed;
            try {
                start = resume();
            } catch (...) {
                failed = std::current_exception();
            }
            if (dist::any_rank(*comm_, failed != nullptr)) {
                if (failed) std::rethrow_exception(failed);
                throw io_error("trainer: resuming failed on another rank (its message says why)");
            }
        }
        {  // every rank starts from rank 0's parameters, buffers and optimizer state
            state_view v{m_, opt_, part::replicated};
            dist::broadcast_state(v, *comm_);
        }
        chores_.run_start({.epochs = cfg_.epochs, .steps_per_epoch = steps_per_epoch_, .total_steps = total_steps_,
                           .stop_at = stop_at_, .resumed = cfg_.resume, .start = start,
                           .write_state = [this](const std::filesystem::path& p, const train::metadata& meta) {
                               write_state(p, meta);
                           }});
        try {
            return run(start);
        } catch (...) {
            chores_.run_failed();
            throw;
        }
    }

    /// Writes model + optimizer state + position to `path` (atomic). With a
    /// layer split over the ranks it is collective: call it on every rank.
    void save_to(const std::filesystem::path& path, std::size_t epoch, std::size_t step_in_epoch) {
        write_state(path, train::with_position(checkpoint_metadata(cfg_), {epoch, step_in_epoch, step_}));
    }

private:
    /// The model and the optimizer state seen as one module for checkpoints:
    /// all of it, the replicated part (what rank 0 broadcasts and writes), or
    /// this rank's part of a layer split over the ranks (with its optimizer state).
    enum class part { all, replicated, split };
    struct state_view {
        Method& m;
        optimizer_variant& o;
        part which = part::all;
        bool keeps(const parameter<float>& p) const noexcept {
            return which == part::all || p.replicated == (which == part::replicated);
        }
        template <class F>
        void for_each_parameter(F&& f, const std::string& p) {
            m.for_each_parameter([&](const std::string& n, parameter<float>& q) {
                if (keeps(q)) f(n, q);
            }, p);
        }
        template <class F>
        void for_each_buffer(F&& f, const std::string& p) {
            if (which != part::split) m.for_each_buffer(f, p);
            std::visit([&](auto& opt) {
                const auto g = [&](const std::string& n, auto& t) { f(join_name(join_name(p, "optim"), n), t); };
                if (which == part::all)
                    opt.for_each_state(g);
                else if (which == part::replicated)
                    opt.for_each_replicated_state(g);
                else
                    m.for_each_parameter([&](const std::string&, parameter<float>& q) {
                        if (!q.replicated) opt.for_each_state_of(q, g);
                    }, "");
            }, o);
        }
    };
    /// One parameter of a split layer and its optimizer state: one file each.
    struct one_parameter_view {
        std::string name;
        parameter<float>& p;
        optimizer_variant& o;
        template <class F>
        void for_each_parameter(F&& f, const std::string&) {
            f(name, p);
        }
        template <class F>
        void for_each_buffer(F&& f, const std::string&) {
            std::visit([&](auto& opt) {
                opt.for_each_state_of(p, [&](const std::string& n, auto& t) { f(join_name("optim", n), t); });
            }, o);
        }
    };
    /// Calls f(name, parameter) for this rank's parameters of split layers.
    template <class F>
    void for_each_split_parameter(F&& f) {
        m_.for_each_parameter([&](const std::string& n, parameter<float>& p) {
            if (!p.replicated) f(n, p);
        }, "");
    }

    /// Model + optimizer (+ target) state with `meta` to `path`, atomically;
    /// a state with a nan or infinite tensor is not written (the run diverged).
    /// With a layer split over the ranks every rank is here at once: each
    /// writes its parameters of the split layer, one file each under their
    /// global names, in "shards/step_NNNNNNNNN/" beside `path` (kept with the
    /// epoch checkpoints that name it); after a barrier rank 0 writes the
    /// replicated state to `path`, naming that folder ("split_state").
    void write_state(const std::filesystem::path& path, const train::metadata& meta) {
        if (!split_) {
            state_view v{m_, opt_};
            if (const std::string bad = train::first_non_finite(v); !bad.empty())
                throw error(detail::cat("training diverged: after step ", step_, ", ", bad, "; not writing '",
                                        path.string(), "'; ", checkpoint_hint()));
            save_checkpoint(path, v, meta);
            return;
        }
        state_view rep{m_, opt_, part::replicated}, mine{m_, opt_, part::split};
        std::string bad = train::first_non_finite(rep);
        if (bad.empty()) bad = train::first_non_finite(mine);
        if (dist::any_rank(*comm_, !bad.empty()))  // every rank refuses together
            throw error(detail::cat("training diverged: after step ", step_, ", ",
                                    bad.empty() ? std::string("a tensor on another rank is not finite") : bad,
                                    "; not writing '", path.string(), "'"));
        const std::string rel = split_folder(step_);
        const std::filesystem::path folder = path.parent_path() / rel;
        // all ranks, or none, throw: no rank is left waiting in a collective
        const auto together = [&](const std::string& failed, const char* what) {
            if (dist::any_rank(*comm_, !failed.empty()))
                throw io_error(detail::cat("checkpoint '", path.string(), "': ", what, " failed",
                                           failed.empty() ? std::string(" on another rank") : ": " + failed));
        };
        std::string failed;
        if (folder != split_written_) {  // last and epoch_NNN at one step share the folder: written once
            try {
                std::filesystem::create_directories(folder);
                train::metadata m = meta;
                m["split_part"] = "1";
                for_each_split_parameter([&](const std::string& n, parameter<float>& p) {
                    one_parameter_view one{n, p, opt_};
                    save_checkpoint(folder / (n + ".safetensors"), one, m);
                });
            } catch (const std::exception& e) {
                failed = e.what();
            }
            together(failed, "writing the split layer's files");
            split_written_ = folder;
        }
        comm_->barrier();  // every part is on disk before the main file names the folder
        if (comm_->rank() == 0) {
            try {
                train::metadata m = meta;
                m["split_state"] = rel;
                save_checkpoint(path, rep, m);
            } catch (const std::exception& e) {
                failed = e.what();
            }
        }
        together(failed, "writing the replicated state");
    }

    /// "shards/step_000000123": the folder of the split layer's files at a step.
    static std::string split_folder(std::size_t step) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "shards/step_%09zu", step);
        return buf;
    }

    /// The loop, from `start` to the end of the run.
    train_summary run(train::run_position start) {
        train_summary s;
        // "constant" is the cosine with its floor at the peak: warmup, then flat.
        const optim::warmup_cosine schedule(cfg_.lr, static_cast<std::size_t>(cfg_.warmup_epochs * steps_per_epoch_),
                                            std::max<std::size_t>(total_steps_, 1),
                                            cfg_.schedule == "constant" ? cfg_.lr : 0.0);
        const auto t_run = clock::now();
        std::size_t images = 0, skip = start.step_in_epoch;  // resuming inside an epoch starts at batch `skip`
        for (std::size_t epoch = start.epoch; epoch < cfg_.epochs && step_ < stop_at_; ++epoch) {
            // The target update may recompute pseudo-labels, re-initialise
            // parameters and choose this epoch's order (DeepCluster, SeLa, ...).
            epoch_plan plan = m_.begin_epoch(data_, epoch, cfg_.seed, skip > 0, comm_->size() > 1 ? comm_ : nullptr);
            std::visit([&](auto& o) { o.zero_state(plan.reset_optimizer_state); }, opt_);
            double epoch_loss = 0;
            std::size_t epoch_steps = 0, in_epoch = skip;
            const auto t_epoch = clock::now();
            // the epoch's batches: from the in-memory loader or the shard stream;
            // true when a Ctrl-C stopped the run
            const auto train_epoch = [&](auto&& batches) -> bool {
            for (auto& b : batches) {
                if (step_ >= stop_at_) break;
                ++in_epoch;
                const step_context ctx{cfg_.seed, epoch, step_, total_steps_};
                const double lr = schedule(step_);
                std::visit([&](auto& o) {
                    o.set_lr(lr);
                    o.zero_grad();
                }, opt_);
                auto r = [&] {
                    dist::step_scope scope(*comm_,
                                           {.sync_batch_norm = cfg_.sync_batch_norm, .batch_norm_group = bn_group_.get()});
                    return m_.train_step(b.images, b.indices, ctx, b.labels);
                }();
                if (comm_->size() > 1) {  // the global batch's loss and metrics: means over the ranks
                    r.loss = dist::mean_over_ranks(*comm_, r.loss);
                    for (auto& [name, value] : r.metrics) value = dist::mean_over_ranks(*comm_, value);
                }
                if (!std::isfinite(r.loss)) throw diverged(r.loss, epoch, lr);
                averager_(m_);  // data parallel: gradients averaged over the ranks
                std::visit([](auto& o) { o.step(); }, opt_);
                const double loss = r.loss;
                const auto metrics = r.metrics;
                m_.after_step(std::move(r), ctx, &data_, comm_->size() > 1 ? comm_ : nullptr);
                ++step_;
                ++epoch_steps;
                ++s.steps;
                images += b.images.dim(0) * static_cast<std::size_t>(comm_->size());
                epoch_loss += loss;
                s.step_loss.push_back(loss);
                if (s.steps == 1) s.first_loss = loss;
                s.last_loss = loss;
                const double ips = static_cast<double>(images) / std::max(seconds_since(t_run), 1e-9);
                chores_.step_end({.epoch = epoch, .in_epoch = in_epoch, .step = step_, .epoch_steps = epoch_steps,
                                  .loss = loss, .lr = lr, .images_per_second = ips,
                                  .epoch_seconds = seconds_since(t_epoch), .metrics = metrics});
                if (stop_requested()) {
                    chores_.interrupted({epoch, in_epoch, step_});
                    s.interrupted = true;
                    finish(s, images, t_run);
                    return true;
                }
            }
            return false;
            };
            bool stopped = false;
            if (stream_) {
                stopped = train_epoch(stream_->epoch(epoch, skip));
            } else {
                data::loader<> ld(data_, {.batch_size = cfg_.batch, .shuffle = true, .drop_last = true,
                                          .seed = cfg_.seed, .workers = cfg_.workers, .prefetch = 2,
                                          .rank = static_cast<std::size_t>(comm_->rank()),
                                          .ranks = static_cast<std::size_t>(comm_->size())});
                stopped = plan.order ? train_epoch(ld.epoch(epoch, skip, std::move(*plan.order)))
                                     : train_epoch(ld.epoch(epoch, skip));
            }
            if (stopped) return s;
            skip = 0;
            // max_steps may end the run inside this epoch: the checkpoint then
            // records the position, so --resume continues with the next batch.
            const bool complete = in_epoch >= steps_per_epoch_;
            chores_.epoch_end({.epoch = epoch, .in_epoch = in_epoch, .complete = complete,
                               .position = complete ? train::run_position{epoch + 1, 0, step_}
                                                    : train::run_position{epoch, in_epoch, step_}});
            if (!complete) break;
            s.epoch_loss.push_back(epoch_steps ? epoch_loss / static_cast<double>(epoch_steps) : 0.0);
            s.epochs_done = epoch + 1;
            const auto results = on_epoch_end ? on_epoch_end(epoch) : std::vector<std::pair<std::string, double>>{};
            chores_.evaluated({.epoch = epoch, .results = results});
            // a Ctrl-C during the epoch's checkpoint or evaluation stops here,
            // before the next epoch's begin_epoch (k-means, for some methods)
            if (epoch + 1 < cfg_.epochs && step_ < stop_at_ && stop_requested()) {
                chores_.interrupted({epoch + 1, 0, step_});
                s.interrupted = true;
                break;
            }
        }
        finish(s, images, t_run);
        return s;
    }

    /// Loads out_dir/last.safetensors (model, optimizer, target state) and
    /// returns the position it records.
    train::run_position resume() {
        require<io_error>(!cfg_.out_dir.empty(), "trainer: --resume needs an output directory");
        const auto last = train::checkpointer::last_in(cfg_.out_dir);
        require<io_error>(std::filesystem::exists(last), "trainer: cannot resume, '", last.string(),
                          "' does not exist");
        const io::safetensors_file file = io::read_safetensors(last);
        const auto split_at = file.metadata.find("split_state");
        state_view v{m_, opt_};
        train::run_position pos;
        if (split_at == file.metadata.end() && !split_) {
            load_state_dict(v, file, true, last.string());  // one file, all of it (any rank count)
            pos = train::read_position(file, last);
        } else {
            pos = train::read_position(file, last);
            // A layer split over the ranks when written, or now (any P to any
            // P): what the main file lacks comes from the split layer's files,
            // parameter by parameter; anything else missing is an error.
            const load_report r = load_state_dict(v, file, false, last.string());
            if (split_at == file.metadata.end()) {  // written whole, split now: this rank takes its part
                require<io_error>(r.missing.empty(), "checkpoint '", last.string(), "' lacks ",
                                  detail::name_list(r.missing));
            } else {
                const std::filesystem::path dir = cfg_.out_dir / split_at->second;
                require<io_error>(r.unexpected.empty(), "checkpoint '", last.string(), "' holds ",
                                  detail::name_list(r.unexpected), ", which this model does not have");
                std::vector<std::string> loose;  // missing from the main file and not a split parameter's
                for (const auto& n : r.missing) {
                    bool found = false;
                    m_.for_each_parameter([&](const std::string& pn, parameter<float>& p) {
                        if (found || (n != pn && n.rfind("optim." + pn + ".", 0) != 0)) return;
                        const auto f = dir / (pn + ".safetensors");
                        if (n != pn) {  // optimizer state: read with its parameter, from the parameter's file
                            found = std::filesystem::exists(f);
                            return;
                        }
                        found = true;
                        require<io_error>(std::filesystem::exists(f), "checkpoint '", last.string(),
                                          "': the split layer's file '", f.string(), "' does not exist");
                        const io::safetensors_file part = io::read_safetensors(f);
                        require<io_error>(train::read_position(part, f).global_step == pos.global_step,
                                          "checkpoint '", last.string(), "': '", f.string(),
                                          "' is of another step than the main file");
                        one_parameter_view one{pn, p, opt_};
                        load_state_dict(one, part, true, f.string());
                    }, "");
                    if (!found) loose.push_back(n);
                }
                require<io_error>(loose.empty(), "checkpoint '", last.string(), "' lacks ", detail::name_list(loose));
            }
        }
        pos.global_step = step_ = pos.epoch * steps_per_epoch_ + pos.step_in_epoch;
        chores_.resumed(last, pos);
        return pos;
    }

    /// Ctrl-C on any rank stops every rank at the same step.
    bool stop_requested() { return dist::any_rank(*comm_, chores_.stop_requested()); }

    error diverged(double loss, std::size_t epoch, double lr) const {
        return error(detail::cat("training diverged: the loss is ", loss, " at epoch ", epoch + 1, ", step ", step_,
                                 " (lr ", lr, "); ", checkpoint_hint()));
    }

    /// After a divergence at step step_: which checkpoint, if any, is good.
    std::string checkpoint_hint() const {
        const auto* cp = chores_.find<train::checkpointer>();
        if (!cp) return "no checkpoint was requested";
        const auto last = cp->last().string();
        if (!cp->saved())
            return "no checkpoint was written (the run diverged before its first one" +
                   std::string(std::filesystem::exists(cp->last()) ? "; '" + last + "' is an earlier run's" : "") +
                   "); train again with a lower --lr";
        if (cp->saved()->global_step < step_)
            return "the last good checkpoint is '" + last + "' (use a lower --lr and --resume)";
        // the checkpoint holds the very weights that diverged: it is no good
        std::string earlier = "there is no earlier one; train again with a lower --lr";
        if (const auto& at = *cp->saved(); at.step_in_epoch == 0 && at.epoch >= 2) {
            const auto e = cp->dir() / train::checkpointer::epoch_file(at.epoch - 1);
            if (std::filesystem::exists(e))
                earlier = "the one before is '" + e.string() + "' (copy it to '" + last +
                          "' and --resume with a lower --lr)";
        }
        return "the last checkpoint, '" + last +
               "', holds the weights that gave this loss (resuming from it diverges again); " + earlier;
    }

    void finish(train_summary& s, std::size_t images, clock::time_point t0) {
        s.seconds = seconds_since(t0);
        s.images_per_second = static_cast<double>(images) / std::max(s.seconds, 1e-9);
        chores_.run_end();
    }

    static double seconds_since(clock::time_point t) {
        return std::chrono::duration<double>(clock::now() - t).count();
    }

    /// The config's metadata plus the optimizer's name (the position is added per file).
    static train::metadata checkpoint_metadata(const trainer_config& c) {
        train::metadata meta = c.metadata;
        meta["optimizer"] = c.optimizer;
        return meta;
    }

    /// Before the optimizer attaches: on P > 1 ranks, the policies that split a
    /// layer over the ranks do so (method::distribute).
    static Method& split_over_ranks(Method& m, const trainer_config& c) {
        if (Method::splits_over_ranks && c.comm && c.comm->size() > 1 && c.shard_over_ranks) m.distribute(*c.comm);
        return m;
    }

    static optimizer_variant make_optimizer(Method& m, const trainer_config& c) {
        if (c.optimizer == "sgd")
            return optim::sgd<float>(m, {.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay});
        if (c.optimizer == "lars")
            return optim::lars<float>(m, {.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay});
        if (c.optimizer == "adam" || c.optimizer == "adamw")
            return optim::adam<float>(
                m, {.lr = c.lr, .weight_decay = c.weight_decay, .decoupled = c.optimizer == "adamw"});
        throw value_error(detail::cat("trainer: unknown optimizer '", c.optimizer, "' (choose sgd, lars, adam or adamw)"));
    }

    Method& m_;
    const data::image_dataset& data_;
    trainer_config cfg_;
    optimizer_variant opt_;
    std::size_t steps_per_epoch_ = 0, total_steps_ = 0, stop_at_ = 0, step_ = 0;
    train::chore_list chores_;
    dist::communicator* comm_;
    std::unique_ptr<dist::communicator> bn_group_;  // sync_batch_norm_group < P: this rank's group
    bool split_ = false;  // a layer is split over the ranks (method::distribute)
    std::filesystem::path split_written_;  // the split layer's folder this run wrote last
    dist::gradient_averager<float> averager_{*comm_};
    std::optional<data::shard_stream> stream_;  // streaming: the shards, else data_ in memory
};

}  // namespace ssl
