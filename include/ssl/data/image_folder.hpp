#pragma once
// Image sets from a directory of PNG, JPEG and BMP files (decoded with
// stb_image, Debian libstb-dev; see detail/stb.hpp for how ssl's private copy
// of stb coexists with a program's own).
//
// Layout (decided from the directory, or forced with .labelled):
//   dir/cat/1.png, dir/dog/x/2.jpg, ...   labelled: every sub-directory is a
//                                         class, classes in sorted name order
//                                         (like torchvision's ImageFolder),
//                                         images found recursively inside it
//   dir/1.png, dir/2.jpg, ...             unlabelled
// Image files directly in dir next to sub-directories is an error (mixed
// layouts) unless .labelled = false, which gathers every image below dir and
// ignores the folders. Entries whose name starts with '.' are skipped, as are
// files with other extensions (.png .jpg .jpeg .bmp, any case, are read).
// Images are in sorted path order within each class.
//
// Size: with .height and .width set, every image is brought to that size by
// resize_mode::center_crop (default: the largest centred region with the
// target's aspect ratio is resampled to height x width, i.e. "resize the
// shorter side, then centre-crop" for a square target, as torchvision's
// Resize + CenterCrop) or resize_mode::stretch (the whole image resampled to
// height x width, aspect ratio not kept). Resampling is stb_image_resize's
// default filter (Mitchell when shrinking, Catmull-Rom when enlarging) on the
// byte values. With height = width = 0 images are kept as they are and must
// all have the size of the first.
//
// Channels: 1 (grey; colour is converted with stb's luma weights) or 3 (RGB;
// grey is replicated). An alpha channel is dropped, not composited.
//
// read_image decodes one file; read_image_bytes one file's bytes in memory.
// Refused before stb decodes them (stb 2.27 would misbehave): images of no
// pixels or over .max_pixels (default 2^26), BMPs shorter than their header says, JPEG
// Huffman tables of more than 256 codes, PNGs whose chunks fail their CRC
// (stb checks none: damaged IDAT data decoded to other pixels), that end
// before IEND, or whose IDAT data is not a valid zlib stream or inflates to
// more than their size needs (stb inflated any amount: a 520 KB PNG of
// 1 x 1 pixels cost 512 MB).
// Memory: .max_bytes refuses a set that would take more bytes decoded
// (N * C * H * W), before anything is allocated or decoded.
// scan_image_folder reads only the images' headers: their sizes and whether
// all are grey, for a program that chooses a size and channel count from
// the data.
// Files are decoded in parallel on ssl's thread pool (ssl::parallel_for).
// Errors: ssl::io_error naming the directory or file (missing directory, no
// images, mixed layout, empty class folder, a file stb cannot decode with
// stb's reason, an image of the wrong size); ssl::value_error for options.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <zlib.h>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "dataset.hpp"
#include "detail/stb.hpp"

