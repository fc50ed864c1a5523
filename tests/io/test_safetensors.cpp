// safetensors reading/writing: round trips, exact bytes, every kind of
// corrupt input, atomic writes.
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <ssl/io/safetensors.hpp>

namespace test_safetensors {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;
using ssl::io::dtype;
using ssl::io::safetensors_file;
using ssl::io::stored_tensor;

namespace {

/// A fresh directory under the system temp dir, removed with its contents.
struct temp_dir {
    fs::path path;
    temp_dir() {
        static std::atomic<int> counter{0};
        std::random_device rd;
        path = fs::temp_directory_path() / ("ssl_test_safetensors_" + std::to_string(::getpid()) + "_" +
                                            std::to_string(counter++) + "_" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

void write_bytes(const fs::path& p, const std::string& bytes) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(o.good());
}

std::string read_bytes(const fs::path& p) {
    std::ifstream i(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(i), {});
}

std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s;
}

/// A file made by hand: length field, header text, data bytes.
std::string raw_file(const std::string& header, const std::string& data) {
    return le64(header.size()) + header + data;
}

/// The message of the io_error that f throws ("" and a failed check if none).
template <class F>
std::string io_error_of(F&& f) {
    try {
        f();
    } catch (const ssl::io_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL_CHECK("expected ssl::io_error, got another exception: ", e.what());
        return {};
    }
    FAIL_CHECK("expected ssl::io_error, nothing was thrown");
    return {};
}

/// Writes `bytes` to a file, reads it, and checks that io_error names the
/// file and contains `needle`.
void check_rejected(const std::string& bytes, const std::string& needle) {
    temp_dir d;
    const fs::path p = d / "bad.safetensors";
    write_bytes(p, bytes);
    const std::string msg = io_error_of([&] { (void)ssl::io::read_safetensors(p); });
    INFO("message: ", msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find(needle) != std::string::npos);
    // The header-only reader refuses the same file with the same words.
    const std::string meta_msg = io_error_of([&] { (void)ssl::io::read_safetensors_metadata(p); });
    CHECK(meta_msg.find(needle) != std::string::npos);
    // The same bytes from memory: the same check, naming "<memory>".
    const std::span<const std::byte> mem(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
    const std::string mem_msg = io_error_of([&] { (void)ssl::io::read_safetensors(mem); });
    INFO("message from memory: ", mem_msg);
    CHECK(mem_msg.find("safetensors file '<memory>': ") != std::string::npos);
    CHECK(mem_msg.find(needle) != std::string::npos);
}

stored_tensor make(dtype d, std::vector<std::size_t> shape, unsigned seed) {
    stored_tensor t;
    t.dtype = d;
    t.shape = std::move(shape);
    t.data.resize(t.numel() * ssl::io::itemsize(d));
    std::mt19937 g(seed);
    for (auto& b : t.data) b = static_cast<std::byte>(g() & 0xff);
    if (d == dtype::BOOL)
        for (auto& b : t.data) b = static_cast<std::byte>(static_cast<unsigned>(b) & 1u);
    return t;
}

bool same(const stored_tensor& a, const stored_tensor& b) {
    return a.dtype == b.dtype && a.shape == b.shape && a.data == b.data;
}

std::vector<std::string> tmp_leftovers(const fs::path& dir) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos) v.push_back(e.path().filename().string());
    return v;
}

}  // namespace

TEST_CASE("dtype names and sizes") {
    CHECK(ssl::io::itemsize(dtype::F64) == 8);
    CHECK(ssl::io::itemsize(dtype::BF16) == 2);
    CHECK(ssl::io::itemsize(dtype::BOOL) == 1);
    for (const char* n : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}) {
        auto d = ssl::io::parse_dtype(n);
        REQUIRE(d.has_value());
        CHECK(ssl::io::dtype_name(*d) == n);
    }
    CHECK_FALSE(ssl::io::parse_dtype("f32").has_value());
    CHECK_FALSE(ssl::io::parse_dtype("F128").has_value());
    CHECK(ssl::io::dtype_of<float>() == dtype::F32);
    CHECK(ssl::io::dtype_of<double>() == dtype::F64);
    CHECK(ssl::io::dtype_of<std::int64_t>() == dtype::I64);
    CHECK(ssl::io::dtype_of<std::uint8_t>() == dtype::U8);
    CHECK(ssl::io::dtype_of<bool>() == dtype::BOOL);
}

