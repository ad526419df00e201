// Serving one connection with blocking reads and writes, shared by the
// `blocking` and `threaded` dispatchers.
#pragma once

#include <atomic>
#include <cstdint>

#include "server/connection_deadlines.h"
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

// threaded: what the acceptor sees of one connection thread's connection
// (published by serve_blocking_connection once per loop turn, at least once
// a tick) and how it asks that connection to make room at the limit.
struct ConnectionWatch {
  std::atomic<EvictionClass> eviction_class{EvictionClass::kNone};
  std::atomic<int64_t> last_progress_ns{0};  // steady_clock, since its epoch
  // -1, or the EvictionReason the acceptor evicted the connection for: the
  // thread closes it (handshake, preface) or says GOAWAY (idle) within a
  // tick. The acceptor already moved its slot (AdmissionSlot::evict()).
  std::atomic<int> evict{-1};
};

// Serves `fd` until the session ends, the peer goes, a timeout fires, or the
// drain after `stopping` became true runs out. When `stopping` becomes true
// — or the connection is idle too long — the session is shut down gracefully
// (GOAWAY) and its accepted streams are finished. After the session's last
// byte the socket is half-closed and lingers until the peer's EOF (see
// ConnectionDeadlines). `refused` marks a connection above the limit, served
// by a refusing engine with a short idle timeout. Its reads, writes and
// system calls are counted in `stats` (the calling thread's; the session
// must count into the same). `watch`, when given, is kept up to date and
// obeyed (threaded). Closes `fd` before returning.
void serve_blocking_connection(int fd, Session& session, const ServerOptions& options,
                               const std::atomic<bool>& stopping, ThreadStats& stats,
                               bool refused = false, ConnectionWatch* watch = nullptr) noexcept;

// The read buffer of the calling thread (kBlockingReadBuffer octets),
// allocated on first use and left untouched until read into: a thread that
// serves a dribbler touches a page of it, not 64 KiB (static thread-local
// storage would be zeroed, every page of it, at each thread's start).
uint8_t* blocking_read_buffer() noexcept;
inline constexpr size_t kBlockingReadBuffer = 64 * 1024;

}  // namespace h2lab::server
