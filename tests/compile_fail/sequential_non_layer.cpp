// Must not compile: sequential<...> of something that is not a layer.
#include <ssl/nn/conv2d.hpp>
#include <ssl/nn/sequential.hpp>
struct not_a_layer {
    using value_type = float;
};
int main() { ssl::nn::sequential<ssl::nn::conv2d<float>, not_a_layer> s; }
