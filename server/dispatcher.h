// A dispatcher decides how connections are served: it accepts, moves bytes
// between sockets and Sessions, notices timeouts and closes. It has no
// protocol knowledge. One dispatcher, one .cc file (DESIGN.md).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "proto/engine.h"
#include "server/connection_limit.h"
#include "server/options.h"
#include "server/session.h"
#include "server/stats.h"

namespace h2lab::server {

// What the server hands a dispatcher; it outlives the dispatcher.
struct DispatchContext {
  const ServerOptions& options;
  int listen_fd = -1;  // owned by the server; the dispatcher never closes it
  // A fresh Session (engine included) for each accepted connection.
  std::function<std::unique_ptr<Session>()> new_session;
  // A Session around a given engine, with everything else (TLS) as
  // new_session() would set it up: how a client above the connection limit
  // is refused over TLS too. When empty, a plain Session.
  std::function<std::unique_ptr<Session>(std::unique_ptr<proto::Engine>)> session_with_engine;
  // Where each serving thread opens its counters (server/stats.h).
  StatsRegistry& stats;
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // Serves until stop() was called and every connection has ended. Runs on
  // the calling thread (plus any threads the dispatcher starts and joins).
  virtual void run() = 0;
  // Begins a graceful stop: accept nothing more, GOAWAY to every connection,
  // let accepted streams finish (up to options.drain_timeout). Thread-safe;
  // returns at once.
  virtual void stop() noexcept = 0;
  // Connections served and refused so far (server/connection_limit.h).
  // Thread-safe.
  virtual ConnectionCounts counts() const noexcept { return {}; }
};

// Returns the dispatcher the options name, or null with why in `error` —
// naming the flag to change — when it cannot run here (io_uring unavailable,
// a ring setting the kernel refuses). create_server() reports it.
std::unique_ptr<Dispatcher> make_dispatcher(const DispatchContext& context, std::string& error);

// Each dispatcher's factory, defined in its own file.
std::unique_ptr<Dispatcher> make_blocking_dispatcher(const DispatchContext& context);
std::unique_ptr<Dispatcher> make_threaded_dispatcher(const DispatchContext& context);
std::unique_ptr<Dispatcher> make_epoll_dispatcher(const DispatchContext& context);
std::unique_ptr<Dispatcher> make_uring_dispatcher(const DispatchContext& context,
                                                  std::string& error);

}  // namespace h2lab::server
