// HPACK header compression for HTTP/2 (RFC 7541): integer and string
// primitives (§5), the static table (Appendix A), the dynamic table (§2.3.2,
// §4), a zero-copy Decoder and an Encoder for responses.
//
// No exceptions, no I/O. A dynamic table allocates with its first entry and
// grows (a few times at most, up to its limit) as entries need room; the
// decoder's Huffman scratch buffer is one per thread, shared by its
// decoders. Otherwise decoding and encoding a header block allocate
// nothing. Objects are not thread-safe: one Decoder and one Encoder per
// connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

namespace h2lab::proto::hpack {

// ---------------------------------------------------------------------------
// Status

// The outcome of decoding a header block.
//   Ok                  every field was delivered to the sink.
//   CompressionError    the block is malformed (or breaks a §4.2/§6.3 rule):
//                       a CONNECTION error, GOAWAY(COMPRESSION_ERROR), RFC
//                       9113 §4.3. The decoder state is unspecified
//                       afterwards; do not use it again.
//   HeaderListTooLarge  the block was well-formed but exceeded a Limits value
//                       (header-list size, field count or single-field size).
//                       The whole block was still decoded, so the dynamic
//                       table is in sync with the peer and the connection can
//                       go on; only the fields up to the limit were delivered.
//                       A STREAM error: the connection answers 431 (RFC 6585)
//                       or RST_STREAM, and must discard the partial list.
enum class Status : uint8_t { Ok, CompressionError, HeaderListTooLarge };

// "OK", "COMPRESSION_ERROR", "HEADER_LIST_TOO_LARGE" (static strings).
const char* status_name(Status s) noexcept;

// A header field as seen by the codec: two octet strings (§1.3). HPACK does
// not validate HTTP semantics (lowercase names, no empty names, pseudo-header
// order, RFC 9113 §8.2); that is the connection's job.
struct Field {
  std::string_view name;
  std::string_view value;
};

// ---------------------------------------------------------------------------
// Primitives (§5.1, §5.2)

// Octets that encode_integer() writes for `value` with an N-bit prefix.
std::size_t integer_length(uint64_t value, int prefix_bits) noexcept;

// §5.1: writes `value` with a `prefix_bits`-bit prefix (1..8); the bits of
// `first_octet_flags` above the prefix are ORed into the first octet (e.g.
// 0x80 for an indexed field). Returns the octets written, or nullopt (nothing
// written) when out.size() < integer_length(value, prefix_bits).
std::optional<std::size_t> encode_integer(uint64_t value, int prefix_bits,
                                          uint8_t first_octet_flags,
                                          std::span<uint8_t> out) noexcept;

struct IntegerResult {
  Status status;          // Ok or CompressionError
  uint32_t value;         // valid when Ok
  std::size_t consumed;   // octets consumed when Ok
  const char* detail;     // static error text when not Ok, "" when Ok
};

// §5.1: decodes an integer with a `prefix_bits`-bit prefix (1..8) from the
// start of `in` (the bits above the prefix in in[0] are ignored). Errors:
// empty or truncated input, a value above 2^32-1 ("overflow"), more than five
// continuation octets (no 32-bit value needs more; this also rejects endless
// zero-padded encodings).
IntegerResult decode_integer(std::span<const uint8_t> in,
                             int prefix_bits) noexcept;

// ---------------------------------------------------------------------------
// Tables (§2.3)

inline constexpr std::size_t kStaticTableLength = 61;  // Appendix A
inline constexpr std::size_t kEntryOverhead = 32;      // §4.1
inline constexpr std::size_t kDefaultTableSize = 4096; // RFC 9113 §6.5.2

// Appendix A entry `index`, 1 <= index <= kStaticTableLength (precondition).
// The views refer to static storage.
Field static_entry(std::size_t index) noexcept;

// §4.1: the size of an entry: name + value + 32.
constexpr std::size_t entry_size(std::size_t name_len,
                                 std::size_t value_len) noexcept {
  return name_len + value_len + kEntryOverhead;
}

// The dynamic table (§2.3.2, §4): a FIFO of entries with size accounting.
// Entries live in a ring of 2 x its allocation octets (so every entry is
// contiguous and a view can point at it) plus a ring of entry slots;
// evicting never allocates or moves entries, and inserting does only when
// the storage grows (reserve()).
class DynamicTable {
 public:
  // Allocates for a maximum size of up to `capacity` octets (§4.1 units);
  // max_size() starts at `capacity`.
  explicit DynamicTable(std::size_t capacity);
  DynamicTable(DynamicTable&&) noexcept = default;
  DynamicTable& operator=(DynamicTable&&) noexcept = default;
  ~DynamicTable();

