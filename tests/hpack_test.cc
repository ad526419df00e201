// Tests for proto/hpack (RFC 7541): Appendix C byte for byte in both
// directions, decoder failure rows, limits and the HPACK bomb, the encoder's
// indexing policy, and the dynamic table ring.
#include "proto/hpack.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "proto/huffman.h"
#include "tests/hpack_hex.h"

namespace hpack = h2lab::proto::hpack;
using hpack::Coding;
using hpack::Decoder;
using hpack::Encoder;
using hpack::Indexing;
using hpack::Limits;
using hpack::Status;

namespace {

using h2lab::test::from_hex;
using h2lab::test::to_hex;

using Headers = std::vector<std::pair<std::string, std::string>>;

Status decode(Decoder& d, std::span<const uint8_t> block, Headers& out) {
  out.clear();
  return d.decode(block, [&](std::string_view n, std::string_view v) {
    out.emplace_back(n, v);
  });
}

Headers table_of(const hpack::DynamicTable& t) {
  Headers h;
  for (std::size_t i = 0; i < t.entry_count(); ++i) {
    h.emplace_back(t.entry(i).name, t.entry(i).value);
  }
  return h;
}

// One low-level encoder call, as the RFC describes each representation.
struct Op {
  enum Kind { Indexed, LiteralIndexedName, LiteralNewName, SizeUpdate } kind;
  std::size_t index = 0;  // Indexed, LiteralIndexedName; size for SizeUpdate
  const char* name = "";
  const char* value = "";
  Indexing mode = Indexing::Incremental;
};
Op idx(std::size_t i) { return {Op::Indexed, i}; }
Op lit(std::size_t name_index, const char* value,
       Indexing m = Indexing::Incremental) {
  return {Op::LiteralIndexedName, name_index, "", value, m};
}
Op lit(const char* name, const char* value,
       Indexing m = Indexing::Incremental) {
  return {Op::LiteralNewName, 0, name, value, m};
}

std::string run_ops(Encoder& e, const std::vector<Op>& ops, Coding coding) {
  std::vector<uint8_t> out;
  uint8_t buf[512];
  for (const Op& op : ops) {
    std::optional<std::size_t> n;
    switch (op.kind) {
      case Op::Indexed:
        n = e.encode_indexed(op.index, buf);
        break;
      case Op::LiteralIndexedName:
        n = e.encode_literal(op.mode, op.index, op.value, coding, buf);
        break;
      case Op::LiteralNewName:
        n = e.encode_literal(op.mode, op.name, op.value, coding, buf);
        break;
      case Op::SizeUpdate:
        n = e.encode_table_size_update(op.index, buf);
        break;
    }
    REQUIRE(n.has_value());
    out.insert(out.end(), buf, buf + *n);
  }
  return to_hex(out);
}

struct Block {
  const char* wire;
  Headers headers;
  std::vector<Op> ops;  // how the RFC encoded it
  Headers table;        // dynamic table afterwards, newest first
  std::size_t table_size;
};

struct Example {
  const char* name;
  std::size_t table_size;
  Coding coding;
  std::vector<Block> blocks;
};

const Headers kReq1 = {{":method", "GET"},
                       {":scheme", "http"},
                       {":path", "/"},
                       {":authority", "www.example.com"}};
const Headers kReq2 = {{":method", "GET"},
                       {":scheme", "http"},
                       {":path", "/"},
                       {":authority", "www.example.com"},
                       {"cache-control", "no-cache"}};
const Headers kReq3 = {{":method", "GET"},
                       {":scheme", "https"},
                       {":path", "/index.html"},
                       {":authority", "www.example.com"},
                       {"custom-key", "custom-value"}};
const std::vector<Op> kReqOps1 = {idx(2), idx(6), idx(4), lit(1, "www.example.com")};
const std::vector<Op> kReqOps2 = {idx(2), idx(6), idx(4), idx(62), lit(24, "no-cache")};
const std::vector<Op> kReqOps3 = {idx(2), idx(7), idx(5), idx(63),
                                  lit("custom-key", "custom-value")};
const Headers kReqTable1 = {{":authority", "www.example.com"}};
const Headers kReqTable2 = {{"cache-control", "no-cache"},
                            {":authority", "www.example.com"}};
const Headers kReqTable3 = {{"custom-key", "custom-value"},
                            {"cache-control", "no-cache"},
                            {":authority", "www.example.com"}};

constexpr const char* kDate1 = "Mon, 21 Oct 2013 20:13:21 GMT";
constexpr const char* kDate2 = "Mon, 21 Oct 2013 20:13:22 GMT";
constexpr const char* kLocation = "https://www.example.com";
constexpr const char* kCookie =
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const Headers kResp1 = {{":status", "302"},
                        {"cache-control", "private"},
                        {"date", kDate1},
                        {"location", kLocation}};
const Headers kResp2 = {{":status", "307"},
                        {"cache-control", "private"},
                        {"date", kDate1},
                        {"location", kLocation}};
const Headers kResp3 = {{":status", "200"},        {"cache-control", "private"},
                        {"date", kDate2},          {"location", kLocation},
                        {"content-encoding", "gzip"}, {"set-cookie", kCookie}};
const std::vector<Op> kRespOps1 = {lit(8, "302"), lit(24, "private"),
                                   lit(33, kDate1), lit(46, kLocation)};
const std::vector<Op> kRespOps2 = {lit(8, "307"), idx(65), idx(64), idx(63)};
const std::vector<Op> kRespOps3 = {idx(8),          idx(65),       lit(33, kDate2),
                                   idx(64),         lit(26, "gzip"), lit(55, kCookie)};
const Headers kRespTable1 = {{"location", kLocation},
                             {"date", kDate1},
                             {"cache-control", "private"},
                             {":status", "302"}};
const Headers kRespTable2 = {{":status", "307"},
                             {"location", kLocation},
                             {"date", kDate1},
                             {"cache-control", "private"}};
const Headers kRespTable3 = {{"set-cookie", kCookie},
                             {"content-encoding", "gzip"},
                             {"date", kDate2}};

const std::vector<Example>& examples() {
  static const std::vector<Example> kExamples = {
      {"C.3 requests without Huffman",
       4096,
       Coding::Raw,
       {{"828684410f7777772e6578616d706c652e636f6d", kReq1, kReqOps1, kReqTable1, 57},
        {"828684be58086e6f2d6361636865", kReq2, kReqOps2, kReqTable2, 110},
        {"828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", kReq3,
         kReqOps3, kReqTable3, 164}}},
      {"C.4 requests with Huffman",
       4096,
       Coding::Huffman,
       {{"828684418cf1e3c2e5f23a6ba0ab90f4ff", kReq1, kReqOps1, kReqTable1, 57},
        {"828684be5886a8eb10649cbf", kReq2, kReqOps2, kReqTable2, 110},
        {"828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf", kReq3, kReqOps3,
         kReqTable3, 164}}},
      {"C.5 responses without Huffman",
       256,
       Coding::Raw,
       {{"4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032"
         "303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e63"
         "6f6d",
         kResp1, kRespOps1, kRespTable1, 222},
        {"4803333037c1c0bf", kResp2, kRespOps2, kRespTable2, 222},
        {"88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c0"
         "5a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f504955415851"
         "57454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
         kResp3, kRespOps3, kRespTable3, 215}}},
      {"C.6 responses with Huffman",
       256,
       Coding::Huffman,
       {{"488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1b"
         "ff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
         kResp1, kRespOps1, kRespTable1, 222},
        {"4883640effc1c0bf", kResp2, kRespOps2, kRespTable2, 222},
        {"88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad"
         "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f95873160"
         "65c003ed4ee5b1063d5007",
         kResp3, kRespOps3, kRespTable3, 215}}},
  };
  return kExamples;
}

Headers decode_ok(Decoder& d, std::string_view hex) {
  Headers h;
  const std::vector<uint8_t> wire = from_hex(hex);
  const Status st = decode(d, wire, h);
  INFO(d.error_detail());
  REQUIRE(st == Status::Ok);
  return h;
}

}  // namespace

