#pragma once
// A plain tar reader and writer for data shards (data/shards.hpp).
//
// Format: POSIX ustar (IEEE Std 1003.1-1988, as extended by POSIX.1-2001):
// 512-byte blocks; every member is a header block followed by its data,
// padded to a whole block; the archive ends with two zero blocks.
//   header  name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8]
//           typeflag[1] linkname[100] magic[6] version[2] uname[32] gname[32]
//           devmajor[8] devminor[8] prefix[155] (then padding to 512)
//   chksum  the sum of the header's 512 bytes as unsigned chars, the chksum
//           field counted as 8 spaces, written in octal
//   name    prefix + "/" + name when prefix is not empty
//
// Reader (tar_reader, over any std::istream, so a fuzzer can feed bytes):
//   - reads regular files ('0' and old-style '\0'); skips directories, links
//     and other types; applies a pax extended header ('x': path, size) and a
//     GNU long name ('L') to the member after it; skips global pax headers;
//   - sizes in octal or in the GNU base-256 form (first byte 0x80);
//   - ends at a zero block, or at the end of the file on a block boundary
//     (some writers leave out the two zero blocks);
//   - errors (ssl::io_error "tar '<name>': ...", naming the member and the
//     byte offset): a header that ends before 512 bytes (truncated), a wrong
//     checksum (corrupt header), a size field that is not a number, a member
//     whose data runs past the end of the file (truncated), a member larger
//     than max_member_bytes (a corrupt size cannot allocate gigabytes).
//     The stream's length is taken once, at the start, so data that a size
//     field claims beyond the end is refused before anything is allocated.
// Writer (tar_writer): ustar headers, mode 0644, uid/gid 0, mtime 0 (the same
// input gives byte-identical archives), names of at most 100 bytes.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"

namespace ssl::data {

/// One member of a tar archive as the reader found it.
struct tar_member {
    std::string name;          ///< the full path inside the archive
    std::uint64_t size = 0;    ///< bytes of data
    std::uint64_t offset = 0;  ///< where its header starts in the archive
    std::size_t number = 0;    ///< 0, 1, ... among the archive's regular files
};

struct tar_reader_options {
    /// The largest member accepted (a corrupt size field is refused, not allocated).
    std::uint64_t max_member_bytes = std::uint64_t(1) << 30;
};

namespace detail {

inline constexpr std::size_t tar_block = 512;

/// An octal field ("0000644\0", spaces and NULs around allowed) or a GNU
/// base-256 one; false when it is neither.
inline bool tar_number(const unsigned char* f, std::size_t n, std::uint64_t& out) {
    out = 0;
    if (n > 0 && (f[0] & 0x80)) {  // base-256: big-endian, the top bit a flag
        if (f[0] & 0x40) return false;  // negative
        std::uint64_t v = f[0] & 0x3f;
        for (std::size_t i = 1; i < n; ++i) {
            if (v >> 56) return false;
            v = (v << 8) | f[i];
        }
        out = v;
        return true;
    }
    std::size_t i = 0;
    while (i < n && (f[i] == ' ' || f[i] == 0)) ++i;
    if (i == n) return true;  // an empty field is 0
    bool any = false;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) {
        if (out >> 61) return false;
        out = out * 8 + (f[i] - '0');
        any = true;
    }
    for (; i < n; ++i)
        if (f[i] != ' ' && f[i] != 0) return false;
    return any;
}

/// A NUL-terminated field of at most n bytes.
inline std::string tar_string(const unsigned char* f, std::size_t n) {
    std::size_t len = 0;
    while (len < n && f[len]) ++len;
    return std::string(reinterpret_cast<const char*>(f), len);
}

/// Printable text of a few bytes, for messages.
inline std::string tar_shown(const unsigned char* f, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char c = f[i];
        if (c >= 32 && c < 127) s += static_cast<char>(c);
        else s += c == 0 ? "\\0" : "?";
    }
    return s;
}

}  // namespace detail

