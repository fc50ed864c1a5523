// Data loading for the `ssl` program (the only translation unit that
// compiles the image-folder reader's stb decoder), the validators of its
// numeric options, the method-option registry and the run document stored
// in checkpoints.
#include "common.hpp"

#include <ssl/data/cifar.hpp>
#include <ssl/data/clips.hpp>
#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/holdout.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/data/image_folder.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/augment/presets.hpp>
#include <ssl/core/parse.hpp>
#include <ssl/io/onnx.hpp>

#include <cerrno>
#include <fstream>
#include <cmath>
#include <cstdlib>
#include <thread>

// The four architectures behind --backbone, compiled here only (common.hpp
// keeps every other translation unit from instantiating them).
SSL_INSTANTIATE_ANY_BACKBONE(float);

template <>
struct ssl::io::config_fields<cli::train_record> {
    using S = cli::train_record;
    static constexpr auto list = std::tuple{field("lr", &S::lr),
                                            field("weight_decay", &S::weight_decay),
                                            field("schedule", &S::schedule),
                                            field("optimizer", &S::optimizer),
                                            field("batch", &S::batch),
                                            field("epochs", &S::epochs),
                                            field("seed", &S::seed),
                                            field("data", &S::data),
                                            field("train_limit", &S::train_limit),
                                            optional_field("image_size", &S::image_size),  // since issue 19
                                            optional_field("channels", &S::channels),
                                            optional_field("eval_data", &S::eval_data),
                                            optional_field("holdout", &S::holdout),
                                            optional_field("holdout_from", &S::holdout_from)};
};

namespace cli {

// ---- the run document -------------------------------------------------------

std::string run_document::dump() const {
    const nlohmann::json j{
        {"version", 1}, {"method", method}, {"config", config}, {"train", ssl::io::config_to_json(train)}};
    return j.dump();
}

std::optional<run_document> run_document::from_metadata(const std::map<std::string, std::string>& metadata,
                                                        const std::string& source) {
    const auto it = metadata.find(key);
    if (it == metadata.end()) return std::nullopt;
    const std::string what = "checkpoint '" + source + "', metadata '" + key + "'";
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
        throw ssl::io_error(what + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw ssl::io_error(what + ": not a JSON object");
    // every later step (messages, comparisons with the command line's
    // config) recurses once per level: a config is a few levels deep
    if (!ssl::io::detail::nests_at_most(j, 64))
        throw ssl::io_error(what + ": a value is nested more than 64 levels deep");
    for (const char* k : {"version", "method", "config", "train"})
        if (!j.contains(k)) throw ssl::io_error(what + ": key '" + k + "' is missing");
    for (const auto& [k, v] : j.items())
        if (k != "version" && k != "method" && k != "config" && k != "train")
            throw ssl::io_error(what + ": unknown key '" + k + "'");
    if (j["version"] != 1)
        throw ssl::io_error(what + ": version " + j["version"].dump() + " (this program reads version 1)");
    if (!j["method"].is_string()) throw ssl::io_error(what + ": key 'method' must be a string");
    run_document r;
    r.method = j["method"].get<std::string>();
    r.config = j["config"];
    r.train = ssl::io::config_from_json<train_record>(j["train"], what + ", 'train'");
    return r;
}

std::string first_difference(const nlohmann::json& stored, const nlohmann::json& asked, const std::string& path) {
    if (stored.is_object() && asked.is_object()) {
        for (const auto& [k, v] : stored.items()) {
            const std::string p = path.empty() ? k : path + "." + k;
            if (!asked.contains(k)) return "key '" + p + "' is only in the checkpoint";
            if (auto d = first_difference(v, asked[k], p); !d.empty()) return d;
        }
        for (const auto& [k, v] : asked.items())
            if (!stored.contains(k))
                return "key '" + (path.empty() ? k : path + "." + k) + "' is not in the checkpoint";
        return {};
    }
    if (stored == asked) return {};
    return "key '" + path + "': " + stored.dump() + " in the checkpoint, " + asked.dump() + " on the command line";
}

// ---- validators ------------------------------------------------------------

std::size_t max_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n ? n : 256;
}

CLI::Validator thread_count() {
    return CLI::Validator(
        [](std::string& v) {
            char* end = nullptr;
            errno = 0;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (v.find('-') != std::string::npos)  // CLI11 would wrap -1 around to 2^64 - 1
                return "must be a count from 0 to " + std::to_string(max_threads()) + ", got " + v;
            if (end == v.c_str() || *end != 0) return std::string();  // not a count: CLI11's conversion says so
            if (errno == ERANGE || n > max_threads())
                return "at most " + std::to_string(max_threads()) + " (the hardware's threads), got " + v;
            return std::string();
        },
        "0.." + std::to_string(max_threads()));
}

namespace {
/// A number check: `ok` decides, `bound` ("> 0") is its help text and message.
CLI::Validator number_check(const std::string& bound, bool (*ok)(double)) {
    return CLI::Validator(
        [bound, ok](std::string& v) {
            char* end = nullptr;
            const double d = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != 0) return std::string();  // not a number: CLI11's conversion says so
            if (!std::isfinite(d)) return "must be a finite number, got " + v;
            if (!ok(d)) return "must be " + bound + ", got " + v;
            return std::string();
        },
        bound);
}
}  // namespace

CLI::Validator finite_number() {
    return number_check("finite", [](double) { return true; });
}
CLI::Validator positive_number() {
    return number_check("> 0", [](double d) { return d > 0; });
}
CLI::Validator non_negative_number() {
    return number_check(">= 0", [](double d) { return d >= 0; });
}

CLI::Validator fraction_below_one() {
    return number_check("in [0, 1)", [](double d) { return d >= 0 && d < 1; });
}

