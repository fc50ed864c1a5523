// The `ssl` command-line program: train a self-supervised method on a data
// set and evaluate its features, without writing C++.
//
//   ssl train --method NAME --data fashion-mnist|cifar10:DIR|cifar100:DIR|folder:DIR|idx:IMAGES[,LABELS]|synthetic
//             [--backbone resnet18|resnet34|resnet50|convnet|resnet18v2|resnet50v2|vgg16|revnet18|... (ssl train --help)]
//             [--width 16] [--batch 256] [--epochs 5]
//             [--lr X] [--seed 0] [--threads N] [--device host|auto|cuda] [--out DIR] [--resume] [--json] [--baseline]
//             [--image-size N] [--channels 1|3] [--eval-data SPEC] [--holdout F]   (README "Your own images")
//             [the method's own options: see ssl train --help]
//   ssl eval  --checkpoint DIR/last.safetensors [--data ...]
//   ssl embed --checkpoint DIR/last.safetensors --data ... --output features.safetensors
//   ssl export --checkpoint DIR/last.safetensors --output backbone.safetensors|model.onnx [--format safetensors|onnx]
//
// This file knows the common options and the list of methods; each method's
// options, defaults and config are in its method_<name>.cpp.
#include "common.hpp"

#include <ssl/backend/host/winograd.hpp>
#include <ssl/core/parse.hpp>

#include <iostream>
#include <new>

#include <ssl/core/cpu_check.hpp>

// First of all, before the static initialisers (priority 101 runs before the
// default's): they are compiled with the program's flags too (in a build with
// -march=native on an AVX-512 machine, CLI11's validators executed AVX-512
// instructions before main), so a CPU without the instruction sets this
// program was built for gets a message naming what it lacks, not SIGILL.
[[gnu::constructor(101)]] static void ssl_check_cpu_first() { ssl::cpu::exit_if_unsupported("ssl"); }

