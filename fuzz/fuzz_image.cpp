// libFuzzer harness: the image decoders behind read_image / load_image_folder
// (stb_image on PNG, JPEG, BMP, ...), from memory. The first input byte picks
// the channels (1 or 3) and whether to resize to 8x8 or keep the size.
#include <ssl/data/image_folder.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t channels = (data[0] & 1) ? 3 : 1;
    const std::size_t side = (data[0] & 2) ? 8 : 0;
    const auto mode = (data[0] & 4) ? ssl::data::resize_mode::stretch : ssl::data::resize_mode::center_crop;
    try {
        const auto t = ssl::data::read_image_bytes({data + 1, size - 1}, channels, side, side, mode);
        if (t.shape()[0] != channels || (side && (t.shape()[1] != side || t.shape()[2] != side))) std::abort();
    } catch (const ssl::io_error&) {
    }
    return 0;
}
