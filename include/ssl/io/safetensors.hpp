#pragma once
// Reading and writing the safetensors format (the format of Hugging Face's
// `safetensors` package, which PyTorch checkpoints are commonly stored in):
//
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    a UTF-8 JSON object:
//                         {"name": {"dtype": "F32", "shape": [2, 3],
//                                   "data_offsets": [begin, end]}, ...,
//                          "__metadata__": {"key": "value", ...}}
//                       padded with spaces so the data starts 8-byte aligned
//   bytes [8 + N, end)  the byte buffer: every tensor's raw little-endian,
//                       row-major data at [begin, end) relative to 8 + N
//
// The reader (a path, or a whole file's bytes in memory) trusts nothing: every
// field is checked (JSON nested more than max_header_depth = 64 levels is
// refused while parsing) and every problem is an ssl::io_error whose message
// names the file and what is wrong. The byte
// buffer must be exactly covered by the tensors (no overlaps, no holes, no
// trailing bytes). The writer is deterministic (tensors in name order) and
// atomic (temporary file, fsync, rename), so a crash never leaves a
// half-written file under the target name.
//
// Everything the write path throws is an io_error too, including an
// inconsistent in-memory tensor (byte count that does not fit dtype x shape).
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "temp_files.hpp"

namespace ssl::io {

static_assert(std::endian::native == std::endian::little,
              "ssl::io writes tensor data with memcpy, which matches safetensors' little-endian layout only on a "
              "little-endian machine; a big-endian port must byte-swap in to_stored/from_stored and the header length.");
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "safetensors F32/F64 are IEEE 754 binary32/binary64; this platform's float/double are not.");

/// Element types of safetensors. The names are the format's own.
enum class dtype { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U64, U32, U16, U8, BOOL };

/// Bytes per element.
constexpr std::size_t itemsize(dtype d) noexcept {
    switch (d) {
        case dtype::F64:
        case dtype::I64:
        case dtype::U64: return 8;
        case dtype::F32:
        case dtype::I32:
        case dtype::U32: return 4;
        case dtype::F16:
        case dtype::BF16:
        case dtype::I16:
        case dtype::U16: return 2;
        case dtype::F8_E4M3:
        case dtype::F8_E5M2:
        case dtype::I8:
        case dtype::U8:
        case dtype::BOOL: return 1;
    }
    return 0;
}

/// The format's spelling of a dtype ("F32", "BOOL", ...).
constexpr std::string_view dtype_name(dtype d) noexcept {
    switch (d) {
        case dtype::F64: return "F64";
        case dtype::F32: return "F32";
        case dtype::F16: return "F16";
        case dtype::BF16: return "BF16";
        case dtype::F8_E4M3: return "F8_E4M3";
        case dtype::F8_E5M2: return "F8_E5M2";
        case dtype::I64: return "I64";
        case dtype::I32: return "I32";
        case dtype::I16: return "I16";
        case dtype::I8: return "I8";
        case dtype::U64: return "U64";
        case dtype::U32: return "U32";
        case dtype::U16: return "U16";
        case dtype::U8: return "U8";
        case dtype::BOOL: return "BOOL";
    }
    return "?";
}

/// The dtype spelled `s`, or nullopt when the format has no such dtype.
inline std::optional<dtype> parse_dtype(std::string_view s) noexcept {
    constexpr dtype all[] = {dtype::F64, dtype::F32, dtype::F16, dtype::BF16, dtype::F8_E4M3,
                             dtype::F8_E5M2, dtype::I64, dtype::I32, dtype::I16, dtype::I8,
                             dtype::U64, dtype::U32, dtype::U16, dtype::U8, dtype::BOOL};
    for (dtype d : all)
        if (dtype_name(d) == s) return d;
    return std::nullopt;
}

