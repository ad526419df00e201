// The engine a client above the connection limit gets (server/connection_limit.h):
// it waits for the client's preface, answers SETTINGS (MAX_CONCURRENT_STREAMS 0)
// and GOAWAY(last-stream-id 0, NO_ERROR, debug data "server full"), and is
// done. RFC 9113 §6.8: last-stream-id 0 tells the client that no stream was
// processed, so every request it sent may be retried elsewhere or later.
//
// NO_ERROR rather than ENHANCE_YOUR_CALM: the client did nothing wrong.
// Handed to an ordinary Session, so that with TLS the refusal goes out after
// the handshake, encrypted, like any other answer.
#pragma once

#include <string_view>

#include "proto/engine.h"
#include "proto/preface.h"

namespace h2lab::proto {

class RefuseEngine final : public Engine {
 public:
  static constexpr std::string_view kDebugData = "server full";

  size_t on_input(Bytes in) noexcept override;
  void on_input_closed() noexcept override { done_ = true; }
  void shutdown() noexcept override { done_ = true; }
  OutputQueue& output() noexcept override { return out_; }
  bool done() const noexcept override { return done_; }
  const char* close_reason() const noexcept override { return close_reason_; }
  const EngineCounters& counters() const noexcept override { return counters_; }
  // Set up once the preface is in (it answers then and is done).
  EngineProgress progress() const noexcept override {
    return {0, preface_.preface_complete(), false, 0};
  }

 private:
  OutputQueue out_;
  PrefaceMatcher preface_;
  bool done_ = false;
  const char* close_reason_ = "";
  EngineCounters counters_;
};

}  // namespace h2lab::proto