namespace {
/// A whole number in [lo, hi] (`what` says what it is), or the message.
CLI::Validator whole_number(const std::string& desc, std::size_t lo, std::size_t hi, const std::string& what) {
    return CLI::Validator(
        [lo, hi, what](std::string& v) {
            char* end = nullptr;
            errno = 0;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || errno == ERANGE || n < lo ||
                n > hi)
                return "must be " + what + ", got " + v;
            return std::string();
        },
        desc);
}
}  // namespace

CLI::Validator image_side() { return whole_number("8..4096", 8, 4096, "a side in pixels from 8 to 4096"); }
CLI::Validator pixel_count() {
    return CLI::Validator(
        [](std::string& v) {
            // a whole number in [1, hi], or 0 when it is not one
            auto number = [](const std::string& s, unsigned long long hi) -> unsigned long long {
                if (s.empty() || s.size() > 15 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
                const unsigned long long n = std::stoull(s);
                return n <= hi ? n : 0;
            };
            const auto x = v.find_first_of("xX");  // W x H (4096x4096) becomes its product
            const unsigned long long n =
                x == std::string::npos ? number(v, 1ull << 40)
                                       : number(v.substr(0, x), 1ull << 20) * number(v.substr(x + 1), 1ull << 20);
            if (n == 0)
                return "must be a pixel count from 1 to 2^40, or WIDTHxHEIGHT with sides from 1 to 2^20 (e.g. "
                       "4096x4096), got " + v;
            v = std::to_string(n);
            return std::string();
        },
        "N|WxH");
}
CLI::Validator channel_count() {
    return CLI::Validator(
        [](std::string& v) { return v == "1" || v == "3" ? std::string() : "must be 1 (grey) or 3 (RGB), got " + v; },
        "1 or 3");
}

// ---- method-specific options -----------------------------------------------

CLI::Option* method_options::add_flag(const std::string& name, std::optional<bool>& var, bool value,
                                      const std::string& help) {
    using setter = std::function<void()>;
    auto& e = reg_.claim<setter>(name, typeid(void), method_, help, [&](std::shared_ptr<std::vector<setter>> s) {
        return reg_.app_.add_flag_callback(
            name,
            [s] {
                for (auto& f : *s) f();
            },
            help);
    });
    static_cast<std::vector<setter>*>(e.setters.get())->push_back([&var, value] { var = value; });
    return e.option;
}

option_registry::entry* option_registry::find(const std::string& name) {
    for (auto& e : entries_)
        if (e->option->check_name(name)) return e.get();
    return nullptr;
}

void option_registry::add_check(CLI::Option* option, const CLI::Validator& check) {
    const std::string id = check.get_description();
    try {
        option->get_validator(id);
        return;  // another method's identical check
    } catch (const CLI::OptionNotFound&) {
    }
    option->check(check, id);
}

void option_registry::finish() {
    for (auto& e : entries_) {
        if (e->helps.size() == 1) {
            e->option->group(e->helps.front().first + " options");
            e->option->description(e->helps.front().second);
            continue;
        }
        std::string d;
        for (const auto& [m, h] : e->helps) d += (d.empty() ? "" : "\n") + m + ": " + h;
        e->option->group("Options of several methods");
        e->option->description(d);
    }
}

void option_registry::reject_foreign(const std::string& method) const {
    for (const auto& e : entries_) {
        if (e->option->count() == 0) continue;
        std::string list;
        bool applies = false;
        for (const auto& [m, h] : e->helps) {
            applies = applies || m == method;
            list += (list.empty() ? "" : ", ") + m;
        }
        if (!applies)
            throw ssl::value_error(e->option->get_name() + " does not apply to --method " + method + " (only to " +
                                   list + ")");
    }
}

bool option_registry::any_given(const std::string& method) const {
    for (const auto& e : entries_)
        if (e->option->count() > 0)
            for (const auto& [m, h] : e->helps)
                if (m == method) return true;
    return false;
}

// ---- data -------------------------------------------------------------------

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = i;
    return v;
}