namespace ssl::data {

/// How load_image_folder brings an image to the requested size.
enum class resize_mode {
    center_crop,  ///< keep the aspect ratio: resample the centred crop of the target's aspect ratio
    stretch,      ///< resample the whole image to height x width
};

/// The default of image_folder_options::max_pixels: 2^26, e.g. 8192 x 8192.
inline constexpr std::uint64_t default_max_image_pixels = std::uint64_t(1) << 26;

struct image_folder_options {
    std::size_t height = 0;    ///< output height; 0 (with width 0): keep the images' own size
    std::size_t width = 0;     ///< output width; 0 (with height 0): keep the images' own size
    std::size_t channels = 3;  ///< 1 (grey) or 3 (RGB)
    std::optional<bool> labelled = std::nullopt;  ///< nullopt: labelled exactly when dir has sub-directories
    resize_mode resize = resize_mode::center_crop;
    /// The most bytes the decoded set may take (N * C * H * W); 0: no limit.
    /// More is refused before anything is allocated or decoded.
    std::uint64_t max_bytes = 0;
    /// How messages name max_bytes (the `ssl` program: "--max-data-mb").
    std::string max_bytes_name = "image_folder_options::max_bytes";
    /// The most pixels (width x height) one image may declare; a file over it
    /// is refused from its header, before stb allocates or decodes anything
    /// (a 600 KB PNG can declare 25000 x 25000). Lower it to what your images
    /// are: each decode costs up to 4 bytes per pixel per decoding thread.
    std::uint64_t max_pixels = default_max_image_pixels;
    /// How messages name max_pixels (the `ssl` program: "--max-image-pixels").
    std::string max_pixels_name = "image_folder_options::max_pixels";
};

/// What scan_image_folder learns from the images' headers.
struct image_folder_info {
    std::size_t images = 0;   ///< image files found (by the layout rules of load_image_folder)
    std::size_t classes = 0;  ///< class folders (0: unlabelled)
    std::size_t readable = 0;  ///< images whose header could be read (the others fail load_image_folder)
    /// The images' common size, or 0 when they differ (or none is readable).
    std::size_t height = 0, width = 0;
    /// The smallest and largest width and height seen (0 when none is readable).
    std::size_t min_height = 0, min_width = 0, max_height = 0, max_width = 0;
    /// Whether every readable image is grey (1 channel, or grey + alpha, in its file).
    bool grey = false;
    /// All images have one size, and it is square.
    bool square() const noexcept { return height != 0 && height == width; }
};

/// The file extensions load_image_folder reads (compared case-insensitively).
inline constexpr const char* image_extensions[] = {".png", ".jpg", ".jpeg", ".bmp"};

namespace detail {

inline bool is_image_file(const std::filesystem::path& p) {
    std::string ext = p.extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* e : image_extensions)
        if (ext == e) return true;
    return false;
}

inline bool is_hidden(const std::filesystem::path& p) {
    const std::string n = p.filename().string();
    return !n.empty() && n[0] == '.';
}

inline std::string looked_for() {
    std::string s = "(looked for";
    for (const char* e : image_extensions) s += std::string(" ") + e;
    return s + ")";
}

/// Image files below `dir` (recursively when `recursive`), sorted by path.
/// Hidden entries are skipped; directory symlinks below dir are not followed.
inline std::vector<std::filesystem::path> list_images(const std::filesystem::path& dir, bool recursive) {
    namespace fs = std::filesystem;
    std::vector<fs::path> out;
    try {
        if (recursive) {
            for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
                if (is_hidden(it->path())) {
                    if (it->is_directory()) it.disable_recursion_pending();
                    continue;
                }
                if (it->is_regular_file() && is_image_file(it->path())) out.push_back(it->path());
            }
        } else {
            for (const auto& e : fs::directory_iterator(dir))
                if (!is_hidden(e.path()) && e.is_regular_file() && is_image_file(e.path())) out.push_back(e.path());
        }
    } catch (const fs::filesystem_error& e) {
        file_fail("image folder", dir, "cannot list the directory: ", e.code().message(),
                  e.path1().empty() ? std::string() : " ('" + e.path1().string() + "')");
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// Reads a whole file; returns an error text instead of throwing.
inline std::string read_bytes(const std::filesystem::path& p, std::vector<unsigned char>& buf) {
    std::ifstream in(p, std::ios::binary | std::ios::ate);
    if (!in) return ssl::detail::cat("cannot open for reading: ", std::strerror(errno));
    const auto end = in.tellg();
    if (end < 0) return "cannot get the size";
    if (static_cast<std::uint64_t>(end) > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
        return ssl::detail::cat("the file is ", static_cast<std::uint64_t>(end),
                                " bytes, larger than stb_image can decode (2 GiB)");
    buf.resize(static_cast<std::size_t>(end));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    if (static_cast<std::size_t>(in.gcount()) != buf.size()) return "read error";
    return {};
}

/// A decoded image (HWC bytes owned by stb), or the reason it is not one.
struct decoded_image {
    unsigned char* px = nullptr;
    std::size_t height = 0, width = 0, channels = 0;
    std::string error;  ///< empty on success

    decoded_image() = default;
    decoded_image(const decoded_image&) = delete;
    decoded_image& operator=(const decoded_image&) = delete;
    ~decoded_image() {
        if (px) stbi_image_free(px);
    }
    explicit operator bool() const noexcept { return px != nullptr; }
};

/// stb_image 2.27 (Debian 12's libstb-dev) writes past a Huffman table when a
/// JPEG's DHT segment declares more than 256 codes (later stb versions refuse it).
/// Every DHT stb reads starts at an FF C4 byte pair, so every such pair of a
/// JPEG is checked, the way stb reads it (missing bytes read as 0): a pair
/// inside other data can only refuse a corrupt-looking file, never let one
/// through. Returns the reason to refuse, or nullptr.
inline const char* jpeg_huffman_overflow(const unsigned char* d, std::size_t n) {
    if (n == 0 || d[0] != 0xFF) return nullptr;  // not a JPEG (they start FF D8)
    auto at = [&](std::size_t i) -> unsigned { return i < n ? d[i] : 0u; };
    for (std::size_t p = 0; p + 1 < n; ++p) {
        if (d[p] != 0xFF || d[p + 1] != 0xC4) continue;
        std::size_t q = p + 4;
        for (long left = static_cast<long>((at(p + 2) << 8) | at(p + 3)) - 2; left > 0 && q < n;) {
            if ((at(q) >> 4) > 1 || (at(q) & 15) > 3) break;  // stb refuses the table itself
            unsigned codes = 0;
            for (std::size_t i = 1; i <= 16; ++i) codes += at(q + i);
            if (codes > 256) return "corrupt JPEG: a Huffman table (DHT) declares more than 256 codes";
            q += 17 + codes;
            left -= static_cast<long>(17 + codes);
        }
    }
    return nullptr;
}

/// stb_image reads missing bytes as 0, and its BMP decoder does not notice a
/// file that ends early: a 155-byte header "decoded" as a 16777215 x 2 black
/// image. A BMP must hold every row its header announces (rows padded to 4
/// bytes, from the pixel-data offset). Returns the reason to refuse, or "".
inline std::string bmp_truncated(const unsigned char* d, std::size_t n, std::uint64_t w, std::uint64_t h) {
    if (n < 30 || d[0] != 'B' || d[1] != 'M') return {};
    auto le = [&](std::size_t i, int bytes) {
        std::uint64_t v = 0;
        for (int b = bytes - 1; b >= 0; --b) v = (v << 8) | d[i + static_cast<std::size_t>(b)];
        return v;
    };
    const std::uint64_t header = le(14, 4), offset = le(10, 4);
    const std::uint64_t bpp = le(header == 12 ? 24 : 28, 2);
    const std::uint64_t row = (w * bpp + 31) / 32 * 4;
    const std::uint64_t need = std::max<std::uint64_t>(offset, 14 + header) + row * h;
    if (need <= n) return {};
    return ssl::detail::cat("truncated BMP: ", w, "x", h, " pixels at ", bpp, " bits need ", need,
                            " bytes, the file has ", n);
}

/// Whether the zlib stream in the IDAT chunks `idat` (offset, length) of
/// `d` inflates to at most `bound` bytes, inflating into a small buffer and
/// stopping past the bound. Returns the reason to refuse, or "".
inline std::string png_idat_overflow(const unsigned char* d, const std::vector<std::pair<std::size_t, std::size_t>>& idat,
                                     std::uint64_t bound, std::uint64_t w, std::uint64_t h) {
    z_stream z{};
    if (inflateInit(&z) != Z_OK) throw std::bad_alloc();
    unsigned char out[1 << 15];
    std::uint64_t total = 0;
    std::string why;
    int r = Z_OK;
    for (std::size_t k = 0; k < idat.size() && r != Z_STREAM_END && why.empty(); ++k) {
        z.next_in = const_cast<unsigned char*>(d + idat[k].first);
        z.avail_in = static_cast<uInt>(idat[k].second);
        while (z.avail_in > 0 && r != Z_STREAM_END) {
            z.next_out = out;
            z.avail_out = sizeof out;
            r = inflate(&z, Z_NO_FLUSH);
            total += sizeof out - z.avail_out;
            if (r == Z_MEM_ERROR) {
                inflateEnd(&z);
                throw std::bad_alloc();
            }
            if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
                why = ssl::detail::cat("corrupt PNG: its IDAT data is not a valid zlib stream (",
                                       z.msg ? z.msg : "invalid data", ")");
                break;
            }
            if (total > bound) {
                why = ssl::detail::cat("its IDAT data inflates to more than the ", bound, " bytes that ", w, "x", h,
                                       " pixels take (a decompression bomb?)");
                break;
            }
        }
    }
    inflateEnd(&z);
    return why;
}

/// stb_image checks neither the CRC of a PNG's chunks nor the Adler-32 of
/// its zlib stream, and inflates IDAT data of any length: a PNG whose IDAT
/// data was damaged decoded to other pixels without a word, and a 520 KB
/// PNG of 1 x 1 pixels whose IDAT inflates to 512 MB cost 512 MB. Every
/// chunk of a PNG (signature 89 50 4E 47 0D 0A 1A 0A) must fit in the file
/// and pass its CRC (zlib's crc32), up to IEND, and its IDAT data must be a
/// valid zlib stream of no more bytes than its IHDR's size needs. Returns
/// the reason to refuse, or "" (also for a file that is not a PNG).
inline std::string png_damaged(const unsigned char* d, std::size_t n, std::uint64_t max_pixels) {
    static constexpr unsigned char signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n < 8 || std::memcmp(d, signature, 8) != 0) return {};
    auto be32 = [&](std::size_t i) {
        return (std::uint32_t(d[i]) << 24) | (std::uint32_t(d[i + 1]) << 16) | (std::uint32_t(d[i + 2]) << 8) |
               std::uint32_t(d[i + 3]);
    };
    std::uint64_t w = 0, h = 0, bits_per_pixel = 0;
    bool interlaced = false;
    std::vector<std::pair<std::size_t, std::size_t>> idat;
    for (std::size_t p = 8;;) {
        if (n - p < 12) return ssl::detail::cat("truncated PNG: the file ends at byte ", n, " before its IEND chunk");
        std::string type;
        for (std::size_t i = p + 4; i < p + 8; ++i)
            type += std::isalpha(d[i]) ? static_cast<char>(d[i]) : '?';
        const std::uint64_t len = be32(p);
        if (len > n - p - 12)
            return ssl::detail::cat("truncated PNG: chunk ", type, " at byte ", p, " declares ", len,
                                    " bytes of data, the file has ", n - p - 12, " after its header");
        const uLong crc = crc32(crc32(0L, Z_NULL, 0), d + p + 4, static_cast<uInt>(len + 4));
        if (crc != be32(p + 8 + len))
            return ssl::detail::cat("corrupt PNG: chunk ", type, " (", len, " bytes at byte ", p,
                                    ") fails its CRC check: the data is damaged");
        if (type == "IHDR" && len >= 13) {
            w = be32(p + 8);
            h = be32(p + 12);
            static constexpr unsigned samples[7] = {1, 0, 3, 1, 2, 0, 4};  // per colour type 0..6
            bits_per_pixel = std::uint64_t(d[p + 16]) * (d[p + 17] < 7 ? samples[d[p + 17]] : 0);
            interlaced = d[p + 20] != 0;
        }
        if (type == "IDAT") idat.emplace_back(p + 8, static_cast<std::size_t>(len));
        if (type == "IEND") break;
        p += 12 + len;
    }
    if (w == 0 || h == 0 || bits_per_pixel == 0 || w * h > max_pixels) return {};  // refused later, or by stb
    // rows of ceil(w * bits / 8) bytes, each after its filter byte; Adam7's
    // seven passes add at most 15/8 h + 7 rows of a filter byte and a partial byte
    const std::uint64_t bound = h * (1 + (w * bits_per_pixel + 7) / 8) + (interlaced ? 4 * h + 14 : 0) + 1024;
    return png_idat_overflow(d, idat, bound, w, h);
}

/// The most pixels one image may declare, and how messages name that limit.
struct pixel_limit {
    std::uint64_t max = default_max_image_pixels;
    std::string_view name = "image_folder_options::max_pixels";
};

/// Decodes the `n` bytes of an image file at `data` to `channels` channels;
/// an image declaring more than `limit.max` pixels is refused from its header.
/// Never throws except bad_alloc.
inline void decode_image_bytes(const unsigned char* data, std::size_t n, std::size_t channels, decoded_image& img,
                               const pixel_limit& limit = {}) {
    if (n == 0) {
        img.error = "the file is empty";
        return;
    }
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        img.error = ssl::detail::cat("the file is ", n, " bytes, larger than stb_image can decode (2 GiB)");
        return;
    }
    if (const char* why = jpeg_huffman_overflow(data, n)) {
        img.error = why;
        return;
    }
    if (std::string why = png_damaged(data, n, limit.max); !why.empty()) {
        img.error = std::move(why);
        return;
    }
    int w = 0, h = 0, c_in_file = 0;
    if (stbi_info_from_memory(data, static_cast<int>(n), &w, &h, &c_in_file)) {
        if (w <= 0 || h <= 0) {  // stb's BMP decoder returns such an image, and resizing it divided by 0
            img.error = ssl::detail::cat("the header says ", w, "x", h, " pixels (no pixels at all)");
            return;
        }
        const auto px = static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h);
        if (px > limit.max) {
            img.error = ssl::detail::cat(w, "x", h, " pixels (", px, "), more than the ", limit.max, " of ", limit.name,
                                         " (a corrupt header? raise the limit for images this large)");
            return;
        }
        img.error = bmp_truncated(data, n, static_cast<std::uint64_t>(w), static_cast<std::uint64_t>(h));
        if (!img.error.empty()) return;
    }
    img.px = stbi_load_from_memory(data, static_cast<int>(n), &w, &h, &c_in_file, static_cast<int>(channels));
    if (!img.px) {
        const char* why = stbi_failure_reason();
        img.error = ssl::detail::cat("stb_image cannot decode it: ", why ? why : "unknown reason");
        return;
    }
    if (w <= 0 || h <= 0) {
        stbi_image_free(img.px);
        img.px = nullptr;
        img.error = ssl::detail::cat("stb_image decoded it as ", w, "x", h, " pixels (no pixels at all)");
        return;
    }
    img.width = static_cast<std::size_t>(w);
    img.height = static_cast<std::size_t>(h);
    img.channels = channels;
}

