// The one write system call of the dispatchers that write themselves
// (blocking, threaded, epoll): sendmsg(2) of what a session has pending,
// counted. uring submits its sends instead (server/uring_dispatcher.cc).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <climits>
#include <cstddef>

#include "server/session.h"
#include "server/stats.h"

namespace h2lab::server {

struct SendResult {
  ssize_t sent;    // sendmsg's result: octets, or -1 with errno set
  size_t offered;  // octets offered: less than all pending past IOV_MAX pieces
  bool all_taken() const noexcept { return sent >= 0 && static_cast<size_t>(sent) == offered; }
};

// Sends session.pending_output() (at most IOV_MAX pieces; MSG_NOSIGNAL, so
// a peer that went away is EPIPE, not SIGPIPE, plus `flags`) and counts a
// write, a system call and — when the kernel took less than offered — a
// partial write in `stats`. The caller hands what was sent to
// session.on_written(). errno is sendmsg's.
inline SendResult send_pending(int fd, const Session& session, int flags,
                               ThreadStats& stats) noexcept {
  const auto iov = session.pending_output();
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = std::min<size_t>(iov.size(), IOV_MAX);
  size_t offered = 0;
  for (size_t i = 0; i < msg.msg_iovlen; ++i) offered += iov[i].iov_len;
  const ssize_t sent = ::sendmsg(fd, &msg, MSG_NOSIGNAL | flags);
  stats.writes.add();
  stats.syscalls.add();
  if (sent >= 0 && static_cast<size_t>(sent) < offered) stats.partial_writes.add();
  return {sent, offered};
}

}  // namespace h2lab::server