// ---------------------------------------------------------------------------
// Appendix C

TEST_CASE("C.1 integer representation") {
  struct Row {
    uint64_t value;
    int prefix;
    uint8_t flags;
    const char* hex;
  };
  const Row rows[] = {
      {10, 5, 0x00, "0a"},           // C.1.1
      {1337, 5, 0x00, "1f9a0a"},     // C.1.2
      {42, 8, 0x00, "2a"},           // C.1.3
      {30, 5, 0xe0, "fe"},           // flags above the prefix are kept
      {31, 5, 0x00, "1f00"},         // prefix full: a zero continuation
      {127, 7, 0x80, "ff00"},
      {128, 7, 0x80, "ff01"},
      {4096, 5, 0x20, "3fe11f"},
      {UINT32_MAX, 5, 0x00, "1fe0ffffff0f"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.value, r.prefix);
    uint8_t buf[16];
    const auto n = hpack::encode_integer(r.value, r.prefix, r.flags, buf);
    REQUIRE(n.has_value());
    CHECK(to_hex({buf, *n}) == r.hex);
    CHECK(hpack::integer_length(r.value, r.prefix) == *n);
    const std::vector<uint8_t> wire = from_hex(r.hex);
    const hpack::IntegerResult d = hpack::decode_integer(wire, r.prefix);
    CHECK(d.status == Status::Ok);
    CHECK(d.value == r.value);
    CHECK(d.consumed == wire.size());
  }
  uint8_t tiny[2];
  CHECK_FALSE(hpack::encode_integer(1337, 5, 0, tiny).has_value());
}

