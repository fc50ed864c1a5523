// The `ssl` command-line program: train a self-supervised method on a data
// set and evaluate its features, without writing C++.
//
//   ssl train --method simclr|byol|rotnet|moco|instdisc|instdisc-softmax|deepcluster|sela|deepercluster|instance-cls --data fashion-mnist|cifar10:DIR|cifar100:DIR|folder:DIR|idx:IMAGES[,LABELS]|synthetic
//             [--backbone resnet18|resnet34|resnet50|convnet] [--width 16] [--batch 256] [--epochs 5]
//             [--lr X] [--seed 0] [--threads N] [--device host|auto|cuda] [--out DIR] [--resume] [--json] [--baseline]
//   ssl eval  --checkpoint DIR/last.safetensors [--data ...]
//   ssl embed --checkpoint DIR/last.safetensors --data ... --output features.safetensors
//   ssl export --checkpoint DIR/last.safetensors --output backbone.safetensors
#include "common.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>

namespace cli {
// One entry per method, each defined in its own method_<name>.cpp.
extern const method_entry simclr_entry, byol_entry, rotnet_entry, moco_entry, instdisc_entry,
    instdisc_softmax_entry, deepcluster_entry, sela_entry, deepercluster_entry, instance_cls_entry;

namespace {

const std::vector<const method_entry*>& methods() {
    static const std::vector<const method_entry*> all{
        &simclr_entry,      &byol_entry, &rotnet_entry,        &moco_entry,        &instdisc_entry, &instdisc_softmax_entry,
        &deepcluster_entry, &sela_entry, &deepercluster_entry, &instance_cls_entry};
    return all;
}

const method_entry& find_method(const std::string& name) {
    for (const auto* m : methods())
        if (name == m->name) return *m;
    std::string known;
    for (const auto* m : methods()) known += std::string(known.empty() ? "" : ", ") + m->name;
    throw ssl::value_error("unknown method '" + name + "' (" + known + ")");
}

/// Method-specific options given to a method they do not apply to are an
/// error, not silently ignored (`--queue` with simclr would otherwise train
/// something other than what the user asked for without a word).
void reject_foreign_options(const CLI::App& train, const std::string& method) {
    struct rule {
        const char* option;
        std::vector<std::string> methods;
    };
    static const std::vector<rule> rules{
        {"--temperature", {"simclr", "moco", "instdisc", "instdisc-softmax", "instance-cls"}},
        {"--clusters", {"deepcluster", "sela"}},
        {"--queue", {"moco"}},
        {"--symmetric", {"moco"}},
        {"--asymmetric", {"moco"}},
        {"--label-updates", {"sela"}},
        {"--proximal", {"instdisc", "instdisc-softmax"}},
        {"--nce-z", {"instdisc"}},
        {"--first-write", {"instdisc", "instdisc-softmax"}},
        {"--bank-init", {"instdisc", "instdisc-softmax"}},
    };
    for (const auto& r : rules) {
        if (train.get_option(r.option)->count() == 0) continue;
        if (std::find(r.methods.begin(), r.methods.end(), method) != r.methods.end()) continue;
        std::string list;
        for (const auto& m : r.methods) list += (list.empty() ? "" : ", ") + m;
        throw ssl::value_error(std::string(r.option) + " does not apply to --method " + method + " (only to " + list +
                               ")");
    }
}

int train(const run_options& o) {
    if (o.device == "cuda")
        throw ssl::value_error("--device cuda: the CUDA backend is not built yet; use --device host (or auto)");
    if (o.device == "auto" && !o.json) std::printf("device: host (no CUDA backend in this build)\n");
    const auto& m = find_method(o.method);
    auto d = load_data(o.data, o.train_limit, o.eval_limit);
    return m.train(o, d);
}

/// Rebuilds the method a checkpoint was trained with (from its metadata),
/// loads it, and runs the action.
int with_checkpoint(run_options o, checkpoint_action action) {
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
    const auto& m = find_method(o.method);
    auto d = load_data(o.data, 0, o.eval_limit);
    // Methods with per-instance state (a memory bank, pseudo-labels) are
    // rebuilt for the number of images they were trained on.
    const auto it = file.metadata.find("train_images");
    const std::size_t instances = it != file.metadata.end() ? std::stoull(it->second) : d.train.size();
    return m.from_checkpoint(o, file, d, action, instances);
}

}  // namespace
}  // namespace cli

