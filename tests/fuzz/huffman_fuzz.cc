// huffman_fuzz: the HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//
// Input: any octets. They are decoded as Huffman data (into a buffer of
// max_decoded_length, one of the exact decoded length, one an octet short,
// and by decoded_length), and, as a string, encoded then decoded again.
//
// Invariants (abort on violation):
//   - decode() and decoded_length() agree on the status and the length;
//     the length never exceeds max_decoded_length(n);
//   - decoding into a buffer of the decoded length minus one gives
//     OutputTooSmall (for a non-empty Ok result) after writing the same
//     prefix; and decoded output re-encodes to the same octets when the
//     input was canonical (padding 0-7 one bits, which Ok guarantees);
//   - encode(s) writes encoded_length(s) octets, fails into one octet less,
//     and decode(encode(s)) == s for every string s.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "proto/huffman.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace h2lab::proto;

void decode_arbitrary(std::span<const uint8_t> in) {
  const huffman::DecodeResult counted = huffman::decoded_length(in);
  FUZZ_CHECK(counted.status != huffman::Status::OutputTooSmall);
  FUZZ_CHECK(counted.length <= huffman::max_decoded_length(in.size()));
  const size_t cap = huffman::max_decoded_length(in.size());
  auto out = std::make_unique<char[]>(cap + 1);
  const huffman::DecodeResult full = huffman::decode(in, std::span<char>(out.get(), cap));
  FUZZ_CHECK(full.status == counted.status);
  FUZZ_CHECK(full.length == counted.length);
  FUZZ_CHECK(*huffman::describe(full.status) != '\0');
  if (full.status != huffman::Status::Ok) return;

  // Exactly the decoded length: Ok; one short: OutputTooSmall, same prefix.
  auto exact = std::make_unique<char[]>(full.length + 1);
  const huffman::DecodeResult fit = huffman::decode(in, std::span<char>(exact.get(), full.length));
  FUZZ_CHECK(fit.status == huffman::Status::Ok && fit.length == full.length);
  FUZZ_CHECK(std::memcmp(exact.get(), out.get(), full.length) == 0);
  if (full.length != 0) {
    const huffman::DecodeResult short_by_one =
        huffman::decode(in, std::span<char>(exact.get(), full.length - 1));
    FUZZ_CHECK(short_by_one.status == huffman::Status::OutputTooSmall);
    FUZZ_CHECK(short_by_one.length <= full.length - 1);
  }
  // A valid Huffman string is canonical: encoding its decoding gives it back.
  const std::string_view decoded(out.get(), full.length);
  FUZZ_CHECK(huffman::encoded_length(decoded) == in.size());
  auto again = std::make_unique<uint8_t[]>(in.size() + 1);
  const auto n = huffman::encode(decoded, std::span<uint8_t>(again.get(), in.size()));
  FUZZ_CHECK(n && *n == in.size());
  FUZZ_CHECK(in.empty() || std::memcmp(again.get(), in.data(), in.size()) == 0);
}

void round_trip(std::string_view s) {
  const size_t len = huffman::encoded_length(s);
  FUZZ_CHECK(len >= (s.size() * 5 + 7) / 8);  // the shortest code is 5 bits
  auto enc = std::make_unique<uint8_t[]>(len + 1);
  if (len != 0) FUZZ_CHECK(!huffman::encode(s, std::span<uint8_t>(enc.get(), len - 1)));
  const auto n = huffman::encode(s, std::span<uint8_t>(enc.get(), len));
  FUZZ_CHECK(n && *n == len);
  const std::span<const uint8_t> encoded(enc.get(), len);
  auto dec = std::make_unique<char[]>(s.size() + 1);
  const huffman::DecodeResult r = huffman::decode(encoded, std::span<char>(dec.get(), s.size()));
  FUZZ_CHECK(r.status == huffman::Status::Ok);
  FUZZ_CHECK(r.length == s.size());
  FUZZ_CHECK(std::string_view(dec.get(), r.length) == s);
  FUZZ_CHECK(huffman::decoded_length(encoded).length == s.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exact-size copies so that ASan sees reads past the end.
  auto copy = std::make_unique<uint8_t[]>(size + 1);
  if (size != 0) std::memcpy(copy.get(), data, size);
  const std::span<const uint8_t> in(copy.get(), size);
  decode_arbitrary(in);
  round_trip(std::string_view(reinterpret_cast<const char*>(copy.get()), size));
  return 0;
}
