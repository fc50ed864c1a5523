#pragma once
// Reading the binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky, 2009),
// https://www.cs.toronto.edu/~kriz/cifar.html ("binary version" archives).
//
// A file is a sequence of fixed-size records, no header:
//   CIFAR-10    1 label byte (0..9)                      + 3072 pixel bytes
//   CIFAR-100   1 coarse label byte (0..19), 1 fine (0..99) + 3072 pixel bytes
// The 3072 pixel bytes are one 32x32 image, channel-major: 1024 red, 1024
// green, 1024 blue, each row-major, which is exactly (3, 32, 32) CHW.
//
// Files:
//   CIFAR-10   data_batch_1.bin .. data_batch_5.bin (train, 50000),
//              test_batch.bin (10000), batches.meta.txt (class names)
//   CIFAR-100  train.bin (50000), test.bin (10000),
//              fine_label_names.txt, coarse_label_names.txt
// The directory may be the one that holds these files or its parent (the
// archives extract to cifar-10-batches-bin/ and cifar-100-binary/). Class
// names come from the .txt files when present (CIFAR-10 falls back to its
// well-known names; CIFAR-100 is left without names).
//
// Every problem is an ssl::io_error naming the file: missing, empty, size not
// a multiple of the record, more records than the file has in the data set
// or more bytes to read than cifar_options::max_bytes (both checked before
// allocating), label out of range, class-name count wrong. With
// cifar_options::limit only the records used are read.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace ssl::data {

/// CIFAR-10's class names, by label.
inline const std::array<std::string_view, 10> cifar10_classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

/// How a CIFAR file's records are laid out.
struct cifar_format {
    std::size_t label_bytes = 1;   ///< label bytes in front of each image (1 for CIFAR-10, 2 for CIFAR-100)
    std::size_t label_index = 0;   ///< which of them is the label to use
    std::size_t num_classes = 10;  ///< labels must be below this
    std::size_t max_records = 0;   ///< records one file may hold (0: any); the loaders give the known sizes, so
                                   ///< a huge file is an error, not an allocation of its size
    static constexpr std::size_t image_bytes = 3 * 32 * 32;
    std::size_t record_bytes() const noexcept { return label_bytes + image_bytes; }
};

/// What to read of CIFAR files, and the most to read.
struct cifar_options {
    /// Read only the first `limit` records of the files together (0: all);
    /// files after them are checked (present, sized in whole records) but not read.
    std::size_t limit = 0;
    /// The most bytes of records to read from one file (0: no limit); a file
    /// of more (after `limit`) is refused before anything is allocated.
    std::uint64_t max_bytes = 0;
    /// How messages name max_bytes (the `ssl` program: "--max-data-mb").
    std::string max_bytes_name = "cifar_options::max_bytes";
};

inline constexpr cifar_format cifar10_format{1, 0, 10};
inline constexpr cifar_format cifar100_fine_format{2, 1, 100};
inline constexpr cifar_format cifar100_coarse_format{2, 0, 20};

