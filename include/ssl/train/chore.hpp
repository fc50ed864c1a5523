#pragma once
// The trainer's chores: the work around training that a run needs but the
// training itself does not (a progress line, a CSV log, a plot, checkpoints,
// Ctrl-C). Each chore is a small object; the loop in trainer.hpp calls every
// chore of its chore_list, in list order, at fixed points of the run:
//
//   resumed(from, at)   the run continues from checkpoint `from` (before run_start)
//   run_start(info)     before the first step
//   step_end(report)    after every step (optimizer step and target update done)
//   epoch_end(report)   after an epoch, complete or cut short by max_steps
//   evaluated(report)   after a complete epoch's on_epoch_end callback
//   interrupted(at)     a chore asked to stop; the run ends after this
//   run_end()           the run ended without an exception (done, stopped or interrupted)
//   run_failed()        an exception is leaving the run (a NaN loss, a failed write)
//   stop_requested()    asked after every step_end; true ends the run as interrupted
//
// The loop has no branch on which chores exist: a run without an output
// directory simply holds no writing chores, and a distributed run can give
// the writing chores to one process only.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ssl::train {

/// Where a run stands: what a checkpoint records and --resume continues from.
struct run_position {
    std::size_t epoch = 0;          ///< the epoch to continue (0-based; = epochs completed)
    std::size_t step_in_epoch = 0;  ///< batches of that epoch already done
    std::size_t global_step = 0;    ///< optimizer steps since the start of the run
};

/// Checkpoint metadata (string pairs, as safetensors stores them).
using metadata = std::map<std::string, std::string>;

/// Writes the run's state (model, optimizer, target) with `meta` to a file, atomically.
using state_writer = std::function<void(const std::filesystem::path&, const metadata&)>;

/// What every chore learns before the first step.
struct run_info {
    std::size_t epochs = 0;           ///< epochs of the whole run
    std::size_t steps_per_epoch = 0;
    std::size_t total_steps = 0;      ///< steps of the whole run (the schedules span them)
    std::size_t stop_at = 0;          ///< the run stops after this many steps in total (max_steps)
    bool resumed = false;             ///< continued from a checkpoint
    run_position start;               ///< where this run begins
    state_writer write_state;         ///< for the checkpointer
};

/// One step, as the chores see it.
struct step_report {
    std::size_t epoch = 0;        ///< 0-based
    std::size_t in_epoch = 0;     ///< batches of this epoch done, this one included
    std::size_t step = 0;         ///< steps of the whole run done, this one included
    std::size_t epoch_steps = 0;  ///< steps of this epoch in this run (a resumed epoch counts from the resume point)
    double loss = 0;
    double lr = 0;
    double images_per_second = 0;  ///< since this run started
    double epoch_seconds = 0;      ///< wall time of this epoch so far
    std::span<const std::pair<std::string, double>> metrics;  ///< the method's metrics of this step
};

/// The end of an epoch.
struct epoch_report {
    std::size_t epoch = 0;     ///< 0-based
    std::size_t in_epoch = 0;  ///< batches of this epoch done
    bool complete = false;     ///< false: max_steps ended the run inside this epoch
    run_position position;     ///< where a resumed run continues: the next epoch, or the next batch of this one
};

/// What the on_epoch_end callback returned after a complete epoch (possibly nothing).
struct evaluation_report {
    std::size_t epoch = 0;  ///< 0-based
    std::span<const std::pair<std::string, double>> results;  ///< (series name, value), e.g. ("kNN", 81.2)
};

/// A chore: override the points it works at; the others do nothing.
class chore {
public:
    virtual ~chore() = default;
    virtual void resumed(const std::filesystem::path& /*from*/, const run_position& /*at*/) {}
    virtual void run_start(const run_info&) {}
    virtual void step_end(const step_report&) {}
    virtual void epoch_end(const epoch_report&) {}
    virtual void evaluated(const evaluation_report&) {}
    virtual void interrupted(const run_position& /*at*/) {}
    virtual void run_end() {}
    virtual void run_failed() {}
    virtual bool stop_requested() const { return false; }
};

/// The chores of a run, called in order.
class chore_list {
public:
    /// Constructs a chore of type C at the end of the list.
    template <class C, class... Args>
    C& add(Args&&... args) {
        static_assert(std::is_base_of_v<chore, C>, "chore_list::add<C>: C must derive from ssl::train::chore");
        auto p = std::make_unique<C>(std::forward<Args>(args)...);
        C& r = *p;
        list_.push_back(std::move(p));
        return r;
    }
    chore& add(std::unique_ptr<chore> c) {
        list_.push_back(std::move(c));
        return *list_.back();
    }
    /// The first chore of type C, or nullptr.
    template <class C>
    C* find() const noexcept {
        for (const auto& c : list_)
            if (auto* p = dynamic_cast<C*>(c.get())) return p;
        return nullptr;
    }
    /// Removes every chore of type C.
    template <class C>
    void remove() {
        std::erase_if(list_, [](const auto& c) { return dynamic_cast<C*>(c.get()) != nullptr; });
    }
    void clear() noexcept { list_.clear(); }
    std::size_t size() const noexcept { return list_.size(); }
    bool empty() const noexcept { return list_.empty(); }

    void resumed(const std::filesystem::path& from, const run_position& at) {
        for (auto& c : list_) c->resumed(from, at);
    }
    void run_start(const run_info& i) {
        for (auto& c : list_) c->run_start(i);
    }
    void step_end(const step_report& r) {
        for (auto& c : list_) c->step_end(r);
    }
    void epoch_end(const epoch_report& r) {
        for (auto& c : list_) c->epoch_end(r);
    }
    void evaluated(const evaluation_report& r) {
        for (auto& c : list_) c->evaluated(r);
    }
    void interrupted(const run_position& at) {
        for (auto& c : list_) c->interrupted(at);
    }
    void run_end() {
        for (auto& c : list_) c->run_end();
    }
    /// Tells every chore; an exception from one of them is dropped (the
    /// exception already leaving the run is the one to report).
    void run_failed() noexcept {
        for (auto& c : list_) {
            try {
                c->run_failed();
            } catch (...) {
            }
        }
    }
    bool stop_requested() const {
        for (const auto& c : list_)
            if (c->stop_requested()) return true;
        return false;
    }

private:
    std::vector<std::unique_ptr<chore>> list_;
};

}  // namespace ssl::train
