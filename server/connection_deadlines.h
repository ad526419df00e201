// The timeouts of one connection, shared by every dispatcher: the dispatcher
// reports what happened (input, write progress, stop, close) together with
// the session's progress() — engines have no clock, so they say where the
// connection stands and this class decides how long each phase may take —
// and asks for the next deadline and what it means (DESIGN.md, "Deadlines").
//
//   handshake  the TLS handshake is not done options.handshake_timeout
//              after the accept
//   preface    the client preface and first SETTINGS (RFC 9113 §3.4) are
//              not in options.preface_timeout after the accept (h2c) or
//              after the handshake ended (TLS)
//   header     a header block (HEADERS through its last CONTINUATION,
//              §6.10) is not complete options.header_timeout after its
//              HEADERS frame
//   idle     no progress — no complete frame received, no octet written —
//            for options.idle_timeout once the preface is in. Octets of a
//            partial frame are not progress: a peer that dribbles one
//            octet a second is idle. A refused client gets at most
//            kRefusalTimeout for this and the setup deadlines.
//   progress the minimum progress rule: in a window of
//            options.min_progress_window in which anything moved, the
//            connection must complete a response or move
//            min_progress_rate octets per second of the window (both
//            directions). A peer that keeps the idle clock fresh with tiny
//            frames (PINGs, 1-octet DATA, 1-octet window grants) fails it.
//   write    output pending and no write progress for options.write_timeout
//            (a peer that stopped reading: CVE-2019-9517)
//   drain    a graceful stop began options.drain_timeout ago
//   linger   after our last byte and FIN, the peer's EOF did not come
//
// Besides deadlines it tells which connections may make room at the
// connection limit (eviction_class(), last_progress()).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "server/options.h"
#include "server/session.h"

namespace h2lab::server {

// Why a connection may be closed to admit a newcomer, best candidates
// first; kNone: it is doing real work.
enum class EvictionClass { kHandshake, kPreface, kIdle, kNone };

class ConnectionDeadlines {
 public:
  using Clock = std::chrono::steady_clock;

  // How long a refused client may take to send its preface and read the
  // answer: a refusal should not hold resources as long as a served client.
  // Also the drain an evicted connection gets.
  static constexpr std::chrono::milliseconds kRefusalTimeout{2000};
  // How long we keep reading (and discarding) after our FIN, so that a late
  // request from the peer does not turn our close into a reset that could
  // destroy the GOAWAY before the peer read it (nginx's lingering close).
  static constexpr std::chrono::milliseconds kLingerTimeout{1000};
  // After a connection error (the peer broke the protocol or flooded us)
  // the linger is shorter: such a peer is likely still sending.
  static constexpr std::chrono::milliseconds kErrorLingerTimeout{200};
  // And at most this much is read and discarded while lingering: a peer
  // that floods through our FIN would otherwise keep a thread busy reading
  // at memory speed until the linger deadline.
  static constexpr size_t kLingerMaxOctets = 256 * 1024;

  // A connection in handshake or preface is not evicted in its first
  // 20 ms: one accepted in the same batch as the newcomer has not been
  // read yet (its preface may be waiting in the socket). A fleet that
  // reconnects to keep every slot younger than this must open
  // (limit / 20 ms) connections a second: 500,000 a second at the default
  // limit.
  static constexpr std::chrono::milliseconds kEvictionGrace{20};

  enum class Kind { kHandshake, kPreface, kHeader, kIdle, kProgress, kWrite, kDrain, kLinger };
  struct Due {
    Clock::time_point at;
    Kind kind;
  };

  // `state`: the session's progress() at the accept.
  ConnectionDeadlines(const ServerOptions& options, Clock::time_point now, bool refused,
                      const SessionProgress& state) noexcept
      : idle_timeout_(capped(options.idle_timeout, refused)),
        write_timeout_(options.write_timeout),
        drain_timeout_(options.drain_timeout),
        preface_timeout_(capped(options.preface_timeout, refused)),
        header_timeout_(capped(options.header_timeout, refused)),
        window_(options.min_progress_window),
        window_octets_min_(min_octets(options)),
        last_progress_(now),
        accepted_at_(now),
        handshake_at_(now + capped(options.handshake_timeout, refused)) {
    observe(now, state);
  }

