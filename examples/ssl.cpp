// The `ssl` command-line program: train a self-supervised method on a data
// set and evaluate its features, without writing C++.
//
//   ssl train --method simclr|byol|rotnet --data fashion-mnist|cifar10:DIR|cifar100:DIR|folder:DIR|idx:IMAGES[,LABELS]|synthetic
//             [--backbone resnet18|resnet34|resnet50|convnet] [--width 16] [--batch 256] [--epochs 5]
//             [--lr X] [--seed 0] [--threads N] [--device host|auto|cuda] [--out DIR] [--resume] [--json] [--baseline]
//   ssl eval  --checkpoint DIR/last.safetensors [--data ...]
//   ssl embed --checkpoint DIR/last.safetensors --data ... --output features.safetensors
//   ssl export --checkpoint DIR/last.safetensors --output backbone.safetensors
#include <ssl/byol.hpp>
#include <ssl/data/cifar.hpp>
#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/data/image_folder.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/eval/linear_probe.hpp>
#include <ssl/backbone/convnet.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

namespace fs = std::filesystem;

namespace {

struct run_options {
    std::string method = "simclr";
    std::string data;  // empty: fashion-mnist when installed, else synthetic
    std::string backbone = "resnet18";
    std::size_t width = 16;
    std::string stem = "auto";
    std::size_t batch = 256, epochs = 5, threads = 0, workers = 1, max_steps = 0, train_limit = 0, eval_limit = 0;
    double lr = 0, weight_decay = -1, temperature = 0;
    std::string optimizer;
    std::uint64_t seed = 0;
    std::string device = "auto";
    std::string out;
    bool resume = false, json = false, baseline = false, no_progress = false;
    std::size_t eval_every = 0;
    // eval / embed / export
    std::string checkpoint, output;
};

struct data_sets {
    ssl::data::image_dataset train;       ///< what the method trains on
    ssl::data::image_dataset eval_train;  ///< labelled train split for kNN / linear probe
    std::optional<ssl::data::image_dataset> test;
    std::string name;
};

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}

data_sets load_data(const std::string& spec_in, std::size_t limit, std::size_t eval_limit) {
    std::string spec = spec_in;
    if (spec.empty())
        spec = fs::exists(fs::path(ssl::data::fashion_mnist_default_dir) / "train-images-idx3-ubyte.gz") ||
                       fs::exists(fs::path(ssl::data::fashion_mnist_default_dir) / "train-images-idx3-ubyte")
                   ? "fashion-mnist"
                   : "synthetic";
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon), arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    data_sets d;
    d.name = spec;
    using ssl::data::split;
    if (kind == "fashion-mnist") {
        const fs::path dir = arg.empty() ? fs::path(ssl::data::fashion_mnist_default_dir) : fs::path(arg);
        d.train = ssl::data::load_fashion_mnist(dir, split::train);
        d.test = ssl::data::load_fashion_mnist(dir, split::test);
    } else if (kind == "cifar10" || kind == "cifar100") {
        ssl::require(!arg.empty(), "--data ", kind, ":DIR needs the directory of the binary batches");
        d.train = kind == "cifar10" ? ssl::data::load_cifar10(arg, split::train) : ssl::data::load_cifar100(arg, split::train);
        d.test = kind == "cifar10" ? ssl::data::load_cifar10(arg, split::test) : ssl::data::load_cifar100(arg, split::test);
    } else if (kind == "folder") {
        ssl::require(!arg.empty(), "--data folder:DIR needs a directory");
        d.train = ssl::data::load_image_folder(arg, {.height = 32, .width = 32, .channels = 3});
    } else if (kind == "idx") {
        ssl::require(!arg.empty(), "--data idx:IMAGES[,LABELS] needs the IDX images file");
        const auto comma = arg.find(',');
        d.train = comma == std::string::npos ? ssl::data::read_idx(arg)
                                             : ssl::data::read_idx(arg.substr(0, comma), arg.substr(comma + 1));
    } else if (kind == "synthetic") {
        d.train = ssl::data::synthetic({.size = 4096, .classes = 10, .height = 28, .width = 28, .seed = 1}).to_dataset();
        d.test = ssl::data::synthetic({.size = 1000, .classes = 10, .height = 28, .width = 28, .seed = 2}).to_dataset();
    } else {
        throw ssl::value_error("--data '" + spec +
                               "' is not one of fashion-mnist[:DIR], cifar10:DIR, cifar100:DIR, folder:DIR, "
                               "idx:IMAGES[,LABELS], synthetic");
    }
    d.eval_train = d.train;
    if (eval_limit && eval_limit < d.eval_train.size()) d.eval_train = d.train.subset(iota(eval_limit));
    if (limit && limit < d.train.size()) d.train = d.train.subset(iota(limit));
    return d;
}

