// Everything a user can choose about a server: the same options drive
// create_server() and the //server:main command line.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proto/connection.h"

namespace h2lab::tls {
class Context;  // tls/context.h
}  // namespace h2lab::tls

namespace h2lab::server {

// How connections are served (see docs/ARCHITECTURE.md).
enum class Dispatch { kBlocking, kThreaded, kEpoll, kUring };

// How the epoll and uring dispatchers' threads share the listening port:
// one SO_REUSEPORT listener per thread (the kernel spreads connections), or
// the one listener shared by all (epoll: EPOLLEXCLUSIVE wakes one thread).
enum class ListenerMode { kReuseport, kExclusive };

// Which HTTP/2 engine answers: the seed's simplified one is the baseline.
enum class EngineKind { kFull, kMini };

// Name ↔ value tables, used for parsing, --help and error messages.
std::string_view dispatch_name(Dispatch d) noexcept;
std::optional<Dispatch> parse_dispatch(std::string_view name) noexcept;
std::string dispatch_choices();  // "blocking, threaded, epoll, uring"

std::string_view listener_mode_name(ListenerMode m) noexcept;
std::optional<ListenerMode> parse_listener_mode(std::string_view name) noexcept;
std::string listener_mode_choices();

struct ServerOptions;
// options.threads, or when 0 the number of CPUs this process may run on.
unsigned resolved_threads(const ServerOptions& options) noexcept;

std::string_view engine_name(EngineKind e) noexcept;
std::optional<EngineKind> parse_engine(std::string_view name) noexcept;
std::string engine_choices();

struct ServerOptions {
  std::string host = "127.0.0.1";  // numeric address or a name; "::1" for IPv6
  // Unset: 8443 with TLS, 8080 without (resolved_port()). 0 picks a free
  // port; url() tells which.
  std::optional<uint16_t> port;
  Dispatch dispatch = Dispatch::kEpoll;
  EngineKind engine = EngineKind::kFull;
  // HTTP/2 settings and limits of the full engine (proto/connection.h;
  // defaults and reasons in docs/LIMITS.md). output_high_water and
  // stats_json are set by the server.
  proto::ConnectionOptions http2;

  // A connection that sends nothing for this long is closed. The blocking
  // dispatcher serves one client at a time, so this is also how long an idle
  // client can hold the server. h2o's default.
  std::chrono::milliseconds idle_timeout{10000};
  // A write that makes no progress for this long closes the connection
  // (a peer that stopped reading). nghttpx's write timeout.
  std::chrono::milliseconds write_timeout{30000};
  // After a graceful stop began, connections still open after this long are
  // closed.
  std::chrono::milliseconds drain_timeout{5000};
  // Backpressure: above this many octets of unsent output a connection stops
  // reading until the socket drains. h2o's 512 KiB.
  size_t max_output_bytes = 512 * 1024;
  // listen(2) backlog; the kernel clamps it to net.core.somaxconn.
  int listen_backlog = 4096;

  // Reactor (epoll) or proactor (uring) threads; 0 = one per CPU this
  // process may run on (sched_getaffinity, so `taskset -c 0` gives 1).
  unsigned threads = 0;
  ListenerMode listener_mode = ListenerMode::kReuseport;
  // uring: a kernel thread polls the submission queue (IORING_SETUP_SQPOLL).
  bool uring_sqpoll = false;
  // Connections served at once (threaded, epoll, uring); a client above the
  // limit gets SETTINGS and GOAWAY "server full", then a close. The Envoy
  // edge guide's default.
  size_t max_connections = 10000;
  // TCP_NODELAY on accepted sockets (the seed's Nagle switch). On: every
  // write leaves at once; off: the kernel may hold small writes back
  // (Nagle), which costs latency at few streams.
  bool tcp_nodelay = true;

  // Called once, from create_server(), when the socket listens; receives the
  // real URL (with the port the kernel chose when port was 0).
  std::function<void(const std::string& url)> on_listening;

  // TLS (tls/, docs/TLS.md): h2 over TLS 1.2/1.3, ALPN "h2" only. Off:
  // cleartext HTTP/2 with prior knowledge (h2c).
  bool tls = true;
  // PEM certificate (chain) and unencrypted key. Both empty: an ephemeral
  // self-signed EC P-256 certificate for localhost, 127.0.0.1 and ::1,
  // generated at start.
  std::string cert_file;
  std::string key_file;
  // Session tickets and the session cache; off makes every connection a
  // full handshake (experiments).
  bool tls_session_resumption = true;
  // A connection whose TLS handshake has not finished after this long is
  // closed (a client that connects and sends nothing, or too little).
  std::chrono::milliseconds handshake_timeout{10000};
  // SNI hook (tls::ServerNameHook): the server name a client asked for → the
  // context (certificate) to use, or null to keep the default. Called on the
  // threads that serve connections; must be thread-safe and must not throw.
  std::function<std::shared_ptr<tls::Context>(std::string_view server_name)> on_server_name;
  // A ready TLS context, used as it is instead of the four fields above
  // (//server:main builds it first to print its fingerprint).
  std::shared_ptr<tls::Context> tls_context;
};

// options.port, or the default port for options.tls when it is unset.
uint16_t resolved_port(const ServerOptions& options) noexcept;

}  // namespace h2lab::server