  std::size_t size() const noexcept { return size_; }          // §4.1
  std::size_t max_size() const noexcept { return max_size_; }  // §4.2
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t entry_count() const noexcept { return count_; }
  // Entries ever inserted: unchanged across an encode() means the table is
  // exactly as it was, so the same header list would encode the same again.
  uint64_t insert_count() const noexcept { return inserted_; }
  // Changes on every call that may change what an index refers to or what an
  // insertion would do: insert() (even one that only empties the table),
  // set_max_size() (even to the same size), clear(). Equal versions mean the
  // table is exactly as it was — the key for replaying a decoded or encoded
  // block (a block that left the version unchanged decodes or encodes the
  // same again, and again leaves it unchanged).
  uint64_t version() const noexcept { return version_; }

  // Entry i, 0 = newest (HPACK index 62 + i); precondition i < entry_count().
  // The views are valid until the next insert(), set_max_size(), clear() or
  // reserve().
  Field entry(std::size_t i) const noexcept;

  // §4.3: sets the maximum size and evicts from the oldest end until size()
  // fits. Precondition: n <= capacity().
  void set_max_size(std::size_t n) noexcept;

  // §4.4: evicts until the new entry fits, then adds it as entry 0. An entry
  // larger than max_size() empties the table and is not added. `name` may
  // point into this table (an indexed name, even one this insertion evicts);
  // so may `value` (copied aside first, which allocates: rare, encoder-only).
  void insert(std::string_view name, std::string_view value);

  // Evicts every entry (max_size() is unchanged).
  void clear() noexcept;

  // Grows capacity() to at least `capacity`. Never shrinks.
  // Storage follows the entries, not capacity(): none before the first
  // insert() (an unused table holds no memory), then kFirstAllocation
  // octets' worth, doubled (up to capacity()) when an insertion would not
  // fit — a connection whose peer indexes a few fields holds a small
  // table, and its allocations stay small enough for the allocator's
  // per-thread cache. Growing moves the entries (invalidating views).
  void reserve(std::size_t capacity);
  static constexpr std::size_t kFirstAllocation = 512;

 private:
  struct Slot {
    std::size_t offset;
    std::size_t name_len;
    std::size_t value_len;
  };
  void evict_oldest() noexcept;
  void reallocate(std::size_t allocated);
  std::size_t allocate(std::size_t len) noexcept;
  const Slot& slot(std::size_t i) const noexcept;

