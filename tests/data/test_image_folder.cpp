#include <doctest/doctest.h>

#include <zlib.h>

#include <ssl/core/thread_pool.hpp>
#include <ssl/data/image_folder.hpp>

// The test writes its images with stb_image_write, compiled privately here.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace test_image_folder {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "ssl_test_folder_XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

/// An HWC image whose pixel (y, x, c) is a function of (seed, y, x, c).
std::vector<unsigned char> pattern(int w, int h, int c, int seed) {
    std::vector<unsigned char> px(static_cast<std::size_t>(w * h * c));
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k)
                px[static_cast<std::size_t>((y * w + x) * c + k)] = static_cast<unsigned char>((seed * 40 + y * 13 + x * 5 + k * 70) % 256);
    return px;
}

void write_png(const fs::path& p, int w, int h, int c, int seed) {
    fs::create_directories(p.parent_path());
    const auto px = pattern(w, h, c, seed);
    REQUIRE(stbi_write_png(p.c_str(), w, h, c, px.data(), w * c) != 0);
}

void write_bytes(const fs::path& p, const std::string& s) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << s;
}

/// A PNG of w x h 8-bit grey pixels with IDAT data `idat` (a zlib stream of
/// rows, each led by its filter byte), every chunk with its correct CRC.
std::vector<std::uint8_t> png_of(std::uint32_t w, std::uint32_t h, const std::vector<std::uint8_t>& idat) {
    std::vector<std::uint8_t> f = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    auto u32 = [](std::vector<std::uint8_t>& b, std::uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
    };
    auto chunk = [&](const char* type, const std::vector<std::uint8_t>& data) {
        u32(f, static_cast<std::uint32_t>(data.size()));
        const std::size_t start = f.size();
        f.insert(f.end(), type, type + 4);
        f.insert(f.end(), data.begin(), data.end());
        u32(f, static_cast<std::uint32_t>(crc32(0L, f.data() + start, static_cast<uInt>(data.size() + 4))));
    };
    std::vector<std::uint8_t> ihdr;
    u32(ihdr, w);
    u32(ihdr, h);
    ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});  // 8 bits, grey, deflate, no filter method, no interlace
    chunk("IHDR", ihdr);
    chunk("IDAT", idat);
    chunk("IEND", {});
    return f;
}

/// `raw` as a zlib stream of stored (uncompressed) blocks: its bytes appear
/// as they are, after 2 + 5 bytes of headers.
std::vector<std::uint8_t> zlib_stored(const std::vector<std::uint8_t>& raw) {
    uLongf n = compressBound(static_cast<uLong>(raw.size()));
    std::vector<std::uint8_t> z(n);
    REQUIRE(compress2(z.data(), &n, raw.data(), static_cast<uLong>(raw.size()), 0) == Z_OK);
    z.resize(n);
    return z;
}

template <class E = ssl::io_error, class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("threw the wrong exception type: ", e.what());
        return {};
    }
    FAIL("threw nothing");
    return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("image folder: class sub-directories, sorted, exact pixels in CHW") {
    temp_dir d;
    write_png(d / "dog/b.png", 6, 4, 3, 1);
    write_png(d / "dog/a.png", 6, 4, 3, 2);
    write_png(d / "cat/z.PNG", 6, 4, 3, 3);
    write_png(d / "cat/deeper/y.png", 6, 4, 3, 4);
    write_bytes(d / "cat/notes.txt", "not an image");
    write_png(d / ".hidden/x.png", 6, 4, 3, 5);
    write_png(d / "dog/.thumb.png", 6, 4, 3, 6);

    auto ds = ssl::data::load_image_folder(d.path);
    CHECK(ds.images.shape() == ssl::shape_t{4, 3, 4, 6});
    CHECK(ds.class_names == std::vector<std::string>{"cat", "dog"});
    CHECK(ds.num_classes == 2);
    // cat/deeper/y.png < cat/z.PNG < dog/a.png < dog/b.png
    CHECK(ds.labels == std::vector<std::int64_t>{0, 0, 1, 1});
    const int seeds[] = {4, 3, 2, 1};
    for (std::size_t i = 0; i < 4; ++i) {
        const auto px = pattern(6, 4, 3, seeds[i]);
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t y = 0; y < 4; ++y)
                for (std::size_t x = 0; x < 6; ++x) REQUIRE(ds.images.at(i, c, y, x) == px[(y * 6 + x) * 3 + c]);
    }
    CHECK_NOTHROW(ds.validate());
    CHECK(ds.source == d.path.string());
}

