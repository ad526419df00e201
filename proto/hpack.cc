// HPACK (RFC 7541). See hpack.h for the contracts.
#include "proto/hpack.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "proto/huffman.h"

namespace h2lab::proto::hpack {
namespace {

// RFC 7541 Appendix A.
constexpr Field kStaticTable[kStaticTableLength] = {
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
};

// No 32-bit integer needs more than five continuation octets (5 x 7 > 32).
constexpr int kMaxContinuationOctets = 5;

// The continuation octets of an integer whose prefix was all ones (`v`).
[[gnu::noinline]] const char* read_integer_continued(const uint8_t*& p, const uint8_t* end,
                                                    uint64_t v, uint32_t& out) noexcept {
  for (int i = 0, shift = 0;; ++i, shift += 7) {
    if (i == kMaxContinuationOctets) {
      return "integer with too many continuation octets (RFC 7541 §5.1)";
    }
    if (p == end) return "truncated integer (RFC 7541 §5.1)";
    const uint8_t b = *p++;
    v += uint64_t{b & 0x7fu} << shift;
    if (v > UINT32_MAX) return "integer overflows 32 bits (RFC 7541 §5.1)";
    if (!(b & 0x80)) break;
  }
  out = static_cast<uint32_t>(v);
  return nullptr;
}

// RFC 7541 §5.1. Returns nullptr and advances `p` on success, else a static
// error detail. Inlined: nearly every index and length fits its prefix.
inline const char* read_integer(const uint8_t*& p, const uint8_t* end, int prefix_bits,
                                uint32_t& out) noexcept {
  if (p == end) return "truncated integer (RFC 7541 §5.1)";
  const uint32_t max_prefix = (1u << prefix_bits) - 1;
  const uint32_t v = *p++ & max_prefix;
  if (v < max_prefix) [[likely]] {
    out = v;
    return nullptr;
  }
  return read_integer_continued(p, end, v, out);
}

// Precondition: out has integer_length(value, prefix_bits) octets.
std::size_t write_integer(uint64_t value, int prefix_bits, uint8_t flags,
                          uint8_t* out) noexcept {
  const uint64_t max_prefix = (uint64_t{1} << prefix_bits) - 1;
  const uint8_t high = static_cast<uint8_t>(flags & ~max_prefix);
  if (value < max_prefix) {
    out[0] = static_cast<uint8_t>(high | value);
    return 1;
  }
  out[0] = static_cast<uint8_t>(high | max_prefix);
  value -= max_prefix;
  std::size_t n = 1;
  while (value >= 0x80) {
    out[n++] = static_cast<uint8_t>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out[n++] = static_cast<uint8_t>(value);
  return n;
}

// A decoded string literal (§5.2). `have` is false for a Huffman string too
// long for the scratch buffer: only its length is known (it was validated).
struct Str {
  std::string_view view;
  std::size_t len = 0;
  bool have = false;
  bool in_scratch = false;
};

const char* read_string(const uint8_t*& p, const uint8_t* end, char* buf,
                        std::size_t cap, Str& s) noexcept {
  if (p == end) return "truncated string literal (RFC 7541 §5.2)";
  const bool huffman_coded = *p & 0x80;
  uint32_t len = 0;
  if (const char* e = read_integer(p, end, 7, len)) return e;
  if (len > static_cast<std::size_t>(end - p)) {
    return "string literal longer than the rest of the block (RFC 7541 §5.2)";
  }
  const std::span<const uint8_t> in(p, len);
  p += len;
  if (!huffman_coded) {
    s = {{reinterpret_cast<const char*>(in.data()), in.size()}, len, true,
         false};
    return nullptr;
  }
  huffman::DecodeResult r = huffman::decode(in, {buf, cap});
  if (r.status == huffman::Status::Ok) {
    s = {{buf, r.length}, r.length, true, true};
    return nullptr;
  }
  if (r.status == huffman::Status::OutputTooSmall) {
    r = huffman::decoded_length(in);
    if (r.status == huffman::Status::Ok) {
      s = {{}, r.length, false, false};
      return nullptr;
    }
  }
  return huffman::describe(r.status);
}

// Representation of a literal (§6.2): prefix size and pattern.
struct LiteralForm {
  int prefix_bits;
  uint8_t pattern;
};

constexpr LiteralForm literal_form(Indexing mode) noexcept {
  switch (mode) {
    case Indexing::Incremental:
      return {6, 0x40};
    case Indexing::Without:
      return {4, 0x00};
    case Indexing::Never:
      return {4, 0x10};
  }
  return {4, 0x00};
}

// How a string will be written (§5.2).
struct StringPlan {
  bool huffman;
  std::size_t len;    // string octets on the wire
  std::size_t total;  // length prefix + string
};

StringPlan plan_string(std::string_view s, Coding coding) noexcept {
  StringPlan plan{false, s.size(), 0};
  if (coding != Coding::Raw) {
    const std::size_t hlen = huffman::encoded_length(s);
    if (coding == Coding::Huffman || hlen < s.size()) {
      plan.huffman = true;
      plan.len = hlen;
    }
  }
  plan.total = integer_length(plan.len, 7) + plan.len;
  return plan;
}

std::size_t write_string(std::string_view s, const StringPlan& plan,
                         uint8_t* out) noexcept {
  std::size_t n = write_integer(plan.len, 7, plan.huffman ? 0x80 : 0, out);
  if (plan.huffman) {
    huffman::encode(s, {out + n, plan.len});
  } else if (!s.empty()) {
    std::memcpy(out + n, s.data(), s.size());
  }
  return n + plan.len;
}

bool contains(std::span<const std::string_view> names, std::string_view n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

// Encoder policy lists (see hpack.h).
constexpr std::string_view kNeverIndexNames[] = {
    "authorization", "proxy-authorization", "cookie", "set-cookie"};
constexpr std::string_view kVolatileNames[] = {
    "content-length", "date",    "age",          "etag",
    "last-modified",  "expires", "content-range"};

bool within(const char* p, const char* base, std::size_t len) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto b = reinterpret_cast<std::uintptr_t>(base);
  return a >= b && a < b + len;
}

}  // namespace

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::Ok:
      return "OK";
    case Status::CompressionError:
      return "COMPRESSION_ERROR";
    case Status::HeaderListTooLarge:
      return "HEADER_LIST_TOO_LARGE";
  }
  return "UNKNOWN";
}

