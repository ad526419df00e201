// The contract between a connection's byte pipeline (server/Session) and an
// HTTP/2 server engine. Engines are sans I/O: bytes enter through on_input()
// and leave through output(); they never touch a socket, a thread or a clock.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "proto/frame.h"
#include "proto/output_queue.h"

namespace h2lab::proto {

// What an engine has done so far, for the server's counters (/stats). An
// engine that counts nothing reports zeros.
struct EngineCounters {
  uint64_t streams = 0;    // requests accepted (streams opened and started)
  uint64_t responses = 0;  // responses completed (our END_STREAM sent)
  // Started streams that ended without a complete response (reset by
  // either side): with `responses`, every started stream that is over.
  uint64_t abandoned = 0;
  uint64_t resets_sent = 0;  // RST_STREAM we sent
  uint64_t refused = 0;      // of those, REFUSED_STREAM (over max concurrent)
  bool goaway_sent = false;
  uint32_t goaway_code = 0;  // the code of our GOAWAY, if sent
};

// Where a connection stands, for the dispatcher's deadlines
// (server/connection_deadlines.h): engines have no clock, so the dispatcher
// samples this after each input and decides how long each phase may take.
// Every field is cheap to read (no allocation, no scan).
struct EngineProgress {
  // Complete frames received since the connection began (RFC 9113 §4.1):
  // the unit of progress. A partial frame, however many octets of it
  // arrived, is none — so a peer that dribbles octets makes no progress.
  uint64_t frames = 0;
  // The client preface and the first SETTINGS frame have arrived (§3.4):
  // until then the connection is still being set up.
  bool preface_done = false;
  // A header block is open: HEADERS (or PUSH_PROMISE) without END_HEADERS
  // was received and its last CONTINUATION has not (§6.10).
  bool in_header_block = false;
  // Streams open now (requests not yet answered or reset): a connection
  // with none serves nobody.
  uint32_t open_streams = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Feeds received plaintext. Returns how many octets were consumed; the
  // engine consumes every complete frame, so the unconsumed rest is an
  // incomplete frame that the caller keeps and presents again, at the front,
  // together with more input. The engine never reads outside `in` and keeps
  // no pointer into it after returning. Input after done() is discarded.
  // A frame whose header announces more than max_frame_bytes() ends the
  // connection as soon as the header is seen, so that the caller never
  // carries more than max_frame_bytes() of incomplete input.
  virtual size_t on_input(Bytes in) noexcept = 0;

  // The peer closed its sending side (EOF): nothing more will arrive.
  virtual void on_input_closed() noexcept = 0;

  // Graceful stop, RFC 9113 §6.8: send GOAWAY naming the last stream that
  // will be processed, finish the streams already accepted, then report
  // done(). Idempotent.
  virtual void shutdown() noexcept = 0;

  // The output queue has drained below the session's low-water mark: an
  // engine with bodies waiting (flow control, backpressure) may add more.
  virtual void on_output_drained() noexcept {}

  // Bytes to send, in order. The caller consumes what it wrote.
  virtual OutputQueue& output() noexcept = 0;

  // True once the engine has nothing more to do: close the connection after
  // output() is flushed.
  virtual bool done() const noexcept = 0;

  // Why the engine ended the connection, for the log: "" after a normal end
  // (peer GOAWAY, graceful stop, EOF), a static string otherwise.
  virtual const char* close_reason() const noexcept = 0;

  // Counters since the connection began.
  virtual const EngineCounters& counters() const noexcept {
    static const EngineCounters kNone;
    return kNone;
  }

  // Where the connection stands (EngineProgress). An engine that does not
  // say reports a connection set up and idle, whose only deadline is idle.
  virtual EngineProgress progress() const noexcept { return {0, true, false, 0}; }

  // The largest frame the engine accepts, header included: the caller's
  // buffer for an incomplete frame never needs more.
  virtual size_t max_frame_bytes() const noexcept {
    return kFrameHeaderSize + kDefaultMaxFrameSize;
  }
};

}  // namespace h2lab::proto