TEST_CASE("image folder: flat directory is unlabelled; .labelled = false gathers everything") {
    temp_dir d;
    write_png(d / "1.png", 5, 5, 3, 1);
    write_png(d / "2.bmp", 5, 5, 3, 2);
    {
        const auto px = pattern(5, 5, 3, 3);
        REQUIRE(stbi_write_bmp((d / "3.bmp").c_str(), 5, 5, 3, px.data()) != 0);
    }
    auto ds = ssl::data::load_image_folder(d.path);
    CHECK(ds.size() == 3);
    CHECK_FALSE(ds.labelled());
    CHECK(ds.num_classes == 0);
    CHECK(ds.class_names.empty());
    CHECK_NOTHROW(ds.validate());
    // BMP decodes exactly too.
    const auto px = pattern(5, 5, 3, 3);
    CHECK(ds.images.at(2, 1, 4, 2) == px[(4 * 5 + 2) * 3 + 1]);

    temp_dir c;
    write_png(c / "a/1.png", 5, 5, 3, 1);
    write_png(c / "b/2.png", 5, 5, 3, 2);
    auto all = ssl::data::load_image_folder(c.path, {.labelled = false});
    CHECK(all.size() == 2);
    CHECK_FALSE(all.labelled());
}

TEST_CASE("image folder: channels 1 and 3 convert, JPEG decodes") {
    temp_dir d;
    write_png(d / "grey.png", 4, 4, 1, 7);
    auto rgb = ssl::data::load_image_folder(d.path, {.channels = 3});
    CHECK(rgb.channels() == 3);
    const auto g = pattern(4, 4, 1, 7);
    for (std::size_t c = 0; c < 3; ++c) CHECK(rgb.images.at(0, c, 1, 2) == g[1 * 4 + 2]);

    temp_dir e;
    std::vector<unsigned char> px(8 * 8 * 3);
    for (std::size_t i = 0; i < px.size(); i += 3) {
        px[i] = 200;
        px[i + 1] = 100;
        px[i + 2] = 50;
    }
    REQUIRE(stbi_write_png((e / "c.png").c_str(), 8, 8, 3, px.data(), 24) != 0);
    REQUIRE(stbi_write_jpg((e / "d.jpg").c_str(), 8, 8, 3, px.data(), 95) != 0);
    auto grey = ssl::data::load_image_folder(e.path, {.channels = 1});
    CHECK(grey.channels() == 1);
    // stb's luma: (77 r + 150 g + 29 b) >> 8.
    CHECK(grey.images.at(0, 0, 3, 3) == (77 * 200 + 150 * 100 + 29 * 50) >> 8);
    CHECK(std::abs(int(grey.images.at(1, 0, 3, 3)) - ((77 * 200 + 150 * 100 + 29 * 50) >> 8)) <= 4);
    auto colour = ssl::data::load_image_folder(e.path);
    CHECK(std::abs(int(colour.images.at(1, 0, 4, 4)) - 200) <= 4);
    CHECK(std::abs(int(colour.images.at(1, 2, 4, 4)) - 50) <= 4);
}

