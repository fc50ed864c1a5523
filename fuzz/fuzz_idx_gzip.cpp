// libFuzzer harness: the IDX reader's gzip path (byte_reader over zlib). The
// input is always read as a gzip file: it gets the 1f 8b magic in front when
// it lacks it. The first byte after the magic picks images (even) or labels
// (odd) and stays part of the gzip header.
#include <ssl/data/idx.hpp>

#include <vector>

#include "memfile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> file;
    if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) file = {0x1f, 0x8b};
    file.insert(file.end(), data, data + size);
    const bool labels = file.size() > 2 && (file[2] & 1);
    fuzz::memfile f(file.data(), file.size());
    try {
        if (labels)
            (void)ssl::data::read_idx_labels(f.path());
        else
            (void)ssl::data::read_idx_images(f.path());
    } catch (const ssl::io_error&) {
    }
    return 0;
}