std::size_t integer_length(uint64_t value, int prefix_bits) noexcept {
  const uint64_t max_prefix = (uint64_t{1} << prefix_bits) - 1;
  if (value < max_prefix) return 1;
  value -= max_prefix;
  std::size_t n = 2;
  for (; value >= 0x80; value >>= 7) ++n;
  return n;
}

std::optional<std::size_t> encode_integer(uint64_t value, int prefix_bits,
                                          uint8_t first_octet_flags,
                                          std::span<uint8_t> out) noexcept {
  if (out.size() < integer_length(value, prefix_bits)) return std::nullopt;
  return write_integer(value, prefix_bits, first_octet_flags, out.data());
}

IntegerResult decode_integer(std::span<const uint8_t> in,
                             int prefix_bits) noexcept {
  const uint8_t* p = in.data();
  uint32_t v = 0;
  if (const char* e = read_integer(p, p + in.size(), prefix_bits, v)) {
    return {Status::CompressionError, 0, 0, e};
  }
  return {Status::Ok, v, static_cast<std::size_t>(p - in.data()), ""};
}

Field static_entry(std::size_t index) noexcept {
  return kStaticTable[index - 1];
}

// ---------------------------------------------------------------------------
// DynamicTable
//
// Entry octets (name then value) are contiguous in a ring of 2C octets, C =
// capacity. Live entries occupy [tail, head) or, once wrapped, [tail, w) and
// [0, head), w being where the older run ended. An entry of L octets always
// fits: the live octets D satisfy D + L <= C - 32 after eviction (§4.4), so
// unwrapped, either 2C - head >= L or tail = head - D > C > L; wrapped, the
// gap tail - head = 2C - D - (2C - w) > C - D > L since the wasted end
// 2C - w is smaller than an entry (< C).

