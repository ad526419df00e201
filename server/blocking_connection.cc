#include "server/blocking_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "server/log.h"

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

// One read buffer per thread: sessions process it in place and copy only an
// incomplete frame's tail.
constexpr size_t kReadBufferSize = 64 * 1024;

enum class Io { kDone, kTimedOut, kFailed };

// Writes everything the session has pending. kTimedOut means one tick passed
// with the socket full; `progressed` tells whether anything went out before.
Io flush(int fd, Session& session, bool& progressed) noexcept {
  progressed = false;
  while (session.wants_write()) {
    const auto iov = session.pending_output();
    const ssize_t n = ::writev(fd, iov.data(), static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX)));
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

}  // namespace

bool set_blocking_tick(int fd) noexcept {
  const timeval tick{0, kBlockingTickMs * 1000};
  return ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tick, sizeof tick) == 0;
}

void serve_blocking_connection(int fd, Session& session, const ServerOptions& options,
                               const std::atomic<bool>& stopping) noexcept {
  thread_local uint8_t buffer[kReadBufferSize];
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_blocking_tick(fd);

  auto last_input = Clock::now();
  const auto accepted = last_input;  // the TLS handshake must finish in time
  Clock::time_point write_blocked_since{};  // epoch while writes progress
  Clock::time_point drain_deadline = Clock::time_point::max();
  const char* end_reason = nullptr;

  while (true) {
    if (drain_deadline == Clock::time_point::max() && stopping.load(std::memory_order_relaxed)) {
      session.shutdown();
      drain_deadline = Clock::now() + options.drain_timeout;
    }
    bool progressed = false;
    const Io written = flush(fd, session, progressed);
    if (written == Io::kFailed) break;  // the peer went away; nothing to tell it
    if (session.wants_close()) break;
    const auto now = Clock::now();
    if (!session.handshake_done() && now - accepted >= options.handshake_timeout) {
      end_reason = "TLS handshake timeout";
      break;
    }
    if (now >= drain_deadline) {
      end_reason = "drain timeout after graceful stop";
      break;
    }
    if (written == Io::kTimedOut) {
      // A tick passed with the socket full: the stall is measured from the
      // last tick in which anything was written.
      if (progressed || write_blocked_since == Clock::time_point{}) write_blocked_since = now;
      if (now - write_blocked_since >= options.write_timeout) {
        end_reason = "write timeout (peer stopped reading)";
        break;
      }
      continue;
    }
    write_blocked_since = {};

    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      session.on_data({buffer, static_cast<size_t>(n)});
      last_input = Clock::now();
    } else if (n == 0) {
      session.on_eof();
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (Clock::now() - last_input >= options.idle_timeout) {
        end_reason = "idle timeout";
        break;
      }
    } else {
      session.on_eof();  // so that TLS can tell a reset inside a record
      break;             // ECONNRESET and friends
    }
  }
  if (end_reason == nullptr && *session.close_reason() != '\0') end_reason = session.close_reason();
  if (end_reason != nullptr) log_line("closing connection: %s", end_reason);
  ::close(fd);
}

}  // namespace h2lab::server