TEST_CASE("integer decoding failures (§5.1)") {
  struct Row {
    const char* name;
    const char* hex;
    int prefix;
    const char* detail;
  };
  const Row rows[] = {
      {"empty", "", 5, "truncated"},
      {"prefix full, nothing after", "1f", 5, "truncated"},
      {"continuation bit on the last octet", "1f9a8a", 5, "truncated"},
      {"2^32 + 30", "1fffffffff0f", 5, "overflows"},
      {"2^32 exactly", "1fe1ffffff0f", 5, "overflows"},
      {"six continuation octets", "1f808080808000", 5, "too many"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.name);
    const hpack::IntegerResult d = hpack::decode_integer(from_hex(r.hex), r.prefix);
    CHECK(d.status == Status::CompressionError);
    CHECK_THAT(d.detail, Catch::Contains(r.detail));
  }
  // Five continuation octets are enough for any 32-bit value, padding or not.
  CHECK(hpack::decode_integer(from_hex("1f8080808000"), 5).value == 31);
}

TEST_CASE("C.2 header field representations, decoded and encoded") {
  struct Row {
    const char* name;
    const char* hex;
    Op op;
    Headers headers;
    Headers table;
    std::size_t table_size;
  };
  const Row rows[] = {
      {"C.2.1 literal with indexing",
       "400a637573746f6d2d6b65790d637573746f6d2d686561646572",
       lit("custom-key", "custom-header"),
       {{"custom-key", "custom-header"}},
       {{"custom-key", "custom-header"}},
       55},
      {"C.2.2 literal without indexing", "040c2f73616d706c652f70617468",
       lit(4, "/sample/path", Indexing::Without),
       {{":path", "/sample/path"}}, {}, 0},
      {"C.2.3 literal never indexed", "100870617373776f726406736563726574",
       lit("password", "secret", Indexing::Never),
       {{"password", "secret"}}, {}, 0},
      {"C.2.4 indexed", "82", idx(2), {{":method", "GET"}}, {}, 0},
  };
  for (const Row& r : rows) {
    CAPTURE(r.name);
    Decoder d;
    CHECK(decode_ok(d, r.hex) == r.headers);
    CHECK(table_of(d.table()) == r.table);
    CHECK(d.table().size() == r.table_size);

    Encoder e;
    CHECK(run_ops(e, {r.op}, Coding::Raw) == r.hex);
    CHECK(table_of(e.table()) == r.table);
    CHECK(e.table().size() == r.table_size);
  }
}

TEST_CASE("C.3-C.6 header lists across three blocks, both directions") {
  for (const Example& ex : examples()) {
    DYNAMIC_SECTION(ex.name) {
      Limits limits;
      limits.max_table_size = ex.table_size;
      Decoder d(limits);
      Encoder e(ex.table_size);
      int n = 0;
      for (const Block& b : ex.blocks) {
        CAPTURE(++n);
        CHECK(decode_ok(d, b.wire) == b.headers);
        CHECK(table_of(d.table()) == b.table);
        CHECK(d.table().size() == b.table_size);
        CHECK(d.table().max_size() == ex.table_size);

        CHECK(run_ops(e, b.ops, ex.coding) == b.wire);
        CHECK(table_of(e.table()) == b.table);
        CHECK(e.table().size() == b.table_size);
      }
    }
  }
}

TEST_CASE("static table (Appendix A) spot checks") {
  CHECK(hpack::static_entry(1).name == ":authority");
  CHECK(hpack::static_entry(2).value == "GET");
  CHECK(hpack::static_entry(8).value == "200");
  CHECK(hpack::static_entry(16).value == "gzip, deflate");
  CHECK(hpack::static_entry(55).name == "set-cookie");
  CHECK(hpack::static_entry(61).name == "www-authenticate");
}

// ---------------------------------------------------------------------------
// Decoder failures

