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

// Admits `fd` (it inherited the socket knobs from the listener,
// server/socket_options.h).
// The session counts into `stats` — the counters of the thread that will
// drive it — and a served connection and the system calls made on `fd` are
// counted there; null: the caller counts the connection (threaded: on the
// connection's own thread). Returns nothing —
// after closing `fd` and logging — when the connection is dropped (too many
// refusals at once) or no session could be made.
std::optional<NewConnection> admit_connection(int fd, ConnectionLimit& limit,
                                              const DispatchContext& context,
                                              ThreadStats* stats);

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
