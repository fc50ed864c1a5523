#pragma once
// The CPU against the instruction sets a program was compiled for.
//
// ssl is header-only: its kernels, and Eigen's, are compiled with the flags of
// the program that includes them. A program compiled with -march=native on an
// AVX-512 machine, or with -march=x86-64-v3, executes AVX-512 or AVX2
// instructions that an older CPU lacks and dies with SIGILL ("illegal
// instruction") at the first one, often in a static initialiser before main.
// ssl::check_cpu() throws an ssl::value_error naming the missing extension and
// the fix instead; ssl::cpu::exit_if_unsupported() prints the same message and
// exits, for a program's first constructor (examples/cli/main.cpp shows how);
// ssl::trainer's constructor calls check_cpu().
//
// The x86-64 micro-architecture levels (x86-64 psABI), by index:
//   0 x86-64     the baseline (SSE2): every x86-64 CPU
//   1 x86-64-v2  + SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CMPXCHG16B
//   2 x86-64-v3  + AVX, AVX2, FMA, BMI1, BMI2, F16C, LZCNT, MOVBE (Haswell, Zen 1 and later)
//   3 x86-64-v4  + AVX-512 F, BW, CD, DQ, VL (Skylake-X, Ice Lake, Sapphire Rapids, Zen 4)
// A build for level N runs on CPUs of level N and above (-march=x86-64-vN).
//
// The checking code is itself compiled for the baseline (target("arch=x86-64"))
// and calls nothing but the compiler's CPU queries and the C library, so it
// runs on any x86-64 CPU whatever the flags of the translation unit around it.
// It checks the flags the including translation unit was compiled with; a
// program's translation units must share them anyway (one definition of every
// inline Eigen and ssl function). Off x86-64 everything here is a no-op:
// compiled_level() and cpu_level() are -1, check_cpu() returns.
#include <array>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SSL_CPU_X86 1
#define SSL_CPU_BASELINE [[gnu::target("arch=x86-64"), gnu::noinline]]
#else
#define SSL_CPU_X86 0
#define SSL_CPU_BASELINE
#endif

namespace ssl::cpu {

inline constexpr int level_count = 4;
/// The level names as -march takes them, by index.
inline constexpr std::array<std::string_view, level_count> level_names{"x86-64", "x86-64-v2", "x86-64-v3",
                                                                       "x86-64-v4"};

/// What each level adds that matters to ssl's kernels, by index.
inline constexpr std::array<std::string_view, level_count> level_summaries{"SSE2", "SSE4.2", "AVX2, FMA",
                                                                           "AVX-512"};

/// The index of a level name ("x86-64" 0 ... "x86-64-v4" 3); -1 when it is none.
constexpr int level_index(std::string_view name) noexcept {
    for (int i = 0; i < level_count; ++i)
        if (level_names[static_cast<std::size_t>(i)] == name) return i;
    return -1;
}

/// The highest level whose every extension this translation unit was compiled
/// for (the compiler's predefined macros); -1 off x86-64.
constexpr int compiled_level() noexcept {
#if !SSL_CPU_X86
    return -1;
#else
    int level = 0;
#if defined(__SSE3__) && defined(__SSSE3__) && defined(__SSE4_1__) && defined(__SSE4_2__) && defined(__POPCNT__)
    level = 1;
#if defined(__AVX__) && defined(__AVX2__) && defined(__FMA__) && defined(__BMI__) && defined(__BMI2__) && \
    defined(__F16C__) && defined(__LZCNT__) && defined(__MOVBE__)
    level = 2;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
    level = 3;
#endif
#endif
#endif
    return level;
#endif
}

namespace detail {
// The message path, all of it compiled for the baseline: no std::string, no
// inline function of the surrounding translation unit (a function compiled
// for more than the caller is not inlined but called, with its instructions).
struct cpu_text {
    char text[768];
    std::size_t size;
};
inline constexpr const char* level_cstr[level_count] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};

SSL_CPU_BASELINE inline void append(cpu_text& t, const char* s) noexcept {
    while (*s != '\0' && t.size + 1 < sizeof t.text) t.text[t.size++] = *s++;
    t.text[t.size] = '\0';
}
}  // namespace detail

/// The highest level this CPU and its operating system support (the
/// extensions and the OS's saving of their registers); -1 off x86-64.
SSL_CPU_BASELINE inline int cpu_level() noexcept {
#if !SSL_CPU_X86
    return -1;
#else
    __builtin_cpu_init();  // also before the constructors that would run it
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
    if (__builtin_cpu_supports("x86-64-v4")) return 3;
    if (__builtin_cpu_supports("x86-64-v3")) return 2;
    if (__builtin_cpu_supports("x86-64-v2")) return 1;
    return 0;
#else  // older GCC, clang: the levels' extensions that these compilers can query
    const bool v2 = __builtin_cpu_supports("sse3") && __builtin_cpu_supports("ssse3") &&
                    __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("sse4.2") &&
                    __builtin_cpu_supports("popcnt");
    const bool v3 = v2 && __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
                    __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl");
    return v4 ? 3 : v3 ? 2 : v2 ? 1 : 0;
#endif
#endif
}

