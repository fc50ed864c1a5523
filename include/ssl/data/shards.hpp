#pragma once
// Image sets larger than memory: WebDataset-style tar shards, streamed.
//
// On disk (write_shards / shard_writer write it; `ssl shards` from the
// command line):
//   DIR/manifest.json       {"format": "ssl-shards", "version": 1, "samples": N,
//                            "channels": C, "height": H, "width": W, "classes": K,
//                            "class_names": [...], "image": "png",
//                            "shards": [{"file": "shard-000000.tar", "samples": n0}, ...]}
//   DIR/shard-000000.tar    ustar archives (data/tar.hpp); a sample is the
//                           adjacent members sharing a basename up to its
//                           first '.': 000000123.png (the image: PNG, or any
//                           JPEG / BMP stb decodes) and 000000123.cls (its
//                           class, decimal text) when the set is labelled.
//                           Other members of a sample (.json, .txt) are
//                           ignored, as WebDataset does.
// Images are stored as PNG (lossless, zlib, own encoder below); they are
// decoded only when a batch is made. Sample i of the set is the i-th sample
// in manifest order (shard 0's first, ...): its index in batches.
//
// Streaming (shard_stream): one epoch of one rank reads
//   1. the shards in an order drawn per epoch from
//      philox(seed, stream_id(shard_order_tag, epoch)) (same on every rank),
//      rank r taking positions r, r + P, r + 2P, ... of it: the shard count
//      must be divisible by the P ranks, so every rank reads K / P shards;
//   2. their samples through a shuffle buffer of `buffer` encoded samples:
//      once full, every new sample replaces one drawn at random from
//      philox(seed, stream_id(buffer_tag, epoch, rank)), which is emitted;
//      at the end the buffer drains in random order;
//   3. batches of `batch_size` (the per-rank batch). Memory: the buffer's
//      encoded samples and one batch, whatever the set's size.
// Equal steps on every rank: shards may hold different numbers of samples
// (the last one is short), so ranks' epochs differ in length. With
//   tail::drop  every rank yields floor(S_min / B) batches, S_min the fewest
//               samples any rank can get (its K / P smallest shards); the
//               rest of each rank's epoch is left out (different samples each
//               epoch, as the in-memory loader's drop_last);
//   tail::pad   every rank yields ceil(S_max / B) batches, S_max the most any
//               rank can get; a rank whose epoch ends first goes on with its
//               own epoch's samples again from the start (same order),
//               counted in batch.padding. Every sample is then in exactly
//               one rank's non-padding samples of each epoch.
// Resuming: epoch(e, k) starts at batch k; the k * B samples before it are
// read (tar headers and data) but not decoded.
// Errors (ssl::io_error naming the directory, shard and member): no or
// damaged manifest, a manifest whose counts do not add up, a shard file that
// is missing, a shard holding another number of samples than the manifest
// says, a sample without image or without label, a label that is not a class
// number, a sample whose files are not adjacent, an image that does not
// decode or has another size than the manifest's, and every tar error
// (truncated, bad checksum); ssl::value_error for options (shard count not
// divisible by the ranks, buffer 0, ...).
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"
#include "image_folder.hpp"
#include "loader.hpp"
#include "tar.hpp"

namespace ssl::data {

/// philox stream tags of the shard order and of the shuffle buffer.
inline constexpr std::uint64_t shard_order_tag = 0x5a4d0;
inline constexpr std::uint64_t shard_buffer_tag = 0x5a4d1;

/// The manifest's name in a shard directory.
inline constexpr const char* shard_manifest_file = "manifest.json";

struct shard_info {
    std::string file;         ///< file name inside the directory
    std::size_t samples = 0;  ///< samples it holds
};

/// manifest.json: what the shards hold.
struct shard_manifest {
    std::size_t samples = 0;
    std::size_t channels = 0, height = 0, width = 0;
    std::size_t classes = 0;  ///< 0: unlabelled
    std::vector<std::string> class_names;
    std::string image = "png";
    std::string name;  ///< the set's name (what it was written from)
    std::vector<shard_info> shards;

    bool labelled() const noexcept { return classes > 0; }