DynamicTable::DynamicTable(std::size_t capacity) {
  // Storage comes with the first insert: a connection whose peer never
  // indexes a field (or never sends a header block) holds none.
  capacity_ = capacity;
  max_size_ = capacity;
}

DynamicTable::~DynamicTable() = default;

const DynamicTable::Slot& DynamicTable::slot(std::size_t i) const noexcept {
  return slots_[(first_ + count_ - 1 - i) % slot_cap_];
}

Field DynamicTable::entry(std::size_t i) const noexcept {
  const Slot& s = slot(i);
  const char* p = bytes_.get() + s.offset;
  return {{p, s.name_len}, {p + s.name_len, s.value_len}};
}

void DynamicTable::set_max_size(std::size_t n) noexcept {
  ++version_;
  max_size_ = n;
  while (size_ > max_size_) evict_oldest();
}

void DynamicTable::clear() noexcept {
  ++version_;
  first_ = 0;
  count_ = 0;
  size_ = 0;
  head_ = 0;
  wrapped_ = false;
}

void DynamicTable::evict_oldest() noexcept {
  const Slot& s = slots_[first_];
  size_ -= entry_size(s.name_len, s.value_len);
  first_ = (first_ + 1) % slot_cap_;
  --count_;
  if (count_ == 0) {
    head_ = 0;
    wrapped_ = false;
  } else if (wrapped_ && inserted_ - count_ >= wrap_seq_) {
    wrapped_ = false;  // the older run is gone
  }
}

std::size_t DynamicTable::allocate(std::size_t len) noexcept {
  std::size_t off = head_;
  if (!wrapped_ && byte_cap_ - head_ < len) {
    wrapped_ = true;
    wrap_seq_ = inserted_;
    off = 0;
  }
  head_ = off + len;
  return off;
}

void DynamicTable::insert(std::string_view name, std::string_view value) {
  std::string value_copy;
  if (within(value.data(), bytes_.get(), byte_cap_)) {
    value_copy.assign(value);
    value = value_copy;
  }
  const std::size_t esize = entry_size(name.size(), value.size());
  ++version_;
  if (esize > max_size_) {
    clear();  // §4.4: not an error; the table ends up empty
    return;
  }
  while (size_ + esize > max_size_) evict_oldest();
  std::string name_copy;
  if (size_ + esize > allocated_) {
    // Growing moves the entries: a name in the table (indexed, or an
    // entry just evicted) is copied aside first. A few times per table.
    if (within(name.data(), bytes_.get(), byte_cap_)) {
      name_copy.assign(name);
      name = name_copy;
    }
    reallocate(std::min(capacity_, std::max({size_ + esize, 2 * allocated_, kFirstAllocation})));
  }
  const std::size_t off = allocate(name.size() + value.size());
  char* dst = bytes_.get() + off;
  // memmove: `name` may be an evicted entry's octets under `dst`.
  if (!name.empty()) std::memmove(dst, name.data(), name.size());
  if (!value.empty()) std::memcpy(dst + name.size(), value.data(), value.size());
  slots_[(first_ + count_) % slot_cap_] = {off, name.size(), value.size()};
  ++count_;
  ++inserted_;
  size_ += esize;
}

void DynamicTable::reserve(std::size_t capacity) {
  capacity_ = std::max(capacity_, capacity);  // storage grows with the entries
}

