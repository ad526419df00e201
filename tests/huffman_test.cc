// Tests for proto/huffman (RFC 7541 §5.2, Appendix B).
#include "proto/huffman.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/hpack_hex.h"

namespace huffman = h2lab::proto::huffman;
using huffman::Status;

namespace {

using h2lab::test::from_hex;
using h2lab::test::to_hex;

std::string encode(std::string_view s) {
  std::vector<uint8_t> out(huffman::encoded_length(s));
  const auto n = huffman::encode(s, out);
  REQUIRE(n);
  REQUIRE(*n == out.size());
  return to_hex(out);
}

huffman::DecodeResult decode(std::span<const uint8_t> in, std::string& out) {
  out.assign(huffman::max_decoded_length(in.size()), '\0');
  const huffman::DecodeResult r = huffman::decode(in, out);
  out.resize(r.length);
  return r;
}

// Encodes `s`, checks the length contract, decodes it back.
std::string round_trip(const std::string& s) {
  std::vector<uint8_t> wire(huffman::encoded_length(s));
  REQUIRE(huffman::encode(s, wire) == wire.size());
  std::string out;
  REQUIRE(decode(wire, out).status == Status::Ok);
  REQUIRE(huffman::decoded_length(wire).length == s.size());
  return out;
}

// Every Huffman-coded string of RFC 7541 Appendix C.4 and C.6.
struct Vector {
  const char* plain;
  const char* hex;
};
const Vector kRfcStrings[] = {
    {"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"},                  // C.4.1
    {"no-cache", "a8eb10649cbf"},                                      // C.4.2
    {"custom-key", "25a849e95ba97d7f"},                                // C.4.3
    {"custom-value", "25a849e95bb8e8b4bf"},                            // C.4.3
    {"302", "6402"},                                                   // C.6.1
    {"private", "aec3771a4b"},                                         // C.6.1
    {"Mon, 21 Oct 2013 20:13:21 GMT",
     "d07abe941054d444a8200595040b8166e082a62d1bff"},                  // C.6.1
    {"https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"}, // C.6.1
    {"307", "640eff"},                                                 // C.6.2
    {"Mon, 21 Oct 2013 20:13:22 GMT",
     "d07abe941054d444a8200595040b8166e084a62d1bff"},                  // C.6.3
    {"gzip", "9bd9ab"},                                                // C.6.3
    {"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
     "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065"
     "c003ed4ee5b1063d5007"},                                          // C.6.3
    {"", ""},
};

}  // namespace

TEST_CASE("huffman: RFC 7541 Appendix C strings encode and decode exactly") {
  for (const Vector& v : kRfcStrings) {
    CAPTURE(v.plain);
    CHECK(encode(v.plain) == v.hex);
    CHECK(huffman::encoded_length(v.plain) == std::string_view(v.hex).size() / 2);
    const std::vector<uint8_t> wire = from_hex(v.hex);
    std::string out;
    const huffman::DecodeResult r = decode(wire, out);
    CHECK(r.status == Status::Ok);
    CHECK(out == v.plain);
    const huffman::DecodeResult len = huffman::decoded_length(wire);
    CHECK(len.status == Status::Ok);
    CHECK(len.length == out.size());
  }
}

TEST_CASE("huffman: every octet value round-trips") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);

  SECTION("each octet alone") {
    for (int c = 0; c < 256; ++c) {
      const std::string s(1, static_cast<char>(c));
      CAPTURE(c);
      CHECK(round_trip(s) == s);
    }
  }
  SECTION("all 256 in one string, forwards, backwards and repeated") {
    std::string backwards(all.rbegin(), all.rend());
    for (const std::string& s : {all, backwards, all + all + all}) {
      CHECK(round_trip(s) == s);
    }
  }
  SECTION("pseudo-random strings of every length up to 300") {
    uint32_t x = 12345;
    for (std::size_t len = 0; len <= 300; ++len) {
      std::string s;
      for (std::size_t i = 0; i < len; ++i) {
        x = x * 1103515245 + 12345;
        s += static_cast<char>(x >> 16);
      }
      REQUIRE(round_trip(s) == s);
    }
  }
}

