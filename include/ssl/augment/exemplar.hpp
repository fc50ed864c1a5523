#pragma once
// The transformations of Exemplar-CNN: Dosovitskiy, Springenberg, Riedmiller,
// Brox, "Discriminative Unsupervised Feature Learning with Convolutional
// Neural Networks", NIPS 2014, sec. 2. Every seed patch is a surrogate class,
// shown as random compositions of
//   translation  by up to 0.2 of the patch side, vertically and horizontally
//   scaling      of the patch by a factor in [0.7, 1.4]
//   rotation     by an angle within [-20, 20] degrees
//   contrast 1   the pixels' projections on the principal components of all
//                pixels of the data set scaled by factors in [0.5, 2]
//   contrast 2   S and V (HSV) raised to a power in [1/4, 4], multiplied by a
//                factor in [0.7, 1.4], plus a value in [-0.1, 0.1]
//   color        the hue shifted by a value in [-0.1, 0.1] (of the circle)
//
//   random_affine   translation, scale and rotation, bilinear (an image op)
//   hsv_power       contrast 2 (an image op)
//   exemplar_views  the augmentation policy: one view per sample per step
//
// Contract of exemplar_views::make_views (N patches (N, C, S, S), S >= size,
// usually the context windows of data/exemplar_patches.hpp): one view
// (N, C, size, size), the default spec, no pretext labels (the surrogate
// class of a patch is its sample id, which the instance classifier reads).
// Op k of the view of sample s in epoch e draws from op_rng(seed, e', s, 0, k)
// with e' = e mod K when K = transforms_per_class > 0 (else e), exactly as a
// pipeline of the ops {random_affine, color_jitter, hsv_power, normalize}
// would: a view is a pure function of (seed, epoch, sample id, patch).
//
// Choices:
// - Geometry maps output pixel centres back into the input: with o the
//   output pixel's offset from the output centre, the source point is
//   c_in + R(-angle) (o - t) / scale (c_in the input centre), so scale > 1
//   enlarges the content, t moves it right / down, and a positive angle turns
//   it counter-clockwise on screen (torchvision's sign). The output shows the
//   central `size` pixels of the (larger) input at identity parameters.
// - Bilinear sampling between the four nearest pixel centres; points outside
//   the input read the input reflected at its border without repeating the
//   edge pixel (numpy "reflect"; `border = replicate` repeats it instead), so
//   a large rotation of a small window shows mirrored texture, not a flat or
//   black corner. Identity parameters give the input's centre exactly, and
//   integer translations move pixels exactly.
// - Draws: translation uniform in [-0.2, 0.2] of the output side per axis,
//   scale uniform in [0.7, 1.4] (the paper's range, as stated), angle uniform
//   in [-20, 20] degrees; contrast 2's power log-uniform in [1/4, 4] (the
//   identity is its median), factor uniform, offset uniform.
// - Contrast 1 is color_jitter's contrast (factor in [0.5, 1.5] about the
//   patch's grayscale mean): for one channel the paper's version is a
//   contrast stretch too (about the data set's mean), and it needs no
//   statistics of the data set; colour changes are then the hue shift
//   (color_jitter, 0.1) and contrast 2 on S. On 1-channel images hue and S
//   are no-ops.
// - K: the paper trains on a fixed set of K transformed versions per class.
//   transforms_per_class = K > 0 keys the draws by epoch mod K (exactly K
//   versions per class over a long run); 0 draws fresh ones every epoch.
// - Evaluation sees whole images, resized to `size` and normalised
//   (eval_pipeline), as every other policy.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <ostream>
#include <span>
#include <string_view>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/rng.hpp"
#include "../core/thread_pool.hpp"
#include "color.hpp"
#include "geometry.hpp"
#include "image.hpp"
#include "normalize.hpp"
#include "pipeline.hpp"
#include "presets.hpp"

