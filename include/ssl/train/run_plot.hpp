#pragma once
// The plot chore: an SVG with the loss of every step (left) and the series
// on_epoch_end returned, per epoch (right), rewritten after every complete
// epoch and at the end of the run (atomically: a reader never sees half a
// file). The points are those of this trainer's runs: a resumed run plots
// from the resume point on. The plot is not worth a run: a failed write (a
// full disk, plot.svg a directory) is a warning on `notices`, once per
// message, and training goes on (the next write tries again).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../io/metrics_log.hpp"
#include "chore.hpp"

namespace ssl::train {

class run_plot final : public chore {
public:
    explicit run_plot(std::filesystem::path path, std::string title = "ssl training run",
                      std::FILE* notices = stderr)
        : path_(std::move(path)), title_(std::move(title)), notices_(notices) {}

    const std::filesystem::path& path() const noexcept { return path_; }

    void run_start(const run_info&) override {
        if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
    }
    void step_end(const step_report& r) override { loss_.emplace_back(static_cast<double>(r.step), r.loss); }
    /// Adds the results at epoch r.epoch + 1 (replacing a series' point of
    /// that epoch: a program's end-of-run evaluation of an epoch already
    /// evaluated) and rewrites the plot.
    void evaluated(const evaluation_report& r) override {
        const double x = static_cast<double>(r.epoch + 1);
        for (const auto& [name, v] : r.results) {
            auto& pts = series_[name];
            if (!pts.empty() && pts.back().first == x) pts.pop_back();
            pts.emplace_back(x, v);
        }
        try_write();
    }
    void run_end() override { try_write(); }

    /// Writes the plot now (io_error when it cannot).
    void write() const {
        std::vector<io::series> acc;
        for (const auto& [name, pts] : series_) acc.push_back({name, pts});
        io::write_run_plot(path_, title_, {"loss", loss_}, acc);
    }

    /// Writes the plot now; a failure is a warning, not an error. Returns whether it was written.
    bool try_write() {
        try {
            write();
            return true;
        } catch (const std::exception& e) {  // io_error, filesystem_error, bad_alloc: none is worth the run
            if (e.what() != last_warning_) {
                last_warning_ = e.what();
                std::fprintf(notices_, "warning: the plot is not written (%s); training goes on\n", e.what());
            }
            return false;
        }
    }

private:
    std::filesystem::path path_;
    std::string title_;
    std::FILE* notices_;
    std::string last_warning_;
    std::vector<std::pair<double, double>> loss_;
    std::map<std::string, std::vector<std::pair<double, double>>> series_;
};

}  // namespace ssl::train