/// The dtype that stores C++ type T (float -> F32, std::int64_t -> I64, ...).
template <class T>
constexpr dtype dtype_of() noexcept {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, double>) return dtype::F64;
    else if constexpr (std::is_same_v<U, float>) return dtype::F32;
    else if constexpr (std::is_same_v<U, bool>) return dtype::BOOL;
    else if constexpr (std::is_integral_v<U> && std::is_signed_v<U> && sizeof(U) == 8) return dtype::I64;
    else if constexpr (std::is_integral_v<U> && std::is_signed_v<U> && sizeof(U) == 4) return dtype::I32;
    else if constexpr (std::is_integral_v<U> && std::is_signed_v<U> && sizeof(U) == 2) return dtype::I16;
    else if constexpr (std::is_integral_v<U> && std::is_signed_v<U> && sizeof(U) == 1) return dtype::I8;
    else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 8) return dtype::U64;
    else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 4) return dtype::U32;
    else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 2) return dtype::U16;
    else if constexpr (std::is_integral_v<U> && std::is_unsigned_v<U> && sizeof(U) == 1) return dtype::U8;
    else static_assert(dependent_false<T>, "ssl::io::dtype_of<T>: T has no safetensors dtype (long double?)");
}

/// One tensor as stored: element type, shape (any rank) and raw bytes.
struct stored_tensor {
    ssl::io::dtype dtype = ssl::io::dtype::F32;
    std::vector<std::size_t> shape;  ///< empty: a scalar (rank 0, one element)
    std::vector<std::byte> data;     ///< numel() * itemsize(dtype) bytes, little-endian

    /// Elements implied by the shape (1 for rank 0). Saturates at SIZE_MAX.
    std::size_t numel() const noexcept {
        std::size_t n = 1;
        for (std::size_t d : shape) {
            if (d == 0) return 0;
            if (n > std::numeric_limits<std::size_t>::max() / d) return std::numeric_limits<std::size_t>::max();
            n *= d;
        }
        return n;
    }
    std::string shape_str() const {
        std::string s = "(";
        for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
        if (shape.size() == 1) s += ',';
        return s + ')';
    }
};

/// A whole file: tensors by name (name order = file order) and string metadata.
struct safetensors_file {
    std::map<std::string, stored_tensor> tensors;
    std::map<std::string, std::string> metadata;
};

/// The reserved header key for metadata.
inline constexpr std::string_view metadata_key = "__metadata__";
/// Headers larger than this are refused as corrupt (the format's own reader uses the same bound).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;
/// Headers whose JSON nests deeper than this are refused as corrupt.
inline constexpr std::size_t max_header_depth = 64;

namespace detail {

template <class... Args>
[[noreturn]] void fail(const std::filesystem::path& path, Args&&... args) {
    throw io_error(ssl::detail::cat("safetensors file '", path.string(), "': ", std::forward<Args>(args)...));
}

/// numel * itemsize, or nullopt on overflow.
inline std::optional<std::size_t> byte_size(const std::vector<std::size_t>& shape, dtype d) {
    std::size_t n = itemsize(d);
    for (std::size_t s : shape) {
        if (s == 0) return 0;
        if (n > std::numeric_limits<std::size_t>::max() / s) return std::nullopt;
        n *= s;
    }
    return n;
}

/// The header (JSON padded to 8-byte alignment of the data) for `file`.
inline std::string make_header(const std::filesystem::path& path, const safetensors_file& file) {
    nlohmann::json h = nlohmann::json::object();
    std::uint64_t offset = 0;
    for (const auto& [name, t] : file.tensors) {
        if (name == metadata_key) fail(path, "cannot write a tensor named '", metadata_key, "' (reserved for metadata)");
        const auto bytes = byte_size(t.shape, t.dtype);
        if (!bytes || *bytes != t.data.size())
            fail(path, "cannot write tensor '", name, "': ", t.data.size(), " bytes do not hold dtype ",
                 dtype_name(t.dtype), " with shape ", t.shape_str());
        nlohmann::json shape = nlohmann::json::array();
        for (std::size_t d : t.shape) shape.push_back(static_cast<std::uint64_t>(d));
        h[name] = {{"dtype", std::string(dtype_name(t.dtype))},
                   {"shape", std::move(shape)},
                   {"data_offsets", {offset, offset + t.data.size()}}};
        offset += t.data.size();
    }
    if (!file.metadata.empty()) {
        nlohmann::json m = nlohmann::json::object();
        for (const auto& [k, v] : file.metadata) m[k] = v;
        h[std::string(metadata_key)] = std::move(m);
    }
    std::string s;
    try {
        s = h.dump();
    } catch (const nlohmann::json::exception& e) {  // invalid UTF-8 in a name or value
        fail(path, "cannot encode the header: ", e.what());
    }
    while ((8 + s.size()) % 8 != 0) s += ' ';
    return s;
}

/// RAII file descriptor.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

inline void write_all(int fd, const void* p, std::size_t n, const std::filesystem::path& tmp,
                      const std::filesystem::path& path) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        const std::size_t chunk = std::min<std::size_t>(n, std::size_t(1) << 30);
        const ssize_t w = ::write(fd, c, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail(path, "writing the temporary file '", tmp.string(), "' failed: ", std::strerror(errno));
        }
        if (w == 0) fail(path, "writing the temporary file '", tmp.string(), "' made no progress");
        c += w;
        n -= static_cast<std::size_t>(w);
    }
}