struct eval_numbers {
    std::optional<double> knn, linear;
};

/// kNN (k = 200, T = 0.1) and a linear probe on frozen features, when both
/// sets are labelled.
template <class M>
eval_numbers evaluate(M& m, const data_sets& d) {
    eval_numbers r;
    if (!d.test || !d.eval_train.labelled() || !d.test->labelled()) return r;
    auto embed = [&](const ssl::data::image_dataset& s) {
        ssl::tensor<float> out({s.size(), m.backbone().output_dim()});
        const std::size_t chunk = 2048;
        for (std::size_t b = 0; b < s.size(); b += chunk) {
            std::vector<std::size_t> idx;
            for (std::size_t i = b; i < std::min(s.size(), b + chunk); ++i) idx.push_back(i);
            auto f = m.embed(s.batch(idx));
            std::copy(f.begin(), f.end(), out.data() + b * out.dim(1));
        }
        return out;
    };
    auto ftr = embed(d.eval_train), fte = embed(*d.test);
    r.knn = 100.0 * ssl::eval::knn_evaluate(ftr, d.eval_train.labels, fte, d.test->labels, {.k = 200, .temperature = 0.1}).top1;
    r.linear = 100.0 * ssl::eval::linear_probe(ftr, d.eval_train.labels, fte, d.test->labels, {}).test_top1;
    return r;
}

std::string fmt(const std::optional<double>& v) {
    if (!v) return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", *v);
    return b;
}

template <class B>
typename B::options_type backbone_options(const run_options& o, const ssl::data::image_dataset& d) {
    if constexpr (std::is_same_v<typename B::options_type, ssl::convnet_options>) {
        return {.in_channels = d.channels(), .width = o.width, .seed = o.seed};
    } else {
        const bool cifar = o.stem == "cifar" || (o.stem == "auto" && d.height() <= 64);
        return {.in_channels = d.channels(), .width = o.width, .stem = cifar ? ssl::stem::cifar : ssl::stem::imagenet,
                .seed = o.seed};
    }
}

template <class B>
auto make_method_config(const run_options& o, const ssl::data::image_dataset& d) {
    const auto bo = backbone_options<B>(o, d);
    const std::size_t size = d.height(), ch = d.channels();
    ssl::require(d.height() == d.width(), "the images must be square, got ", d.height(), "x", d.width());
    return std::tuple{ssl::simclr_config<B>(bo, size, ch), ssl::byol_config<B>(bo, size, ch), ssl::rotnet_config<B>(bo, size, ch)};
}

