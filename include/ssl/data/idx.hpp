#pragma once
// Reading the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//
//   bytes [0, 4)    magic: 0x00 0x00 <element type> <number of dimensions>
//                   element type 0x08 = unsigned byte (the only one these
//                   data sets use, and the only one read here)
//   then            one big-endian uint32 per dimension
//   then            the elements, row-major
//
// Images are 0x00000803 (N, rows, columns) and become an (N, 1, rows, cols)
// tensor; labels are 0x00000801 (N). A file whose first two bytes are the
// gzip magic 1f 8b is decompressed on the fly with zlib, whatever its name.
// Every problem (missing, truncated, wrong magic or dimension count, corrupt
// gzip, trailing bytes, count mismatch, label out of range) is an
// ssl::io_error that names the file and says what is wrong.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include <zlib.h>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {
namespace detail {

/// Reads a file that is either plain or gzip-compressed (detected from the
/// first two bytes). Errors are io_errors "<kind> '<path>': ...".
class byte_reader {
public:
    byte_reader(const std::filesystem::path& path, const char* kind) : path_(path), kind_(kind) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const auto st = fs::status(path, ec);
        if (!fs::exists(st)) fail("no such file");
        if (!fs::is_regular_file(st)) fail("not a regular file");
        disk_size_ = fs::file_size(path, ec);
        if (ec) fail("cannot get the size: ", ec.message());
        unsigned char magic[2] = {0, 0};
        {
            std::FILE* f = std::fopen(path.c_str(), "rb");
            if (!f) fail("cannot open for reading: ", std::strerror(errno));
            const std::size_t got = std::fread(magic, 1, 2, f);
            std::fclose(f);
            gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        }
        if (gzip_) {
            gz_ = gzopen(path.c_str(), "rb");
            if (!gz_) fail("cannot open the gzip file: ", errno ? std::strerror(errno) : "out of memory");
            gzbuffer(gz_, 1u << 17);
        } else {
            file_ = std::fopen(path.c_str(), "rb");
            if (!file_) fail("cannot open for reading: ", std::strerror(errno));
        }
    }
    ~byte_reader() {
        if (gz_) gzclose_r(gz_);
        if (file_) std::fclose(file_);
    }
    byte_reader(const byte_reader&) = delete;
    byte_reader& operator=(const byte_reader&) = delete;

    bool gzip() const noexcept { return gzip_; }
    /// Size of the file on disk (compressed size for gzip).
    std::uint64_t disk_size() const noexcept { return disk_size_; }
    /// Decompressed bytes read so far.
    std::uint64_t position() const noexcept { return pos_; }
    const std::filesystem::path& path() const noexcept { return path_; }

    /// Reads up to n bytes; fewer only at the end of the data. Throws on a
    /// read error or corrupt gzip data.
    std::size_t read_some(void* dst, std::size_t n) {
        char* p = static_cast<char*>(dst);
        std::size_t total = 0;
        while (total < n) {
            const std::size_t want = std::min<std::size_t>(n - total, std::size_t(1) << 30);
            std::size_t got = 0;
            if (gzip_) {
                const int r = gzread(gz_, p + total, static_cast<unsigned>(want));
                if (r < 0) gz_fail();
                got = static_cast<std::size_t>(r);
                if (got < want) {
                    int errnum = Z_OK;
                    gzerror(gz_, &errnum);
                    if (errnum != Z_OK) gz_fail();
                }
            } else {
                got = std::fread(p + total, 1, want, file_);
                if (got < want && std::ferror(file_)) fail("read error: ", std::strerror(errno));
            }
            total += got;
            pos_ += got;
            if (got < want) break;
        }
        return total;
    }

    /// Reads exactly n bytes or throws "truncated" naming `what`.
    void read_exact(void* dst, std::size_t n, const char* what) {
        const std::size_t got = read_some(dst, n);
        if (got != n)
            fail("truncated: the file ends after ", pos_, gzip_ ? " decompressed" : "", " bytes, in ", what, " (",
                 n - got, " of its ", n, " bytes missing)");
    }

    /// Reads to the end and returns how many bytes were left (for gzip this
    /// also makes zlib verify the stream's CRC and length).
    std::uint64_t bytes_left() {
        std::vector<char> buf(1u << 16);
        std::uint64_t n = 0;
        for (;;) {
            const std::size_t got = read_some(buf.data(), buf.size());
            n += got;
            if (got < buf.size()) return n;
        }
    }

    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        file_fail(kind_, path_, std::forward<Args>(args)...);
    }