TEST_CASE("image folder: resizing by centre crop or stretch") {
    temp_dir d;
    write_png(d / "wide.png", 12, 4, 3, 1);  // 12 wide, 4 high
    write_png(d / "tall.png", 4, 8, 3, 2);
    write_png(d / "big.png", 20, 20, 3, 3);

    // 4x4 from the 12x4 image is an exact centre crop: columns 4..7, no resampling.
    auto crop = ssl::data::load_image_folder(d.path, {.height = 4, .width = 4});
    CHECK(crop.images.shape() == ssl::shape_t{3, 3, 4, 4});
    // files sorted: big, tall, wide
    const auto wide = pattern(12, 4, 3, 1);
    for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t y = 0; y < 4; ++y)
            for (std::size_t x = 0; x < 4; ++x) REQUIRE(crop.images.at(2, c, y, x) == wide[(y * 12 + x + 4) * 3 + c]);
    // The tall one: rows 2..5.
    const auto tall = pattern(4, 8, 3, 2);
    CHECK(crop.images.at(1, 0, 0, 0) == tall[(2 * 4 + 0) * 3 + 0]);

    auto stretch = ssl::data::load_image_folder(d.path, {.height = 6, .width = 3, .resize = ssl::data::resize_mode::stretch});
    CHECK(stretch.images.shape() == ssl::shape_t{3, 3, 6, 3});

    // A constant image stays constant whatever the resampling.
    temp_dir k;
    std::vector<unsigned char> px(30 * 18 * 3, 0);
    for (std::size_t i = 0; i < px.size(); i += 3) {
        px[i] = 10;
        px[i + 1] = 128;
        px[i + 2] = 250;
    }
    REQUIRE(stbi_write_png((k / "flat.png").c_str(), 30, 18, 3, px.data(), 90) != 0);
    for (auto mode : {ssl::data::resize_mode::center_crop, ssl::data::resize_mode::stretch})
        for (std::size_t s : {std::size_t{7}, std::size_t{32}}) {
            auto r = ssl::data::load_image_folder(k.path, {.height = s, .width = s, .resize = mode});
            for (std::size_t y = 0; y < s; ++y)
                for (std::size_t x = 0; x < s; ++x) {
                    REQUIRE(std::abs(int(r.images.at(0, 0, y, x)) - 10) <= 1);
                    REQUIRE(std::abs(int(r.images.at(0, 1, y, x)) - 128) <= 1);
                    REQUIRE(std::abs(int(r.images.at(0, 2, y, x)) - 250) <= 1);
                }
        }

    auto one = ssl::data::read_image(d / "wide.png", 1, 2, 2);
    CHECK(one.shape() == ssl::shape_t{1, 2, 2});
    auto native = ssl::data::read_image(d / "tall.png");
    CHECK(native.shape() == ssl::shape_t{3, 8, 4});
}

TEST_CASE("image folder: parallel loading gives the same result on 1 and 4 threads") {
    temp_dir d;
    for (int i = 0; i < 24; ++i) {
        std::string cls = "c";  // (not "c" + to_string(..): GCC 12 warns -Wrestrict in its own <string>)
        cls += std::to_string(i % 3);
        write_png(d / cls / (std::to_string(i) + ".png"), 9 + i % 4, 7, 3, i);
    }
    const std::size_t before = ssl::num_threads();
    ssl::set_num_threads(1);
    auto a = ssl::data::load_image_folder(d.path, {.height = 5, .width = 5});
    ssl::set_num_threads(4);
    auto b = ssl::data::load_image_folder(d.path, {.height = 5, .width = 5});
    ssl::set_num_threads(before);
    REQUIRE(a.images.shape() == b.images.shape());
    for (std::size_t i = 0; i < a.images.numel(); ++i) REQUIRE(a.images[i] == b.images[i]);
    CHECK(a.labels == b.labels);
    CHECK(a.class_counts() == std::vector<std::size_t>{8, 8, 8});
}

