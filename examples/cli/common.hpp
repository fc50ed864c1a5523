#pragma once
// The `ssl` command-line program, split so each method compiles in its own
// translation unit (they build in parallel, and adding a method does not
// recompile the others):
//   common.hpp / common.cpp   options, data sets, evaluation, the training
//                             driver shared by every method
//   method_<name>.cpp         one method: its config from the options, and
//                             its entry in the method table
//   main.cpp                  the command line and the method table
// Methods are built over ssl::any_backbone<float> (the architecture is a run
// time choice), so each is instantiated once, not once per architecture.
#include <ssl/backbone/any_backbone.hpp>
#include <ssl/data/dataset.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/eval/linear_probe.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/io/safetensors.hpp>
#include <ssl/trainer.hpp>

#include <nlohmann/json.hpp>

SSL_EXTERN_ANY_BACKBONE(float);  // compiled once, in common.cpp

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cli {

namespace fs = std::filesystem;

struct run_options {
    std::string method = "simclr";
    std::string data;  // empty: fashion-mnist when installed, else synthetic
    std::string backbone = "resnet18";
    std::size_t width = 16;
    std::string stem = "auto";
    std::size_t batch = 256, epochs = 5, threads = 0, workers = 1, max_steps = 0, train_limit = 0, eval_limit = 0;
    double lr = 0, weight_decay = -1, temperature = 0;
    double crop_scale = 0;    // smallest random-resized-crop area fraction; 0: the method's
    std::size_t clusters = 0, queue = 0;
    int symmetric = -1;       // moco: 1 both directions of the loss, 0 one; < 0: the method's
    std::size_t label_updates = 0;  // sela: label optimisations over the run; 0: the method's
    std::string optimizer;
    std::string schedule;     // empty: the method's (cosine unless it says otherwise)
    double proximal = -1;     // instdisc(-softmax): proximal lambda; < 0: the method's
    std::string nce_z;        // instdisc: first-batch, until-filled or every-batch; empty: the method's
    std::string first_write;  // instdisc(-softmax): mix or replace; empty: the method's
    std::string bank_init;    // instdisc(-softmax): random or features; empty: the method's
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

/// What to do with a method rebuilt from a checkpoint.
enum class checkpoint_action { eval, embed, export_backbone };

/// One method of the program.
struct method_entry {
    const char* name;
    const char* summary;
    int (*train)(const run_options&, const data_sets&);
    int (*from_checkpoint)(const run_options&, const ssl::io::safetensors_file&, const data_sets&, checkpoint_action,
                           std::size_t instances);
};

std::vector<std::size_t> iota(std::size_t n);
data_sets load_data(const std::string& spec, std::size_t limit, std::size_t eval_limit);
std::string fmt(const std::optional<double>& v);

struct eval_numbers {
    std::optional<double> knn, linear;
};

/// kNN (k = 200, T = 0.1) and a linear probe on frozen backbone features,
/// when both sets are labelled.
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
    r.knn = 100.0 *
            ssl::eval::knn_evaluate(ftr, d.eval_train.labels, fte, d.test->labels, {.k = 200, .temperature = 0.1}).top1;
    r.linear = 100.0 * ssl::eval::linear_probe(ftr, d.eval_train.labels, fte, d.test->labels, {}).test_top1;
    return r;
}

/// Every method is instantiated once, over a backbone picked at run time
/// (--backbone): the architectures are compiled once, in common.cpp.
using backbone_t = ssl::any_backbone<float>;

inline ssl::any_backbone_options backbone_options(const run_options& o, const ssl::data::image_dataset& d) {
    const bool cifar = o.stem == "cifar" || (o.stem == "auto" && d.height() <= 64);
    return {.arch = o.backbone, .in_channels = d.channels(), .width = o.width,
            .stem = cifar ? ssl::stem::cifar : ssl::stem::imagenet, .seed = o.seed};
}

template <class M>
int run_method(M& m, const run_options& o, const data_sets& d, const std::string& method_name, double default_lr,
               const char* default_schedule = "cosine") {
    const auto t_start = std::chrono::steady_clock::now();
    eval_numbers base;
    if (o.baseline) {
        M fresh(m.cfg());
        base = evaluate(fresh, d);
        if (!o.json)
            std::printf("random-init encoder: kNN %s %%, linear probe %s %%\n", fmt(base.knn).c_str(),
                        fmt(base.linear).c_str());
    }
    ssl::trainer_config tc;
    tc.epochs = o.epochs;
    tc.batch = o.batch;
    tc.lr = o.lr > 0 ? o.lr : default_lr * static_cast<double>(o.batch) / 256.0;
    tc.optimizer = o.optimizer.empty() ? "sgd" : o.optimizer;
    tc.schedule = o.schedule.empty() ? default_schedule : o.schedule;
    tc.weight_decay = o.weight_decay >= 0 ? o.weight_decay : 5e-4;
    tc.seed = o.seed;
    tc.workers = o.workers;
    tc.out_dir = o.out.empty() ? fs::path("runs") / method_name : fs::path(o.out);
    tc.resume = o.resume;
    tc.progress = !o.no_progress;
    tc.max_steps = o.max_steps;
    tc.metadata = {{"method", method_name},
                   {"backbone", o.backbone},
                   {"width", std::to_string(o.width)},
                   {"stem", o.stem},
                   {"data", d.name},
                   {"image_size", std::to_string(d.train.height())},
                   {"channels", std::to_string(d.train.channels())},
                   {"train_images", std::to_string(d.train.size())},
                   {"seed", std::to_string(o.seed)}};
    ssl::trainer<M> t(m, d.train, tc);
    if (!o.json)
        std::printf("training %s, %s width %zu, on %s (%zu images %zux%zux%zu), batch %zu, %zu epochs, lr %.4g, %zu "
                    "threads\n",
                    method_name.c_str(), o.backbone.c_str(), o.width, d.name.c_str(), d.train.size(),
                    d.train.channels(), d.train.height(), d.train.width(), o.batch, o.epochs, tc.lr,
                    ssl::num_threads());
    if (o.eval_every) {
        t.on_epoch_end = [&](std::size_t epoch) -> std::vector<std::pair<std::string, double>> {
            if ((epoch + 1) % o.eval_every != 0) return {};
            auto e = evaluate(m, d);
            std::vector<std::pair<std::string, double>> r;
            if (e.knn) r.emplace_back("kNN", *e.knn);
            if (e.linear) r.emplace_back("linear", *e.linear);
            if (!o.json)
                std::fprintf(stderr, "epoch %zu: kNN %s %%, linear %s %%\n", epoch + 1, fmt(e.knn).c_str(),
                             fmt(e.linear).c_str());
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
        std::printf("backbone      %s width %zu (%zu parameters)\n", o.backbone.c_str(), o.width,
                    ssl::parameter_count(m.backbone()));
        std::printf("epochs        %zu (%zu steps)%s\n", s.epochs_done, s.steps, s.interrupted ? " -- interrupted" : "");
        std::printf("loss          %.4f -> %.4f\n", s.first_loss, s.last_loss);
        std::printf("train time    %.1f s (%.0f images/s), total %.1f s\n", s.seconds, s.images_per_second, total);
        std::printf("kNN top-1     %s %%%s\n", fmt(e.knn).c_str(),
                    o.baseline ? ("   (random init " + fmt(base.knn) + " %)").c_str() : "");
        std::printf("linear top-1  %s %%%s\n", fmt(e.linear).c_str(),
                    o.baseline ? ("   (random init " + fmt(base.linear) + " %)").c_str() : "");
        std::printf("output        %s (last.safetensors, backbone.safetensors, metrics.csv, plot.svg)\n",
                    tc.out_dir.string().c_str());
    }
    nlohmann::json j{{"method", method_name},     {"backbone", o.backbone},
                     {"width", o.width},          {"data", d.name},
                     {"epochs", s.epochs_done},   {"steps", s.steps},
                     {"train_seconds", s.seconds}, {"total_seconds", total},
                     {"images_per_second", s.images_per_second}, {"first_loss", s.first_loss},
                     {"last_loss", s.last_loss},  {"interrupted", s.interrupted},
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

/// Runs `action` on a method whose trained state was loaded from a checkpoint.
template <class M>
int checkpoint_action_on(M& m, const run_options& o, const ssl::io::safetensors_file& file, const data_sets& d,
                         checkpoint_action action) {
    auto rep = ssl::load_state_dict(m, file, false, o.checkpoint);
    if (!rep.missing.empty())
        throw ssl::io_error("checkpoint '" + o.checkpoint + "' lacks " + std::to_string(rep.missing.size()) +
                            " tensors of this model, e.g. '" + rep.missing.front() + "'");
    switch (action) {
        case checkpoint_action::eval: {
            auto e = evaluate(m, d);
            std::printf("kNN top-1 %s %%, linear probe top-1 %s %%\n", fmt(e.knn).c_str(), fmt(e.linear).c_str());
            return 0;
        }
        case checkpoint_action::embed: {
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
        }
        case checkpoint_action::export_backbone:
            ssl::save_checkpoint(o.output, m.backbone(), {{"source", o.checkpoint}});
            std::printf("wrote the backbone (torchvision names) to %s\n", o.output.c_str());
            return 0;
    }
    return 2;
}

/// A method's table entry from its spec:
///   struct spec {
///       static constexpr const char* name, summary; static constexpr double base_lr;
///       static constexpr const char* schedule;  // optional: "cosine" (default) or "constant"
///       template <class B> using method = ...;
///       template <class B> static typename method<B>::config config(const run_options&,
///                                           const ssl::data::image_dataset& train, std::size_t instances);
///   };
template <class Spec>
method_entry make_entry() {
    return {Spec::name, Spec::summary,
            [](const run_options& o, const data_sets& d) {
                auto c = Spec::template config<backbone_t>(o, d.train, d.train.size());
                if (o.crop_scale > 0) c.augment.crop_min_scale = o.crop_scale;
                typename Spec::template method<backbone_t> m(c);
                if constexpr (requires { Spec::schedule; })
                    return run_method(m, o, d, Spec::name, Spec::base_lr, Spec::schedule);
                else
                    return run_method(m, o, d, Spec::name, Spec::base_lr);
            },
            [](const run_options& o, const ssl::io::safetensors_file& f, const data_sets& d, checkpoint_action a,
               std::size_t instances) {
                typename Spec::template method<backbone_t> m(Spec::template config<backbone_t>(o, d.train, instances));
                return checkpoint_action_on(m, o, f, d, a);
            }};
}

}  // namespace cli
