// The tar reader (data/tar.hpp): round trip with the writer, archives made
// by GNU tar, and every kind of damage refused with the member and the reason.
#include <doctest/doctest.h>

#include <ssl/data/tar.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "temp_files.hpp"

namespace test_tar {

namespace {

using bytes = std::vector<unsigned char>;

std::string archive(const std::vector<std::pair<std::string, std::string>>& members) {
    std::ostringstream out;
    ssl::data::tar_writer w(out, "test.tar");
    for (const auto& [n, d] : members)
        w.add(n, std::span(reinterpret_cast<const unsigned char*>(d.data()), d.size()));
    w.finish();
    return out.str();
}

std::vector<std::pair<std::string, std::string>> read_all(const std::string& tar) {
    std::istringstream in(tar);
    ssl::data::tar_reader r(in, "test.tar");
    std::vector<std::pair<std::string, std::string>> out;
    ssl::data::tar_member m;
    bytes b;
    while (r.next(m)) {
        r.read(b);
        out.emplace_back(m.name, std::string(b.begin(), b.end()));
    }
    return out;
}

}  // namespace

TEST_CASE("tar: what the writer writes, the reader reads back (sizes 0, 1, 511, 512, 513 bytes)") {
    std::vector<std::pair<std::string, std::string>> m;
    for (std::size_t n : {0u, 1u, 511u, 512u, 513u, 5000u}) m.emplace_back("m" + std::to_string(n) + ".bin", std::string(n, char('a' + n % 26)));
    const std::string t = archive(m);
    CHECK(t.size() % 512 == 0);
    CHECK(read_all(t) == m);
    // archives end with two zero blocks, but one without them is read to the end too
    CHECK(read_all(t.substr(0, t.size() - 1024)) == m);
}

TEST_CASE("tar: reads an archive GNU tar wrote (ustar and pax formats, long names, directories skipped)") {
    if (std::system("tar --version > /dev/null 2>&1") != 0) return;  // no tar program: nothing to compare with
    ssl_test::temp_dir d("tar_gnu");
    std::filesystem::create_directories(d.path / "in" / "sub");
    const std::string long_name(120, 'x');
    std::ofstream(d.path / "in" / "a.txt") << "hello";
    std::ofstream(d.path / "in" / "sub" / (long_name + ".cls")) << "7\n";
    for (const char* fmt : {"ustar", "pax", "gnu"}) {
        CAPTURE(fmt);
        const auto out = d.path / (std::string(fmt) + ".tar");
        const std::string cmd = "cd '" + (d.path / "in").string() + "' && tar --format=" + fmt + " -cf '" + out.string() +
                                "' a.txt sub 2>/dev/null";
        if (std::system(cmd.c_str()) != 0) {
            CHECK(std::string(fmt) == "ustar");  // ustar cannot hold a 124-byte name; the others must
            continue;
        }
        ssl::data::tar_reader r(out);
        ssl::data::tar_member m;
        bytes b;
        std::vector<std::pair<std::string, std::string>> got;
        while (r.next(m)) {
            r.read(b);
            got.emplace_back(m.name, std::string(b.begin(), b.end()));
        }
        REQUIRE(got.size() == 2);
        CHECK(got[0] == std::pair<std::string, std::string>{"a.txt", "hello"});
        CHECK(got[1] == std::pair<std::string, std::string>{"sub/" + long_name + ".cls", "7\n"});
    }
}

TEST_CASE("tar: a truncated archive is refused with where it ends") {
    const std::string t = archive({{"000001.png", std::string(700, 'p')}, {"000001.cls", "3\n"}});
    // inside the second header, inside the first member's data, inside its padding
    for (std::size_t cut : {1536u + 100u, 512u + 300u, 512u + 800u}) {
        CAPTURE(cut);
        CHECK_THROWS_WITH_AS(read_all(t.substr(0, cut)), doctest::Contains("tar 'test.tar'"), ssl::io_error);
        CHECK_THROWS_WITH_AS(read_all(t.substr(0, cut)), doctest::Contains("truncated"), ssl::io_error);
    }
    CHECK_THROWS_WITH_AS(read_all(t.substr(0, 300)), doctest::Contains("inside a member header (300 of 512 bytes)"),
                         ssl::io_error);
    CHECK_THROWS_WITH_AS(read_all(t.substr(0, 512 + 300)),
                         doctest::Contains("member '000001.png' declares 700 bytes of data, but the file ends 300 bytes after its header"), ssl::io_error);
}

TEST_CASE("tar: a header whose checksum does not match is corrupt, naming the member and the sums") {
    std::string t = archive({{"000001.png", "abc"}, {"000001.cls", "3\n"}});
    std::string bad = t;
    bad[1024 + 3] = 'X';  // a byte of the second member's name
    CHECK_THROWS_WITH_AS(read_all(bad), doctest::Contains("at byte 1024: corrupt member header ('000X01.cls'): checksum"),
                         ssl::io_error);
    bad = t;
    bad[124 + 10] = '9';  // a size digit that is not octal
    CHECK_THROWS_WITH_AS(read_all(bad), doctest::Contains("corrupt member header"), ssl::io_error);
    bad = t;
    bad.replace(148, 8, "zzzzzzzz");  // the checksum field itself
    CHECK_THROWS_WITH_AS(read_all(bad), doctest::Contains("checksum field 'zzzzzzzz' is not an octal number"),
                         ssl::io_error);
    // random bytes are not a tar file
    CHECK_THROWS_AS(read_all(std::string(2048, '\x7f')), ssl::io_error);
    // a header without a single NUL byte (found by the fuzzer: the name shown
    // in the message must stop at the name field's 100 bytes, not run on)
    std::string no_nul(1024, 'a');
    no_nul.replace(148, 8, "0000000 ");
    const std::string named = "corrupt member header ('" + std::string(100, 'a') + "'): checksum 0 stored";
    CHECK_THROWS_WITH_AS(read_all(no_nul), doctest::Contains(named.c_str()), ssl::io_error);
}

TEST_CASE("tar: a size field larger than the file is refused before anything is allocated") {
    std::string t = archive({{"big.bin", "abc"}});
    // size 077777777777 (8 GiB), checksum fixed up so that the header is otherwise valid
    t.replace(124, 11, "77777777777");
    std::memset(t.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(t[static_cast<std::size_t>(i)]);
    char field[8];
    std::snprintf(field, sizeof field, "%06o", sum);
    std::memcpy(t.data() + 148, field, 7);
    CHECK_THROWS_WITH_AS(read_all(t), doctest::Contains("member 'big.bin' declares 8589934591 bytes of data"),
                         ssl::io_error);
}

TEST_CASE("tar: the writer refuses names it cannot store") {
    std::ostringstream out;
    ssl::data::tar_writer w(out, "x.tar");
    const unsigned char b[1] = {0};
    CHECK_THROWS_WITH_AS(w.add(std::string(101, 'n'), b), doctest::Contains("must be 1 to 100 bytes long"),
                         ssl::value_error);
    CHECK_THROWS_AS(w.add("", b), ssl::value_error);
}

}  // namespace test_tar
