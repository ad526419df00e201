// libnghttp2's HPACK inflater (the field's reference decoder) behind a small
// value interface, as the oracle of the differential tests: what it decodes,
// h2lab's decoder must decode; what it refuses, h2lab's must refuse.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace h2lab::testing {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class Nghttp2Inflater {
 public:
  Nghttp2Inflater() { nghttp2_hd_inflate_new(&inflater_); }
  ~Nghttp2Inflater() { nghttp2_hd_inflate_del(inflater_); }
  Nghttp2Inflater(const Nghttp2Inflater&) = delete;
  Nghttp2Inflater& operator=(const Nghttp2Inflater&) = delete;

  // Our SETTINGS_HEADER_TABLE_SIZE changed (and was acknowledged).
  void change_table_size_limit(size_t n) { nghttp2_hd_inflate_change_table_size(inflater_, n); }

  // Decodes one complete header block; nullopt when nghttp2 refuses it
  // (after which this inflater, like a connection, must not be used again).
  std::optional<HeaderList> inflate(std::span<const uint8_t> block) {
    HeaderList fields;
    const uint8_t* in = block.data();
    size_t left = block.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      const ssize_t used = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 1);
      if (used < 0) return std::nullopt;
      in += used;
      left -= static_cast<size_t>(used);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        fields.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                            std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) break;
      if (left == 0 && (flags & NGHTTP2_HD_INFLATE_EMIT) == 0) return std::nullopt;
    }
    nghttp2_hd_inflate_end_headers(inflater_);
    return fields;
  }

  // The dynamic table's current size in RFC 7541 §4.1 units.
  size_t table_size() const { return nghttp2_hd_inflate_get_dynamic_table_size(inflater_); }

 private:
  nghttp2_hd_inflater* inflater_ = nullptr;
};

}  // namespace h2lab::testing
