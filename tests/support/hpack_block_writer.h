// Raw HPACK representations written at random (RFC 7541 §6), valid and
// not, for the differential tests: what a fuzzer would send, but seeded and
// repeatable.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proto/hpack.h"
#include "proto/huffman.h"

namespace h2lab::testing {

namespace hpack = proto::hpack;
namespace huffman = proto::huffman;

using Block = std::vector<uint8_t>;

// Field names and values with repeats, so that the dynamic table is hit.
inline const char* const kNames[] = {":path", ":authority", "cookie", "user-agent", "x-a", "accept",
                              "content-type", "x-long", ""};
inline const char* const kValues[] = {"/", "/index.html", "example.com", "a=b; c=d", "1", "",
                               "text/html,application/xhtml+xml", "Mozilla/5.0 (X11; Linux)"};

// Writes one header block, representation by representation.
class BlockWriter {
 public:
  explicit BlockWriter(std::mt19937& rng) : rng_(rng) {}

  void integer(uint64_t v, int prefix, uint8_t flags) {
    uint8_t buf[16];
    const auto n = hpack::encode_integer(v, prefix, flags, buf);
    block_.insert(block_.end(), buf, buf + *n);
  }
  void string(std::string_view s) {
    if (rng_() % 2 == 0) {  // raw
      integer(s.size(), 7, 0x00);
      block_.insert(block_.end(), s.begin(), s.end());
      return;
    }
    std::vector<uint8_t> h(huffman::encoded_length(s));
    huffman::encode(s, h);
    integer(h.size(), 7, 0x80);
    block_.insert(block_.end(), h.begin(), h.end());
  }
  std::string pick_value() {
    if (rng_() % 16 == 0) return std::string(rng_() % 3000, 'v');  // big: evictions
    return kValues[rng_() % std::size(kValues)];
  }

  // One representation; `entries` is an estimate of the dynamic table's
  // length, so that most indexes are valid and some are one past the end.
  void representation(size_t entries) {
    const uint32_t index_span = 61 + static_cast<uint32_t>(entries) + (rng_() % 4 == 0 ? 1 : 0);
    switch (rng_() % 6) {
      case 0:  // §6.1 indexed (index 0 now and then: an error)
        integer(rng_() % 50 == 0 ? 0 : 1 + rng_() % index_span, 7, 0x80);
        break;
      case 1:
      case 2: {  // §6.2.1 incremental indexing, indexed or new name
        if (rng_() % 2) {
          integer(1 + rng_() % index_span, 6, 0x40);
        } else {
          integer(0, 6, 0x40);
          string(kNames[rng_() % std::size(kNames)]);
        }
        string(pick_value());
        break;
      }
      default: {  // §6.2.2 / §6.2.3 without indexing, never indexed
        const uint8_t flags = rng_() % 2 ? 0x00 : 0x10;
        if (rng_() % 2) {
          integer(1 + rng_() % index_span, 4, flags);
        } else {
          integer(0, 4, flags);
          string(kNames[rng_() % std::size(kNames)]);
        }
        string(pick_value());
        break;
      }
    }
  }

  Block take() { return std::move(block_); }

 private:
  std::mt19937& rng_;
  Block block_;
};

}  // namespace h2lab::testing