/// Reads and decodes `p` to `channels` channels. Never throws except bad_alloc.
inline void decode_image(const std::filesystem::path& p, std::size_t channels, decoded_image& img,
                         const pixel_limit& limit = {}) {
    std::vector<unsigned char> file;
    img.error = read_bytes(p, file);
    if (img.error.empty()) decode_image_bytes(file.data(), file.size(), channels, img, limit);
}

inline pixel_limit limit_of(const image_folder_options& o) { return {o.max_pixels, o.max_pixels_name}; }

/// Writes `img` as (C, H, W) bytes to `out`: at its own size when H = W = 0,
/// else brought to H x W by `mode`. Returns an error text (empty on success).
inline std::string place_image(const decoded_image& img, std::size_t H, std::size_t W, resize_mode mode,
                               std::uint8_t* out) {
    const std::size_t C = img.channels, W0 = img.width, H0 = img.height;
    if (H == 0) {
        H = H0;
        W = W0;
    }
    // Source region [x0, x0 + cw) x [y0, y0 + ch) of the decoded image.
    std::size_t x0 = 0, y0 = 0, cw = W0, ch = H0;
    if (mode == resize_mode::center_crop) {
        // The largest centred region with aspect W:H.
        if (W0 * H > H0 * W) {
            cw = std::min(W0, std::max<std::size_t>(1, (H0 * W + H / 2) / H));
            x0 = (W0 - cw) / 2;
        } else {
            ch = std::min(H0, std::max<std::size_t>(1, (W0 * H + W / 2) / W));
            y0 = (H0 - ch) / 2;
        }
    }
    const unsigned char* src = img.px + (y0 * W0 + x0) * C;
    std::size_t row = W0 * C;  // bytes between rows of src
    std::vector<unsigned char> resized;
    if (cw != W || ch != H) {
        resized.resize(H * W * C);
        if (!stbir_resize_uint8(src, static_cast<int>(cw), static_cast<int>(ch), static_cast<int>(row), resized.data(),
                                static_cast<int>(W), static_cast<int>(H), 0, static_cast<int>(C)))
            return ssl::detail::cat("stb_image_resize failed to resize it from ", W0, "x", H0, " to ", W, "x", H);
        src = resized.data();
        row = W * C;
    }
    // HWC -> CHW (an exact-size crop is copied, not resampled).
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < H; ++y) {
            const unsigned char* s = src + y * row + c;
            std::uint8_t* d = out + (c * H + y) * W;
            for (std::size_t x = 0; x < W; ++x) d[x] = s[x * C];
        }
    return {};
}