    nlohmann::json to_json() const {
        nlohmann::json s = nlohmann::json::array();
        for (const auto& i : shards) s.push_back({{"file", i.file}, {"samples", i.samples}});
        return {{"format", "ssl-shards"}, {"version", 1},        {"name", name},
                {"samples", samples},     {"channels", channels}, {"height", height},
                {"width", width},         {"classes", classes},   {"class_names", class_names},
                {"image", image},         {"shards", s}};
    }

    /// Reads and checks DIR/manifest.json (not the shards themselves, except
    /// that every one must exist).
    static shard_manifest read(const std::filesystem::path& dir) {
        namespace fs = std::filesystem;
        const fs::path file = dir / shard_manifest_file;
        auto fail = [&](auto&&... a) -> void { detail::file_fail("shard manifest", file, a...); };
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) detail::file_fail("shards", dir, "no such directory");
        if (!fs::exists(file, ec))
            fail("missing (a shard directory has a manifest.json listing its shards; write one with `ssl shards`)");
        std::ifstream in(file);
        if (!in) fail("cannot open for reading: ", std::strerror(errno));
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            fail("not valid JSON: ", e.what());
        }
        if (!j.is_object()) fail("not a JSON object");
        if (!j.contains("format") || j["format"] != "ssl-shards")
            fail("\"format\" must be \"ssl-shards\"");
        if (!j.contains("version") || j["version"] != 1) fail("\"version\" must be 1 (a manifest from a newer ssl?)");
        auto count = [&](const char* key) -> std::size_t {
            if (!j.contains(key) || !j[key].is_number_unsigned()) fail("\"", key, "\" must be a non-negative integer");
            return j[key].get<std::size_t>();
        };
        shard_manifest m;
        m.samples = count("samples");
        m.channels = count("channels");
        m.height = count("height");
        m.width = count("width");
        m.classes = count("classes");
        if (m.channels != 1 && m.channels != 3) fail("\"channels\" must be 1 or 3, got ", m.channels);
        if (m.height == 0 || m.width == 0 || m.height > 65536 || m.width > 65536)
            fail("image size ", m.height, "x", m.width, " is not a size (1 to 65536 per side)");
        if (j.contains("name") && j["name"].is_string()) m.name = j["name"].get<std::string>();
        if (j.contains("image")) {
            if (!j["image"].is_string()) fail("\"image\" must be a string");
            m.image = j["image"].get<std::string>();
        }
        if (j.contains("class_names")) {
            const auto& c = j["class_names"];
            if (!c.is_array()) fail("\"class_names\" must be an array of strings");
            for (const auto& n : c) {
                if (!n.is_string()) fail("\"class_names\" must be an array of strings");
                m.class_names.push_back(n.get<std::string>());
            }
            if (!m.class_names.empty() && m.class_names.size() != m.classes)
                fail(m.class_names.size(), " class names for ", m.classes, " classes");
        }
        if (!j.contains("shards") || !j["shards"].is_array() || j["shards"].empty())
            fail("\"shards\" must be a non-empty array of {\"file\", \"samples\"}");
        std::size_t total = 0;
        std::set<std::string> seen;
        for (std::size_t k = 0; k < j["shards"].size(); ++k) {
            const auto& s = j["shards"][k];
            if (!s.is_object() || !s.contains("file") || !s["file"].is_string() || !s.contains("samples") ||
                !s["samples"].is_number_unsigned())
                fail("shard ", k, " must be {\"file\": NAME, \"samples\": COUNT}");
            shard_info i{s["file"].get<std::string>(), s["samples"].get<std::size_t>()};
            const fs::path p(i.file);
            if (i.file.empty() || p.is_absolute() || p.has_parent_path() || i.file == "." || i.file == "..")
                fail("shard ", k, ": file '", i.file, "' must be a file name inside the directory");
            if (i.samples == 0) fail("shard ", k, " ('", i.file, "') holds no samples");
            if (!seen.insert(i.file).second) fail("shard file '", i.file, "' is listed twice");
            if (!fs::is_regular_file(dir / p, ec))
                fail("shard ", k, ": '", (dir / p).string(), "' is missing (listed in the manifest)");
            total += i.samples;
            m.shards.push_back(std::move(i));
        }
        if (total != m.samples)
            fail("inconsistent: the shards hold ", total, " samples in all, \"samples\" says ", m.samples);
        return m;
    }
};

