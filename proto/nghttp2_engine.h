// `--engine nghttp2`: the field's reference library behind the same
// contract (proto/engine.h) — the third point of the seed's comparison
// (`:none/http2`, "the same as :none but using a full HTTP/2 library").
// A libnghttp2 server session, sans I/O like the other engines: input goes
// to nghttp2_session_mem_recv(), output comes from nghttp2_session_send()
// through callbacks that write into this engine's OutputQueue. Same routes
// and answers as `full` (proto/routes.h), same first-octet decision
// (proto/preface.h: an HTTP/1.x request gets the 505 hint, anything else
// that is not the preface SETTINGS + GOAWAY(PROTOCOL_ERROR), before
// nghttp2 sees a byte).
//
// Copies. Input: none — each complete frame is handed to
// nghttp2_session_mem_recv() where it lies, and an incomplete one stays
// with the caller as engine.h's carry contract says, so nghttp2 never
// buffers one. A flush follows every frame, so the output does not depend
// on how the input was cut (tests/engine_property_test). Output: every frame
// but DATA is serialised by nghttp2 into its own buffer and copied once
// into the queue's arena; DATA goes out through NGHTTP2_DATA_FLAG_NO_COPY —
// its 9-octet header copied, its body referenced (static text, the /bytes
// pattern) or copied once (/stats, /echo). /echo copies twice: input into
// the stream's buffer (nghttp2 hands data over in callbacks, it cannot wait
// for window) and that buffer into the arena.
//
// Validation is nghttp2's (RFC 9113 §8): where it is stricter than `full` —
// a request with neither :authority nor host is a stream error
// (RST_STREAM(PROTOCOL_ERROR)) — its answer stands.
//
// Limits, from ConnectionOptions: max concurrent streams, initial window,
// max frame size, header list size and field count (counted in the header
// callback; over either the request is answered 431 as `full` does, the
// block still decoded by nghttp2 so HPACK stays in sync), connection window,
// output high-water mark (send callbacks answer WOULDBLOCK above it). What
// nghttp2 bounds itself, with its defaults: queued control-frame ACKs
// (1000), SETTINGS entries per frame (32), the stream-reset rate (burst
// 1000, 33/s, Rapid Reset), CONTINUATION per block and empty frames (its
// own budgets). Not applied: max_field_size (nghttp2 caps a field at 64
// KiB), abuse_budget (nghttp2's own budgets stand in for it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/connection.h"
#include "proto/engine.h"
#include "proto/preface.h"

struct nghttp2_session;

namespace h2lab::proto {

class Nghttp2Engine final : public Engine {
 public:
  explicit Nghttp2Engine(ConnectionOptions options = {});
  ~Nghttp2Engine() override;
  Nghttp2Engine(const Nghttp2Engine&) = delete;
  Nghttp2Engine& operator=(const Nghttp2Engine&) = delete;

  size_t on_input(Bytes in) noexcept override;
  void on_input_closed() noexcept override;
  void shutdown() noexcept override;
  void on_output_drained() noexcept override;
  OutputQueue& output() noexcept override { return out_; }
  bool done() const noexcept override { return done_; }
  const char* close_reason() const noexcept override { return close_reason_; }
  const EngineCounters& counters() const noexcept override { return counters_; }
  // Complete frames as handed to nghttp2 one by one; nghttp2 itself
  // rejects a first frame that is not SETTINGS (§3.4), so the preface is
  // done with the first frame it took.
  EngineProgress progress() const noexcept override {
    return {frames_, preface_.preface_complete() && frames_ != 0, in_header_block_,
            static_cast<uint32_t>(streams_.size())};
  }

  // The nghttp2 callbacks (nghttp2_engine.cc) work on these.
  struct Stream;
  struct Callbacks;

 private:
  void start_session();
  void respond(Stream& s);
  void flush();  // nghttp2_session_send, then settle done_
  void fail(const char* reason);

  ConnectionOptions options_;
  OutputQueue out_;
  PrefaceMatcher preface_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  // Recorded by the callbacks, applied once nghttp2 has returned: deferred
  // /echo bodies to resume, and received DATA to give back as window.
  std::vector<int32_t> resume_;
  std::vector<std::pair<int32_t, size_t>> consume_;
  bool input_closed_ = false;
  bool done_ = false;
  const char* close_reason_ = "";
  EngineCounters counters_;
  const std::function<std::string()> stats_renderer_;
  uint64_t frames_ = 0;           // complete frames received, for progress()
  bool in_header_block_ = false;  // HEADERS without END_HEADERS, until END_HEADERS
};

}  // namespace h2lab::proto
