#pragma once
// A backbone chosen at run time: resnet18, resnet34, resnet50, convnet (and
// convnet-ln, the convnet with layer norm: CPC's patch encoder), the
// pre-activation resnet18v2 / resnet34v2 / resnet50v2 (resnet_v2.hpp), the
// batch-norm VGGs vgg11 / vgg13 / vgg16 / vgg19 (vgg.hpp) or the reversible
// revnet18 / revnet50 (revnet.hpp) behind one type, so a program that lets its user pick the architecture
// instantiates each method once instead of once per architecture.
//
//   ssl::simclr<ssl::any_backbone<float>> m(ssl::simclr_config<ssl::any_backbone<float>>(
//       {.arch = "resnet50", .in_channels = 1, .width = 16, .stem = ssl::stem::cifar}, 28, 1));
//
// It models backbone_policy like the concrete backbones: forward returns a
// type-erased cache (one small heap allocation per call; the layers' own
// caches are what costs), parameter and buffer names are the concrete
// backbone's (torchvision's for the ResNets), copies share storage as layer
// copies do (deep_copy clones), and as<B>() reaches the concrete backbone
// (stages, blocks). The virtual call per forward and backward is nothing next
// to a convolution; what it buys is compile time: the ssl program's nine
// methods were instantiated four times each before. Taps (taps.hpp:
// forward_taps, backward_taps, tap_names) are forwarded to the held backbone
// the same way, with its names.
//
// The backbones are built by detail::make_any_backbone_impl<T>. A
// program with many translation units can compile them once: write
// SSL_EXTERN_ANY_BACKBONE(float) where every translation unit sees it and
// SSL_INSTANTIATE_ANY_BACKBONE(float) in one .cpp file.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "convnet.hpp"
#include "resnet.hpp"
#include "resnet_v2.hpp"
#include "revnet.hpp"
#include "taps.hpp"
#include "vgg.hpp"

