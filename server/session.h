// One connection's byte pipeline: the only place where transport security
// and HTTP/2 meet (DESIGN.md, "The data path of one connection").
//
//   dispatcher ──on_data(received bytes)──► [tls::Session] ──► proto::Engine
//   dispatcher ◄──pending_output()/on_written(n)── [tls::Session] ◄── engine output queue
//
// A dispatcher moves bytes and asks the session what it wants next
// (wants_read / wants_write / wants_close); it needs no protocol knowledge
// and does not know whether TLS is on — except that a handshake that is not
// done should be bounded in time (handshake_done()).
// Not thread-safe: one dispatcher thread drives a session at a time.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "proto/engine.h"

namespace h2lab::tls {
class Session;
}  // namespace h2lab::tls

namespace h2lab::server {

struct ThreadStats;  // server/stats.h

// Where a connection stands, for its deadlines and for eviction at the
// connection limit (server/connection_deadlines.h).
struct SessionProgress {
  bool handshake_done = true;     // Session::handshake_done()
  proto::EngineProgress engine;   // the engine's progress()
  uint64_t responses = 0;         // responses the engine completed so far
};

class Session {
 public:
  // `max_output_bytes` is the backpressure bound: with more unsent output
  // than this the session stops asking for input.
  Session(std::unique_ptr<proto::Engine> engine, size_t max_output_bytes);
  // With TLS: on_data() takes ciphertext and pending_output() holds
  // ciphertext; `tls` decrypts in front of the engine and encrypts its output
  // (null: cleartext, as above).
  Session(std::unique_ptr<proto::Engine> engine, size_t max_output_bytes,
          std::unique_ptr<tls::Session> tls);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes received from the peer. They are processed in place; only the tail
  // of an incomplete frame is copied (into the session) to wait for the rest,
  // so `data` may be reused as soon as this returns.
  void on_data(std::span<const uint8_t> data) noexcept;
  // The peer closed its side.
  void on_eof() noexcept;
  // Begin a graceful stop (GOAWAY, finish accepted streams). Idempotent.
  void shutdown() noexcept;

  // The bytes to write next, in order; valid until the next non-const call.
  // After write_one_response_at_a_time(): only up to the end of the next
  // response (with TLS: its records), the rest once those are written.
  std::span<const iovec> pending_output() const noexcept;
  size_t pending_bytes() const noexcept;
  // The first `n` octets of pending_output() reached the kernel.
  void on_written(size_t n) noexcept;

  // Read more? False under backpressure and once the session is ending.
  bool wants_read() const noexcept;
  bool wants_write() const noexcept { return pending_bytes() != 0; }
  // Close now: the engine is done and its last output went out (with TLS:
  // and close_notify, or the alert that ended a failed handshake).
  bool wants_close() const noexcept;
  // False while a TLS handshake is in progress (always true without TLS):
  // a dispatcher closes a connection whose handshake takes longer than
  // options.handshake_timeout.
  bool handshake_done() const noexcept;
  // The handshake, the engine's progress() and its completed responses:
  // what the dispatcher's deadlines are computed from. Cheap (no scan).
  SessionProgress progress() const noexcept;
  // Why the connection ends abnormally ("" for a normal end), for the log.
  const char* close_reason() const noexcept;

  // Frees buffers an idle session does not need (between reads).
  void trim() noexcept;
  // The session's output queues (the engine's and, with TLS, the
  // ciphertext's) take their arena chunks from `pool` and give them back on
  // trim() and destruction, instead of allocating them anew each loop turn.
  // `pool` belongs to the thread that drives the session and outlives it.
  void use_chunk_pool(proto::ChunkPool* pool) noexcept;

  // From now on the session counts into `stats` — bytes, requests,
  // responses, backpressure pauses, its GOAWAY, and request latency — which
  // must be the counters of the thread that drives it and outlive it (null:
  // count nothing, the default).
  // Latency: a request's clock starts at the on_data() call that made the
  // engine accept it and stops at the on_written() call that handed the
  // last octet of its response to the kernel (with TLS: the write that
  // emptied the ciphertext holding it). Requests and responses are matched
  // first-in first-out: exact for equal requests (h2load), an approximation
  // when a short response overtakes a long one. A stream reset before its
  // response completed stops its clock at the next write.
  void count_into(ThreadStats* stats) noexcept;

  // The per-response write policy (--write-policy per-response): each
  // response leaves in writes of its own instead of with everything else a
  // loop turn produced — as a server that flushes after every response
  // would. Call before the first on_data().
  void write_one_response_at_a_time() noexcept;

 private:
  void on_plaintext(std::span<const uint8_t> data) noexcept;
  void on_tls_data(std::span<const uint8_t> ciphertext) noexcept;
  void pump_tls() noexcept;
  size_t backlog() const noexcept;  // unsent octets, engine and TLS together

  std::unique_ptr<proto::Engine> engine_;
  std::vector<uint8_t> partial_;  // an incomplete frame awaiting more bytes
  size_t max_output_bytes_;
  const char* fault_ = nullptr;  // set when the session itself gives up
  std::unique_ptr<tls::Session> tls_;  // null: cleartext
  bool input_closed_ = false;          // the engine was told (EOF or close_notify)
  bool one_response_per_write_ = false;
  mutable std::vector<iovec> limited_;  // pending_output() cut at a response's end

  // Counting (count_into); all unused while stats_ is null.
  using Clock = std::chrono::steady_clock;
  void count_engine(Clock::time_point arrived) noexcept;
  void count_written(size_t n) noexcept;
  struct Arrival {
    Clock::time_point at;
    uint64_t requests;  // requests the engine accepted from the input that arrived at `at`
  };
  ThreadStats* stats_ = nullptr;
  proto::EngineCounters counted_;  // the engine's counters as last added to stats_
  std::vector<Arrival> arrivals_;  // requests whose clock runs, oldest first
  uint64_t responses_timed_ = 0;   // responses written whose clocks were stopped
  uint64_t abandoned_untimed_ = 0; // reset streams whose clocks still run
  bool paused_ = false;            // over the backpressure bound when last looked
};

}  // namespace h2lab::server
