#pragma once
// Video clips as folders of numbered frames: the data of motion methods
// ("Learning Features by Watching Objects Move", motion.hpp), and what
// `ssl train --data clips:DIR` reads.
//
//   DIR/<clip>/<number>.<png|jpg|jpeg|bmp>   one folder per clip, frames numbered
//   DIR/<number>.png ...                     or DIR itself is one clip
//
// Frame numbers are decimal (leading zeros allowed, e.g. 0000.png), consecutive
// within a clip (the first may be any number); frames are ordered by number.
// load_clip_folder returns the frames of all clips in order as one
// image_dataset whose label is the clip (class_names: the clip folders' names)
// and whose name is `clip_set_name`, so a method can tell a clip set from a
// labelled folder of images (see clip_ranges).
//
// Refused with an io_error naming the file or folder: a frame name that is
// not a number, a missing frame number (a gap), two files with one number,
// frames of different sizes in one clip, a clip of fewer than min_frames, an
// unreadable or corrupt image, a folder without clips.
//
// Design choices, one line each:
//   - the clip is the label: the rest of the library (subset, batching,
//     limits) carries it unchanged, and clip_ranges recovers the clips;
//   - a clip's frames must have one size in their files (a size change
//     mid-clip is a damaged clip, not something to resize away), then all are
//     brought to the options' size (0: the first frame's);
//   - files that are not images and hidden entries are ignored, as
//     load_image_folder does.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../io/temp_files.hpp"
#include "image_folder.hpp"
#include "shards.hpp"

