#include "proto/mini_engine.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace h2lab::proto {
namespace {

constexpr std::array<uint8_t, MiniEngine::kResponseSize> kResponseTemplate = {
    // HEADERS, length 1, END_HEADERS, stream patched; 0x88 = indexed :status 200
    0x00, 0x00, 0x01, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x88,
    // DATA, length 12, END_STREAM, stream patched
    0x00, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    'H', 'e', 'l', 'l', 'o', ' ', 'W', 'o', 'r', 'l', 'd', '\n'};
constexpr size_t kDataFrameAt = 10;  // after HEADERS' 9-octet header and 1-octet block

}  // namespace

void MiniEngine::fail(const char* reason) noexcept {
  done_ = true;
  close_reason_ = reason;
}

void MiniEngine::respond(uint32_t stream_id) noexcept {
  uint8_t* p = out_.append(kResponseSize);
  std::memcpy(p, kResponseTemplate.data(), kResponseSize);
  patch_frame_stream_id(p, stream_id);
  patch_frame_stream_id(p + kDataFrameAt, stream_id);
  out_.end_response();
  ++counters_.streams;  // a request and its complete response at once
  ++counters_.responses;
}

size_t MiniEngine::on_input(Bytes in) noexcept {
  if (done_) return in.size();
  size_t pos = 0;

  // RFC 9113 §3.4, decided octet by octet (proto/preface.h), so that a
  // preface split across reads works and the answer to anything else does
  // not depend on how it was cut.
  if (!preface_.preface_complete()) {
    const PrefaceStep step = take_preface(preface_, in, out_, counters_);
    if (step.state == PrefaceStep::kWaiting) return in.size();
    if (step.state == PrefaceStep::kRefused) {
      fail(step.close_reason);
      return in.size();
    }
    pos = step.consumed;
    encode_settings(out_.append(kFrameHeaderSize), {});
  }

  while (pos < in.size()) {
    if (skip_remaining_ != 0) {
      const size_t n = std::min<size_t>(skip_remaining_, in.size() - pos);
      pos += n;
      skip_remaining_ -= static_cast<uint32_t>(n);
      continue;
    }
    FrameHeader h;
    if (!decode_frame_header(in.subspan(pos), h)) break;  // incomplete header
    if (h.length > kDefaultMaxFrameSize) {
      fail("frame larger than 16384 octets");
      return in.size();
    }
    pos += kFrameHeaderSize;
    skip_remaining_ = h.length;
    ++frames_;
    if (h.is(FrameType::kSettings)) settings_seen_ = true;
    if (h.is(FrameType::kHeaders) || h.is(FrameType::kContinuation)) {
      in_header_block_ = !h.has(flags::kEndHeaders);
    }
    if (h.is(FrameType::kSettings) && !h.has(flags::kAck)) {
      encode_settings_ack(out_.append(kFrameHeaderSize));
    } else if ((h.is(FrameType::kHeaders) || h.is(FrameType::kData)) &&
               h.has(flags::kEndStream) && h.stream_id != 0) {
      last_stream_id_ = std::max(last_stream_id_, h.stream_id);
      respond(h.stream_id);
    } else if (h.is(FrameType::kGoaway)) {
      done_ = true;
      return in.size();
    }
  }
  return pos;
}

void MiniEngine::on_input_closed() noexcept { done_ = true; }

void MiniEngine::shutdown() noexcept {
  // Before the preface there is no HTTP/2 connection to send GOAWAY on.
  if (goaway_sent_ || done_ || !preface_.preface_complete()) {
    done_ = true;
    return;
  }
  goaway_sent_ = true;
  counters_.goaway_sent = true;  // NO_ERROR
  // Every request is answered as soon as it arrives, so nothing is open.
  encode_goaway(out_.append(kFrameHeaderSize + 8), last_stream_id_, ErrorCode::kNoError, {});
  done_ = true;
}

}  // namespace h2lab::proto
