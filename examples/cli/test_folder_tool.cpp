// A test helper of the `ssl` program's tests: writes the image folders and
// the CIFAR-10 files the cli/own_data/* tests read into DIR.
//
//   ssl_test_folders DIR
//
//   DIR/sq96/{h,v,d}/       labelled, 3 classes x 10 RGB images of 96 x 96
//                           (horizontal, vertical, diagonal stripes, each
//                           image its own period, phase and colours)
//   DIR/sq96_eval/{h,v,d}/  the same kind, 3 x 4 other images
//   DIR/unlabelled96/       12 RGB images of 96 x 96, no class folders
//   DIR/grey40/{h,v}/       labelled, 2 x 6 grey images of 40 x 40
//   DIR/mixed/              12 RGB images from 20 x 24 to 53 x 46, unlabelled
//   DIR/one_image_class/    labelled: 'a' holds 6 images of 32 x 32, 'b' one
//   DIR/cifar/              CIFAR-10 binary files: data_batch_1.bin 400
//                           records (1229200 bytes, over 1 MiB), the other
//                           batches 2, test_batch.bin 20
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// Image `id` of class `cls` (0: horizontal stripes, 1: vertical, 2:
/// diagonal), w x h with c channels, HWC bytes.
std::vector<unsigned char> stripes(int cls, int id, int w, int h, int c) {
    std::vector<unsigned char> px(static_cast<std::size_t>(w * h * c));
    const int period = 6 + id % 5, phase = id * 3;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int t = cls == 0 ? y : cls == 1 ? x : x + y;
            const bool on = ((t + phase) / period) % 2 == 0;
            for (int k = 0; k < c; ++k) {
                const int base = on ? 200 - 15 * k : 40 + 10 * k;
                px[static_cast<std::size_t>((y * w + x) * c + k)] =
                    static_cast<unsigned char>((base + id * 7 + (x * 13 + y * 7) % 11) % 256);
            }
        }
    return px;
}

bool png(const fs::path& p, int cls, int id, int w, int h, int c) {
    fs::create_directories(p.parent_path());
    const auto px = stripes(cls, id, w, h, c);
    if (!stbi_write_png(p.c_str(), w, h, c, px.data(), w * c)) {
        std::fprintf(stderr, "cannot write %s\n", p.c_str());
        return false;
    }
    return true;
}

bool cifar(const fs::path& p, int records, int first) {
    std::vector<unsigned char> b;
    for (int r = 0; r < records; ++r) {
        const int cls = (first + r) % 3;
        b.push_back(static_cast<unsigned char>(cls));
        const auto px = stripes(cls, first + r, 32, 32, 3);  // HWC -> CHW
        for (int k = 0; k < 3; ++k)
            for (int i = 0; i < 32 * 32; ++i) b.push_back(px[static_cast<std::size_t>(i * 3 + k)]);
    }
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return out.good();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: ssl_test_folders DIR\n");
        return 2;
    }
    const fs::path dir = argv[1];
    std::error_code ec;
    fs::remove_all(dir, ec);
    const char* cls[] = {"h", "v", "d"};
    bool ok = true;
    for (int k = 0; k < 3; ++k) {
        for (int i = 0; i < 10; ++i)
            ok = ok && png(dir / "sq96" / cls[k] / (std::to_string(i) + ".png"), k, i, 96, 96, 3);
        for (int i = 0; i < 4; ++i)
            ok = ok && png(dir / "sq96_eval" / cls[k] / (std::to_string(i) + ".png"), k, 50 + i, 96, 96, 3);
    }
    for (int i = 0; i < 12; ++i) ok = ok && png(dir / "unlabelled96" / (std::to_string(i) + ".png"), i % 3, i, 96, 96, 3);
    for (int k = 0; k < 2; ++k)
        for (int i = 0; i < 6; ++i)
            ok = ok && png(dir / "grey40" / cls[k] / (std::to_string(i) + ".png"), k, i, 40, 40, 1);
    for (int i = 0; i < 12; ++i)
        ok = ok && png(dir / "mixed" / (std::to_string(i) + ".png"), i % 3, i, 20 + 3 * i, 24 + 2 * i, 3);
    for (int i = 0; i < 6; ++i) ok = ok && png(dir / "one_image_class" / "a" / (std::to_string(i) + ".png"), 0, i, 32, 32, 3);
    ok = ok && png(dir / "one_image_class" / "b" / "0.png", 1, 0, 32, 32, 3);
    fs::create_directories(dir / "cifar");
    ok = ok && cifar(dir / "cifar" / "data_batch_1.bin", 400, 0);
    for (int b = 2; b <= 5; ++b) ok = ok && cifar(dir / "cifar" / ("data_batch_" + std::to_string(b) + ".bin"), 2, 1000 * b);
    ok = ok && cifar(dir / "cifar" / "test_batch.bin", 20, 9000);
    if (!ok) return 1;
    std::printf("wrote the test folders and CIFAR files to %s\n", dir.c_str());
    return 0;
}