TEST_CASE("image folder: bad input") {
    temp_dir d;
    auto msg = error_of([&] { ssl::data::load_image_folder(d / "absent"); });
    CHECK(contains(msg, (d / "absent").string()));
    CHECK(contains(msg, "no such directory"));

    write_bytes(d / "file.png", "x");
    CHECK(contains(error_of([&] { ssl::data::load_image_folder(d / "file.png"); }), "not a directory"));
    fs::remove(d / "file.png");

    // Empty folder (an unrelated file does not count).
    write_bytes(d / "readme.txt", "hello");
    msg = error_of([&] { ssl::data::load_image_folder(d.path); });
    CHECK(contains(msg, "no images found in " + d.path.string() + " (looked for .png .jpg .jpeg .bmp)"));

    // Corrupt and truncated PNGs: the file and stb's reason.
    temp_dir c;
    write_png(c / "good.png", 8, 8, 3, 1);
    write_bytes(c / "junk.png", "this is not a png file at all");
    msg = error_of([&] { ssl::data::load_image_folder(c.path); });
    CHECK(contains(msg, (c / "junk.png").string()));
    CHECK(contains(msg, "stb_image cannot decode it: "));
    fs::remove(c / "junk.png");
    {
        std::ifstream in(c / "good.png", std::ios::binary);
        std::string s((std::istreambuf_iterator<char>(in)), {});
        write_bytes(c / "cut.png", s.substr(0, s.size() / 2));
    }
    msg = error_of([&] { ssl::data::load_image_folder(c.path); });
    CHECK(contains(msg, (c / "cut.png").string()));
    CHECK(contains(msg, "truncated PNG"));
    write_bytes(c / "empty.jpg", "");
    msg = error_of([&] { ssl::data::load_image_folder(c.path, {.height = 8, .width = 8}); });
    CHECK(contains(msg, (c / "cut.png").string()));
    CHECK(contains(msg, "(and 1 more unreadable images"));
    fs::remove(c / "cut.png");
    fs::remove(c / "empty.jpg");

    // Different sizes without a requested size.
    write_png(c / "other.png", 8, 6, 3, 2);
    msg = error_of([&] { ssl::data::load_image_folder(c.path); });
    CHECK(contains(msg, (c / "other.png").string()));
    CHECK(contains(msg, "8x6"));
    CHECK(contains(msg, "8x8"));
    CHECK(ssl::data::load_image_folder(c.path, {.height = 8, .width = 8}).size() == 2);

    // Mixed layouts.
    write_png(c / "cls/1.png", 8, 8, 3, 3);
    msg = error_of([&] { ssl::data::load_image_folder(c.path); });
    CHECK(contains(msg, c.path.string()));
    CHECK(contains(msg, "mixed layouts"));
    CHECK(contains(error_of([&] { ssl::data::load_image_folder(c.path, {.height = 8, .width = 8, .labelled = true}); }),
                   "mixed layouts"));
    CHECK(ssl::data::load_image_folder(c.path, {.height = 8, .width = 8, .labelled = false}).size() == 3);

    // An empty class folder.
    temp_dir e;
    write_png(e / "a/1.png", 4, 4, 3, 1);
    fs::create_directories(e / "b");
    msg = error_of([&] { ssl::data::load_image_folder(e.path); });
    CHECK(contains(msg, "class folder 'b' holds no images"));

    // Labelled requested on a flat folder.
    temp_dir f;
    write_png(f / "1.png", 4, 4, 3, 1);
    CHECK(contains(error_of([&] { ssl::data::load_image_folder(f.path, {.labelled = true}); }),
                   "no class sub-directories"));

    // Options.
    msg = error_of<ssl::value_error>([&] { ssl::data::load_image_folder(f.path, {.channels = 2}); });
    CHECK(contains(msg, "got 2"));
    msg = error_of<ssl::value_error>([&] { ssl::data::load_image_folder(f.path, {.height = 4}); });
    CHECK(contains(msg, "height 4 and width 0"));
    msg = error_of([&] { ssl::data::read_image(f / "2.png"); });
    CHECK(contains(msg, (f / "2.png").string()));
}