int main(int argc, char** argv) {
    using namespace cli;
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
    std::vector<std::string> names;
    std::string method_help = "the method:";
    for (const auto* m : methods()) {
        names.push_back(m->name);
        method_help += std::string("\n  ") + m->name + ": " + m->summary;
    }
    tr->add_option("--method", o.method, method_help)->check(CLI::IsMember(names));
    tr->add_option("--backbone", o.backbone)->check(CLI::IsMember({"resnet18", "resnet34", "resnet50", "convnet"}));
    tr->add_option("--width", o.width, "base width (64 = standard)")->check(CLI::Range(1, 1024));
    tr->add_option("--stem", o.stem, "auto (cifar for images up to 64 px), cifar or imagenet")
        ->check(CLI::IsMember({"auto", "cifar", "imagenet"}));
    tr->add_option("--batch", o.batch)->check(CLI::Range(2, 1 << 16));
    tr->add_option("--epochs", o.epochs)->check(CLI::Range(1, 100000));
    tr->add_option("--lr", o.lr, "peak learning rate (default: the method's, scaled by batch/256)")->check(CLI::PositiveNumber);
    tr->add_option("--optimizer", o.optimizer, "sgd, lars, adam or adamw")->check(CLI::IsMember({"sgd", "lars", "adam", "adamw"}));
    tr->add_option("--weight-decay", o.weight_decay)->check(CLI::NonNegativeNumber);
    tr->add_option("--crop-scale", o.crop_scale,
                   "smallest area fraction of the random resized crop, in (0, 1] (default: the method's: 0.2 below "
                   "32 px, else 0.08; RotNet 0.5)")
        ->check(CLI::Validator(
            [](std::string& v) {
                double d = 0;
                try {
                    d = std::stod(v);
                } catch (const std::exception&) {
                    return "must be a number in (0, 1], got " + v;
                }
                return d > 0 && d <= 1 ? std::string() : "must be in (0, 1], got " + v;
            },
            "(0, 1]"));
    tr->add_option("--temperature", o.temperature, "contrastive temperature (simclr, moco, instdisc, instdisc-softmax, instance-cls)")->check(CLI::PositiveNumber);
    tr->add_option("--clusters", o.clusters, "k of k-means / Sinkhorn (deepcluster, sela)")->check(CLI::PositiveNumber);
    tr->add_option("--queue", o.queue, "queue length K (moco)")->check(CLI::PositiveNumber);
    tr->add_option("--label-updates", o.label_updates, "label optimisations over the run, quadratically spaced (sela; default 2 per epoch up to 20, or 1 per epoch if more)")
        ->check(CLI::PositiveNumber);
    tr->add_flag_callback("--symmetric", [&] { o.symmetric = 1; },
                          "both views as queries against the other's key, losses summed (moco; the default)");
    tr->add_flag_callback("--asymmetric", [&] { o.symmetric = 0; },
                          "view 0 as the query only, as in the MoCo v2 paper (moco)");
    tr->add_option("--schedule", o.schedule, "learning rate after warmup: cosine (to 0) or constant (default: the method's)")
        ->check(CLI::IsMember({"cosine", "constant"}));
    tr->add_option("--proximal", o.proximal, "proximal term lambda (instdisc, default 30; instdisc-softmax, default 0: off)")->check(CLI::NonNegativeNumber);
    tr->add_option("--nce-z", o.nce_z, "when NCE's Z is estimated (instdisc): until-filled, first-batch or every-batch")
        ->check(CLI::IsMember({"until-filled", "first-batch", "every-batch"}));
    tr->add_option("--first-write", o.first_write,
                   "a bank row's first write (instdisc, instdisc-softmax): mix (with its random initialization, momentum) or replace")
        ->check(CLI::IsMember({"mix", "replace"}));
    tr->add_option("--bank-init", o.bank_init,
                   "memory bank rows before the first epoch (instdisc, instdisc-softmax): random (the paper's) or "
                   "features (the initial network's normalised embedding of each image)")
        ->check(CLI::IsMember({"random", "features"}));
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
        if (tr->parsed()) {
            reject_foreign_options(*tr, o.method);
            return train(o);
        }
        if (ev->parsed()) return with_checkpoint(o, checkpoint_action::eval);
        if (em->parsed()) return with_checkpoint(o, checkpoint_action::embed);
        return with_checkpoint(o, checkpoint_action::export_backbone);
    } catch (const ssl::error& e) {
        std::fprintf(stderr, "ssl: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ssl: error: %s\n", e.what());
        return 2;
    }
}
