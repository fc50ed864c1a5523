#pragma once
// The CSV log chore: one row per step,
//
//   epoch,step,loss,lr,images_per_s
//
// (epoch counted from 1, step the steps of the whole run done). A fresh run
// starts the file over; a resumed run first drops the rows after its
// checkpoint's step (written before a kill, and about to be run again), then
// appends to it (a missing file is started over), so the rows go on from the
// resume point, each step once.
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../io/metrics_log.hpp"
#include "chore.hpp"

namespace ssl::train {

class metrics_csv final : public chore {
public:
    explicit metrics_csv(std::filesystem::path path) : path_(std::move(path)) {}

    const std::filesystem::path& path() const noexcept { return path_; }
    static std::vector<std::string> columns() { return {"epoch", "step", "loss", "lr", "images_per_s"}; }

    void run_start(const run_info& i) override {
        if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
        if (i.resumed) io::truncate_csv_log(path_, "step", static_cast<double>(i.start.global_step));
        log_.emplace(path_, columns(), i.resumed);
    }

    void step_end(const step_report& r) override {
        require(log_.has_value(), "metrics_csv: step_end before run_start");
        log_->row({double(r.epoch + 1), double(r.step), r.loss, r.lr, r.images_per_second});
    }

private:
    std::filesystem::path path_;
    std::optional<io::csv_log> log_;
};

}  // namespace ssl::train