std::string fmt_g(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

std::string fmt(const std::optional<double>& v) {
    if (!v) return "n/a";
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", *v);
    return b;
}

namespace {
/// "1x28x28" for messages.
std::string image_shape(const ssl::data::image_dataset& s) {
    return std::to_string(s.channels()) + "x" + std::to_string(s.height()) + "x" + std::to_string(s.width());
}
}  // namespace

namespace {

/// One data spec's sets: its train images and, when it has one, its test split.
struct spec_sets {
    ssl::data::image_dataset train;
    std::optional<ssl::data::image_dataset> test;
    std::string kind;  ///< "folder", "idx", ...
};

const char* const spec_forms =
    "fashion-mnist[:DIR], cifar10:DIR, cifar100:DIR, folder:DIR, clips:DIR, idx:IMAGES[,LABELS], shards:DIR, synthetic";

/// "fashion-mnist" when its files are installed, else "synthetic".
std::string default_spec() {
    const fs::path dir = ssl::data::fashion_mnist_default_dir;
    return fs::exists(dir / "train-images-idx3-ubyte.gz") || fs::exists(dir / "train-images-idx3-ubyte")
               ? "fashion-mnist"
               : "synthetic";
}

std::string kind_of(const std::string& spec) { return spec.substr(0, spec.find(':')); }

/// How one spec is read: `option` names it in messages ("--data", "--eval-data").
struct spec_read {
    std::string option;
    std::size_t train_limit = 0;  ///< records / images of the train split to read (0: all)
    std::size_t max_data_mb = 1024;
    std::size_t image_size = 0, channels = 0;  ///< folder: resolved (non-zero)
    ssl::data::resize_mode resize = ssl::data::resize_mode::center_crop;
    std::uint64_t max_image_pixels = ssl::data::default_max_image_pixels;  ///< folder: --max-image-pixels
};

spec_sets read_spec(const std::string& spec, const spec_read& how) {
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon), arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
    spec_sets s;
    s.kind = kind;
    using ssl::data::split;
    const std::uint64_t max_bytes = std::uint64_t(how.max_data_mb) << 20;
    const std::string max_name = "--max-data-mb " + std::to_string(how.max_data_mb);
    // IDX and CIFAR files: only the train images a limit leaves are read (the
    // rest of a gzip file is never inflated); the test split is read whole.
    // At most --max-data-mb per file.
    ssl::data::idx_options idx{.limit = how.train_limit, .max_bytes = max_bytes, .max_bytes_name = max_name};
    ssl::data::idx_options idx_test = idx;
    idx_test.limit = 0;
    ssl::data::cifar_options cifar{.limit = how.train_limit, .max_bytes = max_bytes, .max_bytes_name = max_name};
    ssl::data::cifar_options cifar_test = cifar;
    cifar_test.limit = 0;
    if (kind == "fashion-mnist") {
        const fs::path dir = arg.empty() ? fs::path(ssl::data::fashion_mnist_default_dir) : fs::path(arg);
        s.train = ssl::data::load_fashion_mnist(dir, split::train, idx);
        s.test = ssl::data::load_fashion_mnist(dir, split::test, idx_test);
    } else if (kind == "cifar10" || kind == "cifar100") {
        ssl::require(!arg.empty(), how.option, " ", kind, ":DIR needs the directory of the binary batches");
        if (kind == "cifar10") {
            s.train = ssl::data::load_cifar10(arg, split::train, cifar);
            s.test = ssl::data::load_cifar10(arg, split::test, cifar_test);
        } else {
            s.train = ssl::data::load_cifar100(arg, split::train, true, cifar);
            s.test = ssl::data::load_cifar100(arg, split::test, true, cifar_test);
        }
    } else if (kind == "folder") {
        ssl::require(!arg.empty(), how.option, " folder:DIR needs a directory");
        s.train = ssl::data::load_image_folder(
            arg, {.height = how.image_size, .width = how.image_size, .channels = how.channels, .resize = how.resize,
                  .max_bytes = max_bytes, .max_bytes_name = max_name, .max_pixels = how.max_image_pixels,
                  .max_pixels_name = "--max-image-pixels " + std::to_string(how.max_image_pixels)});
    } else if (kind == "clips") {
        // a folder per clip of numbered frames (ssl/data/clips.hpp); the clip is the label
        ssl::require(!arg.empty(), how.option, " clips:DIR needs a directory (a folder per clip of numbered frames)");
        s.train = ssl::data::load_clip_folder(
            arg, {.image = {.height = how.image_size, .width = how.image_size, .channels = how.channels,
                            .resize = how.resize, .max_bytes = max_bytes, .max_bytes_name = max_name,
                            .max_pixels = how.max_image_pixels,
                            .max_pixels_name = "--max-image-pixels " + std::to_string(how.max_image_pixels)}});
    } else if (kind == "idx") {
        ssl::require(!arg.empty(), how.option, " idx:IMAGES[,LABELS] needs the IDX images file");
        const auto comma = arg.find(',');
        s.train = comma == std::string::npos
                      ? ssl::data::read_idx(arg, idx)
                      : ssl::data::read_idx(arg.substr(0, comma), arg.substr(comma + 1), 0, {}, idx);
    } else if (kind == "shards") {
        // tar shards (`ssl shards`): the first train_limit samples (0: all)
        // decoded into memory; `ssl train` streams the rest (load_data)
        ssl::require(!arg.empty(), how.option, " shards:DIR needs the directory of the shards and their manifest.json");
        const auto set = ssl::data::shard_set::open(arg);
        const auto& m = set.manifest;
        const std::size_t n = how.train_limit ? std::min(how.train_limit, m.samples) : m.samples;
        const std::uint64_t bytes = std::uint64_t(n) * m.channels * m.height * m.width;
        if (bytes > max_bytes)
            throw ssl::value_error(how.option + " " + spec + ": " + std::to_string(n) + " samples of " +
                                   std::to_string(m.channels) + "x" + std::to_string(m.height) + "x" +
                                   std::to_string(m.width) + " take " + std::to_string(bytes >> 20) +
                                   " MiB decoded, more than " + max_name + " (training streams shards; reading them "
                                   "whole into memory is refused above --max-data-mb)");
        s.train = ssl::data::load_shards(set, n);
    } else if (kind == "synthetic") {
        s.train = ssl::data::synthetic({.size = 4096, .classes = 10, .height = 28, .width = 28, .seed = 1}).to_dataset();
        s.test = ssl::data::synthetic({.size = 1000, .classes = 10, .height = 28, .width = 28, .seed = 2}).to_dataset();
    } else {
        throw ssl::value_error(how.option + " '" + spec + "' is not one of " + spec_forms);
    }
    // kNN and the linear probe compare features of the two splits: the
    // backbone sees both at one size
    if (s.test && image_shape(*s.test) != image_shape(s.train))
        throw ssl::io_error(how.option + " " + spec + ": the test split " + s.test->describe() + " has images of " +
                            image_shape(*s.test) + " (channels x height x width), the train split " +
                            s.train.describe() + " " + image_shape(s.train) + "; both splits must have one size");
    return s;
}

/// The side and channels a folder of --data is read at: the user's, else
/// from its images' headers (their common square size, else 32; grey when
/// every image is grey, else RGB), with a note saying what was chosen.
void resolve_folder(const std::string& spec, const data_request& r, spec_read& how, std::vector<std::string>& notes) {
    how.image_size = r.image_size;
    how.channels = r.channels;
    if (how.image_size && how.channels) return;
    const std::string dir = spec.substr(spec.find(':') + 1);
    ssl::require(!dir.empty(), "--data " + kind_of(spec) + ":DIR needs a directory");
    const auto info = ssl::data::scan_image_folder(dir);
    std::string size_why, channels_why;
    if (!how.image_size) {
        if (info.square()) {
            how.image_size = info.height;
            size_why = "their own size";
        } else {
            how.image_size = 32;
            size_why = info.readable == 0 ? "no image header could be read"
                       : info.height      ? "their own size, " + std::to_string(info.width) + "x" +
                                           std::to_string(info.height) + " (width x height), is not square"
                                          : "their sizes differ, from " + std::to_string(info.min_width) + "x" +
                                           std::to_string(info.min_height) + " to " + std::to_string(info.max_width) +
                                           "x" + std::to_string(info.max_height) + " (width x height)";
            size_why += "; --image-size N chooses another side";
        }
    } else {
        size_why = "--image-size";
    }
    if (!how.channels) {
        how.channels = info.grey ? 1 : 3;
        channels_why = info.grey ? "every image is grey" : "colour";
    } else {
        channels_why = "--channels";
    }
    const bool clips = kind_of(spec) == "clips";
    notes.push_back("--data " + spec + ": " + std::to_string(info.images) + (clips ? " frames" : " images") +
                    (info.classes ? " in " + std::to_string(info.classes) + (clips ? " clips" : " classes")
                     : std::string(clips ? " in 1 clip" : ", unlabelled")) +
                    ", read at " + std::to_string(how.image_size) + "x" + std::to_string(how.image_size) + " (" +
                    size_why + "), " + std::to_string(how.channels) + " channel" + (how.channels == 1 ? "" : "s") +
                    " (" + channels_why + ")");
}

std::string percent(double f) {
    char b[32];
    std::snprintf(b, sizeof b, "%g %%", 100.0 * f);
    return b;
}

}  // namespace

