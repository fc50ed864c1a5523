// The explicit instantiations behind SSL_EXTERN_TEMPLATES (cmake/ssl_instances.cmake):
// the layers whose kernels dominate compile time, for float, compiled once for all of
// ssl's own tests and programs.
#include <ssl/nn/batch_norm.hpp>
#include <ssl/nn/conv2d.hpp>

template class ssl::nn::conv2d<float>;
template class ssl::nn::detail::batch_norm_impl<float, 4>;
template class ssl::nn::detail::batch_norm_impl<float, 2>;