void DynamicTable::reallocate(std::size_t allocated) {
  const std::size_t byte_cap = 2 * allocated;
  const std::size_t slot_cap = allocated / kEntryOverhead + 1;
  auto bytes = std::make_unique_for_overwrite<char[]>(std::max<std::size_t>(byte_cap, 1));
  auto slots = std::make_unique_for_overwrite<Slot[]>(slot_cap);
  std::size_t pos = 0;
  for (std::size_t k = 0; k < count_; ++k) {  // oldest first, packed at 0
    const Slot& s = slots_[(first_ + k) % slot_cap_];
    const std::size_t len = s.name_len + s.value_len;
    if (len) std::memcpy(bytes.get() + pos, bytes_.get() + s.offset, len);
    slots[k] = {pos, s.name_len, s.value_len};
    pos += len;
  }
  bytes_ = std::move(bytes);
  slots_ = std::move(slots);
  allocated_ = allocated;
  byte_cap_ = byte_cap;
  slot_cap_ = slot_cap;
  first_ = 0;
  head_ = pos;
  wrapped_ = false;
}

// ---------------------------------------------------------------------------
// Decoder

namespace {

// Huffman-decoded strings are needed only while decode_block() delivers
// their field (the views' lifetime, hpack.h), so the decoders of a thread
// share one buffer, as large as the largest of them needs: a connection
// holds none, and a new one allocates none.
char* thread_scratch(std::size_t cap) {
  thread_local std::unique_ptr<char[]> buffer;
  thread_local std::size_t size = 0;
  if (size < cap || !buffer) {
    size = std::max<std::size_t>(cap, 1);
    buffer = std::make_unique_for_overwrite<char[]>(size);
  }
  return buffer.get();
}

}  // namespace

Decoder::Decoder(const Limits& limits)
    : limits_(limits),
      table_(limits.max_table_size),
      scratch_cap_(std::max(limits.max_field_size, limits.max_table_size)),
      limit_(limits.max_table_size) {}

Decoder::~Decoder() = default;

void Decoder::set_max_table_size_limit(std::size_t n) {
  ++limit_changes_;
  table_.reserve(n);
  scratch_cap_ = std::max(scratch_cap_, n);
  limit_ = n;
  if (table_.max_size() > n) {
    required_max_ = expect_update_ ? std::min(required_max_, n) : n;
    expect_update_ = true;
    table_.set_max_size(n);
  }
}