inline void check_folder_options(const image_folder_options& o, const char* who) {
    require(o.channels == 1 || o.channels == 3, who, ": channels must be 1 (grey) or 3 (RGB), got ",
            o.channels);
    require((o.height == 0) == (o.width == 0), who, ": set both height and width (to resize) or neither (",
            "to keep the images' own size), got height ", o.height, " and width ", o.width);
    require(o.height <= 65536 && o.width <= 65536, who, ": output size ", o.height, "x", o.width,
            " is too large (at most 65536 per side)");
    require(o.max_pixels > 0, who, ": ", o.max_pixels_name, " must be at least 1 pixel, got 0");
}

/// `img` (or its error, an io_error naming `name`) as a (C, H, W) tensor, brought to H x W unless 0.
inline tensor<std::uint8_t> image_tensor(const decoded_image& img, std::size_t height, std::size_t width,
                                         resize_mode mode, const std::filesystem::path& name) {
    if (!img) file_fail("image file", name, img.error);
    tensor<std::uint8_t> t({img.channels, height ? height : img.height, width ? width : img.width});
    if (auto e = place_image(img, height, width, mode, t.data()); !e.empty()) file_fail("image file", name, e);
    return t;
}

}  // namespace detail

/// Decodes one image file as a (channels, H, W) byte tensor, with the size
/// (height and width 0: its own), channels, resize mode and pixel limit of
/// `opt` (`labelled` and `max_bytes` do not apply). Throws io_error naming
/// the file and the reason (stb's, or the limit's).
inline tensor<std::uint8_t> read_image(const std::filesystem::path& path, const image_folder_options& opt) {
    detail::check_folder_options(opt, "read_image");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) detail::file_fail("image file", path, "no such file");
    detail::decoded_image img;
    detail::decode_image(path, opt.channels, img, detail::limit_of(opt));
    return detail::image_tensor(img, opt.height, opt.width, opt.resize, path);
}

