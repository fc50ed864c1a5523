// libFuzzer harness: the CIFAR binary reader. The first input byte picks the
// record format (CIFAR-10, CIFAR-100 fine, CIFAR-100 coarse); the rest is the
// file.
#include <ssl/data/cifar.hpp>

#include "memfile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const ssl::data::cifar_format formats[] = {ssl::data::cifar10_format, ssl::data::cifar100_fine_format,
                                               ssl::data::cifar100_coarse_format};
    const auto& fmt = formats[data[0] % 3];
    fuzz::memfile f(data + 1, size - 1);
    try {
        const auto ds = ssl::data::read_cifar_files({f.path()}, fmt);
        if (ds.labels.size() != ds.images.shape()[0] || ds.images.shape()[0] * fmt.record_bytes() != size - 1)
            std::abort();
        for (auto l : ds.labels)
            if (l < 0 || static_cast<std::size_t>(l) >= fmt.num_classes) std::abort();
    } catch (const ssl::io_error&) {
    }
    return 0;
}
