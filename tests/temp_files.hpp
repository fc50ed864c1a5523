// Helpers of the tests that write files: a temporary directory, removed at
// the end of its scope, and a file's text.
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

namespace ssl_test {

/// TMP/ssl_NAME_PID, absent at the start (the test creates what it needs)
/// and removed at the end of the scope; the pid keeps parallel test
/// processes apart.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const std::string& name)
        : path(std::filesystem::temp_directory_path() / ("ssl_" + name + "_" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace ssl_test