/// read_image with the default pixel limit.
inline tensor<std::uint8_t> read_image(const std::filesystem::path& path, std::size_t channels = 3,
                                       std::size_t height = 0, std::size_t width = 0,
                                       resize_mode mode = resize_mode::center_crop) {
    return read_image(path, {.height = height, .width = width, .channels = channels, .resize = mode});
}

/// Decodes an image file held in memory (`bytes`: a whole PNG, JPEG or BMP
/// file) like read_image; `name` stands for the file in error messages.
inline tensor<std::uint8_t> read_image_bytes(std::span<const std::uint8_t> bytes, const image_folder_options& opt,
                                             const std::filesystem::path& name = "<memory>") {
    detail::check_folder_options(opt, "read_image_bytes");
    detail::decoded_image img;
    detail::decode_image_bytes(bytes.data(), bytes.size(), opt.channels, img, detail::limit_of(opt));
    return detail::image_tensor(img, opt.height, opt.width, opt.resize, name);
}

/// read_image_bytes with the default pixel limit.
inline tensor<std::uint8_t> read_image_bytes(std::span<const std::uint8_t> bytes, std::size_t channels = 3,
                                             std::size_t height = 0, std::size_t width = 0,
                                             resize_mode mode = resize_mode::center_crop,
                                             const std::filesystem::path& name = "<memory>") {
    return read_image_bytes(bytes, {.height = height, .width = width, .channels = channels, .resize = mode}, name);
}