namespace ssl {

/// Options of any_backbone: the architecture's name and the union of the
/// concrete backbones' options (convnet uses in_channels, width and seed;
/// vgg* those and the stem).
struct any_backbone_options {
    std::string arch = "resnet18";   ///< one of any_backbone_archs()
    std::size_t in_channels = 3;
    std::size_t width = 64;           ///< base width (64 = standard)
    ssl::stem stem = ssl::stem::imagenet;  ///< ResNets, RevNets, VGGs (cifar: no last max pool)
    std::size_t num_classes = 0;      ///< ResNets and RevNets only: 0 = no fc, forward returns pooled features
    std::uint64_t seed = 0;           ///< initialization seed
};

/// The architectures any_backbone builds, in the order error messages list them.
inline const std::vector<std::string>& any_backbone_archs() {
    static const std::vector<std::string> v{"resnet18",   "resnet34",   "resnet50", "convnet", "resnet18v2",
                                            "resnet34v2", "resnet50v2", "vgg11",    "vgg13",   "vgg16",
                                            "vgg19",      "revnet18",   "revnet50", "convnet-ln"};
    return v;
}

namespace detail {

/// What any_backbone asks of the backbone it holds.
template <class T>
struct any_backbone_impl {
    using param_fn = std::function<void(const std::string&, parameter<T>&)>;
    struct buffer_fns {
        std::function<void(const std::string&, tensor<T>&)> value;
        std::function<void(const std::string&, tensor<std::int64_t>&)> count;
    };
    virtual ~any_backbone_impl() = default;
    virtual std::unique_ptr<any_backbone_impl> clone() const = 0;  ///< shares storage, like a layer copy
    virtual forward_result<T, std::shared_ptr<void>> forward(const tensor<T>& x) = 0;
    virtual tensor<T> backward(const std::shared_ptr<void>& cache, const tensor<T>& dy, bool need_input_grad) = 0;
    virtual tap_result<T, std::shared_ptr<void>> forward_taps(const tensor<T>& x,
                                                              const std::vector<std::string>& names) = 0;
    virtual tensor<T> backward_taps(const std::shared_ptr<void>& cache, const tensor<T>& d_out,
                                    const std::vector<tensor<T>>& d_taps, bool need_input_grad) = 0;
    virtual std::vector<std::string> tap_names() const = 0;
    virtual void for_each_parameter(const param_fn& f, const std::string& prefix) = 0;
    virtual void for_each_buffer(const buffer_fns& f, const std::string& prefix) = 0;
    virtual void train(bool on) = 0;
    virtual bool training() const = 0;
    virtual std::size_t output_dim() const = 0;
    virtual std::size_t feature_dim() const = 0;
    virtual void* target(const std::type_info& t) = 0;  ///< the held backbone if its type is t, else null
};

template <class T, class B>
struct any_backbone_model final : any_backbone_impl<T> {
    using base = any_backbone_impl<T>;
    B b;
    explicit any_backbone_model(B x) : b(std::move(x)) {}
    std::unique_ptr<base> clone() const override { return std::make_unique<any_backbone_model>(*this); }
    forward_result<T, std::shared_ptr<void>> forward(const tensor<T>& x) override {
        auto r = b.forward(x);
        return {std::move(r.out), std::make_shared<typename B::cache_type>(std::move(r.cache))};
    }
    tensor<T> backward(const std::shared_ptr<void>& c, const tensor<T>& dy, bool need_input_grad) override {
        require(c != nullptr, "any_backbone: backward without a cache from forward");
        return b.backward(*static_cast<const typename B::cache_type*>(c.get()), dy, need_input_grad);
    }
    tap_result<T, std::shared_ptr<void>> forward_taps(const tensor<T>& x,
                                                      const std::vector<std::string>& names) override {
        auto r = b.forward_taps(x, names);
        return {std::move(r.out), std::make_shared<typename B::tap_cache_type>(std::move(r.cache)),
                std::move(r.taps)};
    }
    tensor<T> backward_taps(const std::shared_ptr<void>& c, const tensor<T>& d_out,
                            const std::vector<tensor<T>>& d_taps, bool need_input_grad) override {
        require(c != nullptr, "any_backbone: backward_taps without a cache from forward_taps");
        return b.backward_taps(*static_cast<const typename B::tap_cache_type*>(c.get()), d_out, d_taps,
                               need_input_grad);
    }
    std::vector<std::string> tap_names() const override { return b.tap_names(); }
    void for_each_parameter(const typename base::param_fn& f, const std::string& p) override {
        b.for_each_parameter(f, p);
    }
    void for_each_buffer(const typename base::buffer_fns& f, const std::string& p) override {
        b.for_each_buffer(
            [&](const std::string& n, auto& t) {
                if constexpr (std::is_same_v<std::remove_cvref_t<decltype(t)>, tensor<T>>)
                    f.value(n, t);
                else
                    f.count(n, t);
            },
            p);
    }
    void train(bool on) override { b.train(on); }
    bool training() const override { return b.training(); }
    std::size_t output_dim() const override { return b.output_dim(); }
    std::size_t feature_dim() const override { return b.feature_dim(); }
    void* target(const std::type_info& t) override { return t == typeid(B) ? &b : nullptr; }
};

/// Builds the backbone named in o.arch. Not inline, so that
/// SSL_EXTERN_ANY_BACKBONE can keep translation units from compiling it.
template <class T>
std::unique_ptr<any_backbone_impl<T>> make_any_backbone_impl(const any_backbone_options& o) {
    const resnet_options r{.in_channels = o.in_channels, .width = o.width, .stem = o.stem,
                           .num_classes = o.num_classes, .seed = o.seed};
    if (o.arch == "resnet18") return std::make_unique<any_backbone_model<T, resnet18<T>>>(resnet18<T>(r));
    if (o.arch == "resnet34") return std::make_unique<any_backbone_model<T, resnet34<T>>>(resnet34<T>(r));
    if (o.arch == "resnet50") return std::make_unique<any_backbone_model<T, resnet50<T>>>(resnet50<T>(r));
    if (o.arch == "resnet18v2") return std::make_unique<any_backbone_model<T, resnet18v2<T>>>(resnet18v2<T>(r));
    if (o.arch == "resnet34v2") return std::make_unique<any_backbone_model<T, resnet34v2<T>>>(resnet34v2<T>(r));
    if (o.arch == "resnet50v2") return std::make_unique<any_backbone_model<T, resnet50v2<T>>>(resnet50v2<T>(r));
    if (o.arch == "revnet18") return std::make_unique<any_backbone_model<T, revnet18<T>>>(revnet18<T>(r));
    if (o.arch == "revnet50") return std::make_unique<any_backbone_model<T, revnet50<T>>>(revnet50<T>(r));
    if (o.arch == "convnet" || o.arch == "convnet-ln" || o.arch.starts_with("vgg"))
        require(o.num_classes == 0, "any_backbone: ", o.arch, " has no classifier (num_classes must be 0, got ",
                o.num_classes, ")");
    if (o.arch == "convnet")
        return std::make_unique<any_backbone_model<T, convnet<T>>>(
            convnet<T>({.in_channels = o.in_channels, .width = o.width, .seed = o.seed}));
    if (o.arch == "convnet-ln")
        return std::make_unique<any_backbone_model<T, convnet_ln<T>>>(
            convnet_ln<T>({.in_channels = o.in_channels, .width = o.width, .seed = o.seed}));
    const vgg_options v{.in_channels = o.in_channels, .width = o.width, .stem = o.stem, .seed = o.seed};
    if (o.arch == "vgg11") return std::make_unique<any_backbone_model<T, vgg11<T>>>(vgg11<T>(v));
    if (o.arch == "vgg13") return std::make_unique<any_backbone_model<T, vgg13<T>>>(vgg13<T>(v));
    if (o.arch == "vgg16") return std::make_unique<any_backbone_model<T, vgg16<T>>>(vgg16<T>(v));
    if (o.arch == "vgg19") return std::make_unique<any_backbone_model<T, vgg19<T>>>(vgg19<T>(v));
    std::string names;
    for (const auto& a : any_backbone_archs()) names += (names.empty() ? "" : ", ") + a;
    throw value_error("any_backbone: unknown architecture '" + o.arch + "' (" + names + ")");
}

}  // namespace detail

template <class T = float>
class any_backbone {
public:
    using value_type = T;
    using options_type = any_backbone_options;
    /// The held backbone's cache, type-erased.
    struct cache_type {
        std::shared_ptr<void> held;
    };
    /// The held backbone's tap cache (from forward_taps), type-erased.
    struct tap_cache_type {
        std::shared_ptr<void> held;
    };

