// libFuzzer harness: checkpoint metadata, i.e. the "ssl.config" run document
// ({"version", "method", "config", "train"}) as the ssl program reads it: the
// input is the metadata string, parsed as JSON; its "config" (or, without
// one, the whole document) goes through config_from_json for every method of
// the library that has a JSON config (PIRL and Exemplar have none yet). A config that is accepted must write back to the same JSON
// (no value silently changed on the way in: integers exactly, floats as
// floats).
#include <ssl/byol.hpp>
#include <ssl/deepcluster.hpp>
#include <ssl/deepercluster.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/instdisc.hpp>
#include <ssl/io/config_json.hpp>
#include <ssl/jigsaw.hpp>
#include <ssl/moco.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/sela.hpp>
#include <ssl/simclr.hpp>

#include <cmath>
#include <cstdlib>
#include <string>

namespace {

using B = ssl::any_backbone<float>;

// Whether `back` (written from what was read) says what `in` said.
bool same(const nlohmann::json& in, const nlohmann::json& back) {
    if (in.is_object() && back.is_object()) {
        if (in.size() != back.size()) return false;
        for (const auto& [k, v] : in.items())
            if (!back.contains(k) || !same(v, back[k])) return false;
        return true;
    }
    if (in.is_array() && back.is_array()) {
        if (in.size() != back.size()) return false;
        for (std::size_t i = 0; i < in.size(); ++i)
            if (!same(in[i], back[i])) return false;
        return true;
    }
    if (in.is_number() && back.is_number()) {
        if (in.is_number_float() || back.is_number_float()) {
            const double a = in.get<double>(), b = back.get<double>();
            if (!std::isfinite(b)) return false;  // would be written as null: the checkpoint could not be read back
            return a == b || static_cast<float>(a) == static_cast<float>(b);
        }
        return in == back;
    }
    return in == back;
}

template <class M>
void try_config(const nlohmann::json& j) {
    typename M::config c;
    try {
        c = ssl::io::config_from_json<typename M::config>(j, "fuzz");
    } catch (const ssl::io_error&) {
        return;
    }
    if (!same(j, ssl::io::config_to_json(c))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(data, data + size);
    } catch (const nlohmann::json::exception&) {
        return 0;
    }
    const nlohmann::json& j = doc.is_object() && doc.contains("config") ? doc["config"] : doc;
    try_config<ssl::simclr<B>>(j);
    try_config<ssl::byol<B>>(j);
    try_config<ssl::rotnet<B>>(j);
    try_config<ssl::jigsaw<B>>(j);
    try_config<ssl::moco_v2<B>>(j);
    try_config<ssl::instdisc<B>>(j);
    try_config<ssl::instdisc_full_softmax<B>>(j);
    try_config<ssl::deepcluster<B>>(j);
    try_config<ssl::sela<B>>(j);
    try_config<ssl::deepercluster<B>>(j);
    try_config<ssl::instance_cls<B>>(j);
    return 0;
}