  // After input was handed to the session: `octets` received (ciphertext
  // with TLS), `state` its progress() now.
  void on_input(Clock::time_point now, const SessionProgress& state, size_t octets) noexcept {
    window_octets_ += octets;
    observe(now, state);
  }
  // After a write attempt: octets it moved, whether output is still pending,
  // and the session's progress() (writing may complete responses).
  void on_write(Clock::time_point now, size_t octets, bool pending,
                const SessionProgress& state) noexcept {
    if (octets != 0) {
      last_progress_ = now;
      window_octets_ += octets;
    }
    if (!pending) {
      write_since_ = Clock::time_point::max();
    } else if (octets != 0 || write_since_ == Clock::time_point::max()) {
      write_since_ = now;
    }
    output_pending_ = pending;
    observe(now, state);
  }
  // A graceful stop (or an idle timeout, which is one for this connection):
  // from now on only the drain, write and handshake deadlines count.
  void begin_drain(Clock::time_point now) noexcept { begin_drain(now, drain_timeout_); }
  void begin_drain(Clock::time_point now, Clock::duration within) noexcept {
    drain_at_ = std::min(drain_at_, now + within);
  }
  // Our last byte is out and FIN sent; `after_error`: the session ended on a
  // connection error (its close_reason() is not empty).
  void begin_linger(Clock::time_point now, bool after_error = false) noexcept {
    const auto d = after_error ? kErrorLingerTimeout : kLingerTimeout;
    linger_at_ = std::min(drain_at_, now + std::chrono::duration_cast<Clock::duration>(d));
  }
  // Octets read and discarded while lingering; false once kLingerMaxOctets
  // were: close now.
  bool linger_discard(size_t octets) noexcept {
    lingered_ += octets;
    return lingered_ <= kLingerMaxOctets;
  }
  bool draining() const noexcept { return drain_at_ != Clock::time_point::max(); }
  bool lingering() const noexcept { return linger_at_ != Clock::time_point::max(); }

  Due next() const noexcept {
    constexpr Clock::time_point kNever = Clock::time_point::max();
    if (lingering()) return {linger_at_, Kind::kLinger};
    Due due{kNever, Kind::kIdle};
    if (write_since_ != kNever) {
      due = {write_since_ + write_timeout_, Kind::kWrite};
    } else if (preface_done_) {
      due = {last_progress_ + idle_timeout_, Kind::kIdle};
    }
    if (draining()) {
      if (due.kind == Kind::kIdle || drain_at_ < due.at) due = {drain_at_, Kind::kDrain};
    } else {
      if (preface_at_ < due.at) due = {preface_at_, Kind::kPreface};
      if (header_at_ < due.at) due = {header_at_, Kind::kHeader};
      if (const auto at = window_due(); at < due.at) due = {at, Kind::kProgress};
    }
    if (handshake_at_ < due.at) due = {handshake_at_, Kind::kHandshake};
    return due;
  }

  // Before acting on a deadline that next() says is due: a minimum-progress
  // window that ended met is rolled over (so its due moves on) rather than
  // acted on. Call, then look at next() again.
  void settle(Clock::time_point now) noexcept { roll_window(now); }

  // Whether this connection may be closed to admit a newcomer at `now`,
  // and why.
  EvictionClass eviction_class(Clock::time_point now) const noexcept {
    const bool young = now - accepted_at_ < kEvictionGrace;
    if (handshake_at_ != Clock::time_point::max()) {
      return young ? EvictionClass::kNone : EvictionClass::kHandshake;
    }
    if (!preface_done_) return young ? EvictionClass::kNone : EvictionClass::kPreface;
    if (open_streams_ == 0 && !in_header_block_ && !output_pending_ && !draining()) {
      return EvictionClass::kIdle;
    }
    return EvictionClass::kNone;
  }
  // Still in the TLS handshake or before the client preface and SETTINGS.
  bool in_setup() const noexcept {
    return handshake_at_ != Clock::time_point::max() || !preface_done_;
  }
  // The last complete frame received or octet written (the accept before
  // any): the connection longest without progress makes room first.
  Clock::time_point last_progress() const noexcept { return last_progress_; }

