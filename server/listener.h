// The listening socket of a server.
#pragma once

#include <string>
#include <vector>

#include "server/options.h"

namespace h2lab::server {

struct Listener {
  int fd = -1;
  std::string url;  // "https://127.0.0.1:8443/" (TLS) or "http://…", with the real port
  // What the kernel changed of the socket knobs and the backlog, one line
  // each, for the log (server/socket_options.h).
  std::vector<std::string> notices;
};

// Resolves options.host, applies the socket knobs (configure_listener(),
// server/socket_options.h), binds resolved_port(options) (SO_REUSEADDR),
// listens with options.listen_backlog and, with options.incoming_cpu, sets
// SO_INCOMING_CPU = options.cpus[0] (the CPU of loop 0). On success returns
// true and fills `out` (the caller owns out.fd); on failure returns false
// with a message in `error` that names the host and port, or the flag the
// kernel refused.
bool open_listener(const ServerOptions& options, Listener& out, std::string& error);

// True when the dispatcher the options name gives each of its threads an
// SO_REUSEPORT listener of its own (epoll, uring with --epoll-listener
// reuseport): open_listener() then binds the server's listener with
// SO_REUSEPORT — after checking that no other socket holds the port, since
// a second reuseport server of the same user would otherwise silently share
// it.
bool listener_uses_reuseport(const ServerOptions& options);

// Another SO_REUSEPORT listener on the address `listen_fd` is bound to (the
// kernel spreads new connections across the group), with the same socket
// knobs and backlog. Returns the new fd, or -1 with a message in `error`.
int open_reuseport_sibling(int listen_fd, const ServerOptions& options, std::string& error);

}  // namespace h2lab::server
