#pragma once
// The `ssl` command-line program, split so each method compiles in its own
// translation unit (they build in parallel, and adding a method does not
// recompile the others):
//   common.hpp / common.cpp   the common options, data sets, evaluation, the
//                             option registry, the run document stored in
//                             checkpoints, and the training driver
//   method_<name>.cpp         one method: its own command-line options (help,
//                             defaults), its training recipe (lr, weight
//                             decay, schedule) and its config from the options
//   main.cpp                  the common command line and the list of methods
// Methods are built over ssl::any_backbone<float> (the architecture is a run
// time choice), so each is instantiated once, not once per architecture.
//
// A method is a spec struct turned into a method_entry by make_entry<Spec>():
//   struct spec {
//       static constexpr const char* name, summary;
//       template <class B> using method = ...;                  // ssl::method<...>
//       std::optional<...> flag...;                              // its options, set when given
//       void add_options(method_options&);                       // registers them
//       recipe defaults() const;                                 // lr per 256 images, weight decay, schedule
//       typename method<backbone_t>::config config(const common_options&, const ssl::data::image_dataset& train,
//                                                  std::size_t instances) const;
//       // optional: the set the method trains on, derived from the images
//       // (a pure function of the config, so --resume derives the same set)
//       ssl::data::image_dataset training_set(const config&, const ssl::data::image_dataset& images) const;
//   };
// The config travels as JSON (ssl/io/config_json.hpp): `ssl train` builds
// it from the options, trains the method it describes and stores it in every
// checkpoint (metadata "ssl.config"); `ssl eval`, `embed`, `export` and
// `train --resume` rebuild the method from it.
#include <ssl/backbone/any_backbone.hpp>
#include <ssl/backbone/channel_split.hpp>
#include <ssl/core/cpu_check.hpp>
#include <ssl/data/dataset.hpp>
#include <ssl/data/shards.hpp>
#include <ssl/eval/figures.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/eval/layers.hpp>
#include <ssl/eval/linear_probe.hpp>
#include <ssl/eval/linear_svm.hpp>
#include <ssl/eval/lowshot.hpp>
#include <ssl/eval/finetune.hpp>
#include <ssl/io/checkpoint.hpp>
#include <ssl/io/config_json.hpp>
#include <ssl/io/safetensors.hpp>
#include <ssl/trainer.hpp>

#include "dist.hpp"  // mpirun -np P ssl train: data parallel, rank 0 prints and writes

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

SSL_EXTERN_ANY_BACKBONE(float);  // compiled once, in common.cpp

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <typeindex>
#include <vector>