namespace detail {

/// A PNG of C = 1 (grey) or 3 (RGB) channels from (C, H, W) bytes: filter 0
/// rows, deflated by zlib; chunk CRCs by zlib's crc32.
inline std::vector<unsigned char> encode_png(const std::uint8_t* chw, std::size_t c, std::size_t h, std::size_t w) {
    require(c == 1 || c == 3, "encode_png: channels must be 1 or 3, got ", c);
    require(h > 0 && w > 0 && h < (1u << 31) && w < (1u << 31), "encode_png: bad size ", h, "x", w);
    std::vector<unsigned char> raw(h * (1 + w * c));
    for (std::size_t y = 0; y < h; ++y) {
        unsigned char* row = raw.data() + y * (1 + w * c);
        row[0] = 0;
        for (std::size_t x = 0; x < w; ++x)
            for (std::size_t k = 0; k < c; ++k) row[1 + x * c + k] = chw[(k * h + y) * w + x];
    }
    uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
    std::vector<unsigned char> z(zlen);
    if (compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
        throw error("encode_png: zlib failed to compress");
    z.resize(zlen);
    std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    auto be32 = [&](std::uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
    };
    auto chunk = [&](const char* type, const unsigned char* d, std::size_t n) {
        be32(static_cast<std::uint32_t>(n));
        const std::size_t start = out.size();
        out.insert(out.end(), type, type + 4);
        out.insert(out.end(), d, d + n);
        be32(static_cast<std::uint32_t>(crc32(0, out.data() + start, static_cast<uInt>(n + 4))));
    };
    std::array<unsigned char, 13> ihdr{};
    for (int i = 0; i < 4; ++i) {
        ihdr[static_cast<std::size_t>(i)] = static_cast<unsigned char>(w >> (24 - 8 * i));
        ihdr[static_cast<std::size_t>(4 + i)] = static_cast<unsigned char>(h >> (24 - 8 * i));
    }
    ihdr[8] = 8;                         // bit depth
    ihdr[9] = c == 1 ? 0 : 2;            // grey or RGB
    chunk("IHDR", ihdr.data(), ihdr.size());
    chunk("IDAT", z.data(), z.size());
    chunk("IEND", nullptr, 0);
    return out;
}

inline std::string shard_file_name(std::size_t k) {
    char b[32];
    std::snprintf(b, sizeof b, "shard-%06zu.tar", k);
    return b;
}
inline std::string sample_key(std::size_t i) {
    char b[32];
    std::snprintf(b, sizeof b, "%09zu", i);
    return b;
}

/// Writes `bytes` to `path` through a temporary file renamed into place.
inline void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
    const auto tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) file_fail("file", tmp, "cannot open for writing: ", std::strerror(errno));
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.flush();
        if (!out) file_fail("file", tmp, "write error");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) file_fail("file", path, "cannot rename the temporary file into place: ", ec.message());
}

}  // namespace detail

struct shard_writer_options {
    std::size_t samples_per_shard = 10000;
    std::size_t channels = 1, height = 28, width = 28;
    std::size_t classes = 0;  ///< 0: unlabelled (no .cls members)
    std::vector<std::string> class_names;
    std::string name;  ///< recorded in the manifest
};

/// Writes samples one at a time into shards of samples_per_shard, then the
/// manifest (finish()). Memory: one image. The directory must be empty or
/// not exist (it is created); shards are written under a temporary name and
/// renamed when complete, the manifest last.
class shard_writer {
public:
    shard_writer(std::filesystem::path dir, shard_writer_options opt) : dir_(std::move(dir)), opt_(std::move(opt)) {
        namespace fs = std::filesystem;
        require(opt_.samples_per_shard >= 1, "shard_writer: samples_per_shard must be at least 1");
        require(opt_.channels == 1 || opt_.channels == 3, "shard_writer: channels must be 1 or 3, got ", opt_.channels);
        require(opt_.height >= 1 && opt_.width >= 1, "shard_writer: images must have a size");
        require(opt_.class_names.empty() || opt_.class_names.size() == opt_.classes, "shard_writer: ",
                opt_.class_names.size(), " class names for ", opt_.classes, " classes");
        std::error_code ec;
        if (fs::exists(dir_, ec)) {
            if (!fs::is_directory(dir_, ec)) detail::file_fail("shard output", dir_, "exists and is not a directory");
            if (!fs::is_empty(dir_, ec))
                detail::file_fail("shard output", dir_, "is not empty (write shards into a new or empty directory)");
        } else {
            fs::create_directories(dir_, ec);
            if (ec) detail::file_fail("shard output", dir_, "cannot create the directory: ", ec.message());
        }
    }
    shard_writer(const shard_writer&) = delete;
    shard_writer& operator=(const shard_writer&) = delete;