namespace cli {
// One entry per method, each defined in its own method_<name>.cpp.
method_entry& simclr_entry();
method_entry& byol_entry();
method_entry& rotnet_entry();
method_entry& jigsaw_entry();
method_entry& moco_entry();
method_entry& instdisc_entry();
method_entry& instdisc_softmax_entry();
method_entry& deepcluster_entry();
method_entry& sela_entry();
method_entry& deepercluster_entry();
method_entry& instance_cls_entry();
method_entry& pirl_entry();
method_entry& exemplar_entry();
method_entry& colorization_entry();
method_entry& split_brain_entry();
method_entry& s4l_entry();
method_entry& cpc_entry();
method_entry& motion_entry();
method_entry& multitask_entry();

namespace {

/// What the program is doing, for the message of an allocation that failed.
std::string& phase() {
    static std::string p = "starting";
    return p;
}

const std::vector<method_entry*>& methods() {
    static const std::vector<method_entry*> all{
        &simclr_entry(),      &byol_entry(),        &rotnet_entry(),           &jigsaw_entry(),
        &moco_entry(),        &instdisc_entry(),    &instdisc_softmax_entry(), &pirl_entry(),
        &deepcluster_entry(), &sela_entry(),        &deepercluster_entry(),    &instance_cls_entry(),
        &exemplar_entry(),    &colorization_entry(), &split_brain_entry(),      &s4l_entry(),
        &cpc_entry(),         &motion_entry(),      &multitask_entry()};
    return all;
}

const method_entry& find_method(const std::string& name) {
    for (const auto* m : methods())
        if (name == m->name()) return *m;
    std::string known;
    for (const auto* m : methods()) known += std::string(known.empty() ? "" : ", ") + m->name();
    throw ssl::value_error("unknown method '" + name + "' (" + known + ")");
}

std::string recipe_text(const recipe& r) {
    return std::string(r.optimizer) + ", lr " + fmt_g(r.base_lr) + " x batch/256, weight decay " +
           fmt_g(r.weight_decay) + ", " + r.schedule + " schedule" +
           (r.batch ? ", batch " + std::to_string(r.batch) : std::string());
}

/// Options whose value goes into the method's config (besides the method's
/// own): on --resume, giving one checks it against the checkpoint's config.
bool config_options_given(const common_options& o, const option_registry& reg) {
    for (const char* n : {"--backbone", "--width", "--stem", "--crop-scale", "--seed", "--data", "--train-limit",
                          "--image-size", "--channels", "--holdout"})
        if (o.was_given(n)) return true;
    return reg.any_given(o.method);
}

/// --resume: the options the checkpoint's position depends on (which batches
/// of which images make an epoch) must be the run's; given otherwise they
/// are an error naming both values, not a loader failure or a silent switch.
void refuse_other_run(const common_options& o, const train_record& t, const fs::path& last) {
    auto same = [&](const std::string& option, const std::string& asked, const std::string& stored) {
        if (o.was_given(option) && asked != stored)
            throw ssl::value_error("--resume: " + option + " " + asked + " on the command line, " + stored + " in '" +
                                   last.string() + "' (the run continues with its own; drop " + option +
                                   ", or train into a new --out)");
    };
    same("--batch", std::to_string(o.batch), std::to_string(t.batch));
    same("--data", o.data, t.data);
    same("--train-limit", std::to_string(o.train_limit), std::to_string(t.train_limit));
    // the images trained on (a record from before these were stored has 0)
    if (t.image_size) same("--image-size", std::to_string(o.image_size), std::to_string(t.image_size));
    if (t.channels) same("--channels", std::to_string(o.channels), std::to_string(t.channels));
    same("--holdout", fmt_g(o.holdout), fmt_g(t.holdout));
    // --eval-data may change (nothing trains on it), except where a held-out
    // split depends on it: it decides whether --holdout splits --data
    if (t.holdout > 0) same("--eval-data", o.eval_data.empty() ? "(none)" : o.eval_data,
                            t.eval_data.empty() ? "(none)" : t.eval_data);
}

/// load_data's request for the command line's options.
data_request request_of(const common_options& o) {
    return {.data = o.data, .limit = o.train_limit, .eval_limit = o.eval_limit, .max_data_mb = o.max_data_mb,
            .max_image_pixels = o.max_image_pixels,
            .image_size = o.image_size, .channels = o.channels, .size_given = o.was_given("--image-size"),
            .channels_given = o.was_given("--channels"), .eval_data = o.eval_data, .holdout = o.holdout,
            .seed = o.seed};
}

/// --resume of a run that has done all its epochs (or more than --epochs
/// asks for) says so instead of "training" zero steps.
void refuse_finished(const common_options& o, const train_record& t, const std::map<std::string, std::string>& meta,
                     const fs::path& last) {
    const auto pos = ssl::train::read_position({.metadata = meta}, last);
    const std::size_t epochs = o.was_given("--epochs") ? o.epochs : t.epochs;
    if (pos.epoch < epochs) return;
    const std::string done = std::to_string(pos.epoch);
    if (epochs < pos.epoch)
        throw ssl::value_error("--resume: --epochs " + std::to_string(epochs) + " is fewer than the " + done +
                               " epochs '" + last.string() + "' has done; give more to train the run further");
    throw ssl::value_error("--resume: the run in '" + last.parent_path().string() + "' is finished (" + done + " of " +
                           std::to_string(epochs) + " epochs done); give --epochs N with N > " + done +
                           " to train it further");
}

int train(common_options o, const option_registry& reg) {
    if (o.device == "cuda")
        throw ssl::value_error("--device cuda: the CUDA backend is not built yet; use --device host (or auto)");
    if (o.device == "auto" && !o.json) std::printf("device: host (no CUDA backend in this build)\n");
    if (o.winograd != 2 && !o.json)
        std::printf("3x3 convolutions: %s (--winograd %zu)\n",
                    o.winograd == 4 ? "Winograd F(4x4, 3x3)" : "direct / im2col, no Winograd", o.winograd);
    // --resume of a run whose checkpoint stores its config: the method, its
    // config and the trainer settings come from the checkpoint; trainer
    // settings given on the command line override, the config cannot change.
    std::optional<run_document> resumed;
    std::map<std::string, std::string> meta;  // of the checkpoint resumed from
    const fs::path last = (o.out.empty() ? fs::path("runs") / o.method : fs::path(o.out)) / "last.safetensors";
    if (o.resume) {
        if (fs::exists(last)) meta = ssl::io::read_safetensors(last).metadata;
        if (!meta.empty()) resumed = run_document::from_metadata(meta, last.string());
        if (resumed) {
            if (o.was_given("--method") && o.method != resumed->method)
                throw ssl::value_error("--resume: '" + last.string() + "' is a " + resumed->method +
                                       " run, not --method " + o.method);
            refuse_other_run(o, resumed->train, last);
            o.method = resumed->method;
            const train_record& t = resumed->train;
            if (!o.was_given("--lr")) o.lr = t.lr;
            if (!o.was_given("--weight-decay")) o.weight_decay = t.weight_decay;
            if (!o.was_given("--schedule")) o.schedule = t.schedule;
            if (!o.was_given("--optimizer")) o.optimizer = t.optimizer;
            if (!o.was_given("--batch")) o.batch = t.batch;
            if (!o.was_given("--epochs")) o.epochs = t.epochs;
            if (!o.was_given("--seed")) o.seed = t.seed;
            if (!o.was_given("--data")) o.data = t.data;
            if (!o.was_given("--train-limit")) o.train_limit = t.train_limit;
            if (!o.was_given("--image-size")) o.image_size = t.image_size;
            if (!o.was_given("--channels")) o.channels = t.channels;
            if (!o.was_given("--eval-data")) o.eval_data = t.eval_data;  // may change unless the run held out
            if (!o.was_given("--holdout")) o.holdout = t.holdout;
        }
    }
    const auto& m = find_method(o.method);
    reg.reject_foreign(o.method);
    if (!resumed && !o.was_given("--batch") && m.defaults().batch) o.batch = m.defaults().batch;
    phase() = "loading --data " + (o.data.empty() ? std::string("(the default)") : o.data);
    data_request req = request_of(o);
    if (resumed) {
        // the run's images, at the size and channels it read them (its
        // record's; a run from before they were recorded read a folder at 32
        // x 32 x 3)
        if (!resumed->train.image_size && !o.was_given("--image-size")) req.image_size = 32;
        if (!resumed->train.channels && !o.was_given("--channels")) req.channels = 3;
        if (resumed->train.holdout > 0 && o.holdout == resumed->train.holdout && o.eval_data == resumed->train.eval_data)
            req.holdout_from = resumed->train.holdout_from;
    }
    auto d = load_data(req);
    if (!o.json)  // what a folder was read at, and why
        for (const auto& line : d.notes) std::printf("%s\n", line.c_str());
    run_document run;
    run.method = o.method;
    if (resumed) {
        run.config = resumed->config;
        if (config_options_given(o, reg)) {
            const auto asked = m.config(o, d.train, d.train.size());
            if (const auto diff = first_difference(run.config, asked); !diff.empty())
                throw ssl::value_error("--resume continues the checkpoint's run with its config, but the command line "
                                       "asks for another one: " + diff +
                                       " (drop the option to continue, or train into a new --out)");
        }
        refuse_finished(o, resumed->train, meta, last);
    } else {
        run.config = m.config(o, d.train, d.train.size());
    }
    const recipe r = m.defaults();
    if (o.lr <= 0) o.lr = r.base_lr * static_cast<double>(o.batch) / 256.0;
    if (o.weight_decay < 0) o.weight_decay = r.weight_decay;
    if (o.schedule.empty()) o.schedule = r.schedule;
    if (o.optimizer.empty()) o.optimizer = r.optimizer;
    run.train = {.lr = o.lr, .weight_decay = o.weight_decay, .schedule = o.schedule, .optimizer = o.optimizer,
                 .batch = o.batch, .epochs = o.epochs, .seed = o.seed, .data = d.name, .train_limit = o.train_limit,
                 .image_size = d.train.height(), .channels = d.train.channels(), .eval_data = o.eval_data,
                 .holdout = o.holdout, .holdout_from = d.holdout_from};
    phase() = "building and training the " + o.method + " model";
    return m.train(run, o, d);
}

/// export / embed: --output must not be the checkpoint, by any path (writing
/// it would replace the run's state with a backbone or features).
void refuse_output_over_checkpoint(const common_options& o) {
    std::error_code ec;
    const bool same = fs::exists(o.output, ec)
                          ? fs::equivalent(o.output, o.checkpoint, ec)
                          : fs::weakly_canonical(o.output, ec) == fs::weakly_canonical(o.checkpoint, ec);
    if (same)
        throw ssl::value_error("--output '" + o.output + "' is the checkpoint '" + o.checkpoint +
                               "': writing it would replace the checkpoint; choose another --output");
}

/// Rebuilds the method a checkpoint was trained with (from its stored
/// config), loads it, and runs the action.
int with_checkpoint(common_options o, checkpoint_action action) {
    if (action != checkpoint_action::eval) refuse_output_over_checkpoint(o);
    phase() = "reading checkpoint '" + o.checkpoint + "'";
    auto file = ssl::io::read_safetensors(o.checkpoint);
    if (!file.metadata.contains(run_document::key) && !file.metadata.contains("method"))
        throw ssl::io_error("checkpoint '" + o.checkpoint + "' has no metadata '" + run_document::key +
                            "' (nor 'method'): rebuilding its model needs the run's method and config, which `ssl "
                            "train` stores in last.safetensors, epoch_NNN.safetensors and backbone.safetensors (and "
                            "`ssl export` copies); use one of those");
    auto meta = [&](const char* k) -> std::string {
        auto it = file.metadata.find(k);
        if (it == file.metadata.end())
            throw ssl::io_error(std::string("checkpoint '") + o.checkpoint + "' has no '" + k +
                                "' in its metadata (was it written by `ssl train`?)");
        return it->second;
    };
    if (const auto run = run_document::from_metadata(file.metadata, o.checkpoint)) {
        const auto& m = find_method(run->method);
        const train_record& t = run->train;
        const bool own_data = o.data.empty() || o.data == t.data;
        if (o.data.empty()) o.data = t.data;
        // The run's evaluation: its --eval-data and held-out split (the same
        // images: seeded by the run's seed, and the split set's image count
        // is checked), unless the command line names others
        if (!o.was_given("--eval-data") && (own_data || !t.eval_data.empty())) o.eval_data = t.eval_data;
        // (the run's held-out split only with the run's --eval-data: it says what --holdout splits)
        if (!o.was_given("--holdout") && o.eval_data == t.eval_data && (own_data || !t.eval_data.empty()))
            o.holdout = t.holdout;
        o.seed = t.seed;
        data_request req = request_of(o);
        req.limit = 0;
        if (o.holdout == t.holdout && o.eval_data == t.eval_data && (own_data || !t.eval_data.empty()))
            req.holdout_from = t.holdout_from;
        // a folder is read at the size and channels the run trained on (runs
        // from before they were recorded read every folder at 32 x 32 x 3)
        req.image_size = t.image_size ? t.image_size : 32;
        req.channels = t.channels ? t.channels : 3;
        if (action == checkpoint_action::embed) {  // the whole of --data, nothing held out
            req.evaluation = false;
            req.holdout = 0;
        }
        std::optional<data_sets> d;
        phase() = "loading --data " + o.data;
        if (action != checkpoint_action::export_backbone) d = load_data(req);
        if (d && action == checkpoint_action::eval) std::printf("evaluation: %s\n", d->evaluation.c_str());
        phase() = "rebuilding the model of checkpoint '" + o.checkpoint + "'";
        return m.from_checkpoint(run->config, o, file, d ? &*d : nullptr, action);
    }
    // A checkpoint from before configs were stored: the method's default
    // config for the architecture and data-set size it records.
    o.method = meta("method");
    o.backbone = meta("backbone");
    const std::string entry = "checkpoint '" + o.checkpoint + "', metadata ";
    o.width = ssl::parse_unsigned(meta("width"), entry + "'width'", 1024);  // --width's range
    o.stem = meta("stem");
    // backbone_options() took any other text for "imagenet" without a word
    if (o.stem != "auto" && o.stem != "cifar" && o.stem != "imagenet")
        throw ssl::io_error(entry + "'stem': unknown stem '" + o.stem + "' (auto, cifar or imagenet)");
    o.seed = ssl::parse_unsigned(meta("seed"), entry + "'seed'");
    if (o.data.empty()) o.data = meta("data");
    const auto& m = find_method(o.method);
    phase() = "loading --data " + o.data;
    data_request req = request_of(o);
    req.limit = 0;
    req.image_size = 32;  // every folder was read at 32 x 32 x 3 then
    req.channels = 3;
    req.evaluation = action != checkpoint_action::embed;
    if (!req.evaluation) req.holdout = 0;
    auto d = load_data(req);
    // Methods with per-instance state (a memory bank, pseudo-labels) are
    // rebuilt for the number of images they were trained on.
    const auto it = file.metadata.find("train_images");
    const std::size_t instances =
        it != file.metadata.end() ? ssl::parse_unsigned(it->second, entry + "'train_images'") : d.train.size();
    phase() = "rebuilding the model of checkpoint '" + o.checkpoint + "'";
    return m.from_checkpoint(m.config(o, d.train, instances), o, file, &d, action);
}

void note_given(const CLI::App& app, common_options& o) {
    for (const CLI::Option* opt : app.get_options())
        if (opt->count() > 0) o.given.insert(opt->get_name());
}

}  // namespace
}  // namespace cli