/// Reads CIFAR binary files (records as in `fmt`) into one labelled set of
/// (N, 3, 32, 32) images, in file order.
inline image_dataset read_cifar_files(const std::vector<std::filesystem::path>& files, const cifar_format& fmt,
                                      std::string name = "cifar", const cifar_options& opt = {}) {
    namespace fs = std::filesystem;
    require(!files.empty(), "read_cifar_files: no files given");
    require(fmt.label_bytes >= 1 && fmt.label_index < fmt.label_bytes && fmt.num_classes >= 1 && fmt.num_classes <= 256,
            "read_cifar_files: bad record format (label_bytes ", fmt.label_bytes, ", label_index ", fmt.label_index,
            ", num_classes ", fmt.num_classes, ")");
    const std::size_t rec = fmt.record_bytes();
    std::vector<std::size_t> counts;
    std::size_t total = 0;
    for (const auto& f : files) {
        std::error_code ec;
        const auto st = fs::status(f, ec);
        if (!fs::exists(st)) detail::file_fail("CIFAR file", f, "no such file");
        if (!fs::is_regular_file(st)) detail::file_fail("CIFAR file", f, "not a regular file");
        const std::uint64_t size = fs::file_size(f, ec);
        if (ec) detail::file_fail("CIFAR file", f, "cannot get the size: ", ec.message());
        if (size == 0) detail::file_fail("CIFAR file", f, "the file is empty");
        if (fmt.max_records && size / rec > fmt.max_records)
            detail::file_fail("CIFAR file", f, "its size, ", size, " bytes, is ", size / rec, " records of ", rec,
                              " bytes, more than the ", fmt.max_records, " of this ",
                              fmt.label_bytes == 1 ? "CIFAR-10" : "CIFAR-100", " file (not a CIFAR file?)");
        if (size % rec != 0)
            detail::file_fail("CIFAR file", f, "its size, ", size, " bytes, is not a multiple of the ", rec,
                              "-byte record (", fmt.label_bytes, " label byte", fmt.label_bytes == 1 ? "" : "s",
                              " + 3072 pixel bytes): truncated, or not a ",
                              fmt.label_bytes == 1 ? "CIFAR-10" : "CIFAR-100", " file (", size / rec,
                              " whole records and ", size % rec, " bytes left over)");
        std::size_t used = static_cast<std::size_t>(size / rec);
        if (opt.limit) used = std::min(used, opt.limit - std::min(opt.limit, total));
        if (opt.max_bytes && std::uint64_t(used) * rec > opt.max_bytes)
            detail::file_fail("CIFAR file", f, used, " records of ", rec, " bytes are ", std::uint64_t(used) * rec,
                              " bytes of data to read", used * rec < size ? " (the first of its records)" : "",
                              ", more than the maximum of ", opt.max_bytes, " bytes (", opt.max_bytes_name,
                              "); read fewer records, or raise the maximum");
        counts.push_back(used);
        total += counts.back();
    }

    image_dataset ds;
    ds.images = tensor<std::uint8_t>({total, 3, 32, 32});
    ds.labels.resize(total);
    ds.num_classes = fmt.num_classes;
    ds.name = std::move(name);
    ds.source = files.size() == 1 ? files[0].string() : files[0].parent_path().string();

    constexpr std::size_t chunk_records = 1024;
    std::vector<unsigned char> buf(chunk_records * rec);
    std::size_t out = 0;
    for (std::size_t fi = 0; fi < files.size(); ++fi) {
        if (counts[fi] == 0) continue;  // after the limit
        std::ifstream in(files[fi], std::ios::binary);
        if (!in) detail::file_fail("CIFAR file", files[fi], "cannot open for reading: ", std::strerror(errno));
        for (std::size_t r = 0; r < counts[fi];) {
            const std::size_t n = std::min(chunk_records, counts[fi] - r);
            in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n * rec));
            if (static_cast<std::size_t>(in.gcount()) != n * rec)
                detail::file_fail("CIFAR file", files[fi], "read error at record ", r + static_cast<std::size_t>(in.gcount()) / rec,
                                  " (file changed while reading?)");
            for (std::size_t k = 0; k < n; ++k) {
                const unsigned char* p = buf.data() + k * rec;
                const unsigned label = p[fmt.label_index];
                if (label >= fmt.num_classes)
                    detail::file_fail("CIFAR file", files[fi], "label ", label, " of record ", r + k,
                                      " is out of range for ", fmt.num_classes, " classes (labels must be 0..",
                                      fmt.num_classes - 1, ")");
                ds.labels[out] = label;
                std::memcpy(ds.images.data() + out * cifar_format::image_bytes, p + fmt.label_bytes,
                            cifar_format::image_bytes);
                ++out;
            }
            r += n;
        }
    }
    return ds;
}

