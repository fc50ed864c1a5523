#pragma once
// Method configurations as JSON, field by field, for checkpoint metadata:
// a checkpoint that stores its method's full config rebuilds the same model
// (cluster counts, queue lengths, widths) without the command line that
// trained it.
//
//   config_to_json(c)               -> nlohmann::json object, one key per field
//   config_from_json<C>(j, what)    -> C; every field must be present, no key
//                                      may be unknown, every value must have
//                                      the field's type: otherwise an
//                                      ssl::io_error naming `what` and the
//                                      key's path ("head.classes")
//
// A method's config (ssl::method<...>::config) is an object with the keys
// "backbone", "augment", "head", "loss" and "target", each its policy's
// config. A struct is described by specializing config_fields<S> with a
// tuple of field("name", &S::member); the reader and the writer both check
// at compile time that the tuple lists every member of S (a field added to a
// config struct without a line here does not compile instead of being
// silently left out of checkpoints). Enums are stored by name
// (enum_names<E>), std::tuple configs (head::route) and std::vector fields as arrays. Numbers keep
// their exact value (doubles are written in shortest round-trip form).
//
// Policies outside this header (a new augmentation's config, say) add their
// own config_fields / enum_names specializations next to their use.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../augment/exemplar.hpp"
#include "../augment/jigsaw.hpp"
#include "../augment/pirl.hpp"
#include "../augment/policies.hpp"
#include "../backbone/any_backbone.hpp"
#include "../backbone/convnet.hpp"
#include "../backbone/resnet.hpp"
#include "../core/error.hpp"
#include "../head/combinators.hpp"
#include "../head/embedding.hpp"
#include "../head/mlp.hpp"
#include "../head/multi_classifier.hpp"
#include "../loss/cosine.hpp"
#include "../loss/cross_entropy.hpp"
#include "../loss/info_nce.hpp"
#include "../loss/instance_ce.hpp"
#include "../loss/instance_classifier.hpp"
#include "../loss/nce.hpp"
#include "../loss/nt_xent.hpp"
#include "../loss/pirl_nce.hpp"
#include "../target_update/cluster.hpp"
#include "../target_update/ema.hpp"
#include "../target_update/hierarchical_cluster.hpp"
#include "../target_update/memory_bank.hpp"
#include "../target_update/none.hpp"
#include "../target_update/queue.hpp"
#include "../target_update/sinkhorn.hpp"