/// Reads exactly n bytes or fails.
inline void read_exact(std::ifstream& in, void* dst, std::size_t n, const std::filesystem::path& path,
                       const char* what) {
    if (n == 0) return;
    in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in || static_cast<std::size_t>(in.gcount()) != n)
        fail(path, "read error while reading ", what, " (", n, " bytes)");
}

struct entry {
    std::string name;
    stored_tensor meta;  // data still empty
    std::uint64_t begin = 0, end = 0;
};

/// Parses and validates the header. data_size = bytes after the header.
inline std::vector<entry> parse_header(const std::filesystem::path& path, std::string_view text,
                                       std::uint64_t data_size, std::map<std::string, std::string>& metadata) {
    // Reject duplicate top-level keys (nlohmann would keep only the last one).
    std::set<std::string> seen;
    std::string duplicate;
    // A valid header nests 3 deep; refuse deep nesting while parsing, before
    // anything recursive (dump() in an error message) can overflow the stack.
    auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
        if ((ev == nlohmann::json::parse_event_t::object_start || ev == nlohmann::json::parse_event_t::array_start) &&
            depth >= static_cast<int>(max_header_depth))  // depth counts from 0 at the top level
            fail(path, "the header nests JSON more than ", max_header_depth, " levels deep (corrupt file)");
        if (ev == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
            auto k = parsed.get<std::string>();
            if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    nlohmann::json h;
    try {
        h = nlohmann::json::parse(text.begin(), text.end(), cb);
    } catch (const nlohmann::json::exception& e) {
        fail(path, "the header is not valid JSON: ", e.what());
    }
    if (!duplicate.empty()) fail(path, "the header names '", duplicate, "' more than once");
    if (!h.is_object()) fail(path, "the header is JSON ", h.type_name(), ", not an object");
    if (text.front() != '{') fail(path, "the header does not start with '{' (leading whitespace?)");

    std::vector<entry> entries;
    for (auto it = h.begin(); it != h.end(); ++it) {
        const std::string& name = it.key();
        const nlohmann::json& v = it.value();
        if (name == metadata_key) {
            if (!v.is_object()) fail(path, "'", metadata_key, "' is ", v.type_name(), ", not an object of strings");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string())
                    fail(path, "metadata '", m.key(), "' is ", m.value().type_name(), ", not a string");
                metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        if (!v.is_object()) fail(path, "tensor '", name, "': entry is ", v.type_name(), ", not an object");
        for (const char* k : {"dtype", "shape", "data_offsets"})
            if (!v.contains(k)) fail(path, "tensor '", name, "': entry has no \"", k, "\"");
        entry e;
        e.name = name;
        const auto& jd = v["dtype"];
        if (!jd.is_string()) fail(path, "tensor '", name, "': dtype is ", jd.type_name(), ", not a string");
        const auto d = parse_dtype(jd.get<std::string>());
        if (!d) fail(path, "tensor '", name, "': unknown dtype \"", jd.get<std::string>(), "\"");
        e.meta.dtype = *d;
        const auto& js = v["shape"];
        if (!js.is_array()) fail(path, "tensor '", name, "': shape is ", js.type_name(), ", not an array");
        for (const auto& s : js) {
            if (!s.is_number_unsigned())
                fail(path, "tensor '", name, "': shape ", js.dump(), " has an entry that is not a non-negative integer");
            const auto u = s.get<std::uint64_t>();
            if (u > std::numeric_limits<std::size_t>::max()) fail(path, "tensor '", name, "': shape entry ", u, " is too large");
            e.meta.shape.push_back(static_cast<std::size_t>(u));
        }
        const auto& jo = v["data_offsets"];
        if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
            fail(path, "tensor '", name, "': data_offsets ", jo.dump(), " is not two non-negative integers");
        e.begin = jo[0].get<std::uint64_t>();
        e.end = jo[1].get<std::uint64_t>();
        if (e.begin > e.end)
            fail(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] are not ascending");
        const auto bytes = byte_size(e.meta.shape, e.meta.dtype);
        if (!bytes) fail(path, "tensor '", name, "': shape ", e.meta.shape_str(), " overflows");
        if (*bytes != e.end - e.begin)
            fail(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
                 " bytes but dtype ", dtype_name(e.meta.dtype), " with shape ", e.meta.shape_str(), " needs ", *bytes);
        if (e.end > data_size)
            fail(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] reach past the end of the ",
                 data_size, "-byte data section (file truncated?)");
        entries.push_back(std::move(e));
    }

    // The data section must be covered exactly: no overlaps, holes or trailing bytes.
    std::sort(entries.begin(), entries.end(),
              [](const entry& a, const entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    std::uint64_t pos = 0;
    const entry* prev = nullptr;
    for (const auto& e : entries) {
        if (e.begin < pos)
            fail(path, "tensor '", e.name, "' [", e.begin, ", ", e.end, ") overlaps tensor '", prev->name, "' [",
                 prev->begin, ", ", prev->end, ")");
        if (e.begin > pos)
            fail(path, "the data section has a hole: bytes [", pos, ", ", e.begin, ") belong to no tensor (before '",
                 e.name, "')");
        pos = e.end;
        prev = &e;
    }
    if (pos != data_size)
        fail(path, "the data section has ", data_size - pos, " trailing bytes after the last tensor (bytes [", pos,
             ", ", data_size, ") belong to no tensor)");
    return entries;
}

/// The header length stored in the first 8 bytes of a `size`-byte file, checked against the size and the limit.
inline std::uint64_t header_length(const std::filesystem::path& path, const unsigned char* len, std::uint64_t size) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
    if (n > max_header_bytes)
        fail(path, "header length ", n, " exceeds the limit of ", max_header_bytes, " bytes (corrupt file)");
    if (n > size - 8)
        fail(path, "header length ", n, " exceeds the ", size - 8, " bytes that follow it (truncated file)");
    return n;
}

}  // namespace detail