namespace ssl::augment {

/// What a sampler reads outside the image.
enum class border_mode : std::uint8_t {
    reflect,    ///< mirrored at the border without repeating the edge pixel (numpy / torch "reflect")
    replicate,  ///< the nearest edge pixel
};

inline std::ostream& operator<<(std::ostream& os, border_mode b) {
    return os << (b == border_mode::reflect ? "reflect" : "replicate");
}

/// Random translation, scaling and rotation about the image centre, bilinear,
/// to an output of (height, width) (see the header comment for the mapping).
struct random_affine {
    std::size_t height = 0;    ///< output height
    std::size_t width = 0;     ///< output width
    double translate = 0.2;    ///< largest shift per axis, as a fraction of the output side
    range scale{0.7, 1.4};     ///< scale factor, uniform (> 1 enlarges)
    double degrees = 20;       ///< angle uniform in [-degrees, degrees], counter-clockwise positive
    border_mode border = border_mode::reflect;

    struct params {
        double angle = 0;  ///< degrees, counter-clockwise on screen
        double scale = 1;  ///< > 1 enlarges the content
        double tx = 0;     ///< shift of the content in output pixels, right positive
        double ty = 0;     ///< down positive
        friend bool operator==(const params&, const params&) = default;
    };
    static constexpr std::string_view name = "random_affine";

