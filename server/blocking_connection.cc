#include "server/blocking_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "server/connection_deadlines.h"
#include "server/log.h"
#include "server/send_pending.h"
#include "server/socket_options.h"

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

// One read buffer per thread: sessions process it in place and copy only an
// incomplete frame's tail.
constexpr size_t kReadBufferSize = kBlockingReadBuffer;

void publish(ConnectionWatch* watch, const ConnectionDeadlines& deadlines,
             Clock::time_point now) noexcept {
  if (watch == nullptr) return;
  watch->eviction_class.store(deadlines.eviction_class(now), std::memory_order_relaxed);
  watch->last_progress_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    deadlines.last_progress().time_since_epoch())
                                    .count(),
                                std::memory_order_relaxed);
}

enum class Io { kDone, kTimedOut, kFailed };

// Writes everything the session has pending (sendmsg: no SIGPIPE from a peer
// that went away). kTimedOut means one tick passed with the socket full;
// `written` tells how much went out before.
Io flush(int fd, Session& session, size_t& written, ThreadStats& stats) noexcept {
  written = 0;
  while (session.wants_write()) {
    const ssize_t n = send_pending(fd, session, 0, stats).sent;
    if (n >= 0) {
      session.on_written(static_cast<size_t>(n));
      written += static_cast<size_t>(n);
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
// a reset — bounded in time (shorter after a connection error) and in
// octets (ConnectionDeadlines::kLingerMaxOctets).
void linger(int fd, ConnectionDeadlines& deadlines, bool after_error, uint8_t* buffer, size_t size,
            ThreadStats& stats) noexcept {
  ::shutdown(fd, SHUT_WR);
  stats.syscalls.add();
  deadlines.begin_linger(Clock::now(), after_error);
  while (Clock::now() < deadlines.next().at) {
    const ssize_t n = ::read(fd, buffer, size);
    stats.reads.add();
    stats.syscalls.add();
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
    if (n > 0 && !deadlines.linger_discard(static_cast<size_t>(n))) return;
  }
}

}  // namespace

uint8_t* blocking_read_buffer() noexcept {
  // new[] without (): not value-initialised, so no page is touched here.
  thread_local std::unique_ptr<uint8_t[]> buffer(new uint8_t[kBlockingReadBuffer]);
  return buffer.get();
}

bool set_blocking_tick(int fd) noexcept {
  const timeval tick{0, kBlockingTickMs * 1000};
  return ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tick, sizeof tick) == 0;
}

void serve_blocking_connection(int fd, Session& session, const ServerOptions& options,
                               const std::atomic<bool>& stopping, ThreadStats& stats,
                               bool refused, ConnectionWatch* watch) noexcept {
  uint8_t* const buffer = blocking_read_buffer();
  set_blocking_tick(fd);
  stats.syscalls.add(2);  // SO_RCVTIMEO, SO_SNDTIMEO

  ConnectionDeadlines deadlines(options, Clock::now(), refused, session.progress());
  bool peer_eof = false;
  bool clean_end = false;  // the session ended and its output went out: linger
  const char* end_reason = nullptr;

  while (true) {
    if (!deadlines.draining() && stopping.load(std::memory_order_relaxed)) {
      session.shutdown();
      deadlines.begin_drain(Clock::now());
    }
    size_t octets_out = 0;
    const Io written = flush(fd, session, octets_out, stats);
    if (written == Io::kDone && octets_out > 0) stats.syscalls.add(push_corked(fd, options));
    deadlines.on_write(Clock::now(), octets_out, session.wants_write(), session.progress());
    if (written == Io::kFailed) break;  // the peer went away; nothing to tell it
    if (session.wants_close()) {
      clean_end = true;
      break;
    }
    const auto now = Clock::now();
    if (watch != nullptr) {
      publish(watch, deadlines, now);
      const int evicted = watch->evict.exchange(-1, std::memory_order_relaxed);
      if (evicted == static_cast<int>(EvictionReason::kIdle) && !deadlines.draining()) {
        session.shutdown();  // GOAWAY(NO_ERROR), then the end as usual
        deadlines.begin_drain(now, std::chrono::duration_cast<Clock::duration>(
                                       ConnectionDeadlines::kRefusalTimeout));
        continue;
      }
      if (evicted >= 0 && evicted != static_cast<int>(EvictionReason::kIdle)) break;  // no word
    }
    deadlines.settle(now);
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

    const ssize_t n = ::read(fd, buffer, kReadBufferSize);
    stats.reads.add();
    stats.syscalls.add();
    if (n > 0) {
      if (rearm_quickack(fd, options)) stats.syscalls.add();
      session.on_data({buffer, static_cast<size_t>(n)});
      deadlines.on_input(Clock::now(), session.progress(), static_cast<size_t>(n));
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
  if (watch != nullptr) watch->eviction_class.store(EvictionClass::kNone);
  if (clean_end && !peer_eof) {
    linger(fd, deadlines, end_reason != nullptr && *end_reason != '\0', buffer, kReadBufferSize,
           stats);
  }
  ::close(fd);
  stats.syscalls.add();
}

}  // namespace h2lab::server
