// What one connection of an event loop (epoll reactor, uring proactor)
// holds besides the loop's own I/O state, and the timeout handling both loops
// share: a timer-wheel node armed lazily at the connection's next deadline.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "server/accept.h"
#include "server/connection_deadlines.h"
#include "server/log.h"
#include "server/loop_group.h"
#include "server/session.h"
#include "server/timer_wheel.h"

namespace h2lab::server {

struct LoopConnection {
  using Clock = std::chrono::steady_clock;

  LoopConnection(NewConnection c, const ServerOptions& options, Clock::time_point now)
      : fd(c.fd),
        session(std::move(c.session)),
        slot(std::move(c.slot)),
        deadlines(options, now, slot.refused(), session->progress()) {}

  int fd;
  std::unique_ptr<Session> session;
  AdmissionSlot slot;
  ConnectionDeadlines deadlines;
  TimerWheel::Node timer;  // timer.key: the connection's id in its loop
  Clock::time_point timer_at{};
  bool peer_eof = false;   // read returned 0
  bool lingering = false;  // our FIN is out; reading until the peer's EOF
  bool queued = false;     // in its loop's TurnQueue
  bool setup_counted = false;  // counted in its loop's EvictionBoard setup count
};

// Keeps the EvictionBoard's count of loop `loop`'s served connections in
// handshake or preface right: call after a connection was added, after
// input (the phase may have ended), and with `gone` before it is destroyed.
inline void track_setup(LoopConnection& c, EvictionBoard& board, unsigned loop,
                        bool gone = false) noexcept {
  const bool setup = !gone && !c.lingering && c.slot.served() && !c.deadlines.draining() &&
                     c.deadlines.in_setup();
  if (setup == c.setup_counted) return;
  c.setup_counted = setup;
  if (setup) {
    board.setup_added(loop);
  } else {
    board.setup_left(loop);
  }
}

// The connections to visit once at the end of a loop turn (to write what the
// turn produced, re-arm what it ended), each once however often it was
// added.
class TurnQueue {
 public:
  void add(uint64_t id, LoopConnection& c) {
    if (c.queued) return;
    c.queued = true;
    ids_.push_back(id);
  }
  bool empty() const noexcept { return ids_.empty(); }

  // Calls fn(id, conn) for every queued connection still in `table`;
  // connections queued meanwhile wait for the next drain().
  template <typename Table, typename Fn>
  void drain(Table& table, Fn&& fn) {
    visiting_.swap(ids_);
    for (const uint64_t id : visiting_) {
      if (auto* c = table.find(id)) {
        c->queued = false;
        fn(id, *c);
      }
    }
    visiting_.clear();  // keeps its capacity: no allocation per turn
  }

