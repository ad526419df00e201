// proto/short_string.h: the value survives assignment, copying and
// re-assignment across the inline bound, and a copy owns its octets.
#include <catch2/catch.hpp>

#include <string>

#include "proto/short_string.h"

using h2lab::proto::ShortString;

TEST_CASE("short string: values at, below and past the inline bound") {
  ShortString<8> s;
  CHECK(s.empty());
  CHECK(s.view().empty());
  for (const size_t n : {0, 1, 7, 8, 9, 100, 8, 3, 200, 0}) {
    INFO(n << " octets");
    std::string value(n, 'x');
    for (size_t i = 0; i < n; ++i) value[i] = static_cast<char>('a' + i % 26);
    s.assign(value);
    CHECK(s.size() == n);
    CHECK(s.view() == value);
    CHECK(s == value);
    ShortString<8> copy(s);
    ShortString<8> assigned;
    assigned.assign("previous value, longer than the bound");
    assigned = s;
    s.assign("other");  // the copies do not share s's octets
    CHECK(copy.view() == value);
    CHECK(assigned.view() == value);
    CHECK(s.view() == "other");
    const ShortString<8>& alias = assigned;
    assigned = alias;  // self-assignment keeps the value
    CHECK(assigned.view() == value);
  }
}
