// h2lab's one entry point: create_server() starts a server with any
// dispatcher and engine and returns a handle to it.
//
//   auto [server, error] = h2lab::server::create_server(options);
//   if (!server) { report(error); }
//   ... server->url() ...
//   server->stop();   // graceful: GOAWAY, finish accepted streams, close
//   server->wait();
#pragma once

#include <memory>
#include <string>

#include "server/options.h"

namespace h2lab::server {

class Server {
 public:
  virtual ~Server() = default;  // stops (gracefully) and waits
  // The URL the server listens on, with the real port.
  virtual const std::string& url() const noexcept = 0;
  // Begins a graceful stop; thread-safe, idempotent, returns at once.
  virtual void stop() noexcept = 0;
  // Blocks until the server has stopped and every connection has ended.
  virtual void wait() noexcept = 0;

  // The server's counters (server/stats.h, fields in docs/STATS.md): the
  // JSON that /stats serves under "server", a few lines of summary (main
  // prints them on stop), and one live line of rates since the previous
  // call (--stats-interval; call it from one thread). Thread-safe otherwise.
  virtual std::string stats_json() const = 0;
  virtual std::string stats_summary() const = 0;
  virtual std::string stats_live_line() = 0;
};

struct CreateResult {
  std::unique_ptr<Server> server;  // null on failure
  std::string error;               // why, on failure: names what to change
};

// Checks the options (options_conflict()), listens on
// options.host:options.port — reporting socket options the kernel changed
// (server/socket_options.h) — calls options.on_listening(url) once
// the socket listens, and serves on a thread of its own (plus the threads
// the dispatcher starts) until stop().
CreateResult create_server(const ServerOptions& options);

}  // namespace h2lab::server
