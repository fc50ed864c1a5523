#pragma once
// ssl::data::image_dataset: a whole image set held in memory as bytes.
//
//   images       tensor<std::uint8_t> (N, C, H, W), the pixels as stored
//                (0..255); Fashion-MNIST's 60000 training images are 47 MB
//   labels       one class index per image, or empty: unlabelled sets are
//                first-class (most self-supervised data has no labels)
//   num_classes  0 when unlabelled
//   class_names  empty, or one name per class
//   name         a short name for messages ("fashion-mnist/train")
//   source       where it came from (a directory or file)
//
// batch(indices) turns the chosen images into floats in [0, 1] for a model.
// Every reader in ssl::data returns one of these and has validated it, so
// labels are always in [0, num_classes). A hand-built set can be checked with
// validate(), which throws ssl::value_error naming the set and the problem.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace ssl::data {

/// Which part of a data set with a fixed train/test split to read.
enum class split { train, test };

/// "train" or "test".
constexpr const char* split_name(split s) noexcept { return s == split::train ? "train" : "test"; }

struct image_dataset {
    tensor<std::uint8_t> images;         ///< (N, C, H, W), bytes 0..255
    std::vector<std::int64_t> labels;    ///< N class indices, or empty (unlabelled)
    std::size_t num_classes = 0;         ///< 0 when unlabelled
    std::vector<std::string> class_names;  ///< empty, or num_classes names
    std::string name;                    ///< short name used in messages
    std::string source;                  ///< file or directory it was read from

    std::size_t size() const noexcept { return images.rank() == 4 ? images.shape()[0] : 0; }
    std::size_t channels() const noexcept { return images.rank() == 4 ? images.shape()[1] : 0; }
    std::size_t height() const noexcept { return images.rank() == 4 ? images.shape()[2] : 0; }
    std::size_t width() const noexcept { return images.rank() == 4 ? images.shape()[3] : 0; }
    /// Bytes of one image (C * H * W).
    std::size_t image_bytes() const noexcept { return channels() * height() * width(); }
    bool labelled() const noexcept { return !labels.empty(); }
    bool empty() const noexcept { return size() == 0; }

    /// Throws ssl::value_error unless the set is consistent: images of rank 4,
    /// labels empty or one per image, labels in [0, num_classes), num_classes
    /// 0 exactly when unlabelled, class_names empty or num_classes long.
    void validate() const {
        const std::string who = describe();
        require(images.rank() == 4, who, ": images must be a rank-4 (N, C, H, W) tensor, got shape ",
                images.shape().str());
        if (labels.empty()) {
            require(num_classes == 0 || size() == 0, who, ": num_classes is ", num_classes,
                    " but there are no labels (an unlabelled set has num_classes 0)");
        } else {
            require(labels.size() == size(), who, ": ", labels.size(), " labels for ", size(), " images");
            require(num_classes > 0, who, ": labelled but num_classes is 0");
            for (std::size_t i = 0; i < labels.size(); ++i)
                require(labels[i] >= 0 && static_cast<std::uint64_t>(labels[i]) < num_classes, who, ": label ",
                        labels[i], " of image ", i, " is out of range [0, ", num_classes, ")");
        }
        require(class_names.empty() || class_names.size() == num_classes, who, ": ", class_names.size(),
                " class names for ", num_classes, " classes");
    }

    /// The images at `indices` as floats in [0, 1], shape (B, C, H, W), in the
    /// order given (indices may repeat). Runs on the calling thread only, so
    /// it can be called from a loader's worker without touching the pool.
    tensor<float> batch(std::span<const std::size_t> indices) const {
        tensor<float> out({indices.size(), channels(), height(), width()});
        batch_into(indices, out.data());
        return out;
    }

    /// As batch(), writing B * C * H * W floats to `out`.
    void batch_into(std::span<const std::size_t> indices, float* out) const {
        check_indices(indices, "batch");
        static const std::array<float, 256> lut = [] {
            std::array<float, 256> t{};
            for (std::size_t v = 0; v < 256; ++v) t[v] = static_cast<float>(v) / 255.0f;
            return t;
        }();
        const std::size_t per = image_bytes();
        const std::uint8_t* base = images.data();
        for (std::size_t b = 0; b < indices.size(); ++b) {
            const std::uint8_t* src = base + indices[b] * per;
            float* dst = out + b * per;
            for (std::size_t k = 0; k < per; ++k) dst[k] = lut[src[k]];
        }
    }

    /// The labels of `indices` (empty when the set is unlabelled).
    std::vector<std::int64_t> labels_of(std::span<const std::size_t> indices) const {
        check_indices(indices, "labels_of");
        std::vector<std::int64_t> out;
        if (!labelled()) return out;
        out.reserve(indices.size());
        for (std::size_t i : indices) out.push_back(labels[i]);
        return out;
    }

    /// A new set holding copies of the images at `indices` (and their labels);
    /// classes, names and source are kept.
    image_dataset subset(std::span<const std::size_t> indices) const {
        check_indices(indices, "subset");
        image_dataset s;
        s.images = tensor<std::uint8_t>({indices.size(), channels(), height(), width()});
        const std::size_t per = image_bytes();
        for (std::size_t b = 0; b < indices.size(); ++b)
            std::copy_n(images.data() + indices[b] * per, per, s.images.data() + b * per);
        s.labels = labels_of(indices);
        s.num_classes = num_classes;
        s.class_names = class_names;
        s.name = name;
        s.source = source;
        return s;
    }

    /// Number of images per class (empty when unlabelled).
    std::vector<std::size_t> class_counts() const {
        std::vector<std::size_t> c(labelled() ? num_classes : 0, 0);
        for (auto l : labels)
            if (l >= 0 && static_cast<std::size_t>(l) < c.size()) ++c[static_cast<std::size_t>(l)];
        return c;
    }

    /// "image_dataset 'name' (source)" for messages.
    std::string describe() const {
        std::string s = "image_dataset '" + name + "'";
        if (!source.empty()) s += " (" + source + ")";
        return s;
    }

private:
    void check_indices(std::span<const std::size_t> indices, const char* what) const {
        require(images.rank() == 4, describe(), ": ", what, ": images must be a rank-4 (N, C, H, W) tensor, got shape ",
                images.shape().str());
        const std::size_t n = size();
        for (std::size_t k = 0; k < indices.size(); ++k)
            require(indices[k] < n, describe(), ": ", what, ": index ", indices[k], " (position ", k,
                    ") is out of range for ", n, " images");
    }
};

namespace detail {

/// Throws ssl::io_error "<kind> '<path>': <message>".
template <class... Args>
[[noreturn]] void file_fail(const char* kind, const std::filesystem::path& path, Args&&... args) {
    throw io_error(ssl::detail::cat(kind, " '", path.string(), "': ", std::forward<Args>(args)...));
}

}  // namespace detail
}  // namespace ssl::data