TEST_CASE("decoder rejects malformed blocks with COMPRESSION_ERROR") {
  struct Row {
    const char* name;
    const char* hex;
    const char* detail;
  };
  const Row rows[] = {
      {"indexed field with index 0", "80", "index 0"},
      {"index past the (empty) dynamic table", "be", "past the end"},
      {"index 127", "ff00", "past the end"},
      {"literal whose name index is past the table", "7f00", "past the end"},
      {"size update after a field", "8220", "after a field"},
      {"size update after a literal", "0401612000", "after a field"},
      {"size update above SETTINGS_HEADER_TABLE_SIZE (4097)", "3fe21f",
       "above SETTINGS_HEADER_TABLE_SIZE"},
      {"index overflowing 32 bits", "ffffffffff0f", "overflows"},
      {"index with six continuation octets", "ff808080808000", "too many"},
      {"truncated index", "ff80", "truncated"},
      {"literal without a name string", "40", "truncated"},
      {"name length past the block", "4005616263", "longer than the rest"},
      {"value length past the block", "04056162", "longer than the rest"},
      {"huge string length", "047fffffffff07", "longer than the rest"},
      {"value missing after a name", "400161", "truncated"},
      {"Huffman value containing EOS", "0484ffffffff", "EOS"},
      {"Huffman padding longer than 7 bits", "04821fff", "longer than 7 bits"},
      {"Huffman padding not ones", "04811e", "not a prefix of EOS"},
      {"Huffman name containing EOS", "4084ffffffff0161", "EOS"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.name);
    Decoder d;
    Headers h;
    CHECK(decode(d, from_hex(r.hex), h) == Status::CompressionError);
    CHECK_THAT(d.error_detail(), Catch::Contains(r.detail));
    CHECK(std::string(hpack::status_name(Status::CompressionError)) ==
          "COMPRESSION_ERROR");
  }
}

TEST_CASE("dynamic table size updates (§4.2, §6.3)") {
  Decoder d;
  Headers h;
  SECTION("updates at the start of a block are applied, two are allowed") {
    CHECK(decode_ok(d, "203fe11f82") == Headers{{":method", "GET"}});
    CHECK(d.table().max_size() == 4096);
    CHECK(decode_ok(d, "3fe10782").size() == 1);  // 1024
    CHECK(d.table().max_size() == 1024);
  }
  SECTION("update to 0 evicts everything") {
    decode_ok(d, "4001610162");
    CHECK(d.table().entry_count() == 1);
    decode_ok(d, "20");
    CHECK(d.table().entry_count() == 0);
    CHECK(decode(d, from_hex("be"), h) == Status::CompressionError);
  }
  SECTION("lowering our limit requires an update in the next block") {
    d.set_max_table_size_limit(1024);
    CHECK(d.table().max_size() == 1024);
    CHECK(decode(d, from_hex("82"), h) == Status::CompressionError);
    CHECK_THAT(d.error_detail(), Catch::Contains("missing"));
  }
  SECTION("... an empty block does not count") {
    d.set_max_table_size_limit(1024);
    CHECK(decode(d, {}, h) == Status::CompressionError);
  }
  SECTION("... and satisfies it with an update <= the new limit") {
    d.set_max_table_size_limit(1024);
    CHECK(decode(d, from_hex("3fe20782"), h) == Status::CompressionError);  // 1025
    Decoder d2;
    d2.set_max_table_size_limit(1024);
    CHECK(decode_ok(d2, "3fe10782").size() == 1);
    CHECK(decode_ok(d2, "82").size() == 1);  // no longer required
  }
  SECTION("the smallest limit since the last block must come first") {
    d.set_max_table_size_limit(1024);
    d.set_max_table_size_limit(2048);
    CHECK(d.max_table_size_limit() == 2048);
    CHECK(decode(d, from_hex("3fe10f82"), h) == Status::CompressionError);
    CHECK_THAT(d.error_detail(), Catch::Contains("smallest"));
    Decoder d2;
    d2.set_max_table_size_limit(1024);
    d2.set_max_table_size_limit(2048);
    CHECK(decode_ok(d2, "3fe1073fe10f82").size() == 1);
    CHECK(d2.table().max_size() == 2048);
  }
  SECTION("raising the limit permits larger updates without requiring one") {
    d.set_max_table_size_limit(8192);
    CHECK(decode_ok(d, "82").size() == 1);
    CHECK(decode_ok(d, "3fe13f82").size() == 1);  // 8192
    CHECK(d.table().max_size() == 8192);
  }
}