namespace cli {

namespace fs = std::filesystem;

/// The options every method shares (method-specific ones live in the
/// method's file).
struct common_options {
    std::string method = "simclr";
    std::string data;  // empty: fashion-mnist when installed, else synthetic
    std::string backbone = "resnet18";
    std::size_t width = 16;
    std::string stem = "auto";
    std::size_t batch = 256, epochs = 5, threads = 0, workers = 1, max_steps = 0, train_limit = 0, eval_limit = 0;
    std::size_t max_data_mb = 1024;  // the most data read from one IDX or CIFAR file, or decoded from a folder
    std::uint64_t max_image_pixels = ssl::data::default_max_image_pixels;  // --max-image-pixels: one image's, folder data
    std::size_t sync_bn_group = 0;  // under mpirun: batch norm within groups of this many ranks (0: all)
    std::size_t shuffle_buffer = 10000;  // --data shards:DIR: samples in the shuffle buffer (README "Data larger than memory")
    // folder:DIR data: the side and channels the images are brought to (0: from the data)
    std::size_t image_size = 0, channels = 0;
    std::string eval_data;  // --eval-data SPEC: the labelled set evaluation uses
    double holdout = 0;     // --holdout F: the fraction of a labelled set held out as the test set
    double lr = 0;             // 0: the method's, scaled by batch / 256
    double weight_decay = -1;  // < 0: the method's
    double crop_scale = 0;     // smallest random-resized-crop area fraction; 0: the method's
    std::string optimizer;     // empty: sgd
    std::string schedule;      // empty: the method's
    std::uint64_t seed = 0;
    std::string device = "auto";
    std::string out;
    bool resume = false, json = false, baseline = false, no_progress = false;
    std::size_t winograd = 2;  ///< --winograd: 3x3 convolutions by F(2x2, 3x3), F(4x4, 3x3) or 0 (off) (backend/host/winograd.hpp)
    std::size_t eval_every = 0;
    std::string protocol = "knn,linear";  ///< --protocol: the evaluation protocols (eval suite, issue 21)
    std::string finetune_fractions = "0.01,0.1";  ///< --finetune-fractions: --protocol finetune's fractions of the labels
    std::size_t finetune_epochs = 0;              ///< --finetune-epochs (0: 60 below 10 % of the labels, 30 from 10 %)
    bool no_figures = false;                      ///< --no-figures: the evaluation suite writes no SVG figures
    // eval / embed / export
    std::string checkpoint, output;
    std::string format = "safetensors";  ///< export --format: safetensors or onnx
    /// The options given on the command line ("--lr", ...).
    std::set<std::string> given;
    bool was_given(const std::string& name) const { return given.contains(name); }
};

/// A method's training recipe: the defaults of --lr (per 256 images),
/// --weight-decay and --schedule.
/// A method's paper defaults, used where the command line gives none.
struct recipe {
    double base_lr = 0.1;  ///< per 256 images: the run's lr is base_lr x batch / 256
    double weight_decay = 5e-4;
    const char* schedule = "cosine";
    const char* optimizer = "sgd";
    std::size_t batch = 0;  ///< 0: the program's (256)
};

struct data_sets {
    ssl::data::image_dataset train;       ///< what the method trains on
    ssl::data::image_dataset eval_train;  ///< labelled train split for kNN / linear probe
    std::optional<ssl::data::image_dataset> test;
    std::string name;
    /// What the evaluation uses, in words (the summary's line).
    std::string evaluation;
    /// Lines for the user: the size a folder was brought to and why, ...
    std::vector<std::string> notes;
    /// --holdout: the images of the set that was split (eval checks it is the same set).
    std::size_t holdout_from = 0;
    /// --data shards:DIR: the shards training streams (train then holds only
    /// the first images, for the evaluation and the model's shape).
    std::optional<ssl::data::shard_set> shards;
};

/// What load_data reads, from the command line (and a checkpoint's record).
struct data_request {
    std::string data;  ///< --data (empty: fashion-mnist when installed, else synthetic)
    std::size_t limit = 0, eval_limit = 0, max_data_mb = 1024;
    /// folder:DIR data: the most pixels one image may declare (--max-image-pixels)
    std::uint64_t max_image_pixels = ssl::data::default_max_image_pixels;
    /// folder:DIR data: side and channels (0: from the images' headers, see load_data)
    std::size_t image_size = 0, channels = 0;
    /// Whether image_size / channels are the user's (--image-size / --channels),
    /// which other data than a folder refuses, or a checkpoint's.
    bool size_given = false, channels_given = false;
    std::string eval_data;  ///< --eval-data (empty: the test split of --data, if any)
    double holdout = 0;     ///< --holdout (0: none)
    std::uint64_t seed = 0;  ///< the holdout's seed
    /// With holdout: the images the run split (0: not checked); another count
    /// is an error (the folder changed: the split would not be the run's).
    std::size_t holdout_from = 0;
    bool evaluation = true;  ///< false (embed): only --data's images are needed
};

/// The trainer settings of a run as stored in its checkpoints, so that
/// --resume continues with them.
struct train_record {
    double lr = 0, weight_decay = 0;
    std::string schedule, optimizer;
    std::size_t batch = 0, epochs = 0;
    std::uint64_t seed = 0;
    std::string data;
    std::size_t train_limit = 0;
    // since issue 19 (optional in stored documents): --data's images as
    // trained (side, channels), the evaluation set and the held-out split
    std::size_t image_size = 0, channels = 0;
    std::string eval_data;
    double holdout = 0;
    std::size_t holdout_from = 0;
};

/// What `ssl train` writes into every checkpoint under "ssl.config":
///   {"version": 1, "method": "moco", "config": {backbone, augment, head, loss, target}, "train": {...}}
struct run_document {
    static constexpr const char* key = "ssl.config";
    std::string method;
    nlohmann::json config;  ///< the method's config (ssl::io::config_to_json)
    train_record train;
    std::string dump() const;
    /// The document in a checkpoint's metadata; nullopt when it has none (a
    /// checkpoint written before configs were stored). A document that is
    /// not valid JSON, lacks a key or has an unknown one is an
    /// ssl::io_error naming `source` and the key.
    static std::optional<run_document> from_metadata(const std::map<std::string, std::string>& metadata,
                                                     const std::string& source);
};

/// Where two configs first differ: "key 'target.size': 128 in the checkpoint, 4096 on the command line".
std::string first_difference(const nlohmann::json& stored, const nlohmann::json& asked, const std::string& path = "");

// ---- validators of the command line's numbers ---------------------------

/// The most threads an option may ask for: the hardware's
/// (std::thread::hardware_concurrency()), or 256 when it is unknown.
std::size_t max_threads();
/// --threads / --workers: at most max_threads() (a count beyond the hardware
/// only costs memory per thread; 10000 exhausted it before the first step).
CLI::Validator thread_count();
/// Numbers. nan and inf are refused ("must be a finite number, got nan";
/// they passed CLI11's range checks, then the run replaced them by defaults
/// or failed deep inside), and bounds are printed with %g (CLI11's
/// PositiveNumber printed the largest double with 309 digits).
CLI::Validator finite_number();
CLI::Validator positive_number();      ///< finite and > 0
CLI::Validator non_negative_number();  ///< finite and >= 0
/// --holdout: a finite fraction in [0, 1).
CLI::Validator fraction_below_one();
/// --image-size: a side in pixels, 8 to 4096 ("must be a side in pixels from 8 to 4096, got 0").
CLI::Validator image_side();
/// --max-image-pixels: N (1 to 2^40) or WxH (sides 1 to 2^20), stored as the pixel count.
CLI::Validator pixel_count();
/// --channels: 1 or 3 ("must be 1 (grey) or 3 (RGB), got 2").
CLI::Validator channel_count();

// ---- method-specific command-line options -------------------------------

class option_registry;

/// One method's handle for registering its options. An option name that
/// several methods register (--temperature) is one command-line option that
/// applies to each of them (it must have the same value type); each method
/// keeps its own help line and its own variable.
class method_options {
public:
    method_options(option_registry& r, std::string method) : reg_(r), method_(std::move(method)) {}
    /// `name VALUE`: sets var when given. `check` validates the value (a
    /// shared option applies each distinct check of its methods once); a
    /// floating-point option also refuses nan and inf (finite_number()).
    template <class T>
    CLI::Option* add(const std::string& name, std::optional<T>& var, const std::string& help,
                     const std::optional<CLI::Validator>& check = std::nullopt);
    /// A flag: sets var = value when given.
    CLI::Option* add_flag(const std::string& name, std::optional<bool>& var, bool value, const std::string& help);
    const std::string& method() const noexcept { return method_; }

private:
    option_registry& reg_;
    std::string method_;
};

/// The method-specific options of `ssl train`, with the methods each applies to.
class option_registry {
public:
    explicit option_registry(CLI::App& train) : app_(train) {}
    method_options for_method(const std::string& method) { return {*this, method}; }
    /// After every method registered: help groups ("moco options", or
    /// "options of several methods") and per-method help lines.
    void finish();
    /// An option given for a method it does not apply to is an error, not
    /// silently ignored (`--queue` with simclr would otherwise train
    /// something other than what was asked without a word).
    void reject_foreign(const std::string& method) const;
    /// Whether any of the method's own options was given.
    bool any_given(const std::string& method) const;

private:
    friend class method_options;
    struct entry {
        CLI::Option* option = nullptr;
        std::type_index type = typeid(void);
        std::shared_ptr<void> setters;  // std::vector<std::function<void(const T&)>> (flags: void())
        std::vector<std::pair<std::string, std::string>> helps;  // (method, help)
    };
    entry* find(const std::string& name);
    /// The entry of `name` (created by create(setters) the first time), with
    /// `method` added to the methods it applies to.
    template <class Setter, class Create>
    entry& claim(const std::string& name, std::type_index type, const std::string& method, const std::string& help,
                 Create&& create);
    static void add_check(CLI::Option* option, const CLI::Validator& check);
    CLI::App& app_;
    std::vector<std::unique_ptr<entry>> entries_;
};

template <class Setter, class Create>
option_registry::entry& option_registry::claim(const std::string& name, std::type_index type, const std::string& method,
                                               const std::string& help, Create&& create) {
    entry* e = find(name);
    if (!e) {
        auto s = std::make_shared<std::vector<Setter>>();
        auto n = std::make_unique<entry>();
        n->option = create(s);
        n->type = type;
        n->setters = s;
        e = n.get();
        entries_.push_back(std::move(n));
    } else if (e->type != type) {
        throw std::logic_error(name + " is registered by two methods with different value types (or as a flag)");
    }
    e->helps.emplace_back(method, help);
    return *e;
}

template <class T>
CLI::Option* method_options::add(const std::string& name, std::optional<T>& var, const std::string& help,
                                 const std::optional<CLI::Validator>& check) {
    using setter = std::function<void(const T&)>;
    auto& e = reg_.claim<setter>(name, typeid(T), method_, help, [&](std::shared_ptr<std::vector<setter>> s) {
        return reg_.app_.add_option_function<T>(
            name,
            [s](const T& v) {
                for (auto& f : *s) f(v);
            },
            help);
    });
    static_cast<std::vector<setter>*>(e.setters.get())->push_back([&var](const T& v) { var = v; });
    // every floating option refuses nan and inf, before the method's own check
    if constexpr (std::is_floating_point_v<T>) option_registry::add_check(e.option, finite_number());
    if (check) option_registry::add_check(e.option, *check);
    return e.option;
}

// ---- methods ------------------------------------------------------------

/// What to do with a method rebuilt from a checkpoint.
enum class checkpoint_action { eval, embed, export_backbone };

/// One method of the program (make_entry<Spec>() builds it from a spec).
class method_entry {
public:
    virtual ~method_entry() = default;
    virtual const char* name() const = 0;
    virtual const char* summary() const = 0;
    /// Registers the method's own options (once, before parsing).
    virtual void add_options(method_options& o) = 0;
    /// The training recipe; after parsing (it may depend on the method's options).
    virtual recipe defaults() const = 0;
    /// The method's config for these options and training set (`instances`
    /// images; per-image state is sized from it), as JSON.
    virtual nlohmann::json config(const common_options& o, const ssl::data::image_dataset& train,
                                  std::size_t instances) const = 0;
    /// Trains the method run.config describes, with the trainer settings in o.
    virtual int train(const run_document& run, const common_options& o, const data_sets& d) const = 0;
    /// Rebuilds the method `config` describes, loads the checkpoint into it
    /// and runs the action (d: null for export, which needs no data).
    virtual int from_checkpoint(const nlohmann::json& config, const common_options& o,
                                const ssl::io::safetensors_file& file, const data_sets* d,
                                checkpoint_action action) const = 0;
};

std::vector<std::size_t> iota(std::size_t n);
/// The data sets of a request (common.cpp says how each option acts): the
/// first `limit` train images (0: all), the first `eval_limit` as the kNN /
/// probe train set; IDX and CIFAR files of more than max_data_mb MiB of data
/// to read, and folders of more decoded, are refused.
data_sets load_data(const data_request& r);
std::string fmt(const std::optional<double>& v);
/// `ssl shards` (shards.cpp): registers the subcommand, and runs it once parsed.
CLI::App* add_shards_command(CLI::App& app);
int run_shards_command();
/// `ssl report RUN_DIR` (report.cpp): registers the subcommand, and runs it once parsed.
CLI::App* add_report_command(CLI::App& app);
int run_report_command();
/// `ssl clips` (clips.cpp): synthetic clips of objects in motion.
CLI::App* add_clips_command(CLI::App& app);
int run_clips_command();
std::string fmt_g(double v);

struct eval_numbers {
    std::optional<double> knn, linear;
    /// ("kNN", top-1), ("linear", top-1), those there are: the plot's series.
    std::vector<std::pair<std::string, double>> series() const {
        std::vector<std::pair<std::string, double>> r;
        if (knn) r.emplace_back("kNN", *knn);
        if (linear) r.emplace_back("linear", *linear);
        return r;
    }
};

/// The backbone features of every image of s (N, output_dim), in chunks.
template <class M>
ssl::tensor<float> embed_set(M& m, const ssl::data::image_dataset& s) {
    ssl::tensor<float> out({s.size(), m.backbone().output_dim()});
    const std::size_t chunk = 2048;
    for (std::size_t b = 0; b < s.size(); b += chunk) {
        std::vector<std::size_t> idx;
        for (std::size_t i = b; i < std::min(s.size(), b + chunk); ++i) idx.push_back(i);
        auto f = m.embed(s.batch(idx));
        std::copy(f.begin(), f.end(), out.data() + b * out.dim(1));
    }
    return out;
}

/// kNN (k = 200, T = 0.1) and a linear probe on frozen backbone features,
/// when both sets are labelled (each only when asked).
template <class M>
eval_numbers evaluate(M& m, const data_sets& d, bool knn = true, bool linear = true) {
    eval_numbers r;
    if (!d.test || !d.eval_train.labelled() || !d.test->labelled() || (!knn && !linear)) return r;
    auto ftr = embed_set(m, d.eval_train), fte = embed_set(m, *d.test);
    if (knn)
        r.knn = 100.0 * ssl::eval::knn_evaluate(ftr, d.eval_train.labels, fte, d.test->labels,
                                                {.k = 200, .temperature = 0.1}).top1;
    if (linear) r.linear = 100.0 * ssl::eval::linear_probe(ftr, d.eval_train.labels, fte, d.test->labels, {}).test_top1;
    return r;
}

// ---- the evaluation suite (--protocol; issue 21) -------------------------

/// --protocol knn,linear,svm,lowshot,layers,finetune (or all): which protocols run.
struct protocol_set {
    bool knn = true, linear = true, svm = false, lowshot = false, layers = false, finetune = false;
    std::vector<double> finetune_fractions{0.01, 0.1};  ///< finetune: the fractions of the labels
    std::size_t finetune_epochs = 0;                    ///< finetune: 0 = eval/finetune.hpp's default
    bool figures = true;  ///< --no-figures: the table and files only, no SVG figures (nor their inputs)
    bool extra() const { return svm || lowshot || layers || finetune; }
    /// Parses a comma list; an unknown name is a value_error naming it and the known ones.
    static protocol_set parse(const std::string& list);
    /// parse(o.protocol) with o's fine-tuning settings.
    static protocol_set from(const common_options& o);
    std::string str() const;
};
/// --protocol's check, with parse's message.
CLI::Validator protocol_list();
/// --finetune-fractions' comma list of numbers in (0, 1]; a value_error naming a bad one.
std::vector<double> parse_fractions(const std::string& list);
/// --finetune-fractions and --finetune-epochs on a subcommand.
void add_finetune_options(CLI::App* c, common_options& o);

/// The multi-layer probe trains on at most this many eval-train images
/// (5 layers of ~9k dimensions: 10k images hold 5 x 370 MB of floats, and the
/// probe's standardized double copy of one layer 740 MB).
inline constexpr std::size_t layer_probe_max_train = 10000;

/// The suite's results, for the table, the JSON and the CSV (common.cpp writes them).
struct suite_results {
    std::string encoder;  ///< "trained" or "random init"
    eval_numbers basic;
    std::optional<ssl::eval::linear_svm_result> svm;
    std::optional<ssl::eval::lowshot_result> lowshot;
    std::vector<std::size_t> lowshot_skipped;  ///< k above the smallest class
    std::vector<ssl::eval::layer_probe_row> layers;
    std::optional<ssl::eval::finetune_result> finetune;
    ssl::eval::finetune_config finetune_settings;
    std::vector<double> finetune_skipped;  ///< fractions that leave a class of the eval train set without a label
    std::size_t layer_train_images = 0, train_images = 0, test_images = 0;
    /// What the retrieval grid and the class map show (labelled sets only).
    struct figure_inputs {
        std::vector<ssl::eval::figures::retrieval_row> retrieval;
        std::vector<ssl::eval::figures::map_point> map;
        std::size_t map_of = 0;  ///< test images the map's PCA was fitted on
        std::vector<std::string> class_names;
    };
    std::optional<figure_inputs> figures;
};
/// Test images in the retrieval grid, neighbours each, most points on the map.
inline constexpr std::size_t retrieval_queries = 8, retrieval_neighbours = 5, map_max_points = 2000;
/// The retrieval grid's rows (retrieval_queries test images, a seeded choice,
/// each with its nearest eval-train images by cosine similarity of the kNN
/// features) and the class map's points (PCA of the test features, at most
/// map_max_points of them, a seeded choice).
suite_results::figure_inputs figure_inputs(const ssl::tensor<float>& ftr, const ssl::tensor<float>& fte,
                                           const data_sets& d, std::uint64_t seed);
/// Prints the table (stdout) and writes it to `stem`.json and `stem`.csv, and
/// the figures there are as `stem`_lowshot.svg, _layers.svg, _retrieval.svg, _map.svg.
void report_suite(const suite_results& r, const protocol_set& p, const fs::path& stem, bool print);

/// The stage taps a multi-layer probe reads: conv1 (its output after bn1 and
/// relu: tap "relu") and layer1..layer4 of ResNets; other backbones their
/// top-level taps (none: a value_error listing the taps).
std::vector<std::string> probe_layers(const std::vector<std::string>& taps, const std::string& arch);

/// The architecture options in a method's backbone config: its own, or a
/// channel-split backbone's (split-brain: the whole network its halves halve).
inline const ssl::any_backbone_options& arch_options(const ssl::any_backbone_options& o) { return o; }
inline const ssl::any_backbone_options& arch_options(const ssl::channel_split_options<ssl::any_backbone_options>& o) {
    return o.backbone;
}


/// The protocols `p` asks for on m's backbone (labelled eval sets needed:
/// nothing runs otherwise). knn and linear come from evaluate().
template <class M>
suite_results run_suite(M& m, const data_sets& d, const protocol_set& p, const std::string& encoder, bool verbose) {
    suite_results r;
    r.encoder = encoder;
    if (!d.test || !d.eval_train.labelled() || !d.test->labelled()) return r;
    r.train_images = d.eval_train.size();
    r.test_images = d.test->size();
    auto note = [&](const char* what) {
        if (verbose) std::fprintf(stderr, "evaluating (%s): %s\n", encoder.c_str(), what);
    };
    {  // the features: every protocol but layers, and the retrieval grid and class map
        note("features");
        const auto ftr = embed_set(m, d.eval_train), fte = embed_set(m, *d.test);
        if (p.figures) {
            note("figures");
            r.figures = figure_inputs(ftr, fte, d, m.cfg().backbone.seed);
        }
        const auto& ytr = d.eval_train.labels;
        const auto& yte = d.test->labels;
        if (p.knn) {
            note("kNN");
            r.basic.knn = 100.0 * ssl::eval::knn_evaluate(ftr, ytr, fte, yte, {.k = 200, .temperature = 0.1}).top1;
        }
        if (p.linear) {
            note("linear probe");
            r.basic.linear = 100.0 * ssl::eval::linear_probe(ftr, ytr, fte, yte, {}).test_top1;
        }
        if (p.svm || p.lowshot) {
            note("linear SVM, 3-fold CV over the cost");
            r.svm = ssl::eval::linear_svm_evaluate(ftr, ytr, fte, yte);
        }
        if (p.lowshot) {
            note("low-shot");
            ssl::eval::lowshot_config lc;
            lc.seed = m.cfg().backbone.seed;
            lc.svm.cost = r.svm->cost;
            const std::size_t least = ssl::eval::smallest_class(ytr).first;
            std::vector<std::size_t> ks;
            for (std::size_t k : lc.shots) (k <= least ? ks : r.lowshot_skipped).push_back(k);
            lc.shots = ks;
            if (!ks.empty()) r.lowshot = ssl::eval::lowshot_evaluate(ftr, ytr, fte, yte, lc);
        }
    }
    const auto transform = [&](const ssl::tensor<float>& x) { return m.augmentation().eval_transform(x); };
    if (p.layers) {
        if (m.eval_copies() > 1)  // cpc's patch grid, jigsaw --eval-tiles: rows of a tap are copies, not images
            throw ssl::value_error("--protocol layers: this method evaluates an image as " +
                                   std::to_string(m.eval_copies()) + " copies (patches or tiles) whose features it "
                                   "averages; the layer probes read one map per image: use knn, linear, svm, lowshot, "
                                   "finetune");
        const auto names = probe_layers(m.backbone().tap_names(), arch_options(m.cfg().backbone).arch);
        const std::size_t n = std::min(d.eval_train.size(), layer_probe_max_train);
        r.layer_train_images = n;
        const auto train_images = d.eval_train.batch(iota(n));
        const auto test_images = d.test->batch(iota(d.test->size()));
        const std::vector<std::int64_t> ytr(d.eval_train.labels.begin(),
                                            d.eval_train.labels.begin() + static_cast<std::ptrdiff_t>(n));
        for (const auto& name : names) {  // one layer at a time: only its features are held
            note(("layer " + name).c_str());
            const auto tr = ssl::eval::layer_features(m.backbone(), train_images, {name}, transform);
            const auto te = ssl::eval::layer_features(m.backbone(), test_images, {name}, transform);
            auto rows = ssl::eval::multilayer_probe(tr, ytr, te, d.test->labels);
            r.layers.push_back(rows.front());
        }
    }
    if (p.finetune) {  // the whole network, a copy of m's backbone, on each fraction of the labels
        auto& fc = r.finetune_settings;
        fc.epochs = p.finetune_epochs;
        fc.seed = m.cfg().backbone.seed;
        r.finetune.emplace();
        for (double f : p.finetune_fractions) {
            if (!ssl::eval::labels_every_class(d.eval_train, f)) {
                r.finetune_skipped.push_back(f);
                continue;
            }
            note(("fine-tuning on " + fmt_g(100.0 * f) + " % of the labels").c_str());
            r.finetune->rows.push_back(
                ssl::eval::finetune(m.backbone(), d.eval_train, *d.test, f, fc, transform, m.eval_copies()).row);
        }
    }
    return r;
}

/// Every method is instantiated once, over a backbone picked at run time
/// (--backbone): the architectures are compiled once, in common.cpp.
using backbone_t = ssl::any_backbone<float>;

/// The dense pretexts' target grid (colorization, split-brain, motion): the
/// largest of 8, 7, 4, 2 cells per side that divides the crop side, else 1.
inline std::size_t dense_grid(std::size_t size) {
    for (std::size_t g : {8, 7, 4, 2})
        if (size % g == 0) return g;
    return 1;
}

inline ssl::any_backbone_options backbone_options(const common_options& o, const ssl::data::image_dataset& d) {
    const bool cifar = o.stem == "cifar" || (o.stem == "auto" && d.height() <= 64);
    return {.arch = o.backbone, .in_channels = d.channels(), .width = o.width,
            .stem = cifar ? ssl::stem::cifar : ssl::stem::imagenet, .seed = o.seed};
}

/// Trains m with the settings in o (resolved: lr, weight decay, schedule and
/// optimizer set), writing `run` into every checkpoint.
template <class M>
int run_method(M& m, const common_options& o, const data_sets& d, const run_document& run) {
    const auto t_start = std::chrono::steady_clock::now();
    const std::string& method_name = run.method;
    const auto& bb = arch_options(m.cfg().backbone);
    // data parallel (dist.hpp): every rank trains, rank 0 alone evaluates,
    // prints (stdout) and writes; errors still reach stderr from every rank
    ssl::dist::communicator* const comm = run_communicator();
    const bool lead = lead_rank(comm);
    if (!lead && !std::freopen("/dev/null", "w", stdout)) std::fclose(stdout);
    eval_numbers base;
    const protocol_set protocols = protocol_set::from(o);
    const fs::path out_dir = o.out.empty() ? fs::path("runs") / method_name : fs::path(o.out);
    if (o.baseline && lead) {
        M fresh(m.cfg());
        if (protocols.extra()) {
            const auto sr = run_suite(fresh, d, protocols, "random init", !o.json);
            base = sr.basic;
            fs::create_directories(out_dir);
            report_suite(sr, protocols, out_dir / "eval_random_init", !o.json);
        } else {
            base = evaluate(fresh, d, protocols.knn, protocols.linear);
        }
        if (!o.json)
            std::printf("random-init encoder: kNN %s %%, linear probe %s %%\n", fmt(base.knn).c_str(),
                        fmt(base.linear).c_str());
    }
    ssl::trainer_config tc;
    tc.epochs = o.epochs;
    tc.batch = o.batch;
    tc.lr = o.lr;
    tc.optimizer = o.optimizer;
    tc.schedule = o.schedule;
    tc.weight_decay = o.weight_decay;
    tc.seed = o.seed;
    tc.workers = o.workers;
    tc.out_dir = o.out.empty() ? fs::path("runs") / method_name : fs::path(o.out);
    tc.resume = o.resume;
    tc.progress = !o.no_progress;
    tc.max_steps = o.max_steps;
    tc.comm = comm;
    tc.sync_batch_norm_group = o.sync_bn_group;
    tc.metadata = {{"method", method_name},
                   {"backbone", bb.arch},
                   {"width", std::to_string(bb.width)},
                   {"stem", o.stem},
                   {"data", d.name},
                   {"image_size", std::to_string(d.train.height())},
                   {"channels", std::to_string(d.train.channels())},
                   {"train_images", std::to_string(d.train.size())},
                   {"seed", std::to_string(o.seed)},
                   {run_document::key, run.dump()}};
    tc.shuffle_buffer = o.shuffle_buffer;
    // --data shards:DIR streams the shards; d.train is then their first images
    const std::size_t train_images = d.shards ? d.shards->size() : d.train.size();
    tc.metadata["train_images"] = std::to_string(train_images);
    ssl::trainer<M> t = d.shards ? ssl::trainer<M>(m, *d.shards, tc) : ssl::trainer<M>(m, d.train, tc);
    if (!o.json)
        std::printf("training %s, %s width %zu%s, on %s (%zu images %zux%zux%zu), batch %zu, %zu epochs, lr %.4g, "
                    "weight decay %s, %s schedule, %zu threads\n",
                    method_name.c_str(), bb.arch.c_str(), bb.width,
                    bb.arch == "convnet" ? "" : bb.stem == ssl::stem::cifar ? " (CIFAR stem)" : " (ImageNet stem)",
                    d.name.c_str(), train_images,
                    d.train.channels(), d.train.height(), d.train.width(), o.batch, o.epochs, tc.lr,
                    fmt_g(tc.weight_decay).c_str(), tc.schedule.c_str(), ssl::num_threads());
    if (comm && !o.json)
        std::printf("data parallel: %d ranks (%s), %zu images per rank and step, %s\n", comm->size(),
                    comm->name().c_str(), o.batch / static_cast<std::size_t>(comm->size()),
                    o.sync_bn_group == 0 || o.sync_bn_group == static_cast<std::size_t>(comm->size())
                        ? "synchronized batch norm"
                    : o.sync_bn_group == 1
                        ? "batch norm per rank"
                        : ("batch norm synchronized within groups of " + std::to_string(o.sync_bn_group) + " ranks")
                              .c_str());
    // the instructions this program was compiled for (SSL_CPU_LEVELS: the
    // level the launcher chose; -march=native: at least this level)
    if (!o.json && ssl::cpu::compiled_level() >= 0)
        std::printf("instruction set: %s, on a CPU of %s\n", ssl::cpu::level_text(ssl::cpu::compiled_level()).c_str(),
                    std::string(ssl::cpu::level_names[static_cast<std::size_t>(ssl::cpu::cpu_level())]).c_str());
    if (o.eval_every) {
        t.on_epoch_end = [&](std::size_t epoch) -> std::vector<std::pair<std::string, double>> {
            // after a Ctrl-C the run stops at this epoch's end: no evaluation
            if ((epoch + 1) % o.eval_every != 0 || ssl::train::interrupt_requested() || !lead) return {};
            auto e = evaluate(m, d);
            auto r = e.series();
            if (!o.json)
                std::fprintf(stderr, "epoch %zu: kNN %s %%, linear %s %%\n", epoch + 1, fmt(e.knn).c_str(),
                             fmt(e.linear).c_str());
            return r;
        };
    }
    // Ctrl-C: from here SIGINT only sets the flag the trainer's interrupt
    // guard reads (the guard installs the same handler for the run and puts
    // this one back), so a second Ctrl-C while the interrupted run writes its
    // checkpoint, or prints its summary, is not a kill.
    const auto previous_sigint = std::signal(SIGINT, ssl::detail::ssl_on_sigint);
    const auto s = t.fit();
    // A finished run's evaluation may take long: Ctrl-C ends it at once (the
    // checkpoint is written). A Ctrl-C after the last step counts as an interrupt.
    if (!s.interrupted) std::signal(SIGINT, previous_sigint == SIG_ERR ? SIG_DFL : previous_sigint);
    const bool interrupted = s.interrupted || ssl::train::interrupt_requested();
    if (interrupted)
        std::fprintf(stderr, "interrupted: the end-of-run evaluation is skipped and backbone.safetensors is not "
                             "written; '%s' is saved (continue with --resume)\n",
                     (tc.out_dir / "last.safetensors").string().c_str());
    eval_numbers e;
    if (!interrupted && lead) {
        if (protocols.extra()) {
            const auto sr = run_suite(m, d, protocols, "trained", !o.json);
            e = sr.basic;
            report_suite(sr, protocols, tc.out_dir / "eval", !o.json);
        } else {
            e = evaluate(m, d, protocols.knn, protocols.linear);
        }
    }
    // the end-of-run evaluation in the plot's evaluation panel (it was empty
    // without --eval-every)
    if (auto* plot = t.chores().template find<ssl::train::run_plot>(); plot && (e.knn || e.linear)) {
        const auto r = e.series();
        plot->evaluated({.epoch = s.epochs_done ? s.epochs_done - 1 : 0, .results = r});
    }
    // the backbone alone, with torchvision names
    if (!interrupted && lead) ssl::save_checkpoint(tc.out_dir / "backbone.safetensors", m.backbone(), tc.metadata);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (!o.json) {
        std::printf("\n== %s summary ==\n", method_name.c_str());
        std::printf("data          %s (%zu train images %zux%zux%zu; evaluation %zu train / %zu test)\n",
                    d.name.c_str(), train_images, d.train.channels(), d.train.height(), d.train.width(),
                    d.eval_train.size(), d.test ? d.test->size() : 0);
        std::printf("evaluation    %s\n", d.evaluation.c_str());
        std::printf("backbone      %s width %zu (%zu parameters)\n", bb.arch.c_str(), bb.width,
                    ssl::parameter_count(m.backbone()));
        std::printf("epochs        %zu (%zu steps)%s\n", s.epochs_done, s.steps, s.interrupted ? " -- interrupted" : "");
        std::printf("loss          %.4f -> %.4f\n", s.first_loss, s.last_loss);
        std::printf("train time    %.1f s (%.0f images/s), total %.1f s\n", s.seconds, s.images_per_second, total);
        if (interrupted) std::printf("evaluation    skipped (interrupted)\n");
        else std::printf("kNN top-1     %s %%%s\n", fmt(e.knn).c_str(),
                    o.baseline ? ("   (random init " + fmt(base.knn) + " %)").c_str() : "");
        if (!interrupted) std::printf("linear top-1  %s %%%s\n", fmt(e.linear).c_str(),
                    o.baseline ? ("   (random init " + fmt(base.linear) + " %)").c_str() : "");
        std::printf("output        %s (last.safetensors, %smetrics.csv, plot.svg)\n", tc.out_dir.string().c_str(),
                    interrupted ? "" : "backbone.safetensors, ");
        // what a head learned that is worth reading (multitask's lasso mixture per task)
        if constexpr (requires { m.head().summary(); }) std::printf("head          %s\n", m.head().summary().c_str());
    }
    nlohmann::json j{{"method", method_name},     {"backbone", bb.arch},
                     {"width", bb.width},         {"data", d.name},
                     {"epochs", s.epochs_done},   {"steps", s.steps},
                     {"train_seconds", s.seconds}, {"total_seconds", total},
                     {"images_per_second", s.images_per_second}, {"first_loss", s.first_loss},
                     {"last_loss", s.last_loss},  {"interrupted", interrupted},
                     {"lr", tc.lr},               {"weight_decay", tc.weight_decay},
                     {"schedule", tc.schedule},   {"out", tc.out_dir.string()}};
    if (ssl::cpu::compiled_level() >= 0)
        j["instruction_set"] = std::string(ssl::cpu::level_names[static_cast<std::size_t>(ssl::cpu::compiled_level())]);
    j["image_size"] = d.train.height();
    j["channels"] = d.train.channels();
    j["evaluation"] = d.evaluation;
    j["eval_train_images"] = d.eval_train.size();
    j["eval_test_images"] = d.test ? d.test->size() : 0;
    j["knn_top1"] = e.knn ? nlohmann::json(*e.knn) : nlohmann::json();
    j["linear_top1"] = e.linear ? nlohmann::json(*e.linear) : nlohmann::json();
    if (o.baseline) {
        j["random_init_knn_top1"] = base.knn ? nlohmann::json(*base.knn) : nlohmann::json();
        j["random_init_linear_top1"] = base.linear ? nlohmann::json(*base.linear) : nlohmann::json();
    }
    if constexpr (requires { m.head().summary(); }) j["head"] = m.head().summary();
    if (o.json) std::printf("%s\n", j.dump().c_str());
    return interrupted ? 130 : 0;
}

/// Whether `file` holds every tensor of backbone b under the backbone's own
/// names: a backbone-only checkpoint (train's backbone.safetensors, export's
/// output) rather than a run's state ("backbone.conv1.weight", ...).
template <class B>
bool holds_backbone(B& b, const ssl::io::safetensors_file& file) {
    bool all = true;
    ssl::detail::for_each_state(b, [&](const std::string& name, const auto&) {
        all = all && file.tensors.contains(name);
    });
    return all;
}

/// `ssl export --format onnx` (common.cpp): the backbone as an ONNX model
/// (ssl/io/onnx.hpp) whose input is raw images in [0, 1] at the size the run
/// trained on ("image_size" in the checkpoint's metadata), with the method's
/// eval normalisation baked in; refused, naming why, when the method's eval
/// transform is not that normalisation at that size (jigsaw, exemplar patches
/// of another size). eval_transform is the method's (augmentation's).
void export_onnx(backbone_t& b, const std::function<ssl::tensor<float>(const ssl::tensor<float>&)>& eval_transform,
                 const common_options& o, const std::map<std::string, std::string>& metadata);

/// Runs `action` on a method whose trained state was loaded from a checkpoint:
/// a run's state (what is missing from it stays as built), or a backbone-only
/// checkpoint, which is all that eval, embed and export use.
template <class M>
int checkpoint_action_on(M& m, const common_options& o, const ssl::io::safetensors_file& file, const data_sets* d,
                         checkpoint_action action) {
    if (holds_backbone(m.backbone(), file)) {
        ssl::load_state_dict(m.backbone(), file, true, o.checkpoint);
    } else {
        auto rep = ssl::load_state_dict(m, file, false, o.checkpoint);
        // a run whose classifier was split over ranks keeps it beside the file
        // ("split_state"): eval, embed and export never need it
        if (file.metadata.contains("split_state"))
            std::erase_if(rep.missing, [](const std::string& n) { return n.starts_with("loss."); });
        if (!rep.missing.empty())
            throw ssl::io_error("checkpoint '" + o.checkpoint + "' lacks " + std::to_string(rep.missing.size()) +
                                " tensors of this model, e.g. '" + rep.missing.front() +
                                "' (neither a run's checkpoint nor this backbone's own tensors)");
    }
    // a damaged or foreign checkpoint (ssl train never writes one): nan
    // weights gave chance-level accuracy and nan features without a word
    if (const std::string bad = ssl::train::first_non_finite(m); !bad.empty())
        throw ssl::io_error("checkpoint '" + o.checkpoint + "': " + bad + " (after loading it into the " +
                            "model); refusing to " +
                            (action == checkpoint_action::eval    ? "evaluate"
                             : action == checkpoint_action::embed ? "embed with"
                                                                  : "export") +
                            " it");
    switch (action) {
        case checkpoint_action::eval: {
            const protocol_set p = protocol_set::from(o);
            if (!p.extra()) {
                auto e = evaluate(m, *d, p.knn, p.linear);
                std::printf("kNN top-1 %s %%, linear probe top-1 %s %%\n", fmt(e.knn).c_str(), fmt(e.linear).c_str());
                return 0;
            }
            // the table, and eval_<checkpoint>.json / .csv next to the checkpoint
            const fs::path ck(o.checkpoint);
            const auto sr = run_suite(m, *d, p, "trained", true);
            report_suite(sr, p, ck.parent_path() / ("eval_" + ck.stem().string()), true);
            return 0;
        }
        case checkpoint_action::embed: {
            ssl::io::safetensors_file f;
            f.tensors["train_features"] = ssl::io::to_stored(m.embed(d->train.batch(iota(d->train.size()))));
            if (d->train.labelled()) {
                ssl::tensor<std::int64_t> l({d->train.size()});
                std::copy(d->train.labels.begin(), d->train.labels.end(), l.begin());
                f.tensors["train_labels"] = ssl::io::to_stored(l);
            }
            ssl::io::write_safetensors(o.output, f);
            std::printf("wrote %zu features to %s\n", d->train.size(), o.output.c_str());
            return 0;
        }
        case checkpoint_action::export_backbone: {
            if (o.format == "onnx") {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(m.backbone())>, backbone_t>) {
                    export_onnx(m.backbone(), [&](const ssl::tensor<float>& x) { return m.augmentation().eval_transform(x); },
                                o, file.metadata);
                    return 0;
                } else {
                    throw ssl::value_error("export --format onnx: this method's backbone is split over input channels "
                                           "(split_brain), which the ONNX writer does not express; export it with "
                                           "--format safetensors");
                }
            }
            // the run's metadata (its config: eval and embed rebuild the
            // method from the exported file), without the position in the run
            auto meta = file.metadata;
            for (const char* k : {"epoch", "step_in_epoch", "global_step", "optimizer"}) meta.erase(k);
            meta["source"] = o.checkpoint;
            ssl::save_checkpoint(o.output, m.backbone(), meta);
            std::printf("wrote the backbone (torchvision names) to %s\n", o.output.c_str());
            return 0;
        }
    }
    return 2;
}