/// The first instruction-set extension this translation unit was compiled for
/// that this CPU lacks ("avx512f", "avx2", ...); nullptr when it has them all
/// (and off x86-64). Covers the levels' extensions and the AVX-512 ones that
/// -march=native adds on newer CPUs (VNNI, BF16, FP16, ...).
SSL_CPU_BASELINE inline const char* missing_extension() noexcept {
#if SSL_CPU_X86
    __builtin_cpu_init();
#define SSL_CPU_NEED(name) \
    if (!__builtin_cpu_supports(name)) return name;
#ifdef __AVX512F__
    SSL_CPU_NEED("avx512f")
#endif
#ifdef __AVX512BW__
    SSL_CPU_NEED("avx512bw")
#endif
#ifdef __AVX512CD__
    SSL_CPU_NEED("avx512cd")
#endif
#ifdef __AVX512DQ__
    SSL_CPU_NEED("avx512dq")
#endif
#ifdef __AVX512VL__
    SSL_CPU_NEED("avx512vl")
#endif
#ifdef __AVX512VNNI__
    SSL_CPU_NEED("avx512vnni")
#endif
#ifdef __AVX512VBMI__
    SSL_CPU_NEED("avx512vbmi")
#endif
#ifdef __AVX512VBMI2__
    SSL_CPU_NEED("avx512vbmi2")
#endif
#ifdef __AVX512IFMA__
    SSL_CPU_NEED("avx512ifma")
#endif
#ifdef __AVX512BITALG__
    SSL_CPU_NEED("avx512bitalg")
#endif
#ifdef __AVX512VPOPCNTDQ__
    SSL_CPU_NEED("avx512vpopcntdq")
#endif
#ifdef __AVX512BF16__
    SSL_CPU_NEED("avx512bf16")
#endif
#ifdef __AVX2__
    SSL_CPU_NEED("avx2")
#endif
#ifdef __FMA__
    SSL_CPU_NEED("fma")
#endif
#ifdef __AVX__
    SSL_CPU_NEED("avx")
#endif
#ifdef __BMI__
    SSL_CPU_NEED("bmi")
#endif
#ifdef __BMI2__
    SSL_CPU_NEED("bmi2")
#endif
#if defined(__GNUC__) && !defined(__clang__)  // names clang 14 cannot query
#ifdef __AVX512FP16__
    SSL_CPU_NEED("avx512fp16")
#endif
#ifdef __AVXVNNI__
    SSL_CPU_NEED("avxvnni")
#endif
#ifdef __VAES__
    SSL_CPU_NEED("vaes")
#endif
#ifdef __F16C__
    SSL_CPU_NEED("f16c")
#endif
#ifdef __LZCNT__
    SSL_CPU_NEED("lzcnt")
#endif
#ifdef __MOVBE__
    SSL_CPU_NEED("movbe")
#endif
#endif
#ifdef __GFNI__
    SSL_CPU_NEED("gfni")
#endif
#ifdef __VPCLMULQDQ__
    SSL_CPU_NEED("vpclmulqdq")
#endif
#ifdef __SSE4_2__
    SSL_CPU_NEED("sse4.2")
#endif
#ifdef __SSE4_1__
    SSL_CPU_NEED("sse4.1")
#endif
#ifdef __SSSE3__
    SSL_CPU_NEED("ssse3")
#endif
#ifdef __SSE3__
    SSL_CPU_NEED("sse3")
#endif
#ifdef __POPCNT__
    SSL_CPU_NEED("popcnt")
#endif
#undef SSL_CPU_NEED
#endif
    return nullptr;
}

namespace detail {
/// The message for a CPU that lacks `extension`: `who` (e.g. "ssl") was
/// compiled for level `compiled` (-1: below any, extensions only), the CPU
/// supports up to `cpu`.
SSL_CPU_BASELINE inline void mismatch_text(cpu_text& t, const char* who, const char* extension, int compiled,
                                           int cpu) noexcept {
    t.size = 0;
    t.text[0] = '\0';
    append(t, who);
    append(t, " was compiled for instructions this CPU lacks: ");
    append(t, extension);
    append(t, " (it was built for ");
    if (compiled >= 0 && compiled < level_count) {
        append(t, level_cstr[compiled]);
        if (compiled > cpu) {
            append(t, ": -march=");
            append(t, level_cstr[compiled]);
            append(t, ", or -march=native on a newer machine");
        } else {
            append(t, " and more: -march=native on a newer machine");
        }
    } else {
        append(t, "more than this CPU has");
    }
    append(t, "; this CPU is ");
    if (cpu >= 0 && cpu < level_count) append(t, level_cstr[cpu]);
    else append(t, "of no known x86-64 level");
    append(t, "). Rebuild it with -march=");
    append(t, cpu >= 0 && cpu < level_count ? level_cstr[cpu] : "x86-64");
    append(t, " (or -march=native on this machine), or use an ssl program built with -DSSL_CPU_LEVELS, which "
              "runs on every x86-64 CPU (README: One binary for every x86-64 CPU)");
}
}  // namespace detail

