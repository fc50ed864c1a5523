// `ssl clips`: writes synthetic clips of real objects in motion (ssl/video/
// synthetic_clips.hpp) as a clip folder, which `ssl train --method motion
// --data clips:DIR` reads (README "Learning by watching objects move").
//
//   ssl clips --output DIR [--truth DIR] [--clips 200] [--frames 8] [--size 28]
//             [--data SPEC] [--seed 0]
//
// The sprites are the images of SPEC's train split (default fashion-mnist);
// --truth writes each frame's true moving-object mask (0 / 255) in the same
// layout, for measuring pseudo-masks and for the bounds (--motion-masks).
#include "common.hpp"

#include <ssl/data/clips.hpp>
#include <ssl/video/synthetic_clips.hpp>

#include <cstdio>

namespace cli {

namespace {

struct clips_options {
    std::string data, output, truth;
    std::size_t clips = 200, frames = 8, size = 28, max_sprites = 2, train_limit = 0;
    std::uint64_t seed = 0;
};

clips_options& clips_opts() {
    static clips_options o;
    return o;
}

CLI::App*& command_clips() {
    static CLI::App* c = nullptr;
    return c;
}

}  // namespace

CLI::App* add_clips_command(CLI::App& app) {
    auto& o = clips_opts();
    auto* c = app.add_subcommand("clips", "write synthetic clips of real objects moving over a panning textured "
                                          "background as a clip folder, for `ssl train --method motion --data clips:DIR`");
    c->add_option("--output", o.output, "the directory to write: OUT/NNNNNN/0000.png, 0001.png, ...")->required();
    c->add_option("--truth", o.truth, "also write each frame's true moving-object mask (0 / 255) here, in the same layout");
    c->add_option("--clips", o.clips, "clips to write")->check(CLI::Range(std::size_t(1), std::size_t(1) << 24));
    c->add_option("--frames", o.frames, "frames per clip")->check(CLI::Range(std::size_t(2), std::size_t(1000)));
    c->add_option("--size", o.size, "frame side in pixels")->check(CLI::Range(std::size_t(16), std::size_t(1024)));
    c->add_option("--max-sprites", o.max_sprites, "1..N objects per clip (some of them still)")
        ->check(CLI::Range(std::size_t(1), std::size_t(16)));
    c->add_option("--data", o.data, "the sprites: the images of this set's train split (default fashion-mnist when "
                                    "installed, else synthetic); objects bright on a dark background");
    c->add_option("--train-limit", o.train_limit, "use only the first N images of --data as sprites");
    c->add_option("--seed", o.seed, "clip i of a seed is the same on every machine");
    command_clips() = c;
    return c;
}

int run_clips_command() {
    const auto& o = clips_opts();
    data_request req{.data = o.data, .limit = o.train_limit, .evaluation = false};
    const auto d = load_data(req);
    for (const auto& line : d.notes) std::printf("%s\n", line.c_str());
    ssl::video::synthetic_clip_options co{.clips = o.clips, .frames = o.frames, .size = o.size,
                                          .max_sprites = o.max_sprites, .seed = o.seed};
    // sprites scaled with the frame: half to seven tenths of its side
    co.sprite_min = std::max<std::size_t>(2, o.size / 2);
    co.sprite_max = std::max(co.sprite_min, o.size * 7 / 10);
    std::size_t fg = 0;
    for (std::size_t i = 0; i < o.clips; ++i) {
        const auto clip = ssl::video::make_synthetic_clip(d.train, co, i);
        char name[32];
        std::snprintf(name, sizeof name, "%06zu", i);
        ssl::data::write_clip(std::filesystem::path(o.output) / name, clip.frames);
        if (!o.truth.empty()) ssl::data::write_clip(std::filesystem::path(o.truth) / name, clip.truth, 255);
        for (const auto& t : clip.truth)
            for (auto v : t) fg += v;
    }
    std::printf("wrote %zu clips of %zu frames (%zux%zu, grey; sprites from %s) to %s%s; %.1f %% of the pixels "
                "belong to moving objects\n",
                o.clips, o.frames, o.size, o.size, d.name.c_str(), o.output.c_str(),
                o.truth.empty() ? "" : (", their true masks to " + o.truth).c_str(),
                100.0 * static_cast<double>(fg) / static_cast<double>(o.clips * o.frames * o.size * o.size));
    return 0;
}

}  // namespace cli
