#pragma once
// Compile-time sequential composition: sequential<conv2d<>, batch_norm2d<>,
// relu<>> runs its layers in order; its cache is the tuple of their caches;
// parameters are named by position ("0.weight", "1.running_mean", ...), as
// torch.nn.Sequential names them.
#include <string>
#include <tuple>
#include <utility>

#include "../core/concepts.hpp"
#include "parameter.hpp"

namespace ssl::nn {

template <class... Layers>
class sequential {
    static_assert(sizeof...(Layers) > 0, "sequential<...> needs at least one layer");
    static_assert((ssl::layer<Layers> && ...),
                  "every type in sequential<...> must model ssl::layer: value_type, cache_type, "
                  "forward(x) -> {out, cache}, backward(cache, dy) -> dx, for_each_parameter, train");

public:
    using value_type = typename std::tuple_element_t<0, std::tuple<Layers...>>::value_type;
    static_assert((std::is_same_v<typename Layers::value_type, value_type> && ...),
                  "all layers of a sequential<...> must use the same scalar type");
    using cache_type = std::tuple<typename Layers::cache_type...>;
    static constexpr std::size_t size = sizeof...(Layers);

    sequential() = default;
    explicit sequential(Layers... ls) : layers_(std::move(ls)...) {}

    template <std::size_t I>
    auto& get() noexcept {
        return std::get<I>(layers_);
    }
    template <std::size_t I>
    const auto& get() const noexcept {
        return std::get<I>(layers_);
    }

    forward_result<value_type, cache_type> forward(const tensor<value_type>& x) {
        cache_type c;
        tensor<value_type> y = forward_from<0>(x, c);
        return {std::move(y), std::move(c)};
    }

    tensor<value_type> backward(const cache_type& c, const tensor<value_type>& dy) {
        return backward_from<size - 1>(c, dy);
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        each([&](auto& l, std::size_t i) { l.for_each_parameter(f, join_name(prefix, std::to_string(i))); });
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& prefix) {
        each([&](auto& l, std::size_t i) { l.for_each_buffer(f, join_name(prefix, std::to_string(i))); });
    }
    void train(bool on) {
        training_ = on;
        each([&](auto& l, std::size_t) { l.train(on); });
    }
    bool training() const noexcept { return training_; }

private:
    template <std::size_t I>
    tensor<value_type> forward_from(const tensor<value_type>& x, cache_type& c) {
        auto r = std::get<I>(layers_).forward(x);
        std::get<I>(c) = std::move(r.cache);
        if constexpr (I + 1 < size)
            return forward_from<I + 1>(r.out, c);
        else
            return std::move(r.out);
    }
    template <std::size_t I>
    tensor<value_type> backward_from(const cache_type& c, const tensor<value_type>& dy) {
        tensor<value_type> dx = std::get<I>(layers_).backward(std::get<I>(c), dy);
        if constexpr (I > 0)
            return backward_from<I - 1>(c, dx);
        else
            return dx;
    }
    template <class F>
    void each(F&& f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) { (f(std::get<I>(layers_), I), ...); }
        (std::index_sequence_for<Layers...>{});
    }

    std::tuple<Layers...> layers_;
    bool training_ = true;
};

}  // namespace ssl::nn