  std::unique_ptr<char[]> bytes_;  // 2 * allocated_ octets
  std::unique_ptr<Slot[]> slots_;  // allocated_ / 32 + 1 slots
  std::size_t capacity_ = 0;   // what max_size() may be set to
  std::size_t allocated_ = 0;  // what the storage holds: size() <= allocated_ <= capacity_
  std::size_t byte_cap_ = 0;
  std::size_t slot_cap_ = 0;
  std::size_t first_ = 0;   // slot of the oldest entry
  std::size_t count_ = 0;
  std::size_t size_ = 0;
  std::size_t max_size_ = 0;
  std::size_t head_ = 0;      // next free octet
  bool wrapped_ = false;      // entries are in [tail, w) + [0, head_)
  uint64_t inserted_ = 0;     // entries ever inserted
  uint64_t version_ = 0;      // mutating calls ever made
  uint64_t wrap_seq_ = 0;     // insertion number of the first entry at 0
};

// ---------------------------------------------------------------------------
// Decoder

// Limits applied by the Decoder (defaults from /work/shared/HARDENING.md).
struct Limits {
  // Decoded header-list size, counted as RFC 9113 §6.5.2 does: the sum of
  // name + value + 32 over the fields (cookie crumbs each count). Bounds the
  // HPACK bomb (CVE-2016-6581): a 1-octet indexed reference to a 4 KiB entry
  // costs the peer 1 octet and us 4 KiB.
  std::size_t max_header_list_size = 64 * 1024;  // nghttpx
  // Fields per block (nginx max_headers, Envoy 100): bounds per-field work
  // in the layers above, e.g. the 2026 many-tiny-references variant.
  std::size_t max_fields = 100;
  // Decoded name + value of one field (nginx 8 KiB).
  std::size_t max_field_size = 8 * 1024;
  // SETTINGS_HEADER_TABLE_SIZE in effect when the decoder is created: the
  // initial maximum dynamic table size and the limit for §6.3 updates. Leave
  // it at 4096 (the protocol default) and call set_max_table_size_limit()
  // when a SETTINGS frame that changes it is acknowledged.
  std::size_t max_table_size = kDefaultTableSize;
};

// Decodes complete header blocks (§3): the caller concatenates HEADERS /
// PUSH_PROMISE and CONTINUATION fragments first (and bounds that size).
//
// Which limit violation is which status:
//   * Malformed representations are CompressionError: index 0 or past the
//     tables, truncated or overflowing integers, strings longer than the rest
//     of the block, Huffman errors (EOS, bad padding), a size update after a
//     field or above our SETTINGS value, a missing required size update.
//   * Policy limits are HeaderListTooLarge (stream scope): more than
//     max_fields fields, a list over max_header_list_size, and also a single
//     field over max_field_size. The last is a stream error because the
//     decoder can always stay in sync without buffering such a field: a
//     Huffman string that does not fit the scratch buffer (sized
//     max(max_field_size, table capacity)) is only validated, and an entry
//     that large cannot fit in the dynamic table, so inserting it just
//     empties the table (§4.4) — no memory grows with the field.
class Decoder {
 public:
  explicit Decoder(const Limits& limits = Limits{});
  Decoder(Decoder&&) noexcept = default;
  Decoder& operator=(Decoder&&) noexcept = default;
  ~Decoder();

  // Decodes one complete header block and calls on_field(name, value) for
  // each field, in order (§2.1), while decode() runs. `on_field` is any
  // callable accepting (std::string_view, std::string_view); it is not
  // copied and nothing is allocated to call it.
  //
  // Lifetime of the views: valid ONLY during that on_field call. They point
  // into `block` (raw literals), the static table, the dynamic table, or a
  // scratch buffer (Huffman-decoded literals; one per thread, shared by the
  // thread's decoders), any of which the next field may overwrite or evict.
  // Copy what you keep. So `on_field` must not call decode() of any Decoder
  // on this thread.
  //
  // Returns Ok, HeaderListTooLarge (the fields delivered so far are a prefix
  // of the list and must be discarded; the decoder stays usable), or
  // CompressionError (connection error; the decoder must not be used again).
  // error_detail() describes a non-Ok result. An exception thrown by
  // on_field propagates and leaves the decoder unusable.
  template <class Sink>
  Status decode(std::span<const uint8_t> block, Sink&& on_field) {
    using S = std::remove_reference_t<Sink>;
    static_assert(std::is_invocable_v<S&, std::string_view, std::string_view>,
                  "on_field must accept (std::string_view, std::string_view)");
    FieldSink sink{
        const_cast<void*>(static_cast<const void*>(std::addressof(on_field))),
        [](void* obj, std::string_view name, std::string_view value) {
          (*static_cast<S*>(obj))(name, value);
        }};
    return decode_block(block, sink);
  }