namespace ssl::io {

/// One described member of S: its JSON key and the member pointer.
/// `optional`: a member added after checkpoints were written without it;
/// when its key is absent the member keeps the value it had (the struct's
/// default: the behaviour of those older checkpoints).
template <class S, class M>
struct config_field {
    const char* name;
    M S::*member;
    bool optional = false;
};
template <class S, class M>
constexpr config_field<S, M> field(const char* name, M S::*member) {
    return {name, member};
}
template <class S, class M>
constexpr config_field<S, M> optional_field(const char* name, M S::*member) {
    return {name, member, true};
}

/// Specialize with `static constexpr auto list = std::tuple{field("a", &S::a), ...};`
/// listing every member of S.
template <class S>
struct config_fields;

/// Specialize with `static constexpr std::array<std::pair<E, const char*>, N> list{...};`.
template <class E>
struct enum_names;

namespace detail {

/// Converts to anything: counts an aggregate's members by brace
/// initialisation (S{a, a, ...} compiles for up to as many a's as S has members).
struct any_member {
    template <class T>
    operator T() const;
};
template <class S, class... A>
constexpr std::size_t member_count() {
    if constexpr (requires { S{A{}..., any_member{}}; })
        return member_count<S, A..., any_member>();
    else
        return sizeof...(A);
}

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

template <class S>
concept described = requires { config_fields<S>::list; };
template <class E>
concept named_enum = std::is_enum_v<E> && requires { enum_names<E>::list; };
/// ssl::method<...>::config: the five policy configs.
template <class S>
concept method_config = requires(S c) {
    c.backbone;
    c.augment;
    c.head;
    c.loss;
    c.target;
} && member_count<S>() == 5;

template <class S>
constexpr void check_described() {
    constexpr std::size_t listed = std::tuple_size_v<std::remove_cvref_t<decltype(config_fields<S>::list)>>;
    static_assert(listed == member_count<S>(),
                  "ssl::io::config_fields<S> must list every member of S: a member was added to the config struct "
                  "without its line in ssl/io/config_json.hpp (or next to the policy that owns it)");
}

inline std::string config_key(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
}

[[noreturn]] inline void config_fail(const std::string& what, const std::string& path, const std::string& problem) {
    const std::string where = path.empty() ? std::string("the config") : "key '" + path + "'";
    throw io_error(ssl::detail::cat(what, ": ", where, " ", problem));
}

/// Whether j nests at most `levels` deep (recursing at most that far).
inline bool nests_at_most(const nlohmann::json& j, int levels) {
    if (!j.is_structured()) return true;
    if (levels == 0) return false;
    for (const auto& e : j)
        if (!nests_at_most(e, levels - 1)) return false;
    return true;
}

/// A value for an error message, cut at 60 characters. A deeply nested value
/// is only named: dump() recurses once per level and would overflow the stack.
inline std::string config_shown(const nlohmann::json& j) {
    if (!nests_at_most(j, 32))
        return std::string("an ") + (j.is_array() ? "array" : "object") + " nested over 32 levels deep";
    std::string s = j.dump();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

template <class T>
nlohmann::json write_json(const T& v) {
    if constexpr (method_config<T>) {
        return nlohmann::json{{"backbone", write_json(v.backbone)},
                              {"augment", write_json(v.augment)},
                              {"head", write_json(v.head)},
                              {"loss", write_json(v.loss)},
                              {"target", write_json(v.target)}};
    } else if constexpr (described<T>) {
        check_described<T>();
        nlohmann::json j = nlohmann::json::object();
        std::apply([&](const auto&... f) { ((j[f.name] = write_json(v.*(f.member))), ...); }, config_fields<T>::list);
        return j;
    } else if constexpr (is_tuple<T>::value) {
        nlohmann::json j = nlohmann::json::array();
        std::apply([&](const auto&... e) { (j.push_back(write_json(e)), ...); }, v);
        return j;
    } else if constexpr (is_vector<T>::value) {  // a list of any length (tap names, channel counts)
        nlohmann::json j = nlohmann::json::array();
        for (const auto& e : v) j.push_back(write_json(e));
        return j;
    } else if constexpr (named_enum<T>) {
        for (const auto& [e, name] : enum_names<T>::list)
            if (e == v) return name;
        throw value_error(
            ssl::detail::cat("config_to_json: an enum value without a name (", static_cast<long long>(v), ")"));
    } else if constexpr (std::is_same_v<T, bool> || std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
        return v;
    } else {
        static_assert(sizeof(T) == 0,
                      "ssl::io::config_to_json: no JSON form for this config type; specialize ssl::io::config_fields "
                      "(structs) or ssl::io::enum_names (enums)");
    }
}

template <class T>
void read_json(const nlohmann::json& j, T& out, const std::string& path, const std::string& what) {
    if constexpr (method_config<T> || described<T>) {
        if (!j.is_object()) config_fail(what, path, "must be a JSON object, got " + config_shown(j));
        std::size_t known = 0;
        auto read = [&](const char* name, auto& member, bool optional = false) {
            const std::string key = config_key(path, name);
            const auto it = j.find(name);
            if (it == j.end() && optional) return;
            if (it == j.end()) config_fail(what, key, "is missing");
            read_json(*it, member, key, what);
            ++known;
        };
        if constexpr (method_config<T>) {
            read("backbone", out.backbone);
            read("augment", out.augment);
            read("head", out.head);
            read("loss", out.loss);
            read("target", out.target);
        } else {
            check_described<T>();
            std::apply([&](const auto&... f) { (read(f.name, out.*(f.member), f.optional), ...); },
                       config_fields<T>::list);
        }
        if (known != j.size())
            for (const auto& item : j.items()) {
                const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
                bool listed = false;
                if constexpr (method_config<T>) {
                    for (const char* k : {"backbone", "augment", "head", "loss", "target"}) listed = listed || key == k;
                } else {
                    std::apply([&](const auto&... f) { ((listed = listed || key == f.name), ...); },
                               config_fields<T>::list);
                }
                if (!listed)
                    config_fail(what, config_key(path, key), "is not a field of this method's config (unknown key)");
            }
    } else if constexpr (is_tuple<T>::value) {
        constexpr std::size_t n = std::tuple_size_v<T>;
        if (!j.is_array() || j.size() != n)
            config_fail(what, path, ssl::detail::cat("must be an array of ", n, " configs, got ", config_shown(j)));
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (read_json(j[I], std::get<I>(out), ssl::detail::cat(path, "[", I, "]"), what), ...);
        }(std::make_index_sequence<n>{});
    } else if constexpr (is_vector<T>::value) {
        if (!j.is_array()) config_fail(what, path, "must be an array, got " + config_shown(j));
        out.assign(j.size(), typename T::value_type{});
        for (std::size_t i = 0; i < j.size(); ++i) read_json(j[i], out[i], ssl::detail::cat(path, "[", i, "]"), what);
    } else if constexpr (named_enum<T>) {
        std::string names;
        for (const auto& [e, name] : enum_names<T>::list) {
            if (j.is_string() && j.get<std::string>() == name) {
                out = e;
                return;
            }
            names += std::string(names.empty() ? "" : ", ") + name;
        }
        config_fail(what, path, "must be one of " + names + ", got " + config_shown(j));
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!j.is_boolean()) config_fail(what, path, "must be true or false, got " + config_shown(j));
        out = j.get<bool>();
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
        if (!j.is_number_unsigned()) config_fail(what, path, "must be a non-negative integer, got " + config_shown(j));
        const auto v = j.get<std::uint64_t>();
        if (v > std::numeric_limits<T>::max()) config_fail(what, path, "is out of range: " + config_shown(j));
        out = static_cast<T>(v);
    } else if constexpr (std::is_integral_v<T>) {
        if (!j.is_number_integer()) config_fail(what, path, "must be an integer, got " + config_shown(j));
        const auto v = j.get<std::int64_t>();
        if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
            config_fail(what, path, "is out of range: " + config_shown(j));
        out = static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!j.is_number()) config_fail(what, path, "must be a number, got " + config_shown(j));
        out = j.get<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!j.is_string()) config_fail(what, path, "must be a string, got " + config_shown(j));
        out = j.get<std::string>();
    } else {
        static_assert(sizeof(T) == 0,
                      "ssl::io::config_from_json: no JSON form for this config type; specialize "
                      "ssl::io::config_fields (structs) or ssl::io::enum_names (enums)");
    }
}

}  // namespace detail

