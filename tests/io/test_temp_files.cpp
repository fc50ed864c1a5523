// The temporary files of atomic writes: a failed write leaves none, a failed
// plot write is a warning, and a killed process's are removed by the next run.
#include <doctest/doctest.h>

#include <ssl/io/metrics_log.hpp>
#include <ssl/io/temp_files.hpp>
#include <ssl/train/checkpointer.hpp>
#include <ssl/train/run_plot.hpp>

#include "temp_files.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace test_temp_files {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;

namespace {

void touch(const fs::path& p) { std::ofstream(p) << "x"; }

/// The names in `dir` that hold ".tmp".
std::string temps_in(const fs::path& dir) {
    std::string s;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp") != std::string::npos) s += e.path().filename().string() + " ";
    return s;
}

// pid 4194305 is above Linux's largest (2^22): no process has it
const std::string dead = "4194305";

}  // namespace

TEST_CASE("temp files: the pid in a name; stale ones of dead processes are removed, others kept") {
    CHECK(ssl::io::temp_file_pid("last.safetensors.tmp.1234") == 1234);
    CHECK(ssl::io::temp_file_pid("plot.svg.tmp") == 0);
    CHECK(ssl::io::temp_file_pid("notes.tmp.txt") == 0);
    CHECK(ssl::io::temp_file_pid(".tmp.12") == 0);
    CHECK(ssl::io::temp_path("d/last.safetensors") == "d/last.safetensors.tmp." + std::to_string(::getpid()));

    ssl_test::temp_dir d("temp_files");
    fs::create_directories(d.path / "sub");
    touch(d.path / ("last.safetensors.tmp." + dead));
    touch(d.path / ("plot.svg.tmp." + dead));
    touch(d.path / ("sub/epoch_001.safetensors.tmp." + dead));  // below the directory: not looked at
    touch(ssl::io::temp_path(d.path / "mine.safetensors"));    // this process runs
    touch(d.path / "notes.tmp.txt");
    const auto removed = ssl::io::remove_stale_temps(d.path);
    CHECK(removed.size() == 2);
    CHECK_FALSE(fs::exists(d.path / ("last.safetensors.tmp." + dead)));
    CHECK_FALSE(fs::exists(d.path / ("plot.svg.tmp." + dead)));
    CHECK(fs::exists(d.path / ("sub/epoch_001.safetensors.tmp." + dead)));
    CHECK(fs::exists(ssl::io::temp_path(d.path / "mine.safetensors")));
    CHECK(fs::exists(d.path / "notes.tmp.txt"));
    CHECK(ssl::io::remove_stale_temps(d.path / "missing").empty());

    // the checkpointer cleans its directory when a run starts, and says so
    touch(d.path / ("last.safetensors.tmp." + dead));
    std::FILE* notices = std::tmpfile();
    REQUIRE(notices != nullptr);
    ssl::train::checkpointer cp(d.path, {}, notices);
    cp.run_start({});
    CHECK_FALSE(fs::exists(d.path / ("last.safetensors.tmp." + dead)));
    std::rewind(notices);
    char line[512] = {};
    REQUIRE(std::fgets(line, sizeof line, notices) != nullptr);
    CHECK(std::string(line).find("last.safetensors.tmp." + dead + "', left by a process that no longer runs") !=
          std::string::npos);
    std::fclose(notices);
}

TEST_CASE("temp files: a failed atomic write leaves none; a failed plot write is a warning") {
    ssl_test::temp_dir d("temp_files_write");
    fs::create_directories(d.path / "plot.svg");  // rename onto a directory fails
    touch(d.path / "plot.svg/keep");
    try {
        ssl::io::write_run_plot(d.path / "plot.svg", "t", {"loss", {{1, 2}}}, {});
        FAIL("wrote over a directory");
    } catch (const ssl::io_error& e) {
        CHECK(std::string(e.what()).find("plot '" + (d.path / "plot.svg").string() + "': cannot rename") !=
              std::string::npos);
    }
    CHECK(temps_in(d.path).empty());

    std::FILE* notices = std::tmpfile();
    REQUIRE(notices != nullptr);
    ssl::train::run_plot plot(d.path / "plot.svg", "t", notices);
    plot.step_end({.step = 1, .loss = 2.0});
    CHECK_NOTHROW(plot.run_end());
    CHECK_FALSE(plot.try_write());
    std::rewind(notices);
    std::string text;
    for (char line[512]; std::fgets(line, sizeof line, notices);) text += line;
    std::fclose(notices);
    CHECK(text.find("warning: the plot is not written (plot '") != std::string::npos);
    CHECK(text.find("training goes on") != std::string::npos);
    CHECK(text.find("warning", 1) == std::string::npos);  // the same failure is told once
    CHECK(temps_in(d.path).empty());

    // a metrics log rewritten over a directory: an error, no temporary file
    fs::create_directories(d.path / "m.csv");
    CHECK_NOTHROW(ssl::io::truncate_csv_log(d.path / "absent.csv", "step", 3));
    CHECK_THROWS_AS(ssl::io::write_text_atomic(d.path / "m.csv", "a\n", "metrics log"), ssl::io_error);
    CHECK(temps_in(d.path).empty());
}

}  // namespace test_temp_files