    /// Adds one image, (C, H, W) bytes, with its label (ignored when unlabelled).
    void add(const std::uint8_t* chw, std::int64_t label = 0) {
        require(!finished_, "shard_writer: add() after finish()");
        if (opt_.classes)
            require(label >= 0 && static_cast<std::uint64_t>(label) < opt_.classes, "shard_writer: label ", label,
                    " of sample ", count_, " is out of range [0, ", opt_.classes, ")");
        if (!out_) open_next();
        const std::string key = detail::sample_key(count_);
        const auto png = detail::encode_png(chw, opt_.channels, opt_.height, opt_.width);
        tar_->add(key + ".png", png);
        if (opt_.classes) {
            const std::string t = std::to_string(label) + "\n";
            tar_->add(key + ".cls", std::span(reinterpret_cast<const unsigned char*>(t.data()), t.size()));
        }
        ++count_;
        if (++in_shard_ == opt_.samples_per_shard) close_current();
    }

    /// Closes the last shard and writes the manifest; returns it.
    shard_manifest finish() {
        require(!finished_, "shard_writer: finish() called twice");
        require<value_error>(count_ > 0, "shard_writer: no samples were added to '", dir_.string(), "'");
        close_current();
        finished_ = true;
        shard_manifest m;
        m.samples = count_;
        m.channels = opt_.channels;
        m.height = opt_.height;
        m.width = opt_.width;
        m.classes = opt_.classes;
        m.class_names = opt_.class_names;
        m.name = opt_.name;
        m.shards = shards_;
        detail::write_file_atomic(dir_ / shard_manifest_file, m.to_json().dump(1) + "\n");
        return m;
    }

    std::size_t samples() const noexcept { return count_; }

private:
    void open_next() {
        const std::string file = detail::shard_file_name(shards_.size());
        tmp_ = dir_ / (file + ".tmp");
        out_ = std::make_unique<std::ofstream>(tmp_, std::ios::binary | std::ios::trunc);
        if (!*out_) detail::file_fail("shard", tmp_, "cannot open for writing: ", std::strerror(errno));
        tar_ = std::make_unique<tar_writer>(*out_, tmp_.string());
        shards_.push_back({file, 0});
        in_shard_ = 0;
    }
    void close_current() {
        if (!out_) return;
        tar_->finish();
        out_->close();
        if (!*out_) detail::file_fail("shard", tmp_, "write error");
        shards_.back().samples = in_shard_;
        std::error_code ec;
        std::filesystem::rename(tmp_, dir_ / shards_.back().file, ec);
        if (ec) detail::file_fail("shard", tmp_, "cannot rename into place: ", ec.message());
        tar_.reset();
        out_.reset();
    }

    std::filesystem::path dir_, tmp_;
    shard_writer_options opt_;
    std::unique_ptr<std::ofstream> out_;
    std::unique_ptr<tar_writer> tar_;
    std::vector<shard_info> shards_;
    std::size_t count_ = 0, in_shard_ = 0;
    bool finished_ = false;
};

/// Writes a whole in-memory set as shards of samples_per_shard (the set's
/// labels, classes and names kept).
inline shard_manifest write_shards(const image_dataset& ds, const std::filesystem::path& dir,
                                   std::size_t samples_per_shard) {
    ds.validate();
    require<value_error>(!ds.empty(), "write_shards: ", ds.describe(), " is empty");
    shard_writer w(dir, {.samples_per_shard = samples_per_shard, .channels = ds.channels(), .height = ds.height(),
                         .width = ds.width(), .classes = ds.num_classes, .class_names = ds.class_names,
                         .name = ds.name});
    const std::size_t per = ds.image_bytes();
    for (std::size_t i = 0; i < ds.size(); ++i) w.add(ds.images.data() + i * per, ds.labelled() ? ds.labels[i] : 0);
    return w.finish();
}

/// A shard directory: where it is and its manifest.
struct shard_set {
    std::filesystem::path dir;
    shard_manifest manifest;

