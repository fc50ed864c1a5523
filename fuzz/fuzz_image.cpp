// libFuzzer harness: the image decoders behind read_image / load_image_folder
// (stb_image on PNG, JPEG, BMP, ...), from memory. The first input byte picks
// the channels (1 or 3), whether to resize to 8x8 or keep the size, and
// (bit 3) whether a PNG's chunk CRCs are recomputed first: the reader
// refuses a chunk whose CRC fails, and mutated inputs rarely keep theirs, so
// without it stb's PNG decoder behind the check would hardly be reached.
// Bits 4-5 pick the pixel limit (max_pixels): 2^20 (1024 x 1024), 2^16,
// 2^12 or 64. The default 2^26 is the same check with another constant; at
// 2^20 one input decodes in well under libFuzzer's timeout (a 722-byte JPEG
// declaring 38408 x 520 pixels, inside 2^26, took 3 s in this build), so a
// run reaches its million executions in hours, not days.
#include <ssl/data/image_folder.hpp>

#include <cstring>
#include <vector>

#include <zlib.h>

namespace {
/// `png` with every whole chunk's CRC set to the right value (not a PNG: unchanged).
void fix_png_crcs(std::vector<std::uint8_t>& png) {
    static constexpr std::uint8_t signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (png.size() < 8 || std::memcmp(png.data(), signature, 8) != 0) return;
    for (std::size_t p = 8; png.size() - p >= 12;) {
        const std::uint64_t len = (std::uint64_t(png[p]) << 24) | (std::uint64_t(png[p + 1]) << 16) |
                                  (std::uint64_t(png[p + 2]) << 8) | png[p + 3];
        if (len > png.size() - p - 12) return;
        const uLong crc = crc32(0L, png.data() + p + 4, static_cast<uInt>(len + 4));
        for (int b = 0; b < 4; ++b) png[p + 8 + len + b] = static_cast<std::uint8_t>(crc >> (24 - 8 * b));
        p += 12 + len;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t channels = (data[0] & 1) ? 3 : 1;
    const std::size_t side = (data[0] & 2) ? 8 : 0;
    const auto mode = (data[0] & 4) ? ssl::data::resize_mode::stretch : ssl::data::resize_mode::center_crop;
    std::vector<std::uint8_t> file(data + 1, data + size);
    if (data[0] & 8) fix_png_crcs(file);
    try {
        static constexpr std::uint64_t limits[4] = {std::uint64_t(1) << 20, 1 << 16, 1 << 12, 64};
        const auto t = ssl::data::read_image_bytes(
            file, {.height = side, .width = side, .channels = channels, .resize = mode,
                   .max_pixels = limits[(data[0] >> 4) & 3]});
        if (t.shape()[0] != channels || (side && (t.shape()[1] != side || t.shape()[2] != side))) std::abort();
    } catch (const ssl::io_error&) {
    }
    return 0;
}