private:
    [[noreturn]] void gz_fail() const {
        int errnum = Z_OK;
        const char* msg = gzerror(gz_, &errnum);
        if (errnum == Z_BUF_ERROR)
            fail("truncated gzip stream: it ends after ", pos_, " decompressed bytes (", msg ? msg : "", ")");
        if (errnum == Z_ERRNO) fail("read error: ", std::strerror(errno));
        fail("corrupt gzip data after ", pos_, " decompressed bytes: ", msg ? msg : "unknown zlib error");
    }

    std::filesystem::path path_;
    const char* kind_;
    std::uint64_t disk_size_ = 0;
    std::uint64_t pos_ = 0;
    bool gzip_ = false;
    gzFile gz_ = nullptr;
    std::FILE* file_ = nullptr;
};

inline const char* idx_type_name(unsigned t) noexcept {
    switch (t) {
        case 0x08: return "unsigned byte";
        case 0x09: return "signed byte";
        case 0x0B: return "short";
        case 0x0C: return "int";
        case 0x0D: return "float";
        case 0x0E: return "double";
        default: return "unknown";
    }
}

inline std::string hex_bytes(const unsigned char* b, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) s += ' ';
        s += digits[b[i] >> 4];
        s += digits[b[i] & 15];
    }
    return s;
}

/// Opens an IDX file, checks the magic and reads the dimensions.
/// `expected_dims` is 3 for images, 1 for labels.
inline std::vector<std::size_t> read_idx_header(byte_reader& in, unsigned expected_dims) {
    const char* what = expected_dims == 3 ? "images" : "labels";
    const char* expect_magic = expected_dims == 3 ? "00 00 08 03" : "00 00 08 01";
    unsigned char m[4];
    const std::size_t got = in.read_some(m, 4);
    if (got < 4)
        in.fail("truncated: only ", got, in.gzip() ? " decompressed" : "", " bytes, shorter than the 4-byte IDX magic");
    if (m[0] != 0 || m[1] != 0)
        in.fail("not an IDX file: the magic bytes are ", hex_bytes(m, 4), ", expected ", expect_magic, " for ", what);
    if (m[2] != 0x08)
        in.fail("IDX element type 0x", hex_bytes(m + 2, 1), " (", idx_type_name(m[2]),
                ") is not supported; MNIST-style ", what, " are unsigned bytes (0x08)");
    if (m[3] != expected_dims) {
        std::string hint;
        if (expected_dims == 3 && m[3] == 1) hint = " (is this a labels file?)";
        if (expected_dims == 1 && m[3] == 3) hint = " (is this an images file?)";
        in.fail("the IDX header has ", unsigned(m[3]), " dimension", m[3] == 1 ? "" : "s", ", expected ", expected_dims,
                expected_dims == 3 ? " (count, rows, columns) for images" : " (count) for labels", hint);
    }
    std::vector<std::size_t> dims(expected_dims);
    for (unsigned d = 0; d < expected_dims; ++d) {
        unsigned char b[4];
        in.read_exact(b, 4, "the IDX header");
        dims[d] = (std::size_t(b[0]) << 24) | (std::size_t(b[1]) << 16) | (std::size_t(b[2]) << 8) | std::size_t(b[3]);
    }
    return dims;
}

/// Checks, before anything is allocated, that `bytes` of data can follow
/// the header (exactly, for a plain file; plausibly, for gzip).
inline void check_idx_body_size(const byte_reader& in, std::uint64_t bytes, const std::string& layout) {
    const std::uint64_t header = in.position();
    if (!in.gzip()) {
        const std::uint64_t have = in.disk_size() - header;
        if (have < bytes)
            in.fail("truncated: the header says ", layout, " = ", bytes, " bytes of data, but only ", have,
                    " bytes follow the ", header, "-byte header");
        if (have > bytes)
            in.fail(have - bytes, " trailing bytes after the ", bytes, " bytes of data that the header (", layout,
                    ") announces");
    } else {
        // deflate cannot expand data by more than about 1032:1, so a header
        // announcing more than that is corrupt (and must not make us allocate it).
        const std::uint64_t bound = in.disk_size() * 1100 + (std::uint64_t(1) << 20);
        if (bytes > bound)
            in.fail("the header says ", layout, " = ", bytes, " bytes of data, more than a ", in.disk_size(),
                    "-byte gzip file can hold (corrupt header)");
    }
}