TEST_CASE("image folder: decoding from memory; inputs found by fuzz/fuzz_image") {
    // read_image_bytes decodes what read_image decodes.
    temp_dir d;
    write_png(d / "a.png", 6, 4, 3, 5);
    std::ifstream in(d / "a.png", std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), {});
    const std::vector<std::uint8_t> bytes(file.begin(), file.end());
    const auto from_file = ssl::data::read_image(d / "a.png", 3, 3, 3);
    const auto from_memory = ssl::data::read_image_bytes(bytes, 3, 3, 3);
    REQUIRE(from_memory.shape() == from_file.shape());
    CHECK(std::equal(from_file.data(), from_file.data() + from_file.size(), from_memory.data()));
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes({}, 3); }), "'<memory>': the file is empty"));

    // A JPEG whose Huffman table declares 272 codes (16 x 17): stb_image 2.27
    // wrote past its 257-entry table (UBSan: index 257 out of bounds).
    std::vector<std::uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
    jpeg.insert(jpeg.end(), 16, 0x11);
    auto msg = error_of([&] { ssl::data::read_image_bytes(jpeg, 3, 0, 0, ssl::data::resize_mode::center_crop, "h.jpg"); });
    CHECK(contains(msg, "image file 'h.jpg'"));
    CHECK(contains(msg, "Huffman table (DHT) declares more than 256 codes"));
    // The same cut short inside the code counts (stb reads the missing bytes as 0).
    jpeg = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x01, 0xFF, 0xFF};
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(jpeg, 1); }), "more than 256 codes"));
    // A second table in the same segment, after a valid one.
    jpeg = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x26, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7, 0x10};
    jpeg.insert(jpeg.end(), 16, 0x20);
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(jpeg, 3); }), "more than 256 codes"));

    // A BMP header announcing 16777215 x 2 pixels, with no pixels after it:
    // stb "decoded" a 100 MB black image (and resizing it took minutes).
    auto bmp_header = [](std::uint32_t w, std::uint32_t h) {
        std::vector<std::uint8_t> b = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0};
        for (std::uint32_t v : {w, h}) for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
        b.insert(b.end(), {1, 0, 24, 0});  // planes, bits per pixel
        b.resize(54, 0);
        return b;
    };
    auto bmp = bmp_header(16777215, 2);
    msg = error_of([&] { ssl::data::read_image_bytes(bmp, 3, 8, 8); });
    CHECK(contains(msg, "truncated BMP: 16777215x2 pixels at 24 bits need 100663350 bytes, the file has 54"));
    // A complete BMP reads; one byte short of its last row does not.
    bmp = bmp_header(3, 2);
    bmp.resize(54 + 2 * 12, 7);
    CHECK(ssl::data::read_image_bytes(bmp, 3).shape() == ssl::shape_t{3, 2, 3});
    bmp.pop_back();
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(bmp, 3); }), "truncated BMP"));
    // 0 x 2 pixels: stb returned the image, resizing it divided by 0 (UBSan: NaN converted to int).
    bmp = bmp_header(0, 2);
    bmp.resize(64, 1);
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(bmp, 3, 8, 8); }), "0x2 pixels (no pixels at all)"));
    // 18 bytes that stb's TGA decoder took for a 4151 x 14096 image (11 s to
    // "decode"): ssl's copy of stb decodes only PNG, JPEG and BMP.
    const std::vector<std::uint8_t> tga = {0x00, 0x00, 0x0a, 0x01, 0x06, 0x01, 0xff, 0xd8, 0x00,
                                           0xff, 0xc0, 0x10, 0x37, 0x10, 0x10, 0x37, 0x10, 0x11};
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(tga, 3); }), "stb_image cannot decode it"));
    // Over 2^26 pixels: refused before stb allocates anything.
    bmp = bmp_header(10000, 10000);
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(bmp, 3); }),
                   "10000x10000 pixels (100000000), more than the 67108864 of image_folder_options::max_pixels"));
}

