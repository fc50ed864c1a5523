#pragma once
// The training loop. It knows no paper: it feeds batches to a method's
// train_step, runs the optimizer and the schedule, calls after_step, and
// does the chores every run needs: a progress line, a CSV log, a checkpoint
// per epoch (atomic, so a failed run never loses the last good one), resume,
// a stop on a NaN or infinite loss, and a resumable checkpoint on Ctrl-C.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unistd.h>
#include <variant>
#include <vector>

#include "data/dataset.hpp"
#include "data/loader.hpp"
#include "io/checkpoint.hpp"
#include "io/metrics_log.hpp"
#include "method.hpp"
#include "optim.hpp"

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
};

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

namespace detail {
inline std::atomic<bool>& interrupt_flag() {
    static std::atomic<bool> f{false};
    return f;
}
extern "C" inline void ssl_on_sigint(int) { interrupt_flag().store(true); }

/// Installs the Ctrl-C handler for the lifetime of the object.
class sigint_guard {
public:
    sigint_guard() {
        interrupt_flag().store(false);
        old_ = std::signal(SIGINT, ssl_on_sigint);
    }
    ~sigint_guard() { std::signal(SIGINT, old_ == SIG_ERR ? SIG_DFL : old_); }
    sigint_guard(const sigint_guard&) = delete;
    sigint_guard& operator=(const sigint_guard&) = delete;

private:
    void (*old_)(int) = SIG_DFL;
};

inline std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "--:--";
    const long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}
}  // namespace detail

template <class Method>
class trainer {
    using optimizer_variant = std::variant<optim::sgd<float>, optim::lars<float>, optim::adam<float>>;

public:
    trainer(Method& m, const data::image_dataset& train, const trainer_config& c)
        : m_(m), data_(train), cfg_(c), opt_(make_optimizer(m, c)) {
        require(c.epochs > 0, "trainer: epochs must be positive");
        require(c.batch >= 2, "trainer: batch must be at least 2, got ", c.batch);
        require(train.size() >= c.batch, "trainer: the data set has ", train.size(),
                " images, fewer than one batch of ", c.batch);
        require(c.lr > 0 && std::isfinite(c.lr), "trainer: lr must be positive, got ", c.lr);
        require(c.schedule == "cosine" || c.schedule == "constant", "trainer: unknown schedule '", c.schedule,
                "' (choose cosine or constant)");
        steps_per_epoch_ = train.size() / c.batch;  // drop_last
        total_steps_ = steps_per_epoch_ * c.epochs;  // the schedules span the whole run
        stop_at_ = c.max_steps ? std::min(total_steps_, c.max_steps) : total_steps_;
    }

    std::size_t steps_per_epoch() const noexcept { return steps_per_epoch_; }
    std::size_t total_steps() const noexcept { return total_steps_; }

    /// Called after every epoch with (epoch, summary so far); the CLI runs
    /// evaluation here. Returned pairs are logged as accuracy series.
    std::function<std::vector<std::pair<std::string, double>>(std::size_t)> on_epoch_end;

