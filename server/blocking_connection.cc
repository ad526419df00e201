#include "server/blocking_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "server/connection_deadlines.h"
#include "server/log.h"
#include "server/send_pending.h"
#include "server/socket_options.h"

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

// One read buffer per thread: sessions process it in place and copy only an
// incomplete frame's tail.
constexpr size_t kReadBufferSize = 64 * 1024;

enum class Io { kDone, kTimedOut, kFailed };

// Writes everything the session has pending (sendmsg: no SIGPIPE from a peer
// that went away). kTimedOut means one tick passed with the socket full;
// `progressed` tells whether anything went out before.
Io flush(int fd, Session& session, bool& progressed, ThreadStats& stats) noexcept {
  progressed = false;
  while (session.wants_write()) {
    const ssize_t n = send_pending(fd, session, 0, stats).sent;
    if (n >= 0) {
      session.on_written(static_cast<size_t>(n));
      progressed = progressed || n > 0;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::kTimedOut;
    return Io::kFailed;
  }
  return Io::kDone;
}

// After our last byte: FIN, then read and discard until the peer's EOF or
// the linger deadline, so that unread late input does not turn close(2) into
// a reset.
void linger(int fd, ConnectionDeadlines& deadlines, uint8_t* buffer, size_t size,
            ThreadStats& stats) noexcept {
  ::shutdown(fd, SHUT_WR);
  stats.syscalls.add();
  deadlines.begin_linger(Clock::now());
  while (Clock::now() < deadlines.next().at) {
    const ssize_t n = ::read(fd, buffer, size);
    stats.reads.add();
    stats.syscalls.add();
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
  }
}

}  // namespace

bool set_blocking_tick(int fd) noexcept {
  const timeval tick{0, kBlockingTickMs * 1000};
  return ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tick, sizeof tick) == 0;
}

void serve_blocking_connection(int fd, Session& session, const ServerOptions& options,
                               const std::atomic<bool>& stopping, ThreadStats& stats,
                               bool refused) noexcept {
  thread_local uint8_t buffer[kReadBufferSize];
  set_blocking_tick(fd);
  stats.syscalls.add(2);  // SO_RCVTIMEO, SO_SNDTIMEO

  ConnectionDeadlines deadlines(options, Clock::now(), refused, session.handshake_done());
  bool peer_eof = false;
  bool clean_end = false;  // the session ended and its output went out: linger
  const char* end_reason = nullptr;

  while (true) {
    if (!deadlines.draining() && stopping.load(std::memory_order_relaxed)) {
      session.shutdown();
      deadlines.begin_drain(Clock::now());
    }
    bool progressed = false;
    const Io written = flush(fd, session, progressed, stats);
    deadlines.on_write(Clock::now(), progressed, session.wants_write());
    if (written == Io::kFailed) break;  // the peer went away; nothing to tell it
    if (session.wants_close()) {
      clean_end = true;
      break;
    }
    const auto now = Clock::now();
    if (const auto due = deadlines.next(); now >= due.at) {
      if (due.kind != ConnectionDeadlines::Kind::kIdle) {
        end_reason = ConnectionDeadlines::describe(due.kind);
        break;
      }
      // Idle: a graceful stop of this connection (GOAWAY, then close).
      log_line("closing connection: idle timeout");
      session.shutdown();
      deadlines.begin_drain(now);
      continue;
    }
    if (written == Io::kTimedOut) continue;  // the socket is full: no reading meanwhile
    if (peer_eof) {
      // Nothing more to read; the session is still answering (it ends by
      // itself or at a deadline): wait a tick rather than read EOF again.
      ::usleep(kBlockingTickMs * 1000);
      continue;
    }

    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    stats.reads.add();
    stats.syscalls.add();
    if (n > 0) {
      if (rearm_quickack(fd, options)) stats.syscalls.add();
      session.on_data({buffer, static_cast<size_t>(n)});
      deadlines.on_input(Clock::now(), session.handshake_done());
    } else if (n == 0) {
      peer_eof = true;
      session.on_eof();
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      session.on_eof();  // so that TLS can tell a reset inside a record
      break;             // ECONNRESET and friends
    }
  }
  if (end_reason == nullptr && *session.close_reason() != '\0') end_reason = session.close_reason();
  if (end_reason != nullptr && *end_reason != '\0') log_line("closing connection: %s", end_reason);
  if (clean_end && !peer_eof) linger(fd, deadlines, buffer, sizeof buffer, stats);
  ::close(fd);
  stats.syscalls.add();
}

}  // namespace h2lab::server