data_sets load_data(const data_request& r) {
    const std::string spec = r.data.empty() ? default_spec() : r.data;
    const std::string kind = kind_of(spec);
    data_sets d;
    d.name = spec;
    // --image-size and --channels bring a folder's images to one size; the
    // other data sets have theirs (a checkpoint's record is not the user's)
    if (kind != "folder" && kind != "clips" && (r.size_given || r.channels_given))
        throw ssl::value_error(std::string(r.size_given ? "--image-size" : "--channels") +
                               " applies to --data folder:DIR or clips:DIR (images of any size and colour), not to --data " + spec +
                               ", whose images have one size and channel count");
    const bool split_data = r.holdout > 0 && r.eval_data.empty();  // --holdout splits --data
    spec_read how{.option = "--data", .max_data_mb = r.max_data_mb, .max_image_pixels = r.max_image_pixels};
    // IDX and CIFAR: the first --train-limit images are all that is read when
    // nothing else needs the rest: the evaluation's train set is the train
    // split, limited by --eval-limit (else whole), unless --eval-data has one
    if (r.limit && !split_data) {
        if (r.eval_limit) how.train_limit = std::max(r.limit, r.eval_limit);
        else if (!r.evaluation || kind == "idx") how.train_limit = r.limit;  // idx: no test split to evaluate on
    }
    if (kind == "folder" || kind == "clips") resolve_folder(spec, r, how, d.notes);
    if (kind == "shards") {  // README "Data larger than memory"
        if (r.limit)
            throw ssl::value_error("--train-limit does not apply to --data " + spec + ": training streams every shard "
                                   "(write a smaller set with `ssl shards` instead)");
        if (r.evaluation && split_data)
            throw ssl::value_error("--holdout with --data " + spec + ": training streams every shard, so it would "
                                   "train on the held-out images; give --eval-data SPEC (with --holdout to split it)");
        // in memory: the first --eval-limit samples (default 10000) for the
        // kNN / linear probe and the model's shape; embed reads them all
        if (r.evaluation) how.train_limit = r.eval_limit ? r.eval_limit : 10000;
    }
    auto primary = read_spec(spec, how);
    d.train = std::move(primary.train);
    d.test = std::move(primary.test);
    d.evaluation = d.test ? "the test split of --data " + spec : "";
    if (r.evaluation && !r.eval_data.empty()) {
        // the evaluation's set: read at --data's size and channels when it is a folder
        spec_read ehow{.option = "--eval-data", .max_data_mb = r.max_data_mb, .image_size = d.train.height(),
                       .channels = d.train.channels(), .max_image_pixels = r.max_image_pixels};
        const std::string ekind = kind_of(r.eval_data);
        auto ev = read_spec(r.eval_data, ehow);
        if (image_shape(ev.train) != image_shape(d.train))
            throw ssl::value_error("--eval-data " + r.eval_data + " has images of " + image_shape(ev.train) +
                                   " (channels x height x width), --data " + spec + " " + image_shape(d.train) +
                                   ": the backbone evaluates images of the size and channels it trained on (a folder "
                                   "as --eval-data is read at --data's)");
        if (ev.test) {
            if (r.holdout > 0)
                throw ssl::value_error("--holdout: --eval-data " + r.eval_data + " has its own test split; --holdout "
                                       "holds out part of a labelled set without one (folder:DIR, idx:IMAGES,LABELS)");
            d.eval_train = std::move(ev.train);
            d.test = std::move(ev.test);
            d.evaluation = "--eval-data " + r.eval_data + " (its train split for the kNN / linear probe, its test split to test)";
        } else if (r.holdout > 0) {
            const auto sp = ssl::data::stratified_holdout(ev.train, r.holdout, r.seed, "--holdout");
            if (r.holdout_from && r.holdout_from != ev.train.size())
                throw ssl::value_error("--holdout " + fmt_g(r.holdout) + ": --eval-data " + r.eval_data + " holds " +
                                       std::to_string(ev.train.size()) + " images, " +
                                       std::to_string(r.holdout_from) + " when the run split it: its held-out "
                                       "images would not be the run's (restore the set, or give --holdout 0 or "
                                       "another --eval-data)");
            d.holdout_from = ev.train.size();
            d.test = ev.train.subset(sp.held_out);
            d.eval_train = ev.train.subset(sp.train);
            d.evaluation = "--eval-data " + r.eval_data + ", " + percent(r.holdout) + " of each class held out (seed " +
                           std::to_string(r.seed) + "): " + std::to_string(sp.held_out.size()) +
                           " images to test, the other " + std::to_string(sp.train.size()) + " for the kNN / linear probe";
        } else {
            if (!d.train.labelled())
                throw ssl::value_error("--eval-data " + r.eval_data + " has no test split of its own, so it is the test "
                                       "set and the kNN / linear probe learn from --data's labels; --data " + spec +
                                       " is unlabelled. Give --holdout F to split --eval-data, or an --eval-data with "
                                       "both splits (fashion-mnist, cifar10:DIR, ...)");
            d.test = std::move(ev.train);
            d.eval_train = d.train;
            d.evaluation = "--eval-data " + r.eval_data + " to test, --data " + spec +
                           "'s labelled images for the kNN / linear probe";
        }
        if (!d.test->labelled())
            throw ssl::value_error("--eval-data " + r.eval_data + " is unlabelled" +
                                   (ekind == "folder" ? " (no class sub-directories)" : ekind == "idx" ? " (no LABELS file)" : "") +
                                   ": evaluation needs a class per image");
        if (!d.eval_train.labelled())
            throw ssl::value_error("--eval-data " + r.eval_data + ": the kNN / linear probe's train set is unlabelled");
        if (r.eval_limit && r.eval_limit < d.eval_train.size()) d.eval_train = d.eval_train.subset(iota(r.eval_limit));
    } else {
        if (r.evaluation && split_data) {
            if (d.test)
                throw ssl::value_error("--holdout: --data " + spec + " has its own test split; --holdout holds out part "
                                       "of a labelled set without one (folder:DIR with class folders, "
                                       "idx:IMAGES,LABELS), or of --eval-data");
            const auto sp = ssl::data::stratified_holdout(d.train, r.holdout, r.seed, "--holdout");
            if (r.holdout_from && r.holdout_from != d.train.size())
                throw ssl::value_error("--holdout " + fmt_g(r.holdout) + ": --data " + spec + " holds " +
                                       std::to_string(d.train.size()) + " images, " + std::to_string(r.holdout_from) +
                                       " when the run split it: its held-out images would not be the run's, and "
                                       "the run trained on some of the new test images (restore the set, or "
                                       "evaluate with --eval-data)");
            d.holdout_from = d.train.size();
            d.test = d.train.subset(sp.held_out);
            d.train = d.train.subset(sp.train);
            d.evaluation = percent(r.holdout) + " of each class of --data " + spec + " held out (seed " +
                           std::to_string(r.seed) + "): " + std::to_string(sp.held_out.size()) +
                           " images to test, never trained on; the other " + std::to_string(sp.train.size()) +
                           " train and feed the kNN / linear probe";
        }
        d.eval_train = d.train;
        if (r.eval_limit && r.eval_limit < d.eval_train.size()) d.eval_train = d.train.subset(iota(r.eval_limit));
        if (d.evaluation.empty())
            d.evaluation = "none: --data " + spec + " has no test split (give --eval-data SPEC, or --holdout F" +
                           (d.train.labelled() ? ")" : " with a labelled --eval-data)");
        else if (!d.train.labelled() || !d.test->labelled())
            d.evaluation = "none: --data " + spec + " is unlabelled (give --eval-data SPEC)";
    }
    if (r.limit && r.limit < d.train.size()) d.train = d.train.subset(iota(r.limit));
    if (kind == "shards" && r.evaluation) {
        d.shards = ssl::data::shard_set::open(spec.substr(spec.find(':') + 1));
        d.notes.push_back("--data " + spec + ": " + std::to_string(d.shards->size()) + " images in " +
                          std::to_string(d.shards->shards()) + " shards, streamed from disk (the first " +
                          std::to_string(d.train.size()) + " held in memory for the kNN / linear probe)");
    }
    return d;
}

