#include "proto/preface.h"

#include <cstring>

namespace h2lab::proto {
namespace {

// RFC 9110 §5.6.2: tchar, the octets of a method token.
bool is_tchar(uint8_t c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

constexpr std::string_view kHttp1Version = "HTTP/1.";

}  // namespace

// RFC 9112 §3: request-line = method SP request-target SP HTTP-version. Only
// as much as tells HTTP/1.x apart is checked: a token, a run of visible
// octets, then "HTTP/1.".
bool PrefaceMatcher::step_http1(uint8_t c) noexcept {
  switch (http1_) {
    case Http1::kMethod:
      if (c == ' ' && http1_run_ > 0) {
        http1_ = Http1::kTarget;
        http1_run_ = 0;
      } else if (is_tchar(c)) {
        ++http1_run_;
      } else {
        http1_ = Http1::kNo;
      }
      return false;
    case Http1::kTarget:
      if (c == ' ' && http1_run_ > 0) {
        http1_ = Http1::kVersion;
        http1_run_ = 0;
      } else if (c > 0x20 && c < 0x7f && http1_run_ < kMaxRequestTarget) {
        ++http1_run_;
      } else {
        http1_ = Http1::kNo;
      }
      return false;
    case Http1::kVersion:
      if (c != static_cast<uint8_t>(kHttp1Version[http1_run_])) {
        http1_ = Http1::kNo;
        return false;
      }
      return ++http1_run_ == kHttp1Version.size();
    case Http1::kNo:
      return false;
  }
  return false;
}

PrefaceMatcher::Outcome PrefaceMatcher::feed(Bytes in) noexcept {
  if (result_ != Result::kIncomplete) return {result_, 0};
  // The common case, the whole preface in the first read: one comparison.
  // The octet loop below gives the same answer (no prefix of the preface is
  // an HTTP/1 request line: "HTTP/2" fails the version at its sixth octet).
  if (preface_alive_ && preface_matched_ == 0 && in.size() >= kClientPreface.size() &&
      std::memcmp(in.data(), kClientPreface.data(), kClientPreface.size()) == 0) {
    preface_matched_ = kClientPreface.size();
    result_ = Result::kPreface;
    return {result_, kClientPreface.size()};
  }
  for (size_t i = 0; i < in.size(); ++i) {
    const uint8_t c = in[i];
    if (preface_alive_) {
      if (c == static_cast<uint8_t>(kClientPreface[preface_matched_])) {
        if (++preface_matched_ == kClientPreface.size()) {
          result_ = Result::kPreface;
          return {result_, i + 1};
        }
      } else {
        preface_alive_ = false;
      }
    }
    if (step_http1(c)) {
      result_ = Result::kHttp1;
      return {result_, i + 1};
    }
    if (!preface_alive_ && http1_ == Http1::kNo) {
      result_ = Result::kInvalid;
      return {result_, i + 1};
    }
  }
  return {result_, in.size()};
}

PrefaceStep take_preface(PrefaceMatcher& matcher, Bytes in, OutputQueue& out,
                         EngineCounters& counters) {
  const auto [result, consumed] = matcher.feed(in);
  switch (result) {
    case PrefaceMatcher::Result::kIncomplete:
      return {PrefaceStep::kWaiting, consumed, ""};
    case PrefaceMatcher::Result::kPreface:
      return {PrefaceStep::kOpened, consumed, ""};
    case PrefaceMatcher::Result::kHttp1:
      out.append_ref(kHttp1Response.data(), kHttp1Response.size());
      return {PrefaceStep::kRefused, consumed, "HTTP/1.1 request on an HTTP/2-only port"};
    case PrefaceMatcher::Result::kInvalid:
      break;
  }
  encode_settings(out.append(kFrameHeaderSize), {});
  encode_goaway(out.append(kFrameHeaderSize + 8 + kInvalidPrefaceDetail.size()), 0,
                ErrorCode::kProtocolError, kInvalidPrefaceDetail);
  counters.goaway_sent = true;
  counters.goaway_code = static_cast<uint32_t>(ErrorCode::kProtocolError);
  return {PrefaceStep::kRefused, consumed, "invalid connection preface"};
}

}  // namespace h2lab::proto
