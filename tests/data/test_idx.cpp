#include <doctest/doctest.h>

#include <ssl/data/dataset.hpp>
#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/idx.hpp>

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <sys/resource.h>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <string>
#include <vector>

namespace test_idx {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed with everything in it.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "ssl_test_idx_XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

using bytes = std::vector<unsigned char>;

void put_u32(bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

bytes idx_images(std::uint32_t n, std::uint32_t h, std::uint32_t w) {
    bytes b{0, 0, 0x08, 0x03};
    put_u32(b, n);
    put_u32(b, h);
    put_u32(b, w);
    for (std::uint32_t i = 0; i < n * h * w; ++i) b.push_back(static_cast<unsigned char>((i * 7 + 3) % 256));
    return b;
}

bytes idx_labels(const std::vector<unsigned char>& labels) {
    bytes b{0, 0, 0x08, 0x01};
    put_u32(b, static_cast<std::uint32_t>(labels.size()));
    b.insert(b.end(), labels.begin(), labels.end());
    return b;
}

void write_plain(const fs::path& p, const bytes& b) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    REQUIRE(out.good());
}

void write_gz(const fs::path& p, const bytes& b) {
    gzFile f = gzopen(p.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
    REQUIRE(gzclose(f) == Z_OK);
}

bytes read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return bytes(std::istreambuf_iterator<char>(in), {});
}

/// The message of the io_error that f throws (fails the test if it throws nothing or something else).
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

TEST_CASE("idx: images and labels, plain and gzip, round trip") {
    temp_dir d;
    const auto img = idx_images(5, 3, 4);
    const std::vector<unsigned char> lab{0, 2, 1, 2, 0};
    write_plain(d / "img", img);
    write_gz(d / "img.gz", img);
    write_plain(d / "lab", idx_labels(lab));
    write_gz(d / "lab.gz", idx_labels(lab));

    for (const char* name : {"img", "img.gz"}) {
        auto t = ssl::data::read_idx_images(d / name);
        CHECK(t.shape() == ssl::shape_t{5, 1, 3, 4});
        for (std::size_t i = 0; i < t.numel(); ++i) REQUIRE(t[i] == img[16 + i]);
    }
    for (const char* name : {"lab", "lab.gz"})
        CHECK(ssl::data::read_idx_labels(d / name) == std::vector<std::int64_t>{0, 2, 1, 2, 0});

    auto ds = ssl::data::read_idx(d / "img.gz", d / "lab");
    CHECK(ds.size() == 5);
    CHECK(ds.channels() == 1);
    CHECK(ds.height() == 3);
    CHECK(ds.width() == 4);
    CHECK(ds.labelled());
    CHECK(ds.num_classes == 3);  // inferred: max label + 1
    CHECK(ds.class_names.empty());
    CHECK(ds.name == "img.gz");
    CHECK_NOTHROW(ds.validate());
    CHECK(ds.class_counts() == std::vector<std::size_t>{2, 1, 2});

    auto named = ssl::data::read_idx(d / "img", d / "lab", 4, {"a", "b", "c", "d"});
    CHECK(named.num_classes == 4);
    CHECK(named.class_names.size() == 4);
    CHECK(named.name == "img");
    // Two strings are images and labels (no overload takes a name there).
    const std::string si = (d / "img").string(), sl = (d / "lab").string();
    CHECK(ssl::data::read_idx(si, sl).labelled());

    auto unl = ssl::data::read_idx(d / "img");
    CHECK_FALSE(unl.labelled());
    CHECK(unl.num_classes == 0);
    CHECK_NOTHROW(unl.validate());
}

TEST_CASE("idx: gzip is detected from the magic bytes, not the file name") {
    temp_dir d;
    const auto img = idx_images(2, 2, 2);
    write_gz(d / "compressed-but-no-suffix", img);
    write_plain(d / "plain-but-named.gz", img);
    CHECK(ssl::data::read_idx_images(d / "compressed-but-no-suffix").shape() == ssl::shape_t{2, 1, 2, 2});
    CHECK(ssl::data::read_idx_images(d / "plain-but-named.gz").shape() == ssl::shape_t{2, 1, 2, 2});
}

TEST_CASE("image_dataset: batch, labels_of, subset, validate") {
    temp_dir d;
    const auto img = idx_images(4, 2, 3);
    write_plain(d / "img", img);
    write_plain(d / "lab", idx_labels({1, 0, 1, 1}));
    auto ds = ssl::data::read_idx(d / "img", d / "lab", 2);

    const std::vector<std::size_t> idx{3, 0, 3};
    auto b = ds.batch(idx);
    CHECK(b.shape() == ssl::shape_t{3, 1, 2, 3});
    for (std::size_t k = 0; k < 3; ++k)
        for (std::size_t j = 0; j < 6; ++j) {
            const float want = static_cast<float>(img[16 + idx[k] * 6 + j]) / 255.0f;
            REQUIRE(b[k * 6 + j] == want);
            REQUIRE(b[k * 6 + j] >= 0.0f);
            REQUIRE(b[k * 6 + j] <= 1.0f);
        }
    CHECK(ds.labels_of(idx) == std::vector<std::int64_t>{1, 1, 1});

    auto s = ds.subset(std::vector<std::size_t>{2, 1});
    CHECK(s.size() == 2);
    CHECK(s.labels == std::vector<std::int64_t>{1, 0});
    CHECK(s.num_classes == 2);
    for (std::size_t j = 0; j < 6; ++j) CHECK(s.images[j] == img[16 + 2 * 6 + j]);
    CHECK_FALSE(s.images.shares_storage_with(ds.images));

    auto msg = error_of<ssl::value_error>([&] { ds.batch(std::vector<std::size_t>{0, 4}); });
    CHECK(contains(msg, "index 4"));
    CHECK(contains(msg, "4 images"));

    auto bad = ds;
    bad.labels[2] = 7;
    msg = error_of<ssl::value_error>([&] { bad.validate(); });
    CHECK(contains(msg, "label 7"));
    CHECK(contains(msg, "image 2"));
    bad = ds;
    bad.labels.pop_back();
    msg = error_of<ssl::value_error>([&] { bad.validate(); });
    CHECK(contains(msg, "3 labels for 4 images"));
    bad = ds;
    bad.class_names = {"x"};
    CHECK(contains(error_of<ssl::value_error>([&] { bad.validate(); }), "1 class names for 2 classes"));
}

TEST_CASE("idx: missing, truncated and trailing files name the file") {
    temp_dir d;
    auto msg = error_of([&] { ssl::data::read_idx_images(d / "nope"); });
    CHECK(contains(msg, (d / "nope").string()));
    CHECK(contains(msg, "no such file"));

    const auto img = idx_images(3, 4, 4);
    write_plain(d / "short", img);
    fs::resize_file(d / "short", img.size() - 5);
    msg = error_of([&] { ssl::data::read_idx_images(d / "short"); });
    CHECK(contains(msg, (d / "short").string()));
    CHECK(contains(msg, "truncated"));

    write_plain(d / "tiny", bytes{0, 0});
    msg = error_of([&] { ssl::data::read_idx_images(d / "tiny"); });
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "magic"));

    write_plain(d / "half-header", bytes{0, 0, 8, 3, 0, 0, 0, 1, 0, 0});
    msg = error_of([&] { ssl::data::read_idx_images(d / "half-header"); });
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "header"));

    auto longer = img;
    longer.push_back(1);
    longer.push_back(2);
    write_plain(d / "long", longer);
    msg = error_of([&] { ssl::data::read_idx_images(d / "long"); });
    CHECK(contains(msg, "2 trailing bytes"));
    write_gz(d / "long.gz", longer);
    msg = error_of([&] { ssl::data::read_idx_images(d / "long.gz"); });
    CHECK(contains(msg, "2 trailing bytes"));

    // A gzip stream cut short.
    write_gz(d / "cut.gz", img);
    auto gz = read_all(d / "cut.gz");
    fs::resize_file(d / "cut.gz", gz.size() / 2);
    msg = error_of([&] { ssl::data::read_idx_images(d / "cut.gz"); });
    CHECK(contains(msg, (d / "cut.gz").string()));
    CHECK(contains(msg, "truncated"));

    // Labels truncated.
    write_plain(d / "lab", idx_labels({1, 2, 3, 4}));
    fs::resize_file(d / "lab", 10);
    msg = error_of([&] { ssl::data::read_idx_labels(d / "lab"); });
    CHECK(contains(msg, (d / "lab").string()));
    CHECK(contains(msg, "truncated"));
}

