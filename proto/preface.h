// How a connection starts, decided octet by octet (RFC 9113 §3.4): the
// client connection preface, an HTTP/1.x request line (a client that does
// not speak HTTP/2 — it gets a one-line hint), or anything else (a
// connection error). Every engine recognises its peer's first octets with
// this one matcher, so the decision never depends on how the octets were cut
// into reads: it keeps no buffer, only the state of both hypotheses.
#pragma once

#include <cstddef>
#include <string_view>

#include "proto/frame.h"
#include "proto/output_queue.h"

namespace h2lab::proto {

class PrefaceMatcher {
 public:
  enum class Result : uint8_t {
    kIncomplete,  // every octet so far fits the preface or a request line
    kPreface,     // the 24-octet client preface arrived whole
    kHttp1,       // method SP request-target SP "HTTP/1." (RFC 9112 §3)
    kInvalid,     // neither: PROTOCOL_ERROR (§3.4)
  };
  struct Outcome {
    Result result;
    size_t consumed;  // octets of `in` looked at: all of them while
                      // kIncomplete; through the deciding octet otherwise
  };

  // Feeds the next octets. After a result other than kIncomplete the matcher
  // is decided and feed() consumes nothing more.
  Outcome feed(Bytes in) noexcept;

  Result result() const noexcept { return result_; }
  bool preface_complete() const noexcept { return result_ == Result::kPreface; }

  // A request-target longer than this is not taken for HTTP/1.x: the hint is
  // a courtesy, and 8 KiB is what HTTP/1.1 servers commonly accept.
  static constexpr size_t kMaxRequestTarget = 8 * 1024;

 private:
  enum class Http1 : uint8_t { kMethod, kTarget, kVersion, kNo };
  bool step_http1(uint8_t c) noexcept;  // true when "HTTP/1." completes

  Result result_ = Result::kIncomplete;
  size_t preface_matched_ = 0;  // octets of kClientPreface matched so far
  bool preface_alive_ = true;
  Http1 http1_ = Http1::kMethod;
  size_t http1_run_ = 0;  // octets in the current part of the request line
};

// The answer to an HTTP/1.x request on an HTTP/2-only port.
inline constexpr std::string_view kHttp1Response =
    "HTTP/1.1 505 HTTP Version Not Supported\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 103\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This server speaks HTTP/2 only (h2c with prior knowledge).\n"
    "With curl: curl --http2-prior-knowledge URL\n";
static_assert(kHttp1Response.size() - kHttp1Response.find("\r\n\r\n") - 4 == 103);

inline constexpr std::string_view kInvalidPrefaceDetail = "invalid connection preface";

// What a server sends when the matcher decided kHttp1 or kInvalid: the
// HTTP/1.1 505 hint (referenced, static), or our SETTINGS (the server
// preface must come first, §3.4) then GOAWAY(last-stream-id 0,
// PROTOCOL_ERROR). Returns the close reason for the log (a static string).
const char* append_preface_refusal(PrefaceMatcher::Result result, OutputQueue& out);

}  // namespace h2lab::proto
