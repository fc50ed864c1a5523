#pragma once
// The plot chore: an SVG with the loss of every step (left) and the series
// on_epoch_end returned, per epoch (right), rewritten after every complete
// epoch and at the end of the run (atomically: a reader never sees half a
// file). The points are those of this trainer's runs: a resumed run plots
// from the resume point on.
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
    explicit run_plot(std::filesystem::path path, std::string title = "ssl training run")
        : path_(std::move(path)), title_(std::move(title)) {}

    const std::filesystem::path& path() const noexcept { return path_; }

    void run_start(const run_info&) override {
        if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
    }
    void step_end(const step_report& r) override { loss_.emplace_back(static_cast<double>(r.step), r.loss); }
    void evaluated(const evaluation_report& r) override {
        for (const auto& [name, v] : r.results) series_[name].emplace_back(static_cast<double>(r.epoch + 1), v);
        write();
    }
    void run_end() override { write(); }

    /// Writes the plot now.
    void write() const {
        std::vector<io::series> acc;
        for (const auto& [name, pts] : series_) acc.push_back({name, pts});
        io::write_run_plot(path_, title_, {"loss", loss_}, acc);
    }

private:
    std::filesystem::path path_;
    std::string title_;
    std::vector<std::pair<double, double>> loss_;
    std::map<std::string, std::vector<std::pair<double, double>>> series_;
};

}  // namespace ssl::train