/// The config as a JSON object (a method's config: its five policy configs).
template <class C>
nlohmann::json config_to_json(const C& c) {
    return detail::write_json(c);
}

/// The config a JSON object describes. Every field of C must be present
/// with a value of its type and no other key may be: otherwise an
/// ssl::io_error "`what`: key 'head.classes' is missing" (or "is not a
/// field ...", "must be a non-negative integer, got ...").
template <class C>
C config_from_json(const nlohmann::json& j, const std::string& what = "config") {
    C c{};
    detail::read_json(j, c, "", what);
    return c;
}

// ---- the library's policy configs -----------------------------------------

template <>
struct enum_names<ssl::stem> {
    static constexpr std::array<std::pair<ssl::stem, const char*>, 2> list{
        {{ssl::stem::imagenet, "imagenet"}, {ssl::stem::cifar, "cifar"}}};
};
template <>
struct enum_names<loss::z_estimate> {
    static constexpr std::array<std::pair<loss::z_estimate, const char*>, 3> list{
        {{loss::z_estimate::first_batch, "first_batch"},
         {loss::z_estimate::until_filled, "until_filled"},
         {loss::z_estimate::every_batch, "every_batch"}}};
};

// backbones
template <>
struct config_fields<any_backbone_options> {
    using S = any_backbone_options;
    static constexpr auto list = std::tuple{field("arch", &S::arch),       field("in_channels", &S::in_channels),
                                            field("width", &S::width),     field("stem", &S::stem),
                                            field("num_classes", &S::num_classes), field("seed", &S::seed)};
};
template <>
struct config_fields<resnet_options> {
    using S = resnet_options;
    static constexpr auto list = std::tuple{field("in_channels", &S::in_channels), field("width", &S::width),
                                            field("stem", &S::stem), field("num_classes", &S::num_classes),
                                            field("seed", &S::seed)};
};
template <>
struct config_fields<convnet_options> {
    using S = convnet_options;
    static constexpr auto list =
        std::tuple{field("in_channels", &S::in_channels), field("width", &S::width), field("seed", &S::seed)};
};

// augmentations
template <>
struct config_fields<augment::views_config> {
    using S = augment::views_config;
    static constexpr auto list = std::tuple{field("size", &S::size), field("channels", &S::channels),
                                            field("crop_min_scale", &S::crop_min_scale)};
};
template <>
struct config_fields<augment::jigsaw_config> {
    using S = augment::jigsaw_config;
    static constexpr auto list = std::tuple{field("size", &S::size),
                                            field("channels", &S::channels),
                                            field("grid", &S::grid),
                                            field("tile", &S::tile),
                                            field("crop_min_scale", &S::crop_min_scale),
                                            field("permutations", &S::permutations),
                                            field("permutation_seed", &S::permutation_seed),
                                            field("jitter", &S::jitter),
                                            field("tile_normalize", &S::tile_normalize),
                                            optional_field("eval_tiles", &S::eval_tiles)};  // since issue 17
};

