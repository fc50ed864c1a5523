// `ssl shards`: writes a data set as WebDataset-style tar shards and a
// manifest (ssl/data/shards.hpp), which `ssl train --data shards:DIR`
// streams from disk (README "Data larger than memory").
//
//   ssl shards --data SPEC --output DIR [--samples-per-shard 10000]
//              [--image-size N] [--channels 1|3] [--max-data-mb 1024] [--max-image-pixels N|WxH]
//
// SPEC is any form --data takes (its train split is written); synthetic:N
// writes N images of the synthetic set one at a time (memory: one image),
// for sets larger than memory. Images are stored as PNG.
#include "common.hpp"

#include <ssl/data/synthetic.hpp>

#include <cstdio>

namespace cli {

namespace {

struct shards_options {
    std::string data, output;
    std::size_t samples_per_shard = 10000, image_size = 0, channels = 0, max_data_mb = 1024;
    std::uint64_t max_image_pixels = ssl::data::default_max_image_pixels;
    bool size_given = false, channels_given = false;
};

shards_options& opts() {
    static shards_options o;
    return o;
}

CLI::App*& command() {
    static CLI::App* c = nullptr;
    return c;
}

/// synthetic:N, one image at a time (the set `--data synthetic` draws from, seed 1, for any N).
ssl::data::shard_manifest write_synthetic(const std::string& count, const shards_options& o) {
    const std::size_t n = ssl::parse_unsigned(count, "--data synthetic:N", std::size_t(1) << 40);
    ssl::require(n > 0, "--data synthetic:N needs N > 0");
    const ssl::data::synthetic gen({.size = n, .classes = 10, .height = 28, .width = 28, .seed = 1});
    ssl::data::shard_writer w(o.output, {.samples_per_shard = o.samples_per_shard, .channels = 1, .height = 28,
                                         .width = 28, .classes = 10, .name = "synthetic:" + count});
    std::vector<float> f(28 * 28);
    std::vector<std::uint8_t> px(f.size());
    for (std::size_t i = 0; i < n; ++i) {
        gen.image(i, f.data());
        for (std::size_t j = 0; j < f.size(); ++j)  // as synthetic::to_dataset maps them
            px[j] = static_cast<std::uint8_t>(std::clamp((f[j] + 1.5f) / 3.0f, 0.0f, 1.0f) * 255.0f + 0.5f);
        w.add(px.data(), gen.label(i));
    }
    return w.finish();
}

}  // namespace

CLI::App* add_shards_command(CLI::App& app) {
    auto& o = opts();
    auto* c = app.add_subcommand("shards", "write a data set as tar shards + manifest.json, which `ssl train --data "
                                           "shards:DIR` streams from disk (README \"Data larger than memory\")");
    c->add_option("--data", o.data,
                  "the set to write (its train split): fashion-mnist[:DIR] | cifar10:DIR | cifar100:DIR | folder:DIR | "
                  "idx:IMAGES[,LABELS] | shards:DIR | synthetic | synthetic:N (N synthetic images, written one at a time)")
        ->required();
    c->add_option("--output", o.output, "the directory to write (new or empty)")->required();
    c->add_option("--samples-per-shard", o.samples_per_shard, "samples per tar shard (the last may hold fewer)")
        ->check(CLI::Range(std::size_t(1), std::size_t(1) << 30));
    c->add_option("--image-size", o.image_size, "folder:DIR data: the side images are brought to")->check(image_side());
    c->add_option("--channels", o.channels, "folder:DIR data: 1 (grey) or 3 (RGB)")->check(channel_count());
    c->add_option("--max-data-mb", o.max_data_mb, "the most data read into memory, in MiB (as ssl train's)")
        ->check(CLI::Range(std::size_t(1), std::size_t(1) << 40));
    c->add_option("--max-image-pixels", o.max_image_pixels,
                  "folder:DIR data: the most pixels one image file may declare, N or WxH (as ssl train's)")
        ->transform(pixel_count());
    command() = c;
    return c;
}

int run_shards_command() {
    auto& o = opts();
    o.size_given = command()->count("--image-size") > 0;
    o.channels_given = command()->count("--channels") > 0;
    ssl::data::shard_manifest m;
    if (o.data.rfind("synthetic:", 0) == 0) {
        m = write_synthetic(o.data.substr(10), o);
    } else {
        data_request req{.data = o.data, .max_data_mb = o.max_data_mb, .max_image_pixels = o.max_image_pixels,
                         .image_size = o.image_size,
                         .channels = o.channels, .size_given = o.size_given, .channels_given = o.channels_given,
                         .evaluation = false};
        const auto d = load_data(req);
        for (const auto& line : d.notes) std::printf("%s\n", line.c_str());
        m = ssl::data::write_shards(d.train, o.output, o.samples_per_shard);
    }
    std::printf("wrote %zu images (%zux%zux%zu, %s) in %zu shards of up to %zu to %s (manifest.json); images as PNG\n",
                m.samples, m.channels, m.height, m.width,
                m.classes ? (std::to_string(m.classes) + " classes").c_str() : "unlabelled", m.shards.size(),
                o.samples_per_shard, o.output.c_str());
    return 0;
}

}  // namespace cli
