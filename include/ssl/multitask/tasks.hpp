#pragma once
// The pretext tasks ssl::multitask can combine on one trunk (Doersch &
// Zisserman 2017), chosen at run time by name. Each task has a fixed slot:
// its views carry spec.branch = slot, and the augmentation, the head and the
// loss of multitask.hpp agree on it.
//   rotation      RotNet: 4-way rotation classification
//   jigsaw        Jigsaw (CFN): which of P permutations shuffled 9 tiles
//   exemplar      Exemplar: copies of one image are positives of a batch-hard
//                 soft-margin triplet loss (the paper's exemplar task is a
//                 triplet formulation, not Dosovitskiy's surrogate classes)
//   colorization  Larsson et al.'s hue / chroma histograms from lightness
//                 (needs colour images)
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"

namespace ssl::pretext {

enum class task : std::size_t { rotation = 0, jigsaw = 1, exemplar = 2, colorization = 3 };
inline constexpr std::size_t task_count = 4;
inline constexpr std::array<std::string_view, task_count> task_names{"rotation", "jigsaw", "exemplar", "colorization"};

constexpr std::size_t slot(task t) noexcept { return static_cast<std::size_t>(t); }
inline std::string name(task t) { return std::string(task_names[slot(t)]); }

inline std::string known_tasks() {
    std::string s;
    for (auto n : task_names) s += (s.empty() ? "" : ", ") + std::string(n);
    return s;
}

inline task parse_task(std::string_view n) {
    for (std::size_t i = 0; i < task_count; ++i)
        if (task_names[i] == n) return static_cast<task>(i);
    throw value_error("multitask: unknown task '" + std::string(n) + "'; the tasks are " + known_tasks());
}

/// The tasks of a list of names, checked (known, none twice, at least one)
/// and in slot order, whatever order the names came in.
inline std::vector<task> parse_tasks(const std::vector<std::string>& names) {
    require<value_error>(!names.empty(), "multitask: no tasks; choose one or more of ", known_tasks());
    std::vector<task> v;
    for (const auto& n : names) {
        const task t = parse_task(n);
        require<value_error>(std::find(v.begin(), v.end(), t) == v.end(), "multitask: task '", n,
                             "' is listed twice");
        v.push_back(t);
    }
    std::sort(v.begin(), v.end());
    return v;
}

/// "a,b,c" -> {"a", "b", "c"} (the command line's form; spaces trimmed);
/// `what` names the list's items in the error for an empty one.
inline std::vector<std::string> split_list(std::string_view s, std::string_view what) {
    std::vector<std::string> out;
    std::size_t b = 0;
    while (b <= s.size()) {
        std::size_t e = s.find(',', b);
        if (e == std::string_view::npos) e = s.size();
        std::string_view part = s.substr(b, e - b);
        while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
        while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
        require<value_error>(!part.empty(), "multitask: an empty ", std::string(what), " in '", std::string(s), "'");
        out.emplace_back(part);
        b = e + 1;
    }
    return out;
}

inline std::vector<std::string> split_task_list(std::string_view s) { return split_list(s, "task name"); }

inline bool has(const std::vector<task>& v, task t) { return std::find(v.begin(), v.end(), t) != v.end(); }

}  // namespace ssl::pretext