/// Reads the regular files of a tar archive one after the other:
///
///   tar_reader r(stream, "shard-000.tar");
///   tar_member m;
///   std::vector<unsigned char> data;
///   while (r.next(m)) r.read(data);   // or r.skip()
class tar_reader {
public:
    /// `name` stands for the archive in messages.
    tar_reader(std::istream& in, std::string name, tar_reader_options opt = {})
        : in_(&in), name_(std::move(name)), opt_(opt) {
        const auto here = in.tellg();
        in.seekg(0, std::ios::end);
        const auto end = in.tellg();
        if (here >= 0 && end >= 0) length_ = static_cast<std::uint64_t>(end) - static_cast<std::uint64_t>(here);
        in.seekg(here);
        in.clear();
        if (here < 0 || end < 0) fail(0, "cannot get the archive's length (not a seekable file)");
    }

    /// Opens a file and reads it.
    explicit tar_reader(const std::filesystem::path& path, tar_reader_options opt = {})
        : own_(open(path)), in_(own_.get()), name_(path.string()), opt_(opt) {
        in_->seekg(0, std::ios::end);
        length_ = static_cast<std::uint64_t>(in_->tellg());
        in_->seekg(0);
    }

    const std::string& name() const noexcept { return name_; }
    std::uint64_t length() const noexcept { return length_; }

    /// Moves to the next regular file; false at the end of the archive.
    /// The data of the previous member, if not read, is skipped.
    bool next(tar_member& m) {
        if (pending_) skip();
        std::string long_name;
        std::uint64_t pax_size = 0;
        bool has_pax_size = false;
        std::string pax_path;
        for (;;) {
            if (done_) return false;
            const std::uint64_t at = pos_;
            if (at == length_) {  // the end of the file on a block boundary: the end of the archive
                done_ = true;
                return false;
            }
            std::array<unsigned char, detail::tar_block> h{};
            const std::size_t got = read_some(h.data(), h.size());
            if (got < h.size())
                fail(at, "truncated: the file ends at byte ", at + got, " inside a member header (", got, " of 512 bytes)");
            if (std::all_of(h.begin(), h.end(), [](unsigned char c) { return c == 0; })) {
                done_ = true;  // end-of-archive (the second zero block and anything after it are not read)
                return false;
            }
            std::uint64_t stored = 0;
            if (!detail::tar_number(h.data() + 148, 8, stored))
                fail(at, "corrupt member header: its checksum field '", detail::tar_shown(h.data() + 148, 8),
                     "' is not an octal number (not a tar file, or damaged)");
            std::uint64_t sum = 0;
            std::int64_t ssum = 0;  // some old writers summed signed chars
            for (std::size_t i = 0; i < h.size(); ++i) {
                const unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
                sum += c;
                ssum += static_cast<signed char>(c);
            }
            if (stored != sum && static_cast<std::int64_t>(stored) != ssum)
                fail(at, "corrupt member header ('", detail::tar_shown(h.data(), detail::tar_string(h.data(), 100).size()),
                     "'): checksum ", stored, " stored, ", sum, " computed");
            std::uint64_t size = 0;
            if (!detail::tar_number(h.data() + 124, 12, size))
                fail(at, "corrupt member header: its size field '", detail::tar_shown(h.data() + 124, 12),
                     "' is not a number");
            const char type = static_cast<char>(h[156]);
            std::string name = detail::tar_string(h.data(), 100);
            if (std::memcmp(h.data() + 257, "ustar", 5) == 0) {
                const std::string prefix = detail::tar_string(h.data() + 345, 155);
                if (!prefix.empty()) name = prefix + "/" + name;
            }
            if (has_pax_size) size = pax_size;
            if (size > length_ - pos_)
                fail(at, "truncated: member '", name, "' declares ", size, " bytes of data, but the file ends ",
                     length_ - pos_, " bytes after its header");
            const std::uint64_t padded = (size + detail::tar_block - 1) / detail::tar_block * detail::tar_block;
            if (type == 'x' || type == 'L') {  // applies to the next member
                if (size > (std::uint64_t(1) << 20))
                    fail(at, "corrupt: a ", type == 'x' ? "pax extended header" : "GNU long name", " of ", size,
                         " bytes (more than 1 MiB)");
                std::string text(static_cast<std::size_t>(size), '\0');
                read_exact(text.data(), text.size(), at);
                skip_bytes(padded - size, at);
                if (type == 'L') {
                    long_name = text.substr(0, text.find('\0'));
                } else {
                    parse_pax(text, at, pax_path, pax_size, has_pax_size);
                }
                continue;
            }
            if (type != '0' && type != '\0' && type != '7') {  // directories, links, global pax, ...: skipped
                skip_bytes(std::min(padded, length_ - pos_), at);
                long_name.clear();
                pax_path.clear();
                has_pax_size = false;
                continue;
            }
            if (!pax_path.empty()) name = pax_path;
            else if (!long_name.empty()) name = long_name;
            if (size > opt_.max_member_bytes)
                fail(at, "member '", name, "' is ", size, " bytes, more than the ", opt_.max_member_bytes,
                     " accepted (a corrupt size field?)");
            m.name = std::move(name);
            m.size = size;
            m.offset = at;
            m.number = count_++;
            current_ = m;
            pending_ = true;
            return true;
        }
    }