TEST_CASE("round trip of many dtypes and shapes, rank 0 and empty tensors included") {
    temp_dir d;
    safetensors_file f;
    f.tensors["f64"] = make(dtype::F64, {3, 2}, 1);
    f.tensors["f32"] = make(dtype::F32, {2, 3, 4}, 2);
    f.tensors["f16"] = make(dtype::F16, {5}, 3);
    f.tensors["bf16"] = make(dtype::BF16, {1, 7}, 4);
    f.tensors["i64.scalar"] = make(dtype::I64, {}, 5);
    f.tensors["i32"] = make(dtype::I32, {4, 1, 1}, 6);
    f.tensors["i16"] = make(dtype::I16, {3}, 7);
    f.tensors["i8"] = make(dtype::I8, {9}, 8);
    f.tensors["u8"] = make(dtype::U8, {2, 2, 2, 2, 2, 2, 2}, 9);  // rank 7 is fine on disk
    f.tensors["bool"] = make(dtype::BOOL, {6}, 10);
    f.tensors["empty"] = make(dtype::F32, {0}, 11);
    f.tensors["empty.middle"] = make(dtype::F64, {2, 0, 3}, 12);
    f.metadata = {{"format", "ssl"}, {"epoch", "12"}, {"note", "caf\xc3\xa9 \"quoted\""}};
    REQUIRE(f.tensors["empty"].data.empty());
    REQUIRE(f.tensors["i64.scalar"].data.size() == 8);

    const fs::path p = d / "all.safetensors";
    ssl::io::write_safetensors(p, f);
    const auto g = ssl::io::read_safetensors(p);
    REQUIRE(g.tensors.size() == f.tensors.size());
    for (const auto& [name, t] : f.tensors) {
        INFO(name);
        REQUIRE(g.tensors.count(name) == 1);
        CHECK(same(t, g.tensors.at(name)));
    }
    CHECK(g.metadata == f.metadata);
    CHECK(g.tensors.at("i64.scalar").shape.empty());
    CHECK(g.tensors.at("i64.scalar").numel() == 1);

    // The data section starts 8-byte aligned, and writing is deterministic.
    const std::string bytes = read_bytes(p);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    CHECK((8 + n) % 8 == 0);
    const fs::path p2 = d / "again.safetensors";
    ssl::io::write_safetensors(p2, g);
    CHECK(read_bytes(p2) == bytes);
    const auto mem = ssl::io::serialize_safetensors(f);
    CHECK(std::string(reinterpret_cast<const char*>(mem.data()), mem.size()) == bytes);
}

TEST_CASE("exact bytes of a tiny file") {
    temp_dir d;
    safetensors_file f;
    const float v[2] = {1.0f, 2.0f};
    stored_tensor t;
    t.dtype = dtype::F32;
    t.shape = {2};
    t.data.resize(8);
    std::memcpy(t.data.data(), v, 8);
    f.tensors["a"] = t;
    const fs::path p = d / "tiny.safetensors";
    ssl::io::write_safetensors(p, f);

    // 54 bytes of JSON + 2 spaces of padding = 56; 8 + 56 = 64 is 8-aligned.
    const std::string json = R"({"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
    REQUIRE(json.size() == 54);
    const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + json + "  " +
                                 std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // 1.0f, 2.0f little-endian
    const std::string got = read_bytes(p);
    CHECK(got.size() == 72);
    CHECK(got == expected);

    // With metadata and an empty tensor: offsets [8, 8] for it, metadata first (sorted keys).
    stored_tensor e;
    e.dtype = dtype::U8;
    e.shape = {0};
    f.tensors["b"] = e;
    f.metadata["k"] = "v";
    ssl::io::write_safetensors(p, f);
    const std::string json2 =
        R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
        R"("b":{"data_offsets":[8,8],"dtype":"U8","shape":[0]}})";
    REQUIRE(json2.size() == 131);  // + 5 spaces: 8 + 136 = 144
    const std::string expected2 = std::string("\x88\0\0\0\0\0\0\0", 8) + json2 + "     " +
                                  std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
    CHECK(read_bytes(p) == expected2);
    const auto back = ssl::io::read_safetensors(p);
    CHECK(back.tensors.at("b").data.empty());
    CHECK(back.metadata.at("k") == "v");
}

