// What every accepted connection's socket gets, whatever the dispatcher:
// one place for the per-socket knobs.
#pragma once

#include "server/options.h"

namespace h2lab::server {

// Applies options.tcp_nodelay (TCP_NODELAY: Nagle's algorithm off, so small
// frames leave at once) to an accepted socket. Returns false if the kernel
// refused; the connection is still usable.
bool configure_accepted_socket(int fd, const ServerOptions& options) noexcept;

// TCP_QUICKACK is not sticky: the kernel leaves quick-ack mode on its own,
// so with options.tcp_quickack a dispatcher calls this after every read.
// Returns true when it made a system call (for the counters).
bool rearm_quickack(int fd, const ServerOptions& options) noexcept;

}  // namespace h2lab::server