template <class M>
int run_method(M& m, const run_options& o, const data_sets& d, const std::string& method_name,
               double default_lr) {
    const auto t_start = std::chrono::steady_clock::now();
    eval_numbers base;
    if (o.baseline) {
        M fresh(m.cfg());
        base = evaluate(fresh, d);
        if (!o.json) std::printf("random-init encoder: kNN %s %%, linear probe %s %%\n", fmt(base.knn).c_str(), fmt(base.linear).c_str());
    }
    ssl::trainer_config tc;
    tc.epochs = o.epochs;
    tc.batch = o.batch;
    tc.lr = o.lr > 0 ? o.lr : default_lr * static_cast<double>(o.batch) / 256.0;
    tc.optimizer = o.optimizer.empty() ? "sgd" : o.optimizer;
    tc.weight_decay = o.weight_decay >= 0 ? o.weight_decay : 5e-4;
    tc.seed = o.seed;
    tc.workers = o.workers;
    tc.out_dir = o.out.empty() ? fs::path("runs") / method_name : fs::path(o.out);
    tc.resume = o.resume;
    tc.progress = !o.no_progress;
    tc.max_steps = o.max_steps;
    tc.metadata = {{"method", method_name}, {"backbone", o.backbone}, {"width", std::to_string(o.width)},
                   {"stem", o.stem}, {"data", d.name}, {"image_size", std::to_string(d.train.height())},
                   {"channels", std::to_string(d.train.channels())}, {"seed", std::to_string(o.seed)}};
    ssl::trainer<M> t(m, d.train, tc);
    if (!o.json)
        std::printf("training %s, %s width %zu, on %s (%zu images %zux%zux%zu), batch %zu, %zu epochs, lr %.4g, %zu threads\n",
                    method_name.c_str(), o.backbone.c_str(), o.width, d.name.c_str(), d.train.size(), d.train.channels(),
                    d.train.height(), d.train.width(), o.batch, o.epochs, tc.lr, ssl::num_threads());
    std::vector<std::pair<std::string, double>> last_eval;
    if (o.eval_every) {
        t.on_epoch_end = [&](std::size_t epoch) -> std::vector<std::pair<std::string, double>> {
            if ((epoch + 1) % o.eval_every != 0) return {};
            auto e = evaluate(m, d);
            std::vector<std::pair<std::string, double>> r;
            if (e.knn) r.emplace_back("kNN", *e.knn);
            if (e.linear) r.emplace_back("linear", *e.linear);
            if (!o.json) std::fprintf(stderr, "epoch %zu: kNN %s %%, linear %s %%\n", epoch + 1, fmt(e.knn).c_str(), fmt(e.linear).c_str());
            return r;
        };
    }
    const auto s = t.fit();
    const auto e = evaluate(m, d);
    // the backbone alone, with torchvision names
    ssl::save_checkpoint(tc.out_dir / "backbone.safetensors", m.backbone(), tc.metadata);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (!o.json) {
        std::printf("\n== %s summary ==\n", method_name.c_str());
        std::printf("data          %s (%zu train images; evaluation %zu train / %zu test)\n", d.name.c_str(),
                    d.train.size(), d.eval_train.size(), d.test ? d.test->size() : 0);
        std::printf("backbone      %s width %zu (%zu parameters)\n", o.backbone.c_str(), o.width, ssl::parameter_count(m.backbone()));
        std::printf("epochs        %zu (%zu steps)%s\n", s.epochs_done, s.steps, s.interrupted ? " -- interrupted" : "");
        std::printf("loss          %.4f -> %.4f\n", s.first_loss, s.last_loss);
        std::printf("train time    %.1f s (%.0f images/s), total %.1f s\n", s.seconds, s.images_per_second, total);
        std::printf("kNN top-1     %s %%%s\n", fmt(e.knn).c_str(), o.baseline ? ("   (random init " + fmt(base.knn) + " %)").c_str() : "");
        std::printf("linear top-1  %s %%%s\n", fmt(e.linear).c_str(), o.baseline ? ("   (random init " + fmt(base.linear) + " %)").c_str() : "");
        std::printf("output        %s (last.safetensors, backbone.safetensors, metrics.csv, plot.svg)\n", tc.out_dir.string().c_str());
    }
    nlohmann::json j{{"method", method_name}, {"backbone", o.backbone}, {"width", o.width}, {"data", d.name},
                     {"epochs", s.epochs_done}, {"steps", s.steps}, {"train_seconds", s.seconds},
                     {"total_seconds", total}, {"images_per_second", s.images_per_second},
                     {"first_loss", s.first_loss}, {"last_loss", s.last_loss}, {"interrupted", s.interrupted},
                     {"out", tc.out_dir.string()}};
    j["knn_top1"] = e.knn ? nlohmann::json(*e.knn) : nlohmann::json();
    j["linear_top1"] = e.linear ? nlohmann::json(*e.linear) : nlohmann::json();
    if (o.baseline) {
        j["random_init_knn_top1"] = base.knn ? nlohmann::json(*base.knn) : nlohmann::json();
        j["random_init_linear_top1"] = base.linear ? nlohmann::json(*base.linear) : nlohmann::json();
    }
    if (o.json) std::printf("%s\n", j.dump().c_str());
    return s.interrupted ? 130 : 0;
}

