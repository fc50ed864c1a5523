#pragma once
// Zero-copy views of host tensors: xtensor adaptors for users (images in,
// embeddings out) and Eigen maps for linear algebra.
#include <Eigen/Core>
#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include "tensor.hpp"

namespace ssl {

template <class T>
using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using matrix_map = Eigen::Map<matrix<T>>;  // unaligned: slices move the base pointer
template <class T>
using const_matrix_map = Eigen::Map<const matrix<T>, Eigen::Unaligned>;
template <class T>
using vector_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using const_vector_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

/// The tensor as a rows x cols row-major Eigen matrix (rows * cols == numel).
template <class T>
Eigen::Map<matrix<T>> as_matrix(tensor<T>& t, std::size_t rows, std::size_t cols) {
    require<shape_error>(rows * cols == t.numel(), "as_matrix: ", rows, "x", cols, " does not cover a tensor of shape ",
                         t.shape().str());
    return {t.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols)};
}
template <class T>
Eigen::Map<const matrix<T>> as_matrix(const tensor<T>& t, std::size_t rows, std::size_t cols) {
    require<shape_error>(rows * cols == t.numel(), "as_matrix: ", rows, "x", cols, " does not cover a tensor of shape ",
                         t.shape().str());
    return {t.data(), static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols)};
}
/// A rank-2 tensor as an Eigen matrix; dimension 0 -> rows.
template <class T>
Eigen::Map<matrix<T>> as_matrix(tensor<T>& t) {
    check_rank(t, 2, "as_matrix", "(rows, cols)");
    return as_matrix(t, t.dim(0), t.dim(1));
}
template <class T>
Eigen::Map<const matrix<T>> as_matrix(const tensor<T>& t) {
    check_rank(t, 2, "as_matrix", "(rows, cols)");
    return as_matrix(t, t.dim(0), t.dim(1));
}
/// All elements as an Eigen column vector.
template <class T>
vector_map<T> as_vector(tensor<T>& t) {
    return {t.data(), static_cast<Eigen::Index>(t.numel())};
}
template <class T>
const_vector_map<T> as_vector(const tensor<T>& t) {
    return {t.data(), static_cast<Eigen::Index>(t.numel())};
}

/// A zero-copy xtensor view of rank N. The view aliases the tensor's memory;
/// keep the tensor alive while using it.
template <std::size_t N, class T>
auto as_xtensor(tensor<T>& t) {
    require<shape_error>(t.rank() == N, "as_xtensor<", N, ">: tensor has shape ", t.shape().str());
    std::array<std::size_t, N> sh{};
    for (std::size_t i = 0; i < N; ++i) sh[i] = t.dim(i);
    return xt::adapt(t.data(), t.numel(), xt::no_ownership(), sh);
}
template <std::size_t N, class T>
auto as_xtensor(const tensor<T>& t) {
    require<shape_error>(t.rank() == N, "as_xtensor<", N, ">: tensor has shape ", t.shape().str());
    std::array<std::size_t, N> sh{};
    for (std::size_t i = 0; i < N; ++i) sh[i] = t.dim(i);
    return xt::adapt(t.data(), t.numel(), xt::no_ownership(), sh);
}

/// Copies an xtensor expression (any layout) into a new ssl tensor.
template <class T, class E>
tensor<T> from_xtensor(const xt::xexpression<E>& e) {
    const auto& x = e.derived_cast();
    shape_t s(x.shape().begin(), x.shape().end());
    tensor<T> t(s);
    std::size_t i = 0;
    for (auto it = x.template begin<xt::layout_type::row_major>(); it != x.template end<xt::layout_type::row_major>();
         ++it)
        t[i++] = static_cast<T>(*it);
    return t;
}

/// Copies a tensor into an owning xt::xtensor<T, N>.
template <std::size_t N, class T>
xt::xtensor<T, N> to_xtensor(const tensor<T>& t) {
    return xt::xtensor<T, N>(as_xtensor<N>(t));
}

}  // namespace ssl