 private:
  std::vector<uint64_t> ids_;
  std::vector<uint64_t> visiting_;
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

// A graceful stop of one connection (server stop, idle timeout): GOAWAY,
// accepted streams finish, the drain deadline bounds it.
inline void shut_down_gracefully(LoopConnection& c, TimerWheel& wheel,
                                 std::chrono::steady_clock::time_point now) noexcept {
  c.session->shutdown();
  c.deadlines.begin_drain(now);
  schedule_timeout(c, wheel);
}

// The connection of `table` to evict at the connection limit: among served
// connections not yet closing, the one longest without progress of those
// still in handshake or preface, else of the idle ones with no open stream
// (ConnectionDeadlines::eviction_class). A scan of the loop's connections,
// made only when the limit is full.
struct EvictionChoice {
  uint64_t id = 0;  // 0: none (connection ids are never 0)
  EvictionReason reason = EvictionReason::kIdle;
};
template <typename Table>
EvictionChoice choose_eviction(const Table& table, std::chrono::steady_clock::time_point now) {
  EvictionChoice best;
  bool best_setup = false;
  std::chrono::steady_clock::time_point best_at{};
  table.for_each([&](uint64_t id, const LoopConnection& c) {
    if (c.lingering || !c.slot.served()) return;
    const EvictionClass k = c.deadlines.eviction_class(now);
    if (k == EvictionClass::kNone) return;
    const bool setup = k != EvictionClass::kIdle;
    const auto at = c.deadlines.last_progress();
    if (best.id != 0 && (best_setup > setup || (best_setup == setup && best_at <= at))) return;
    best.id = id;
    best.reason = k == EvictionClass::kHandshake ? EvictionReason::kHandshake
                  : k == EvictionClass::kPreface ? EvictionReason::kPreface
                                                 : EvictionReason::kIdle;
    best_setup = setup;
    best_at = at;
  });
  return best;
}

// How an evicted connection goes: its served slot is handed over to the
// newcomer either way. One in handshake or preface is closed at once
// (there is no HTTP/2 connection yet to say GOAWAY on); an idle one gets
// GOAWAY(NO_ERROR) — and with TLS close_notify — within kRefusalTimeout,
// holding a closing slot meanwhile; when none is left it is closed at once
// too. Returns true for the graceful way (flush it), false for: close it
// now. `c` must be served (choose_eviction() picks only such).
inline bool evict(LoopConnection& c, EvictionReason reason, TimerWheel& wheel,
                  std::chrono::steady_clock::time_point now) noexcept {
  if (reason == EvictionReason::kIdle && c.slot.evict()) {
    c.session->shutdown();
    c.deadlines.begin_drain(now, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     ConnectionDeadlines::kRefusalTimeout));
    schedule_timeout(c, wheel);
    return true;
  }
  c.slot.hand_over();
  return false;
}

// An event loop's answer to make_room() at the connection limit (accept.h):
// evicts its connection longest without progress (choose_eviction) — but
// first asks another loop of `d` that has one in handshake or preface
// (EvictionBoard), since those go before an idle one of ours. An idle
// victim evicted gracefully is handed to `flush(id, c)` (queue it for
// writing); any other to `close(id, c)` (close it now).
template <typename Table, typename Flush, typename Close>
Room make_room_in(LoopDispatcher& d, unsigned loop, Table& table, TimerWheel& wheel,
                  std::chrono::steady_clock::time_point now, Flush&& flush,
                  Close&& close) noexcept {
  const EvictionChoice victim = choose_eviction(table, now);
  auto* c = table.find(victim.id);
  if (c == nullptr || victim.reason == EvictionReason::kIdle) {
    if (const int other = d.board.request(loop); other >= 0) {
      d.group.wake(static_cast<unsigned>(other));
      return Room::kAsked;
    }
  }
  if (c == nullptr) return Room::kNone;
  note_eviction(d.limit, victim.reason);
  if (evict(*c, victim.reason, wheel, now)) {
    flush(victim.id, *c);
  } else {
    close(victim.id, *c);
  }
  return Room::kHandedOver;
}

// What other loops of `d` asked of loop `loop` (EvictionBoard): close
// connections still in handshake or preface with `close(id, c)`, giving
// their slots back. The grace for young connections is not applied: the
// count the asking loop saw has none, and an overdraft of the limit must be
// repaid.
template <typename Table, typename Close>
void evict_for_other_loops(LoopDispatcher& d, unsigned loop, Table& table, Close&& close) noexcept {
  for (uint32_t n = d.board.take_requests(loop); n > 0; --n) {
    const EvictionChoice victim =
        choose_eviction(table, std::chrono::steady_clock::time_point::max());
    auto* c = table.find(victim.id);
    if (c == nullptr || victim.reason == EvictionReason::kIdle) return;  // gone meanwhile
    note_eviction(d.limit, victim.reason);
    close(victim.id, *c);
  }
}

// The session ended and its last byte is out. Returns false when the peer
// has closed already (close now). Otherwise sends our FIN and lingers: the
// loop keeps reading, and discarding, until the peer's EOF, the linger
// deadline or ConnectionDeadlines::kLingerMaxOctets (linger_discard()), so
// that late input does not turn the close into a reset that could destroy
// the GOAWAY before the peer read it — yet a peer that floods on is not
// read at memory speed for long.
inline bool begin_linger(LoopConnection& c, TimerWheel& wheel,
                         std::chrono::steady_clock::time_point now) noexcept {
  if (c.peer_eof) return false;
  ::shutdown(c.fd, SHUT_WR);
  c.lingering = true;
  // After a connection error, briefly: that peer is likely still sending.
  const char* why = c.session->close_reason();
  c.deadlines.begin_linger(now, why != nullptr && *why != '\0');
  schedule_timeout(c, wheel);
  return true;
}

enum class TimeoutAction {
  kNone,     // not due yet: re-armed
  kGoaway,   // idle: the session was shut down gracefully; flush its GOAWAY
  kClose,    // close the connection now (why was logged)
};

// For a connection whose timer fired.
inline TimeoutAction on_timeout(LoopConnection& c, TimerWheel& wheel,
                                std::chrono::steady_clock::time_point now) noexcept {
  c.deadlines.settle(now);
  const ConnectionDeadlines::Due due = c.deadlines.next();
  if (now < due.at) {
    schedule_timeout(c, wheel);
    return TimeoutAction::kNone;
  }
  const char* why = ConnectionDeadlines::describe(due.kind);
  if (*why != '\0') log_line("closing connection: %s", why);
  if (due.kind != ConnectionDeadlines::Kind::kIdle) return TimeoutAction::kClose;
  shut_down_gracefully(c, wheel, now);
  return TimeoutAction::kGoaway;
}

// Fires the wheel: for each connection of `table` that timed out, calls
// goaway(id, conn) (flush its GOAWAY) or close(id, conn).
template <typename Table, typename Goaway, typename Close>
void expire_timeouts(TimerWheel& wheel, Table& table, std::chrono::steady_clock::time_point now,
                     Goaway&& goaway, Close&& close) {
  wheel.expire(now, [&](TimerWheel::Node& node) {
    auto* c = table.find(node.key);
    if (c == nullptr) return;
    switch (on_timeout(*c, wheel, now)) {
      case TimeoutAction::kNone:
        break;
      case TimeoutAction::kGoaway:
        goaway(node.key, *c);
        break;
      case TimeoutAction::kClose:
        close(node.key, *c);
        break;
    }
  });
}

// The session's own reason for ending, when it has one worth logging.
inline void log_close_reason(const LoopConnection& c) noexcept {
  const char* why = c.session->close_reason();
  if (why != nullptr && *why != '\0') log_line("closing connection: %s", why);
}

}  // namespace h2lab::server
