#pragma once
// The progress line chore. On a terminal one line is redrawn after every
// step; elsewhere (a log file, a pipe) a line is written every 20 batches and
// at the last batch of an epoch:
//
//   epoch 2/5 [============            ] 40/79 loss 4.1234 acc 0.5 1234 img/s ETA 1:02
//
// (the method's metrics follow the loss; ETA is for the steps left in the
// run at this epoch's pace). An epoch's end, and an interruption, end the line.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

#include "../core/error.hpp"
#include "chore.hpp"

namespace ssl::train {

/// "m:ss", or "h:mm:ss" from an hour on; "--:--" for a negative or unknown time.
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

class progress_bar final : public chore {
public:
    /// Writes to `out`; `tty` says whether it is a terminal (default: asks isatty at every line).
    explicit progress_bar(std::FILE* out = stderr, std::optional<bool> tty = std::nullopt) : out_(out), tty_(tty) {}

    void run_start(const run_info& i) override {
        epochs_ = i.epochs;
        steps_per_epoch_ = i.steps_per_epoch;
        stop_at_ = i.stop_at;
    }

    void step_end(const step_report& r) override {
        const bool tty = tty_ ? *tty_ : isatty(fileno(out_)) != 0;
        if (!tty && r.in_epoch % 20 != 0 && r.in_epoch != steps_per_epoch_) return;
        const double per_step = r.epoch_seconds / static_cast<double>(std::max<std::size_t>(r.epoch_steps, 1));
        const std::size_t left = stop_at_ > r.step ? stop_at_ - r.step : 0;
        const int width = 24;
        const int filled =
            static_cast<int>(width * static_cast<double>(r.in_epoch) / static_cast<double>(steps_per_epoch_));
        std::string bar(static_cast<std::size_t>(filled), '=');
        bar.resize(width, ' ');
        std::string extra;
        for (const auto& [k, v] : r.metrics) extra += ssl::detail::cat(" ", k, " ", v);
        std::fprintf(out_, "%sepoch %zu/%zu [%s] %zu/%zu loss %.4f%s %.0f img/s ETA %s%s", tty ? "\r" : "",
                     r.epoch + 1, epochs_, bar.c_str(), r.in_epoch, steps_per_epoch_, r.loss, extra.c_str(),
                     r.images_per_second, format_duration(per_step * static_cast<double>(left)).c_str(),
                     tty ? "   " : "\n");
        std::fflush(out_);
    }

    void epoch_end(const epoch_report&) override { std::fprintf(out_, "\n"); }
    void interrupted(const run_position&) override { std::fprintf(out_, "\n"); }

private:
    std::FILE* out_;
    std::optional<bool> tty_;
    std::size_t epochs_ = 0, steps_per_epoch_ = 1, stop_at_ = 0;
};

}  // namespace ssl::train
