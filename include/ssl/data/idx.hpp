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
// ssl::io_error that names the file and says what is wrong. A gzip file must
// end with its gzip stream: bytes after it are refused (zlib's gzread
// ignored them). idx_options reads only the first `limit` images, inflating
// no more of a gzip file than they take (a small file can inflate to
// gigabytes), and refuses more than `max_bytes` of data to read.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <new>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <zlib.h>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {

/// How much of an IDX file to read.
struct idx_options {
    /// Read only the first `limit` images (labels); 0: all. The rest of a
    /// gzip file is not inflated, so a small file that inflates to gigabytes
    /// costs only what is read.
    std::size_t limit = 0;
    /// The most bytes of data (images or labels) read from one file; a
    /// header announcing more to read is refused, naming the file and both
    /// sizes. 1 GiB by default (Fashion-MNIST's train images are 47 MB).
    std::uint64_t max_bytes = std::uint64_t(1) << 30;
    /// How messages name max_bytes (the `ssl` program: "--max-data-mb").
    std::string max_bytes_name = "idx_options::max_bytes";
};

namespace detail {

/// Reads a file that is either plain or gzip-compressed (detected from the
/// first two bytes). Errors are io_errors "<kind> '<path>': ...".
///
/// gzip data is inflated here, not by zlib's gzread, which ignores whatever
/// follows the gzip stream: concatenated gzip members are one file (as gzip
/// itself reads them), any other byte after the last member is refused
/// ("trailing bytes after the gzip stream"). Only what is read is inflated,
/// so a caller that reads part of the data pays for that part only.
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
        file_ = std::fopen(path.c_str(), "rb");
        if (!file_) fail("cannot open for reading: ", std::strerror(errno));
        try {
            unsigned char magic[2] = {0, 0};
            const std::size_t got = std::fread(magic, 1, 2, file_);
            if (got < 2 && std::ferror(file_)) fail("read error: ", std::strerror(errno));
            gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
            if (gzip_) {
                in_.resize(std::size_t(1) << 17);
                std::memcpy(in_.data(), magic, 2);
                zs_.next_in = in_.data();
                zs_.avail_in = 2;
                read_in_ = 2;
                if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail("cannot start zlib: out of memory");
                z_open_ = true;
            } else {
                std::rewind(file_);
            }
        } catch (...) {  // the destructor does not run for a constructor that throws
            std::fclose(file_);
            throw;
        }
    }
    ~byte_reader() {
        if (z_open_) inflateEnd(&zs_);
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
    /// read error, corrupt gzip data or bytes after the gzip stream.
    std::size_t read_some(void* dst, std::size_t n) {
        char* p = static_cast<char*>(dst);
        std::size_t total = 0;
        while (total < n) {
            const std::size_t want = std::min<std::size_t>(n - total, std::size_t(1) << 30);
            const std::size_t got = gzip_ ? inflate_some(p + total, want) : std::fread(p + total, 1, want, file_);
            if (!gzip_ && got < want && std::ferror(file_)) fail("read error: ", std::strerror(errno));
            total += got;
            pos_ += got;
            if (got == 0) break;
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
    /// also has zlib verify the stream's CRC and length, and refuses bytes
    /// after the gzip stream).
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
    /// More compressed input into in_ (after the unread avail_in bytes);
    /// false at the end of the file.
    bool refill() {
        if (zs_.avail_in > 0 && zs_.next_in != in_.data()) std::memmove(in_.data(), zs_.next_in, zs_.avail_in);
        zs_.next_in = in_.data();
        const std::size_t got = std::fread(in_.data() + zs_.avail_in, 1, in_.size() - zs_.avail_in, file_);
        if (got == 0 && std::ferror(file_)) fail("read error: ", std::strerror(errno));
        zs_.avail_in += static_cast<unsigned>(got);
        read_in_ += got;
        return got > 0;
    }

    /// Inflates up to n bytes into dst; 0 at the end of the last gzip member.
    std::size_t inflate_some(char* dst, std::size_t n) {
        zs_.next_out = reinterpret_cast<unsigned char*>(dst);
        zs_.avail_out = static_cast<unsigned>(n);
        while (zs_.avail_out > 0 && !ended_) {
            if (zs_.avail_in == 0 && !refill())
                fail("truncated gzip stream: it ends after ", pos_ + (n - zs_.avail_out), " decompressed bytes");
            const int r = inflate(&zs_, Z_NO_FLUSH);
            if (r == Z_STREAM_END) {
                member_end();
            } else if (r == Z_MEM_ERROR) {
                throw std::bad_alloc();
            } else if (r != Z_OK && r != Z_BUF_ERROR) {
                fail("corrupt gzip data after ", pos_ + (n - zs_.avail_out),
                     " decompressed bytes: ", zs_.msg ? zs_.msg : "invalid deflate data");
            }
        }
        return n - zs_.avail_out;
    }

    /// After a gzip member: the end of the file, another member, or refused.
    void member_end() {
        while (zs_.avail_in < 2 && refill()) {
        }
        if (zs_.avail_in == 0) {
            ended_ = true;
            return;
        }
        if (zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b) {
            if (inflateReset(&zs_) != Z_OK) fail("cannot restart zlib for the next gzip member");
            return;
        }
        const std::uint64_t at = read_in_ - zs_.avail_in;
        fail(disk_size_ - at, " trailing bytes after the gzip stream (from byte ", at, " of the ", disk_size_,
             "-byte file): a gzip IDX file must end with its gzip stream (or another gzip member)");
    }

    std::filesystem::path path_;
    const char* kind_;
    std::uint64_t disk_size_ = 0;
    std::uint64_t pos_ = 0;
    bool gzip_ = false;
    std::FILE* file_ = nullptr;
    z_stream zs_{};
    bool z_open_ = false, ended_ = false;
    std::vector<unsigned char> in_;
    std::uint64_t read_in_ = 0;  // compressed bytes read from the file
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

/// The data of an IDX file: `count` items of `item_bytes` each (`layout`
/// describes them), of which the first `used` are read into dst. A file read
/// whole is checked to end there (for gzip, zlib also verifies the stream's
/// checksum); a file read in part is inflated no further than that part.
/// More than opt.max_bytes of data to read is refused before anything is
/// allocated or inflated.
template <class Alloc>
auto read_idx_body(byte_reader& in, std::uint64_t count, std::uint64_t item_bytes, const std::string& layout,
                   const char* items, const idx_options& opt, Alloc&& alloc) {
    const std::uint64_t bytes = count * item_bytes;
    check_idx_body_size(in, bytes, layout);
    const std::uint64_t used = opt.limit && opt.limit < count ? opt.limit : count, used_bytes = used * item_bytes;
    if (used_bytes > opt.max_bytes)
        in.fail("the header says ", layout, " = ", bytes, " bytes of data",
                used < count ? ssl::detail::cat(" (the first ", used, " ", items, ": ", used_bytes, " bytes)") : "",
                ", more than the maximum of ", opt.max_bytes, " bytes (", opt.max_bytes_name,
                "); a corrupt or hostile header? read fewer ", items, ", or raise the maximum");
    auto out = alloc(static_cast<std::size_t>(used));
    in.read_exact(out.data(), static_cast<std::size_t>(used_bytes), "the data");
    if (used == count) {
        const std::uint64_t extra = in.bytes_left();
        if (extra)
            in.fail(extra, " trailing bytes after the ", bytes, " bytes of data that the header (", layout,
                    ") announces");
    }
    return out;
}

/// An images file: its tensor (the first opt.limit images) and its image count.
inline std::pair<tensor<std::uint8_t>, std::size_t> read_idx_images(const std::filesystem::path& path,
                                                                    const idx_options& opt) {
    byte_reader in(path, "IDX images file");
    const auto d = read_idx_header(in, 3);
    if (d[1] == 0 || d[2] == 0) in.fail("images of size ", d[1], "x", d[2], " (rows and columns must be positive)");
    // Each dimension is < 2^32, so rows * columns fits; the product of all three may not.
    const std::uint64_t image = std::uint64_t(d[1]) * d[2];
    if (d[0] != 0 && image * d[0] / d[0] != image) in.fail("the header's dimensions overflow");
    const std::string layout = ssl::detail::cat(d[0], " images x ", d[1], " rows x ", d[2], " columns");
    auto t = read_idx_body(in, d[0], image, layout, "images", opt, [&](std::size_t n) {
        return tensor<std::uint8_t>({n, 1, d[1], d[2]});
    });
    return {std::move(t), d[0]};
}

/// A labels file: its labels (the first opt.limit) and its label count.
inline std::pair<std::vector<std::int64_t>, std::size_t> read_idx_labels(const std::filesystem::path& path,
                                                                        const idx_options& opt) {
    byte_reader in(path, "IDX labels file");
    const auto d = read_idx_header(in, 1);
    const std::string layout = ssl::detail::cat(d[0], " labels");
    auto raw = read_idx_body(in, d[0], 1, layout, "labels", opt,
                             [](std::size_t n) { return std::vector<std::uint8_t>(n); });
    return {std::vector<std::int64_t>(raw.begin(), raw.end()), d[0]};
}

}  // namespace detail

/// Reads an IDX images file (magic 0x00000803, plain or gzip) as an
/// (N, 1, rows, columns) byte tensor; N is opt.limit when the file holds more.
inline tensor<std::uint8_t> read_idx_images(const std::filesystem::path& path, const idx_options& opt = {}) {
    return detail::read_idx_images(path, opt).first;
}

/// Reads an IDX labels file (magic 0x00000801, plain or gzip); the first
/// opt.limit labels when it holds more.
inline std::vector<std::int64_t> read_idx_labels(const std::filesystem::path& path, const idx_options& opt = {}) {
    return detail::read_idx_labels(path, opt).first;
}

/// Reads an unlabelled image set from an IDX images file (named after the file).
inline image_dataset read_idx(const std::filesystem::path& images_path, const idx_options& opt = {}) {
    image_dataset ds;
    ds.images = read_idx_images(images_path, opt);
    ds.name = images_path.filename().string();
    ds.source = images_path.string();
    return ds;
}

/// Reads a labelled image set from an IDX images file and an IDX labels file.
/// num_classes = 0 infers it as max label + 1; otherwise every label must be
/// below num_classes. class_names, when given, must have num_classes names.
/// opt.limit: the first opt.limit images and labels (the counts the two
/// headers give must still match).
inline image_dataset read_idx(const std::filesystem::path& images_path, const std::filesystem::path& labels_path,
                              std::size_t num_classes = 0, std::vector<std::string> class_names = {},
                              const idx_options& opt = {}) {
    require(class_names.empty() || num_classes == 0 || class_names.size() == num_classes, "read_idx: ",
            class_names.size(), " class names for num_classes = ", num_classes);
    if (num_classes == 0) num_classes = class_names.size();
    image_dataset ds;
    std::size_t images = 0, labels = 0;
    std::tie(ds.images, images) = detail::read_idx_images(images_path, opt);
    ds.name = images_path.filename().string();
    ds.source = images_path.string();
    std::tie(ds.labels, labels) = detail::read_idx_labels(labels_path, opt);
    if (labels != images)
        throw io_error(ssl::detail::cat("IDX files do not match: '", images_path.string(), "' holds ", images,
                                        " images but '", labels_path.string(), "' holds ", labels, " labels"));
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
