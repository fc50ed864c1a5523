// The CPU check (core/cpu_check.hpp): the levels, this CPU against this test's
// flags, the message for a CPU that lacks an extension, and the launcher's
// choice among the levels built (examples/cli/launcher.cpp, SSL_CPU_LEVELS).
#include <doctest/doctest.h>

#include <ssl/core/cpu_check.hpp>

#include <string>

namespace test_cpu_check {  // each file in its own namespace: an area builds as one unity translation unit

using namespace ssl::cpu;

TEST_CASE("level names: the -march names of the x86-64 levels, in order") {
    CHECK(level_index("x86-64") == 0);
    CHECK(level_index("x86-64-v2") == 1);
    CHECK(level_index("x86-64-v3") == 2);
    CHECK(level_index("x86-64-v4") == 3);
    CHECK(level_index("x86-64-v5") == -1);
    CHECK(level_index("native") == -1);
    CHECK(level_index("") == -1);
    CHECK(level_list(2) == "x86-64, x86-64-v2, x86-64-v3");
    static_assert(level_index("x86-64-v3") == 2);
}

TEST_CASE("this CPU runs this test: it has every extension the test was compiled for") {
#if defined(__x86_64__)
    CHECK(compiled_level() >= 0);
    CHECK(cpu_level() >= compiled_level());
    CHECK(missing_extension() == nullptr);
#if defined(__AVX2__) && defined(__FMA__)
    CHECK(compiled_level() >= 2);  // -march=native on an AVX2 machine, or -march=x86-64-v3
#endif
#else
    CHECK(compiled_level() == -1);
    CHECK(cpu_level() == -1);
    CHECK(missing_extension() == nullptr);
#endif
    CHECK_NOTHROW(ssl::check_cpu());
    CHECK_NOTHROW(ssl::check_cpu("ssl"));
    exit_if_unsupported("test");  // returns
}

TEST_CASE("the message names the missing extension, both levels and the fix") {
    const std::string v4_on_v3 = mismatch_message("ssl", "avx512f", 3, 2);
    CHECK(v4_on_v3 ==
          "ssl was compiled for instructions this CPU lacks: avx512f (it was built for x86-64-v4: -march=x86-64-v4, "
          "or -march=native on a newer machine; this CPU is x86-64-v3). Rebuild it with -march=x86-64-v3 (or "
          "-march=native on this machine), or use an ssl program built with -DSSL_CPU_LEVELS, which runs on every "
          "x86-64 CPU (README: One binary for every x86-64 CPU)");
    // -march=native on a newer AVX-512 CPU, run on an older one: the level is there, an extension is not
    const std::string fp16 = mismatch_message("this program", "avx512fp16", 3, 3);
    CHECK(fp16.find("lacks: avx512fp16 (it was built for x86-64-v4 and more: -march=native on a newer machine; "
                    "this CPU is x86-64-v4). Rebuild it with -march=x86-64-v4") != std::string::npos);
    const std::string v3_on_v1 = mismatch_message("app", "avx2", 2, 0);
    CHECK(v3_on_v1.find("app was compiled for instructions this CPU lacks: avx2") == 0);
    CHECK(v3_on_v1.find("this CPU is x86-64). Rebuild it with -march=x86-64 (") != std::string::npos);
    // a very long name is cut, not overflowed
    const std::string cut = mismatch_message(std::string(2000, 'x').c_str(), "avx2", 2, 0);
    CHECK(cut.size() < 768);
}

TEST_CASE("choose_level: the highest level built that the CPU supports") {
    const std::vector<int> built{0, 2, 3};
    CHECK(choose_level(built, 3, "").level == 3);
    CHECK(choose_level(built, 2, "").level == 2);
    CHECK(choose_level(built, 1, "").level == 0);  // a v2 CPU runs the baseline one
    CHECK(choose_level(built, 0, "auto").level == 0);
    const auto none = choose_level({2, 3}, 1, "");
    CHECK(none.level == -1);
    CHECK(none.error ==
          "this CPU supports x86-64, x86-64-v2; this ssl was built only for x86-64-v3, x86-64-v4 (SSL_CPU_LEVELS): "
          "build it with x86-64 among the levels");
}

TEST_CASE("choose_level: SSL_CPU_LEVEL forces a level the CPU has and that was built, else says why not") {
    const std::vector<int> built{0, 2, 3};
    CHECK(choose_level(built, 3, "x86-64").level == 0);
    CHECK(choose_level(built, 3, "x86-64-v3").level == 2);
    CHECK(choose_level(built, 3, "x86-64-v4").level == 3);
    const auto lacks = choose_level(built, 2, "x86-64-v4");
    CHECK(lacks.level == -1);
    CHECK(lacks.error == "SSL_CPU_LEVEL=x86-64-v4: this CPU lacks it (it supports x86-64, x86-64-v2, x86-64-v3); "
                         "running it would end in an illegal instruction");
    const auto not_built = choose_level(built, 3, "x86-64-v2");
    CHECK(not_built.level == -1);
    CHECK(not_built.error ==
          "SSL_CPU_LEVEL=x86-64-v2: that level was not built (built: x86-64, x86-64-v3, x86-64-v4; SSL_CPU_LEVELS "
          "chooses them)");
    const auto unknown = choose_level(built, 3, "haswell");
    CHECK(unknown.level == -1);
    CHECK(unknown.error.find("SSL_CPU_LEVEL=haswell: not a level (x86-64, x86-64-v2, x86-64-v3, x86-64-v4; auto") ==
          0);
}

}  // namespace test_cpu_check