  // A static, NUL-terminated description of the last non-Ok result of
  // decode() (e.g. "indexed field with index 0 (RFC 7541 §6.1)"), suitable
  // for GOAWAY debug data; "" after an Ok result.
  const char* error_detail() const noexcept { return detail_; }

  // Our SETTINGS_HEADER_TABLE_SIZE changed and the peer acknowledged it:
  // dynamic table size updates (§6.3) above `n` are errors from now on. If
  // `n` is below the current maximum size, the table shrinks at once and the
  // next block MUST begin with a size update <= the smallest limit set since
  // the last block (§4.2), as nghttp2 does. Raising the limit above the
  // current capacity lets the table grow to n (and this thread's scratch
  // buffer to n octets at the next block).
  void set_max_table_size_limit(std::size_t n);
  std::size_t max_table_size_limit() const noexcept { return limit_; }

  // Changes whenever anything that decode() depends on besides the block may
  // have changed: the dynamic table (DynamicTable::version()) and the size
  // update rules (set_max_table_size_limit()). A block that decoded Ok with
  // the version unchanged decodes to the same fields as long as the version
  // stays what it was: what the connection's request cache is keyed on.
  uint64_t state_version() const noexcept { return table_.version() + limit_changes_; }

  const DynamicTable& table() const noexcept { return table_; }
  const Limits& limits() const noexcept { return limits_; }

 private:
  struct FieldSink {
    void* obj;
    void (*call)(void*, std::string_view, std::string_view);
  };
  Status decode_block(std::span<const uint8_t> block, FieldSink sink);

  Limits limits_;
  DynamicTable table_;
  std::size_t scratch_cap_ = 0;  // the scratch buffer this decoder needs
  std::size_t limit_ = 0;            // SETTINGS_HEADER_TABLE_SIZE in effect
  bool expect_update_ = false;       // §4.2: next block must start with one
  std::size_t required_max_ = 0;     // ... whose value must be <= this
  uint64_t limit_changes_ = 0;       // set_max_table_size_limit() calls
  const char* detail_ = "";
};

// ---------------------------------------------------------------------------
// Encoder

// A field to encode. `never_index` asks for the never-indexed literal
// (§6.2.3, §7.1.3), which intermediaries must preserve.
struct Header {
  std::string_view name;   // lowercase (RFC 9113 §8.2.1), not validated
  std::string_view value;
  bool never_index = false;
};

// Literal representations (§6.2).
enum class Indexing : uint8_t {
  Incremental,  // §6.2.1, 01xxxxxx: adds the field to the dynamic table
  Without,      // §6.2.2, 0000xxxx
  Never,        // §6.2.3, 0001xxxx
};

// How to write a string literal (§5.2).
enum class Coding : uint8_t {
  Raw,       // H = 0
  Huffman,   // H = 1, always
  Shortest,  // Huffman only when strictly shorter than raw
};

// Encodes header blocks for one connection direction (our responses).
//
// Indexing policy of encode(), in order:
//   1. Never indexed (§6.2.3), name still taken from a table when possible:
//      Header::never_index, and the credential fields authorization,
//      proxy-authorization, cookie and set-cookie (§7.1.3).
//   2. A full (name, value) match in the static table, then the dynamic
//      table: an indexed field (§6.1), e.g. ":status: 200" -> 0x88.
//   3. Without indexing (§6.2.2) for fields whose value changes on every
//      response, which would only churn the table: content-length, date,
//      age, etag, last-modified, expires, content-range; and for any field
//      whose entry would take more than half of the table (it would evict
//      most of what is there), so with a table size of 0 nothing is indexed.
//   4. Otherwise with incremental indexing (§6.2.1), so a repeated field
//      (content-type, server, cache-control, vary, ...) costs one octet from
//      the second response on.
//   Names use the static table index, else the dynamic one, else a literal.
//   Every string is Huffman-coded only when that is strictly shorter.
class Encoder {
 public:
  // `max_table_size`: the largest dynamic table this encoder will use,
  // whatever the peer allows (memory bound). The peer's decoder starts at
  // 4096 (RFC 9113 §6.5.2); if max_table_size is smaller, the first block of
  // encode() starts with a size update (§6.3) announcing it.
  explicit Encoder(std::size_t max_table_size = kDefaultTableSize);
  Encoder(Encoder&&) noexcept = default;
  Encoder& operator=(Encoder&&) noexcept = default;
  ~Encoder();