// ---------------------------------------------------------------------------
// Limits: HeaderListTooLarge keeps the table in sync

TEST_CASE("field-count limit: stream error, table stays in sync") {
  Limits limits;
  limits.max_fields = 3;
  Decoder d(limits);
  Headers h;
  // C.3.1: three indexed fields, then :authority with incremental indexing.
  CHECK(decode(d, from_hex("828684410f7777772e6578616d706c652e636f6d"), h) ==
        Status::HeaderListTooLarge);
  CHECK_THAT(d.error_detail(), Catch::Contains("more header fields"));
  CHECK(h.size() == 3);
  CHECK(table_of(d.table()) == kReqTable1);
  // The next block references the entry added past the limit.
  CHECK(decode_ok(d, "be") == Headers{{":authority", "www.example.com"}});
  CHECK(std::string(hpack::status_name(Status::HeaderListTooLarge)) ==
        "HEADER_LIST_TOO_LARGE");
}

TEST_CASE("header-list-size limit counts name + value + 32 (RFC 9113 §6.5.2)") {
  Limits limits;
  limits.max_header_list_size = 42 + 43;  // :method GET + :scheme http
  Decoder d(limits);
  Headers h;
  CHECK(decode(d, from_hex("828684410f7777772e6578616d706c652e636f6d"), h) ==
        Status::HeaderListTooLarge);
  CHECK_THAT(d.error_detail(), Catch::Contains("header list larger"));
  CHECK(h == Headers{{":method", "GET"}, {":scheme", "http"}});
  CHECK(decode_ok(d, "8286").size() == 2);  // exactly at the limit
  CHECK(decode_ok(d, "be") == Headers{{":authority", "www.example.com"}});
  CHECK(decode(d, from_hex("828684"), h) == Status::HeaderListTooLarge);
}

TEST_CASE("single-field limit is a stream error too") {
  Limits limits;
  limits.max_field_size = 16;
  Decoder d(limits);
  Headers h;
  Decoder d2(limits);
  CHECK(decode(d2,
               from_hex("82400a637573746f6d2d6b65790c637573746f6d2d76616c756586"),
               h) == Status::HeaderListTooLarge);
  CHECK_THAT(d2.error_detail(), Catch::Contains("header field larger"));
  CHECK(h == Headers{{":method", "GET"}});  // nothing after the limit
  // In sync: the entry was added, and referencing it hits the limit again
  // rather than being an unknown index.
  CHECK(table_of(d2.table()) == Headers{{"custom-key", "custom-value"}});
  CHECK(decode(d2, from_hex("be"), h) == Status::HeaderListTooLarge);
  CHECK(decode_ok(d2, "82") == Headers{{":method", "GET"}});
}

TEST_CASE("an over-long Huffman field is validated, not buffered") {
  Limits limits;
  limits.max_field_size = 64;
  limits.max_table_size = 64;  // scratch = 64 octets
  const std::string big(200, 'a');
  std::vector<uint8_t> coded(h2lab::proto::huffman::encoded_length(big));
  REQUIRE(h2lab::proto::huffman::encode(big, coded));
  REQUIRE(coded.size() == 125);  // 'a' is 5 bits

  // 40 | name "x" | value: H, length 125 (fd), then the code.
  std::vector<uint8_t> block = from_hex("400178fd");
  block.insert(block.end(), coded.begin(), coded.end());

  Decoder d(limits);
  Headers h;
  decode_ok(d, "4001610162");  // a: b, 34 octets
  CHECK(d.table().entry_count() == 1);
  CHECK(decode(d, block, h) == Status::HeaderListTooLarge);
  // §4.4: an entry larger than the table empties it, as the peer's does.
  CHECK(d.table().entry_count() == 0);
  CHECK(decode(d, from_hex("be"), h) == Status::CompressionError);

  // The same string followed by EOS is still a COMPRESSION_ERROR.
  std::vector<uint8_t> bad = from_hex("400178ff02");  // length 129
  bad.insert(bad.end(), coded.begin(), coded.end());
  for (int i = 0; i < 4; ++i) bad.push_back(0xff);
  Decoder d2(limits);
  CHECK(decode(d2, bad, h) == Status::CompressionError);
  CHECK_THAT(d2.error_detail(), Catch::Contains("EOS"));
}

