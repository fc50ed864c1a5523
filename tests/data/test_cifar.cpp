#include <doctest/doctest.h>

#include <ssl/data/cifar.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace test_cifar {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "ssl_test_cifar_XXXXXX").string();
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

/// Pixel j of the image with id `id` (distinct per image and position).
unsigned char pixel(std::size_t id, std::size_t j) { return static_cast<unsigned char>((id * 31 + j * 7 + j / 1024) % 256); }

/// CIFAR records: label bytes, then 3072 pixels of image id first_id + r.
bytes records(const std::vector<bytes>& labels, std::size_t first_id) {
    bytes b;
    for (std::size_t r = 0; r < labels.size(); ++r) {
        b.insert(b.end(), labels[r].begin(), labels[r].end());
        for (std::size_t j = 0; j < 3072; ++j) b.push_back(pixel(first_id + r, j));
    }
    return b;
}

void write_file(const fs::path& p, const bytes& b) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    REQUIRE(out.good());
}

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream out(p);
    out << s;
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

/// A CIFAR-10 directory: data_batch_k holds 2 records (ids 10k, 10k+1), test_batch 3.
void make_cifar10(const fs::path& dir, bool meta) {
    fs::create_directories(dir);
    for (int k = 1; k <= 5; ++k)
        write_file(dir / ("data_batch_" + std::to_string(k) + ".bin"),
                   records({{static_cast<unsigned char>(k)}, {static_cast<unsigned char>(9 - k)}}, 10 * k));
    write_file(dir / "test_batch.bin", records({{0}, {9}, {4}}, 100));
    if (meta) write_text(dir / "batches.meta.txt", "a0\na1\na2\na3\na4\na5\na6\na7\na8\na9\n\n\n");
}

}  // namespace

TEST_CASE("cifar10: train and test splits, CHW layout, labels, names") {
    temp_dir d;
    make_cifar10(d.path, true);
    auto train = ssl::data::load_cifar10(d.path, ssl::data::split::train);
    CHECK(train.images.shape() == ssl::shape_t{10, 3, 32, 32});
    CHECK(train.labels == std::vector<std::int64_t>{1, 8, 2, 7, 3, 6, 4, 5, 5, 4});
    CHECK(train.num_classes == 10);
    CHECK(train.class_names.at(3) == "a3");
    CHECK(train.name == "cifar10/train");
    CHECK_NOTHROW(train.validate());
    // Image 3 is record 1 of data_batch_2 (id 21); channel c, row y, column x is byte c*1024 + y*32 + x.
    for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t y = 0; y < 32; y += 7)
            for (std::size_t x = 0; x < 32; x += 5) REQUIRE(train.images.at(3, c, y, x) == pixel(21, c * 1024 + y * 32 + x));

    auto test = ssl::data::load_cifar10(d.path, ssl::data::split::test);
    CHECK(test.size() == 3);
    CHECK(test.labels == std::vector<std::int64_t>{0, 9, 4});
    CHECK(test.images.at(2, 2, 31, 31) == pixel(102, 3071));
    auto f = test.batch(std::vector<std::size_t>{2});
    CHECK(f[3071] == doctest::Approx(pixel(102, 3071) / 255.0));
}

TEST_CASE("cifar10: extracted archive directory and built-in class names") {
    temp_dir d;
    make_cifar10(d / "cifar-10-batches-bin", false);
    auto test = ssl::data::load_cifar10(d.path, ssl::data::split::test);
    CHECK(test.size() == 3);
    CHECK(test.class_names.at(0) == "airplane");
    CHECK(test.class_names.at(9) == "truck");
    CHECK(test.source == (d / "cifar-10-batches-bin").string());
}

TEST_CASE("cifar100: fine and coarse labels") {
    temp_dir d;
    write_file(d / "train.bin", records({{19, 99}, {0, 0}, {7, 42}}, 0));
    write_file(d / "test.bin", records({{3, 5}}, 50));
    std::string fine;
    for (int i = 0; i < 100; ++i) {
        fine += 'f';  // (not "f" + to_string(i): GCC 12 warns -Wrestrict in its own <string>)
        fine += std::to_string(i);
        fine += '\n';
    }
    write_text(d / "fine_label_names.txt", fine);

    auto ds = ssl::data::load_cifar100(d.path, ssl::data::split::train);
    CHECK(ds.size() == 3);
    CHECK(ds.labels == std::vector<std::int64_t>{99, 0, 42});
    CHECK(ds.num_classes == 100);
    CHECK(ds.class_names.at(42) == "f42");
    CHECK(ds.images.at(2, 0, 0, 0) == pixel(2, 0));

    auto coarse = ssl::data::load_cifar100(d.path, ssl::data::split::train, false);
    CHECK(coarse.labels == std::vector<std::int64_t>{19, 0, 7});
    CHECK(coarse.num_classes == 20);
    CHECK(coarse.class_names.empty());  // no coarse_label_names.txt
    CHECK_NOTHROW(coarse.validate());

    auto test = ssl::data::load_cifar100(d.path, ssl::data::split::test);
    CHECK(test.labels == std::vector<std::int64_t>{5});
}