TEST_CASE("a hand-made file from another writer (unpadded, unsorted) is read") {
    temp_dir d;
    const fs::path p = d / "other.safetensors";
    // b comes first in the data section though it sorts second by name.
    const std::string header =
        R"({"b":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[],"data_offsets":[4,5]}})";
    write_bytes(p, raw_file(header, std::string("\x01\x00\xff\xff\x07", 5)));
    const auto f = ssl::io::read_safetensors(p);
    REQUIRE(f.tensors.size() == 2);
    CHECK(f.metadata.empty());
    const auto b = ssl::io::from_stored<std::int16_t>(f.tensors.at("b"));
    CHECK(b[0] == 1);
    CHECK(b[1] == -1);
    const auto a = ssl::io::from_stored<std::uint8_t>(f.tensors.at("a"));
    CHECK(a.rank() == 0);
    CHECK(a[0] == 7);
}

TEST_CASE("tensor conversions") {
    SUBCASE("float round trip, rank 0 and empty") {
        auto t = ssl::tensor<float>::from({2, 3}, {1, 2, 3, 4, 5, -6.5f});
        auto s = ssl::io::to_stored(t);
        CHECK(s.dtype == dtype::F32);
        CHECK(s.shape == std::vector<std::size_t>{2, 3});
        CHECK(s.data.size() == 24);
        auto u = ssl::io::from_stored<float>(s);
        CHECK(u.shape() == t.shape());
        CHECK(std::equal(u.begin(), u.end(), t.begin()));
        CHECK_FALSE(u.shares_storage_with(t));

        auto scalar = ssl::tensor<std::int64_t>::full({}, 42);
        auto ss = ssl::io::to_stored(scalar);
        CHECK(ss.dtype == dtype::I64);
        CHECK(ss.shape.empty());
        auto back = ssl::io::from_stored<std::int64_t>(ss);
        CHECK(back.rank() == 0);
        CHECK(back[0] == 42);

        auto empty = ssl::tensor<double>::zeros({3, 0});
        auto es = ssl::io::to_stored(empty);
        CHECK(es.dtype == dtype::F64);
        CHECK(es.data.empty());
        auto eb = ssl::io::from_stored<double>(es);
        CHECK(eb.shape() == ssl::shape_t{3, 0});
    }
    SUBCASE("F32 <-> F64 are converted") {
        auto t = ssl::tensor<float>::from({3}, {0.1f, -2.0f, 1e30f});
        auto d = ssl::io::from_stored<double>(ssl::io::to_stored(t));
        for (std::size_t i = 0; i < 3; ++i) CHECK(d[i] == static_cast<double>(t[i]));
        auto x = ssl::tensor<double>::from({2}, {0.1, 3.0});
        auto f = ssl::io::from_stored<float>(ssl::io::to_stored(x));
        CHECK(f[0] == 0.1f);
        CHECK(f[1] == 3.0f);
    }
    SUBCASE("other dtype differences are io_errors") {
        auto i = ssl::io::to_stored(ssl::tensor<std::int64_t>::full({2}, 1));
        std::string msg = io_error_of([&] { (void)ssl::io::from_stored<float>(i, "tensor 'x'"); });
        CHECK(msg.find("dtype mismatch") != std::string::npos);
        CHECK(msg.find("tensor 'x'") != std::string::npos);
        CHECK(msg.find("I64") != std::string::npos);
        auto f = ssl::io::to_stored(ssl::tensor<float>::full({2}, 1));
        msg = io_error_of([&] { (void)ssl::io::from_stored<std::int64_t>(f); });
        CHECK(msg.find("dtype mismatch") != std::string::npos);
        stored_tensor h = make(dtype::F16, {2}, 1);
        msg = io_error_of([&] { (void)ssl::io::from_stored<float>(h); });
        CHECK(msg.find("F16") != std::string::npos);
    }
    SUBCASE("rank above ssl's maximum and inconsistent byte counts are io_errors") {
        stored_tensor big = make(dtype::F32, {1, 1, 1, 1, 1, 1, 1}, 2);
        CHECK(io_error_of([&] { (void)ssl::io::from_stored<float>(big); }).find("rank 7") != std::string::npos);
        stored_tensor bad = make(dtype::F32, {2}, 3);
        bad.data.pop_back();
        CHECK(io_error_of([&] { (void)ssl::io::from_stored<float>(bad); }).find("7 bytes") != std::string::npos);
        CHECK_THROWS_AS((void)ssl::io::to_stored(ssl::tensor<float>{}), ssl::io_error);
    }
    SUBCASE("BOOL reads any nonzero byte as true") {
        stored_tensor b;
        b.dtype = dtype::BOOL;
        b.shape = {3};
        b.data = {std::byte{0}, std::byte{1}, std::byte{0x80}};
        auto t = ssl::io::from_stored<bool>(b);
        CHECK_FALSE(t[0]);
        CHECK(t[1]);
        CHECK(t[2]);
    }
}