/// The message check_cpu() would throw for these values (for tests and tools).
inline std::string mismatch_message(const char* who, const char* extension, int compiled, int cpu) {
    detail::cpu_text t{};
    detail::mismatch_text(t, who, extension, compiled, cpu);
    return t.text;
}

/// Throws ssl::value_error when this CPU lacks an extension this translation
/// unit was compiled for, naming it and the fix; `who` names the program.
SSL_CPU_BASELINE inline void check_cpu(const char* who = "this program") {
    const char* missing = missing_extension();
    if (missing == nullptr) return;
    constexpr int compiled = compiled_level();
    detail::cpu_text t{};
    detail::mismatch_text(t, who, missing, compiled, cpu_level());
    throw value_error(t.text);
}

/// As check_cpu(), for a program's startup: prints "`who`: error: MESSAGE" to
/// stderr and exits with 2. Call it from a constructor that runs before the
/// program's static initialisers, which are compiled with the same flags:
///   [[gnu::constructor(101)]] static void cpu_gate() { ssl::cpu::exit_if_unsupported("app"); }
SSL_CPU_BASELINE inline void exit_if_unsupported(const char* who) noexcept {
    const char* missing = missing_extension();
    if (missing == nullptr) return;
    constexpr int compiled = compiled_level();
    static detail::cpu_text t;  // static: no large stack frame to clear
    detail::mismatch_text(t, who, missing, compiled, cpu_level());
    std::fputs(who, stderr);
    std::fputs(": error: ", stderr);
    std::fputs(t.text, stderr);
    std::fputs("\n", stderr);
    std::_Exit(2);
}

/// "x86-64-v3 (AVX2, FMA)" for level 2; "none" off x86-64 (level -1).
inline std::string level_text(int level) {
    if (level < 0 || level >= level_count) return "none";
    const auto i = static_cast<std::size_t>(level);
    return std::string(level_names[i]) + " (" + std::string(level_summaries[i]) + ")";
}

/// The levels from 0 to `up_to`, as "x86-64, x86-64-v2, x86-64-v3".
inline std::string level_list(int up_to) {
    std::string s;
    for (int i = 0; i <= up_to && i < level_count; ++i) {
        if (i > 0) s += ", ";
        s += level_names[static_cast<std::size_t>(i)];
    }
    return s;
}

/// The choice of a launcher (examples/cli/launcher.cpp) among the levels it
/// has a program for: `level` (an index), or an `error` saying why none.
struct level_choice {
    int level = -1;
    std::string error;
};

/// Picks among `built` (level indices) for a CPU of level `cpu`: the highest
/// built level the CPU supports, or `forced` (a level name; "" or "auto": the
/// highest) when it was built and the CPU supports it.
inline level_choice choose_level(const std::vector<int>& built, int cpu, std::string_view forced) {
    std::string built_text;
    for (int l = 0; l < level_count; ++l)
        for (int b : built)
            if (b == l) {
                built_text += built_text.empty() ? "" : ", ";
                built_text += level_names[static_cast<std::size_t>(l)];
                break;
            }
    const std::string cpu_text = cpu >= 0 ? level_list(cpu) : "none (not an x86-64 CPU)";
    level_choice c;
    if (forced.empty() || forced == "auto") {
        for (int b : built)
            if (b <= cpu && b > c.level) c.level = b;
        if (c.level < 0)
            c.error = "this CPU supports " + cpu_text + "; this ssl was built only for " + built_text +
                      " (SSL_CPU_LEVELS): build it with x86-64 among the levels";
        return c;
    }
    const int want = level_index(forced);
    if (want < 0) {
        c.error = "SSL_CPU_LEVEL=" + std::string(forced) + ": not a level (" + level_list(level_count - 1) +
                  "; auto: the highest this CPU supports; list: what was built and chosen)";
        return c;
    }
    bool have = false;
    for (int b : built) have = have || b == want;
    if (!have) {
        c.error = "SSL_CPU_LEVEL=" + std::string(forced) + ": that level was not built (built: " + built_text +
                  "; SSL_CPU_LEVELS chooses them)";
        return c;
    }
    if (want > cpu) {
        c.error = "SSL_CPU_LEVEL=" + std::string(forced) + ": this CPU lacks it (it supports " + cpu_text +
                  "); running it would end in an illegal instruction";
        return c;
    }
    c.level = want;
    return c;
}

}  // namespace ssl::cpu

namespace ssl {
using cpu::check_cpu;
}  // namespace ssl