template <>
struct config_fields<augment::pirl_views_config> {
    using S = augment::pirl_views_config;
    static constexpr auto list = std::tuple{field("image", &S::image), field("tiles", &S::tiles)};
};
template <>
struct config_fields<augment::range> {
    using S = augment::range;
    static constexpr auto list = std::tuple{field("lo", &S::lo), field("hi", &S::hi)};
};
template <>
struct enum_names<augment::border_mode> {
    static constexpr std::array<std::pair<augment::border_mode, const char*>, 2> list{
        {{augment::border_mode::reflect, "reflect"}, {augment::border_mode::replicate, "replicate"}}};
};
template <>
struct config_fields<augment::exemplar_views_config> {
    using S = augment::exemplar_views_config;
    static constexpr auto list = std::tuple{field("size", &S::size),
                                            field("channels", &S::channels),
                                            field("translate", &S::translate),
                                            field("scale", &S::scale),
                                            field("degrees", &S::degrees),
                                            field("border", &S::border),
                                            field("contrast", &S::contrast),
                                            field("hue", &S::hue),
                                            field("power", &S::power),
                                            field("factor", &S::factor),
                                            field("offset", &S::offset),
                                            field("transforms_per_class", &S::transforms_per_class)};
};

// heads
template <>
struct config_fields<head::mlp_config> {
    using S = head::mlp_config;
    static constexpr auto list =
        std::tuple{field("hidden", &S::hidden), field("out", &S::out), field("batch_norm", &S::batch_norm),
                   optional_field("output_batch_norm", &S::output_batch_norm)};  // since issue 24
};
template <>
struct config_fields<head::projector_predictor_config> {
    using S = head::projector_predictor_config;
    static constexpr auto list = std::tuple{field("projector", &S::projector), field("predictor", &S::predictor)};
};
template <>
struct config_fields<head::linear_classifier_config> {
    using S = head::linear_classifier_config;
    static constexpr auto list = std::tuple{field("classes", &S::classes)};
};
template <>
struct config_fields<head::multi_classifier_config> {
    using S = head::multi_classifier_config;
    static constexpr auto list = std::tuple{field("heads", &S::heads), field("classes", &S::classes)};
};
template <>
struct config_fields<head::hierarchical_classifier_config> {
    using S = head::hierarchical_classifier_config;
    static constexpr auto list =
        std::tuple{field("super_classes", &S::super_classes), field("sub_classes", &S::sub_classes)};
};
template <>
struct config_fields<head::embedding_config> {
    using S = head::embedding_config;
    static constexpr auto list = std::tuple{field("out", &S::out)};
};
template <>
struct config_fields<head::fc_relu_config> {
    using S = head::fc_relu_config;
    static constexpr auto list = std::tuple{field("out", &S::out)};
};
template <class R, class J>
struct config_fields<head::group_config<R, J>> {
    using S = head::group_config<R, J>;
    static constexpr auto list =
        std::tuple{field("row", &S::row), field("joint", &S::joint), field("copies", &S::copies)};
};
template <class C0, class C1>
struct config_fields<head::concat_config<C0, C1>> {
    using S = head::concat_config<C0, C1>;
    static constexpr auto list = std::tuple{field("first", &S::first), field("second", &S::second)};
};

