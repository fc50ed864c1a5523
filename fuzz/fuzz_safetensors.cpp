// libFuzzer harness: the safetensors reader, from memory. Whatever it accepts
// must survive a write and a second read unchanged.
#include <ssl/io/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ssl::io::safetensors_file f;
    try {
        f = ssl::io::read_safetensors(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
    } catch (const ssl::io_error&) {
        return 0;
    }
    for (const auto& [name, t] : f.tensors)
        if (t.data.size() != t.numel() * ssl::io::itemsize(t.dtype)) std::abort();
    std::vector<std::byte> again;
    try {
        again = ssl::io::serialize_safetensors(f);
    } catch (const ssl::io_error&) {
        return 0;  // names or metadata that are not valid UTF-8: refused on writing, with a message
    }
    const auto g = ssl::io::read_safetensors(again);
    if (g.metadata != f.metadata || g.tensors.size() != f.tensors.size()) std::abort();
    for (const auto& [name, t] : f.tensors) {
        const auto& u = g.tensors.at(name);
        if (u.dtype != t.dtype || u.shape != t.shape || u.data != t.data) std::abort();
    }
    return 0;
}
