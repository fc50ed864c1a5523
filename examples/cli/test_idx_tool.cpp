// A test helper of the `ssl` program's tests: writes the IDX files the cli/idx_*
// tests read into DIR.
//
//   ssl_test_idx DIR
//
//   DIR/mismatch/      a Fashion-MNIST layout whose test split has 20 x 20
//                      images, its train split 28 x 28
//   DIR/junk.gz        64 images of 28 x 28, gzip, then 4 bytes "junk"
//   DIR/big.gz         4096 images of 28 x 28 (3211264 bytes), gzip
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using bytes = std::vector<unsigned char>;

void put_u32(bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

bytes images(std::uint32_t n, std::uint32_t side) {
    bytes b{0, 0, 0x08, 0x03};
    put_u32(b, n);
    put_u32(b, side);
    put_u32(b, side);
    for (std::uint32_t i = 0; i < n; ++i)
        for (std::uint32_t y = 0; y < side; ++y)
            for (std::uint32_t x = 0; x < side; ++x)
                b.push_back(static_cast<unsigned char>((x * y + 37 * (i % 10) + (x > side / 2 ? 90 : 0)) % 256));
    return b;
}

bytes labels(std::uint32_t n) {
    bytes b{0, 0, 0x08, 0x01};
    put_u32(b, n);
    for (std::uint32_t i = 0; i < n; ++i) b.push_back(static_cast<unsigned char>(i % 10));
    return b;
}

bool write_gz(const std::filesystem::path& p, const bytes& b, const std::string& after = "") {
    gzFile f = gzopen(p.c_str(), "wb");
    if (!f || gzwrite(f, b.data(), static_cast<unsigned>(b.size())) != static_cast<int>(b.size()) ||
        gzclose(f) != Z_OK)
        return false;
    if (after.empty()) return true;
    std::ofstream out(p, std::ios::binary | std::ios::app);
    out << after;
    return out.good();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir / "mismatch");
    const bool ok = write_gz(dir / "mismatch/train-images-idx3-ubyte.gz", images(64, 28)) &&
                    write_gz(dir / "mismatch/train-labels-idx1-ubyte.gz", labels(64)) &&
                    write_gz(dir / "mismatch/t10k-images-idx3-ubyte.gz", images(32, 20)) &&
                    write_gz(dir / "mismatch/t10k-labels-idx1-ubyte.gz", labels(32)) &&
                    write_gz(dir / "junk.gz", images(64, 28), "junk") && write_gz(dir / "big.gz", images(4096, 28));
    if (!ok) {
        std::fprintf(stderr, "%s: cannot write the files into '%s'\n", argv[0], dir.c_str());
        return 1;
    }
    return 0;
}