Status Decoder::decode_block(std::span<const uint8_t> block, FieldSink sink) {
  char* const scratch = thread_scratch(scratch_cap_);
  const uint8_t* p = block.data();
  const uint8_t* const end = p + block.size();
  std::size_t fields = 0;
  std::size_t list_size = 0;
  bool seen_field = false;
  Status result = Status::Ok;
  detail_ = "";

  const auto fail = [this](const char* detail) {
    detail_ = detail;
    return Status::CompressionError;
  };
  const auto lookup = [this](uint32_t index, Field& f) -> const char* {
    if (index == 0) return "indexed field with index 0 (RFC 7541 §6.1)";
    if (index <= kStaticTableLength) {
      f = kStaticTable[index - 1];
      return nullptr;
    }
    const std::size_t i = index - kStaticTableLength - 1;
    if (i >= table_.entry_count()) {
      return "index past the end of the dynamic table (RFC 7541 §2.3.3)";
    }
    f = table_.entry(i);
    return nullptr;
  };
  // Counts every field, even past a limit (so the work stays bounded by the
  // block size and the outcome does not depend on where the limit falls),
  // but delivers only while within the limits.
  const auto deliver = [&](std::string_view name, std::string_view value,
                           std::size_t field_len) {
    ++fields;
    list_size += field_len + kEntryOverhead;
    if (result != Status::Ok) return;
    const char* why = nullptr;
    if (fields > limits_.max_fields) {
      why = "more header fields than the limit";
    } else if (field_len > limits_.max_field_size) {
      why = "header field larger than the limit";
    } else if (list_size > limits_.max_header_list_size) {
      why = "header list larger than the limit (RFC 9113 §6.5.2)";
    }
    if (why) {
      result = Status::HeaderListTooLarge;
      detail_ = why;
      return;
    }
    sink.call(sink.obj, name, value);
  };

  while (p < end) {
    const uint8_t b = *p;
    if ((b & 0xe0) == 0x20) {  // §6.3 dynamic table size update
      if (seen_field) {
        return fail("dynamic table size update after a field (RFC 7541 §4.2)");
      }
      uint32_t n = 0;
      if (const char* e = read_integer(p, end, 5, n)) return fail(e);
      if (n > limit_) {
        return fail(
            "dynamic table size update above SETTINGS_HEADER_TABLE_SIZE "
            "(RFC 7541 §6.3)");
      }
      if (expect_update_) {
        if (n > required_max_) {
          return fail(
              "dynamic table size update above the smallest "
              "SETTINGS_HEADER_TABLE_SIZE since the last block (RFC 7541 "
              "§4.2)");
        }
        expect_update_ = false;
      }
      table_.set_max_size(n);
      continue;
    }
    if (expect_update_) {
      return fail("missing dynamic table size update (RFC 7541 §4.2)");
    }
    seen_field = true;

    if (b & 0x80) {  // §6.1 indexed field
      uint32_t index = 0;
      Field f;
      if (const char* e = read_integer(p, end, 7, index)) return fail(e);
      if (const char* e = lookup(index, f)) return fail(e);
      deliver(f.name, f.value, f.name.size() + f.value.size());
      continue;
    }

    // §6.2 literal: 01 incremental (6-bit prefix), 0000 without indexing,
    // 0001 never indexed (4-bit prefix).
    const bool incremental = b & 0x40;
    uint32_t index = 0;
    if (const char* e = read_integer(p, end, incremental ? 6 : 4, index)) {
      return fail(e);
    }
    Str name;
    std::size_t used = 0;
    if (index != 0) {
      Field f;
      if (const char* e = lookup(index, f)) return fail(e);
      name = {f.name, f.name.size(), true, false};
    } else {
      if (const char* e = read_string(p, end, scratch, scratch_cap_, name)) {
        return fail(e);
      }
      if (name.in_scratch) used = name.len;
    }
    Str value;
    if (const char* e = read_string(p, end, scratch + used,
                                    scratch_cap_ - used, value)) {
      return fail(e);
    }
    // A string that did not fit the scratch buffer makes the field longer
    // than scratch_cap_ >= max_field_size: deliver() refuses it.
    deliver(name.view, value.view, name.len + value.len);
    if (incremental) {
      if (name.have && value.have) {
        table_.insert(name.view, value.view);
      } else {
        // Longer than scratch_cap_ >= capacity >= max_size(): §4.4 says
        // adding it empties the table; its octets are not needed.
        table_.clear();
      }
    }
  }
  if (expect_update_) {
    return fail("missing dynamic table size update (RFC 7541 §4.2)");
  }
  return result;
}

// ---------------------------------------------------------------------------
// Encoder

Encoder::Encoder(std::size_t max_table_size)
    : table_(max_table_size), cap_(max_table_size) {
  const std::size_t initial = std::min(max_table_size, kDefaultTableSize);
  table_.set_max_size(initial);
  if (initial != kDefaultTableSize) {
    pending_ = true;
    pending_min_ = pending_final_ = initial;
  }
}

Encoder::~Encoder() = default;

void Encoder::set_peer_max_table_size(std::size_t n) noexcept {
  ++peer_size_changes_;
  const std::size_t target = std::min(n, cap_);
  if (!pending_) {
    if (target == table_.max_size()) return;
    pending_ = true;
    pending_min_ = target;
  } else {
    pending_min_ = std::min(pending_min_, target);
  }
  pending_final_ = target;
}

