// Clip folders (data/clips.hpp): the layout read back as written, clips
// recovered from the labels, and every damaged clip refused with the file
// or folder named.
#include <doctest/doctest.h>

#include <fstream>

#include <ssl/data/clips.hpp>

#include "temp_files.hpp"

namespace test_clips {

namespace fs = std::filesystem;
using ssl::tensor;

std::vector<tensor<std::uint8_t>> frames(std::size_t T, std::size_t C, std::size_t H, std::size_t W, std::uint8_t seed) {
    std::vector<tensor<std::uint8_t>> out;
    for (std::size_t t = 0; t < T; ++t) {
        tensor<std::uint8_t> f({C, H, W});
        for (std::size_t k = 0; k < f.numel(); ++k) f[k] = static_cast<std::uint8_t>(seed * 31 + t * 17 + k * 7);
        out.push_back(f);
    }
    return out;
}

TEST_CASE("clip folders: written and read back frame for frame; the clip is the label; clip_ranges") {
    ssl_test::temp_dir d("clips_roundtrip");
    const auto a = frames(3, 1, 6, 8, 1), b = frames(4, 1, 6, 8, 2);
    ssl::data::write_clip(d.path / "walk", a);
    ssl::data::write_clip(d.path / "bike", b);
    std::ofstream(d.path / "README.txt") << "not a clip";
    const auto s = ssl::data::load_clip_folder(d.path, {.image = {.channels = 1}});
    REQUIRE(s.size() == 7);
    CHECK(s.name == ssl::data::clip_set_name);
    CHECK(s.class_names == std::vector<std::string>{"bike", "walk"});  // sorted
    CHECK(s.labels == std::vector<std::int64_t>{0, 0, 0, 0, 1, 1, 1});
    CHECK(std::equal(b[2].begin(), b[2].end(), s.images.data() + 2 * 48));
    CHECK(std::equal(a[0].begin(), a[0].end(), s.images.data() + 4 * 48));
    const auto r = ssl::data::clip_ranges(s, "test");
    CHECK(r == std::vector<std::pair<std::size_t, std::size_t>>{{0, 4}, {4, 7}});
    // resized on reading; a folder of frames is one clip
    const auto small = ssl::data::load_clip_folder(d.path, {.image = {.height = 3, .width = 4, .channels = 1}});
    CHECK(small.images.shape() == ssl::shape_t{7, 1, 3, 4});
    const auto one = ssl::data::load_clip_folder(d.path / "walk", {.image = {.channels = 3}});
    CHECK(one.images.shape() == ssl::shape_t{3, 3, 6, 8});
    CHECK(one.num_classes == 1);
    // a clip whose frames are not together, and a clip index out of range, are refused
    auto split = s;
    split.labels = {0, 0, 1, 1, 0, 1, 1};
    CHECK_THROWS_WITH_AS(ssl::data::clip_ranges(split, "test"), doctest::Contains("clip 0 are not contiguous (frame 4)"),
                         ssl::value_error);
    split.labels = {0, 0, 0, 0, 2, 2, 2};
    CHECK_THROWS_WITH_AS(ssl::data::clip_ranges(split, "test"), doctest::Contains("not one of the 2 clips"),
                         ssl::value_error);
    // a labelled image folder is not a clip set
    auto other = s;
    other.name = "folder";
    CHECK_THROWS_WITH_AS(ssl::data::clip_ranges(other, "motion"), doctest::Contains("clips:DIR"), ssl::value_error);
    // frames may start at any number
    fs::rename(d.path / "walk" / "0000.png", d.path / "walk" / "0003.png");  // 1, 2, 3
    CHECK(ssl::data::load_clip_folder(d.path, {.image = {.channels = 1}}).size() == 7);
    fs::rename(d.path / "walk" / "0003.png", d.path / "walk" / "0005.png");  // 1, 2, 5
    CHECK_THROWS_WITH_AS(ssl::data::load_clip_folder(d.path, {.image = {.channels = 1}}),
                         doctest::Contains("frame 3 is missing"), ssl::io_error);
}

TEST_CASE("clip folders: damaged clips refused, naming the file or folder") {
    ssl_test::temp_dir d("clips_bad");
    const ssl::data::clip_folder_options o{.image = {.channels = 1}};
    auto fails = [&](const std::string& what) {
        CHECK_THROWS_WITH_AS(ssl::data::load_clip_folder(d.path, o), doctest::Contains(what.c_str()), ssl::io_error);
    };
    CHECK_THROWS_WITH_AS(ssl::data::load_clip_folder(d.path / "none", o), doctest::Contains("no such directory"),
                         ssl::io_error);
    fs::create_directories(d.path);
    fails("holds no clips");
    ssl::data::write_clip(d.path / "c", frames(4, 1, 5, 5, 1));
    // a gap
    fs::remove(d.path / "c" / "0002.png");
    fails("frame 2 is missing");
    ssl::data::write_clip(d.path / "c", frames(4, 1, 5, 5, 1));
    // a name that is not a number
    std::ofstream(d.path / "c" / "cover.png") << "x";
    fails("'cover.png' is not a numbered frame");
    fs::remove(d.path / "c" / "cover.png");
    // one number twice
    fs::copy_file(d.path / "c" / "0001.png", d.path / "c" / "01.png");
    fails("are both frame 1");
    fs::remove(d.path / "c" / "01.png");
    // a frame of another size
    ssl::data::write_clip(d.path / "odd", frames(2, 1, 5, 6, 3));
    fs::copy_file(d.path / "odd" / "0000.png", d.path / "c" / "0004.png");
    fails("a clip's frames have one size");
    fs::remove(d.path / "c" / "0004.png");
    fs::remove_all(d.path / "odd");
    // a truncated and a corrupt frame
    {
        std::ifstream in(d.path / "c" / "0003.png", std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        std::ofstream(d.path / "c" / "0003.png", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    }
    fails("0003.png");
    std::ofstream(d.path / "c" / "0003.png", std::ios::binary) << "GIF89a not a png";
    fails("0003.png");
    ssl::data::write_clip(d.path / "c", frames(4, 1, 5, 5, 1));
    // too few frames
    ssl::data::write_clip(d.path / "short", frames(1, 1, 5, 5, 4));
    fails("1 frame, fewer than the 2 a clip needs");
    fs::remove_all(d.path / "short");
    // frames next to clip folders
    ssl::data::write_clip(d.path, frames(2, 1, 5, 5, 5));
    fails("holds both frames and clip folders");
    fs::remove(d.path / "0000.png"), fs::remove(d.path / "0001.png");
    // the byte limit
    CHECK_THROWS_WITH_AS(ssl::data::load_clip_folder(d.path, {.image = {.channels = 1, .max_bytes = 50}}),
                         doctest::Contains("more than the maximum"), ssl::io_error);
    CHECK(ssl::data::load_clip_folder(d.path, o).size() == 4);
}

}  // namespace test_clips