/// Reads and validates a safetensors file held in memory (`bytes` is the
/// whole file); `name` stands for the file in error messages. Same checks
/// and errors as reading it from disk.
inline safetensors_file read_safetensors(std::span<const std::byte> bytes,
                                         const std::filesystem::path& name = "<memory>") {
    const std::uint64_t size = bytes.size();
    if (size < 8) detail::fail(name, "only ", size, " bytes, shorter than the 8-byte header length (empty or truncated)");
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::uint64_t n = detail::header_length(name, p, size);
    const std::string_view text(reinterpret_cast<const char*>(p + 8), static_cast<std::size_t>(n));
    safetensors_file file;
    auto entries = detail::parse_header(name, text, size - 8 - n, file.metadata);
    for (auto& e : entries) {
        const auto* d = bytes.data() + 8 + n;
        e.meta.data.assign(d + e.begin, d + e.end);
        file.tensors.emplace(std::move(e.name), std::move(e.meta));
    }
    return file;
}

namespace detail {

/// A safetensors file opened and its header read: `in` is at the data section.
struct opened_file {
    std::ifstream in;
    std::string header;
    std::uint64_t data_size = 0;
};

inline opened_file open_safetensors(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (!fs::exists(st)) fail(path, "no such file");
    if (!fs::is_regular_file(st)) fail(path, "not a regular file");
    const std::uint64_t size = fs::file_size(path, ec);
    if (ec) fail(path, "cannot get the size: ", ec.message());
    opened_file f;
    f.in.open(path, std::ios::binary);
    if (!f.in) fail(path, "cannot open for reading: ", std::strerror(errno));
    if (size < 8) fail(path, "only ", size, " bytes, shorter than the 8-byte header length (empty or truncated)");
    unsigned char len[8];
    read_exact(f.in, len, 8, path, "the header length");
    const std::uint64_t n = header_length(path, len, size);
    f.header.assign(static_cast<std::size_t>(n), '\0');
    read_exact(f.in, f.header.data(), f.header.size(), path, "the header");
    f.data_size = size - 8 - n;
    return f;
}

}  // namespace detail

