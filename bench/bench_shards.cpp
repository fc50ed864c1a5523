// Streaming shards (ssl/data/shards.hpp): iterates whole epochs of a shard
// directory with a given shuffle buffer and batch, decoding every image, and
// prints samples/s and how many distinct samples each epoch saw. Run under
// /usr/bin/time -v for the peak RSS (bench/README.md, "Data larger than
// memory"): it stays at the buffer's size whatever the set's.
//   bench_shards DIR [BUFFER=10000] [BATCH=256] [EPOCHS=1] [RANKS=1]
//   bench_shards --write DIR N [SAMPLES_PER_SHARD=10000]
//       writes N synthetic 28 x 28 images (ssl::data::synthetic, seed 1, as
//       `ssl shards --data synthetic:N`) one at a time
// With RANKS > 1 each rank's epoch is read in turn (as P processes would),
// padding the tails, and the epoch must cover every sample exactly once.
#include <ssl/data/shards.hpp>
#include <ssl/data/synthetic.hpp>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_shards DIR [BUFFER] [BATCH] [EPOCHS] [RANKS]\n");
        return 2;
    }
    auto arg = [&](int i, std::size_t def) { return argc > i ? std::stoul(argv[i]) : def; };
    if (std::string(argv[1]) == "--write" && argc >= 4) {
        const std::size_t n = std::stoul(argv[3]);
        const ssl::data::synthetic gen({.size = n, .classes = 10, .height = 28, .width = 28, .seed = 1});
        ssl::data::shard_writer w(argv[2], {.samples_per_shard = arg(4, 10000), .channels = 1, .height = 28,
                                            .width = 28, .classes = 10, .name = "synthetic"});
        std::vector<float> f(28 * 28);
        std::vector<std::uint8_t> px(f.size());
        for (std::size_t i = 0; i < n; ++i) {
            gen.image(i, f.data());
            for (std::size_t j = 0; j < f.size(); ++j)
                px[j] = static_cast<std::uint8_t>(std::clamp((f[j] + 1.5f) / 3.0f, 0.0f, 1.0f) * 255.0f + 0.5f);
            w.add(px.data(), gen.label(i));
        }
        const auto m = w.finish();
        std::printf("wrote %zu images in %zu shards to %s\n", m.samples, m.shards.size(), argv[2]);
        return 0;
    }
    const std::size_t buffer = arg(2, 10000), batch = arg(3, 256), epochs = arg(4, 1), ranks = arg(5, 1);
    try {
        const auto set = ssl::data::shard_set::open(argv[1]);
        for (std::size_t e = 0; e < epochs; ++e) {
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<unsigned char> seen(set.size(), 0);
            std::size_t samples = 0, twice = 0, steps = 0;
            double checksum = 0;
            for (std::size_t r = 0; r < ranks; ++r) {
                ssl::data::shard_stream s(set, {.batch_size = batch, .buffer = buffer,
                                                .tail = ranks > 1 ? ssl::data::shard_tail::pad : ssl::data::shard_tail::drop,
                                                .seed = 1, .rank = r, .ranks = ranks});
                for (auto& b : s.epoch(e)) {
                    ++steps;
                    for (std::size_t i = 0; i + b.padding < b.size(); ++i) {
                        twice += seen[b.indices[i]]++ ? 1 : 0;
                        ++samples;
                    }
                    checksum += b.images[0];
                }
            }
            const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::size_t distinct = 0;
            for (auto v : seen) distinct += v ? 1 : 0;
            std::printf("epoch %zu: %zu steps, %zu samples (%zu distinct of %zu, %zu twice) in %.2f s, %.0f samples/s "
                        "(buffer %zu, batch %zu, ranks %zu, checksum %.3f)\n",
                        e, steps, samples, distinct, set.size(), twice, sec, static_cast<double>(samples) / sec, buffer,
                        batch, ranks, checksum);
        }
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "bench_shards: %s\n", ex.what());
        return 1;
    }
    return 0;
}