TEST_CASE("huffman: malformed encodings are rejected (§5.2)") {
  struct Row {
    const char* name;
    const char* hex;
    Status status;
  };
  const Row rows[] = {
      // EOS is thirty 1 bits.
      {"EOS alone", "ffffffff", Status::EosInString},
      {"'a' then EOS", "1fffffffff", Status::EosInString},
      {"EOS then 'a'", "fffffffc63", Status::EosInString},
      {"eight 1 bits of padding", "ff", Status::PaddingTooLong},
      {"'a' + 3 padding bits + a full octet of ones", "1fff", Status::PaddingTooLong},
      {"'0' then padding 000", "00", Status::PaddingNotEos},
      {"'a' then padding 110", "1e", Status::PaddingNotEos},
      {"truncated 8-bit code", "fe", Status::PaddingNotEos},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    const std::vector<uint8_t> wire = from_hex(row.hex);
    std::string out;
    CHECK(decode(wire, out).status == row.status);
    CHECK(huffman::decoded_length(wire).status == row.status);
    CHECK(std::string(huffman::describe(row.status)).size() > 0);
  }
}

TEST_CASE("huffman: padding of up to 7 ones is accepted") {
  // '0' is 00000: "0" plus three 1 bits, "00000000" x 5 = eight '0's.
  std::string out;
  CHECK(decode(from_hex("07"), out).status == Status::Ok);
  CHECK(out == "0");
  CHECK(decode(from_hex("0000000000"), out).status == Status::Ok);
  CHECK(out == "00000000");
  CHECK(huffman::max_decoded_length(5) == 8);
  CHECK(decode({}, out).status == Status::Ok);
  CHECK(out.empty());
}

TEST_CASE("huffman: output bounds") {
  const std::vector<uint8_t> wire = from_hex("f1e3c2e5f23a6ba0ab90f4ff");
  char small[5];
  const huffman::DecodeResult r = huffman::decode(wire, small);
  CHECK(r.status == Status::OutputTooSmall);
  CHECK(r.length == 5);
  CHECK(std::string_view(small, 5) == "www.e");

  uint8_t out[4];
  CHECK_FALSE(huffman::encode("www.example.com", out).has_value());
  for (std::size_t n = 0; n < 2000; n += 7) {
    CHECK(huffman::max_decoded_length(n) == n * 8 / 5);
  }
}

TEST_CASE("huffman: arbitrary input never overruns and both passes agree") {
  uint32_t x = 99;
  std::vector<uint8_t> in;
  std::string out;
  for (int round = 0; round < 2000; ++round) {
    in.resize(round % 40);
    for (uint8_t& b : in) {
      x = x * 1664525 + 1013904223;
      // Bias towards ones so that long codes and EOS come up.
      b = static_cast<uint8_t>((x >> 24) | ((round & 1) ? 0xe0 : 0));
    }
    const huffman::DecodeResult a = decode(in, out);
    const huffman::DecodeResult b = huffman::decoded_length(in);
    REQUIRE(a.status == b.status);
    REQUIRE(a.length == b.length);
    REQUIRE(a.length <= huffman::max_decoded_length(in.size()));
    if (a.status == Status::Ok) {
      // Re-encoding a valid string gives back the input (the code is
      // prefix-free and the padding rule makes the encoding unique).
      std::vector<uint8_t> again(huffman::encoded_length(out));
      REQUIRE(huffman::encode(out, again) == again.size());
      REQUIRE(again == in);
    }
  }
}

TEST_CASE("huffman: every output size short of the string stops exactly there") {
  // The decoder writes two symbols per input octet without a branch when
  // there is room for both and goes one at a time near the end: each
  // capacity must give the same prefix, the same length and no octet
  // written past it.
  uint32_t x = 7;
  for (int round = 0; round < 300; ++round) {
    std::string plain(1 + round % 60, '\0');
    for (char& c : plain) {
      x = x * 1664525 + 1013904223;
      // Mostly short codes (two symbols can end in one octet), some long.
      c = static_cast<char>((round % 3) ? "aeiost012/=?"[(x >> 24) % 12] : (x >> 24));
    }
    std::vector<uint8_t> wire(huffman::encoded_length(plain));
    REQUIRE(huffman::encode(plain, wire) == wire.size());
    for (std::size_t cap = 0; cap <= plain.size(); ++cap) {
      std::string out(cap + 4, '#');
      const huffman::DecodeResult r = huffman::decode(wire, std::span<char>(out.data(), cap));
      if (cap < plain.size()) {
        REQUIRE(r.status == Status::OutputTooSmall);
      } else {
        REQUIRE(r.status == Status::Ok);
      }
      REQUIRE(r.length == cap);
      REQUIRE(out.substr(0, cap) == plain.substr(0, cap));
      REQUIRE(out.substr(cap) == "####");
    }
  }
}
