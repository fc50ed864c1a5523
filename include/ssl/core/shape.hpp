#pragma once
// A small fixed-capacity shape (rank <= 6), so tensors never heap-allocate
// their metadata.
#include <array>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "error.hpp"

namespace ssl {

class shape_t {
public:
    static constexpr std::size_t max_rank = 6;

    constexpr shape_t() = default;
    shape_t(std::initializer_list<std::size_t> dims) {
        require<shape_error>(dims.size() <= max_rank, "tensor rank ", dims.size(), " exceeds the maximum of ", max_rank);
        for (auto d : dims) d_[rank_++] = d;
    }
    template <class It>
    shape_t(It first, It last) {
        for (; first != last; ++first) {
            require<shape_error>(rank_ < max_rank, "tensor rank exceeds the maximum of ", max_rank);
            d_[rank_++] = static_cast<std::size_t>(*first);
        }
    }

    std::size_t rank() const noexcept { return rank_; }
    std::size_t size() const noexcept { return rank_; }
    std::size_t operator[](std::size_t i) const noexcept { return d_[i]; }
    std::size_t& operator[](std::size_t i) noexcept { return d_[i]; }
    const std::size_t* begin() const noexcept { return d_.data(); }
    const std::size_t* end() const noexcept { return d_.data() + rank_; }

    std::size_t numel() const noexcept {
        std::size_t n = 1;
        for (std::size_t i = 0; i < rank_; ++i) n *= d_[i];
        return n;
    }

    void push_back(std::size_t d) {
        require<shape_error>(rank_ < max_rank, "tensor rank exceeds the maximum of ", max_rank);
        d_[rank_++] = d;
    }

    friend bool operator==(const shape_t& a, const shape_t& b) noexcept {
        if (a.rank_ != b.rank_) return false;
        for (std::size_t i = 0; i < a.rank_; ++i)
            if (a.d_[i] != b.d_[i]) return false;
        return true;
    }

    std::string str() const {
        std::ostringstream os;
        os << '(';
        for (std::size_t i = 0; i < rank_; ++i) os << (i ? ", " : "") << d_[i];
        if (rank_ == 1) os << ',';
        os << ')';
        return os.str();
    }
    friend std::ostream& operator<<(std::ostream& os, const shape_t& s) { return os << s.str(); }

private:
    std::array<std::size_t, max_rank> d_{};
    std::size_t rank_ = 0;
};

}  // namespace ssl