    /// Reads DIR/manifest.json and checks it (shard_manifest::read).
    static shard_set open(const std::filesystem::path& dir) { return {dir, shard_manifest::read(dir)}; }
    std::size_t size() const noexcept { return manifest.samples; }
    std::size_t shards() const noexcept { return manifest.shards.size(); }
    /// Index of the first sample of every shard (manifest order).
    std::vector<std::size_t> offsets() const {
        std::vector<std::size_t> o(manifest.shards.size(), 0);
        for (std::size_t k = 1; k < o.size(); ++k) o[k] = o[k - 1] + manifest.shards[k - 1].samples;
        return o;
    }
    std::string describe() const { return "shards '" + dir.string() + "'"; }
};

/// One sample as read from a shard: its encoded image and its label.
struct shard_sample {
    std::size_t index = 0;             ///< position in manifest order
    std::vector<unsigned char> image;  ///< the encoded image file
    std::int64_t label = -1;           ///< -1 when unlabelled
    std::size_t shard = 0;             ///< which shard (manifest index)
    std::string member;                ///< the image member's name
};

/// Reads the samples of a list of shards in order, checking each shard
/// against the manifest.
class shard_sample_reader {
public:
    shard_sample_reader(const shard_set& set, std::vector<std::size_t> shards)
        : set_(&set), list_(std::move(shards)), offsets_(set.offsets()) {}

    /// The next sample; false after the last shard's last one.
    bool next(shard_sample& s) {
        for (;;) {
            if (!tar_) {
                if (pos_ == list_.size()) return false;
                shard_ = list_[pos_];
                path_ = set_->dir / set_->manifest.shards[shard_].file;
                tar_ = std::make_unique<tar_reader>(path_);
                in_shard_ = 0;
                keys_.clear();
                have_member_ = false;
            }
            if (read_group(s)) return true;
            const std::size_t want = set_->manifest.shards[shard_].samples;
            if (in_shard_ != want)
                fail("holds ", in_shard_, " samples, the manifest says ", want, " (inconsistent manifest)");
            tar_.reset();
            ++pos_;
        }
    }

private:
    template <class... A>
    [[noreturn]] void fail(A&&... a) const {
        detail::file_fail("shard", path_, std::forward<A>(a)...);
    }

    static bool image_ext(const std::string& e) {
        std::string l = e;
        for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return l == "png" || l == "jpg" || l == "jpeg" || l == "bmp";
    }

    /// Reads the members of the next sample (adjacent, same key) into s.
    bool read_group(shard_sample& s) {
        std::string key;
        bool has_image = false, has_label = false;
        std::string image_member;
        for (;;) {
            if (!have_member_) {
                if (!tar_->next(member_)) break;
                have_member_ = true;
            }
            const std::size_t slash = member_.name.rfind('/');
            const std::size_t dot = member_.name.find('.', slash == std::string::npos ? 0 : slash + 1);
            if (dot == std::string::npos || dot + 1 == member_.name.size() ||
                dot == (slash == std::string::npos ? 0 : slash + 1))
                fail("member '", member_.name, "' has no KEY.EXTENSION name (a sample's files are KEY.png, KEY.cls, ...)");
            const std::string k = member_.name.substr(0, dot), ext = member_.name.substr(dot + 1);
            if (key.empty()) key = k;
            else if (k != key) break;  // the next sample's first member: kept for the next call
            have_member_ = false;
            if (image_ext(ext)) {
                if (has_image) fail("sample '", key, "' has two images ('", image_member, "' and '", member_.name, "')");
                tar_->read(s.image);
                has_image = true;
                image_member = member_.name;
            } else if (ext == "cls") {
                if (member_.size > 64) fail("member '", member_.name, "' is ", member_.size, " bytes, not a class number");
                tar_->read(buf_);
                s.label = parse_label(member_.name);
                has_label = true;
            } else {
                tar_->skip();  // other fields of a sample
            }
        }
        if (key.empty()) return false;
        if (!keys_.insert(key).second)
            fail("sample '", key, "' appears twice: a sample's files must be adjacent in the shard");
        if (!has_image)
            fail("sample '", key, "' has no image (KEY.png, .jpg, .jpeg or .bmp) next to its other files");
        if (set_->manifest.labelled() && !has_label)
            fail("sample '", key, "' (image '", image_member, "') is missing its label ('", key,
                 ".cls'); the manifest says the set is labelled with ", set_->manifest.classes, " classes");
        if (!set_->manifest.labelled()) s.label = -1;
        if (in_shard_ >= set_->manifest.shards[shard_].samples)
            fail("holds more samples than the ", set_->manifest.shards[shard_].samples,
                 " the manifest says (inconsistent manifest)");
        s.index = offsets_[shard_] + in_shard_;
        s.shard = shard_;
        s.member = image_member;
        ++in_shard_;
        return true;
    }

