#pragma once
// A seeded, stratified held-out split of a labelled image set: an evaluation
// (test) set for data that has none of its own (an image folder, IDX files).
//
// Per class c with n_c images, h_c = round(fraction * n_c) of them are held
// out, chosen by a Fisher-Yates shuffle of the class's images drawn from
// Philox (seed, stream "hold"), classes in label order: the same set, seed
// and fraction give the same split on every machine. Both index lists are
// in increasing order, so a class-sorted set stays class-sorted.
//
// Refused (ssl::value_error naming the set, the class and the counts): a
// fraction outside (0, 1) or nan, an unlabelled set, a class that would have
// no held-out image or no image left (a class of one image always does).
// Classes with no image in the set at all are not in either part and are no
// error (IDX labels need not use every index).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "dataset.hpp"

namespace ssl::data {

/// Indices of the images that stay (train) and of those held out.
struct holdout_split {
    std::vector<std::size_t> train, held_out;
};

/// The Philox stream of stratified_holdout's shuffles ("hold").
inline constexpr std::uint64_t holdout_stream = 0x686f6c64;

namespace detail {
inline std::string class_label(const image_dataset& d, std::size_t c) {
    if (c < d.class_names.size()) return "'" + d.class_names[c] + "'";
    return std::to_string(c);
}
}  // namespace detail

/// Holds out round(fraction * n_c) images of every class c (see the top of
/// the file). `what` names the option in messages ("--holdout").
inline holdout_split stratified_holdout(const image_dataset& d, double fraction, std::uint64_t seed,
                                        const std::string& what = "holdout") {
    require(std::isfinite(fraction) && fraction > 0 && fraction < 1, what, ": the fraction to hold out must be in ",
            "(0, 1), got ", fraction);
    require(d.labelled(), what, ": ", d.describe(), " is unlabelled; a stratified held-out split needs a class per ",
            "image (for a folder: one sub-directory per class)");
    std::vector<std::vector<std::size_t>> by_class(d.num_classes);
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto l = d.labels[i];
        require(l >= 0 && static_cast<std::size_t>(l) < d.num_classes, what, ": ", d.describe(), ": label ", l,
                " of image ", i, " is out of range [0, ", d.num_classes, ")");
        by_class[static_cast<std::size_t>(l)].push_back(i);
    }
    philox g(seed, holdout_stream);
    std::vector<char> held(d.size(), 0);
    for (std::size_t c = 0; c < by_class.size(); ++c) {
        auto& idx = by_class[c];
        const std::size_t n = idx.size();
        if (n == 0) continue;
        const auto h = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(n) + 0.5));
        require(n >= 2, what, " ", fraction, ": class ", detail::class_label(d, c), " of ", d.describe(),
                " has 1 image; a held-out split needs at least 2 per class (one to learn from, one to test)");
        require(h > 0, what, " ", fraction, ": class ", detail::class_label(d, c), " of ", d.describe(), " has ", n,
                " images, and ", fraction, " of them rounds to none held out, which leaves the class out of the "
                "evaluation; raise the fraction (at least ", 0.5 / static_cast<double>(n), ") or add images");
        require(h < n, what, " ", fraction, ": class ", detail::class_label(d, c), " of ", d.describe(), " has ", n,
                " images, and ", fraction, " of them rounds to all ", n, " held out, which leaves none to learn "
                "from; lower the fraction or add images");
        // Fisher-Yates; the first h of the shuffled order are held out
        for (std::size_t k = n - 1; k > 0; --k) {
            const auto r = static_cast<std::size_t>((static_cast<std::uint64_t>(g()) * (k + 1)) >> 32);
            std::swap(idx[k], idx[r]);
        }
        for (std::size_t k = 0; k < h; ++k) held[idx[k]] = 1;
    }
    holdout_split s;
    for (std::size_t i = 0; i < d.size(); ++i) (held[i] ? s.held_out : s.train).push_back(i);
    return s;
}

}  // namespace ssl::data