TEST_CASE("HPACK bomb: 1-octet references to one big entry hit the list limit") {
  Decoder d;  // default limits: 64 KiB list, 100 fields, 8 KiB field
  Headers h;
  const std::string value(4000, 'x');
  Encoder e;
  uint8_t buf[4100];
  const auto n = e.encode_literal(Indexing::Incremental, "x-bomb", value, Coding::Raw, buf);
  REQUIRE(n);
  REQUIRE(decode(d, {buf, *n}, h) == Status::Ok);
  REQUIRE(d.table().size() == 4038);

  // The 2026 variant: thousands of references in one (large) block.
  const std::vector<uint8_t> bomb(20000, 0xbe);
  std::size_t delivered = 0;
  std::size_t bytes = 0;
  const Status st = d.decode(bomb, [&](std::string_view nm, std::string_view v) {
    ++delivered;
    bytes += nm.size() + v.size() + 32;
  });
  CHECK(st == Status::HeaderListTooLarge);
  CHECK_THAT(d.error_detail(), Catch::Contains("header list larger"));
  CHECK(delivered == 65536 / 4038);
  CHECK(bytes <= 65536);
  // Still in sync: the entry is there and usable.
  CHECK(decode_ok(d, "be").size() == 1);

  // Tiny references: the field-count limit stops delivery at 100.
  const std::vector<uint8_t> tiny(5000, 0x82);
  CHECK(decode(d, tiny, h) == Status::HeaderListTooLarge);
  CHECK(h.size() == 100);
  CHECK_THAT(d.error_detail(), Catch::Contains("more header fields"));
}

TEST_CASE("views: name from the dynamic table survives its own eviction") {
  Limits limits;
  limits.max_table_size = 100;
  Decoder d(limits);
  Headers h;
  // Insert "abcdefghij: 0123456789" (52), then a literal reusing name 62
  // whose value makes the new entry evict the old one.
  decode_ok(d, "400a6162636465666768696a0a30313233343536373839");
  const std::string v(40, 'v');
  std::vector<uint8_t> block = from_hex("7e28");  // 01 + index 62, length 40
  block.insert(block.end(), v.begin(), v.end());
  CHECK(decode(d, block, h) == Status::Ok);
  CHECK(h == Headers{{"abcdefghij", v}});
  CHECK(table_of(d.table()) == Headers{{"abcdefghij", v}});
  CHECK(d.table().size() == 82);
}

// ---------------------------------------------------------------------------
// Encoder

namespace {

std::vector<uint8_t> encode_block(Encoder& e, const std::vector<hpack::Header>& fields) {
  std::vector<uint8_t> out(e.max_encoded_size(fields));
  const auto n = e.encode(fields, out);
  REQUIRE(n.has_value());
  out.resize(*n);
  return out;
}

Headers as_headers(const std::vector<hpack::Header>& fields) {
  Headers h;
  for (const auto& f : fields) h.emplace_back(f.name, f.value);
  return h;
}

}  // namespace

TEST_CASE("encoder: second identical response is smaller and decodes back") {
  const std::vector<hpack::Header> resp = {
      {":status", "200"},
      {"content-type", "text/plain"},
      {"server", "h2lab"},
      {"content-length", "12"},
      {"date", "Tue, 25 Nov 2025 13:00:00 GMT"},
      {"cache-control", "max-age=60"},
  };
  Encoder e;
  Decoder d;
  Headers h;
  const std::vector<uint8_t> first = encode_block(e, resp);
  CHECK(first[0] == 0x88);  // :status 200, static full match
  REQUIRE(decode(d, first, h) == Status::Ok);
  CHECK(h == as_headers(resp));

  const std::vector<uint8_t> second = encode_block(e, resp);
  CHECK(second.size() < first.size());
  REQUIRE(decode(d, second, h) == Status::Ok);
  CHECK(h == as_headers(resp));
  // content-type (64), server (63) and cache-control (62) are one octet each.
  REQUIRE(second.size() >= 4);
  CHECK(second[0] == 0x88);
  CHECK(second[1] == 0xc0);
  CHECK(second[2] == 0xbf);
  CHECK(second.back() == 0xbe);
  // The volatile fields were not indexed.
  CHECK(table_of(e.table()) == Headers{{"cache-control", "max-age=60"},
                                       {"server", "h2lab"},
                                       {"content-type", "text/plain"}});
  CHECK(table_of(d.table()) == table_of(e.table()));
  // content-length: without indexing, static name 28 (0f 0d), "12" raw or
  // Huffman (2 octets either way: raw).
  CHECK(to_hex(second).find("0f0d023132") != std::string::npos);
}