    std::int64_t parse_label(const std::string& member) {
        std::size_t b = 0, e = buf_.size();
        while (b < e && std::isspace(buf_[b])) ++b;
        while (e > b && std::isspace(buf_[e - 1])) --e;
        std::int64_t v = -1;
        const char* first = reinterpret_cast<const char*>(buf_.data()) + b;
        const char* last = reinterpret_cast<const char*>(buf_.data()) + e;
        const auto r = std::from_chars(first, last, v);
        const std::string text(first, last);
        if (b == e || r.ec != std::errc() || r.ptr != last)
            fail("label '", member, "' is '", text, "', not a class number");
        if (set_->manifest.labelled() && (v < 0 || static_cast<std::uint64_t>(v) >= set_->manifest.classes))
            fail("label '", member, "' is ", v, ", outside the manifest's ", set_->manifest.classes, " classes [0, ",
                 set_->manifest.classes, ")");
        return v;
    }

    const shard_set* set_;
    std::vector<std::size_t> list_, offsets_;
    std::size_t pos_ = 0, shard_ = 0, in_shard_ = 0;
    std::filesystem::path path_;
    std::unique_ptr<tar_reader> tar_;
    tar_member member_;
    bool have_member_ = false;
    std::unordered_set<std::string> keys_;
    std::vector<unsigned char> buf_;
};

/// Decodes a sample's image into (C, H, W) floats in [0, 1] at `out`,
/// checking it against the manifest's size and channels.
inline void decode_shard_sample(const shard_set& set, const shard_sample& s, float* out) {
    const auto& m = set.manifest;
    const auto path = set.dir / m.shards[s.shard].file;
    detail::decoded_image img;
    // a member must be the manifest's size: one declaring 4x its pixels or
    // more (a damaged header, a bomb) is refused before stb decodes it
    detail::decode_image_bytes(s.image.data(), s.image.size(), m.channels, img,
                               {4 * std::uint64_t(m.height) * m.width, "4x the manifest's height x width"});
    if (!img) detail::file_fail("shard", path, "image '", s.member, "': ", img.error);
    if (img.height != m.height || img.width != m.width)
        detail::file_fail("shard", path, "image '", s.member, "' is ", img.width, "x", img.height,
                          " pixels, the manifest says ", m.width, "x", m.height);
    const std::size_t H = m.height, W = m.width, C = m.channels;
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < H; ++y)
            for (std::size_t x = 0; x < W; ++x)
                out[(c * H + y) * W + x] = static_cast<float>(img.px[(y * W + x) * C + c]) / 255.0f;
}

/// The first `limit` samples (0: all) in manifest order, decoded, as an
/// in-memory set (for evaluation subsets and tests; memory grows with limit).
inline image_dataset load_shards(const shard_set& set, std::size_t limit = 0) {
    const auto& m = set.manifest;
    const std::size_t n = limit ? std::min(limit, m.samples) : m.samples;
    image_dataset d;
    d.images = tensor<std::uint8_t>({n, m.channels, m.height, m.width});
    d.num_classes = m.classes;
    d.class_names = m.class_names;
    d.name = m.name.empty() ? set.dir.filename().string() : m.name;
    d.source = set.dir.string();
    std::vector<std::size_t> all(m.shards.size());
    for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
    shard_sample_reader r(set, all);
    shard_sample s;
    const std::size_t per = m.channels * m.height * m.width;
    std::vector<float> f(per);
    for (std::size_t i = 0; i < n; ++i) {
        require<io_error>(r.next(s), set.describe(), ": ended after ", i, " samples");
        decode_shard_sample(set, s, f.data());
        for (std::size_t j = 0; j < per; ++j) d.images[i * per + j] = static_cast<std::uint8_t>(f[j] * 255.0f + 0.5f);
        if (m.labelled()) d.labels.push_back(s.label);
    }
    if (!m.labelled()) d.num_classes = 0;
    d.validate();
    return d;
}