namespace ssl::data {

/// image_dataset::name of a set read by load_clip_folder.
inline constexpr const char* clip_set_name = "clips";

struct clip_folder_options {
    image_folder_options image;  ///< size, channels, resize mode, pixel and byte limits (labelled: not used)
    std::size_t min_frames = 2;  ///< fewer frames in a clip is an error
};

/// [first, last) frame indices of each clip of a set from load_clip_folder
/// (labels = clip, in order). Throws value_error naming `who` for any other set.
inline std::vector<std::pair<std::size_t, std::size_t>> clip_ranges(const image_dataset& d, const std::string& who) {
    require(d.name == clip_set_name && d.labelled(), who, ": needs clips, a set read by load_clip_folder "
            "(--data clips:DIR: a folder per clip of numbered frames), got ", d.describe());
    std::vector<std::pair<std::size_t, std::size_t>> r;
    std::vector<char> seen(d.num_classes, 0);  // clips already begun: a second start is a split clip
    for (std::size_t i = 0; i < d.size(); ++i) {
        if (i == 0 || d.labels[i] != d.labels[i - 1]) {
            const auto c = d.labels[i];
            require(c >= 0 && static_cast<std::size_t>(c) < d.num_classes, who, ": frame ", i, " has clip ", c,
                    ", not one of the ", d.num_classes, " clips");
            require(!seen[static_cast<std::size_t>(c)], who, ": the frames of clip ", c, " are not contiguous (frame ",
                    i, ")");
            seen[static_cast<std::size_t>(c)] = 1;
            r.push_back({i, i + 1});
        } else {
            r.back().second = i + 1;
        }
    }
    return r;
}

namespace detail {

/// The frame number of `p` (its stem, all digits), or -1.
inline long long frame_number(const std::filesystem::path& p) {
    const std::string s = p.stem().string();
    if (s.empty() || s.size() > 15) return -1;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    return std::stoll(s);
}

/// The frames of one clip folder in order, checked (names, gaps, count).
inline std::vector<std::filesystem::path> clip_frames(const std::filesystem::path& dir, std::size_t min_frames) {
    std::map<long long, std::filesystem::path> by_number;
    for (const auto& f : list_images(dir, false)) {
        const long long n = frame_number(f);
        if (n < 0)
            file_fail("clip", dir, "'", f.filename().string(), "' is not a numbered frame (frames are named by their ",
                      "number, e.g. 0000.png, 0001.png, ...)");
        const auto [it, fresh] = by_number.emplace(n, f);
        if (!fresh)
            file_fail("clip", dir, "'", f.filename().string(), "' and '", it->second.filename().string(),
                      "' are both frame ", n);
    }
    std::vector<std::filesystem::path> out;
    long long expect = by_number.empty() ? 0 : by_number.begin()->first;
    for (const auto& [n, f] : by_number) {
        if (n != expect)
            file_fail("clip", dir, "frame ", expect, " is missing (frames ", by_number.begin()->first, "..",
                      by_number.rbegin()->first, " must be consecutive; the next is '", f.filename().string(), "')");
        out.push_back(f);
        ++expect;
    }
    if (out.size() < min_frames)
        file_fail("clip", dir, out.size(), " frame", out.size() == 1 ? "" : "s", ", fewer than the ", min_frames,
                  " a clip needs (a folder per clip of numbered frames: 0000.png, 0001.png, ...)");
    return out;
}

}  // namespace detail

/// Reads DIR as clips (see the file comment).
inline image_dataset load_clip_folder(const std::filesystem::path& dir, const clip_folder_options& opt = {}) {
    namespace fs = std::filesystem;
    detail::check_folder_options(opt.image, "load_clip_folder");
    require(opt.min_frames >= 1, "load_clip_folder: min_frames must be >= 1");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) detail::file_fail("clip folder", dir, "no such directory");
    // the clips: sub-folders (sorted), or dir itself when it holds frames
    std::vector<fs::path> clips;
    try {
        for (const auto& e : fs::directory_iterator(dir))
            if (!detail::is_hidden(e.path()) && e.is_directory()) clips.push_back(e.path());
    } catch (const fs::filesystem_error& e) {
        detail::file_fail("clip folder", dir, "cannot list the directory: ", e.code().message());
    }
    std::sort(clips.begin(), clips.end());
    const bool flat = !detail::list_images(dir, false).empty();
    if (flat && !clips.empty())
        detail::file_fail("clip folder", dir, "holds both frames and clip folders ('", clips[0].filename().string(),
                          "'): put every clip in its own folder");
    if (flat) clips = {dir};
    if (clips.empty())
        detail::file_fail("clip folder", dir, "holds no clips (a folder per clip of numbered frames: "
                          "DIR/clip/0000.png, 0001.png, ...) ", detail::looked_for());
    std::vector<std::vector<fs::path>> frames;
    std::size_t total = 0;
    for (const auto& c : clips) {
        frames.push_back(detail::clip_frames(c, opt.min_frames));
        total += frames.back().size();
    }
    const std::size_t C = opt.image.channels;
    std::size_t H = opt.image.height, W = opt.image.width;
    if (H == 0) {
        detail::decoded_image img;
        detail::decode_image(frames[0][0], C, img, detail::limit_of(opt.image));
        if (!img) detail::file_fail("image file", frames[0][0], img.error);
        H = img.height, W = img.width;
    }
    const std::size_t per = C * H * W;
    if (opt.image.max_bytes && static_cast<std::uint64_t>(total) * per > opt.image.max_bytes)
        detail::file_fail("clip folder", dir, total, " frames of ", C, "x", H, "x", W, " take ",
                          static_cast<std::uint64_t>(total) * per, " bytes decoded, more than the maximum of ",
                          opt.image.max_bytes, " bytes (", opt.image.max_bytes_name, ")");
    image_dataset ds;
    ds.images = tensor<std::uint8_t>({total, C, H, W});
    std::size_t i = 0;
    for (std::size_t c = 0; c < clips.size(); ++c) {
        std::size_t h0 = 0, w0 = 0;
        for (const auto& f : frames[c]) {
            detail::decoded_image img;
            detail::decode_image(f, C, img, detail::limit_of(opt.image));
            if (!img) detail::file_fail("image file", f, img.error);
            if (h0 == 0) h0 = img.height, w0 = img.width;
            if (img.height != h0 || img.width != w0)
                detail::file_fail("image file", f, "the frame is ", img.width, "x", img.height, " (width x height), ",
                                  "the clip's first frame '", frames[c][0].filename().string(), "' is ", w0, "x", h0,
                                  " (a clip's frames have one size)");
            if (auto e = detail::place_image(img, opt.image.height ? H : 0, opt.image.height ? W : 0, opt.image.resize,
                                             ds.images.data() + i * per);
                !e.empty())
                detail::file_fail("image file", f, e);
            if (!opt.image.height && (img.height != H || img.width != W))
                detail::file_fail("image file", f, "the frame is ", img.width, "x", img.height, " (width x height), the ",
                                  "first clip's frames ", W, "x", H, "; clips of different sizes need a size to bring "
                                  "them to (--image-size)");
            ds.labels.push_back(static_cast<std::int64_t>(c));
            ++i;
        }
        ds.class_names.push_back(clips[c] == dir ? dir.filename().string() : clips[c].filename().string());
    }
    ds.num_classes = clips.size();
    ds.name = clip_set_name;
    ds.source = dir.string();
    return ds;
}

/// Writes frames (each (C, H, W) bytes, C = 1 or 3; or (H, W) for one
/// channel: a mask as 0 / 255) as DIR/0000.png, 0001.png, ... creating DIR.
/// `scale` multiplies every byte (255 writes a 0 / 1 mask visibly).
inline void write_clip(const std::filesystem::path& dir, const std::vector<tensor<std::uint8_t>>& frames,
                       std::uint8_t scale = 1) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) detail::file_fail("clip", dir, "cannot create the directory: ", ec.message());
    for (std::size_t t = 0; t < frames.size(); ++t) {
        const auto& f = frames[t];
        require<shape_error>(f.rank() == 2 || f.rank() == 3, "write_clip: frame ", t, " must be (C, H, W) or (H, W), got ",
                             f.shape().str());
        const std::size_t C = f.rank() == 3 ? f.dim(0) : 1, H = f.dim(f.rank() - 2), W = f.dim(f.rank() - 1);
        std::vector<std::uint8_t> px(f.data(), f.data() + f.numel());
        if (scale != 1)
            for (auto& v : px) v = static_cast<std::uint8_t>(std::min(255, v * scale));
        const auto png = detail::encode_png(px.data(), C, H, W);
        char name[32];
        std::snprintf(name, sizeof name, "%04zu.png", t);
        io::write_text_atomic(dir / name, std::string(png.begin(), png.end()), "frame");
    }
}

}  // namespace ssl::data
