#pragma once
// The temporary files of atomic writes. Every file ssl writes atomically
// (checkpoints, features, plot.svg, a rewritten metrics.csv) is first
// written to "<path>.tmp.<pid>" in the same directory and then renamed over
// <path>; a failed write removes its temporary file. A process killed in
// the middle (kill -9, power loss) cannot clean up: remove_stale_temps,
// which the trainer's checkpointer calls on the run's directory when a run
// starts, removes the temporary files of processes that no longer run.
// POSIX only.
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "../core/error.hpp"

namespace ssl::io {

/// "<path>.tmp.<pid of this process>".
inline std::filesystem::path temp_path(const std::filesystem::path& path) {
    return path.string() + ".tmp." + std::to_string(::getpid());
}

/// The pid of a temporary file's name "<name>.tmp.<pid>", or 0 when the name
/// is not one.
inline long temp_file_pid(const std::string& name) {
    const auto dot = name.rfind(".tmp.");
    if (dot == std::string::npos || dot == 0) return 0;
    const std::string digits = name.substr(dot + 5);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stol(digits);
}

/// Removes the temporary files in `dir` (not below it) of processes that no
/// longer run, and returns their paths. A file of a running process (this
/// one, or another writing into the same directory; a pid reused by another
/// program counts as running) is left alone, as is anything that cannot be
/// removed.
inline std::vector<std::filesystem::path> remove_stale_temps(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::vector<fs::path> removed;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const long pid = temp_file_pid(it->path().filename().string());
        if (pid <= 0 || !it->is_regular_file(ec)) continue;
        if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // running (or not ours to ask)
        std::error_code rm;
        if (fs::remove(it->path(), rm)) removed.push_back(it->path());
    }
    return removed;
}

/// Writes `text` to `path` atomically (temp_path, then rename); on failure
/// the temporary file is removed and io_error names `what` ("plot") and the
/// path.
inline void write_text_atomic(const std::filesystem::path& path, const std::string& text, const std::string& what) {
    const auto tmp = temp_path(path);
    std::error_code ec;
    try {
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            require<io_error>(out.good(), what, " '", path.string(), "': cannot create the temporary file '",
                              tmp.string(), "'");
            out << text;
            out.flush();
            require<io_error>(out.good(), what, " '", path.string(), "': writing '", tmp.string(),
                              "' failed (disk full?)");
        }
        std::filesystem::rename(tmp, path, ec);
        require<io_error>(!ec, what, " '", path.string(), "': cannot rename '", tmp.string(), "' over it: ",
                          ec.message());
    } catch (...) {
        std::filesystem::remove(tmp, ec);
        throw;
    }
}

}  // namespace ssl::io