    /// The current member's data (after next() returned true), into `out`.
    void read(std::vector<unsigned char>& out) {
        require<io_error>(pending_, "tar '", name_, "': read() without a member (call next() first)");
        pending_ = false;
        out.resize(static_cast<std::size_t>(current_.size));
        read_exact(out.data(), out.size(), current_.offset);
        skip_padding(current_.size, current_.offset);
    }

    /// Skips the current member's data.
    void skip() {
        if (!pending_) return;
        pending_ = false;
        skip_bytes(current_.size, current_.offset);
        skip_padding(current_.size, current_.offset);
    }

private:
    static std::unique_ptr<std::istream> open(const std::filesystem::path& path) {
        auto f = std::make_unique<std::ifstream>(path, std::ios::binary);
        if (!*f) throw io_error(ssl::detail::cat("tar '", path.string(), "': cannot open for reading: ", std::strerror(errno)));
        return f;
    }

    template <class... Args>
    [[noreturn]] void fail(std::uint64_t at, Args&&... args) const {
        throw io_error(ssl::detail::cat("tar '", name_, "': at byte ", at, ": ", std::forward<Args>(args)...));
    }

    std::size_t read_some(unsigned char* p, std::size_t n) {
        in_->read(reinterpret_cast<char*>(p), static_cast<std::streamsize>(n));
        const auto got = static_cast<std::size_t>(in_->gcount());
        pos_ += got;
        return got;
    }
    void read_exact(char* p, std::size_t n, std::uint64_t member_at) {
        read_exact(reinterpret_cast<unsigned char*>(p), n, member_at);
    }
    void read_exact(unsigned char* p, std::size_t n, std::uint64_t member_at) {
        if (read_some(p, n) < n)
            fail(member_at, "truncated: the file ends at byte ", pos_, " inside the data of member '", current_.name, "'");
    }
    void skip_bytes(std::uint64_t n, std::uint64_t member_at) {
        if (n == 0) return;
        if (n > length_ - pos_) fail(member_at, "truncated: the file ends at byte ", length_, " inside a member's data");
        in_->seekg(static_cast<std::streamoff>(n), std::ios::cur);
        if (!*in_) fail(member_at, "cannot seek past a member's data");
        pos_ += n;
    }
    void skip_padding(std::uint64_t size, std::uint64_t member_at) {
        const std::uint64_t pad = (detail::tar_block - size % detail::tar_block) % detail::tar_block;
        // a file cut right after a member's data (inside its padding) is truncated too
        if (pad > length_ - pos_)
            fail(member_at, "truncated: the file ends at byte ", length_, " inside the padding of member '",
                 current_.name, "'");
        skip_bytes(pad, member_at);
    }

