#pragma once
// ssl::augment::pipeline: a runtime list of ops (a std::vector of a
// std::variant of the op structs, so configs are values and a run can change
// them without recompiling) applied to a batch, and multi_view: one pipeline
// per view.
//
// Op number k of a pipeline applied to dataset sample s for view v in epoch e
// draws its parameters from op_rng(seed, e, s, v, k) only, so a view is a
// pure function of (seed, epoch, sample, view, input image): independent of
// the thread count, of the other samples of the batch and of their order.
// Inserting or removing an op changes k for the ops after it.
//
// The batch is split over samples with ssl::parallel_for; each op is
// dispatched once per image (std::visit), never per pixel.
#include <cstring>
#include <initializer_list>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "../core/tensor.hpp"
#include "../core/thread_pool.hpp"
#include "blur.hpp"
#include "color.hpp"
#include "geometry.hpp"
#include "image.hpp"
#include "normalize.hpp"

namespace ssl::augment {

/// Any op a pipeline can hold.
using op = std::variant<random_resized_crop, center_crop, resize, horizontal_flip, rotate90, color_jitter,
                        random_grayscale, gaussian_blur, solarize, normalize>;

namespace detail {
template <class V>
struct all_image_ops;
template <class... Ops>
struct all_image_ops<std::variant<Ops...>> : std::bool_constant<(image_op<Ops> && ...)> {};
template <class Op, class V>
struct is_alternative;
template <class Op, class... Ops>
struct is_alternative<Op, std::variant<Ops...>> : std::bool_constant<(std::is_same_v<Op, Ops> || ...)> {};
}  // namespace detail
static_assert(detail::all_image_ops<op>::value, "every alternative of ssl::augment::op must model image_op");

/// The op's name ("random_resized_crop", "horizontal_flip", ...).
inline std::string_view op_name(const op& o) {
    return std::visit([](const auto& x) -> std::string_view { return x.name; }, o);
}
/// The op and its config as text, e.g. "horizontal_flip(p=0.5)".
inline std::string describe(const op& o) {
    std::ostringstream os;
    std::visit([&](const auto& x) { x.describe(os); }, o);
    return os.str();
}

inline image_dims dims_of_image(const tensor<float>& image, std::string_view what) {
    require<shape_error>(image.rank() == 3, what, ": expected one image (C, H, W), got shape ", image.shape().str());
    return {image.dim(0), image.dim(1), image.dim(2)};
}

/// The parameters `op` draws for an input of dimensions `in` as op number
/// `op_index` of a pipeline (what pipeline::apply uses).
template <image_op Op>
typename Op::params draw_params(const Op& operation, image_dims in, std::uint64_t seed, std::uint64_t epoch,
                                std::uint64_t sample, std::uint32_t view, std::size_t op_index = 0) {
    operation.validate();
    (void)operation.output_dims(in);
    philox g = op_rng(seed, epoch, sample, view, op_index);
    return operation.draw(g, in);
}

/// Applies `op` with the given parameters to one image (C, H, W); a new tensor.
template <image_op Op>
tensor<float> apply_op(const Op& operation, const tensor<float>& image, const typename Op::params& q) {
    operation.validate();
    const image_dims in = dims_of_image(image, Op::name);
    const image_dims od = operation.output_dims(in);
    tensor<float> out({od.c, od.h, od.w});
    workspace ws;
    operation.apply(const_image_ref{image.data(), in}, q, image_ref{out.data(), od}, ws);
    return out;
}

class pipeline {
public:
    /// Per-thread scratch for apply_one.
    struct scratch {
        std::vector<float> ping, pong;
        workspace ws;
    };

    pipeline() = default;
    pipeline(std::initializer_list<op> ops) {
        for (const auto& o : ops) add(o);
    }
    explicit pipeline(const std::vector<op>& ops) {
        for (const auto& o : ops) add(o);
    }

    /// Appends an op (validated: ssl::value_error names a bad field).
    pipeline& add(op o) {
        std::visit([](const auto& x) { x.validate(); }, o);
        ops_.push_back(std::move(o));
        return *this;
    }
    /// Replaces op i (validated).
    pipeline& replace(std::size_t i, op o) {
        require(i < ops_.size(), "pipeline::replace: index ", i, " out of range (", ops_.size(), " ops)");
        std::visit([](const auto& x) { x.validate(); }, o);
        ops_[i] = std::move(o);
        return *this;
    }
    pipeline& remove(std::size_t i) {
        require(i < ops_.size(), "pipeline::remove: index ", i, " out of range (", ops_.size(), " ops)");
        ops_.erase(ops_.begin() + static_cast<std::ptrdiff_t>(i));
        return *this;
    }