/// Reads and validates a whole safetensors file. Throws io_error naming the
/// file and the problem.
inline safetensors_file read_safetensors(const std::filesystem::path& path) {
    auto f = detail::open_safetensors(path);
    safetensors_file file;
    auto entries = detail::parse_header(path, f.header, f.data_size, file.metadata);
    // Entries are sorted by offset and contiguous: read them in one pass.
    for (auto& e : entries) {
        e.meta.data.resize(static_cast<std::size_t>(e.end - e.begin));
        detail::read_exact(f.in, e.meta.data.data(), e.meta.data.size(), path, ("tensor '" + e.name + "'").c_str());
        file.tensors.emplace(std::move(e.name), std::move(e.meta));
    }
    return file;
}

/// The metadata of a safetensors file, reading its header only (the header
/// is validated as read_safetensors validates it, the tensors' bytes are not
/// read): what a tool that reports on a checkpoint needs.
inline std::map<std::string, std::string> read_safetensors_metadata(const std::filesystem::path& path) {
    auto f = detail::open_safetensors(path);
    std::map<std::string, std::string> metadata;
    detail::parse_header(path, f.header, f.data_size, metadata);
    return metadata;
}

/// The exact bytes write_safetensors puts in a file.
inline std::vector<std::byte> serialize_safetensors(const safetensors_file& file,
                                                    const std::filesystem::path& path_for_errors = "<memory>") {
    const std::string header = detail::make_header(path_for_errors, file);
    std::size_t total = 8 + header.size();
    for (const auto& [name, t] : file.tensors) total += t.data.size();
    std::vector<std::byte> out(total);
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    std::memcpy(out.data() + 8, header.data(), header.size());
    std::size_t pos = 8 + header.size();
    for (const auto& [name, t] : file.tensors) {
        if (!t.data.empty()) std::memcpy(out.data() + pos, t.data.data(), t.data.size());
        pos += t.data.size();
    }
    return out;
}

/// Writes `file` to `path` atomically: the bytes go to "<path>.tmp.<pid>" in
/// the same directory, which is flushed to disk (fsync) and then renamed over
/// `path`. On any failure the temporary file is removed, an existing `path`
/// is left untouched, and io_error is thrown. POSIX only.
inline void write_safetensors(const std::filesystem::path& path, const safetensors_file& file) {
    namespace fs = std::filesystem;
    const std::string header = detail::make_header(path, file);  // validates before touching the disk
    if (path.filename().empty()) detail::fail(path, "cannot write: the path names no file");
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) detail::fail(path, "cannot write: directory '", dir.string(), "' does not exist");

    const fs::path tmp = temp_path(path);
    bool created = false;
    try {
        detail::fd_guard g;
        g.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (g.fd < 0) detail::fail(path, "cannot create the temporary file '", tmp.string(), "': ", std::strerror(errno));
        created = true;
        unsigned char len[8];
        const std::uint64_t n = header.size();
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
        detail::write_all(g.fd, len, 8, tmp, path);
        detail::write_all(g.fd, header.data(), header.size(), tmp, path);
        for (const auto& [name, t] : file.tensors) detail::write_all(g.fd, t.data.data(), t.data.size(), tmp, path);
        if (::fsync(g.fd) != 0) detail::fail(path, "fsync of '", tmp.string(), "' failed: ", std::strerror(errno));
        const int fd = g.fd;
        g.fd = -1;
        if (::close(fd) != 0) detail::fail(path, "closing '", tmp.string(), "' failed: ", std::strerror(errno));
        fs::rename(tmp, path, ec);
        if (ec) detail::fail(path, "cannot rename '", tmp.string(), "' over it: ", ec.message());
    } catch (...) {
        if (created) fs::remove(tmp, ec);
        throw;
    }
    // Make the rename itself durable (best effort: not every filesystem allows fsync on a directory).
    detail::fd_guard d;
    d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d.fd >= 0) (void)::fsync(d.fd);
}