TEST_CASE("encoder: never-indexed fields and Huffman only when shorter") {
  Encoder e;
  const std::vector<hpack::Header> fields = {
      {"set-cookie", "a=b"},
      {"x-secret", "s3cr3t", true},
  };
  const std::vector<uint8_t> wire = encode_block(e, fields);
  CHECK(wire[0] == 0x1f);  // never indexed, name index 55 = 15 + 40
  CHECK(wire[1] == 0x28);
  CHECK(e.table().entry_count() == 0);
  Decoder d;
  Headers h;
  REQUIRE(decode(d, wire, h) == Status::Ok);
  CHECK(h == as_headers(fields));

  uint8_t buf[32];
  // "x" is 7 bits in Huffman: 1 octet either way, so raw; "\x01\x02" is
  // longer in Huffman: raw.
  auto n = e.encode_literal(Indexing::Without, "x", std::string_view("\x01\x02", 2),
                            Coding::Shortest, buf);
  REQUIRE(n);
  CHECK(to_hex({buf, *n}) == "000178020102");
  // "aaaa" is 20 bits: 3 octets beat 4.
  n = e.encode_literal(Indexing::Without, "x", "aaaa", Coding::Shortest, buf);
  REQUIRE(n);
  CHECK(to_hex({buf, *n}) == "0001788318c63f");
}

TEST_CASE("encoder: peer table size 0 -> size update prefix, no dynamic entries") {
  Encoder e;
  e.set_peer_max_table_size(0);
  const std::vector<hpack::Header> resp = {{":status", "200"},
                                           {"content-type", "text/html"},
                                           {"server", "h2lab"}};
  Decoder d;
  Headers h;
  for (int i = 0; i < 2; ++i) {
    const std::vector<uint8_t> wire = encode_block(e, resp);
    if (i == 0) {
      CHECK(wire[0] == 0x20);
    } else {
      CHECK(wire[0] == 0x88);
    }
    CHECK(e.table().entry_count() == 0);
    CHECK(e.table().max_size() == 0);
    REQUIRE(decode(d, wire, h) == Status::Ok);
    CHECK(h == as_headers(resp));
    CHECK(d.table().max_size() == 0);
  }
}

TEST_CASE("encoder: size update rules (§4.2)") {
  const std::vector<hpack::Header> one = {{":status", "200"}};
  SECTION("smallest then final when the setting dipped") {
    Encoder e;
    e.set_peer_max_table_size(1024);
    e.set_peer_max_table_size(2048);
    CHECK(to_hex(encode_block(e, one)) == "3fe1073fe10f88");
    CHECK(e.table().max_size() == 2048);
    CHECK(to_hex(encode_block(e, one)) == "88");
  }
  SECTION("no update when nothing changes for us") {
    Encoder e;
    e.set_peer_max_table_size(4096);
    CHECK(to_hex(encode_block(e, one)) == "88");
    Encoder small(1024);  // our own bound below the default: announced
    CHECK(to_hex(encode_block(small, one)) == "3fe10788");
    small.set_peer_max_table_size(65536);
    CHECK(to_hex(encode_block(small, one)) == "88");
  }
  SECTION("the decoder accepts what the encoder announces") {
    Encoder e;
    Decoder d;
    Headers h;
    d.set_max_table_size_limit(512);
    e.set_peer_max_table_size(512);
    REQUIRE(decode(d, encode_block(e, one), h) == Status::Ok);
    CHECK(d.table().max_size() == 512);
  }
}

TEST_CASE("encoder: a too-small buffer changes nothing") {
  Encoder e;
  e.set_peer_max_table_size(1024);
  const std::vector<hpack::Header> resp = {{"content-type", "text/plain"}};
  std::vector<uint8_t> out(e.max_encoded_size(resp) - 1);
  CHECK_FALSE(e.encode(resp, out).has_value());
  CHECK(e.table().entry_count() == 0);
  CHECK(e.table().max_size() == 4096);
  // The pending update is still emitted by the next successful call.
  CHECK(encode_block(e, resp)[0] == 0x3f);

  uint8_t b1[1];
  CHECK_FALSE(e.encode_literal(Indexing::Incremental, "abc", "def", Coding::Raw, b1));
  CHECK(e.table().entry_count() == 1);
  CHECK_FALSE(e.encode_indexed(0, b1));
  CHECK_FALSE(e.encode_indexed(63, b1));
  CHECK(e.encode_indexed(62, b1) == 1);
  CHECK_FALSE(e.encode_table_size_update(4097, b1));
}