/// The non-empty lines of a class-name file, or nothing when it does not
/// exist. Throws io_error when it exists with a count other than `expected`.
inline std::vector<std::string> read_class_names(const std::filesystem::path& path, std::size_t expected) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return {};
    std::ifstream in(path);
    if (!in) detail::file_fail("class-name file", path, "cannot open for reading: ", std::strerror(errno));
    std::vector<std::string> names;
    std::string line;
    while (std::getline(in, line)) {
        const auto b = line.find_first_not_of(" \t\r\n");
        if (b == std::string::npos) continue;
        const auto e = line.find_last_not_of(" \t\r\n");
        names.push_back(line.substr(b, e - b + 1));
    }
    if (names.size() != expected)
        detail::file_fail("class-name file", path, "lists ", names.size(), " names, expected ", expected,
                          " (one per line)");
    return names;
}

namespace detail {

/// `dir` if it holds `probe`, else `dir/sub` if that does; throws otherwise.
inline std::filesystem::path find_cifar_dir(const std::filesystem::path& dir, const char* sub, const char* probe,
                                            const char* what, const char* archive) {
    std::error_code ec;
    if (std::filesystem::exists(dir / probe, ec)) return dir;
    if (std::filesystem::exists(dir / sub / probe, ec)) return dir / sub;
    const bool dir_exists = std::filesystem::is_directory(dir, ec);
    throw io_error(ssl::detail::cat(what, ": ",
                                    dir_exists ? "no '" + (dir / probe).string() + "' (nor '" +
                                                     (dir / sub / probe).string() + "')"
                                               : "the directory '" + dir.string() + "' does not exist",
                                    "; download the binary version (", archive,
                                    ") from https://www.cs.toronto.edu/~kriz/cifar.html and extract it there"));
}

}  // namespace detail

/// Loads a split of CIFAR-10 (binary version): (N, 3, 32, 32), 10 classes.
inline image_dataset load_cifar10(const std::filesystem::path& dir, split s = split::train,
                                  const cifar_options& opt = {}) {
    const auto root = detail::find_cifar_dir(dir, "cifar-10-batches-bin",
                                             s == split::train ? "data_batch_1.bin" : "test_batch.bin", "CIFAR-10",
                                             "cifar-10-binary.tar.gz");
    std::vector<std::filesystem::path> files;
    if (s == split::train)
        for (int i = 1; i <= 5; ++i) files.push_back(root / ("data_batch_" + std::to_string(i) + ".bin"));
    else
        files.push_back(root / "test_batch.bin");
    cifar_format fmt = cifar10_format;
    fmt.max_records = 10000;  // each of the six files
    auto ds = read_cifar_files(files, fmt, std::string("cifar10/") + split_name(s), opt);
    ds.class_names = read_class_names(root / "batches.meta.txt", 10);
    if (ds.class_names.empty()) ds.class_names.assign(cifar10_classes.begin(), cifar10_classes.end());
    ds.source = root.string();
    return ds;
}

/// Loads a split of CIFAR-100 (binary version): (N, 3, 32, 32), with the 100
/// fine labels (fine = true) or the 20 coarse super-class labels.
inline image_dataset load_cifar100(const std::filesystem::path& dir, split s = split::train, bool fine = true,
                                   const cifar_options& opt = {}) {
    const char* file = s == split::train ? "train.bin" : "test.bin";
    const auto root = detail::find_cifar_dir(dir, "cifar-100-binary", file, "CIFAR-100", "cifar-100-binary.tar.gz");
    cifar_format fmt = fine ? cifar100_fine_format : cifar100_coarse_format;
    fmt.max_records = s == split::train ? 50000 : 10000;
    auto ds = read_cifar_files({root / file}, fmt,
                               std::string("cifar100/") + split_name(s) + (fine ? "" : "/coarse"), opt);
    ds.class_names = read_class_names(root / (fine ? "fine_label_names.txt" : "coarse_label_names.txt"), fmt.num_classes);
    ds.source = root.string();
    return ds;
}

}  // namespace ssl::data