int main(int argc, char** argv) {
    using namespace cli;
    common_options o;
    CLI::App app{"ssl: self-supervised visual representation learning"};
    app.require_subcommand(1);
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later flags win
    auto add_common = [&](CLI::App* c) {
        c->add_option("--data", o.data,
                      "fashion-mnist[:DIR] | cifar10:DIR | cifar100:DIR | folder:DIR | idx:IMAGES[,LABELS] | synthetic");
        c->add_option("--threads", o.threads,
                      "host threads (0: all cores; under mpirun, the cores shared by the ranks on each machine)")
            ->check(thread_count());
        c->add_option("--winograd", o.winograd,
                      "3x3 stride-1 convolutions: 2 = Winograd F(2x2, 3x3) (default: exact on constant regions), "
                      "4 = F(4x4, 3x3) (~12% faster steps, but its float rounding hurts training on mostly-black "
                      "images; bench/README.md, issue 24), 0 = direct / im2col (2x slower)")
            ->check(CLI::IsMember({std::size_t{0}, std::size_t{2}, std::size_t{4}}));
        c->add_option("--eval-limit", o.eval_limit, "use only the first N labelled train images as the kNN / probe train set");
        c->add_option("--max-data-mb", o.max_data_mb,
                      "the most data read from one IDX or CIFAR file, or decoded from a folder, in MiB (more is "
                      "refused before it is read; with --train-limit only the images used are read)")
            ->check(CLI::Range(std::size_t(1), std::size_t(1) << 40));
        c->add_option("--max-image-pixels", o.max_image_pixels,
                      "folder:DIR data: the most pixels one image file may declare, N or WxH (default 8192x8192); a "
                      "file over it is refused from its header before anything is decoded (a small corrupt or "
                      "hostile file can declare gigapixels): set it near your images' size")
            ->transform(pixel_count());
        c->add_option("--eval-data", o.eval_data,
                      "the labelled set the kNN / linear probe evaluate on (same forms as --data; a folder is read at "
                      "--data's size and channels): with a test split of its own (fashion-mnist, cifar10:DIR, ...) "
                      "the probe learns from its train split and tests on its test split; without one it is the test "
                      "set (--data must be labelled) or, with --holdout, is split (default: --data's test split)");
        c->add_option("--holdout", o.holdout,
                      "hold out this fraction of each class of a labelled set without a test split (--eval-data, "
                      "else --data), seeded by --seed, as the test set: the rest trains and feeds the kNN / linear "
                      "probe; stored in checkpoints, so `ssl eval` tests on the same images (0: none)")
            ->check(fraction_below_one());
    };
    auto* tr = app.add_subcommand("train", "train a method and evaluate its features");
    add_common(tr);
    std::vector<std::string> names;
    std::string method_help = "the method (its defaults):";
    for (const auto* m : methods()) {
        names.push_back(m->name());
        method_help += std::string("\n  ") + m->name() + ": " + m->summary() + " (" + recipe_text(m->defaults()) + ")";
    }
    tr->add_option("--method", o.method, method_help)->check(CLI::IsMember(names));
    tr->add_option("--backbone", o.backbone)->check(CLI::IsMember(ssl::any_backbone_archs()));
    tr->add_option("--width", o.width, "base width (64 = standard)")->check(CLI::Range(1, 1024));
    tr->add_option("--image-size", o.image_size,
                   "folder:DIR data: the side, in pixels, images are brought to (the shorter side resized, then the "
                   "centre cropped to a square; default: the images' own size when all are one square size, else 32)")
        ->check(image_side());
    tr->add_option("--channels", o.channels,
                   "folder:DIR data: 1 (grey) or 3 (RGB) (default: 1 when every image is grey, else 3)")
        ->check(channel_count());
    tr->add_option("--stem", o.stem, "auto (cifar for images up to 64 px), cifar or imagenet")
        ->check(CLI::IsMember({"auto", "cifar", "imagenet"}));
    tr->add_option("--batch", o.batch)->check(CLI::Range(2, 1 << 16));
    tr->add_option("--epochs", o.epochs)->check(CLI::Range(1, 100000));
    tr->add_option("--lr", o.lr, "peak learning rate (default: the method's, scaled by batch/256)")->check(positive_number());
    tr->add_option("--optimizer", o.optimizer, "sgd, lars, adam or adamw")->check(CLI::IsMember({"sgd", "lars", "adam", "adamw"}));
    tr->add_option("--weight-decay", o.weight_decay, "default: the method's")->check(non_negative_number());
    tr->add_option("--crop-scale", o.crop_scale,
                   "smallest area fraction of the random resized crop, in (0, 1] (default: the method's: 0.2 below "
                   "32 px, else 0.08; RotNet 0.5)")
        ->check(finite_number())
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
    tr->add_option("--schedule", o.schedule, "learning rate after warmup: cosine (to 0) or constant (default: the method's)")
        ->check(CLI::IsMember({"cosine", "constant"}));
    tr->add_option("--seed", o.seed);
    tr->add_option("--device", o.device, "host, auto or cuda")->check(CLI::IsMember({"host", "auto", "cuda"}));
    tr->add_option("--out", o.out, "output directory (default runs/METHOD)");
    tr->add_option("--workers", o.workers, "loader threads")->check(thread_count());
    tr->add_option("--max-steps", o.max_steps, "stop after this many steps");
    tr->add_option("--train-limit", o.train_limit, "use only the first N training images");
    tr->add_option("--sync-bn-group", o.sync_bn_group,
                   "under mpirun: batch norm statistics within groups of G consecutive ranks (a divisor of the "
                   "ranks; 1: each rank's own images); 0: all ranks (the global batch)")
        ->check(CLI::Range(std::size_t(0), std::size_t(1) << 20));
    tr->add_option("--shuffle-buffer", o.shuffle_buffer, "--data shards:DIR: samples in the shuffle buffer")->check(CLI::Range(std::size_t(1), std::size_t(1) << 30));
    tr->add_option("--eval-every", o.eval_every, "evaluate every N epochs (0: at the end only)");
    tr->add_flag("--resume", o.resume,
                 "continue from OUT/last.safetensors, with the method, config and trainer settings stored in it");
    tr->add_flag("--json", o.json, "print the summary as one JSON object on the last line");
    tr->add_flag("--baseline", o.baseline, "also evaluate a random-init encoder");
    tr->add_option("--protocol", o.protocol, "evaluation protocols at the end of the run, a comma list of knn, linear, svm, lowshot, layers, finetune (or all); beyond knn,linear: a table and OUT/eval.json, eval.csv")->check(protocol_list());
    tr->add_flag("--no-figures", o.no_figures, "--protocol beyond knn,linear: write the table and files only, no SVG figures");
    add_finetune_options(tr, o);
    tr->add_flag("--no-progress", o.no_progress, "no progress line");
    // each method's own options
    option_registry reg(*tr);
    for (auto* m : methods()) {
        auto handle = reg.for_method(m->name());
        m->add_options(handle);
    }
    reg.finish();
    auto* ev = app.add_subcommand("eval", "kNN and linear-probe accuracy of a checkpoint's backbone");
    add_common(ev);
    ev->add_option("--checkpoint", o.checkpoint, "a checkpoint written by ssl train")->required()->check(CLI::ExistingFile);
    ev->add_option("--protocol", o.protocol, "a comma list of knn, linear, svm, lowshot, layers, finetune (or all); beyond knn,linear: a table and eval_CHECKPOINT.json, .csv next to the checkpoint")->check(protocol_list());
    ev->add_flag("--no-figures", o.no_figures, "--protocol beyond knn,linear: write the table and files only, no SVG figures");
    add_finetune_options(ev, o);
    auto* em = app.add_subcommand("embed", "write a checkpoint's features of a data set to a safetensors file");
    add_common(em);
    em->add_option("--checkpoint", o.checkpoint)->required()->check(CLI::ExistingFile);
    em->add_option("--output", o.output, "features.safetensors")->required();
    auto* ex = app.add_subcommand("export", "write the backbone alone with torchvision parameter names, or as an ONNX model");
    ex->add_option("--checkpoint", o.checkpoint)->required()->check(CLI::ExistingFile);
    ex->add_option("--output", o.output, "backbone.safetensors (or model.onnx)")->required();
    ex->add_option("--format", o.format,
                   "safetensors (default: parameters and buffers, torchvision names) or onnx (the eval-mode network: "
                   "raw images in [0, 1] at the trained size -> features, as `ssl embed`; README.md)")
        ->check(CLI::IsMember({"safetensors", "onnx"}));
    auto* sh = add_shards_command(app);  // ssl shards (shards.cpp)
    auto* rp = add_report_command(app);  // ssl report (report.cpp)
    auto* cl = add_clips_command(app);   // ssl clips (clips.cpp)
    CLI11_PARSE(app, argc, argv);
    try {
        // under mpirun, P ranks on a machine share its cores unless --threads says otherwise
        if (!o.threads) o.threads = default_threads_per_rank(max_threads());
        if (o.threads) ssl::set_num_threads(o.threads);
        ssl::backend::host::winograd::select(o.winograd);
        if (tr->parsed()) {
            note_given(*tr, o);
            return train(o, reg);
        }
        if (ev->parsed()) {
            note_given(*ev, o);
            return with_checkpoint(o, checkpoint_action::eval);
        }
        if (em->parsed()) {
            note_given(*em, o);
            return with_checkpoint(o, checkpoint_action::embed);
        }
        if (sh->parsed()) return run_shards_command();
        if (rp->parsed()) return run_report_command();
        if (cl->parsed()) return run_clips_command();
        return with_checkpoint(o, checkpoint_action::export_backbone);
    } catch (const ssl::error& e) {
        std::fprintf(stderr, "ssl: error: %s\n", e.what());
        return 2;
    } catch (const std::bad_alloc&) {  // the bare "std::bad_alloc" said nothing of what
        std::fprintf(stderr, "ssl: error: out of memory while %s\n", phase().c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ssl: error: %s\n", e.what());
        return 2;
    }
}