template <class B>
int train_with(const run_options& o, const data_sets& d) {
    auto [sc, bc, rc] = make_method_config<B>(o, d.train);
    if (o.method == "simclr") {
        if (o.temperature > 0) sc.loss.temperature = o.temperature;
        ssl::simclr<B> m(sc);
        return run_method(m, o, d, "simclr", 0.3);
    }
    if (o.method == "byol") {
        ssl::byol<B> m(bc);
        return run_method(m, o, d, "byol", 0.3);
    }
    ssl::rotnet<B> m(rc);
    return run_method(m, o, d, "rotnet", 0.1);
}

int train(const run_options& o) {
    if (o.device == "cuda")
        throw ssl::value_error("--device cuda: the CUDA backend is not built yet; use --device host (or auto)");
    if (o.device == "auto" && !o.json) std::printf("device: host (no CUDA backend in this build)\n");
    auto d = load_data(o.data, o.train_limit, o.eval_limit);
    if (o.backbone == "resnet18") return train_with<ssl::resnet18<float>>(o, d);
    if (o.backbone == "resnet34") return train_with<ssl::resnet34<float>>(o, d);
    if (o.backbone == "resnet50") return train_with<ssl::resnet50<float>>(o, d);
    return train_with<ssl::convnet<float>>(o, d);
}

/// Rebuilds the method a checkpoint was trained with (from its metadata),
/// loads it, and runs fn(method, options).
template <class F>
int with_checkpoint(run_options o, F&& fn) {
    auto file = ssl::io::read_safetensors(o.checkpoint);
    auto meta = [&](const char* k) -> std::string {
        auto it = file.metadata.find(k);
        if (it == file.metadata.end())
            throw ssl::io_error(std::string("checkpoint '") + o.checkpoint + "' has no '" + k +
                                "' in its metadata (was it written by `ssl train`?)");
        return it->second;
    };
    o.method = meta("method");
    o.backbone = meta("backbone");
    o.width = std::stoul(meta("width"));
    o.stem = meta("stem");
    o.seed = std::stoull(meta("seed"));
    if (o.data.empty()) o.data = meta("data");
    auto d = load_data(o.data, 0, o.eval_limit);
    auto go = [&]<class B>() -> int {
        auto [sc, bc, rc] = make_method_config<B>(o, d.train);
        auto load = [&](auto& m) {
            auto rep = ssl::load_state_dict(m, file, false, o.checkpoint);
            if (!rep.missing.empty())
                throw ssl::io_error("checkpoint '" + o.checkpoint + "' lacks " + std::to_string(rep.missing.size()) +
                                    " tensors of this model, e.g. '" + rep.missing.front() + "'");
        };
        if (o.method == "simclr") { ssl::simclr<B> m(sc); load(m); return fn(m, d); }
        if (o.method == "byol") { ssl::byol<B> m(bc); load(m); return fn(m, d); }
        ssl::rotnet<B> m(rc); load(m); return fn(m, d);
    };
    if (o.backbone == "resnet18") return go.template operator()<ssl::resnet18<float>>();
    if (o.backbone == "resnet34") return go.template operator()<ssl::resnet34<float>>();
    if (o.backbone == "resnet50") return go.template operator()<ssl::resnet50<float>>();
    return go.template operator()<ssl::convnet<float>>();
}

}  // namespace

