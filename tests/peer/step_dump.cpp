// Differential harness, our side (issue 24): for SimCLR, BYOL, MoCo v2,
// RotNet and Jigsaw with the `ssl` program's settings at 28 x 28 x 1, writes to
// OUT/<method>.safetensors what tests/peer/step_check.py needs to redo the
// same steps in PyTorch from the same start:
//   images             the batch (N, 1, 28, 28) in [0, 1]: half thin strokes on black, half dense texture
//   init/<name>        every parameter and buffer before the first step (target state included)
//   s<k>/view<v>       the views step k trained on (made by our augmentation)
//   s<k>/labels        the pretext labels of step k, when the augmentation makes some
//   s<k>/shuffle<v>    MoCo: the key encoder's batch-norm groups of view v (a permutation cut in equal parts)
//   s<k>/loss          the loss of step k
//   s<k>/grad/<name>   the gradient of every parameter at step k
//   s<k>/after/<name>  every parameter and buffer after the optimizer and after_step of step k
// The optimizer is the trainer's SGD (momentum 0.9, weight decay 5e-4 on every
// parameter, constant lr 0.1 here). Step k uses epoch k (new views each step).
// g++ 12 warns falsely (-Wrestrict) about std::string concatenations in this file.
#pragma GCC diagnostic ignored "-Wrestrict"
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>

#include <ssl/byol.hpp>
#include <ssl/core/parse.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/core/rng.hpp>
#include <ssl/io/safetensors.hpp>
#include <ssl/jigsaw.hpp>
#include <ssl/moco.hpp>
#include <ssl/optim/sgd.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/simclr.hpp>

