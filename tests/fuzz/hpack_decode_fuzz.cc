// hpack_decode_fuzz: hpack::Decoder (RFC 7541) over arbitrary header blocks.
//
// Input: [limits: 4 octets] then blocks, each [control][length: 2][block].
// The first four octets pick the Limits (small ones too, so the
// HeaderListTooLarge paths run); a control octet with 0x80 set first changes
// the SETTINGS_HEADER_TABLE_SIZE limit (set_max_table_size_limit) to a value
// the next octets choose, as an acknowledged SETTINGS would between blocks.
//
// Invariants (abort on violation):
//   - every view handed to the sink is readable for its whole length (ASan)
//     and lies in the block, the static table, the dynamic table or the
//     decoder's scratch — the sink reads every octet;
//   - Ok: at most max_fields fields, each name + value <= max_field_size,
//     list size (name + value + 32 each) <= max_header_list_size;
//     HeaderListTooLarge: at most max_fields fields delivered;
//     every non-Ok result has a non-empty error_detail(), Ok an empty one;
//   - the dynamic table: size() <= max_size() <= the limit in effect, and
//     size() is the sum of its entries' sizes (§4.1);
//   - after CompressionError the decoder is not used again (its contract).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "proto/hpack.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace h2lab::proto;

constexpr size_t kListSizes[] = {64 * 1024, 4096, 200, 0};
constexpr size_t kFieldCounts[] = {100, 8, 1, 0};
constexpr size_t kFieldSizes[] = {8 * 1024, 1024, 16, 0};
// SETTINGS_HEADER_TABLE_SIZE values: the default, 0, odd sizes, a large one.
constexpr size_t kTableSizes[] = {4096, 0, 1, 31, 32, 33, 100, 256, 1000, 4095, 4097, 16384, 65536};

void check_table(const hpack::DynamicTable& t, size_t limit) {
  FUZZ_CHECK(t.size() <= t.max_size());
  FUZZ_CHECK(t.max_size() <= limit || t.max_size() <= hpack::kDefaultTableSize);
  size_t sum = 0;
  for (size_t i = 0; i < t.entry_count(); ++i) {
    const hpack::Field f = t.entry(i);
    volatile uint8_t touch = 0;
    for (char c : f.name) touch = touch ^ static_cast<uint8_t>(c);
    for (char c : f.value) touch = touch ^ static_cast<uint8_t>(c);
    sum += hpack::entry_size(f.name.size(), f.value.size());
  }
  FUZZ_CHECK(sum == t.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  h2lab::fuzz::FuzzInput in(data, size);
  hpack::Limits limits;
  limits.max_header_list_size = kListSizes[in.u8() % std::size(kListSizes)];
  limits.max_fields = kFieldCounts[in.u8() % std::size(kFieldCounts)];
  limits.max_field_size = kFieldSizes[in.u8() % std::size(kFieldSizes)];
  const uint8_t low_limits = in.u8();
  if ((low_limits & 1) == 0) limits = hpack::Limits{};  // mostly the defaults
  hpack::Decoder decoder(limits);

  while (!in.empty()) {
    const uint8_t control = in.u8();
    if ((control & 0x80) != 0) {
      const uint8_t pick = in.u8();
      decoder.set_max_table_size_limit(kTableSizes[pick % std::size(kTableSizes)]);
      check_table(decoder.table(), decoder.max_table_size_limit());
    }
    const size_t length = in.u16();
    const auto chunk = in.bytes(length);
    // The block in a buffer of exactly its size: a read past it is caught.
    auto block = std::make_unique<uint8_t[]>(chunk.empty() ? 1 : chunk.size());
    if (!chunk.empty()) std::memcpy(block.get(), chunk.data(), chunk.size());

    size_t fields = 0;
    size_t list_size = 0;
    bool field_too_large = false;
    const hpack::Status status =
        decoder.decode(std::span<const uint8_t>(block.get(), chunk.size()),
                       [&](std::string_view name, std::string_view value) {
                         volatile uint8_t touch = 0;
                         for (char c : name) touch = touch ^ static_cast<uint8_t>(c);
                         for (char c : value) touch = touch ^ static_cast<uint8_t>(c);
                         ++fields;
                         list_size += hpack::entry_size(name.size(), value.size());
                         if (name.size() + value.size() > limits.max_field_size)
                           field_too_large = true;
                       });
    switch (status) {
      case hpack::Status::Ok:
        FUZZ_CHECK(fields <= limits.max_fields);
        FUZZ_CHECK(list_size <= limits.max_header_list_size);
        FUZZ_CHECK(!field_too_large);
        FUZZ_CHECK(*decoder.error_detail() == '\0');
        break;
      case hpack::Status::HeaderListTooLarge:
        FUZZ_CHECK(fields <= limits.max_fields);
        FUZZ_CHECK(*decoder.error_detail() != '\0');
        break;
      case hpack::Status::CompressionError:
        FUZZ_CHECK(*decoder.error_detail() != '\0');
        return 0;  // the decoder must not be used again
    }
    FUZZ_CHECK(std::strlen(hpack::status_name(status)) != 0);
    check_table(decoder.table(), decoder.max_table_size_limit());
  }
  return 0;
}