    const std::vector<op>& ops() const noexcept { return ops_; }
    std::size_t size() const noexcept { return ops_.size(); }
    bool empty() const noexcept { return ops_.empty(); }
    std::vector<std::string_view> names() const {
        std::vector<std::string_view> n;
        for (const auto& o : ops_) n.push_back(op_name(o));
        return n;
    }
    /// Position of the first op of type Op, if any.
    template <class Op>
    std::optional<std::size_t> index_of() const {
        static_assert(detail::is_alternative<Op, op>::value, "pipeline::index_of<Op>: Op is not an augmentation op");
        for (std::size_t i = 0; i < ops_.size(); ++i)
            if (std::holds_alternative<Op>(ops_[i])) return i;
        return std::nullopt;
    }
    /// The first op of type Op, or nullptr.
    template <class Op>
    const Op* find() const {
        const auto i = index_of<Op>();
        return i ? &std::get<Op>(ops_[*i]) : nullptr;
    }

    /// Output dimensions for inputs of dimensions `in`; throws shape_error
    /// when an op cannot take what the previous one makes.
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty("pipeline", in);
        for (const auto& o : ops_) in = std::visit([&](const auto& x) { return x.output_dims(in); }, o);
        return in;
    }

    /// Applies the pipeline to one image; `out` must hold output_dims(in.dims).
    void apply_one(const_image_ref in, std::size_t sample, std::uint64_t seed, std::uint64_t epoch,
                   std::uint32_t view, image_ref out, scratch& s) const {
        if (ops_.empty()) {
            std::memcpy(out.data, in.data, in.dims.numel() * sizeof(float));
            return;
        }
        const_image_ref src = in;
        for (std::size_t k = 0; k < ops_.size(); ++k) {
            std::visit(
                [&](const auto& x) {
                    const image_dims od = x.output_dims(src.dims);
                    image_ref dst{nullptr, od};
                    if (k + 1 == ops_.size()) {
                        dst.data = out.data;
                    } else {
                        auto& buf = (src.data == s.ping.data() && !s.ping.empty()) ? s.pong : s.ping;
                        detail::grow(buf, od.numel());
                        dst.data = buf.data();
                    }
                    philox g = op_rng(seed, epoch, sample, view, k);
                    const auto q = x.draw(g, src.dims);
                    x.apply(src, q, dst, s.ws);
                    src = const_image_ref{dst.data, od};
                },
                ops_[k]);
        }
    }

    /// Applies the pipeline to every image of `batch` (N, C, H, W);
    /// sample_ids[i] is the dataset index of image i. Returns
    /// (N, C', out_h, out_w).
    tensor<float> apply(const tensor<float>& batch, std::span<const std::size_t> sample_ids, std::uint64_t seed,
                        std::uint64_t epoch, std::uint32_t view) const {
        require<shape_error>(batch.rank() == 4, "pipeline::apply: expected a batch (N, C, H, W), got shape ",
                             batch.shape().str());
        const std::size_t n = batch.dim(0);
        require<shape_error>(sample_ids.size() == n, "pipeline::apply: ", sample_ids.size(),
                             " sample ids for a batch of shape ", batch.shape().str());
        const image_dims in{batch.dim(1), batch.dim(2), batch.dim(3)};
        const image_dims od = output_dims(in);
        tensor<float> out({n, od.c, od.h, od.w});
        std::vector<scratch> scratches(num_threads());
        const float* src = batch.data();
        float* dst = out.data();
        parallel_for(n, [&](std::size_t i, std::size_t worker) {
            apply_one(const_image_ref{src + i * in.numel(), in}, sample_ids[i], seed, epoch, view,
                      image_ref{dst + i * od.numel(), od}, scratches[worker]);
        });
        return out;
    }

    /// One line per op: "0 random_resized_crop(size=28x28, ...)".
    std::string str() const {
        std::ostringstream os;
        for (std::size_t k = 0; k < ops_.size(); ++k) os << k << ' ' << describe(ops_[k]) << '\n';
        return os.str();
    }

private:
    std::vector<op> ops_;
};

/// Several views of the same batch, view v made by its own pipeline with
/// view index v in the random key (BYOL's two views differ in blur and
/// solarize; SimCLR's are two copies of one pipeline).
class multi_view {
public:
    multi_view() = default;
    explicit multi_view(std::vector<pipeline> views) : views_(std::move(views)) {}
    multi_view(std::size_t n, const pipeline& p) : views_(n, p) {}

    std::size_t size() const noexcept { return views_.size(); }
    const pipeline& operator[](std::size_t v) const {
        require(v < views_.size(), "multi_view: view ", v, " out of range (", views_.size(), " views)");
        return views_[v];
    }
    pipeline& operator[](std::size_t v) {
        require(v < views_.size(), "multi_view: view ", v, " out of range (", views_.size(), " views)");
        return views_[v];
    }
    const std::vector<pipeline>& views() const noexcept { return views_; }

    /// Every view of `batch`: result[v] = views[v].apply(batch, ids, seed, epoch, v).
    std::vector<tensor<float>> apply(const tensor<float>& batch, std::span<const std::size_t> sample_ids,
                                     std::uint64_t seed, std::uint64_t epoch) const {
        std::vector<tensor<float>> out;
        out.reserve(views_.size());
        for (std::size_t v = 0; v < views_.size(); ++v)
            out.push_back(views_[v].apply(batch, sample_ids, seed, epoch, static_cast<std::uint32_t>(v)));
        return out;
    }

private:
    std::vector<pipeline> views_;
};

}  // namespace ssl::augment