// --- bad input: each a separate case, each message must name the file ------

TEST_CASE("bad input: nonexistent file") {
    temp_dir d;
    const fs::path p = d / "does_not_exist.safetensors";
    const std::string msg = io_error_of([&] { (void)ssl::io::read_safetensors(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("no such file") != std::string::npos);
}

TEST_CASE("bad input: a directory") {
    temp_dir d;
    const std::string msg = io_error_of([&] { (void)ssl::io::read_safetensors(d.path); });
    CHECK(msg.find(d.path.string()) != std::string::npos);
    CHECK(msg.find("not a regular file") != std::string::npos);
}

TEST_CASE("bad input: empty file") { check_rejected("", "only 0 bytes"); }

TEST_CASE("bad input: 4-byte file") { check_rejected(std::string("\x10\0\0\0", 4), "only 4 bytes"); }

TEST_CASE("bad input: header length larger than the file") {
    check_rejected(le64(1000) + R"({"a":1})", "truncated");
}

TEST_CASE("bad input: absurd header length") {
    check_rejected(le64(std::uint64_t(1) << 60) + "{}", "exceeds the limit");
    check_rejected(le64(~std::uint64_t(0)) + "{}", "exceeds the limit");
}

TEST_CASE("bad input: header that is not valid JSON") {
    check_rejected(raw_file(R"({"a": {"dtype": "F32",)", ""), "not valid JSON");
}

TEST_CASE("bad input: header JSON nested a million levels deep (found by fuzz/fuzz_safetensors)") {
    // Parsing is iterative, but the error message's dump() of the shape
    // recursed once per level and overflowed the stack (a 2 MB header).
    const std::size_t depth = 1'000'000;
    const std::string header = R"({"a":{"dtype":"F32","shape":)" + std::string(depth, '[') + std::string(depth, ']') +
                               R"(,"data_offsets":[0,0]}})";
    check_rejected(raw_file(header, ""), "the header nests JSON more than 64 levels deep");
    // 64 levels are still parsed (and refused for what they say).
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":)" + std::string(62, '[') + std::string(62, ']') +
                                R"(,"data_offsets":[0,0]}})",
                            ""),
                   "has an entry that is not a non-negative integer");
}

TEST_CASE("read_safetensors_metadata: the metadata alone, as the whole read gives it") {
    temp_dir d;
    safetensors_file f;
    f.tensors["w"] = make(dtype::F32, {64, 64}, 1);
    f.metadata["format"] = "ssl";
    f.metadata["ssl.config"] = R"({"method":"simclr"})";
    ssl::io::write_safetensors(d / "m.safetensors", f);
    CHECK(ssl::io::read_safetensors_metadata(d / "m.safetensors") == f.metadata);
    CHECK(io_error_of([&] { (void)ssl::io::read_safetensors_metadata(d / "none.safetensors"); }).find("no such file") !=
          std::string::npos);
}

TEST_CASE("reading from memory gives what reading the file gives") {
    safetensors_file f;
    f.tensors["w"] = make(dtype::F32, {2, 3}, 1);
    f.tensors["b"] = make(dtype::I64, {}, 2);
    f.metadata["format"] = "ssl";
    const auto bytes = ssl::io::serialize_safetensors(f);
    const auto g = ssl::io::read_safetensors(bytes);
    CHECK(g.metadata == f.metadata);
    REQUIRE(g.tensors.size() == 2);
    CHECK(same(g.tensors.at("w"), f.tensors.at("w")));
    CHECK(same(g.tensors.at("b"), f.tensors.at("b")));
}

