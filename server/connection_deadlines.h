// The timeouts of one connection, shared by every dispatcher: the dispatcher
// reports what happened (input, write progress, stop, close) and asks for
// the next deadline and what it means.
//
//   handshake  the TLS handshake is not done options.handshake_timeout
//            after the accept
//   idle     nothing received and nothing pending for options.idle_timeout
//            (a refused client gets at most kRefusalTimeout for either)
//   write    output pending and no write progress for options.write_timeout
//            (a peer that stopped reading: CVE-2019-9517)
//   drain    a graceful stop began options.drain_timeout ago
//   linger   after our last byte and FIN, the peer's EOF did not come
#pragma once

#include <algorithm>
#include <chrono>

#include "server/options.h"

namespace h2lab::server {

class ConnectionDeadlines {
 public:
  using Clock = std::chrono::steady_clock;

  // How long a refused client may take to send its preface and read the
  // answer: a refusal should not hold resources as long as a served client.
  static constexpr std::chrono::milliseconds kRefusalTimeout{2000};
  // How long we keep reading (and discarding) after our FIN, so that a late
  // request from the peer does not turn our close into a reset that could
  // destroy the GOAWAY before the peer read it (nginx's lingering close).
  static constexpr std::chrono::milliseconds kLingerTimeout{1000};

  enum class Kind { kHandshake, kIdle, kWrite, kDrain, kLinger };
  struct Due {
    Clock::time_point at;
    Kind kind;
  };

  // `handshake_done`: the session's handshake_done() at the accept (true
  // without TLS).
  ConnectionDeadlines(const ServerOptions& options, Clock::time_point now, bool refused,
                      bool handshake_done) noexcept
      : idle_timeout_(capped(options.idle_timeout, refused)),
        write_timeout_(options.write_timeout),
        drain_timeout_(options.drain_timeout),
        last_activity_(now),
        handshake_at_(handshake_done ? Clock::time_point::max()
                                     : now + capped(options.handshake_timeout, refused)) {}

  // After input was handed to the session; `handshake_done`: its
  // handshake_done() (always true without TLS).
  void on_input(Clock::time_point now, bool handshake_done) noexcept {
    last_activity_ = now;
    if (handshake_done) handshake_at_ = Clock::time_point::max();
  }
  // After a write attempt: whether it moved bytes and whether output is
  // still pending.
  void on_write(Clock::time_point now, bool progressed, bool pending) noexcept {
    if (progressed) last_activity_ = now;
    if (!pending) {
      write_since_ = Clock::time_point::max();
    } else if (progressed || write_since_ == Clock::time_point::max()) {
      write_since_ = now;
    }
  }
  // A graceful stop (or an idle timeout, which is one for this connection):
  // from now on only the drain and write deadlines count.
  void begin_drain(Clock::time_point now) noexcept {
    drain_at_ = std::min(drain_at_, now + drain_timeout_);
  }
  void begin_linger(Clock::time_point now) noexcept {
    linger_at_ = std::min(drain_at_, now + std::chrono::duration_cast<Clock::duration>(kLingerTimeout));
  }
  bool draining() const noexcept { return drain_at_ != Clock::time_point::max(); }
  bool lingering() const noexcept { return linger_at_ != Clock::time_point::max(); }

  Due next() const noexcept {
    if (lingering()) return {linger_at_, Kind::kLinger};
    Due due = write_since_ != Clock::time_point::max()
                  ? Due{write_since_ + write_timeout_, Kind::kWrite}
                  : Due{last_activity_ + idle_timeout_, Kind::kIdle};
    if (draining() && (due.kind == Kind::kIdle || drain_at_ < due.at)) due = {drain_at_, Kind::kDrain};
    if (handshake_at_ < due.at) due = {handshake_at_, Kind::kHandshake};
    return due;
  }

  static const char* describe(Kind k) noexcept {
    switch (k) {
      case Kind::kHandshake:
        return "TLS handshake timeout";
      case Kind::kIdle:
        return "idle timeout";
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

  const Clock::duration idle_timeout_;
  const Clock::duration write_timeout_;
  const Clock::duration drain_timeout_;
  Clock::time_point last_activity_;
  Clock::time_point write_since_ = Clock::time_point::max();  // output pending, no progress since
  Clock::time_point drain_at_ = Clock::time_point::max();
  Clock::time_point linger_at_ = Clock::time_point::max();
  Clock::time_point handshake_at_;  // max once the handshake is done
};

}  // namespace h2lab::server
