#pragma once
// Error hierarchy of ssl. Every public entry point throws one of these with a
// message that names what was wrong (shapes, file, call).
//
//   ssl::error
//     ├── ssl::shape_error     tensor shapes that do not fit together
//     ├── ssl::value_error     a bad argument value (negative size, lr < 0, ...)
//     ├── ssl::io_error        files: missing, truncated, corrupt, mismatched
//     └── ssl::cuda_error      (CUDA backend) -> cublas_error, cudnn_error
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ssl {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
class shape_error : public error {
public:
    using error::error;
};
class value_error : public error {
public:
    using error::error;
};
class io_error : public error {
public:
    using error::error;
};
class cuda_error : public error {
public:
    using error::error;
};
class cublas_error : public cuda_error {
public:
    using cuda_error::cuda_error;
};
class cudnn_error : public cuda_error {
public:
    using cuda_error::cuda_error;
};

namespace detail {
template <class... Args>
std::string cat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}
}  // namespace detail

/// Throws E with the concatenation of args when cond is false.
template <class E = value_error, class... Args>
inline void require(bool cond, Args&&... args) {
    if (!cond) throw E(detail::cat(std::forward<Args>(args)...));
}

/// Used in `static_assert(dependent_false<T>, "...")` inside templates.
template <class...>
inline constexpr bool dependent_false = false;

}  // namespace ssl