    void validate() const {
        detail::check_size(name, height, width);
        require(std::isfinite(translate) && translate >= 0, name, ": translate = ", translate,
                " must be finite and >= 0 (a fraction of the output side)");
        require(scale.lo <= scale.hi, name, ": scale range ", scale, " is inverted (scale.lo must be <= scale.hi)");
        require(scale.lo > 0 && std::isfinite(scale.hi), name, ": scale range ", scale, " must be positive and finite");
        require(std::isfinite(degrees) && degrees >= 0 && degrees <= 180, name, ": degrees = ", degrees,
                " must be in [0, 180]");
    }
    image_dims output_dims(image_dims in) const {
        detail::check_nonempty(name, in);
        return {in.c, height, width};
    }
    params draw(philox& g, image_dims) const {
        params q;
        q.tx = g.uniform(-translate, translate) * static_cast<double>(width);
        q.ty = g.uniform(-translate, translate) * static_cast<double>(height);
        q.scale = g.uniform(scale.lo, scale.hi);
        q.angle = g.uniform(-degrees, degrees);
        return q;
    }
    void apply(const_image_ref in, const params& q, image_ref out, workspace& ws) const {
        require(q.scale > 0 && std::isfinite(q.scale) && std::isfinite(q.angle) && std::isfinite(q.tx) &&
                    std::isfinite(q.ty),
                name, ": parameters angle=", q.angle, " scale=", q.scale, " tx=", q.tx, " ty=", q.ty,
                " must be finite with scale > 0");
        const std::size_t C = in.dims.c, H = in.dims.h, W = in.dims.w, oh = out.dims.h, ow = out.dims.w;
        const double rad = q.angle * std::numbers::pi / 180.0;
        const double cs = std::cos(rad) / q.scale, sn = std::sin(rad) / q.scale;
        const double cxo = static_cast<double>(ow) / 2, cyo = static_cast<double>(oh) / 2;
        const double cxi = static_cast<double>(W) / 2, cyi = static_cast<double>(H) / 2;
        // Per output pixel: four source offsets and bilinear weights, shared by
        // the channels (ws.fx: the offsets, ws.wx: the weights).
        detail::grow(ws.fx, 4 * oh * ow);
        detail::grow(ws.wx, 4 * oh * ow);
        const auto index = [&](long i, std::size_t n) -> std::size_t {
            if (border == border_mode::reflect) return detail::reflect_index(i, n);
            return static_cast<std::size_t>(std::clamp<long>(i, 0, static_cast<long>(n) - 1));
        };
        for (std::size_t y = 0; y < oh; ++y)
            for (std::size_t x = 0; x < ow; ++x) {
                const double dx = static_cast<double>(x) + 0.5 - cxo - q.tx;
                const double dy = static_cast<double>(y) + 0.5 - cyo - q.ty;
                const double sx = cxi + cs * dx - sn * dy - 0.5;  // source pixel-index coordinates
                const double sy = cyi + sn * dx + cs * dy - 0.5;
                const double x0 = std::floor(sx), y0 = std::floor(sy);
                const double fx = sx - x0, fy = sy - y0;
                const long ix = static_cast<long>(x0), iy = static_cast<long>(y0);
                const std::size_t xa = index(ix, W), xb = index(ix + 1, W);
                const std::size_t ya = index(iy, H), yb = index(iy + 1, H);
                const std::size_t k = 4 * (y * ow + x);
                ws.fx[k] = ya * W + xa;
                ws.fx[k + 1] = ya * W + xb;
                ws.fx[k + 2] = yb * W + xa;
                ws.fx[k + 3] = yb * W + xb;
                ws.wx[k] = static_cast<float>((1 - fy) * (1 - fx));
                ws.wx[k + 1] = static_cast<float>((1 - fy) * fx);
                ws.wx[k + 2] = static_cast<float>(fy * (1 - fx));
                ws.wx[k + 3] = static_cast<float>(fy * fx);
            }
        for (std::size_t c = 0; c < C; ++c) {
            const float* src = in.plane(c);
            float* dst = out.plane(c);
            for (std::size_t i = 0; i < oh * ow; ++i) {
                const std::size_t* f = ws.fx.data() + 4 * i;
                const float* w = ws.wx.data() + 4 * i;
                // A zero weight contributes exactly nothing: at integer source
                // coordinates the result is the source pixel, bit for bit.
                dst[i] = (w[0] * src[f[0]] + w[1] * src[f[1]]) + (w[2] * src[f[2]] + w[3] * src[f[3]]);
            }
        }
    }
    void describe(std::ostream& os) const {
        os << name << "(size=" << height << "x" << width << ", translate=" << translate << ", scale=" << scale
           << ", degrees=" << degrees << ", border=" << border << ')';
    }
};

/// The paper's second contrast transform: with probability p, S and V of
/// every pixel (HSV) become clamp(x^power * factor + offset, 0, 1), one draw
/// of (power, factor, offset) for S and one for V per image; power
/// log-uniform in `power`, factor uniform in `factor`, offset uniform in
/// [-offset, offset]. On 1-channel images V is the pixel value and S is
/// absent. Values stay in [0, 1]. As in the paper's HSV arithmetic, a gray
/// pixel (hue 0 by convention) whose S a positive offset raises takes a red
/// tint.
struct hsv_power {
    range power{0.25, 4.0};
    range factor{0.7, 1.4};
    double offset = 0.1;
    double p = 1.0;

    struct component {
        float power = 1, factor = 1, offset = 0;
        bool identity() const noexcept { return power == 1.0f && factor == 1.0f && offset == 0.0f; }
        float operator()(float x) const noexcept {
            const float y = power == 1.0f ? x : std::pow(x, power);
            return detail::clamp01(y * factor + offset);
        }
    };
    struct params {
        bool active = false;
        component s, v;
    };
    static constexpr std::string_view name = "hsv_power";