TEST_CASE("image folder: max_pixels refuses an image from its header, and names the option") {
    temp_dir d;
    for (int i = 0; i < 3; ++i) write_png(d / "f" / (std::to_string(i) + ".png"), 64, 32, 3, i);
    write_png(d / "g" / "small.png", 16, 16, 1, 0);
    write_png(d / "g" / "wide.png", 80, 40, 1, 1);  // 3200 pixels
    ssl::data::image_folder_options o{.channels = 3, .max_pixels = 64 * 32};
    CHECK(ssl::data::load_image_folder(d / "f", o).size() == 3);  // exactly at the limit: read
    o.max_pixels = 64 * 32 - 1;
    o.max_pixels_name = "--max-image-pixels 2047";
    // at their own size the first image is decoded first (it sets the size)
    auto msg = error_of([&] { ssl::data::load_image_folder(d / "f", o); });
    CHECK(contains(msg, "image file '" + (d / "f" / "0.png").string() +
                            "': 64x32 pixels (2048), more than the 2047 of --max-image-pixels 2047"));
    // resizing does not lift it: the file's own pixels count, not the output's
    o.height = o.width = 8;
    msg = error_of([&] { ssl::data::load_image_folder(d / "f", o); });
    CHECK(contains(msg, "0.png': 64x32 pixels (2048), more than the 2047 of --max-image-pixels 2047"));
    CHECK(contains(msg, "(and 2 more unreadable images in"));
    // only the image over the limit is named
    o = {.height = 8, .width = 8, .channels = 1, .max_pixels = 3000};
    msg = error_of([&] { ssl::data::load_image_folder(d / "g", o); });
    CHECK(contains(msg, "wide.png': 80x40 pixels (3200), more than the 3000 of image_folder_options::max_pixels"));
    CHECK_FALSE(contains(msg, "more unreadable"));
    // one file, from disk and from memory
    CHECK(contains(error_of([&] { ssl::data::read_image(d / "g" / "wide.png", o); }), "80x40 pixels (3200)"));
    std::ifstream in(d / "g" / "wide.png", std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), {});
    const std::vector<std::uint8_t> bytes(file.begin(), file.end());
    CHECK(contains(error_of([&] { ssl::data::read_image_bytes(bytes, o, "w.png"); }), "'w.png': 80x40 pixels"));
    o.max_pixels = 3200;
    CHECK(ssl::data::read_image_bytes(bytes, o).shape() == ssl::shape_t{1, 8, 8});
    o.max_pixels = 0;
    CHECK(contains(error_of<ssl::value_error>([&] { ssl::data::read_image_bytes(bytes, o); }),
                   "read_image_bytes: image_folder_options::max_pixels must be at least 1 pixel, got 0"));
}

TEST_CASE("image folder: a PNG with damaged IDAT data, and PNG bombs") {
    // 4 x 4 grey pixels, stored uncompressed: stb checks neither chunk CRCs
    // nor the zlib stream's Adler-32, so a changed byte decoded to another pixel
    std::vector<std::uint8_t> raw;
    for (std::uint8_t y = 0; y < 4; ++y) {
        raw.push_back(0);  // filter: none
        for (std::uint8_t x = 0; x < 4; ++x) raw.push_back(static_cast<std::uint8_t>(16 * y + x));
    }
    auto png = png_of(4, 4, zlib_stored(raw));
    const auto good = ssl::data::read_image_bytes(png, 1, 0, 0, ssl::data::resize_mode::center_crop, "good.png");
    REQUIRE(good.shape() == ssl::shape_t{1, 4, 4});
    CHECK(good[5] == 17);
    const std::size_t first_pixel = 8 + 25 + 8 + 2 + 5 + 1;  // signature, IHDR, IDAT's length and type, zlib and block headers, filter
    REQUIRE(png[first_pixel] == 0);
    png[first_pixel] = 200;
    auto msg = error_of([&] { ssl::data::read_image_bytes(png, 1, 0, 0, ssl::data::resize_mode::center_crop, "bad.png"); });
    CHECK(contains(msg, "image file 'bad.png'"));
    CHECK(contains(msg, "corrupt PNG: chunk IDAT"));
    CHECK(contains(msg, "fails its CRC check"));
    temp_dir d;
    write_bytes(d / "bad.png", std::string(png.begin(), png.end()));
    msg = error_of([&] { ssl::data::load_image_folder(d.path); });
    CHECK(contains(msg, (d / "bad.png").string()));
    CHECK(contains(msg, "fails its CRC check"));

    // A valid 25 KB PNG of 25000 x 25000 pixels (a decompression bomb: stb
    // would allocate 625 MB per channel) is refused from its header.
    std::vector<std::uint8_t> rows(25001, 0);
    msg = error_of([&] { ssl::data::read_image_bytes(png_of(25000, 25000, zlib_stored(rows)), 3); });
    CHECK(contains(msg, "25000x25000 pixels (625000000), more than the 67108864"));

    // A PNG of 1 x 1 pixels whose IDAT inflates to 8 MB: stb inflated all of
    // it (512 MB for a 520 KB file); refused once past the 2 bytes it needs
    std::vector<std::uint8_t> zeros(8 << 20, 0);
    uLongf zn = compressBound(static_cast<uLong>(zeros.size()));
    std::vector<std::uint8_t> z(zn);
    REQUIRE(compress2(z.data(), &zn, zeros.data(), static_cast<uLong>(zeros.size()), 9) == Z_OK);
    z.resize(zn);
    msg = error_of([&] { ssl::data::read_image_bytes(png_of(1, 1, z), 1, 0, 0, ssl::data::resize_mode::center_crop, "b.png"); });
    CHECK(contains(msg, "image file 'b.png': its IDAT data inflates to more than the 1026 bytes that 1x1 pixels take"));
    // IDAT data that is not zlib at all (with its right CRC)
    msg = error_of([&] { ssl::data::read_image_bytes(png_of(4, 4, {1, 2, 3, 4, 5, 6}), 1); });
    CHECK(contains(msg, "corrupt PNG: its IDAT data is not a valid zlib stream"));
}