TEST_CASE("cifar: bad input names the file") {
    temp_dir d;
    auto msg = error_of([&] { ssl::data::load_cifar10(d / "absent"); });
    CHECK(contains(msg, (d / "absent").string()));
    CHECK(contains(msg, "cifar.html"));
    msg = error_of([&] { ssl::data::load_cifar100(d.path); });
    CHECK(contains(msg, (d / "train.bin").string()));

    make_cifar10(d.path, false);
    // One batch file missing.
    fs::remove(d / "data_batch_4.bin");
    msg = error_of([&] { ssl::data::load_cifar10(d.path); });
    CHECK(contains(msg, (d / "data_batch_4.bin").string()));
    CHECK(contains(msg, "no such file"));

    // Size not a multiple of the record (truncated).
    make_cifar10(d.path, false);
    fs::resize_file(d / "data_batch_3.bin", 3073 + 100);
    msg = error_of([&] { ssl::data::load_cifar10(d.path); });
    CHECK(contains(msg, (d / "data_batch_3.bin").string()));
    CHECK(contains(msg, "3173 bytes, is not a multiple of the 3073-byte record"));

    // Empty file.
    make_cifar10(d.path, false);
    write_file(d / "test_batch.bin", {});
    msg = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::test); });
    CHECK(contains(msg, "empty"));

    // Label 10 in a 10-class file.
    write_file(d / "test_batch.bin", records({{3}, {10}}, 0));
    msg = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::test); });
    CHECK(contains(msg, (d / "test_batch.bin").string()));
    CHECK(contains(msg, "label 10 of record 1"));

    // A CIFAR-100 file read as CIFAR-10: 3074-byte records are not a multiple of 3073.
    write_file(d / "test_batch.bin", records({{1, 2}, {3, 4}}, 0));
    msg = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::test); });
    CHECK(contains(msg, "not a multiple"));

    // Fine label 100.
    write_file(d / "train.bin", records({{1, 100}}, 0));
    msg = error_of([&] { ssl::data::load_cifar100(d.path); });
    CHECK(contains(msg, (d / "train.bin").string()));
    CHECK(contains(msg, "label 100 of record 0"));

    // A class-name file with the wrong number of names.
    write_file(d / "test_batch.bin", records({{3}}, 0));
    write_text(d / "batches.meta.txt", "a\nb\n");
    msg = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::test); });
    CHECK(contains(msg, (d / "batches.meta.txt").string()));
    CHECK(contains(msg, "lists 2 names, expected 10"));

    CHECK_THROWS_AS(ssl::data::read_cifar_files({}, ssl::data::cifar10_format), ssl::value_error);
}

TEST_CASE("cifar: a file larger than the data set's is refused before allocating its size") {
    temp_dir d;
    // 10001 records (sparse, ~31 MB of zeros): one more than a CIFAR-10 file holds
    write_file(d / "test_batch.bin", {});
    fs::resize_file(d / "test_batch.bin", 10001 * 3073);
    const std::string msg = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::test); });
    CHECK(contains(msg, (d / "test_batch.bin").string()));
    CHECK(contains(msg, "is 10001 records of 3073 bytes, more than the 10000 of this CIFAR-10 file"));
}

TEST_CASE("cifar: cifar_options read only the first records, and refuse more data than max_bytes") {
    temp_dir d;
    make_cifar10(d.path, true);
    // 3 records: all of data_batch_1 and the first of data_batch_2; the other files are not read
    fs::resize_file(d / "data_batch_5.bin", 3073 * 7);  // whole records, so it passes the size checks
    auto part = ssl::data::load_cifar10(d.path, ssl::data::split::train, {.limit = 3});
    CHECK(part.size() == 3);
    CHECK(part.labels == std::vector<std::int64_t>{1, 8, 2});
    CHECK(part.images.at(2, 0, 0, 0) == pixel(20, 0));
    // a limit past the end reads everything there is
    CHECK(ssl::data::load_cifar10(d.path, ssl::data::split::train, {.limit = 100}).size() == 15);
    // max_bytes: per file, of the records read; named in the message
    const ssl::data::cifar_options small{.max_bytes = 3073 * 2, .max_bytes_name = "--max-data-mb 0.006"};
    CHECK(ssl::data::load_cifar10(d.path, ssl::data::split::test, {.limit = 2, .max_bytes = 3073 * 2}).size() == 2);
    const std::string msg = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::test, small); });
    CHECK(contains(msg, (d / "test_batch.bin").string()));
    CHECK(contains(msg, "3 records of 3073 bytes are 9219 bytes of data to read, more than the maximum of 6146 bytes "
                        "(--max-data-mb 0.006)"));
    // data_batch_5 (7 records) is over it; with a limit that stops before it, it is not read
    const std::string big = error_of([&] { ssl::data::load_cifar10(d.path, ssl::data::split::train, small); });
    CHECK(contains(big, (d / "data_batch_5.bin").string()));
    CHECK(ssl::data::load_cifar10(d.path, ssl::data::split::train, {.limit = 4, .max_bytes = 3073 * 2}).size() == 4);
    // CIFAR-100 takes the options too
    fs::create_directories(d / "c100");
    write_file(d / "c100" / "train.bin", records({{1, 10}, {2, 20}, {3, 30}}, 0));
    auto c100 = ssl::data::load_cifar100(d / "c100", ssl::data::split::train, true, {.limit = 2});
    CHECK(c100.labels == std::vector<std::int64_t>{10, 20});
    CHECK(contains(error_of([&] {
                       ssl::data::load_cifar100(d / "c100", ssl::data::split::train, true, {.max_bytes = 100});
                   }),
                   "3 records of 3074 bytes are 9222 bytes of data to read, more than the maximum of 100 bytes"));
}

}  // namespace test_cifar