/// How a rank's epoch is brought to the same number of batches on every rank.
enum class shard_tail { drop, pad };

struct shard_options {
    std::size_t batch_size = 256;  ///< per rank
    std::size_t buffer = 10000;    ///< samples in the shuffle buffer (encoded, not decoded)
    bool shuffle = true;           ///< shard order and buffer; false: manifest order (rank's shards in turn)
    shard_tail tail = shard_tail::drop;
    std::uint64_t seed = 0;
    std::size_t rank = 0;   ///< this process's rank (dist::communicator::rank())
    std::size_t ranks = 1;  ///< dist::communicator::size()
};

/// A batch from shards: data::batch (indices in manifest order) and how many
/// of its last samples are padding (tail::pad: repeats of the rank's epoch).
struct shard_batch : batch {
    std::size_t padding = 0;
};

/// The streaming loader over a shard set (see the top of this file).
class shard_stream {
public:
    shard_stream(shard_set set, shard_options opt) : set_(std::make_shared<shard_set>(std::move(set))), opt_(opt) {
        const std::size_t K = set_->shards();
        require<value_error>(opt_.batch_size >= 1, "shard_stream: batch_size must be at least 1");
        require<value_error>(opt_.buffer >= 1, "shard_stream: the shuffle buffer must hold at least 1 sample");
        require<value_error>(opt_.ranks >= 1 && opt_.rank < opt_.ranks, "shard_stream: rank ", opt_.rank,
                             " is not one of ", opt_.ranks, " ranks");
        require<value_error>(K % opt_.ranks == 0, set_->describe(), ": its ", K, " shards cannot be split evenly over ",
                             opt_.ranks, " ranks (the shard count must be divisible by the ranks; rewrite the set with "
                             "a --samples-per-shard that gives a multiple of ", opt_.ranks, " shards)");
        std::vector<std::size_t> counts;
        for (const auto& s : set_->manifest.shards) counts.push_back(s.samples);
        std::sort(counts.begin(), counts.end());
        const std::size_t per = K / opt_.ranks;
        for (std::size_t i = 0; i < per; ++i) {
            s_min_ += counts[i];
            s_max_ += counts[K - 1 - i];
        }
        const std::size_t B = opt_.batch_size;
        batches_ = opt_.tail == shard_tail::drop ? s_min_ / B : (s_max_ + B - 1) / B;
        require<value_error>(batches_ > 0, set_->describe(), ": a rank's ", s_min_, " samples (", per,
                             " shards of the fewest) make no batch of ", B);
    }

    const shard_set& set() const noexcept { return *set_; }
    const shard_options& options() const noexcept { return opt_; }
    std::size_t size() const noexcept { return set_->size(); }
    /// Batches every rank yields per epoch.
    std::size_t batches_per_epoch() const noexcept { return batches_; }
    /// The fewest and the most samples a rank's epoch can hold.
    std::size_t min_rank_samples() const noexcept { return s_min_; }
    std::size_t max_rank_samples() const noexcept { return s_max_; }

    /// The shards (manifest indices) this rank reads in epoch e, in order.
    std::vector<std::size_t> shard_order(std::size_t e) const {
        const std::size_t K = set_->shards();
        std::vector<std::size_t> o(K);
        for (std::size_t i = 0; i < K; ++i) o[i] = i;
        if (opt_.shuffle && K > 1) {
            philox g(opt_.seed, stream_id(shard_order_tag, e));
            for (std::size_t i = K - 1; i > 0; --i) std::swap(o[i], o[static_cast<std::size_t>(g.below(i + 1))]);
        }
        std::vector<std::size_t> mine;
        for (std::size_t i = opt_.rank; i < K; i += opt_.ranks) mine.push_back(o[i]);
        return mine;
    }

private:
    /// One pass over a rank's epoch: its shards through the shuffle buffer.
    struct pass {
        shard_sample_reader reader;
        std::vector<shard_sample> buf;
        philox rng;
        bool shuffle;
        std::size_t cap;
        bool filled = false;

        pass(const shard_set& s, std::vector<std::size_t> shards, const shard_options& o, std::size_t e)
            : reader(s, std::move(shards)), rng(o.seed, stream_id(shard_buffer_tag, e, o.rank)), shuffle(o.shuffle),
              cap(o.buffer) {}

