#pragma once
// The Ctrl-C chore: from run_start to the end of the run (run_end, run_failed
// or destruction) SIGINT only sets a flag; the loop asks stop_requested()
// after every step, so a run stops between two steps with a consistent state,
// which the checkpointer (earlier in the list) saves before this chore says
//
//   interrupted at epoch 2, step 1; the checkpoint is saved, continue with --resume
//
// The previous handler is put back at the end of the run. A second Ctrl-C
// while the checkpoint is written only sets the flag again (the write, a
// temporary file renamed over last.safetensors, completes); a program that
// wants the same after the run installs ssl::detail::ssl_on_sigint itself
// (the `ssl` program does, until it exits after an interrupted run).
#include <atomic>
#include <csignal>
#include <cstdio>

#include "chore.hpp"

namespace ssl {
namespace detail {
inline std::atomic<bool>& interrupt_flag() {
    static std::atomic<bool> f{false};
    return f;
}
extern "C" inline void ssl_on_sigint(int) { interrupt_flag().store(true); }
}  // namespace detail

namespace train {

/// Whether SIGINT arrived since the last run started (the flag stays set
/// after the run, so a program can tell a Ctrl-C that came after the last
/// step, while the run was ending, and skip what it would do next).
inline bool interrupt_requested() noexcept { return ssl::detail::interrupt_flag().load(); }

class interrupt_guard final : public chore {
public:
    /// `checkpoints`: whether the run saves a checkpoint when interrupted (the
    /// message says so); the message goes to `notices`.
    explicit interrupt_guard(bool checkpoints = true, std::FILE* notices = stderr)
        : checkpoints_(checkpoints), notices_(notices) {}
    ~interrupt_guard() override { restore(); }
    interrupt_guard(const interrupt_guard&) = delete;
    interrupt_guard& operator=(const interrupt_guard&) = delete;

    void run_start(const run_info&) override {
        restore();
        ssl::detail::interrupt_flag().store(false);
        old_ = std::signal(SIGINT, ssl::detail::ssl_on_sigint);
        installed_ = true;
    }
    bool stop_requested() const override { return ssl::detail::interrupt_flag().load(); }
    void interrupted(const run_position& at) override {
        std::fprintf(notices_, "interrupted at epoch %zu, step %zu%s\n", at.epoch + 1, at.step_in_epoch,
                     checkpoints_ ? "; the checkpoint is saved, continue with --resume"
                                  : " (no --out: nothing saved)");
    }
    void run_end() override { restore(); }
    void run_failed() override { restore(); }

    /// Whether the handler is installed (between run_start and the end of the run).
    bool active() const noexcept { return installed_; }

private:
    void restore() noexcept {
        if (!installed_) return;
        std::signal(SIGINT, old_ == SIG_ERR ? SIG_DFL : old_);
        installed_ = false;
    }

    bool checkpoints_;
    std::FILE* notices_;
    void (*old_)(int) = SIG_DFL;
    bool installed_ = false;
};

}  // namespace train
}  // namespace ssl
