// What h2lab answers (DESIGN.md, "Routes"). Pure functions from a request
// line to a response description; the connection engine streams the body.
//
//   /          Hello World\n                      (GET, HEAD)
//   /bytes/N   N octets from a shared pattern     (GET, HEAD)
//   /echo      the request body, streamed back    (any method with a body)
//   /stats     JSON counters                      (GET, HEAD)
//   else       404
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "proto/engine.h"

namespace h2lab::proto {

enum class BodyKind : uint8_t {
  kNone,     // no body (HEAD, or an empty one)
  kStatic,   // `static_body`, referenced, never copied
  kPattern,  // `length` octets of pattern_bytes(), referenced in pieces
  kEcho,     // the request body, as it arrives
  kOwned,    // `owned_body` (built per request, e.g. /stats)
};

struct RouteResponse {
  uint16_t status = 200;
  std::string_view content_type;
  std::optional<uint64_t> content_length;  // none: unknown in advance (/echo without one)
  BodyKind body = BodyKind::kNone;
  std::string_view static_body;
  uint64_t length = 0;  // kPattern
  std::string owned_body;
};

// The body of /stats: this connection's counters, then the server's JSON
// value (if `server_json` renders one). One shape for every engine.
std::string stats_body(const EngineCounters& connection, size_t open_streams,
                       const std::function<std::string()>& server_json);

// `request_content_length` is the request's content-length, if it sent one.
// `stats_json` renders /stats; it may be empty (then /stats says so).
RouteResponse route(std::string_view method, std::string_view path,
                    std::optional<uint64_t> request_content_length,
                    const std::function<std::string()>& stats_json);

// The body of /bytes/N is kPatternPeriod repeating at every offset: octet i
// of the body is kPatternAlphabet[i % kPatternPeriod], whatever the frames.
inline constexpr std::string_view kPatternAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789\n";
inline constexpr size_t kPatternPeriod = kPatternAlphabet.size();

// A static run of the pattern, starting at body offset 0, long enough that
// every DATA payload (at most 2^24 - 1 octets) starting at any body offset is
// one contiguous piece of it: pattern_at(offset) is where that piece begins.
std::string_view pattern_bytes() noexcept;

// The pattern from body offset `offset` on (the offset wraps on the period,
// not on the buffer): at least 2^24 - 1 octets.
std::string_view pattern_at(uint64_t offset) noexcept;

// Largest N accepted by /bytes/N: 1 TiB (a bound, so the length fits
// everywhere; a client asking for more gets 400).
inline constexpr uint64_t kMaxBytesRoute = uint64_t{1} << 40;

}  // namespace h2lab::proto