std::size_t Encoder::max_encoded_size(
    std::span<const Header> fields) const noexcept {
  std::size_t n = pending_ ? 2 * integer_length(cap_, 5) : 0;
  const std::size_t index_len =
      integer_length(kStaticTableLength + cap_ / kEntryOverhead + 1, 4);
  for (const Header& h : fields) {
    n += index_len + integer_length(h.name.size(), 7) + h.name.size() +
         integer_length(h.value.size(), 7) + h.value.size();
  }
  return n;
}

std::optional<std::size_t> Encoder::encode(std::span<const Header> fields,
                                           std::span<uint8_t> out) {
  if (out.size() < max_encoded_size(fields)) return std::nullopt;
  uint8_t* const p = out.data();
  std::size_t n = 0;
  if (pending_) {  // §4.2: at the start of the first block after the change
    if (pending_min_ < pending_final_) {
      n += write_integer(pending_min_, 5, 0x20, p + n);
      table_.set_max_size(pending_min_);
    }
    n += write_integer(pending_final_, 5, 0x20, p + n);
    table_.set_max_size(pending_final_);
    pending_ = false;
  }
  for (const Header& h : fields) n += encode_field(h, p + n);
  return n;
}

namespace {

// Appendix A's entries by name, for the encoder: the entries that share a
// name are adjacent, so a name is a run of indexes; the runs are grouped
// by name length, so a lookup compares the few names of that length
// instead of scanning 61 entries. Computed from kStaticTable at compile
// time.
struct NameRun {
  uint8_t first = 0;  // 0-based index into kStaticTable
  uint8_t count = 0;
};
constexpr std::size_t kLongestStaticName = 27;  // access-control-allow-origin
constexpr std::size_t kMaxRunsPerLength = 8;

struct StaticNames {
  NameRun runs[kLongestStaticName + 1][kMaxRunsPerLength];
  uint8_t run_count[kLongestStaticName + 1];
};

constexpr StaticNames build_static_names() {
  StaticNames t{};
  for (std::size_t i = 0; i < kStaticTableLength; ++i) {
    const std::string_view name = kStaticTable[i].name;
    if (name.size() > kLongestStaticName) throw "a static name is longer than expected";
    const std::size_t len = name.size();
    uint8_t& n = t.run_count[len];
    if (n != 0 && kStaticTable[t.runs[len][n - 1].first].name == name) {
      if (t.runs[len][n - 1].first + t.runs[len][n - 1].count != i) throw "a name's entries are not adjacent";
      ++t.runs[len][n - 1].count;
      continue;
    }
    for (uint8_t k = 0; k < n; ++k) {
      if (kStaticTable[t.runs[len][k].first].name == name) throw "a name's entries are not adjacent";
    }
    if (n == kMaxRunsPerLength) throw "too many static names of one length";
    t.runs[len][n++] = {static_cast<uint8_t>(i), 1};
  }
  return t;
}

constexpr StaticNames kStaticNames = build_static_names();

// The run of static entries named `name`, or null.
const NameRun* static_name(std::string_view name) noexcept {
  if (name.size() > kLongestStaticName) return nullptr;
  const std::size_t len = name.size();
  for (uint8_t k = 0; k < kStaticNames.run_count[len]; ++k) {
    const NameRun& run = kStaticNames.runs[len][k];
    if (std::memcmp(kStaticTable[run.first].name.data(), name.data(), len) == 0) return &run;
  }
  return nullptr;
}

}  // namespace

std::size_t Encoder::find_field(std::string_view name,
                                std::string_view value) const {
  if (const NameRun* run = static_name(name)) {
    for (std::size_t i = run->first; i < run->first + run->count; ++i) {
      if (kStaticTable[i].value == value) return i + 1;
    }
  }
  for (std::size_t i = 0; i < table_.entry_count(); ++i) {
    const Field f = table_.entry(i);
    if (f.name == name && f.value == value) return kStaticTableLength + 1 + i;
  }
  return 0;
}

