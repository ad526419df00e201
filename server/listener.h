// The listening socket of a server.
#pragma once

#include <string>

#include "server/options.h"

namespace h2lab::server {

struct Listener {
  int fd = -1;
  std::string url;  // "https://127.0.0.1:8443/" (TLS) or "http://…", with the real port
};

// Resolves options.host, binds resolved_port(options) (SO_REUSEADDR) and listens with
// options.listen_backlog. On success returns true and fills `out` (the caller
// owns out.fd); on failure returns false with a message in `error` that names
// the host and port.
bool open_listener(const ServerOptions& options, Listener& out, std::string& error);

}  // namespace h2lab::server
