// HPACK static Huffman code (RFC 7541 §5.2, Appendix B).
//
// Pure functions over caller-owned buffers: no allocation, no exceptions, no
// state. The decoder is table-driven: a 256-state x 16-entry automaton that
// consumes the input four bits at a time, an octet per turn (the states are
// the 256 internal nodes of the code tree). The automaton is computed at
// compile time from the 257 rows of Appendix B in huffman.cc, so there is no
// generated file to keep in sync with the RFC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace h2lab::proto::huffman {

// Outcome of a decode. Every value but Ok and OutputTooSmall is a malformed
// encoding, which HPACK treats as a COMPRESSION_ERROR (RFC 7541 §5.2).
enum class Status : uint8_t {
  Ok,
  EosInString,     // §5.2: "a Huffman-encoded string literal containing the
                   // EOS symbol MUST be treated as a decoding error"
  PaddingTooLong,  // §5.2: padding strictly longer than 7 bits
  PaddingNotEos,   // §5.2: padding not the most significant bits of EOS
                   // (i.e. not all ones)
  OutputTooSmall,  // the decoded string does not fit the output span; the
                   // rest of the input was NOT validated
};

// Static, NUL-terminated description of `s`, e.g. for GOAWAY debug data.
const char* describe(Status s) noexcept;

struct DecodeResult {
  Status status;
  // Ok: octets written to `out` (decode) or the decoded length
  // (decoded_length). Otherwise: octets produced before the failure.
  std::size_t length;
};

// Upper bound of the decoded length of `encoded_len` octets: the shortest
// code is 5 bits, so at most floor(8 * n / 5) symbols.
constexpr std::size_t max_decoded_length(std::size_t encoded_len) noexcept {
  return encoded_len / 5 * 8 + (encoded_len % 5) * 8 / 5;
}

// Decodes `in` into `out`. Returns Ok and the number of octets written, or
// the first error. `out` may be smaller than max_decoded_length(in.size());
// if the output does not fit, returns OutputTooSmall (out[0, length) holds a
// prefix). `in` and `out` must not overlap.
DecodeResult decode(std::span<const uint8_t> in, std::span<char> out) noexcept;

// Validates `in` exactly as decode() does and returns the decoded length
// without writing anything (never OutputTooSmall).
DecodeResult decoded_length(std::span<const uint8_t> in) noexcept;

// Octets needed to Huffman-encode `in`, including the EOS-prefix padding of
// the last octet (§5.2). Use it to pick Huffman only when it is shorter than
// the raw string.
std::size_t encoded_length(std::string_view in) noexcept;

// Encodes `in` into `out`. Returns encoded_length(in) on success, or nullopt
// when out.size() < encoded_length(in) (then `out` may have been partially
// written). `in` and `out` must not overlap.
std::optional<std::size_t> encode(std::string_view in,
                                  std::span<uint8_t> out) noexcept;

}  // namespace h2lab::proto::huffman
