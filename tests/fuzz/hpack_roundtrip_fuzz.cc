// hpack_roundtrip_fuzz: header lists built from the input go through
// hpack::Encoder, then hpack::Decoder, which must give back exactly the
// list, block after block, while the table size changes between blocks.
//
// Input: [encoder capacity: 1] then, per block, [control: 1] [field count: 1]
// and per field [shape: 1] plus the octets the shape asks for. The shape
// picks a static-table name or a literal one (any octets: HPACK does not
// validate names), a static value or a literal one, the never-indexed flag,
// and credential names (cookie, authorization) that the encoder never
// indexes. A control octet with 0x80 set first changes the decoder's
// SETTINGS_HEADER_TABLE_SIZE and tells the encoder (as the SETTINGS and its
// ACK would), with 0x40 it also shrinks it again before the block, which
// forces the §4.2 "smallest size first" pair of updates.
//
// Invariants (abort on violation):
//   - encode() succeeds into max_encoded_size() octets, and into one octet
//     less it fails and changes nothing (insert_count and size unchanged);
//   - decode() is Ok and delivers exactly the encoded list, in order;
//   - after every block both dynamic tables hold the same entries.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proto/hpack.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace h2lab::proto;

constexpr size_t kTableSizes[] = {4096, 0, 1, 32, 33, 64, 100, 256, 1000, 4095, 8192, 16384};
constexpr std::string_view kCredentials[] = {"cookie", "authorization", "set-cookie",
                                             "proxy-authorization"};

std::string_view as_chars(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct Owned {
  std::string name, value;
  bool never_index;
};

void check_same_tables(const hpack::DynamicTable& a, const hpack::DynamicTable& b) {
  FUZZ_CHECK(a.size() == b.size());
  FUZZ_CHECK(a.max_size() == b.max_size());
  FUZZ_CHECK(a.entry_count() == b.entry_count());
  for (size_t i = 0; i < a.entry_count(); ++i) {
    FUZZ_CHECK(a.entry(i).name == b.entry(i).name);
    FUZZ_CHECK(a.entry(i).value == b.entry(i).value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  h2lab::fuzz::FuzzInput in(data, size);
  const size_t capacity = kTableSizes[in.u8() % std::size(kTableSizes)];
  hpack::Encoder encoder(capacity);
  hpack::Limits limits;
  limits.max_header_list_size = SIZE_MAX;  // the list must come back whole
  limits.max_fields = SIZE_MAX;
  limits.max_field_size = 1 << 16;
  hpack::Decoder decoder(limits);

  while (!in.empty()) {
    const uint8_t control = in.u8();
    if ((control & 0x80) != 0) {
      const size_t n = kTableSizes[in.u8() % std::size(kTableSizes)];
      decoder.set_max_table_size_limit(n);
      encoder.set_peer_max_table_size(n);
      if ((control & 0x40) != 0) {
        const size_t m = std::min(n, kTableSizes[in.u8() % std::size(kTableSizes)]);
        decoder.set_max_table_size_limit(m);
        encoder.set_peer_max_table_size(m);
        decoder.set_max_table_size_limit(n);
        encoder.set_peer_max_table_size(n);
      }
    }
    std::vector<Owned> list;
    const size_t count = in.u8() % 24;
    for (size_t i = 0; i < count && !in.empty(); ++i) {
      const uint8_t shape = in.u8();
      Owned f;
      const hpack::Field entry = hpack::static_entry(1 + in.u8() % hpack::kStaticTableLength);
      switch (shape & 3) {
        case 0:
          f.name = entry.name;
          break;
        case 1:
          f.name = kCredentials[(shape >> 2) % std::size(kCredentials)];
          break;
        default:
          f.name = as_chars(in.bytes(in.u8() % 48));
          break;
      }
      if ((shape & 0x10) != 0) {
        f.value = entry.value;
      } else {
        // Long values now and then: entries above half the table, or above it.
        const size_t len = (shape & 0x20) != 0 ? in.u16() % 5000 : in.u8() % 64;
        f.value = as_chars(in.bytes(len));
      }
      f.never_index = (shape & 0x40) != 0;
      list.push_back(std::move(f));
    }
    std::vector<hpack::Header> headers;
    for (const Owned& f : list) headers.push_back({f.name, f.value, f.never_index});

    const size_t bound = encoder.max_encoded_size(headers);
    if ((control & 0x20) != 0 && bound != 0) {
      // One octet short: nullopt, and nothing changed.
      auto small = std::make_unique<uint8_t[]>(bound);
      const uint64_t inserted = encoder.table().insert_count();
      const size_t table_size = encoder.table().size();
      FUZZ_CHECK(!encoder.encode(headers, std::span<uint8_t>(small.get(), bound - 1)));
      FUZZ_CHECK(encoder.table().insert_count() == inserted);
      FUZZ_CHECK(encoder.table().size() == table_size);
      FUZZ_CHECK(encoder.max_encoded_size(headers) == bound);
    }
    auto block = std::make_unique<uint8_t[]>(bound == 0 ? 1 : bound);
    const auto written = encoder.encode(headers, std::span<uint8_t>(block.get(), bound));
    FUZZ_CHECK(written.has_value());
    FUZZ_CHECK(*written <= bound);

    size_t at = 0;
    bool same = true;
    const hpack::Status status =
        decoder.decode(std::span<const uint8_t>(block.get(), *written),
                       [&](std::string_view name, std::string_view value) {
                         if (at >= list.size() || list[at].name != name || list[at].value != value)
                           same = false;
                         ++at;
                       });
    if (status != hpack::Status::Ok) {
      std::fprintf(stderr, "decode: %s\n", decoder.error_detail());
    }
    FUZZ_CHECK(status == hpack::Status::Ok);
    FUZZ_CHECK(same && at == list.size());
    check_same_tables(encoder.table(), decoder.table());
  }
  return 0;
}