    /// Empty until assigned; every call but assignment throws.
    any_backbone() = default;
    explicit any_backbone(const any_backbone_options& o) : opt_(o), impl_(detail::make_any_backbone_impl<T>(o)) {}
    any_backbone(const any_backbone& o) : opt_(o.opt_), impl_(o.impl_ ? o.impl_->clone() : nullptr) {}
    any_backbone& operator=(const any_backbone& o) {
        if (this != &o) {
            opt_ = o.opt_;
            impl_ = o.impl_ ? o.impl_->clone() : nullptr;
        }
        return *this;
    }
    any_backbone(any_backbone&&) noexcept = default;
    any_backbone& operator=(any_backbone&&) noexcept = default;

    const any_backbone_options& options() const noexcept { return opt_; }
    const std::string& arch() const noexcept { return opt_.arch; }
    std::size_t output_dim() const { return impl().output_dim(); }
    std::size_t feature_dim() const { return impl().feature_dim(); }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        auto r = impl().forward(x);
        return {std::move(r.out), cache_type{std::move(r.cache)}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        return impl().backward(c.held, dy, need_input_grad);
    }

    /// The held backbone's taps (backbone/taps.hpp), names and all.
    std::vector<std::string> tap_names() const { return impl().tap_names(); }
    tap_result<T, tap_cache_type> forward_taps(const tensor<T>& x, const std::vector<std::string>& names) {
        auto r = impl().forward_taps(x, names);
        return {std::move(r.out), tap_cache_type{std::move(r.cache)}, std::move(r.taps)};
    }
    tensor<T> backward_taps(const tap_cache_type& c, const tensor<T>& d_out, const std::vector<tensor<T>>& d_taps,
                            bool need_input_grad = true) {
        return impl().backward_taps(c.held, d_out, d_taps, need_input_grad);
    }

    /// f(name, parameter<T>&) for every parameter, in the held backbone's order.
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        impl().for_each_parameter([&](const std::string& n, parameter<T>& p) { f(n, p); }, prefix);
    }
    /// f(name, tensor<T>&) for running statistics and f(name, tensor<int64>&)
    /// for batch counters, as the held backbone visits them.
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix) {
        impl().for_each_buffer({[&](const std::string& n, tensor<T>& t) { f(n, t); },
                                [&](const std::string& n, tensor<std::int64_t>& t) { f(n, t); }},
                               prefix);
    }
    void train(bool on) { impl().train(on); }
    bool training() const { return impl().training(); }

    /// The held backbone if it is a B (e.g. ssl::resnet50<float>), else null.
    template <class B>
    B* as() noexcept {
        return impl_ ? static_cast<B*>(impl_->target(typeid(B))) : nullptr;
    }

private:
    detail::any_backbone_impl<T>& impl() const {
        require(impl_ != nullptr, "any_backbone: used before a backbone was built (default-constructed)");
        return *impl_;
    }

    any_backbone_options opt_{};
    std::unique_ptr<detail::any_backbone_impl<T>> impl_;
};

}  // namespace ssl

/// In a header every translation unit of a program sees: do not compile the
/// backbones here (SSL_INSTANTIATE_ANY_BACKBONE does, in one file).
#define SSL_EXTERN_ANY_BACKBONE(T)                                                              \
    extern template std::unique_ptr<::ssl::detail::any_backbone_impl<T>>                        \
    ssl::detail::make_any_backbone_impl<T>(const ::ssl::any_backbone_options&)
/// In exactly one .cpp file of that program.
#define SSL_INSTANTIATE_ANY_BACKBONE(T)                                                  \
    template std::unique_ptr<::ssl::detail::any_backbone_impl<T>>                         \
    ssl::detail::make_any_backbone_impl<T>(const ::ssl::any_backbone_options&)