int main(int argc, char** argv) {
    run_options o;
    CLI::App app{"ssl: self-supervised visual representation learning"};
    app.require_subcommand(1);
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later flags win
    auto add_common = [&](CLI::App* c) {
        c->add_option("--data", o.data,
                      "fashion-mnist[:DIR] | cifar10:DIR | cifar100:DIR | folder:DIR | idx:IMAGES[,LABELS] | synthetic");
        c->add_option("--threads", o.threads, "host threads (0: all cores)");
        c->add_option("--eval-limit", o.eval_limit, "use only the first N labelled train images as the kNN / probe train set");
    };
    auto* tr = app.add_subcommand("train", "train a method and evaluate its features");
    add_common(tr);
    tr->add_option("--method", o.method, "simclr, byol or rotnet")->check(CLI::IsMember({"simclr", "byol", "rotnet"}));
    tr->add_option("--backbone", o.backbone)->check(CLI::IsMember({"resnet18", "resnet34", "resnet50", "convnet"}));
    tr->add_option("--width", o.width, "base width (64 = standard)")->check(CLI::Range(1, 1024));
    tr->add_option("--stem", o.stem, "auto (cifar for images up to 64 px), cifar or imagenet")
        ->check(CLI::IsMember({"auto", "cifar", "imagenet"}));
    tr->add_option("--batch", o.batch)->check(CLI::Range(2, 1 << 16));
    tr->add_option("--epochs", o.epochs)->check(CLI::Range(1, 100000));
    tr->add_option("--lr", o.lr, "peak learning rate (default: the method's, scaled by batch/256)")->check(CLI::PositiveNumber);
    tr->add_option("--optimizer", o.optimizer, "sgd, lars, adam or adamw")->check(CLI::IsMember({"sgd", "lars", "adam", "adamw"}));
    tr->add_option("--weight-decay", o.weight_decay)->check(CLI::NonNegativeNumber);
    tr->add_option("--temperature", o.temperature, "NT-Xent temperature (simclr)")->check(CLI::PositiveNumber);
    tr->add_option("--seed", o.seed);
    tr->add_option("--device", o.device, "host, auto or cuda")->check(CLI::IsMember({"host", "auto", "cuda"}));
    tr->add_option("--out", o.out, "output directory (default runs/METHOD)");
    tr->add_option("--workers", o.workers, "loader threads");
    tr->add_option("--max-steps", o.max_steps, "stop after this many steps");
    tr->add_option("--train-limit", o.train_limit, "use only the first N training images");
    tr->add_option("--eval-every", o.eval_every, "evaluate every N epochs (0: at the end only)");
    tr->add_flag("--resume", o.resume, "continue from OUT/last.safetensors");
    tr->add_flag("--json", o.json, "print the summary as one JSON object on the last line");
    tr->add_flag("--baseline", o.baseline, "also evaluate a random-init encoder");
    tr->add_flag("--no-progress", o.no_progress, "no progress line");
    auto* ev = app.add_subcommand("eval", "kNN and linear-probe accuracy of a checkpoint's backbone");
    add_common(ev);
    ev->add_option("--checkpoint", o.checkpoint, "a checkpoint written by ssl train")->required()->check(CLI::ExistingFile);
    auto* em = app.add_subcommand("embed", "write a checkpoint's features of a data set to a safetensors file");
    add_common(em);
    em->add_option("--checkpoint", o.checkpoint)->required()->check(CLI::ExistingFile);
    em->add_option("--output", o.output, "features.safetensors")->required();
    auto* ex = app.add_subcommand("export", "write the backbone alone with torchvision parameter names");
    ex->add_option("--checkpoint", o.checkpoint)->required()->check(CLI::ExistingFile);
    ex->add_option("--output", o.output, "backbone.safetensors")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        if (o.threads) ssl::set_num_threads(o.threads);
        if (tr->parsed()) return train(o);
        if (ev->parsed())
            return with_checkpoint(o, [](auto& m, const data_sets& d) {
                auto e = evaluate(m, d);
                std::printf("kNN top-1 %s %%, linear probe top-1 %s %%\n", fmt(e.knn).c_str(), fmt(e.linear).c_str());
                return 0;
            });
        if (em->parsed())
            return with_checkpoint(o, [&](auto& m, const data_sets& d) {
                ssl::io::safetensors_file f;
                f.tensors["train_features"] = ssl::io::to_stored(m.embed(d.train.batch(iota(d.train.size()))));
                if (d.train.labelled()) {
                    ssl::tensor<std::int64_t> l({d.train.size()});
                    std::copy(d.train.labels.begin(), d.train.labels.end(), l.begin());
                    f.tensors["train_labels"] = ssl::io::to_stored(l);
                }
                ssl::io::write_safetensors(o.output, f);
                std::printf("wrote %zu features to %s\n", d.train.size(), o.output.c_str());
                return 0;
            });
        return with_checkpoint(o, [&](auto& m, const data_sets&) {
            ssl::save_checkpoint(o.output, m.backbone(), {{"source", o.checkpoint}});
            std::printf("wrote the backbone (torchvision names) to %s\n", o.output.c_str());
            return 0;
        });
    } catch (const ssl::error& e) {
        std::fprintf(stderr, "ssl: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ssl: error: %s\n", e.what());
        return 2;
    }
}
