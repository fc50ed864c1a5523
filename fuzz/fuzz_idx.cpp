// libFuzzer harness: the IDX reader (plain files). The first input byte picks
// images (even) or labels (odd); the rest is the file.
#include <ssl/data/idx.hpp>

#include "memfile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    fuzz::memfile f(data + 1, size - 1);
    try {
        if (data[0] & 1) {
            const auto labels = ssl::data::read_idx_labels(f.path());
            for (auto l : labels)
                if (l < 0 || l > 255) std::abort();  // a byte label cannot be anything else
        } else {
            const auto t = ssl::data::read_idx_images(f.path());
            if (t.shape().size() != 4 || t.shape()[1] != 1) std::abort();
        }
    } catch (const ssl::io_error&) {
    }
    return 0;
}