// --- conversions between ssl::tensor and stored tensors ----------------------

/// A stored copy of `t` with t's own dtype (float -> F32, double -> F64, int64 -> I64, ...).
template <class T>
stored_tensor to_stored(const tensor<T>& t) {
    require<io_error>(t.defined(), "to_stored: the tensor is undefined (default-constructed)");
    stored_tensor s;
    s.dtype = dtype_of<T>();
    s.shape.assign(t.shape().begin(), t.shape().end());
    s.data.resize(t.numel() * sizeof(T));
    if (!s.data.empty()) std::memcpy(s.data.data(), t.data(), s.data.size());
    return s;
}

/// Whether from_stored<T> accepts dtype d: the exact dtype, or F32 <-> F64.
template <class T>
constexpr bool convertible_to(dtype d) noexcept {
    constexpr dtype want = dtype_of<T>();
    if (d == want) return true;
    return (want == dtype::F32 || want == dtype::F64) && (d == dtype::F32 || d == dtype::F64);
}

/// An ssl::tensor<T> holding the stored data. Same dtype, or F32 <-> F64
/// (converted); anything else is an io_error "dtype mismatch". `what` (e.g.
/// "tensor 'fc.weight' of 'ckpt.safetensors'") prefixes the error messages.
template <class T>
tensor<T> from_stored(const stored_tensor& s, std::string_view what = "stored tensor") {
    constexpr dtype want = dtype_of<T>();
    require<io_error>(convertible_to<T>(s.dtype), what, ": dtype mismatch: stored ", dtype_name(s.dtype),
                      ", wanted ", dtype_name(want));
    require<io_error>(s.shape.size() <= shape_t::max_rank, what, ": shape ", s.shape_str(), " has rank ",
                      s.shape.size(), ", ssl tensors allow at most ", shape_t::max_rank);
    const auto bytes = detail::byte_size(s.shape, s.dtype);
    require<io_error>(bytes && *bytes == s.data.size(), what, ": ", s.data.size(), " bytes do not hold dtype ",
                      dtype_name(s.dtype), " with shape ", s.shape_str());
    tensor<T> t(shape_t(s.shape.begin(), s.shape.end()));
    if (t.numel() == 0) return t;
    if constexpr (std::is_same_v<T, bool>) {  // any nonzero byte is true; never memcpy into bool
        for (std::size_t i = 0; i < t.numel(); ++i) t[i] = s.data[i] != std::byte{0};
    } else if (s.dtype == want) {
        std::memcpy(static_cast<void*>(t.data()), s.data.data(), s.data.size());
    } else if (s.dtype == dtype::F32) {
        for (std::size_t i = 0; i < t.numel(); ++i) {
            float v;
            std::memcpy(&v, s.data.data() + i * sizeof(float), sizeof(float));
            t[i] = static_cast<T>(v);
        }
    } else if constexpr (std::is_floating_point_v<T>) {  // F64 -> F32
        for (std::size_t i = 0; i < t.numel(); ++i) {
            double v;
            std::memcpy(&v, s.data.data() + i * sizeof(double), sizeof(double));
            t[i] = static_cast<T>(v);
        }
    }
    return t;
}

}  // namespace ssl::io
