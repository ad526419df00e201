#include "proto/routes.h"

#include <charconv>
#include <memory>

namespace h2lab::proto {
namespace {

constexpr std::string_view kHello = "Hello World\n";
constexpr std::string_view kTextPlain = "text/plain";

RouteResponse text(uint16_t status, std::string_view body) {
  RouteResponse r;
  r.status = status;
  r.content_type = kTextPlain;
  r.content_length = body.size();
  r.body = BodyKind::kStatic;
  r.static_body = body;
  return r;
}

bool is_get_or_head(std::string_view method) { return method == "GET" || method == "HEAD"; }

// The query string plays no part in routing.
std::string_view path_only(std::string_view path) {
  const size_t q = path.find('?');
  return q == std::string_view::npos ? path : path.substr(0, q);
}

}  // namespace

std::string stats_body(const EngineCounters& c, size_t open_streams,
                       const std::function<std::string()>& server_json) {
  std::string json = "{\"connection\": {\"streams\": " + std::to_string(c.streams) +
                     ", \"responses\": " + std::to_string(c.responses) +
                     ", \"resets_sent\": " + std::to_string(c.resets_sent) +
                     ", \"refused\": " + std::to_string(c.refused) +
                     ", \"open_streams\": " + std::to_string(open_streams) + "}";
  if (server_json) json += ", \"server\": " + server_json();
  return json + "}\n";
}

std::string_view pattern_bytes() noexcept {
  // 2^24 - 1 octets of payload after any of the period's offsets.
  static const std::string pattern = [] {
    constexpr size_t kSize = (size_t{1} << 24) + kPatternPeriod;
    std::string p(kSize, '\0');
    for (size_t i = 0; i < kSize; ++i) p[i] = kPatternAlphabet[i % kPatternPeriod];
    return p;
  }();
  return pattern;
}

std::string_view pattern_at(uint64_t offset) noexcept {
  return pattern_bytes().substr(static_cast<size_t>(offset % kPatternPeriod));
}

RouteResponse route(std::string_view method, std::string_view path,
                    std::optional<uint64_t> request_content_length,
                    const std::function<std::string()>& stats_json) {
  path = path_only(path);
  if (path == "/echo") {
    RouteResponse r;
    r.content_type = "application/octet-stream";
    r.content_length = request_content_length;
    r.body = BodyKind::kEcho;
    return r;
  }
  if (path == "/" || path.rfind("/bytes/", 0) == 0 || path == "/stats") {
    if (!is_get_or_head(method)) return text(405, "method not allowed\n");
  }
  if (path == "/") return text(200, kHello);
  if (path.rfind("/bytes/", 0) == 0) {
    const std::string_view digits = path.substr(7);
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        n > kMaxBytesRoute) {
      return text(400, "bad size: use /bytes/N with N from 0 to 2^40\n");
    }
    RouteResponse r;
    r.content_type = "application/octet-stream";
    r.content_length = n;
    r.body = n == 0 ? BodyKind::kNone : BodyKind::kPattern;
    r.length = n;
    return r;
  }
  if (path == "/stats") {
    RouteResponse r;
    r.content_type = "application/json";
    r.owned_body = stats_json ? stats_json() : std::string("{}\n");
    r.content_length = r.owned_body.size();
    r.body = BodyKind::kOwned;
    return r;
  }
  return text(404, "not found\n");
}

}  // namespace h2lab::proto