TEST_CASE("idx: wrong magic, element type, dimension count") {
    temp_dir d;
    write_plain(d / "text", bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!', '!', '!', '!'});
    auto msg = error_of([&] { ssl::data::read_idx_images(d / "text"); });
    CHECK(contains(msg, (d / "text").string()));
    CHECK(contains(msg, "not an IDX file"));
    CHECK(contains(msg, "68 65 6c 6c"));

    write_plain(d / "labels", idx_labels({1, 2}));
    msg = error_of([&] { ssl::data::read_idx_images(d / "labels"); });
    CHECK(contains(msg, "1 dimension, expected 3"));
    CHECK(contains(msg, "labels file?"));
    write_plain(d / "images", idx_images(2, 2, 2));
    msg = error_of([&] { ssl::data::read_idx_labels(d / "images"); });
    CHECK(contains(msg, "3 dimensions, expected 1"));

    bytes two{0, 0, 0x08, 0x02};
    put_u32(two, 2);
    put_u32(two, 2);
    two.insert(two.end(), 4, 0);
    write_plain(d / "two", two);
    msg = error_of([&] { ssl::data::read_idx_images(d / "two"); });
    CHECK(contains(msg, "2 dimensions, expected 3"));

    bytes floats{0, 0, 0x0D, 0x03};
    write_plain(d / "floats", floats);
    msg = error_of([&] { ssl::data::read_idx_images(d / "floats"); });
    CHECK(contains(msg, "0x0d (float) is not supported"));

    bytes zero{0, 0, 0x08, 0x03};
    put_u32(zero, 1);
    put_u32(zero, 0);
    put_u32(zero, 5);
    write_plain(d / "zero", zero);
    CHECK(contains(error_of([&] { ssl::data::read_idx_images(d / "zero"); }), "size 0x5"));
}

TEST_CASE("idx: corrupt gzip and absurd headers") {
    temp_dir d;
    write_gz(d / "img.gz", idx_images(40, 16, 16));
    auto gz = read_all(d / "img.gz");
    REQUIRE(gz.size() > 64);
    for (std::size_t i = gz.size() / 3; i < gz.size() / 3 + 8; ++i) gz[i] ^= 0x5a;
    write_plain(d / "bad.gz", gz);
    auto msg = error_of([&] { ssl::data::read_idx_images(d / "bad.gz"); });
    CHECK(contains(msg, (d / "bad.gz").string()));
    CHECK(contains(msg, "gzip"));

    // Only the checksum is wrong: the data decompresses, the trailer does not match.
    gz = read_all(d / "img.gz");
    gz[gz.size() - 6] ^= 0xff;
    write_plain(d / "crc.gz", gz);
    msg = error_of([&] { ssl::data::read_idx_images(d / "crc.gz"); });
    CHECK(contains(msg, "corrupt gzip"));

    // A header announcing 4 G images must not allocate them.
    bytes huge{0, 0, 0x08, 0x03};
    put_u32(huge, 0xffffffffu);
    put_u32(huge, 0x100u);
    put_u32(huge, 0x100u);
    write_gz(d / "huge.gz", huge);
    msg = error_of([&] { ssl::data::read_idx_images(d / "huge.gz"); });
    CHECK(contains(msg, "corrupt header"));
    write_plain(d / "huge", huge);
    msg = error_of([&] { ssl::data::read_idx_images(d / "huge"); });
    CHECK(contains(msg, "truncated"));

    bytes overflow{0, 0, 0x08, 0x03};
    for (int i = 0; i < 3; ++i) put_u32(overflow, 0xffffffffu);
    write_plain(d / "overflow", overflow);
    CHECK(contains(error_of([&] { ssl::data::read_idx_images(d / "overflow"); }), "overflow"));
}

TEST_CASE("idx: a limit reads only the images used; the maximum; bytes after the gzip stream") {
    temp_dir d;
    const bytes img = idx_images(40, 16, 16);
    std::vector<unsigned char> labels(40);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<unsigned char>(i % 10);
    write_gz(d / "img.gz", img);
    write_plain(d / "img", img);
    write_gz(d / "lab.gz", idx_labels(labels));
    const auto all = ssl::data::read_idx_images(d / "img.gz");
    for (const char* name : {"img.gz", "img"}) {
        const auto first = ssl::data::read_idx_images(d / name, {.limit = 5});
        REQUIRE(first.shape() == ssl::shape_t{5, 1, 16, 16});
        CHECK(std::equal(first.data(), first.data() + first.size(), all.data()));
        CHECK(ssl::data::read_idx_images(d / name, {.limit = 400}).shape() == all.shape());
    }
    const auto ds = ssl::data::read_idx(d / "img.gz", d / "lab.gz", 0, {}, {.limit = 7});
    CHECK(ds.size() == 7);
    CHECK(ds.labels == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6});
    // the counts of the two headers still have to match
    write_gz(d / "lab39.gz", idx_labels(std::vector<unsigned char>(39, 1)));
    auto msg = error_of([&] { ssl::data::read_idx(d / "img.gz", d / "lab39.gz", 0, {}, {.limit = 7}); });
    CHECK(contains(msg, "holds 40 images"));
    CHECK(contains(msg, "holds 39 labels"));

    // more data to read than the maximum: refused, naming the file and the sizes
    msg = error_of([&] { ssl::data::read_idx_images(d / "img.gz", {.max_bytes = 1000}); });
    CHECK(contains(msg, (d / "img.gz").string()));
    CHECK(contains(msg, "40 images x 16 rows x 16 columns = 10240 bytes of data"));
    CHECK(contains(msg, "more than the maximum of 1000 bytes (idx_options::max_bytes)"));
    msg = error_of([&] { ssl::data::read_idx_images(d / "img", {.limit = 10, .max_bytes = 1000, .max_bytes_name = "--max"}); });
    CHECK(contains(msg, "(the first 10 images: 2560 bytes), more than the maximum of 1000 bytes (--max)"));
    CHECK(ssl::data::read_idx_images(d / "img", {.limit = 3, .max_bytes = 1000}).dim(0) == 3);

    // bytes after the gzip stream are refused (zlib's gzread ignored them);
    // a second gzip member is part of the file, as gzip reads it
    auto gz = read_all(d / "img.gz");
    auto junk = gz;
    for (char c : std::string("junk")) junk.push_back(static_cast<unsigned char>(c));
    write_plain(d / "junk.gz", junk);
    msg = error_of([&] { ssl::data::read_idx_images(d / "junk.gz"); });
    CHECK(contains(msg, (d / "junk.gz").string()));
    CHECK(contains(msg, "4 trailing bytes after the gzip stream (from byte " + std::to_string(gz.size())));
    // a read of the first images stops before the end: the rule is checked
    // only where the file is read to its end
    CHECK(ssl::data::read_idx_images(d / "junk.gz", {.limit = 5}).dim(0) == 5);
    write_gz(d / "head.gz", bytes(img.begin(), img.begin() + 1000));
    write_gz(d / "tail.gz", bytes(img.begin() + 1000, img.end()));
    auto two = read_all(d / "head.gz");
    const auto tail = read_all(d / "tail.gz");
    two.insert(two.end(), tail.begin(), tail.end());
    write_plain(d / "two.gz", two);
    const auto joined = ssl::data::read_idx_images(d / "two.gz");
    REQUIRE(joined.shape() == all.shape());
    CHECK(std::equal(joined.data(), joined.data() + joined.size(), all.data()));
    two.push_back(0);
    write_plain(d / "two0.gz", two);
    CHECK(contains(error_of([&] { ssl::data::read_idx_images(d / "two0.gz"); }), "1 trailing bytes after the gzip stream"));
}