TEST_CASE("bad input: header that is a JSON array") { check_rejected(raw_file("[1, 2, 3]", ""), "not an object"); }

TEST_CASE("bad input: header that does not start with a brace") {
    check_rejected(raw_file(R"(  {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x"), "does not start with");
}

TEST_CASE("bad input: entry that is not an object") {
    check_rejected(raw_file(R"({"a": [0, 4]})", "xxxx"), "tensor 'a': entry is array");
}

TEST_CASE("bad input: entry without dtype, shape or data_offsets") {
    check_rejected(raw_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "xxxx"), "no \"dtype\"");
    check_rejected(raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "xxxx"), "no \"shape\"");
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1]}})", "xxxx"), "no \"data_offsets\"");
}

TEST_CASE("bad input: unknown dtype") {
    check_rejected(raw_file(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                   "unknown dtype \"F12\"");
    check_rejected(raw_file(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", "xxxx"), "not a string");
}

TEST_CASE("bad input: negative or non-integer shape entries") {
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", ""), "non-negative integer");
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[2.5],"data_offsets":[0,2]}})", "xx"), "non-negative integer");
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":"2","data_offsets":[0,2]}})", "xx"), "not an array");
}

TEST_CASE("bad input: data_offsets that are not two ascending integers") {
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}})", "xx"), "not ascending");
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,1,2]}})", "xx"), "two non-negative");
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[-2,0]}})", "xx"), "two non-negative");
    check_rejected(raw_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,"2"]}})", "xx"), "two non-negative");
}

TEST_CASE("bad input: shape and data_offsets disagree") {
    // F32 (2, 3) needs 24 bytes; the offsets span 20.
    check_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", std::string(20, 'x')),
                   "needs 24");
}

TEST_CASE("bad input: shape whose byte size overflows") {
    check_rejected(
        raw_file(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", std::string(8, 'x')),
        "overflows");
}

TEST_CASE("bad input: offsets outside the data section") {
    check_rejected(raw_file(R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})", std::string(16, 'x')),
                   "past the end");
}

TEST_CASE("bad input: overlapping tensors") {
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            std::string(12, 'x')),
                   "overlaps");
}

TEST_CASE("bad input: a hole in the data section") {
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                            std::string(12, 'x')),
                   "hole");
    // Nothing at the start either.
    check_rejected(raw_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'x')),
                   "bytes [0, 4) belong to no tensor");
}

TEST_CASE("bad input: trailing bytes after the last tensor") {
    check_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(9, 'x')),
                   "5 trailing bytes");
}

TEST_CASE("bad input: duplicate tensor names") {
    check_rejected(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                            "xx"),
                   "more than once");
}

TEST_CASE("bad input: metadata that is not an object of strings") {
    check_rejected(raw_file(R"({"__metadata__":{"epoch":3}})", ""), "not a string");
    check_rejected(raw_file(R"({"__metadata__":["a"]})", ""), "not an object of strings");
}