    void validate() const {
        require(power.lo <= power.hi && power.lo > 0 && std::isfinite(power.hi), name, ": power range ", power,
                " must be positive, finite and not inverted");
        require(factor.lo <= factor.hi && factor.lo >= 0 && std::isfinite(factor.hi), name, ": factor range ",
                factor, " must be nonnegative, finite and not inverted");
        require(std::isfinite(offset) && offset >= 0 && offset <= 1, name, ": offset = ", offset,
                " must be in [0, 1]");
        detail::check_probability(name, p);
    }
    image_dims output_dims(image_dims in) const {
        detail::check_color_channels(name, in);
        return in;
    }
    params draw(philox& g, image_dims) const {
        params q;
        q.active = g.uniform() < p;
        const auto one = [&] {
            component c;
            c.power = static_cast<float>(std::exp(g.uniform(std::log(power.lo), std::log(power.hi))));
            c.factor = static_cast<float>(g.uniform(factor.lo, factor.hi));
            c.offset = static_cast<float>(g.uniform(-offset, offset));
            return c;
        };
        q.s = one();  // drawn for 1-channel images too: the stream does not depend on C
        q.v = one();
        return q;
    }
    void apply(const_image_ref in, const params& q, image_ref out, workspace&) const {
        const std::size_t n = in.dims.numel();
        std::memcpy(out.data, in.data, n * sizeof(float));
        if (!q.active) return;
        if (in.dims.c == 1) {
            if (q.v.identity()) return;
            for (std::size_t i = 0; i < n; ++i) out.data[i] = q.v(out.data[i]);
            return;
        }
        if (q.s.identity() && q.v.identity()) return;
        // In HSV every channel is x = V (1 - S (1 - f_x)), f_x = (x - min) /
        // (max - min) fixed by the hue; so new S and V give the channels
        // directly, without the hue. A gray pixel has hue 0: f = (1, 0, 0).
        const std::size_t hw = in.dims.h * in.dims.w;
        float *R = out.plane(0), *G = out.plane(1), *B = out.plane(2);
        for (std::size_t i = 0; i < hw; ++i) {
            const float v = std::max(R[i], std::max(G[i], B[i])), mn = std::min(R[i], std::min(G[i], B[i]));
            const float chroma = v - mn;
            float fr = 1, fg = 0, fb = 0;
            if (chroma > 0) {
                fr = (R[i] - mn) / chroma;
                fg = (G[i] - mn) / chroma;
                fb = (B[i] - mn) / chroma;
            }
            const float s2 = q.s(v > 0 ? chroma / v : 0.0f), v2 = q.v(v);
            R[i] = v2 * (1 - s2 * (1 - fr));
            G[i] = v2 * (1 - s2 * (1 - fg));
            B[i] = v2 * (1 - s2 * (1 - fb));
        }
    }
    void describe(std::ostream& os) const {
        os << name << "(power=" << power << ", factor=" << factor << ", offset=" << offset << ", p=" << p << ')';
    }
};

static_assert(image_op<random_affine> && image_op<hsv_power>, "the exemplar ops must model image_op");

struct exemplar_views_config {
    std::size_t size = 16;      ///< the network's input side (the seed patch side p)
    std::size_t channels = 1;   ///< 1 or 3
    double translate = 0.2;     ///< per axis, a fraction of `size`
    range scale{0.7, 1.4};
    double degrees = 20;
    border_mode border = border_mode::reflect;
    double contrast = 0.5;      ///< contrast 1: color_jitter's contrast strength (factor in [1 - c, 1 + c])
    double hue = 0.1;           ///< color: hue shift in [-hue, hue] (3 channels)
    range power{0.25, 4.0};     ///< contrast 2: S and V exponent (log-uniform)
    range factor{0.7, 1.4};     ///< contrast 2: multiplier
    double offset = 0.1;        ///< contrast 2: added value in [-offset, offset]
    std::size_t transforms_per_class = 0;  ///< K: draws keyed by epoch mod K; 0: fresh draws every epoch
};

/// Exemplar-CNN's augmentation policy (see the header comment).
class exemplar_views {
public:
    using config_type = exemplar_views_config;
    static constexpr const char* name = "exemplar_views";
    /// Op positions in the random key: op k draws from op_rng(seed, e', id, 0, k).
    static constexpr std::size_t affine_op = 0, jitter_op = 1, power_op = 2, normalize_op = 3;

