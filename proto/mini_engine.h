// The seed's simplified HTTP/2 ("mini"): kept as the baseline that isolates
// dispatcher cost from protocol cost (`--engine mini`).
//
// What it does, faithfully to the seed: checks the 24-octet client preface,
// sends an empty SETTINGS, acknowledges the client's SETTINGS, skips every
// frame without looking inside, answers each HEADERS or DATA frame that ends
// a stream with a prebuilt HEADERS (:status 200) + DATA ("Hello World\n")
// pair whose stream id is patched in, and ends on GOAWAY.
//
// What it deliberately does not do: HPACK, flow control, stream states,
// PING, validation. It is not a correct HTTP/2 server. Its only safety
// rules: it never reads past its input, and a frame over 16384 octets ends
// the connection (close_reason() says so). The first octets are decided as
// the full engine decides them (proto/preface.h): an HTTP/1.x request gets
// the 505 hint, anything else that is not the preface GOAWAY(PROTOCOL_ERROR).
#pragma once

#include <cstdint>

#include "proto/engine.h"
#include "proto/preface.h"

namespace h2lab::proto {

class MiniEngine final : public Engine {
 public:
  MiniEngine() = default;

  size_t on_input(Bytes in) noexcept override;
  void on_input_closed() noexcept override;
  void shutdown() noexcept override;
  OutputQueue& output() noexcept override { return out_; }
  bool done() const noexcept override { return done_; }
  const char* close_reason() const noexcept override { return close_reason_; }
  const EngineCounters& counters() const noexcept override { return counters_; }
  // Frames are counted as their headers are read (mini skips payloads
  // without holding them); every request is answered at once, so no stream
  // stays open.
  EngineProgress progress() const noexcept override {
    return {frames_, settings_seen_, in_header_block_, 0};
  }

  // The response the seed sends: HEADERS(END_HEADERS, 0x88 = :status 200)
  // then DATA(END_STREAM, "Hello World\n"); stream ids at offsets 5 and 19.
  static constexpr size_t kResponseSize = 9 + 1 + 9 + 12;

 private:
  void fail(const char* reason) noexcept;
  void respond(uint32_t stream_id) noexcept;

  OutputQueue out_;
  PrefaceMatcher preface_;
  uint32_t skip_remaining_ = 0;  // payload octets of the current frame still to skip
  uint32_t last_stream_id_ = 0;
  bool done_ = false;
  bool goaway_sent_ = false;
  const char* close_reason_ = "";
  EngineCounters counters_;
  uint64_t frames_ = 0;           // frame headers read, for progress()
  bool settings_seen_ = false;    // the client's first SETTINGS arrived
  bool in_header_block_ = false;  // HEADERS without END_HEADERS, until END_HEADERS
};

}  // namespace h2lab::proto
