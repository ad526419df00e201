// What a response body must be, octet for octet, computed by the test and
// never taken from the server (proto's pattern_bytes() or another server's
// answer would agree with a wrong body): issue 11 found /bytes/N restarting
// its pattern at every DATA frame while every length check passed.
#pragma once

#include <cstddef>
#include <random>
#include <sstream>
#include <string>
#include <string_view>

namespace h2lab::testing {

// The body of GET /bytes/N (README, Routes): octet i is kBytesPattern[i % 37].
inline constexpr std::string_view kBytesPattern = "abcdefghijklmnopqrstuvwxyz0123456789\n";

inline std::string expected_bytes(size_t n, size_t offset = 0) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = kBytesPattern[(offset + i) % kBytesPattern.size()];
  return out;
}

// `n` random octets from a fixed seed: an /echo body whose every octet
// differs from its neighbours' in a way no frame split can hide.
inline std::string random_body(size_t n, unsigned seed) {
  std::string out(n, '\0');
  std::mt19937 rng(seed);
  for (char& ch : out) ch = static_cast<char>(rng());
  return out;
}

// "" when `got` == `want`; otherwise where they first differ, in a line a
// failure can print (a megabyte body is never expanded by CHECK).
inline std::string content_mismatch(std::string_view got, std::string_view want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  if (i == got.size() && i == want.size()) return "";
  std::ostringstream out;
  out << "got " << got.size() << " octets, want " << want.size() << "; first difference at octet "
      << i;
  auto hex = [&](std::string_view s) {
    std::ostringstream h;
    for (size_t k = i; k < s.size() && k < i + 8; ++k) {
      static const char* digits = "0123456789abcdef";
      const auto c = static_cast<unsigned char>(s[k]);
      h << digits[c >> 4] << digits[c & 15];
    }
    return h.str().empty() ? std::string("(end)") : h.str();
  };
  out << ": got " << hex(got) << ", want " << hex(want);
  return out.str();
}

}  // namespace h2lab::testing