TEST_CASE("image folder: scan_image_folder reads sizes and colour from the headers") {
    temp_dir d;
    write_png(d / "sq/a/1.png", 40, 40, 3, 1);
    write_png(d / "sq/a/2.png", 40, 40, 1, 2);
    write_png(d / "sq/b/3.png", 40, 40, 3, 3);
    auto info = ssl::data::scan_image_folder(d / "sq");
    CHECK(info.images == 3);
    CHECK(info.classes == 2);
    CHECK(info.readable == 3);
    CHECK(info.square());
    CHECK(info.height == 40);
    CHECK_FALSE(info.grey);
    write_png(d / "grey/1.png", 12, 20, 1, 1);
    write_png(d / "grey/2.png", 30, 10, 2, 2);  // grey + alpha
    write_bytes(d / "grey/3.png", "not a png");  // not counted: loading names it
    info = ssl::data::scan_image_folder(d / "grey");
    CHECK(info.images == 3);
    CHECK(info.classes == 0);
    CHECK(info.readable == 2);
    CHECK(info.grey);
    CHECK_FALSE(info.square());
    CHECK(info.height == 0);
    CHECK(info.min_width == 12);
    CHECK(info.max_width == 30);
    CHECK(info.min_height == 10);
    CHECK(info.max_height == 20);
    write_png(d / "rect/1.png", 12, 20, 3, 1);
    info = ssl::data::scan_image_folder(d / "rect");
    CHECK(info.height == 20);
    CHECK(info.width == 12);
    CHECK_FALSE(info.square());
    // the layout rules are load_image_folder's
    CHECK(contains(error_of([&] { ssl::data::scan_image_folder(d / "none"); }), "no such directory"));
}

TEST_CASE("image folder: max_bytes refuses a set too large decoded, before decoding it") {
    temp_dir d;
    for (int i = 0; i < 4; ++i) write_png(d / "f" / (std::to_string(i) + ".png"), 16, 16, 3, i);
    ssl::data::image_folder_options o{.height = 8, .width = 8, .channels = 3, .max_bytes = 4 * 3 * 8 * 8};
    CHECK(ssl::data::load_image_folder(d / "f", o).size() == 4);
    o.height = o.width = 9;
    o.max_bytes_name = "--max-data-mb 1";
    const auto msg = error_of([&] { ssl::data::load_image_folder(d / "f", o); });
    CHECK(contains(msg, "image folder '" + (d / "f").string() + "': 4 images of 3x9x9 (channels x height x width) take "
                        "972 bytes decoded, more than the maximum of 768 bytes (--max-data-mb 1)"));
    o.height = o.width = 0;  // their own size: 4 x 3 x 16 x 16
    CHECK(contains(error_of([&] { ssl::data::load_image_folder(d / "f", o); }), "4 images of 3x16x16"));
}

}  // namespace test_image_folder