/// Reads the `bytes` of data into dst, then checks nothing is left (for gzip
/// this also has zlib verify the stream's checksum).
inline void read_idx_body(byte_reader& in, void* dst, std::uint64_t bytes, const std::string& layout) {
    in.read_exact(dst, static_cast<std::size_t>(bytes), "the data");
    const std::uint64_t extra = in.bytes_left();
    if (extra)
        in.fail(extra, " trailing bytes after the ", bytes, " bytes of data that the header (", layout, ") announces");
}

}  // namespace detail

/// Reads an IDX images file (magic 0x00000803, plain or gzip) as an
/// (N, 1, rows, columns) byte tensor.
inline tensor<std::uint8_t> read_idx_images(const std::filesystem::path& path) {
    detail::byte_reader in(path, "IDX images file");
    const auto d = detail::read_idx_header(in, 3);
    if (d[1] == 0 || d[2] == 0) in.fail("images of size ", d[1], "x", d[2], " (rows and columns must be positive)");
    // Each dimension is < 2^32, so count * rows fits; the product of all three may not.
    const std::uint64_t bytes = std::uint64_t(d[0]) * d[1] * d[2];
    if (d[0] != 0 && bytes / d[0] / d[1] != d[2]) in.fail("the header's dimensions overflow");
    const std::string layout = ssl::detail::cat(d[0], " images x ", d[1], " rows x ", d[2], " columns");
    detail::check_idx_body_size(in, bytes, layout);
    tensor<std::uint8_t> t({d[0], 1, d[1], d[2]});
    detail::read_idx_body(in, t.data(), bytes, layout);
    return t;
}

/// Reads an IDX labels file (magic 0x00000801, plain or gzip).
inline std::vector<std::int64_t> read_idx_labels(const std::filesystem::path& path) {
    detail::byte_reader in(path, "IDX labels file");
    const auto d = detail::read_idx_header(in, 1);
    const std::string layout = ssl::detail::cat(d[0], " labels");
    detail::check_idx_body_size(in, d[0], layout);
    std::vector<std::uint8_t> raw(d[0]);
    detail::read_idx_body(in, raw.data(), d[0], layout);
    return std::vector<std::int64_t>(raw.begin(), raw.end());
}

/// Reads an unlabelled image set from an IDX images file (named after the file).
inline image_dataset read_idx(const std::filesystem::path& images_path) {
    image_dataset ds;
    ds.images = read_idx_images(images_path);
    ds.name = images_path.filename().string();
    ds.source = images_path.string();
    return ds;
}

/// Reads a labelled image set from an IDX images file and an IDX labels file.
/// num_classes = 0 infers it as max label + 1; otherwise every label must be
/// below num_classes. class_names, when given, must have num_classes names.
inline image_dataset read_idx(const std::filesystem::path& images_path, const std::filesystem::path& labels_path,
                              std::size_t num_classes = 0, std::vector<std::string> class_names = {}) {
    require(class_names.empty() || num_classes == 0 || class_names.size() == num_classes, "read_idx: ",
            class_names.size(), " class names for num_classes = ", num_classes);
    if (num_classes == 0) num_classes = class_names.size();
    image_dataset ds = read_idx(images_path);
    ds.labels = read_idx_labels(labels_path);
    if (ds.labels.size() != ds.size())
        throw io_error(ssl::detail::cat("IDX files do not match: '", images_path.string(), "' holds ", ds.size(),
                                        " images but '", labels_path.string(), "' holds ", ds.labels.size(),
                                        " labels"));
    std::int64_t mx = -1;
    for (std::size_t i = 0; i < ds.labels.size(); ++i) {
        const auto l = ds.labels[i];
        if (num_classes && static_cast<std::uint64_t>(l) >= num_classes)
            detail::file_fail("IDX labels file", labels_path, "label ", l, " of image ", i, " is out of range for ",
                              num_classes, " classes (labels must be 0..", num_classes - 1, ")");
        mx = std::max(mx, l);
    }
    if (num_classes == 0) {
        num_classes = static_cast<std::size_t>(mx + 1);
        if (num_classes > 256)
            detail::file_fail("IDX labels file", labels_path, "largest label ", mx, " implies ", num_classes,
                              " classes, more than 256");
    }
    ds.num_classes = ds.labels.empty() ? 0 : num_classes;
    ds.class_names = ds.num_classes ? std::move(class_names) : std::vector<std::string>{};
    ds.source += " + " + labels_path.string();
    return ds;
}

}  // namespace ssl::data
