#pragma once
// The checkpoint chore. In its directory it keeps
//
//   last.safetensors        the resume point: after every epoch, at a max_steps
//                           stop inside an epoch, and on Ctrl-C
//   epoch_NNN.safetensors   after every complete epoch (NNN: epochs done, 001 on)
//
// Each file is the run's state (model, optimizer, target update) written
// atomically by write_safetensors (a temporary file, fsync, rename), so a
// failed run never loses the last good checkpoint. The metadata is the
// trainer's (method, backbone, optimizer, ...) plus the position in the run:
// "epoch", "step_in_epoch", "global_step" (with_position); read_position and
// load_run read it back.
//
// A checkpoint is only ever a good one: save() refuses when the last step's
// loss was nan or infinite, and the trainer's writer refuses a state with a
// nan or infinite tensor (first_non_finite), so a diverged run never replaces
// the last good checkpoint. saved() says what this run wrote (or resumed
// from), so a divergence message names a checkpoint that exists.
//
// When a run starts, the temporary files of atomic writes that a killed
// process left in the directory are removed (io::remove_stale_temps).
//
// Data parallel with a layer split over the ranks (trainer.hpp): every rank
// has a checkpointer, so that all of them call the writer at the same points
// (the writer is collective there: each rank writes its shards, rank 0 the
// rest); only rank 0's is `primary` (notices, stale temporary files).
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/error.hpp"
#include "../core/parse.hpp"
#include "../io/checkpoint.hpp"
#include "../io/safetensors.hpp"
#include "../io/temp_files.hpp"
#include "chore.hpp"

namespace ssl::train {

/// `meta` with the position entries "epoch", "step_in_epoch" and "global_step".
inline metadata with_position(metadata meta, const run_position& p) {
    meta["epoch"] = std::to_string(p.epoch);
    meta["step_in_epoch"] = std::to_string(p.step_in_epoch);
    meta["global_step"] = std::to_string(p.global_step);
    return meta;
}

/// The position recorded in checkpoint `file` (read from `path`): io_error
/// naming the file when "epoch" or "step_in_epoch" is missing; global_step is
/// 0 when absent.
inline run_position read_position(const io::safetensors_file& file, const std::filesystem::path& path) {
    auto get = [&](const char* k) -> std::size_t {
        auto it = file.metadata.find(k);
        require<io_error>(it != file.metadata.end(), "checkpoint '", path.string(), "' has no '", k,
                          "' entry in its metadata (not written by ssl's trainer?)");
        return static_cast<std::size_t>(
            parse_unsigned(it->second, ssl::detail::cat("checkpoint '", path.string(), "', metadata '", k, "'")));
    };
    run_position p{get("epoch"), get("step_in_epoch"), 0};
    if (auto it = file.metadata.find("global_step"); it != file.metadata.end())
        p.global_step = static_cast<std::size_t>(
            parse_unsigned(it->second, "checkpoint '" + path.string() + "', metadata 'global_step'"));
    return p;
}

/// The first tensor of `state` (parameters, buffers) holding a nan or an
/// infinity, as "tensor 'NAME' holds VALUE"; empty when all are finite.
template <class M>
std::string first_non_finite(M& state) {
    std::string found;
    ssl::detail::for_each_state(state, [&](const std::string& name, const auto& t) {
        using U = typename std::decay_t<decltype(t)>::value_type;
        if constexpr (std::is_floating_point_v<U>) {
            if (!found.empty() || !t.defined()) return;
            for (const U v : t)
                if (!std::isfinite(v)) {
                    found = ssl::detail::cat("tensor '", name, "' holds ",
                                             std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
                    return;
                }
        }
    });
    return found;
}

/// Loads checkpoint `path` into `state` (strictly: every tensor must match)
/// and returns the position it records.
template <class M>
run_position load_run(const std::filesystem::path& path, M& state) {
    const io::safetensors_file file = io::read_safetensors(path);
    ssl::load_state_dict(state, file, true, path.string());
    return read_position(file, path);
}

class checkpointer final : public chore {
public:
    /// Writes into `dir` with `meta` (plus the position) in every file;
    /// notices ("resuming from ...") go to `notices`.
    explicit checkpointer(std::filesystem::path dir, metadata meta = {}, std::FILE* notices = stderr,
                          bool primary = true)
        : dir_(std::move(dir)), meta_(std::move(meta)), notices_(notices), primary_(primary) {}

    static std::filesystem::path last_in(const std::filesystem::path& dir) { return dir / "last.safetensors"; }
    /// "epoch_003.safetensors" after 3 epochs.
    static std::string epoch_file(std::size_t epochs_done) {
        char name[64];
        std::snprintf(name, sizeof name, "epoch_%03zu.safetensors", epochs_done);
        return name;
    }
    const std::filesystem::path& dir() const noexcept { return dir_; }
    std::filesystem::path last() const { return last_in(dir_); }

    void resumed(const std::filesystem::path& from, const run_position& at) override {
        saved_ = at;
        if (primary_)
            std::fprintf(notices_, "resuming from %s at epoch %zu, step %zu\n", from.string().c_str(), at.epoch + 1,
                         at.step_in_epoch);
    }
    /// Creates the directory, and removes the temporary files a killed
    /// process left in it ("<file>.tmp.<pid>" of a pid that no longer runs),
    /// saying so on `notices`.
    void run_start(const run_info& i) override {
        std::filesystem::create_directories(dir_);
        if (primary_)
            for (const auto& p : io::remove_stale_temps(dir_))
            std::fprintf(notices_, "removed '%s', left by a process that no longer runs\n", p.string().c_str());
        write_ = i.write_state;
    }
    void step_end(const step_report& r) override { last_loss_ = r.loss; }
    void epoch_end(const epoch_report& r) override { save(r.position); }
    void interrupted(const run_position& at) override { save(at); }

    /// Writes last.safetensors, and epoch_NNN.safetensors too when `at` is
    /// the start of an epoch. Refuses (ssl::error) after a step whose loss
    /// was nan or infinite.
    void save(const run_position& at) {
        require(static_cast<bool>(write_), "checkpointer: save before run_start (no state to write)");
        require(std::isfinite(last_loss_), "checkpointer: not writing a checkpoint after step ", at.global_step,
                ": its loss is ", last_loss_);
        const metadata meta = with_position(meta_, at);
        write_(last(), meta);
        if (at.step_in_epoch == 0) write_(dir_ / epoch_file(at.epoch), meta);
        saved_ = at;
    }
    /// The position of the last checkpoint this run wrote, or resumed from; nullopt: none yet.
    const std::optional<run_position>& saved() const noexcept { return saved_; }

private:
    std::filesystem::path dir_;
    metadata meta_;
    std::FILE* notices_;
    bool primary_ = true;
    state_writer write_;
    double last_loss_ = 0;
    std::optional<run_position> saved_;
};

}  // namespace ssl::train
