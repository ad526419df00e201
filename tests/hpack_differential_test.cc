// proto/hpack checked against libnghttp2's inflater, block by block: random
// conversations of raw representations (valid and not, with dynamic table
// size updates and SETTINGS_HEADER_TABLE_SIZE changes), and the encoder's
// blocks round-tripped through nghttp2. Whatever nghttp2 decodes, h2lab's
// decoder decodes to the same fields; whatever it refuses, h2lab refuses.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "proto/hpack.h"
#include "tests/support/hpack_block_writer.h"
#include "tests/support/nghttp2_inflater.h"

namespace hpack = h2lab::proto::hpack;
namespace huffman = h2lab::proto::huffman;
using h2lab::testing::Block;
using h2lab::testing::BlockWriter;
using h2lab::testing::HeaderList;
using h2lab::testing::kNames;
using h2lab::testing::Nghttp2Inflater;

namespace {

hpack::Status decode(hpack::Decoder& d, const Block& b, HeaderList& out) {
  out.clear();
  return d.decode(b, [&](std::string_view n, std::string_view v) { out.emplace_back(n, v); });
}

// A random block: now and then size updates first (some above the limit,
// some after a field — both errors), then representations.
Block random_block(std::mt19937& rng, size_t entries, size_t limit) {
  BlockWriter w(rng);
  const uint32_t updates = rng() % 8 == 0 ? 1 + rng() % 2 : 0;
  for (uint32_t i = 0; i < updates; ++i) {
    const uint64_t size = rng() % 20 == 0 ? limit + 1 : rng() % (limit + 1);
    w.integer(size, 5, 0x20);
  }
  const uint32_t n = rng() % 12;
  for (uint32_t i = 0; i < n; ++i) w.representation(entries);
  if (rng() % 60 == 0) w.integer(rng() % (limit + 1), 5, 0x20);  // after a field: an error
  return w.take();
}

}  // namespace

TEST_CASE("decoder agrees with nghttp2's inflater on random conversations, block by block") {
  // Limits too large to matter: both decoders must give the same fields.
  hpack::Limits unlimited;
  unlimited.max_header_list_size = 1 << 30;
  unlimited.max_fields = 1 << 20;
  unlimited.max_field_size = 1 << 20;
  size_t blocks = 0, refused = 0;
  for (uint32_t seed = 1; seed <= 1000; ++seed) {
    std::mt19937 rng(seed);
    hpack::Decoder ours(unlimited);
    Nghttp2Inflater theirs;
    size_t limit = hpack::kDefaultTableSize;
    for (int b = 0; b < 40; ++b) {
      if (rng() % 10 == 0) {  // our SETTINGS_HEADER_TABLE_SIZE changed and was acknowledged
        limit = rng() % 3 == 0 ? 0 : rng() % 8192;
        ours.set_max_table_size_limit(limit);
        theirs.change_table_size_limit(limit);
      }
      const Block block = random_block(rng, ours.table().entry_count(), limit);
      INFO("seed " << seed << " block " << b);
      HeaderList got;
      const hpack::Status status = decode(ours, block, got);
      const std::optional<HeaderList> want = theirs.inflate(block);
      ++blocks;
      if (!want) {
        CHECK(status == hpack::Status::CompressionError);
        ++refused;
        break;  // a connection error: neither decoder is used again
      }
      REQUIRE(status == hpack::Status::Ok);
      REQUIRE(got == *want);
      REQUIRE(ours.table().size() == theirs.table_size());
    }
  }
  // The generator must exercise both outcomes, or this test proves little.
  CHECK(blocks > 4000);
  CHECK(refused > 50);
  CHECK(blocks - refused > 3000);
}

TEST_CASE("a block over the decoder's limits still keeps the table in sync with nghttp2's") {
  hpack::Limits small;
  small.max_fields = 5;
  small.max_field_size = 100;
  small.max_header_list_size = 600;
  size_t too_large = 0, ok = 0;
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    hpack::Decoder ours(small);
    Nghttp2Inflater theirs;
    for (int b = 0; b < 30; ++b) {
      const Block block = random_block(rng, ours.table().entry_count(), hpack::kDefaultTableSize);
      INFO("seed " << seed << " block " << b);
      HeaderList got;
      const hpack::Status status = decode(ours, block, got);
      const std::optional<HeaderList> want = theirs.inflate(block);
      if (!want) {
        CHECK(status == hpack::Status::CompressionError);
        break;
      }
      REQUIRE(status != hpack::Status::CompressionError);
      if (status == hpack::Status::Ok) {
        REQUIRE(got == *want);
        ++ok;
      } else {
        // A prefix was delivered and must be discarded; the table went on.
        REQUIRE(got.size() <= want->size());
        REQUIRE(std::equal(got.begin(), got.end(), want->begin()));
        ++too_large;
      }
      REQUIRE(ours.table().size() == theirs.table_size());
    }
  }
  CHECK(too_large > 100);
  CHECK(ok > 1000);
}

TEST_CASE("encoder blocks decode in nghttp2's inflater to the list encoded") {
  size_t blocks = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    hpack::Encoder ours(rng() % 2 ? hpack::kDefaultTableSize : 1024);
    Nghttp2Inflater theirs;
    for (int b = 0; b < 30; ++b) {
      if (rng() % 8 == 0) {  // the peer (nghttp2's side) changes its table size
        const size_t n = rng() % 3 == 0 ? 0 : rng() % 6000;
        theirs.change_table_size_limit(n);
        ours.set_peer_max_table_size(n);
      }
      std::vector<std::string> storage;
      const size_t fields = rng() % 10;
      for (size_t i = 0; i < 2 * fields; ++i) {
        storage.push_back(i % 2 == 0 ? std::string(kNames[rng() % (std::size(kNames) - 1)])
                                     : BlockWriter(rng).pick_value());
      }
      std::vector<hpack::Header> list;
      HeaderList want;
      for (size_t i = 0; i < fields; ++i) {
        list.push_back({storage[2 * i], storage[2 * i + 1], rng() % 10 == 0});
        want.emplace_back(storage[2 * i], storage[2 * i + 1]);
      }
      std::vector<uint8_t> out(ours.max_encoded_size(list));
      const auto n = ours.encode(list, out);
      REQUIRE(n.has_value());
      out.resize(*n);
      INFO("seed " << seed << " block " << b);
      const std::optional<HeaderList> got = theirs.inflate(out);
      REQUIRE(got.has_value());
      REQUIRE(*got == want);
      REQUIRE(ours.table().size() == theirs.table_size());
      ++blocks;
    }
  }
  CHECK(blocks == 200 * 30);
}
