#pragma once
// The labelled subset of a semi-supervised run (S4L, Zhai et al. 2019: 1 % or
// 10 % of ILSVRC-2012's labels): a seeded, stratified choice of the images
// whose class a method may see; every other image trains without its label.
//
// Per class c with n_c images, k_c = round(fraction * n_c) of them are
// labelled, chosen by a Fisher-Yates shuffle of the class's images drawn from
// Philox (seed, stream "labl"), classes in label order (as
// data/holdout.hpp's split, with its own stream): the same set, seed and
// fraction give the same subset on every machine. The indices are returned
// in increasing order.
//
// Refused (ssl::value_error naming `what`, the set, the class and the
// counts): a fraction outside (0, 1] or nan, an unlabelled set, and a class
// that would get no labelled image at all. Classes with no image in the set
// are no error (IDX labels need not use every index).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "dataset.hpp"
#include "holdout.hpp"

namespace ssl::data {

/// The Philox stream of labelled_subset's shuffles ("labl").
inline constexpr std::uint64_t labelled_subset_stream = 0x6c61626c;

/// Images labelled of a class of n images: round(fraction * n), halves up.
inline std::size_t labelled_count(double fraction, std::size_t n) {
    return static_cast<std::size_t>(std::floor(fraction * static_cast<double>(n) + 0.5));
}

/// The indices (increasing) of the round(fraction * n_c) labelled images of
/// every class c (see the top of the file). `what` names the option in
/// messages ("--labelled-fraction").
inline std::vector<std::size_t> labelled_subset(const image_dataset& d, double fraction, std::uint64_t seed,
                                                const std::string& what = "labelled subset") {
    require(std::isfinite(fraction) && fraction > 0 && fraction <= 1, what, ": the fraction of labelled images "
            "must be in (0, 1], got ", fraction);
    require(d.labelled(), what, ": ", d.describe(), " has no labels; a semi-supervised run needs a class for the "
            "images of its labelled subset");
    std::vector<std::vector<std::size_t>> by_class(d.num_classes);
    for (std::size_t i = 0; i < d.size(); ++i) {
        const auto l = d.labels[i];
        require(l >= 0 && static_cast<std::size_t>(l) < d.num_classes, what, ": ", d.describe(), ": label ", l,
                " of image ", i, " is out of range [0, ", d.num_classes, ")");
        by_class[static_cast<std::size_t>(l)].push_back(i);
    }
    philox g(seed, labelled_subset_stream);
    std::vector<std::size_t> out;
    for (std::size_t c = 0; c < by_class.size(); ++c) {
        auto& idx = by_class[c];
        const std::size_t n = idx.size();
        if (n == 0) continue;
        const std::size_t k = labelled_count(fraction, n);
        require(k > 0, what, " ", fraction, ": class ", detail::class_label(d, c), " of ", d.describe(), " has ", n,
                " images, and ", fraction, " of them rounds to none labelled, which leaves the class without a "
                "label; raise the fraction (at least ", 0.5 / static_cast<double>(n), ") or use more images");
        for (std::size_t j = n - 1; j > 0; --j) {  // Fisher-Yates; the first k are labelled
            const auto r = static_cast<std::size_t>((static_cast<std::uint64_t>(g()) * (j + 1)) >> 32);
            std::swap(idx[j], idx[r]);
        }
        out.insert(out.end(), idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace ssl::data