TEST_CASE("encoder -> decoder round trip with evictions and size changes") {
  Encoder e;
  Decoder d;
  Headers h;
  uint32_t x = 7;
  const auto rnd = [&x] {
    x = x * 1103515245 + 12345;
    return x >> 16;
  };
  const char* names[] = {"content-type", "x-a", "x-b", "server", "vary",
                         "content-length", "set-cookie", "x-long"};
  std::vector<std::string> storage;
  for (int block = 0; block < 300; ++block) {
    if (block % 50 == 49) {
      const std::size_t size = (rnd() % 5) * 1024;
      d.set_max_table_size_limit(size);
      e.set_peer_max_table_size(size);
    }
    storage.clear();
    const std::size_t count = rnd() % 12;
    for (std::size_t i = 0; i < count; ++i) {
      std::string v;
      const std::size_t len = rnd() % 5 == 0 ? rnd() % 1500 : rnd() % 20;
      for (std::size_t k = 0; k < len; ++k) v += static_cast<char>(rnd() % 7 ? 'a' + rnd() % 26 : rnd() & 0xff);
      storage.push_back(std::move(v));
    }
    std::vector<hpack::Header> fields;
    for (std::size_t i = 0; i < count; ++i) {
      fields.push_back({names[rnd() % 8], storage[i], rnd() % 10 == 0});
    }
    const std::vector<uint8_t> wire = encode_block(e, fields);
    CAPTURE(block);
    REQUIRE(decode(d, wire, h) == Status::Ok);
    REQUIRE(h == as_headers(fields));
    REQUIRE(table_of(d.table()) == table_of(e.table()));
    REQUIRE(d.table().size() == e.table().size());
  }
}

// ---------------------------------------------------------------------------
// DynamicTable ring

// Random inserts (some naming an entry of the table itself), size changes
// and one raised limit, against a deque: `first_max` is the table's limit
// at first, `raised_max` after the reserve() that comes halfway, and values
// reach about `value_scale` octets.
void check_table_against_model(std::size_t first_max, std::size_t raised_max,
                               uint32_t value_scale) {
  hpack::DynamicTable t(first_max);
  std::deque<std::pair<std::string, std::string>> model;  // newest first
  std::size_t model_max = first_max;
  const auto model_size = [&] {
    std::size_t s = 0;
    for (const auto& [n, v] : model) s += n.size() + v.size() + 32;
    return s;
  };
  const auto model_evict = [&] {
    while (model_size() > model_max) model.pop_back();
  };
  uint32_t x = 1;
  const auto rnd = [&x] {
    x = x * 1664525 + 1013904223;
    return x >> 8;
  };
  for (int step = 0; step < 20000; ++step) {
    CAPTURE(step);
    const uint32_t r = rnd() % 100;
    if (r < 3) {
      model_max = rnd() % (first_max + 1);
      t.set_max_size(model_max);
      model_evict();
    } else if (r == 3 && step > 10000) {
      t.reserve(raised_max + rnd() % 2);
      t.set_max_size(raised_max);
      model_max = raised_max;
    } else if (r < 10 && t.entry_count() > 0) {
      // Reuse an existing name (aliasing the ring).
      const std::size_t i = rnd() % t.entry_count();
      const std::string name(t.entry(i).name);
      const std::string value(rnd() % (value_scale * 4 / 3), static_cast<char>('a' + step % 26));
      t.insert(t.entry(i).name, value);
      if (name.size() + value.size() + 32 > model_max) {
        model.clear();
      } else {
        model.emplace_front(name, value);
        model_evict();
      }
    } else {
      const std::string name(rnd() % 20, static_cast<char>('A' + step % 26));
      const std::string value(rnd() % 3 == 0 ? 0 : rnd() % value_scale,
                              static_cast<char>('0' + step % 10));
      t.insert(name, value);
      if (name.size() + value.size() + 32 > model_max) {
        model.clear();
      } else {
        model.emplace_front(name, value);
        model_evict();
      }
    }
    REQUIRE(t.entry_count() == model.size());
    REQUIRE(t.size() == model_size());
    for (std::size_t i = 0; i < model.size(); ++i) {
      REQUIRE(t.entry(i).name == model[i].first);
      REQUIRE(t.entry(i).value == model[i].second);
    }
  }
}

TEST_CASE("dynamic table ring matches a simple model") {
  check_table_against_model(300, 600, 150);
}

TEST_CASE("dynamic table storage grows with its entries and keeps them (names in the table too)") {
  // From nothing through 512, 1024, 2048 to 4096 octets and then 16384, with
  // entries that name other entries while the storage moves.
  check_table_against_model(4096, 16384, 600);
}
