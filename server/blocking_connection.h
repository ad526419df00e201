// Serving one connection with blocking reads and writes, shared by the
// `blocking` and `threaded` dispatchers.
#pragma once

#include <atomic>

#include "server/options.h"
#include "server/session.h"
#include "server/stats.h"

namespace h2lab::server {

// How often a blocked read or write wakes up to look at `stopping` and the
// timeouts (SO_RCVTIMEO / SO_SNDTIMEO). Blocking I/O stays blocking: no
// poll(2) before each read; the only cost is one wake-up per tick when idle.
inline constexpr int kBlockingTickMs = 100;

// Sets the tick as the receive timeout of `fd`, so that accept(2) on a
// listening socket wakes up to notice a stop. Returns false on failure.
bool set_blocking_tick(int fd) noexcept;

// Serves `fd` until the session ends, the peer goes, a timeout fires, or the
// drain after `stopping` became true runs out. When `stopping` becomes true
// — or the connection is idle too long — the session is shut down gracefully
// (GOAWAY) and its accepted streams are finished. After the session's last
// byte the socket is half-closed and lingers until the peer's EOF (see
// ConnectionDeadlines). `refused` marks a connection above the limit, served
// by a refusing engine with a short idle timeout. Its reads, writes and
// system calls are counted in `stats` (the calling thread's; the session
// must count into the same). Closes `fd` before returning.
void serve_blocking_connection(int fd, Session& session, const ServerOptions& options,
                               const std::atomic<bool>& stopping, ThreadStats& stats,
                               bool refused = false) noexcept;

}  // namespace h2lab::server
