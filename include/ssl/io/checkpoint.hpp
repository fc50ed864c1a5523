#pragma once
// Model checkpoints as safetensors files, named like PyTorch's state_dict
// ("conv1.weight", "layer1.0.bn1.running_mean", "fc.bias"), so a ResNet saved
// here loads into torchvision's module with load_state_dict(strict=True).
//
//   state_dict(m)                   -> io::safetensors_file (parameters + buffers)
//   load_state_dict(m, file, strict) -> load_report, all-or-nothing
//   save_checkpoint(path, m, meta)   atomic write of state_dict(m) + metadata
//   load_checkpoint(path, m, strict) read_safetensors + load_state_dict
//
// Parameters are stored with their own dtype (F32 for float, F64 for double),
// counters such as num_batches_tracked as I64. Loading converts F32 <-> F64;
// any other dtype difference, and any shape difference, is an error even
// when not strict (as in PyTorch). Every error is an ssl::io_error naming the
// tensor(s) and the source file.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../nn/parameter.hpp"
#include "safetensors.hpp"

namespace ssl {

/// What load_state_dict / load_checkpoint did. With strict loading, missing
/// and unexpected are always empty (they are errors instead).
struct load_report {
    std::vector<std::string> loaded;      ///< module tensors filled from the file
    std::vector<std::string> missing;     ///< module tensors the file lacks (left unchanged)
    std::vector<std::string> unexpected;  ///< file tensors the module has no place for (ignored)
    bool complete() const noexcept { return missing.empty() && unexpected.empty(); }
};

namespace detail {

/// "'a', 'b', 'c' and 4 more"
inline std::string name_list(const std::vector<std::string>& names, std::size_t max = 5) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < max; ++i) s += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > max) s += " and " + std::to_string(names.size() - max) + " more";
    return s;
}

/// Calls f(name, tensor<U>&) for every parameter value and every buffer of m.
template <class M, class F>
void for_each_state(M& m, F&& f) {
    m.for_each_parameter([&](const std::string& name, auto& p) { f(name, p.value); }, "");
    m.for_each_buffer([&](const std::string& name, auto& t) { f(name, t); }, "");
}

}  // namespace detail

/// The module's parameters and buffers as a safetensors file object, with
/// metadata {"format": "ssl"}. Further tensors (optimizer state) and metadata
/// can be added before writing it. The tensors are copies.
template <class M>
io::safetensors_file state_dict(M& module) {
    io::safetensors_file file;
    detail::for_each_state(module, [&](const std::string& name, const auto& t) {
        require<value_error>(!file.tensors.contains(name), "state_dict: the module names two tensors '", name, "'");
        file.tensors.emplace(name, io::to_stored(t));
    });
    file.metadata["format"] = "ssl";
    return file;
}

/// Loads `file` into `module`. Every module tensor is looked up by name; its
/// shape must match exactly and its dtype must be convertible (same, or
/// F32 <-> F64). strict: a module tensor absent from the file, or a file tensor
/// the module lacks, is an error. Not strict: only the names present in both
/// are loaded, and the report lists the rest. All or nothing: everything is
/// checked and converted before the first write into the module, so on error
/// the module is unchanged. Values are copied into the module's existing
/// storage (aliases of a parameter, e.g. held by an optimizer, see the new
/// values). `source` names the file in error messages.
template <class M>
load_report load_state_dict(M& module, const io::safetensors_file& file, bool strict = true,
                            std::string_view source = "state dict") {
    load_report report;
    std::vector<std::function<void()>> commits;  // run only when everything checked out
    std::vector<std::string> problems;
    std::map<std::string, bool> used;  // file tensor names consumed by the module
    for (const auto& [name, t] : file.tensors) used.emplace(name, false);

    detail::for_each_state(module, [&](const std::string& name, auto& dst) {
        using U = typename std::decay_t<decltype(dst)>::value_type;
        auto it = file.tensors.find(name);
        if (it == file.tensors.end()) {
            report.missing.push_back(name);
            return;
        }
        used[name] = true;
        const io::stored_tensor& s = it->second;
        const shape_t& want = dst.shape();
        const bool same_shape = s.shape.size() == want.rank() && std::equal(s.shape.begin(), s.shape.end(), want.begin());
        if (!same_shape) {
            problems.push_back(detail::cat("'", name, "': shape ", s.shape_str(), " in the checkpoint, ", want.str(),
                                           " in the model"));
            return;
        }
        if (!io::convertible_to<U>(s.dtype)) {
            problems.push_back(detail::cat("'", name, "': dtype ", io::dtype_name(s.dtype),
                                           " in the checkpoint cannot be loaded into a ",
                                           io::dtype_name(io::dtype_of<U>()), " tensor (dtype mismatch)"));
            return;
        }
        tensor<U> v = io::from_stored<U>(s, detail::cat("tensor '", name, "' of '", source, "'"));
        tensor<U>* target = &dst;
        commits.emplace_back([target, v = std::move(v)]() mutable {
            if (target->defined())
                target->assign(v);
            else
                *target = std::move(v);
        });
        report.loaded.push_back(name);
    });
    for (const auto& [name, u] : used)
        if (!u) report.unexpected.push_back(name);

    std::string msg;
    if (!problems.empty()) {
        msg += detail::cat(problems.size(), " tensor(s) do not fit the model: ");
        for (std::size_t i = 0; i < problems.size() && i < 5; ++i) msg += (i ? "; " : "") + problems[i];
        if (problems.size() > 5) msg += detail::cat("; and ", problems.size() - 5, " more");
    }
    if (strict && !report.missing.empty())
        msg += detail::cat(msg.empty() ? "" : "; ", report.missing.size(),
                           " missing (in the model, not in the checkpoint): ", detail::name_list(report.missing));
    if (strict && !report.unexpected.empty())
        msg += detail::cat(msg.empty() ? "" : "; ", report.unexpected.size(),
                           " unexpected (in the checkpoint, not in the model): ", detail::name_list(report.unexpected));
    if (!msg.empty()) throw io_error(detail::cat("loading '", source, "'", strict ? " (strict)" : "", ": ", msg));
    for (auto& c : commits) c();
    return report;
}

/// Writes the module's parameters and buffers to `path` (atomically).
/// metadata is stored as given, plus "format": "ssl" (which overrides a
/// caller's "format").
template <class M>
void save_checkpoint(const std::filesystem::path& path, M& module, const std::map<std::string, std::string>& metadata = {}) {
    io::safetensors_file file = state_dict(module);
    for (const auto& [k, v] : metadata) file.metadata[k] = v;
    file.metadata["format"] = "ssl";
    io::write_safetensors(path, file);
}

/// Reads `path` and loads it into the module (see load_state_dict).
template <class M>
load_report load_checkpoint(const std::filesystem::path& path, M& module, bool strict = true) {
    const io::safetensors_file file = io::read_safetensors(path);
    return load_state_dict(module, file, strict, path.string());
}

}  // namespace ssl