// losses
template <>
struct config_fields<loss::nt_xent_config> {
    using S = loss::nt_xent_config;
    static constexpr auto list = std::tuple{field("temperature", &S::temperature), field("eps", &S::eps)};
};
template <>
struct config_fields<loss::cosine_config> {
    using S = loss::cosine_config;
    static constexpr auto list = std::tuple{field("target_grad", &S::target_grad), field("eps", &S::eps)};
};
template <>
struct config_fields<loss::cross_entropy_config> {
    using S = loss::cross_entropy_config;
    static constexpr auto list = std::tuple{field("label_smoothing", &S::label_smoothing)};
};
template <>
struct config_fields<loss::info_nce_config> {
    using S = loss::info_nce_config;
    static constexpr auto list =
        std::tuple{field("temperature", &S::temperature), field("eps", &S::eps), field("symmetric", &S::symmetric),
                   field("block_rows", &S::block_rows), field("block_keys", &S::block_keys)};
};
template <>
struct config_fields<loss::instance_ce_config> {
    using S = loss::instance_ce_config;
    static constexpr auto list =
        std::tuple{field("temperature", &S::temperature), field("top_k", &S::top_k), field("smoothing", &S::smoothing),
                   field("eps", &S::eps), field("block_columns", &S::block_columns)};
};
template <>
struct config_fields<loss::instance_classifier_config> {
    using S = loss::instance_classifier_config;
    static constexpr auto list = std::tuple{field("ce", &S::ce),
                                            field("instances", &S::instances),
                                            field("shard_rows", &S::shard_rows),
                                            field("shards", &S::shards),
                                            field("raw_feature_init", &S::raw_feature_init),
                                            field("init_batch_statistics", &S::init_batch_statistics),
                                            field("init_chunk", &S::init_chunk),
                                            field("seed", &S::seed)};
};
template <>
struct config_fields<loss::nce_config> {
    using S = loss::nce_config;
    static constexpr auto list =
        std::tuple{field("temperature", &S::temperature), field("proximal", &S::proximal), field("z", &S::z)};
};
template <>
struct config_fields<loss::pirl_nce_config> {
    using S = loss::pirl_nce_config;
    static constexpr auto list =
        std::tuple{field("temperature", &S::temperature), field("lambda", &S::lambda), field("z", &S::z)};
};
template <>
struct config_fields<loss::nonparametric_softmax_config> {
    using S = loss::nonparametric_softmax_config;
    static constexpr auto list = std::tuple{field("temperature", &S::temperature), field("proximal", &S::proximal)};
};

// target updates
template <>
struct config_fields<target::none_config> {
    static constexpr std::tuple<> list{};
};
template <>
struct config_fields<target::ema_config> {
    using S = target::ema_config;
    static constexpr auto list =
        std::tuple{field("tau_base", &S::tau_base), field("cosine_schedule", &S::cosine_schedule)};
};
template <>
struct config_fields<target::queue_config> {
    using S = target::queue_config;
    static constexpr auto list = std::tuple{field("size", &S::size),
                                            field("momentum", &S::momentum),
                                            field("cosine_schedule", &S::cosine_schedule),
                                            field("shuffle_bn_groups", &S::shuffle_bn_groups),
                                            field("symmetric", &S::symmetric),
                                            field("seed", &S::seed),
                                            field("eps", &S::eps)};
};
template <>
struct config_fields<target::memory_bank_config> {
    using S = target::memory_bank_config;
    static constexpr auto list = std::tuple{field("instances", &S::instances),
                                            field("dim", &S::dim),
                                            field("momentum", &S::momentum),
                                            field("negatives", &S::negatives),
                                            field("seed", &S::seed),
                                            field("replace_first", &S::replace_first),
                                            field("feature_init", &S::feature_init),
                                            field("init_batch_statistics", &S::init_batch_statistics),
                                            field("init_chunk", &S::init_chunk)};
};
template <>
struct config_fields<target::cluster_features_config> {
    using S = target::cluster_features_config;
    static constexpr auto list = std::tuple{field("pca_dim", &S::pca_dim), field("whiten", &S::whiten),
                                            field("l2_normalize", &S::l2_normalize)};
};
template <>
struct config_fields<target::cluster_reassignment_config> {
    using S = target::cluster_reassignment_config;
    static constexpr auto list = std::tuple{field("reassign_every", &S::reassign_every),
                                            field("features", &S::features),
                                            field("kmeans_iterations", &S::kmeans_iterations),
                                            field("kmeans_restarts", &S::kmeans_restarts),
                                            field("uniform_sampling", &S::uniform_sampling),
                                            field("reinit_head", &S::reinit_head),
                                            field("instances", &S::instances),
                                            field("chunk", &S::chunk)};
};
template <>
struct config_fields<target::hierarchical_clusters_config> {
    using S = target::hierarchical_clusters_config;
    static constexpr auto list = std::tuple{field("reassign_every", &S::reassign_every),
                                            field("features", &S::features),
                                            field("kmeans_iterations", &S::kmeans_iterations),
                                            field("kmeans_restarts", &S::kmeans_restarts),
                                            field("rotations", &S::rotations),
                                            field("uniform_sampling", &S::uniform_sampling),
                                            field("reinit_head", &S::reinit_head),
                                            field("instances", &S::instances),
                                            field("chunk", &S::chunk)};
};
template <>
struct config_fields<target::sinkhorn_labels_config> {
    using S = target::sinkhorn_labels_config;
    static constexpr auto list = std::tuple{field("updates", &S::updates),
                                            field("lambda", &S::lambda),
                                            field("tolerance", &S::tolerance),
                                            field("heads", &S::heads),
                                            field("instances", &S::instances),
                                            field("random_initial_labels", &S::random_initial_labels),
                                            field("chunk", &S::chunk)};
};

}  // namespace ssl::io