namespace {

constexpr std::size_t side = 28;

/// Half the batch: 2-3 anti-aliased strokes about 1.2 px wide on black; the
/// other half: a dense texture of three random plane waves in [0, 1].
ssl::tensor<float> make_images(std::size_t n, std::uint64_t seed, bool sparse) {
    ssl::philox g(seed, 0);
    ssl::tensor<float> x(ssl::shape_t{n, 1, side, side});
    for (std::size_t i = 0; i < n; ++i) {
        float* img = x.data() + i * side * side;
        if (sparse && i % 2 == 0) {
            for (std::size_t p = 0; p < side * side; ++p) img[p] = 0;
            const int strokes = 2 + static_cast<int>(g.uniform() * 2);
            for (int s = 0; s < strokes; ++s) {
                const double x0 = 6 + 16 * g.uniform(), y0 = 6 + 16 * g.uniform();
                const double x1 = x0 + 10 * (g.uniform() - 0.5), y1 = y0 + 10 * (g.uniform() - 0.5);
                for (std::size_t r = 0; r < side; ++r)
                    for (std::size_t c = 0; c < side; ++c) {
                        const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy + 1e-12;
                        const double t = std::clamp(((c - x0) * dx + (r - y0) * dy) / len2, 0.0, 1.0);
                        const double ex = c - (x0 + t * dx), ey = r - (y0 + t * dy);
                        const double v = std::clamp(1.2 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
                        img[r * side + c] = std::max(img[r * side + c], static_cast<float>(v));
                    }
            }
        } else {
            double f[3][3];
            for (auto& w : f)
                for (auto& v : w) v = g.uniform();
            for (std::size_t r = 0; r < side; ++r)
                for (std::size_t c = 0; c < side; ++c) {
                    double v = 0;
                    for (auto& w : f) v += std::sin(0.9 * (w[0] - 0.5) * r + 0.9 * (w[1] - 0.5) * c + 6.3 * w[2]);
                    img[r * side + c] = static_cast<float>(0.5 + v / 6);
                }
        }
    }
    return x;
}

template <class M>
void run(const std::string& path, M& m, const ssl::tensor<float>& images, std::size_t steps) {
    ssl::io::safetensors_file f;
    // Keys are built with += (g++ 12 warns falsely, -Wrestrict, about `s + "x/" + n`).
    auto put2 = [&](std::string key, const std::string& name, const ssl::tensor<float>& t) {
        key += name;
        f.tensors[key] = ssl::io::to_stored(t);
    };
    auto put = [&](const std::string& key, const ssl::tensor<float>& t) { put2(key, "", t); };
    auto put_state = [&](const std::string& tag) {
        m.for_each_parameter([&](const std::string& n, auto& p) { put2(tag, n, p.value); }, "");
        m.for_each_buffer(
            [&](const std::string& n, auto& t) {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(t)>, ssl::tensor<float>>) put2(tag, n, t);
            },
            "");
    };
    put("images", images);
    put_state("init/");
    std::vector<std::size_t> ids(images.dim(0));
    std::iota(ids.begin(), ids.end(), std::size_t{0});
    ssl::optim::sgd<float> opt(m, {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
    for (std::size_t k = 0; k < steps; ++k) {
        const ssl::step_context ctx{.seed = 11, .epoch = k, .step = k, .total_steps = steps};
        const std::string s = "s" + std::to_string(k) + "/";
        auto vb = m.augmentation().make_views(images, ids, ctx.seed, ctx.epoch);
        for (std::size_t v = 0; v < vb.views.size(); ++v) put(s + "view" + std::to_string(v), vb.views[v]);
        if (!vb.labels.empty()) {
            ssl::tensor<float> l(ssl::shape_t{vb.labels.size()});
            for (std::size_t i = 0; i < vb.labels.size(); ++i) l.data()[i] = static_cast<float>(vb.labels[i]);
            put(s + "labels", l);
        }
        if constexpr (requires { m.target().bn_groups(std::size_t{}, std::size_t{}); }) {
            // MoCo's key encoder: the shuffled batch-norm groups of each view, concatenated
            for (std::size_t v = 0; v < 2; ++v) {
                ssl::tensor<float> perm(ssl::shape_t{images.dim(0)});
                std::size_t at = 0;
                for (const auto& grp : m.target().bn_groups(images.dim(0), v))
                    for (std::size_t i : grp) perm.data()[at++] = static_cast<float>(i);
                put(s + "shuffle" + std::to_string(v), perm);
            }
        }
        ssl::zero_grad(m);
        auto out = m.train_step(images, ids, ctx);
        ssl::tensor<float> loss(ssl::shape_t{1});
        loss.data()[0] = static_cast<float>(out.loss);
        put(s + "loss", loss);
        m.for_each_parameter([&](const std::string& n, auto& p) { put2(s + "grad/", n, p.grad); }, "");
        opt.step();
        m.after_step(std::move(out), ctx);
        put_state(s + "after/");
    }
    ssl::io::write_safetensors(path, f);
}

}  // namespace

int main(int argc, char** argv) try {
    const char* usage =
        "usage: peer_step_dump OUT_DIR [--steps K] [--dense] [--plain-conv] [--images IDX_FILE --count N]\n"
        "                      [--width W] [--init-seed S] [--methods simclr,byol,rotnet,moco,jigsaw]\n";
    if (argc < 2) {
        std::cerr << usage;
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::size_t steps = 2, count = 16, width = 8, init_seed = 3;
    bool sparse = true;
    std::string idx, methods = "simclr,byol,rotnet,moco,jigsaw";
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw ssl::value_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--steps") steps = ssl::parse_unsigned(value(), "--steps");
        else if (a == "--dense") sparse = false;  // every image a dense texture
        else if (a == "--plain-conv") {           // im2col + GEMM everywhere (bisecting a mismatch)
            ssl::backend::host::winograd::enabled = false;
            ssl::backend::host::direct::enabled = false;
        } else if (a == "--images") idx = value();
        else if (a == "--count") count = ssl::parse_unsigned(value(), "--count");
        else if (a == "--width") width = ssl::parse_unsigned(value(), "--width");
        else if (a == "--init-seed") init_seed = ssl::parse_unsigned(value(), "--init-seed");
        else if (a == "--methods") methods = value();
        else throw ssl::value_error("unknown option '" + a + "'\n" + usage);
    }
    auto wanted = [&](const std::string& m) { return ("," + methods + ",").find("," + m + ",") != std::string::npos; };
    ssl::tensor<float> images = make_images(count, 5, sparse);
    if (!idx.empty()) {  // the first `count` images of an IDX file (28 x 28 x 1), in [0, 1]
        const auto raw = ssl::data::read_idx_images(idx);
        ssl::require(raw.rank() >= 3 && raw.dim(0) >= count && raw.numel() / raw.dim(0) == side * side, idx,
                     ": need at least ", count, " images of 28 x 28");
        for (std::size_t i = 0; i < count * side * side; ++i) images.data()[i] = raw.data()[i] / 255.0f;
    }
    const ssl::resnet18<float>::options_type bb{.in_channels = 1, .width = width, .stem = ssl::stem::cifar, .seed = init_seed};
    if (wanted("simclr")) {
        ssl::simclr<> m(ssl::simclr_config<ssl::resnet18<float>>(bb, side, 1));
        run((dir / "simclr.safetensors").string(), m, images, steps);
    }
    if (wanted("byol")) {
        ssl::byol<> m(ssl::byol_config<ssl::resnet18<float>>(bb, side, 1));
        run((dir / "byol.safetensors").string(), m, images, steps);
    }
    if (wanted("rotnet")) {
        ssl::rotnet<> m(ssl::rotnet_config<ssl::resnet18<float>>(bb, side, 1));
        run((dir / "rotnet.safetensors").string(), m, images, steps);
    }
    if (wanted("moco")) {
        ssl::moco_v2<> m(ssl::moco_v2_config<ssl::resnet18<float>>(bb, side, 1));
        run((dir / "moco.safetensors").string(), m, images, steps);
    }
    if (wanted("jigsaw")) {
        ssl::jigsaw<> m(ssl::jigsaw_config<ssl::resnet18<float>>(bb, side, 1));
        run((dir / "jigsaw.safetensors").string(), m, images, steps);
    }
    std::cout << "written " << steps << " steps to " << dir << "\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "peer_step_dump: " << e.what() << "\n";
    return 1;
}
