// Writes the seed corpora of the fuzz harnesses: a few tiny valid files of
// each format and a few malformed ones (scripts/fuzz.sh runs it into
// build-fuzz/corpus/<harness>/). Every file starts with the byte the harness
// reads first (format or mode choice) where the harness has one.
//   make_seeds OUT_DIR
#include <ssl/data/tar.hpp>
#include <ssl/io/config_json.hpp>
#include <ssl/io/safetensors.hpp>
#include <ssl/moco.hpp>
#include <ssl/simclr.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

static fs::path out;

static void put(const std::string& harness, const std::string& name, const bytes& b) {
    fs::create_directories(out / harness);
    std::ofstream(out / harness / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                                  static_cast<std::streamsize>(b.size()));
}

static bytes cat(bytes a, const bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

static bytes gzip(const bytes& in, bool text_flag) {
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    gz_header h{};
    h.text = text_flag;  // FTEXT: fuzz_idx_gzip reads labels when it is set
    h.os = 3;
    deflateSetHeader(&z, &h);
    bytes o(deflateBound(&z, in.size()) + 64);
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = o.data();
    z.avail_out = static_cast<uInt>(o.size());
    deflate(&z, Z_FINISH);
    o.resize(z.total_out);
    deflateEnd(&z);
    return o;
}

static void write_image(void* ctx, void* data, int size) {
    auto* b = static_cast<bytes*>(ctx);
    b->insert(b->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    out = argv[1];

    // IDX: 3 images of 2x4, their 3 labels.
    const bytes images = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0,  1,  2,  3,  4,  5,  6,  7,
                          8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    const bytes labels = {0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 9};
    put("idx", "images", cat({0}, images));
    put("idx", "labels", cat({1}, labels));
    put("idx", "truncated", cat({0}, bytes(images.begin(), images.end() - 5)));
    put("idx", "labels_as_images", cat({0}, labels));
    put("idx", "huge_count", cat({1}, {0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1}));
    put("idx_gzip", "images.gz", gzip(images, false));
    put("idx_gzip", "labels.gz", gzip(labels, true));
    bytes bad = gzip(images, false);
    bad[bad.size() - 6] ^= 0x55;  // CRC
    put("idx_gzip", "bad_crc.gz", bad);
    bytes cut = gzip(labels, true);
    cut.resize(cut.size() - 9);
    put("idx_gzip", "truncated.gz", cut);

    // CIFAR-10: one record (label 3), and two malformed files.
    bytes rec(3073);
    rec[0] = 3;
    for (std::size_t i = 1; i < rec.size(); ++i) rec[i] = static_cast<std::uint8_t>(i * 7);
    put("cifar", "cifar10", cat({0}, rec));
    rec[0] = 10;
    put("cifar", "bad_label", cat({0}, rec));
    put("cifar", "short", cat({1}, bytes(rec.begin(), rec.begin() + 100)));

    // Images: PNG grey and RGBA, JPEG, BMP; a truncated PNG; a PNG header with no data.
    std::vector<std::uint8_t> px(6 * 4 * 4);
    for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 11);
    bytes png_grey{0}, png_rgba{3}, jpg{1}, bmp{7};
    stbi_write_png_to_func(write_image, &png_grey, 6, 4, 1, px.data(), 6);
    stbi_write_png_to_func(write_image, &png_rgba, 3, 2, 4, px.data(), 12);
    stbi_write_jpg_to_func(write_image, &jpg, 8, 8, 3, px.data(), 90);
    stbi_write_bmp_to_func(write_image, &bmp, 3, 2, 3, px.data());
    put("image", "grey.png", png_grey);
    put("image", "rgba.png", png_rgba);
    put("image", "rgb.jpg", jpg);
    put("image", "rgb.bmp", bmp);
    put("image", "truncated.png", bytes(png_rgba.begin(), png_rgba.begin() + png_rgba.size() / 2));
    put("image", "header_only.png", bytes(png_grey.begin(), png_grey.begin() + 34));

    // safetensors: two tensors and metadata; a header length past the end.
    ssl::io::safetensors_file st;
    st.tensors["w"] = {ssl::io::dtype::F32, {2, 2}, std::vector<std::byte>(16, std::byte{0x3f})};
    st.tensors["n"] = {ssl::io::dtype::I64, {}, std::vector<std::byte>(8, std::byte{1})};
    st.metadata["format"] = "ssl";
    const auto sb = ssl::io::serialize_safetensors(st);
    bytes s(reinterpret_cast<const std::uint8_t*>(sb.data()), reinterpret_cast<const std::uint8_t*>(sb.data()) + sb.size());
    put("safetensors", "two_tensors", s);
    bytes s2 = s;
    s2[0] = 0xff;
    put("safetensors", "header_too_long", s2);
    put("safetensors", "truncated", bytes(s.begin(), s.end() - 3));

    // Run documents ("ssl.config" metadata) for SimCLR and MoCo; one with a wrong type.
    using B = ssl::any_backbone<float>;
    const B::options_type bo{.arch = "resnet18", .in_channels = 1, .width = 4};
    auto doc = [](const std::string& method, const nlohmann::json& config) {
        return nlohmann::json{{"version", 1}, {"method", method}, {"config", config},
                              {"train", {{"lr", 0.3}, {"batch", 256}, {"epochs", 5}, {"seed", 0}}}}
            .dump();
    };
    auto as_bytes = [](const std::string& t) { return bytes(t.begin(), t.end()); };
    const auto simclr = ssl::io::config_to_json(ssl::simclr_config<B>(bo, 28, 1));
    const auto moco = ssl::io::config_to_json(ssl::moco_v2_config<B>(bo, 28, 1));
    put("config_json", "simclr.json", as_bytes(doc("simclr", simclr)));
    put("config_json", "moco.json", as_bytes(doc("moco", moco)));
    auto wrong = simclr;
    wrong["head"]["out"] = "128";
    put("config_json", "wrong_type.json", as_bytes(doc("simclr", wrong)));

    // tar: a shard of two samples (image + label), one cut short, one with a
    // damaged checksum, one without its end blocks.
    std::ostringstream tar_out;
    ssl::data::tar_writer tw(tar_out, "seed.tar");
    const bytes png_like = {0x89, 'P', 'N', 'G', 1, 2, 3};
    const bytes cls = {'3', '\n'};
    tw.add("000000000.png", png_like);
    tw.add("000000000.cls", cls);
    tw.add("000000001.png", bytes(600, 7));
    tw.add("000000001.cls", cls);
    tw.finish();
    const std::string t = tar_out.str();
    const bytes tb(t.begin(), t.end());
    put("tar", "two_samples.tar", tb);
    put("tar", "truncated.tar", bytes(tb.begin(), tb.begin() + 1700));
    put("tar", "no_end_blocks.tar", bytes(tb.begin(), tb.end() - 1024));
    bytes bad_sum = tb;
    bad_sum[5] ^= 1;
    put("tar", "bad_checksum.tar", bad_sum);
    return 0;
}