TEST_CASE("idx: a decompression bomb read with a limit costs what the limit reads") {
    // 256 MiB of images (262144 x 32 x 32) in a gzip file of about 250 KB
    temp_dir d;
    {
        bytes head{0, 0, 0x08, 0x03};
        put_u32(head, 262144);
        put_u32(head, 32);
        put_u32(head, 32);
        gzFile f = gzopen((d / "bomb.gz").c_str(), "wb9");
        REQUIRE(f != nullptr);
        REQUIRE(gzwrite(f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size()));
        const bytes zeros(1 << 20, 0);
        for (int i = 0; i < 256; ++i) REQUIRE(gzwrite(f, zeros.data(), 1u << 20) == 1 << 20);
        REQUIRE(gzclose(f) == Z_OK);
    }
    CHECK(fs::file_size(d / "bomb.gz") < (1u << 20));
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    const auto t = ssl::data::read_idx_images(d / "bomb.gz", {.limit = 64});
    ::getrusage(RUSAGE_SELF, &after);
    CHECK(t.shape() == ssl::shape_t{64, 1, 32, 32});
    CHECK(after.ru_maxrss - before.ru_maxrss < 32 * 1024);  // KiB: far below the 256 MiB in the file
    // without the limit, a maximum below the file's data refuses it before reading
    const auto msg = error_of([&] { ssl::data::read_idx_images(d / "bomb.gz", {.max_bytes = 100u << 20}); });
    CHECK(contains(msg, "262144 images x 32 rows x 32 columns = 268435456 bytes of data, more than the maximum of 104857600 bytes"));
}