/// A spec's method_entry (see the file comment).
template <class Spec>
class entry_impl final : public method_entry {
public:
    using method_type = typename Spec::template method<backbone_t>;
    using config_type = typename method_type::config;

    const char* name() const override { return Spec::name; }
    const char* summary() const override { return Spec::summary; }
    void add_options(method_options& o) override { spec_.add_options(o); }
    recipe defaults() const override { return spec_.defaults(); }
    nlohmann::json config(const common_options& o, const ssl::data::image_dataset& train,
                          std::size_t instances) const override {
        config_type c = spec_.config(o, train, instances);
        if (o.crop_scale > 0) {
            if constexpr (requires { c.augment.crop_min_scale; })
                c.augment.crop_min_scale = o.crop_scale;
            else
                throw ssl::value_error(std::string("--crop-scale does not apply to --method ") + Spec::name +
                                       " (its augmentation has no random resized crop)");
        }
        return ssl::io::config_to_json(c);
    }
    int train(const run_document& run, const common_options& o, const data_sets& d) const override {
        const config_type c = read(run.config, std::string("the config of --method ") + Spec::name);
        method_type m(c);
        if constexpr (requires { spec_.training_set(c, d.train); }) {
            if (d.shards)
                throw ssl::value_error(std::string("--method ") + Spec::name + " trains on a set derived from images "
                                       "held in memory, so it cannot stream --data " + d.name + "; give an in-memory --data");
            // the method trains on a set derived from the images (Exemplar's
            // seed patches); evaluation stays on the images
            data_sets own = d;
            own.train = spec_.training_set(c, d.train);
            return run_method(m, o, own, run);
        } else {
            return run_method(m, o, d, run);
        }
    }
    int from_checkpoint(const nlohmann::json& config, const common_options& o, const ssl::io::safetensors_file& file,
                        const data_sets* d, checkpoint_action action) const override {
        const config_type c = read(config, "checkpoint '" + o.checkpoint + "', metadata '" + run_document::key + "'");
        if (d && d->train.channels() != arch_options(c.backbone).in_channels)
            throw ssl::value_error("checkpoint '" + o.checkpoint + "': its backbone takes " +
                                   std::to_string(arch_options(c.backbone).in_channels) + "-channel images, --data " + d->name +
                                   " has " + std::to_string(d->train.channels()) + " channels");
        method_type m(c);
        return checkpoint_action_on(m, o, file, d, action);
    }

private:
    static config_type read(const nlohmann::json& j, const std::string& what) {
        return ssl::io::config_from_json<config_type>(j, what);
    }
    Spec spec_;
};

/// The entry of a spec: one object per spec, built on first use.
template <class Spec>
method_entry& make_entry() {
    static entry_impl<Spec> e;
    return e;
}

}  // namespace cli