namespace detail {

/// The image files of a folder, by load_image_folder's layout rules.
struct folder_listing {
    std::vector<std::filesystem::path> files;
    std::vector<std::int64_t> labels;  ///< empty when unlabelled
    std::vector<std::string> class_names;
};

inline folder_listing list_folder(const std::filesystem::path& dir, const image_folder_options& opt) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto st = fs::status(dir, ec);
    if (!fs::exists(st)) detail::file_fail("image folder", dir, "no such directory");
    if (!fs::is_directory(st)) detail::file_fail("image folder", dir, "not a directory");

    // What is directly in dir.
    std::vector<fs::path> subdirs;
    std::vector<fs::path> top_images;
    try {
        for (const auto& e : fs::directory_iterator(dir)) {
            if (detail::is_hidden(e.path())) continue;
            std::error_code ec2;
            if (e.is_directory(ec2)) subdirs.push_back(e.path());
            else if (e.is_regular_file(ec2) && detail::is_image_file(e.path())) top_images.push_back(e.path());
        }
    } catch (const fs::filesystem_error& e) {
        detail::file_fail("image folder", dir, "cannot list the directory: ", e.code().message());
    }
    std::sort(subdirs.begin(), subdirs.end());
    std::sort(top_images.begin(), top_images.end());

    const bool labelled = opt.labelled.value_or(!subdirs.empty());
    const bool gather_all = opt.labelled.has_value() && !*opt.labelled;  // .labelled = false
    if (!gather_all) {
        // Detected or forced class layout: images next to class folders are a mix.
        if (!top_images.empty() && !subdirs.empty())
            detail::file_fail("image folder", dir, "mixed layouts: it holds image files directly (e.g. '",
                              top_images.front().filename().string(), "') and sub-directories (e.g. '",
                              subdirs.front().filename().string(),
                              "/'); put every image in a class folder, or none, or pass .labelled = false to read "
                              "all images below it without labels");
    }
    if (labelled && subdirs.empty())
        detail::file_fail("image folder", dir, ".labelled = true but it has no class sub-directories ",
                          top_images.empty() ? "and no images" : "(its images are directly in it)");

