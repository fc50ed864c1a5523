#pragma once
// InstDisc's head (Wu et al. 2018, sec. 3.1 and the authors' code,
// lemniscate.pytorch): the backbone's pooled features go through one linear
// layer to a low-dimensional embedding (128-d), which is L2-normalized,
//     v = normalize(W x + b),  ||v|| = 1,
// so that v . v' is a cosine similarity and the memory bank holds unit
// vectors. The linear layer has a bias (nn.Linear's default, as the
// authors' `fc`). Parameters: "0.weight" (out, in), "0.bias" (out,).
// Built as Head(config, in_features, seed); the part an EMA target would
// copy is the whole head.
#include <string>

#include "../nn/l2_normalize.hpp"
#include "../nn/linear.hpp"
#include "../nn/sequential.hpp"

namespace ssl::head {

struct embedding_config {
    std::size_t out = 128;  ///< embedding width (the paper: 128)
};

template <class T = float>
class embedding {
    using stack = nn::sequential<nn::linear<T>, nn::l2_normalize<T>>;

public:
    using value_type = T;
    using config_type = embedding_config;
    using cache_type = typename stack::cache_type;
    using target_type = embedding;

    embedding() = default;
    embedding(const embedding_config& c, std::size_t in_features, std::uint64_t seed = 0) : cfg_(c) {
        require(in_features > 0 && c.out > 0, "head::embedding: sizes must be positive, got in=", in_features,
                " out=", c.out);
        net_ = stack(nn::linear<T>({in_features, c.out, true}, seed), nn::l2_normalize<T>{});
    }
    const embedding_config& config() const noexcept { return cfg_; }
    std::size_t out_features() const noexcept { return cfg_.out; }

    /// x (N, in) -> unit rows (N, out).
    forward_result<T, cache_type> forward(const tensor<T>& x) { return net_.forward(x); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) { return net_.backward(c, dy); }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        net_.for_each_parameter(f, p);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        net_.for_each_buffer(f, p);
    }
    void train(bool on) { net_.train(on); }
    bool training() const noexcept { return net_.training(); }
    embedding& target_part() noexcept { return *this; }
    nn::linear<T>& fc() noexcept { return net_.template get<0>(); }

private:
    embedding_config cfg_{};
    stack net_;
};

}  // namespace ssl::head