  // The peer's SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). The table size
  // becomes min(n, max_table_size); the next encode() begins with the size
  // update(s) (§4.2: the smallest size since the last block first if it was
  // smaller, then the final one). Does not allocate.
  void set_peer_max_table_size(std::size_t n) noexcept;

  // An upper bound of what encode(fields) writes right now (pending size
  // updates included). Reserve this much.
  std::size_t max_encoded_size(std::span<const Header> fields) const noexcept;

  // Encodes one complete header block following the policy above into
  // `out`. Returns the octets written, or nullopt if out.size() <
  // max_encoded_size(fields): then nothing is written and the encoder state
  // (dynamic table, pending updates) is unchanged. Does not allocate.
  std::optional<std::size_t> encode(std::span<const Header> fields,
                                    std::span<uint8_t> out);

  // Low-level representations, e.g. to reproduce the RFC 7541 Appendix C
  // examples byte for byte. Each writes one representation at out[0] and
  // returns the octets written, or nullopt when `out` is too small or an
  // index/size is invalid — then nothing is written and nothing changes.
  // They do not emit pending size updates (encode() does).

  // §6.1. Valid indexes: 1 .. kStaticTableLength + table().entry_count().
  std::optional<std::size_t> encode_indexed(std::size_t index,
                                            std::span<uint8_t> out) const;
  // §6.2, name given by `name_index` (static or dynamic). With
  // Indexing::Incremental the field is added to the dynamic table.
  std::optional<std::size_t> encode_literal(Indexing mode,
                                            std::size_t name_index,
                                            std::string_view value,
                                            Coding coding,
                                            std::span<uint8_t> out);
  // §6.2, new name (index 0); `coding` applies to the name and the value.
  std::optional<std::size_t> encode_literal(Indexing mode,
                                            std::string_view name,
                                            std::string_view value,
                                            Coding coding,
                                            std::span<uint8_t> out);
  // §6.3: writes a size update and applies it to our table. Valid sizes:
  // <= the table capacity (max_table_size of the constructor). The caller is
  // responsible for §4.2 (at most the peer's setting, start of a block).
  std::optional<std::size_t> encode_table_size_update(std::size_t size,
                                                      std::span<uint8_t> out);

  const DynamicTable& table() const noexcept { return table_; }

  // Changes whenever anything that encode() depends on besides the fields
  // may have changed: the dynamic table and pending size updates. A block
  // whose encoding left the version unchanged is what encode() would write
  // again for the same fields while the version stays the same.
  uint64_t state_version() const noexcept { return table_.version() + peer_size_changes_; }

 private:
  std::size_t encode_field(const Header& h, uint8_t* out);
  std::size_t find_field(std::string_view name, std::string_view value) const;
  std::size_t find_name(std::string_view name) const;

  DynamicTable table_;
  std::size_t cap_;
  bool pending_ = false;            // size update(s) owed to the peer
  std::size_t pending_min_ = 0;
  std::size_t pending_final_ = 0;
  uint64_t peer_size_changes_ = 0;  // set_peer_max_table_size() calls
};

}  // namespace h2lab::proto::hpack