    train_summary fit() {
        train_summary s;
        std::size_t start_epoch = 0, skip = 0;
        if (cfg_.resume) {
            require<io_error>(!cfg_.out_dir.empty(), "trainer: --resume needs an output directory");
            const auto last = cfg_.out_dir / "last.safetensors";
            require<io_error>(std::filesystem::exists(last), "trainer: cannot resume, '", last.string(),
                              "' does not exist");
            auto pos = load(last);
            start_epoch = pos.first;
            skip = pos.second;
            step_ = start_epoch * steps_per_epoch_ + skip;
            std::fprintf(stderr, "resuming from %s at epoch %zu, step %zu\n", last.string().c_str(), start_epoch + 1,
                         skip);
        }
        if (!cfg_.out_dir.empty()) {
            std::filesystem::create_directories(cfg_.out_dir);
            std::vector<std::string> cols{"epoch", "step", "loss", "lr", "images_per_s"};
            log_.emplace(cfg_.out_dir / "metrics.csv", cols, cfg_.resume);
        }
        detail::sigint_guard guard;
        // "constant" is the cosine with its floor at the peak: warmup, then flat.
        const optim::warmup_cosine schedule(cfg_.lr, static_cast<std::size_t>(cfg_.warmup_epochs * steps_per_epoch_),
                                            std::max<std::size_t>(total_steps_, 1),
                                            cfg_.schedule == "constant" ? cfg_.lr : 0.0);
        const auto t_run = std::chrono::steady_clock::now();
        std::size_t images = 0;
        for (std::size_t epoch = start_epoch; epoch < cfg_.epochs && step_ < stop_at_; ++epoch) {
            data::loader<> ld(data_, {.batch_size = cfg_.batch, .shuffle = true, .drop_last = true,
                                      .seed = cfg_.seed, .workers = cfg_.workers, .prefetch = 2});
            // The target update may recompute pseudo-labels, re-initialise
            // parameters and choose this epoch's order (DeepCluster, SeLa, ...).
            epoch_plan plan = m_.begin_epoch(data_, epoch, cfg_.seed, skip > 0);
            reset_optimizer_state(plan.reset_optimizer_state);
            double epoch_loss = 0;
            std::size_t epoch_steps = 0, in_epoch = 0;
            const auto t_epoch = std::chrono::steady_clock::now();
            in_epoch = skip;  // resuming inside an epoch starts at batch `skip`
            for (auto& b : plan.order ? ld.epoch(epoch, skip, std::move(*plan.order)) : ld.epoch(epoch, skip)) {
                if (step_ >= stop_at_) break;
                ++in_epoch;
                const step_context ctx{cfg_.seed, epoch, step_, total_steps_};
                const double lr = schedule(step_);
                std::visit([&](auto& o) {
                    o.set_lr(lr);
                    o.zero_grad();
                }, opt_);
                auto r = m_.train_step(b.images, b.indices, ctx, b.labels);
                if (!std::isfinite(r.loss)) {
                    throw error(detail::cat("training diverged: the loss is ", r.loss, " at epoch ", epoch + 1,
                                            ", step ", step_, " (lr ", lr, "); ",
                                            cfg_.out_dir.empty() ? std::string("no checkpoint was requested")
                                                                 : "the last good checkpoint is " +
                                                                       (cfg_.out_dir / "last.safetensors").string() +
                                                                       " (use a lower --lr and --resume)"));
                }
                std::visit([](auto& o) { o.step(); }, opt_);
                const double loss = r.loss;
                const auto metrics = r.metrics;
                m_.after_step(std::move(r), ctx, &data_);
                ++step_;
                ++epoch_steps;
                ++s.steps;
                images += b.images.dim(0);
                epoch_loss += loss;
                s.step_loss.push_back(loss);
                if (s.steps == 1) s.first_loss = loss;
                s.last_loss = loss;
                const double el = seconds_since(t_run);
                const double ips = static_cast<double>(images) / std::max(el, 1e-9);
                loss_points_.emplace_back(static_cast<double>(step_), loss);
                if (log_) log_->row({double(epoch + 1), double(step_), loss, lr, ips});
                if (cfg_.progress) progress(epoch, in_epoch, {loss, metrics}, ips, seconds_since(t_epoch), epoch_steps);
                if (detail::interrupt_flag().load()) {
                    if (cfg_.progress) std::fprintf(stderr, "\n");
                    save(epoch, in_epoch);
                    std::fprintf(stderr, "interrupted at epoch %zu, step %zu%s\n", epoch + 1, in_epoch,
                                 cfg_.out_dir.empty() ? " (no --out: nothing saved)"
                                                      : "; the checkpoint is saved, continue with --resume");
                    s.interrupted = true;
                    finish(s, images, t_run);
                    return s;
                }
            }
            skip = 0;
            if (cfg_.progress) std::fprintf(stderr, "\n");
            if (in_epoch < steps_per_epoch_) {
                // max_steps ended the run inside this epoch: the checkpoint
                // records the position, so --resume continues with the next
                // batch of this epoch.
                save(epoch, in_epoch);
                break;
            }
            s.epoch_loss.push_back(epoch_steps ? epoch_loss / static_cast<double>(epoch_steps) : 0.0);
            s.epochs_done = epoch + 1;
            save(epoch + 1, 0);
            if (on_epoch_end) {
                auto acc = on_epoch_end(epoch);
                for (auto& [name, v] : acc) acc_[name].emplace_back(static_cast<double>(epoch + 1), v);
            }
            plot();
        }
        finish(s, images, t_run);
        return s;
    }

    /// Writes model + optimizer state + position to `path` (atomic).
    void save_to(const std::filesystem::path& path, std::size_t epoch, std::size_t step_in_epoch) {
        state_view v{m_, opt_};
        auto meta = cfg_.metadata;
        meta["epoch"] = std::to_string(epoch);
        meta["step_in_epoch"] = std::to_string(step_in_epoch);
        meta["global_step"] = std::to_string(step_);
        meta["optimizer"] = cfg_.optimizer;
        save_checkpoint(path, v, meta);
    }

private:
    /// The model and the optimizer state seen as one module for checkpoints.
    struct state_view {
        Method& m;
        optimizer_variant& o;
        template <class F>
        void for_each_parameter(F&& f, const std::string& p) {
            m.for_each_parameter(f, p);
        }
        template <class F>
        void for_each_buffer(F&& f, const std::string& p) {
            m.for_each_buffer(f, p);
            std::visit([&](auto& opt) {
                opt.for_each_state([&](const std::string& n, auto& t) { f(join_name(join_name(p, "optim"), n), t); });
            }, o);
        }
    };