    explicit exemplar_views(const exemplar_views_config& c = {})
        : cfg_(c), eval_(eval_pipeline(c.size, c.channels)) {
        require<value_error>(c.channels == 1 || c.channels == 3, "exemplar_views: channels must be 1 or 3, got ",
                             c.channels);
        affine_ = random_affine{.height = c.size, .width = c.size, .translate = c.translate, .scale = c.scale,
                                .degrees = c.degrees, .border = c.border};
        jitter_ = color_jitter{.contrast = c.contrast, .hue = c.hue, .p = 1.0};
        power_ = hsv_power{.power = c.power, .factor = c.factor, .offset = c.offset, .p = 1.0};
        norm_ = default_normalize(c.channels);
        affine_.validate();
        jitter_.validate();
        power_.validate();
    }
    const exemplar_views_config& config() const noexcept { return cfg_; }
    const random_affine& affine() const noexcept { return affine_; }
    const color_jitter& jitter() const noexcept { return jitter_; }
    const hsv_power& power() const noexcept { return power_; }

    /// The epoch the draws are keyed by: epoch mod K (K > 0), else epoch.
    std::uint64_t draw_epoch(std::uint64_t epoch) const noexcept {
        return cfg_.transforms_per_class > 0 ? epoch % cfg_.transforms_per_class : epoch;
    }

    view_batch<float> make_views(const tensor<float>& images, std::span<const std::size_t> ids, std::uint64_t seed,
                                 std::uint64_t epoch) const {
        check_rank(images, 4, "exemplar_views", "(N, C, H, W)");
        const std::size_t n = images.dim(0), C = cfg_.channels, p = cfg_.size;
        require<shape_error>(images.dim(1) == C && ids.size() == n, "exemplar_views: patches of shape ",
                             images.shape().str(), " with ", ids.size(), " ids, configured for ", C, " channels");
        require<shape_error>(images.dim(2) >= 1 && images.dim(3) >= 1, "exemplar_views: empty patches of shape ",
                             images.shape().str());
        const image_dims in{C, images.dim(2), images.dim(3)}, od{C, p, p};
        const std::uint64_t e = draw_epoch(epoch);
        tensor<float> out({n, C, p, p});
        struct scratch {
            std::vector<float> a, b;
            workspace ws;
        };
        std::vector<scratch> scr(num_threads());
        parallel_for(n, [&](std::size_t i, std::size_t w) {
            scratch& s = scr[w];
            detail::grow(s.a, od.numel());
            detail::grow(s.b, od.numel());
            const const_image_ref src{images.data() + i * in.numel(), in};
            const image_ref a{s.a.data(), od}, b{s.b.data(), od}, dst{out.data() + i * od.numel(), od};
            philox g0 = op_rng(seed, e, ids[i], 0, affine_op);
            affine_.apply(src, affine_.draw(g0, in), a, s.ws);
            philox g1 = op_rng(seed, e, ids[i], 0, jitter_op);
            jitter_.apply(const_image_ref{a.data, od}, jitter_.draw(g1, od), b, s.ws);
            philox g2 = op_rng(seed, e, ids[i], 0, power_op);
            power_.apply(const_image_ref{b.data, od}, power_.draw(g2, od), a, s.ws);
            norm_.apply(const_image_ref{a.data, od}, {}, dst, s.ws);
        });
        view_batch<float> vb;
        vb.views.push_back(std::move(out));
        return vb;
    }

    /// Whole images resized to `size`, normalised: what the backbone sees at
    /// evaluation.
    tensor<float> eval_transform(const tensor<float>& images) const {
        std::vector<std::size_t> ids(images.dim(0));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
        return eval_.apply(images, ids, 0, 0, 0);
    }

private:
    exemplar_views_config cfg_;
    pipeline eval_;
    random_affine affine_{};
    color_jitter jitter_{};
    hsv_power power_{};
    normalize norm_{};
};

}  // namespace ssl::augment