  static const char* describe(Kind k) noexcept {
    switch (k) {
      case Kind::kHandshake:
        return "TLS handshake timeout";
      case Kind::kPreface:
        return "preface timeout (no client preface and SETTINGS in time)";
      case Kind::kHeader:
        return "header timeout (a header block took too long)";
      case Kind::kIdle:
        return "idle timeout";
      case Kind::kProgress:
        return "too little progress (below the minimum rate, no response completed)";
      case Kind::kWrite:
        return "write timeout (peer stopped reading)";
      case Kind::kDrain:
        return "drain timeout after graceful stop";
      case Kind::kLinger:
        return "";  // the peer did not close after our FIN: nothing to report
    }
    return "";
  }

 private:
  static Clock::duration capped(std::chrono::milliseconds timeout, bool refused) noexcept {
    return refused ? std::min(timeout, kRefusalTimeout) : timeout;
  }
  static uint64_t min_octets(const ServerOptions& o) noexcept {
    return static_cast<uint64_t>(o.min_progress_rate) *
           static_cast<uint64_t>(o.min_progress_window.count()) / 1000;
  }

  // Takes in what the session says now.
  void observe(Clock::time_point now, const SessionProgress& s) noexcept {
    if (s.handshake_done && handshake_at_ != Clock::time_point::max()) {
      handshake_at_ = Clock::time_point::max();
      // TLS: the preface is owed from the end of the handshake (§3.3).
      preface_at_ = now + preface_timeout_;
    }
    if (handshake_at_ == Clock::time_point::max() && !preface_done_ && s.engine.preface_done) {
      preface_done_ = true;
      preface_at_ = Clock::time_point::max();
      last_progress_ = now;  // the idle clock starts here
      window_start_ = now;
      window_octets_ = 0;
      window_responses_ = s.responses;
    }
    if (s.engine.frames != frames_) {
      frames_ = s.engine.frames;
      last_progress_ = now;
    }
    if (s.engine.in_header_block != in_header_block_) {
      in_header_block_ = s.engine.in_header_block;
      header_at_ = in_header_block_ ? now + header_timeout_ : Clock::time_point::max();
    }
    open_streams_ = s.engine.open_streams;
    responses_ = s.responses;
    roll_window(now);
  }

  bool window_met() const noexcept {
    return window_octets_ == 0 || responses_ != window_responses_ ||
           window_octets_ >= window_octets_min_;
  }
  // The end of the current window while it is not met; never when met, off
  // (window 0), or before the preface.
  Clock::time_point window_due() const noexcept {
    if (!preface_done_ || window_.count() == 0 || window_met()) return Clock::time_point::max();
    return window_start_ + window_;
  }
  void roll_window(Clock::time_point now) noexcept {
    if (!preface_done_ || window_.count() == 0 || now < window_start_ + window_) return;
    if (!window_met()) return;  // due: the dispatcher closes the connection
    window_start_ = now;
    window_octets_ = 0;
    window_responses_ = responses_;
  }

  const Clock::duration idle_timeout_;
  const Clock::duration write_timeout_;
  const Clock::duration drain_timeout_;
  const Clock::duration preface_timeout_;
  const Clock::duration header_timeout_;
  const Clock::duration window_;
  const uint64_t window_octets_min_;
  Clock::time_point last_progress_;
  const Clock::time_point accepted_at_;
  Clock::time_point write_since_ = Clock::time_point::max();  // output pending, no progress since
  Clock::time_point drain_at_ = Clock::time_point::max();
  Clock::time_point linger_at_ = Clock::time_point::max();
  Clock::time_point handshake_at_;                            // max once the handshake is done
  Clock::time_point preface_at_ = Clock::time_point::max();   // set when the handshake ends
  Clock::time_point header_at_ = Clock::time_point::max();    // set while a header block is open
  Clock::time_point window_start_{};
  uint64_t window_octets_ = 0;     // moved in this window, both directions
  uint64_t window_responses_ = 0;  // responses completed when the window began
  uint64_t responses_ = 0;
  uint64_t frames_ = 0;
  size_t lingered_ = 0;
  uint32_t open_streams_ = 0;
  bool preface_done_ = false;
  bool in_header_block_ = false;
  bool output_pending_ = false;
};

}  // namespace h2lab::server
