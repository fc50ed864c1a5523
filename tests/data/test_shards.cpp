// Streaming tar shards (data/shards.hpp): written and read back exactly;
// every sample exactly once per epoch on 1, 2 and 3 ranks; equal steps on
// every rank (drop and pad); determinism per seed, another order per epoch;
// resuming mid-epoch; and every kind of bad input refused by name.
#include <doctest/doctest.h>

#include <ssl/data/shards.hpp>
#include <ssl/data/synthetic.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "temp_files.hpp"

namespace test_shards {

namespace {

namespace fs = std::filesystem;
using ssl::data::shard_options;
using ssl::data::shard_set;
using ssl::data::shard_stream;
using ssl::data::shard_tail;

ssl::data::image_dataset make_set(std::size_t n, std::size_t channels = 1) {
    return ssl::data::synthetic({.size = n, .classes = 5, .channels = channels, .height = 8, .width = 6, .seed = 4})
        .to_dataset();
}

/// Every sample index of epoch e as the ranks see it: non-padding ones and padding ones.
struct epoch_samples {
    std::vector<std::size_t> real, pad;
    std::vector<std::size_t> batches;  // per rank
};

epoch_samples run_epoch(const shard_set& set, shard_options o, std::size_t ranks, std::size_t e) {
    epoch_samples r;
    for (std::size_t k = 0; k < ranks; ++k) {
        o.rank = k;
        o.ranks = ranks;
        shard_stream s(set, o);
        std::size_t n = 0;
        for (auto& b : s.epoch(e)) {
            ++n;
            CHECK(b.size() == o.batch_size);
            for (std::size_t i = 0; i < b.size(); ++i)
                (i + b.padding >= b.size() ? r.pad : r.real).push_back(b.indices[i]);
        }
        CHECK(n == s.batches_per_epoch());
        r.batches.push_back(n);
    }
    return r;
}

std::vector<std::size_t> order_of(const shard_set& set, shard_options o, std::size_t e) {
    std::vector<std::size_t> v;
    for (auto& b : shard_stream(set, o).epoch(e)) v.insert(v.end(), b.indices.begin(), b.indices.end());
    return v;
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

/// A shard from hand-made members (for damaged layouts the writer never makes).
void write_tar(const fs::path& p, const std::vector<std::pair<std::string, std::string>>& members) {
    std::ofstream out(p, std::ios::binary);
    ssl::data::tar_writer w(out, p.string());
    for (const auto& [n, d] : members) w.add(n, std::span(reinterpret_cast<const unsigned char*>(d.data()), d.size()));
    w.finish();
}

std::string png_of(std::uint8_t v, std::size_t h = 8, std::size_t w = 6) {
    std::vector<std::uint8_t> px(h * w, v);
    auto p = ssl::data::detail::encode_png(px.data(), 1, h, w);
    return std::string(p.begin(), p.end());
}

/// A one-shard, labelled set of 2 samples written by hand: manifest + shard.
void hand_set(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& members,
              std::size_t samples = 2) {
    fs::create_directories(dir);
    write_tar(dir / "shard-000000.tar", members);
    write_text(dir / "manifest.json",
               R"({"format":"ssl-shards","version":1,"samples":)" + std::to_string(samples) +
                   R"(,"channels":1,"height":8,"width":6,"classes":5,"image":"png","shards":[{"file":"shard-000000.tar","samples":)" +
                   std::to_string(samples) + "}]}");
}

std::string read_error(const fs::path& dir) {
    try {
        const auto set = shard_set::open(dir);
        shard_stream s(set, {.batch_size = 1, .buffer = 4});
        for (auto& b : s.epoch(0)) (void)b;
    } catch (const ssl::io_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("shards: write_shards then load_shards gives back the same images and labels; PNG members") {
    ssl_test::temp_dir d("shards_roundtrip");
    for (std::size_t c : {1u, 3u}) {
        CAPTURE(c);
        const auto ds = make_set(23, c);
        const auto dir = d.path / ("c" + std::to_string(c));
        const auto m = ssl::data::write_shards(ds, dir, 5);
        CHECK(m.shards.size() == 5);  // 5 + 5 + 5 + 5 + 3
        CHECK(m.shards.back().samples == 3);
        CHECK(fs::exists(dir / "manifest.json"));
        const auto set = shard_set::open(dir);
        CHECK(set.size() == 23);
        const auto back = ssl::data::load_shards(set);
        REQUIRE(back.size() == 23);
        CHECK(std::equal(back.images.begin(), back.images.end(), ds.images.begin()));
        CHECK(back.labels == ds.labels);
        CHECK(back.num_classes == 5);
        CHECK(ssl::data::load_shards(set, 7).size() == 7);
    }
    // members: 000000000.png, 000000000.cls, ... (PNG signature)
    ssl::data::tar_reader r(d.path / "c1" / "shard-000001.tar");
    ssl::data::tar_member mem;
    std::vector<unsigned char> b;
    REQUIRE(r.next(mem));
    CHECK(mem.name == "000000005.png");
    r.read(b);
    CHECK(b[1] == 'P');
    REQUIRE(r.next(mem));
    CHECK(mem.name == "000000005.cls");
    r.read(b);
    CHECK(std::string(b.begin(), b.end()) == std::to_string(make_set(23).labels[5]) + "\n");
}

TEST_CASE("shards: every sample exactly once per epoch on 1, 2 and 3 ranks, equal steps on every rank (pad)") {
    ssl_test::temp_dir d("shards_once");
    // 6 shards of 7, 7, 7, 7, 7, 4 samples: ranks get unequal counts
    ssl::data::write_shards(make_set(39), d.path, 7);
    const auto set = shard_set::open(d.path);
    for (std::size_t ranks : {1u, 2u, 3u}) {
        for (std::size_t e : {0u, 1u}) {
            CAPTURE(ranks);
            CAPTURE(e);
            const auto r = run_epoch(set, {.batch_size = 4, .buffer = 5, .tail = shard_tail::pad, .seed = 9}, ranks, e);
            auto real = r.real;
            std::sort(real.begin(), real.end());
            std::vector<std::size_t> all(39);
            for (std::size_t i = 0; i < 39; ++i) all[i] = i;
            CHECK(real == all);  // each sample once, none missing
            CHECK(std::set<std::size_t>(r.batches.begin(), r.batches.end()).size() == 1);  // equal steps
            // padding: what the longest possible rank has beyond each rank's own, rounded up to a batch
            const std::size_t per = 6 / ranks, smax = per == 6 ? 39 : 7 * per, steps = (smax + 3) / 4;
            CHECK(r.batches[0] == steps);
            CHECK(r.real.size() + r.pad.size() == steps * 4 * ranks);
        }
    }
}

TEST_CASE("shards: tail drop gives every rank floor(S_min / B) batches, no sample twice") {
    ssl_test::temp_dir d("shards_drop");
    ssl::data::write_shards(make_set(39), d.path, 7);
    const auto set = shard_set::open(d.path);
    for (std::size_t ranks : {1u, 2u, 3u}) {
        CAPTURE(ranks);
        const auto r = run_epoch(set, {.batch_size = 4, .buffer = 5, .tail = shard_tail::drop, .seed = 9}, ranks, 0);
        CHECK(r.pad.empty());
        const std::size_t per = 6 / ranks, smin = 4 + 7 * (per - 1);
        for (std::size_t n : r.batches) CHECK(n == smin / 4);
        CHECK(std::set<std::size_t>(r.real.begin(), r.real.end()).size() == r.real.size());
        CHECK(r.real.size() == smin / 4 * 4 * ranks);
    }
}

TEST_CASE("shards: the order depends on the seed and the epoch only; the shuffle mixes across shards") {
    ssl_test::temp_dir d("shards_order");
    ssl::data::write_shards(make_set(60), d.path, 10);
    const auto set = shard_set::open(d.path);
    const shard_options o{.batch_size = 5, .buffer = 16, .seed = 3};
    const auto a = order_of(set, o, 0);
    CHECK(a == order_of(set, o, 0));  // deterministic
    CHECK(a != order_of(set, o, 1));  // another order each epoch
    auto o2 = o;
    o2.seed = 4;
    CHECK(a != order_of(set, o2, 0));  // another seed, another order
    CHECK(std::set<std::size_t>(a.begin(), a.end()).size() == 60);
    // not shard by shard: the first 10 samples come from more than one shard
    std::set<std::size_t> first_shards;
    for (std::size_t i = 0; i < 10; ++i) first_shards.insert(a[i] / 10);
    CHECK(first_shards.size() > 1);
    // without shuffling: manifest order
    auto o3 = o;
    o3.shuffle = false;
    const auto plain = order_of(set, o3, 5);
    for (std::size_t i = 0; i < plain.size(); ++i) CHECK(plain[i] == i);
}

TEST_CASE("shards: resuming at batch k gives the same batches as the uninterrupted epoch from k on") {
    ssl_test::temp_dir d("shards_resume");
    ssl::data::write_shards(make_set(50), d.path, 5);
    const auto set = shard_set::open(d.path);
    for (std::size_t ranks : {1u, 2u}) {
        CAPTURE(ranks);
        shard_stream s(set, {.batch_size = 4, .buffer = 7, .seed = 1, .rank = ranks - 1, .ranks = ranks});
        std::vector<std::vector<std::size_t>> full;
        std::vector<std::vector<float>> pixels;
        for (auto& b : s.epoch(2)) {
            full.push_back(b.indices);
            pixels.emplace_back(b.images.begin(), b.images.end());
        }
        REQUIRE(full.size() >= 3);
        std::size_t k = 2;
        for (auto& b : s.epoch(2, 2)) {
            CHECK(b.number == k);
            CHECK(b.indices == full[k]);
            CHECK(std::vector<float>(b.images.begin(), b.images.end()) == pixels[k]);
            ++k;
        }
        CHECK(k == full.size());
        CHECK_THROWS_AS(s.epoch(2, full.size() + 1), ssl::value_error);
    }
}

TEST_CASE("shards: the batch holds the decoded images and labels of its indices") {
    ssl_test::temp_dir d("shards_batch");
    const auto ds = make_set(12, 3);
    ssl::data::write_shards(ds, d.path, 4);
    const auto set = shard_set::open(d.path);
    for (auto& b : shard_stream(set, {.batch_size = 3, .buffer = 4, .seed = 2}).epoch(0)) {
        CHECK(b.images.shape().str() == ssl::tensor<float>({3, 3, 8, 6}).shape().str());
        const auto want = ds.batch(b.indices);
        CHECK(std::equal(b.images.begin(), b.images.end(), want.begin()));
        CHECK(b.labels == ds.labels_of(b.indices));
    }
}

TEST_CASE("shards: the shard count must be divisible by the ranks; options are checked") {
    ssl_test::temp_dir d("shards_ranks");
    ssl::data::write_shards(make_set(20), d.path, 4);  // 5 shards
    const auto set = shard_set::open(d.path);
    CHECK_THROWS_WITH_AS(shard_stream(set, {.batch_size = 2, .rank = 0, .ranks = 2}),
                         doctest::Contains("its 5 shards cannot be split evenly over 2 ranks"), ssl::value_error);
    CHECK_THROWS_WITH_AS(shard_stream(set, {.batch_size = 2, .buffer = 0}),
                         doctest::Contains("buffer must hold at least 1"), ssl::value_error);
    CHECK_THROWS_WITH_AS(shard_stream(set, {.batch_size = 100}), doctest::Contains("make no batch of 100"),
                         ssl::value_error);
    CHECK_THROWS_WITH_AS(shard_stream(set, {.batch_size = 2, .rank = 3, .ranks = 3}),
                         doctest::Contains("rank 3 is not one of 3 ranks"), ssl::value_error);
    // the writer wants an empty directory
    CHECK_THROWS_WITH_AS(ssl::data::write_shards(make_set(4), d.path, 2), doctest::Contains("is not empty"),
                         ssl::io_error);
}

TEST_CASE("shards: a missing or inconsistent manifest is refused, naming the file and the problem") {
    ssl_test::temp_dir d("shards_manifest");
    const auto dir = d.path / "s";
    ssl::data::write_shards(make_set(10), dir, 4);
    const std::string good = ssl_test::read_text(dir / "manifest.json");
    auto open_error = [&] {
        try {
            shard_set::open(dir);
        } catch (const ssl::io_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(open_error().empty());
    fs::remove(dir / "manifest.json");
    CHECK(open_error().find("manifest.json': missing") != std::string::npos);
    write_text(dir / "manifest.json", "{not json");
    CHECK(open_error().find("not valid JSON") != std::string::npos);
    auto with = [&](const std::string& from, const std::string& to) {
        std::string s = good;
        const auto at = s.find(from);
        REQUIRE(at != std::string::npos);
        s.replace(at, from.size(), to);
        write_text(dir / "manifest.json", s);
        return open_error();
    };
    CHECK(with("\"samples\": 10", "\"samples\": 11").find("the shards hold 10 samples in all, \"samples\" says 11") !=
          std::string::npos);
    CHECK(with("shard-000002.tar", "shard-000009.tar").find("shard-000009.tar' is missing") != std::string::npos);
    CHECK(with("\"channels\": 1", "\"channels\": 2").find("\"channels\" must be 1 or 3") != std::string::npos);
    CHECK(with("\"format\": \"ssl-shards\"", "\"format\": \"other\"").find("\"format\" must be") != std::string::npos);
    CHECK(with("\"samples\": 2\n", "\"samples\": 0\n").find("holds no samples") != std::string::npos);
    // counts that add up but do not match a shard's contents: found when the shard is read
    std::string s = good;
    const auto a = s.find("\"samples\": 4"), b = s.rfind("\"samples\": 2");
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    s.replace(b, 12, "\"samples\": 3");
    s.replace(a, 12, "\"samples\": 3");
    write_text(dir / "manifest.json", s);
    const std::string err = read_error(dir);
    CHECK(err.find("shard '") != std::string::npos);
    CHECK(err.find("(inconsistent manifest)") != std::string::npos);
}

TEST_CASE("shards: a damaged shard is refused with the shard, the member and the problem") {
    ssl_test::temp_dir d("shards_damaged");
    const std::string p0 = png_of(10), p1 = png_of(200);
    // a sample missing its label
    hand_set(d.path / "nolabel", {{"a.png", p0}, {"a.cls", "1"}, {"b.png", p1}});
    CHECK(read_error(d.path / "nolabel").find("sample 'b' (image 'b.png') is missing its label ('b.cls')") !=
          std::string::npos);
    // a sample without image
    hand_set(d.path / "noimage", {{"a.png", p0}, {"a.cls", "1"}, {"b.cls", "2"}});
    CHECK(read_error(d.path / "noimage").find("sample 'b' has no image") != std::string::npos);
    // files of a sample not adjacent
    hand_set(d.path / "split", {{"a.png", p0}, {"a.cls", "1"}, {"b.png", p1}, {"b.cls", "2"}, {"a.txt", "x"}}, 3);
    CHECK(read_error(d.path / "split").find("sample 'a' appears twice") != std::string::npos);
    // a label that is not a class
    hand_set(d.path / "badlabel", {{"a.png", p0}, {"a.cls", "cat"}, {"b.png", p1}, {"b.cls", "2"}});
    CHECK(read_error(d.path / "badlabel").find("label 'a.cls' is 'cat', not a class number") != std::string::npos);
    hand_set(d.path / "biglabel", {{"a.png", p0}, {"a.cls", "5"}, {"b.png", p1}, {"b.cls", "2"}});
    CHECK(read_error(d.path / "biglabel").find("outside the manifest's 5 classes") != std::string::npos);
    // an image of another size than the manifest's
    hand_set(d.path / "size", {{"a.png", png_of(1, 9, 6)}, {"a.cls", "1"}, {"b.png", p1}, {"b.cls", "2"}});
    CHECK(read_error(d.path / "size").find("image 'a.png' is 6x9 pixels, the manifest says 6x8") != std::string::npos);
    // an image declaring 4x the manifest's pixels or more is refused from its header, undecoded
    hand_set(d.path / "huge", {{"a.png", png_of(1, 40, 6)}, {"a.cls", "1"}, {"b.png", p1}, {"b.cls", "2"}});
    CHECK(read_error(d.path / "huge").find("image 'a.png': 6x40 pixels (240), more than the 192 of 4x the "
                                           "manifest's height x width") != std::string::npos);
    // an image that does not decode
    hand_set(d.path / "junk", {{"a.png", "not an image"}, {"a.cls", "1"}, {"b.png", p1}, {"b.cls", "2"}});
    CHECK(read_error(d.path / "junk").find("image 'a.png': ") != std::string::npos);
    // a member without KEY.EXT
    hand_set(d.path / "noext", {{"a", p0}, {"a.cls", "1"}});
    CHECK(read_error(d.path / "noext").find("member 'a' has no KEY.EXTENSION name") != std::string::npos);
    // more samples than the manifest says
    hand_set(d.path / "more", {{"a.png", p0}, {"a.cls", "1"}, {"b.png", p1}, {"b.cls", "2"}}, 1);
    CHECK(read_error(d.path / "more").find("holds more samples than the 1 the manifest says") != std::string::npos);

    // truncated shard and corrupt header, in a set the writer made
    ssl::data::write_shards(make_set(8), d.path / "w", 4);
    const auto shard = d.path / "w" / "shard-000001.tar";
    std::string bytes = ssl_test::read_text(shard);
    write_text(shard, bytes.substr(0, 2000));
    std::string err = read_error(d.path / "w");
    CHECK(err.find("tar '" + shard.string() + "'") != std::string::npos);
    CHECK(err.find("truncated") != std::string::npos);
    std::string bad = bytes;
    bad[1] ^= 0x20;  // a byte of the first member's name: the checksum no longer matches
    write_text(shard, bad);
    err = read_error(d.path / "w");
    CHECK(err.find("tar '" + shard.string() + "': at byte 0: corrupt member header") != std::string::npos);
    CHECK(err.find("checksum") != std::string::npos);
}

TEST_CASE("shards: memory is the buffer's, not the set's: the buffer never holds more than its size") {
    // a buffer of 3 over 40 samples: the stream still yields them all, and
    // the first batch can only hold samples among the first 3 + 4 read
    ssl_test::temp_dir d("shards_buffer");
    ssl::data::write_shards(make_set(40), d.path, 40);
    const auto set = shard_set::open(d.path);
    shard_stream s(set, {.batch_size = 4, .buffer = 3, .seed = 5});
    auto r = s.epoch(0);
    auto it = r.begin();
    for (std::size_t i : it->indices) CHECK(i < 3 + 4);
}

}  // namespace test_shards
