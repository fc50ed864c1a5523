// `ssl` in a build with SSL_CPU_LEVELS (README: One binary for every x86-64
// CPU): the ssl program is built once per x86-64 level (ssl-x86-64,
// ssl-x86-64-v3, ssl-x86-64-v4, ...); this launcher, built for the baseline,
// runs the highest one this CPU supports with the same arguments.
//
// It looks for ssl-<level> next to itself (the build tree), then in the
// libexec folder relative to it (the installed layout: bin/ssl,
// libexec/ssl/ssl-<level>).
//
//   SSL_CPU_LEVEL=x86-64-v3 ssl ...   that level (refused when it was not built or the CPU lacks it)
//   SSL_CPU_LEVEL=list ssl            the levels built, the CPU's, and the one chosen
//
// Exit status: that of the program it runs; 2 for a refused SSL_CPU_LEVEL or
// no level fitting the CPU, 127 when the program for the level is missing,
// 126 when it cannot be run.
#include <ssl/core/cpu_check.hpp>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#ifndef SSL_LAUNCHER_NAME
#error "SSL_LAUNCHER_NAME (the program's name, e.g. \"ssl\") comes from cmake/ssl_cpu_levels.cmake"
#endif
#ifndef SSL_LAUNCHER_LEVELS
#error "SSL_LAUNCHER_LEVELS (the levels built, e.g. \"x86-64,x86-64-v3\") comes from cmake/ssl_cpu_levels.cmake"
#endif
#ifndef SSL_LAUNCHER_LIBEXEC
#define SSL_LAUNCHER_LIBEXEC "../libexec/" SSL_LAUNCHER_NAME
#endif

namespace {

constexpr const char* name = SSL_LAUNCHER_NAME;

[[noreturn]] void fail(int status, const std::string& message) {
    std::fprintf(stderr, "%s: error: %s\n", name, message.c_str());
    std::exit(status);
}

std::vector<int> built_levels() {
    std::vector<int> levels;
    std::string_view rest = SSL_LAUNCHER_LEVELS;
    while (!rest.empty()) {
        const auto end = rest.find(',');
        const std::string_view level = rest.substr(0, end);
        const int i = ssl::cpu::level_index(level);
        if (i < 0) fail(2, "this launcher was built with an unknown level '" + std::string(level) + "'");
        levels.push_back(i);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
    return levels;
}

/// The folder of this executable (symbolic links resolved).
std::string own_folder() {
    char path[PATH_MAX + 1];
    const ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
    if (n <= 0)
        fail(126, std::string("cannot find where this launcher is (/proc/self/exe: ") + std::strerror(errno) + ")");
    path[n] = '\0';
    std::string folder(path);
    return folder.substr(0, folder.rfind('/'));
}

/// Where the program for `level` may be, in the order looked at.
std::vector<std::string> candidates(const std::string& folder, int level) {
    const std::string file =
        std::string(name) + "-" + std::string(ssl::cpu::level_names[static_cast<std::size_t>(level)]);
    return {folder + "/" + file, folder + "/" SSL_LAUNCHER_LIBEXEC "/" + file};
}

/// The first candidate that exists, or "" (then `looked` lists them).
std::string find_program(const std::string& folder, int level, std::string& looked) {
    for (const auto& path : candidates(folder, level)) {
        if (access(path.c_str(), X_OK) == 0) return path;
        looked += (looked.empty() ? "" : ", ") + path;
    }
    return {};
}

std::string names(const std::vector<int>& levels) {
    std::string s;
    for (int l : levels) s += (s.empty() ? "" : " ") + std::string(ssl::cpu::level_names[static_cast<std::size_t>(l)]);
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    (void)argc;
    const std::vector<int> built = built_levels();
    const int cpu = ssl::cpu::cpu_level();
    const char* env = std::getenv("SSL_CPU_LEVEL");
    const std::string_view forced = env ? env : "";
    const std::string folder = own_folder();

    if (forced == "list") {
        std::vector<int> cpu_levels;
        for (int l = 0; l <= cpu; ++l) cpu_levels.push_back(l);
        std::printf("built:    %s\n", names(built).c_str());
        std::printf("this CPU: %s\n", cpu >= 0 ? names(cpu_levels).c_str() : "none (not an x86-64 CPU)");
        const auto choice = ssl::cpu::choose_level(built, cpu, "");
        if (choice.level < 0) fail(2, choice.error);
        std::string looked;
        const std::string path = find_program(folder, choice.level, looked);
        const std::string where = path.empty() ? "missing: looked for " + looked : path;
        std::printf("chosen:   %s (%s)\n", std::string(ssl::cpu::level_names[static_cast<std::size_t>(choice.level)]).c_str(),
                    where.c_str());
        return path.empty() ? 127 : 0;
    }

    const auto choice = ssl::cpu::choose_level(built, cpu, forced);
    if (choice.level < 0) fail(2, choice.error);
    std::string looked;
    const std::string path = find_program(folder, choice.level, looked);
    if (path.empty())
        fail(127, "the " + std::string(name) + " program for " +
                      std::string(ssl::cpu::level_names[static_cast<std::size_t>(choice.level)]) +
                      " is missing or not executable (looked for " + looked + "): reinstall or rebuild " + name);
    execv(path.c_str(), argv);
    fail(126, "cannot run " + path + ": " + std::strerror(errno));
}
