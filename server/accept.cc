#include "server/accept.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "proto/refuse_engine.h"
#include "server/log.h"

namespace h2lab::server {
namespace {

// For conditions a flood can repeat thousands of times a second.
bool first_this_second(std::atomic<int64_t>& last) noexcept {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  return last.exchange(now, std::memory_order_relaxed) != now;
}

}  // namespace

std::optional<NewConnection> admit_connection(int fd, ConnectionLimit& limit,
                                              const DispatchContext& context,
                                              ThreadStats* stats, RoomMaker* room) {
  const Room made = room != nullptr && limit.full() ? room->make_room() : Room::kNone;
  const Admission admission = made == Room::kHandedOver ? limit.admit_handed_over()
                              : made == Room::kAsked    ? limit.admit_over()
                                                        : limit.admit();
  AdmissionSlot slot(limit, admission);
  if (admission == Admission::kDrop) {
    static std::atomic<int64_t> last_logged{0};
    if (first_this_second(last_logged)) {
      log_line("server full and %zu refusals in progress: closing a new connection at once",
               ConnectionLimit::kMaxRefusing);
    }
    if (stats != nullptr) stats->syscalls.add();  // the close
    ::close(fd);
    return std::nullopt;
  }
  std::unique_ptr<Session> session;
  if (admission == Admission::kServe) {
    session = context.new_session();
  } else if (context.session_with_engine) {
    session = context.session_with_engine(std::make_unique<proto::RefuseEngine>());
  } else {
    session = std::make_unique<Session>(std::make_unique<proto::RefuseEngine>(),
                                        context.options.max_output_bytes);
  }
  if (!session) {
    log_line("no session for a new connection: closing it");
    if (stats != nullptr) stats->syscalls.add();  // the close
    ::close(fd);
    return std::nullopt;
  }
  if (stats != nullptr) {
    session->count_into(stats);
    if (admission == Admission::kServe) stats->connections.add();
  }
  return NewConnection{fd, std::move(session), std::move(slot)};
}

void note_eviction(ConnectionLimit& limit, EvictionReason why) noexcept {
  limit.count_eviction(why);
  const int64_t second = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  uint64_t n[3];
  if (!limit.eviction_report(second, n)) return;
  log_line("server full: evicted %llu connections to admit newcomers (%llu in the TLS handshake, "
           "%llu before the preface, %llu idle with no stream)",
           static_cast<unsigned long long>(n[0] + n[1] + n[2]), static_cast<unsigned long long>(n[0]),
           static_cast<unsigned long long>(n[1]), static_cast<unsigned long long>(n[2]));
}

void log_connection_counts(const ConnectionCounts& c) noexcept {
  const uint64_t evicted = c.evicted_handshake + c.evicted_preface + c.evicted_idle;
  if (c.refused == 0 && evicted == 0) return;  // the usual case says nothing
  log_line("%llu connections served; %llu refused above --max-connections (%llu of them closed "
           "at once: too many refusals in progress); %llu evicted to make room",
           static_cast<unsigned long long>(c.accepted), static_cast<unsigned long long>(c.refused),
           static_cast<unsigned long long>(c.dropped), static_cast<unsigned long long>(evicted));
}

AcceptFailure classify_accept_error(int error_number) noexcept {
  switch (error_number) {
    case EAGAIN:
#if EAGAIN != EWOULDBLOCK
    case EWOULDBLOCK:
#endif
      return AcceptFailure::kEmpty;
    case EINVAL:
      return AcceptFailure::kClosed;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM: {
      static std::atomic<int64_t> last_logged{0};
      if (first_this_second(last_logged)) {
        log_line("accept failed: %s; pausing accepts for %d ms", std::strerror(error_number),
                 kAcceptPauseMs);
      }
      return AcceptFailure::kExhausted;
    }
    default:
      // ECONNABORTED, EINTR, EPROTO, EPERM (firewall) and the network errors
      // accept(2) passes on for the new socket: that one connection failed.
      return AcceptFailure::kRetry;
  }
}

}  // namespace h2lab::server