void export_onnx(backbone_t& b, const std::function<ssl::tensor<float>(const ssl::tensor<float>&)>& eval_transform,
                 const common_options& o, const std::map<std::string, std::string>& metadata) {
    const auto get = [&](const char* k) {
        const auto it = metadata.find(k);
        return it == metadata.end() ? std::string() : it->second;
    };
    const std::string method = get("method").empty() ? std::string("this") : get("method");
    if (get("image_size").empty())
        throw ssl::io_error("--format onnx: checkpoint '" + o.checkpoint + "' has no 'image_size' in its metadata (the " +
                            "size the run trained on, which the model's input takes; `ssl train` stores it)");
    const std::size_t size = ssl::parse_unsigned(get("image_size"), "checkpoint '" + o.checkpoint +
                                                 "', metadata 'image_size'", 1 << 16);
    const std::size_t C = b.options().in_channels;
    // What `ssl embed` does before the backbone, checked on random images:
    // the default per-channel normalisation at the trained size (resize and
    // center crop to it are then no-ops), which the graph starts with.
    const auto norm = ssl::augment::default_normalize(C);
    ssl::philox g(1, 19);
    ssl::tensor<float> x({2, C, size, size});
    for (auto& v : x) v = static_cast<float>(g.uniform());
    const auto y = eval_transform(x);
    if (y.shape() != x.shape())
        throw ssl::value_error("--format onnx: --method " + method + " evaluates " + std::to_string(size) + "x" +
                               std::to_string(size) + " images at " + y.shape().str() +
                               " (its eval transform resizes them); the ONNX model has no resize step, so its "
                               "features would not be `ssl embed`'s: not exported");
    double worst = 0;
    const std::size_t hw = size * size;
    for (std::size_t i = 0; i < x.numel(); ++i) {
        const std::size_t c = (i / hw) % C;
        const float want = (x[i] - static_cast<float>(norm.mean[c])) / static_cast<float>(norm.stddev[c]);
        worst = std::max(worst, static_cast<double>(std::abs(y[i] - want)));
    }
    if (worst > 1e-5)
        throw ssl::value_error("--format onnx: --method " + method + "'s eval transform is not the per-channel " +
                               "normalisation the ONNX model starts with (it differs by " + fmt_g(worst) +
                               "; e.g. jigsaw's per-image standardisation): not exported");
    ssl::io::onnx_options opt{.height = size, .width = size, .mean = norm.mean, .stddev = norm.stddev};
    const auto& bo = b.options();
    const std::string stem = bo.arch.starts_with("convnet") ? "" : bo.stem == ssl::stem::cifar ? "cifar" : "imagenet";
    opt.metadata = {{"arch", bo.arch},
                    {"width", std::to_string(bo.width)},
                    {"method", get("method")},
                    {"image_size", std::to_string(size)},
                    {"source", o.checkpoint}};
    if (!stem.empty()) opt.metadata["stem"] = stem;
    opt.doc = "ssl backbone " + bo.arch + " width " + std::to_string(bo.width) +
              (stem.empty() ? "" : ", " + stem + " stem") + ", trained with " + method + ": images (N, " +
              std::to_string(C) + ", " + std::to_string(size) + ", " + std::to_string(size) +
              ") raw pixels in [0, 1] -> features (N, " + std::to_string(b.feature_dim()) +
              "), batch norm folded, input normalisation included";
    const auto t0 = std::chrono::steady_clock::now();
    ssl::io::write_onnx(o.output, b, opt);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(o.output, ec);
    std::printf("wrote the backbone as ONNX (opset %lld; input images (N, %zu, %zu, %zu) in [0, 1], output features "
                "(N, %zu)) to %s (%.1f MB, %.0f ms)\n",
                static_cast<long long>(ssl::io::onnx_opset), C, size, size, b.feature_dim(), o.output.c_str(),
                ec ? 0.0 : static_cast<double>(bytes) / 1e6, ms);
}


