// Checked parsing of numbers held as text (core/parse.hpp): the error names
// the field and the text.
#include <doctest/doctest.h>

#include <ssl/core/parse.hpp>

namespace test_parse {  // each file in its own namespace: an area builds as one unity translation unit

TEST_CASE("parse_unsigned: digits only, within the bound, else an error naming the field") {
    CHECK(ssl::parse_unsigned("0", "w") == 0);
    CHECK(ssl::parse_unsigned("18446744073709551615", "w") == 18446744073709551615ull);
    CHECK(ssl::parse_unsigned("1024", "w", 1024) == 1024);
    CHECK_THROWS_WITH_AS(ssl::parse_unsigned("-16", "metadata 'width'"),
                         "metadata 'width': '-16' is not a non-negative integer", ssl::io_error);
    CHECK_THROWS_WITH_AS(ssl::parse_unsigned("", "w"), "w: '' is not a non-negative integer", ssl::io_error);
    CHECK_THROWS_WITH_AS(ssl::parse_unsigned("12x", "w"), "w: '12x' is not a non-negative integer", ssl::io_error);
    CHECK_THROWS_WITH_AS(ssl::parse_unsigned(" 1", "w"), "w: ' 1' is not a non-negative integer", ssl::io_error);
    CHECK_THROWS_WITH_AS(ssl::parse_unsigned("1025", "w", 1024), "w: 1025 is out of range (at most 1024)",
                         ssl::io_error);
    CHECK_THROWS_WITH_AS(ssl::parse_unsigned("99999999999999999999", "w"),
                         "w: 99999999999999999999 is out of range (at most 18446744073709551615)", ssl::io_error);
}

}  // namespace test_parse