    /// pax records "LEN key=value\n"; path and size are used, the rest ignored.
    void parse_pax(const std::string& t, std::uint64_t at, std::string& path, std::uint64_t& size, bool& has_size) const {
        std::size_t p = 0;
        while (p < t.size()) {
            if (t[p] == '\0') break;
            std::size_t sp = t.find(' ', p);
            if (sp == std::string::npos) fail(at, "corrupt pax extended header: a record without a length");
            std::uint64_t len = 0;
            for (std::size_t i = p; i < sp; ++i) {
                if (t[i] < '0' || t[i] > '9' || len > (std::uint64_t(1) << 32))
                    fail(at, "corrupt pax extended header: record length '", t.substr(p, sp - p), "' is not a number");
                len = len * 10 + static_cast<std::uint64_t>(t[i] - '0');
            }
            if (len <= sp - p || len > t.size() - p || t[p + len - 1] != '\n')
                fail(at, "corrupt pax extended header: a record of length ", len, " does not fit");
            const std::string rec = t.substr(sp + 1, p + len - 1 - (sp + 1));
            const std::size_t eq = rec.find('=');
            if (eq == std::string::npos) fail(at, "corrupt pax extended header: record '", rec, "' has no '='");
            const std::string key = rec.substr(0, eq), value = rec.substr(eq + 1);
            if (key == "path") {
                path = value;
            } else if (key == "size") {
                std::uint64_t v = 0;
                if (value.empty()) fail(at, "corrupt pax extended header: an empty size");
                for (char c : value) {
                    if (c < '0' || c > '9' || v > (std::uint64_t(1) << 58))
                        fail(at, "corrupt pax extended header: size '", value, "' is not a number");
                    v = v * 10 + static_cast<std::uint64_t>(c - '0');
                }
                size = v;
                has_size = true;
            }
            p += len;
        }
    }

    std::unique_ptr<std::istream> own_;
    std::istream* in_;
    std::string name_;
    tar_reader_options opt_;
    std::uint64_t length_ = 0, pos_ = 0;
    std::size_t count_ = 0;
    bool done_ = false, pending_ = false;
    tar_member current_;
};

/// Writes a ustar archive: add() each member, then finish() (two zero blocks).
class tar_writer {
public:
    explicit tar_writer(std::ostream& out, std::string name = "<stream>") : out_(&out), name_(std::move(name)) {}

    void add(std::string_view member, std::span<const unsigned char> data) {
        require<value_error>(!member.empty() && member.size() <= 100, "tar '", name_, "': member name '", member,
                             "' must be 1 to 100 bytes long");
        require<value_error>(data.size() < (std::uint64_t(1) << 33), "tar '", name_, "': member '", member,
                             "' is larger than 8 GiB (the ustar size field's limit)");
        std::array<unsigned char, detail::tar_block> h{};
        std::memcpy(h.data(), member.data(), member.size());
        octal(h.data() + 100, 8, 0644);
        octal(h.data() + 108, 8, 0);
        octal(h.data() + 116, 8, 0);
        octal(h.data() + 124, 12, data.size());
        octal(h.data() + 136, 12, 0);
        h[156] = '0';
        std::memcpy(h.data() + 257, "ustar", 6);  // magic "ustar\0"
        h[263] = '0';
        h[264] = '0';
        std::memset(h.data() + 148, ' ', 8);
        std::uint64_t sum = 0;
        for (unsigned char c : h) sum += c;
        octal(h.data() + 148, 7, sum);  // 6 digits, NUL, then the space already there
        write(h.data(), h.size());
        write(data.data(), data.size());
        static const std::array<unsigned char, detail::tar_block> zeros{};
        write(zeros.data(), (detail::tar_block - data.size() % detail::tar_block) % detail::tar_block);
    }

    void finish() {
        static const std::array<unsigned char, 2 * detail::tar_block> zeros{};
        write(zeros.data(), zeros.size());
        out_->flush();
        require<io_error>(static_cast<bool>(*out_), "tar '", name_, "': write error");
    }

private:
    /// `digits` = n - 1 octal digits and a NUL.
    static void octal(unsigned char* f, std::size_t n, std::uint64_t v) {
        for (std::size_t i = n - 1; i-- > 0;) {
            f[i] = static_cast<unsigned char>('0' + (v & 7));
            v >>= 3;
        }
        f[n - 1] = 0;
    }
    void write(const unsigned char* p, std::size_t n) {
        out_->write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
        require<io_error>(static_cast<bool>(*out_), "tar '", name_, "': write error");
    }
    std::ostream* out_;
    std::string name_;
};

}  // namespace ssl::data
