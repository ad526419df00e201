// Raw HTTP/2 bytes for scripted conversations in tests: build exactly the
// frames a test wants, valid or not.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/frame.h"

namespace h2lab::testing {

using ByteString = std::vector<uint8_t>;

inline ByteString bytes(std::string_view s) { return ByteString(s.begin(), s.end()); }

inline ByteString operator+(ByteString a, const ByteString& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// One frame with an arbitrary header; `length` defaults to the payload size
// (pass another to lie about it).
inline ByteString frame(uint8_t type, uint8_t flags, uint32_t stream_id, const ByteString& payload,
                        int64_t length = -1) {
  const uint32_t len = length < 0 ? static_cast<uint32_t>(payload.size()) : static_cast<uint32_t>(length);
  ByteString out = {static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len),
                    type, flags,
                    static_cast<uint8_t>(stream_id >> 24), static_cast<uint8_t>(stream_id >> 16),
                    static_cast<uint8_t>(stream_id >> 8), static_cast<uint8_t>(stream_id)};
  return out + payload;
}

inline ByteString frame(proto::FrameType type, uint8_t flags, uint32_t stream_id,
                        const ByteString& payload = {}) {
  return frame(static_cast<uint8_t>(type), flags, stream_id, payload);
}

inline ByteString preface() { return bytes(proto::kClientPreface); }

inline ByteString u32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

inline ByteString settings(std::initializer_list<std::pair<uint16_t, uint32_t>> entries = {}) {
  ByteString payload;
  for (auto [id, value] : entries) {
    payload.push_back(static_cast<uint8_t>(id >> 8));
    payload.push_back(static_cast<uint8_t>(id));
    payload = payload + u32(value);
  }
  return frame(proto::FrameType::kSettings, 0, 0, payload);
}

// HEADERS carrying a GET of `path` as a minimal valid HPACK block
// (:method GET, :scheme http, :path as a literal, :authority localhost).
inline ByteString get_request(uint32_t stream_id, std::string_view path = "/",
                              uint8_t flags = proto::flags::kEndStream | proto::flags::kEndHeaders) {
  ByteString block = {0x82, 0x86};  // :method GET, :scheme http
  block.push_back(0x44);            // :path, literal with incremental indexing, name index 4
  block.push_back(static_cast<uint8_t>(path.size()));
  block = block + bytes(path);
  block.push_back(0x41);  // :authority, name index 1
  block.push_back(9);
  block = block + bytes("localhost");
  return frame(proto::FrameType::kHeaders, flags, stream_id, block);
}

// The octets of an iovec list, concatenated.
inline ByteString concat(std::span<const iovec> pieces) {
  ByteString out;
  for (const iovec& v : pieces) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    out.insert(out.end(), p, p + v.iov_len);
  }
  return out;
}

// Everything the output queue holds, concatenated.
template <typename Queue>
ByteString drain(Queue& q) {
  ByteString out = concat(q.iovecs());
  q.consume(q.size());
  return out;
}

}  // namespace h2lab::testing
