// What every concurrent dispatcher (threaded, epoll, uring) does with a
// socket accept(2) returned, and with accept(2)'s errors.
#pragma once

#include <memory>
#include <optional>

#include "server/connection_limit.h"
#include "server/dispatcher.h"
#include "server/session.h"

namespace h2lab::server {

// An accepted connection, admitted under the limit: served by the
// configured engine, or — above the limit — by a refusing one.
struct NewConnection {
  int fd = -1;
  std::unique_ptr<Session> session;
  AdmissionSlot slot;  // gives the limit back when the connection goes
};

// What a dispatcher offers admit_connection() to make room at the limit:
// make_room() evicts one of its connections — the one longest without
// progress among those still in handshake or preface, else among the idle
// ones with no open stream — or has another thread evict one. Called only
// when the limit is full, on the accepting thread.
enum class Room {
  kNone,        // nothing to evict: refuse the newcomer
  kHandedOver,  // evicted here: its served slot was handed over (AdmissionSlot::evict(), hand_over())
  kAsked,       // another thread will evict one: admit above the limit meanwhile
};
class RoomMaker {
 public:
  virtual Room make_room() noexcept = 0;

 protected:
  ~RoomMaker() = default;
};

// Counts an eviction in `limit` and logs the evictions at most once a
// second (how many since the last line, by reason), not once per
// connection: a dribbler fleet makes thousands.
void note_eviction(ConnectionLimit& limit, EvictionReason why) noexcept;

// Admits `fd` (it inherited the socket knobs from the listener,
// server/socket_options.h).
// The session counts into `stats` — the counters of the thread that will
// drive it — and a served connection and the system calls made on `fd` are
// counted there; null: the caller counts the connection (threaded: on the
// connection's own thread). At a full limit `room`, when given, is asked
// to make room before the connection is refused. Returns nothing —
// after closing `fd` and logging — when the connection is dropped (too many
// refusals at once) or no session could be made.
std::optional<NewConnection> admit_connection(int fd, ConnectionLimit& limit,
                                              const DispatchContext& context,
                                              ThreadStats* stats, RoomMaker* room = nullptr);

// One line for the log when a dispatcher stops: connections served and
// refused over its life.
void log_connection_counts(const ConnectionCounts& counts) noexcept;

enum class AcceptFailure {
  kEmpty,      // EAGAIN: the backlog is empty
  kRetry,      // this connection failed (aborted, interrupted): accept the next
  kExhausted,  // out of descriptors or memory: pause accepting a moment
  kClosed,     // EINVAL: the listener was shut down (graceful stop)
};
// Classifies accept(2)'s errno; logs kExhausted (at most once a second).
AcceptFailure classify_accept_error(int error_number) noexcept;

// How long to stop accepting after kExhausted: the listener stays readable,
// so retrying at once would spin.
inline constexpr int kAcceptPauseMs = 100;

}  // namespace h2lab::server