TEST_CASE("idx: count mismatch and labels out of range") {
    temp_dir d;
    write_plain(d / "img", idx_images(5, 2, 2));
    write_plain(d / "lab4", idx_labels({0, 1, 2, 3}));
    auto msg = error_of([&] { ssl::data::read_idx(d / "img", d / "lab4"); });
    CHECK(contains(msg, (d / "img").string()));
    CHECK(contains(msg, (d / "lab4").string()));
    CHECK(contains(msg, "5 images"));
    CHECK(contains(msg, "4 labels"));

    write_plain(d / "lab", idx_labels({0, 1, 10, 3, 9}));
    msg = error_of([&] { ssl::data::read_idx(d / "img", d / "lab", 10); });
    CHECK(contains(msg, (d / "lab").string()));
    CHECK(contains(msg, "label 10 of image 2"));
    CHECK(contains(msg, "10 classes"));
    // Without a class count the count is inferred (max + 1 = 11).
    CHECK(ssl::data::read_idx(d / "img", d / "lab").num_classes == 11);

    CHECK_THROWS_AS(ssl::data::read_idx(d / "img", d / "lab", 3, {"a", "b"}), ssl::value_error);
}

TEST_CASE("fashion-mnist: a missing data set says how to install it") {
    temp_dir d;
    auto msg = error_of([&] { ssl::data::load_fashion_mnist(d / "absent"); });
    CHECK(contains(msg, (d / "absent").string()));
    CHECK(contains(msg, "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"));

    // Images present, labels missing.
    write_gz(d / "t10k-images-idx3-ubyte.gz", idx_images(3, 28, 28));
    msg = error_of([&] { ssl::data::load_fashion_mnist(d.path, ssl::data::split::test); });
    CHECK(contains(msg, (d / "t10k-labels-idx1-ubyte").string()));
    CHECK(contains(msg, "apt-get install dataset-fashion-mnist"));

    // Plain (uncompressed) labels are found as well; label 10 is out of range.
    write_plain(d / "t10k-labels-idx1-ubyte", idx_labels({9, 0, 3}));
    auto ds = ssl::data::load_fashion_mnist(d.path, ssl::data::split::test);
    CHECK(ds.size() == 3);
    CHECK(ds.num_classes == 10);
    CHECK(ds.class_names.at(0) == "T-shirt/top");
    CHECK(ds.class_names.at(9) == "Ankle boot");
    CHECK(ds.name == "fashion-mnist/test");
    write_plain(d / "t10k-labels-idx1-ubyte", idx_labels({9, 10, 3}));
    msg = error_of([&] { ssl::data::load_fashion_mnist(d.path, ssl::data::split::test); });
    CHECK(contains(msg, "label 10 of image 1"));
}