std::size_t Encoder::find_name(std::string_view name) const {
  if (const NameRun* run = static_name(name)) return run->first + std::size_t{1};
  for (std::size_t i = 0; i < table_.entry_count(); ++i) {
    if (table_.entry(i).name == name) return kStaticTableLength + 1 + i;
  }
  return 0;
}

// Precondition: out has room for max_encoded_size({h}) octets.
std::size_t Encoder::encode_field(const Header& h, uint8_t* out) {
  Indexing mode = Indexing::Incremental;
  if (h.never_index || contains(kNeverIndexNames, h.name)) {
    mode = Indexing::Never;
  } else {
    if (const std::size_t index = find_field(h.name, h.value)) {
      return write_integer(index, 7, 0x80, out);
    }
    if (contains(kVolatileNames, h.name) ||
        entry_size(h.name.size(), h.value.size()) > table_.max_size() / 2) {
      mode = Indexing::Without;
    }
  }
  const LiteralForm form = literal_form(mode);
  const std::size_t name_index = find_name(h.name);
  std::size_t n = write_integer(name_index, form.prefix_bits, form.pattern, out);
  if (name_index == 0) {
    n += write_string(h.name, plan_string(h.name, Coding::Shortest), out + n);
  }
  n += write_string(h.value, plan_string(h.value, Coding::Shortest), out + n);
  if (mode == Indexing::Incremental) table_.insert(h.name, h.value);
  return n;
}

std::optional<std::size_t> Encoder::encode_indexed(
    std::size_t index, std::span<uint8_t> out) const {
  if (index == 0 || index > kStaticTableLength + table_.entry_count()) {
    return std::nullopt;
  }
  return encode_integer(index, 7, 0x80, out);
}

std::optional<std::size_t> Encoder::encode_literal(Indexing mode,
                                                   std::size_t name_index,
                                                   std::string_view value,
                                                   Coding coding,
                                                   std::span<uint8_t> out) {
  if (name_index == 0 ||
      name_index > kStaticTableLength + table_.entry_count()) {
    return std::nullopt;
  }
  const LiteralForm form = literal_form(mode);
  const StringPlan vplan = plan_string(value, coding);
  if (out.size() < integer_length(name_index, form.prefix_bits) + vplan.total) {
    return std::nullopt;
  }
  std::size_t n =
      write_integer(name_index, form.prefix_bits, form.pattern, out.data());
  n += write_string(value, vplan, out.data() + n);
  if (mode == Indexing::Incremental) {
    const std::string_view name =
        name_index <= kStaticTableLength
            ? kStaticTable[name_index - 1].name
            : table_.entry(name_index - kStaticTableLength - 1).name;
    table_.insert(name, value);
  }
  return n;
}

std::optional<std::size_t> Encoder::encode_literal(Indexing mode,
                                                   std::string_view name,
                                                   std::string_view value,
                                                   Coding coding,
                                                   std::span<uint8_t> out) {
  const LiteralForm form = literal_form(mode);
  const StringPlan nplan = plan_string(name, coding);
  const StringPlan vplan = plan_string(value, coding);
  if (out.size() < 1 + nplan.total + vplan.total) return std::nullopt;
  std::size_t n = write_integer(0, form.prefix_bits, form.pattern, out.data());
  n += write_string(name, nplan, out.data() + n);
  n += write_string(value, vplan, out.data() + n);
  if (mode == Indexing::Incremental) table_.insert(name, value);
  return n;
}

std::optional<std::size_t> Encoder::encode_table_size_update(
    std::size_t size, std::span<uint8_t> out) {
  if (size > table_.capacity()) return std::nullopt;
  const std::optional<std::size_t> n = encode_integer(size, 5, 0x20, out);
  if (n) table_.set_max_size(size);
  return n;
}

}  // namespace h2lab::proto::hpack