        bool pull(shard_sample& out) {
            if (!shuffle) return reader.next(out);
            if (!filled) {
                filled = true;
                buf.reserve(std::min<std::size_t>(cap, 1u << 16));
                shard_sample s;
                while (buf.size() < cap && reader.next(s)) buf.push_back(std::move(s));
            }
            if (buf.empty()) return false;
            const auto j = static_cast<std::size_t>(rng.below(buf.size()));
            out = std::move(buf[j]);
            shard_sample s;
            if (reader.next(s)) {
                buf[j] = std::move(s);
            } else {
                if (j + 1 != buf.size()) buf[j] = std::move(buf.back());
                buf.pop_back();
            }
            return true;
        }
    };

public:
    /// The batches of one epoch for this rank, from batch `first` on.
    class epoch_range {
    public:
        epoch_range(const shard_stream& s, std::size_t e, std::size_t first)
            : st_(s.set_), opt_(s.opt_), epoch_(e), count_(s.batches_), order_(s.shard_order(e)) {
            require<value_error>(first <= count_, "shard_stream: cannot start epoch ", e, " at batch ", first,
                                 ", it has ", count_, " batches");
            main_.emplace(*st_, order_, opt_, e);
            pos_ = first;
            shard_sample skip;
            for (std::size_t i = 0; i < first * opt_.batch_size; ++i) next_sample(skip);
        }

        class iterator {
        public:
            using iterator_category = std::input_iterator_tag;
            using value_type = shard_batch;
            using difference_type = std::ptrdiff_t;
            iterator() = default;
            shard_batch& operator*() const { return *r_->current_; }
            shard_batch* operator->() const { return &*r_->current_; }
            iterator& operator++() {
                r_->advance();
                return *this;
            }
            void operator++(int) { ++*this; }
            friend bool operator==(const iterator& i, std::default_sentinel_t) noexcept { return i.at_end(); }

        private:
            bool at_end() const noexcept { return !r_ || !r_->current_; }
            friend class epoch_range;
            explicit iterator(epoch_range* r) : r_(r) {}
            epoch_range* r_ = nullptr;
        };

        iterator begin() {
            advance();
            return iterator(this);
        }
        std::default_sentinel_t end() const noexcept { return {}; }
        std::size_t size() const noexcept { return count_; }
        /// The shards this rank reads this epoch.
        const std::vector<std::size_t>& shards() const noexcept { return order_; }

    private:
        friend class iterator;
        /// The next sample of the rank's epoch sequence; padding when the
        /// rank's own samples are used up (tail::pad).
        bool next_sample(shard_sample& s) {
            if (!padding_) {
                if (main_->pull(s)) return false;
                padding_ = true;
                main_.reset();
            }
            for (;;) {
                if (!pad_) pad_.emplace(*st_, order_, opt_, epoch_);
                if (pad_->pull(s)) return true;
                pad_.reset();  // a rank of fewer samples than the padding needs: around again
            }
        }

        void advance() {
            current_.reset();
            if (pos_ >= count_) return;
            const std::size_t B = opt_.batch_size;
            const auto& m = st_->manifest;
            const std::size_t per = m.channels * m.height * m.width;
            shard_batch b;
            b.epoch = epoch_;
            b.number = pos_++;
            b.images = tensor<float>({B, m.channels, m.height, m.width});
            b.indices.reserve(B);
            shard_sample s;
            for (std::size_t i = 0; i < B; ++i) {
                if (next_sample(s)) ++b.padding;
                decode_shard_sample(*st_, s, b.images.data() + i * per);
                b.indices.push_back(s.index);
                if (m.labelled()) b.labels.push_back(s.label);
            }
            current_ = std::move(b);
        }

        std::shared_ptr<const shard_set> st_;
        shard_options opt_;
        std::size_t epoch_, count_, pos_ = 0;
        std::vector<std::size_t> order_;
        std::optional<pass> main_, pad_;
        bool padding_ = false;
        std::optional<shard_batch> current_;
    };

    /// Epoch e's batches for this rank, starting at batch `first` (resuming).
    epoch_range epoch(std::size_t e, std::size_t first = 0) const { return epoch_range(*this, e, first); }

private:
    std::shared_ptr<shard_set> set_;
    shard_options opt_;
    std::size_t s_min_ = 0, s_max_ = 0, batches_ = 0;
};

}  // namespace ssl::data
