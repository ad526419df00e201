// What one connection of an event loop (epoll reactor, uring proactor)
// holds besides the loop's own I/O state, and the timeout handling both loops
// share: a timer-wheel node armed lazily at the connection's next deadline.
#pragma once

#include <chrono>
#include <memory>

#include "server/accept.h"
#include "server/connection_deadlines.h"
#include "server/log.h"
#include "server/session.h"
#include "server/timer_wheel.h"

namespace h2lab::server {

struct LoopConnection {
  using Clock = std::chrono::steady_clock;

  LoopConnection(NewConnection c, const ServerOptions& options, Clock::time_point now)
      : fd(c.fd),
        session(std::move(c.session)),
        slot(std::move(c.slot)),
        deadlines(options, now, slot.refused(), session->handshake_done()) {}

  int fd;
  std::unique_ptr<Session> session;
  AdmissionSlot slot;
  ConnectionDeadlines deadlines;
  TimerWheel::Node timer;  // timer.key: the connection's id in its loop
  Clock::time_point timer_at{};
  bool peer_eof = false;   // read returned 0
  bool lingering = false;  // our FIN is out; reading until the peer's EOF
};

// A tick of 10 ms: timeouts are seconds (tests use a few hundred ms), and a
// loop with armed timers wakes at most 100 times a second. 4096 slots make a
// 41 s revolution, longer than the default timeouts.
inline TimerWheel make_loop_timer_wheel(std::chrono::steady_clock::time_point now) {
  return TimerWheel(std::chrono::milliseconds(10), 4096, now);
}

// Arms the connection's timer at its next deadline if that is earlier than
// where it is armed (a later deadline is found when the timer fires).
inline void schedule_timeout(LoopConnection& c, TimerWheel& wheel) noexcept {
  const auto at = c.deadlines.next().at;
  if (!c.timer.armed() || at < c.timer_at) {
    c.timer_at = at;
    wheel.arm(c.timer, at);
  }
}

enum class TimeoutAction {
  kNone,     // not due yet: re-armed
  kGoaway,   // idle: the session was shut down gracefully; flush its GOAWAY
  kClose,    // close the connection now (why was logged)
};

// For a connection whose timer fired.
inline TimeoutAction on_timeout(LoopConnection& c, TimerWheel& wheel,
                                std::chrono::steady_clock::time_point now) noexcept {
  const ConnectionDeadlines::Due due = c.deadlines.next();
  if (now < due.at) {
    schedule_timeout(c, wheel);
    return TimeoutAction::kNone;
  }
  const char* why = ConnectionDeadlines::describe(due.kind);
  if (*why != '\0') log_line("closing connection: %s", why);
  if (due.kind != ConnectionDeadlines::Kind::kIdle) return TimeoutAction::kClose;
  c.session->shutdown();
  c.deadlines.begin_drain(now);
  schedule_timeout(c, wheel);
  return TimeoutAction::kGoaway;
}

// The session's own reason for ending, when it has one worth logging.
inline void log_close_reason(const LoopConnection& c) noexcept {
  const char* why = c.session->close_reason();
  if (why != nullptr && *why != '\0') log_line("closing connection: %s", why);
}

}  // namespace h2lab::server