TEST_CASE("bad input: data section truncated after a good write") {
    temp_dir d;
    const fs::path p = d / "trunc.safetensors";
    safetensors_file f;
    f.tensors["a"] = make(dtype::F32, {4, 4}, 1);
    f.tensors["b"] = make(dtype::I64, {3}, 2);
    ssl::io::write_safetensors(p, f);
    REQUIRE_NOTHROW((void)ssl::io::read_safetensors(p));
    fs::resize_file(p, fs::file_size(p) - 4);
    std::string msg = io_error_of([&] { (void)ssl::io::read_safetensors(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("truncated") != std::string::npos);
    CHECK(msg.find("tensor 'b'") != std::string::npos);  // the last tensor no longer fits
    // Cut into the header: now the header length itself is too large.
    fs::resize_file(p, 20);
    msg = io_error_of([&] { (void)ssl::io::read_safetensors(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("header length") != std::string::npos);
}

TEST_CASE("write refuses inconsistent tensors before touching the disk") {
    temp_dir d;
    const fs::path p = d / "x.safetensors";
    safetensors_file f;
    f.tensors["a"] = make(dtype::F32, {3}, 1);
    f.tensors["a"].data.resize(11);
    std::string msg = io_error_of([&] { ssl::io::write_safetensors(p, f); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("tensor 'a'") != std::string::npos);
    CHECK_FALSE(fs::exists(p));
    safetensors_file g;
    g.tensors["__metadata__"] = make(dtype::U8, {1}, 1);
    msg = io_error_of([&] { ssl::io::write_safetensors(p, g); });
    CHECK(msg.find("reserved") != std::string::npos);
    safetensors_file h;
    h.metadata["bad"] = "\xff\xfe not UTF-8";
    msg = io_error_of([&] { ssl::io::write_safetensors(p, h); });
    CHECK(msg.find("cannot encode") != std::string::npos);
    CHECK(fs::is_empty(d.path));
}

// --- atomic writes ----------------------------------------------------------

TEST_CASE("atomic write: a directory that does not exist") {
    temp_dir d;
    const fs::path p = d / "no" / "such" / "dir" / "x.safetensors";
    safetensors_file f;
    f.tensors["a"] = make(dtype::F32, {2}, 1);
    const std::string msg = io_error_of([&] { ssl::io::write_safetensors(p, f); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("does not exist") != std::string::npos);
    CHECK(fs::is_empty(d.path));
}

TEST_CASE("atomic write: overwriting replaces the content and leaves no temporary file") {
    temp_dir d;
    const fs::path p = d / "ckpt.safetensors";
    safetensors_file f1, f2;
    f1.tensors["a"] = make(dtype::F32, {2}, 1);
    f2.tensors["b"] = make(dtype::F64, {5, 5}, 2);
    ssl::io::write_safetensors(p, f1);
    ssl::io::write_safetensors(p, f2);
    const auto back = ssl::io::read_safetensors(p);
    CHECK(back.tensors.size() == 1);
    CHECK(same(back.tensors.at("b"), f2.tensors.at("b")));
    CHECK(tmp_leftovers(d.path).empty());
    // A relative path (no directory part) works too.
    {
        struct cwd_guard {
            fs::path saved = fs::current_path();
            ~cwd_guard() { fs::current_path(saved); }
        } guard;
        fs::current_path(d.path);
        ssl::io::write_safetensors("rel.safetensors", f1);
    }
    CHECK(same(ssl::io::read_safetensors(d / "rel.safetensors").tensors.at("a"), f1.tensors.at("a")));
}

TEST_CASE("atomic write: a rename that fails removes the temporary file") {
    // The target is a non-empty directory: the data is written and synced,
    // then the rename over it fails (this does not depend on permissions, so
    // it also holds when the tests run as root).
    temp_dir d;
    const fs::path p = d / "target.safetensors";
    fs::create_directory(p);
    write_bytes(p / "keep.txt", "old");
    safetensors_file f;
    f.tensors["a"] = make(dtype::F32, {64}, 1);
    const std::string msg = io_error_of([&] { ssl::io::write_safetensors(p, f); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("rename") != std::string::npos);
    CHECK(fs::is_directory(p));
    CHECK(read_bytes(p / "keep.txt") == "old");
    CHECK(tmp_leftovers(d.path).empty());
}

TEST_CASE("atomic write: a write that fails half-way keeps the old file") {
    // RLIMIT_FSIZE makes write() fail with EFBIG once the temporary file
    // reaches the limit; it applies to root as well.
    temp_dir d;
    const fs::path p = d / "ckpt.safetensors";
    safetensors_file old_file;
    old_file.tensors["old"] = make(dtype::U8, {16}, 1);
    ssl::io::write_safetensors(p, old_file);
    const std::string old_bytes = read_bytes(p);
    REQUIRE(old_bytes.size() < 4096);

    safetensors_file big;
    big.tensors["big"] = make(dtype::F32, {64, 256}, 2);  // 64 KiB

    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto* saved_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = saved;
    lim.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    std::string msg;
    try {
        ssl::io::write_safetensors(p, big);
    } catch (const ssl::io_error& e) {
        msg = e.what();
    } catch (...) {
        msg = "<other exception>";
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, saved_handler);

    INFO("message: ", msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("failed") != std::string::npos);
    CHECK(read_bytes(p) == old_bytes);
    CHECK(tmp_leftovers(d.path).empty());
    CHECK(ssl::io::read_safetensors(p).tensors.count("old") == 1);
}

}  // namespace test_safetensors