TEST_CASE("fashion-mnist: the real data set (/usr/share/datasets/fashion-mnist)") {
    const fs::path dir(ssl::data::fashion_mnist_default_dir);
    if (!fs::exists(dir / "t10k-images-idx3-ubyte.gz") && !fs::exists(dir / "t10k-images-idx3-ubyte")) {
        MESSAGE("SKIPPED: Fashion-MNIST is not installed at " << dir.string()
                                                              << " (apt-get install dataset-fashion-mnist)");
        return;
    }
    auto test = ssl::data::load_fashion_mnist(dir, ssl::data::split::test);
    CHECK(test.size() == 10000);
    CHECK(test.images.shape() == ssl::shape_t{10000, 1, 28, 28});
    CHECK(test.num_classes == 10);
    CHECK(test.class_counts() == std::vector<std::size_t>(10, 1000));
    CHECK_NOTHROW(test.validate());
    // Not blank: pixels span the byte range and the mean is plausible (~0.29 for Fashion-MNIST).
    double sum = 0;
    std::uint8_t mx = 0;
    for (auto v : test.images) {
        sum += v;
        mx = std::max(mx, v);
    }
    CHECK(mx == 255);
    const double mean = sum / static_cast<double>(test.images.numel()) / 255.0;
    CHECK(mean > 0.2);
    CHECK(mean < 0.4);

    auto train = ssl::data::load_fashion_mnist(dir, ssl::data::split::train);
    CHECK(train.size() == 60000);
    CHECK(train.class_counts() == std::vector<std::size_t>(10, 6000));
}

}  // namespace test_idx
