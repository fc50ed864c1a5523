// Data loading for the `ssl` program (the only translation unit that
// compiles the image-folder reader's stb decoder), the validators of its
// numeric options, the method-option registry and the run document stored
// in checkpoints.
#include "common.hpp"

#include <ssl/data/cifar.hpp>
#include <ssl/data/fashion_mnist.hpp>
#include <ssl/data/idx.hpp>
#include <ssl/data/image_folder.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/augment/presets.hpp>
#include <ssl/core/parse.hpp>
#include <ssl/io/onnx.hpp>

#include <cerrno>
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
                                            field("train_limit", &S::train_limit)};
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

data_sets load_data(const std::string& spec_in, std::size_t limit, std::size_t eval_limit, std::size_t max_data_mb) {
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
    // IDX files: only the train images a limit leaves are read (the rest of a
    // gzip file is never inflated): the first max(--train-limit, --eval-limit)
    // when both limit, the first --train-limit where there is no test split to
    // evaluate on; the test split is read whole. At most --max-data-mb per file.
    ssl::data::idx_options idx{.limit = 0, .max_bytes = std::uint64_t(max_data_mb) << 20,
                               .max_bytes_name = "--max-data-mb " + std::to_string(max_data_mb)};
    ssl::data::idx_options idx_test = idx;
    if (limit && eval_limit) idx.limit = std::max(limit, eval_limit);
    if (kind == "fashion-mnist") {
        const fs::path dir = arg.empty() ? fs::path(ssl::data::fashion_mnist_default_dir) : fs::path(arg);
        d.train = ssl::data::load_fashion_mnist(dir, split::train, idx);
        d.test = ssl::data::load_fashion_mnist(dir, split::test, idx_test);
    } else if (kind == "cifar10" || kind == "cifar100") {
        ssl::require(!arg.empty(), "--data ", kind, ":DIR needs the directory of the binary batches");
        d.train = kind == "cifar10" ? ssl::data::load_cifar10(arg, split::train) : ssl::data::load_cifar100(arg, split::train);
        d.test = kind == "cifar10" ? ssl::data::load_cifar10(arg, split::test) : ssl::data::load_cifar100(arg, split::test);
    } else if (kind == "folder") {
        ssl::require(!arg.empty(), "--data folder:DIR needs a directory");
        d.train = ssl::data::load_image_folder(arg, {.height = 32, .width = 32, .channels = 3});
    } else if (kind == "idx") {
        ssl::require(!arg.empty(), "--data idx:IMAGES[,LABELS] needs the IDX images file");
        idx.limit = limit;  // no test split: the evaluation sets are never used
        const auto comma = arg.find(',');
        d.train = comma == std::string::npos
                      ? ssl::data::read_idx(arg, idx)
                      : ssl::data::read_idx(arg.substr(0, comma), arg.substr(comma + 1), 0, {}, idx);
    } else if (kind == "synthetic") {
        d.train = ssl::data::synthetic({.size = 4096, .classes = 10, .height = 28, .width = 28, .seed = 1}).to_dataset();
        d.test = ssl::data::synthetic({.size = 1000, .classes = 10, .height = 28, .width = 28, .seed = 2}).to_dataset();
    } else {
        throw ssl::value_error("--data '" + spec +
                               "' is not one of fashion-mnist[:DIR], cifar10:DIR, cifar100:DIR, folder:DIR, "
                               "idx:IMAGES[,LABELS], synthetic");
    }
    // kNN and the linear probe compare features of the two splits: the
    // backbone sees both at one size
    if (d.test && image_shape(*d.test) != image_shape(d.train))
        throw ssl::io_error("--data " + spec + ": the test split " + d.test->describe() + " has images of " +
                            image_shape(*d.test) + " (channels x height x width), the train split " +
                            d.train.describe() + " " + image_shape(d.train) + "; both splits must have one size");
    d.eval_train = d.train;
    if (eval_limit && eval_limit < d.eval_train.size()) d.eval_train = d.train.subset(iota(eval_limit));
    if (limit && limit < d.train.size()) d.train = d.train.subset(iota(limit));
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
    const std::string stem = bo.arch == "convnet" ? "" : bo.stem == ssl::stem::cifar ? "cifar" : "imagenet";
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

}  // namespace cli