// ---- the evaluation suite (--protocol; issue 21) -------------------------

protocol_set protocol_set::parse(const std::string& list) {
    protocol_set p{.knn = false, .linear = false};
    std::size_t start = 0;
    bool any = false;
    for (;;) {
        const std::size_t comma = list.find(',', start);
        const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (name == "knn") p.knn = true;
        else if (name == "linear") p.linear = true;
        else if (name == "svm") p.svm = true;
        else if (name == "lowshot") p.lowshot = true;
        else if (name == "layers") p.layers = true;
        else if (name == "finetune") p.finetune = true;
        else if (name == "all") p.knn = p.linear = p.svm = p.lowshot = p.layers = p.finetune = true;
        else
            throw ssl::value_error("--protocol: unknown protocol '" + name + "' in '" + list +
                                   "' (a comma list of knn, linear, svm, lowshot, layers, finetune, or all)");
        any = true;
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (!any) throw ssl::value_error("--protocol: no protocol named");
    return p;
}

std::string protocol_set::str() const {
    std::string s;
    auto add = [&](bool on, const char* n) {
        if (on) s += (s.empty() ? "" : ",") + std::string(n);
    };
    add(knn, "knn"), add(linear, "linear"), add(svm, "svm"), add(lowshot, "lowshot"), add(layers, "layers");
    add(finetune, "finetune");
    return s;
}

protocol_set protocol_set::from(const common_options& o) {
    protocol_set p = parse(o.protocol);
    p.finetune_fractions = parse_fractions(o.finetune_fractions);
    p.finetune_epochs = o.finetune_epochs;
    p.figures = !o.no_figures;
    return p;
}

std::vector<double> parse_fractions(const std::string& list) {
    std::vector<double> out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = list.find(',', start);
        const std::string v = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        std::size_t used = 0;
        double f = 0;
        try {
            f = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != v.size() || !(f > 0 && f <= 1))
            throw ssl::value_error("--finetune-fractions: '" + v + "' in '" + list +
                                   "' is not a fraction of the labels in (0, 1] (a comma list, e.g. 0.01,0.1)");
        out.push_back(f);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

void add_finetune_options(CLI::App* c, common_options& o) {
    c->add_option("--finetune-fractions", o.finetune_fractions,
                  "--protocol finetune: a comma list of the fractions of the eval train set's labels to fine-tune on, "
                  "each in (0, 1] (default 0.01,0.1)")
        ->check(CLI::Validator(
            [](std::string& v) {
                try {
                    parse_fractions(v);
                } catch (const ssl::value_error& e) {
                    return std::string(e.what()).substr(std::string("--finetune-fractions: ").size());
                }
                return std::string();
            },
            "LIST"));
    c->add_option("--finetune-epochs", o.finetune_epochs,
                  "--protocol finetune: epochs over the labelled subset (default: 60 below 10 % of the labels, 30 "
                  "from 10 %)")
        ->check(CLI::Range(std::size_t(1), std::size_t(100000)));
}

CLI::Validator protocol_list() {
    return CLI::Validator(
        [](std::string& v) {
            try {
                protocol_set::parse(v);
            } catch (const ssl::value_error& e) {
                return std::string(e.what()).substr(std::string("--protocol: ").size());
            }
            return std::string();
        },
        "LIST");
}

std::vector<std::string> probe_layers(const std::vector<std::string>& taps, const std::string& arch) {
    auto has = [&](const std::string& n) { return std::find(taps.begin(), taps.end(), n) != taps.end(); };
    std::vector<std::string> names;
    if (has("layer1") && has("layer4")) {
        if (has("relu")) names.push_back("relu");
        for (const char* n : {"layer1", "layer2", "layer3", "layer4"})
            if (has(n)) names.push_back(n);
        return names;
    }
    for (const auto& t : taps)  // top-level stages: no dotted sub-module names, no pooled output
        if (t.find('.') == std::string::npos && t != "avgpool" && t != "fc" && t != "flatten") names.push_back(t);
    if (names.empty()) {
        std::string all;
        for (const auto& t : taps) all += (all.empty() ? "" : ", ") + t;
        throw ssl::value_error("--protocol layers: backbone " + arch + " has no stage taps to probe (its taps: " + all +
                               ")");
    }
    return names;
}

namespace {
std::string pct(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", 100.0 * v);
    return b;
}
std::string shape_text(const ssl::shape_t& s) {
    std::string t;
    for (std::size_t i = 0; i < s.rank(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
    return t;
}
}  // namespace

suite_results::figure_inputs figure_inputs(const ssl::tensor<float>& ftr, const ssl::tensor<float>& fte,
                                           const data_sets& d, std::uint64_t seed) {
    namespace fig = ssl::eval::figures;
    suite_results::figure_inputs f;
    const auto& train = d.eval_train;
    const auto& test = *d.test;
    f.class_names = !test.class_names.empty() ? test.class_names : train.class_names;
    auto image = [](const ssl::data::image_dataset& s, std::size_t i) {
        const std::uint8_t* p = s.images.data() + i * s.image_bytes();
        return fig::labelled_image{std::vector<std::uint8_t>(p, p + s.image_bytes()), s.channels(), s.height(),
                                   s.width(), s.labels[i]};
    };
    const auto queries = fig::seeded_choice(test.size(), retrieval_queries, seed);
    ssl::tensor<float> q({queries.size(), fte.dim(1)});
    for (std::size_t i = 0; i < queries.size(); ++i)
        std::copy_n(fte.data() + queries[i] * fte.dim(1), fte.dim(1), q.data() + i * fte.dim(1));
    const auto nn = fig::nearest_neighbours(ftr, q, retrieval_neighbours);
    for (std::size_t i = 0; i < queries.size(); ++i) {
        fig::retrieval_row row{image(test, queries[i]), {}, {}};
        for (const auto& [j, sim] : nn[i]) {
            row.neighbours.push_back(image(train, j));
            row.similarity.push_back(sim);
        }
        f.retrieval.push_back(std::move(row));
    }
    if (test.size() >= 2) {
        const auto xy = fig::pca_2d(fte);
        f.map_of = test.size();
        for (std::size_t i : fig::seeded_choice(test.size(), map_max_points, seed + 1))
            f.map.push_back({xy[i].first, xy[i].second, test.labels[i]});
    }
    return f;
}

namespace {
/// Writes one figure and says so.
void write_figure(const fs::path& stem, const char* suffix, const std::string& svg, bool print) {
    fs::path path = stem;
    path += suffix;
    ssl::io::write_text_atomic(path, svg, "figure");
    if (print) std::printf("wrote %s\n", path.string().c_str());
}
}  // namespace

void report_suite(const suite_results& r, const protocol_set& p, const fs::path& stem, bool print) {
    struct row {
        std::string protocol, setting, top1, spread;
    };
    std::vector<row> rows;
    nlohmann::json j{{"encoder", r.encoder},           {"protocols", p.str()},
                     {"eval_train_images", r.train_images}, {"eval_test_images", r.test_images}};
    if (r.train_images == 0) {
        if (print) std::printf("evaluation (%s): skipped, the evaluation sets are not labelled\n", r.encoder.c_str());
        j["skipped"] = "the evaluation sets are not labelled";
    }
    if (r.basic.knn) {
        rows.push_back({"knn", "k=200 T=0.1", fmt(r.basic.knn), ""});
        j["knn"] = {{"top1", *r.basic.knn / 100.0}, {"k", 200}, {"temperature", 0.1}};
    }
    if (r.basic.linear) {
        rows.push_back({"linear", "L-BFGS logistic wd=1e-4", fmt(r.basic.linear), ""});
        j["linear"] = {{"top1", *r.basic.linear / 100.0}, {"weight_decay", 1e-4}};
    }
    if (r.svm && p.svm) {
        std::string cv;
        nlohmann::json grid = nlohmann::json::array();
        for (std::size_t i = 0; i < r.svm->cv.costs.size(); ++i) {
            cv += (cv.empty() ? "" : " ") + fmt_g(r.svm->cv.costs[i]) + ":" + pct(r.svm->cv.top1[i]);
            grid.push_back({{"cost", r.svm->cv.costs[i]}, {"cv_top1", r.svm->cv.top1[i]}});
        }
        rows.push_back({"svm", "C=" + fmt_g(r.svm->cost) + " by 3-fold CV (" + cv + ")", pct(r.svm->test_top1), ""});
        j["svm"] = {{"cost", r.svm->cost},         {"cv", grid},
                    {"train_top1", r.svm->train_top1}, {"test_top1", r.svm->test_top1},
                    {"converged", r.svm->converged}};
    }
    if (p.lowshot) {
        nlohmann::json ls = nlohmann::json::array();
        if (r.lowshot)
            for (const auto& lr : r.lowshot->rows) {
                rows.push_back({"lowshot", "k=" + std::to_string(lr.shots) + " (" + std::to_string(lr.top1.size()) +
                                               " draws, SVM C=" + fmt_g(r.svm->cost) + ")",
                                pct(lr.mean), pct(lr.std)});
                ls.push_back({{"k", lr.shots}, {"mean", lr.mean}, {"std", lr.std}, {"top1", lr.top1}});
            }
        j["lowshot"] = {{"rows", ls}, {"skipped_k", r.lowshot_skipped}};
        if (r.svm) j["lowshot"]["cost"] = r.svm->cost;
        if (!r.lowshot_skipped.empty() && print) {
            std::string ks;
            for (auto k : r.lowshot_skipped) ks += (ks.empty() ? "" : ", ") + std::to_string(k);
            std::printf("low-shot: k = %s skipped (more images than the smallest class of the eval train set has)\n",
                        ks.c_str());
        }
    }
    if (p.layers) {
        nlohmann::json ls = nlohmann::json::array();
        for (const auto& l : r.layers) {
            const std::size_t c = l.map_shape[0];
            rows.push_back({"layers", l.name + " " + shape_text(l.map_shape) + " -> " + std::to_string(c) + "x" +
                                          std::to_string(l.pooled.h) + "x" + std::to_string(l.pooled.w) + " = " +
                                          std::to_string(l.dim) + " (probe on " +
                                          std::to_string(r.layer_train_images) + " images)",
                            pct(l.test_top1), ""});
            ls.push_back({{"layer", l.name},          {"map", shape_text(l.map_shape)},
                          {"pooled", std::to_string(l.pooled.h) + "x" + std::to_string(l.pooled.w)},
                          {"dim", l.dim},             {"train_top1", l.train_top1},
                          {"test_top1", l.test_top1}, {"converged", l.converged}});
        }
        j["layers"] = {{"rows", ls}, {"train_images", r.layer_train_images}, {"dim_budget", ssl::eval::layer_dim_budget}};
    }
    if (p.finetune) {
        nlohmann::json ls = nlohmann::json::array();
        if (r.finetune)
            for (const auto& f : r.finetune->rows) {
                rows.push_back({"finetune", fmt_g(100.0 * f.fraction) + "% labels (" + std::to_string(f.images) +
                                                " images), " + std::to_string(f.epochs) +
                                                (f.epochs == 1 ? " epoch" : " epochs"),
                                pct(f.test_top1), ""});
                ls.push_back({{"fraction", f.fraction},     {"images", f.images},         {"epochs", f.epochs},
                              {"steps", f.steps},           {"batch", f.batch},           {"lr", f.lr},
                              {"train_loss", f.train_loss}, {"train_top1", f.train_top1}, {"test_top1", f.test_top1},
                              {"seconds", f.seconds}});
            }
        const auto& c = r.finetune_settings;
        j["finetune"] = {{"rows", ls},
                         {"skipped_fractions", r.finetune_skipped},
                         {"optimizer", c.nesterov ? "sgd, nesterov momentum" : "sgd, momentum"},
                         {"momentum", c.momentum},
                         {"weight_decay", c.weight_decay},
                         {"schedule", c.schedule == ssl::eval::finetune_schedule::cosine ? "cosine" : "constant"},
                         {"augmentation", c.augment ? "padded random crop + horizontal flip" : "none"},
                         {"seed", c.seed}};
        if (!r.finetune_skipped.empty() && print) {
            std::string fs;
            for (double f : r.finetune_skipped) fs += (fs.empty() ? "" : ", ") + fmt_g(100.0 * f) + " %";
            std::printf("fine-tuning: %s of the labels skipped (it leaves a class of the eval train set without a "
                        "labelled image)\n", fs.c_str());
        }
    }
    if (print && !rows.empty()) {
        std::size_t w0 = 8, w1 = 7;
        for (const auto& x : rows) w0 = std::max(w0, x.protocol.size()), w1 = std::max(w1, x.setting.size());
        std::printf("\n== evaluation (%s encoder; %zu train / %zu test images) ==\n", r.encoder.c_str(), r.train_images,
                    r.test_images);
        std::printf("%-*s  %-*s  %s\n", static_cast<int>(w0), "protocol", static_cast<int>(w1), "setting", "top-1 %");
        for (const auto& x : rows)
            std::printf("%-*s  %-*s  %s%s\n", static_cast<int>(w0), x.protocol.c_str(), static_cast<int>(w1),
                        x.setting.c_str(), x.top1.c_str(), x.spread.empty() ? "" : (" +- " + x.spread).c_str());
    }
    auto json_path = stem, csv_path = stem;
    json_path += ".json";
    csv_path += ".csv";
    {
        std::ofstream f(json_path);
        f << j.dump(2) << '\n';
        if (!f) throw ssl::io_error("cannot write '" + json_path.string() + "'");
    }
    {
        std::ofstream f(csv_path);
        f << "encoder,protocol,setting,top1_percent,std_percent\n";
        for (const auto& x : rows) f << r.encoder << ',' << x.protocol << ",\"" << x.setting << "\"," << x.top1 << ',' << x.spread << '\n';
        if (!f) throw ssl::io_error("cannot write '" + csv_path.string() + "'");
    }
    if (print) std::printf("wrote %s and %s\n", json_path.string().c_str(), csv_path.string().c_str());
    // the figures (ssl/eval/figures.hpp), next to the table
    if (!p.figures) return;
    namespace fig = ssl::eval::figures;
    const std::string who = " (" + r.encoder + " encoder)";
    if (p.lowshot && r.lowshot && !r.lowshot->rows.empty()) {
        std::vector<fig::chart_point> pts;
        for (const auto& lr : r.lowshot->rows)
            pts.push_back({static_cast<double>(lr.shots), 100.0 * lr.mean, 100.0 * lr.std});
        write_figure(stem, "_lowshot.svg",
                     fig::line_chart(pts, {.title = "low-shot linear SVM" + who + ", mean +- std over draws",
                                           .xlabel = "k (training images per class)", .ylabel = "test top-1 %",
                                           .log2_x = true}),
                     print);
    }
    if (p.layers && !r.layers.empty()) {
        std::vector<fig::chart_point> pts;
        std::vector<std::string> names;
        for (const auto& l : r.layers) {
            pts.push_back({0, 100.0 * l.test_top1, 0});
            names.push_back(l.name);
        }
        write_figure(stem, "_layers.svg",
                     fig::line_chart(pts, {.title = "linear probe per layer" + who, .xlabel = "layer",
                                           .ylabel = "test top-1 %", .x_names = names}),
                     print);
    }
    if (r.figures && !r.figures->retrieval.empty())
        write_figure(stem, "_retrieval.svg",
                     fig::retrieval_grid(r.figures->retrieval, r.figures->class_names,
                                         "nearest training images of test images" + who),
                     print);
    if (r.figures && !r.figures->map.empty())
        write_figure(stem, "_map.svg",
                     fig::class_map(r.figures->map, r.figures->class_names,
                                    "test features, first two principal components" + who + ", " +
                                        std::to_string(r.figures->map.size()) + " of " +
                                        std::to_string(r.figures->map_of) + " images"),
                     print);
}

}  // namespace cli
