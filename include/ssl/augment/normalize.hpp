#pragma once
// Per-channel normalization (torchvision Normalize): x -> (x - mean[c]) /
// stddev[c]. The last step of a pipeline: its output is no longer in [0, 1].
#include <cmath>
#include <ostream>
#include <string_view>
#include <vector>

#include "image.hpp"

namespace ssl::augment {

struct normalize {
    std::vector<double> mean;    ///< one value per channel
    std::vector<double> stddev;  ///< one value per channel, > 0

    struct params {};
    static constexpr std::string_view name = "normalize";

    void validate() const {
        require(!mean.empty(), name, ": mean is empty (give one value per channel)");
        require(mean.size() == stddev.size(), name, ": mean has ", mean.size(), " values but stddev has ",
                stddev.size());
        for (std::size_t c = 0; c < stddev.size(); ++c) {
            require(std::isfinite(mean[c]), name, ": mean[", c, "] = ", mean[c], " is not finite");
            require(stddev[c] > 0 && std::isfinite(stddev[c]), name, ": stddev[", c, "] = ", stddev[c],
                    " must be > 0");
        }
    }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        require<shape_error>(in.c == mean.size(), name, ": configured for ", mean.size(),
                             " channels, got an image of shape ", in);
        return in;
    }
    params draw(philox&, image_dims) const { return {}; }
    void apply(const_image_ref in, const params&, image_ref out, workspace&) const {
        const std::size_t hw = in.dims.h * in.dims.w;
        for (std::size_t c = 0; c < in.dims.c; ++c) {
            const float m = static_cast<float>(mean[c]), s = static_cast<float>(stddev[c]);
            const float* src = in.plane(c);
            float* dst = out.plane(c);
            for (std::size_t i = 0; i < hw; ++i) dst[i] = (src[i] - m) / s;
        }
    }
    void describe(std::ostream& os) const {
        os << name << "(mean=[";
        for (std::size_t c = 0; c < mean.size(); ++c) os << (c ? ", " : "") << mean[c];
        os << "], stddev=[";
        for (std::size_t c = 0; c < stddev.size(); ++c) os << (c ? ", " : "") << stddev[c];
        os << "])";
    }
};

}  // namespace ssl::augment
