#pragma once
// Checked parsing of numbers held as text (checkpoint metadata entries): an
// error names the field and the text, where std::stoul said "stoul", took
// "-16" for 2^64 - 16 (and then failed to allocate a model that wide) and
// ignored trailing junk.
//
//   parse_unsigned(text, what[, max])   all of text decimal digits, <= max
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include "error.hpp"

namespace ssl {

/// `text` as an unsigned integer no larger than `max`; otherwise an io_error
/// naming `what`: "WHAT: '-16' is not a non-negative integer", "WHAT: 99999
/// is out of range (at most 1024)".
inline std::uint64_t parse_unsigned(std::string_view text, const std::string& what,
                                    std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
    std::uint64_t v = 0;
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (text.empty() || ec == std::errc::invalid_argument || p != end)
        throw io_error(detail::cat(what, ": '", std::string(text), "' is not a non-negative integer"));
    if (ec == std::errc::result_out_of_range || v > max)
        throw io_error(detail::cat(what, ": ", std::string(text), " is out of range (at most ", max, ")"));
    return v;
}

}  // namespace ssl