    /// Zeroes the optimizer state (momentum, moments) of parameters whose
    /// names start with one of `prefixes`: they were re-initialised.
    void reset_optimizer_state(const std::vector<std::string>& prefixes) {
        if (prefixes.empty()) return;
        std::visit([&](auto& opt) {
            opt.for_each_state([&](const std::string& n, auto& t) {
                for (const auto& p : prefixes)
                    if (n.size() > p.size() && n.compare(0, p.size(), p) == 0 && n[p.size()] == '.') {
                        std::fill(t.begin(), t.end(), 0);
                        break;
                    }
            });
        }, opt_);
    }

    static double seconds_since(std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
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

    std::pair<std::size_t, std::size_t> load(const std::filesystem::path& path) {
        state_view v{m_, opt_};
        load_checkpoint(path, v, true);
        auto file = io::read_safetensors(path);
        auto get = [&](const char* k) -> std::size_t {
            auto it = file.metadata.find(k);
            require<io_error>(it != file.metadata.end(), "checkpoint '", path.string(), "' has no '", k,
                              "' entry in its metadata (not written by ssl's trainer?)");
            return static_cast<std::size_t>(std::stoull(it->second));
        };
        return {get("epoch"), get("step_in_epoch")};
    }

    void save(std::size_t epoch, std::size_t step_in_epoch) {
        if (cfg_.out_dir.empty()) return;
        save_to(cfg_.out_dir / "last.safetensors", epoch, step_in_epoch);
        if (step_in_epoch == 0) {
            char name[64];
            std::snprintf(name, sizeof name, "epoch_%03zu.safetensors", epoch);
            save_to(cfg_.out_dir / name, epoch, 0);
        }
    }

    void plot() {
        if (cfg_.out_dir.empty()) return;
        std::vector<io::series> acc;
        for (auto& [name, pts] : acc_) acc.push_back({name, pts});
        io::write_run_plot(cfg_.out_dir / "plot.svg", "ssl training run", {"loss", loss_points_}, acc);
    }

    void progress(std::size_t epoch, std::size_t in_epoch, const step_result& r, double ips, double epoch_secs,
                  std::size_t epoch_steps) {
        const bool tty = isatty(fileno(stderr));
        if (!tty && in_epoch % 20 != 0 && in_epoch != steps_per_epoch_) return;
        const double per_step = epoch_secs / static_cast<double>(std::max<std::size_t>(epoch_steps, 1));
        const std::size_t left = stop_at_ > step_ ? stop_at_ - step_ : 0;
        const int width = 24;
        const int filled = static_cast<int>(width * static_cast<double>(in_epoch) / static_cast<double>(steps_per_epoch_));
        std::string bar(static_cast<std::size_t>(filled), '=');
        bar.resize(width, ' ');
        std::string extra;
        for (auto& [k, v] : r.metrics) extra += detail::cat(" ", k, " ", v);
        std::fprintf(stderr, "%sepoch %zu/%zu [%s] %zu/%zu loss %.4f%s %.0f img/s ETA %s%s", tty ? "\r" : "",
                     epoch + 1, cfg_.epochs, bar.c_str(), in_epoch, steps_per_epoch_, r.loss, extra.c_str(), ips,
                     detail::format_duration(per_step * static_cast<double>(left)).c_str(), tty ? "   " : "\n");
        std::fflush(stderr);
    }

    void finish(train_summary& s, std::size_t images, std::chrono::steady_clock::time_point t0) {
        s.seconds = seconds_since(t0);
        s.images_per_second = static_cast<double>(images) / std::max(s.seconds, 1e-9);
        plot();
    }

    Method& m_;
    const data::image_dataset& data_;
    trainer_config cfg_;
    optimizer_variant opt_;
    std::size_t steps_per_epoch_ = 0, total_steps_ = 0, stop_at_ = 0, step_ = 0;
    std::optional<io::csv_log> log_;
    std::vector<std::pair<double, double>> loss_points_;
    std::map<std::string, std::vector<std::pair<double, double>>> acc_;
};

}  // namespace ssl