    folder_listing l;
    if (labelled) {
        for (std::size_t k = 0; k < subdirs.size(); ++k) {
            auto in_class = detail::list_images(subdirs[k], true);
            if (in_class.empty())
                detail::file_fail("image folder", dir, "the class folder '", subdirs[k].filename().string(),
                                  "' holds no images ", detail::looked_for(),
                                  "; remove it or pass .labelled = false");
            l.class_names.push_back(subdirs[k].filename().string());
            l.files.insert(l.files.end(), in_class.begin(), in_class.end());
            l.labels.insert(l.labels.end(), in_class.size(), static_cast<std::int64_t>(k));
        }
    } else {
        l.files = subdirs.empty() ? top_images : detail::list_images(dir, true);
    }
    if (l.files.empty())
        detail::file_fail("image folder", dir, "no images found in ", dir.string(), " ", detail::looked_for());
    return l;
}

}  // namespace detail

/// The images' sizes and colour from their headers (no pixel is decoded), by
/// load_image_folder's layout rules (opt.labelled; the other options do not
/// matter): what a program needs to choose a size and channel count for a
/// user's folder. Files whose header cannot be read are not counted in
/// `readable` (load_image_folder names them). Throws io_error as
/// load_image_folder does for the layout (missing directory, no images, ...).
inline image_folder_info scan_image_folder(const std::filesystem::path& dir, const image_folder_options& opt = {}) {
    const auto l = detail::list_folder(dir, opt);
    const std::size_t n = l.files.size();
    struct header {
        int w = 0, h = 0, c = 0;
    };
    std::vector<header> hs(n);
    parallel_for(n, [&](std::size_t i, std::size_t) {
        try {
            std::vector<unsigned char> buf;
            if (!detail::read_bytes(l.files[i], buf).empty() || buf.empty() ||
                buf.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
                return;
            // stb parses a JPEG's markers up to its frame header, Huffman tables included
            if (detail::jpeg_huffman_overflow(buf.data(), buf.size())) return;
            int w = 0, h = 0, c = 0;
            if (stbi_info_from_memory(buf.data(), static_cast<int>(buf.size()), &w, &h, &c) && w > 0 && h > 0)
                hs[i] = {w, h, c};
        } catch (const std::exception&) {  // bad_alloc: the file is not counted
        }
    });
    image_folder_info info;
    info.images = n;
    info.classes = l.class_names.size();
    info.grey = true;
    bool one_size = true;
    for (const auto& x : hs) {
        if (x.w <= 0) continue;
        const auto w = static_cast<std::size_t>(x.w), h = static_cast<std::size_t>(x.h);
        if (info.readable == 0) {
            info.height = info.min_height = info.max_height = h;
            info.width = info.min_width = info.max_width = w;
        }
        ++info.readable;
        one_size = one_size && h == info.height && w == info.width;
        info.min_height = std::min(info.min_height, h);
        info.max_height = std::max(info.max_height, h);
        info.min_width = std::min(info.min_width, w);
        info.max_width = std::max(info.max_width, w);
        info.grey = info.grey && x.c <= 2;
    }
    if (!one_size || info.readable == 0) info.height = info.width = 0;
    if (info.readable == 0) info.grey = false;
    return info;
}

/// Loads every image below `dir` into memory (see the top of this file for
/// the layout and resizing rules).
inline image_dataset load_image_folder(const std::filesystem::path& dir, const image_folder_options& opt = {}) {
    namespace fs = std::filesystem;
    detail::check_folder_options(opt, "load_image_folder");
    auto listing = detail::list_folder(dir, opt);
    std::vector<fs::path>& files = listing.files;
    std::vector<std::int64_t>& labels = listing.labels;
    std::vector<std::string>& class_names = listing.class_names;

    // Output size: requested, or the first image's.
    std::size_t H = opt.height, W = opt.width;
    const bool native = H == 0;
    if (native) {
        detail::decoded_image img;
        detail::decode_image(files[0], opt.channels, img, detail::limit_of(opt));
        if (!img) detail::file_fail("image file", files[0], img.error);
        H = img.height;
        W = img.width;
    }
    const std::size_t n = files.size(), C = opt.channels, per = C * H * W;
    if (opt.max_bytes) {
        const std::uint64_t bytes = static_cast<std::uint64_t>(n) * per;
        if (bytes / n != per || bytes > opt.max_bytes)
            detail::file_fail("image folder", dir, n, " images of ", C, "x", H, "x", W,
                              " (channels x height x width) take ", bytes, " bytes decoded, more than the maximum of ",
                              opt.max_bytes, " bytes (", opt.max_bytes_name, "); bring them to a smaller size, use fewer images, or raise ",
                              "the maximum");
    }
    image_dataset ds;
    ds.images = tensor<std::uint8_t>({n, C, H, W});
    std::vector<std::string> errors(n);
    parallel_for(n, [&](std::size_t i, std::size_t) {
        try {
            detail::decoded_image img;
            detail::decode_image(files[i], C, img, detail::limit_of(opt));
            if (!img) {
                errors[i] = img.error;
            } else if (native && (img.height != H || img.width != W)) {
                errors[i] = ssl::detail::cat("the image is ", img.width, "x", img.height, " (width x height) but '",
                                             files[0].filename().string(), "', the first image, is ", W, "x", H,
                                             "; images of different sizes need .height and .width to resize them");
            } else {
                errors[i] = detail::place_image(img, opt.height, opt.width, opt.resize, ds.images.data() + i * per);
            }
        } catch (const std::exception& e) {
            errors[i] = e.what();
        }
    });
    std::size_t bad = 0, first = n;
    for (std::size_t i = 0; i < n; ++i)
        if (!errors[i].empty()) {
            ++bad;
            first = std::min(first, i);
        }
    if (bad)
        detail::file_fail("image file", files[first], errors[first],
                          bad > 1 ? ssl::detail::cat(" (and ", bad - 1, " more unreadable images in '", dir.string(), "')")
                                  : std::string());

    ds.labels = std::move(labels);
    ds.num_classes = class_names.size();
    ds.class_names = std::move(class_names);
    ds.name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
    ds.source = dir.string();
    return ds;
}

}  // namespace ssl::data
