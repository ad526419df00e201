// //server:main — the h2lab command line: a thin layer over ServerOptions
// and create_server(). Prints how to reach the server, serves until SIGINT or
// SIGTERM (graceful stop; a second SIGINT exits at once).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "server/server.h"
#include "tls/context.h"

namespace {

using h2lab::server::ServerOptions;

constexpr const char* kUsage = R"(Usage: bazel run //server:main -- [options]

Serves HTTP/2 over TLS (h2; cleartext h2c with --tls off) until Ctrl-C or
SIGTERM.

Options:
  --host HOST            address to listen on (default 127.0.0.1; ::1 for IPv6)
  --port PORT            TCP port, 0 picks a free one (default 8443, or 8080
                         with --tls off)
  --dispatch NAME        how connections are served: %s (default epoll)
  --threads N            epoll/uring loop threads, 0 = one per CPU (default 0)
  --epoll-listener MODE  epoll/uring: reuseport (one listener per thread) or
                         exclusive (one shared listener) (default reuseport)
  --uring-sqpoll         uring: a kernel thread polls the submission queues
  --max-connections N    above this, clients get GOAWAY "server full" (default 10000)
  --engine NAME          HTTP/2 engine: %s (default full)
  --idle-timeout MS      close a connection silent this long (default 10000)
  --tcp-nodelay on|off   TCP_NODELAY on accepted sockets; off lets Nagle's
                         algorithm hold small writes back (default on)
  --tls on|off           h2 over TLS 1.2/1.3 with ALPN, or cleartext h2c with
                         prior knowledge (default on)
  --cert FILE            PEM certificate (chain) and its unencrypted key;
  --key FILE             without them, an ephemeral self-signed certificate
                         for localhost, 127.0.0.1 and ::1
  --tls-resumption on|off
                         TLS session tickets and cache (default on)
  --no-session-resumption
                         the same as --tls-resumption off
  --handshake-timeout MS close a connection whose TLS handshake is not done
                         after this long (default 10000)
  --help                 this text

On start the first line printed is "h2lab listening on URL".
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "h2lab: %s\nTry --help.\n", message.c_str());
  std::exit(2);
}

unsigned long parse_number(std::string_view flag, const std::string& value, unsigned long max) {
  char* end = nullptr;
  errno = 0;
  const unsigned long n = std::strtoul(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || n > max || value[0] == '-') {
    usage_error("invalid value '" + value + "' for " + std::string(flag) +
                ": expected a whole number from 0 to " + std::to_string(max));
  }
  return n;
}

bool parse_on_off(std::string_view flag, const std::string& value) {
  if (value == "on") return true;
  if (value == "off") return false;
  usage_error("invalid value '" + value + "' for " + std::string(flag) + ": expected on or off");
}

ServerOptions parse_args(int argc, char** argv) {
  ServerOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto take_value = [&]() -> const std::string& {
      if (!has_value) {
        if (i + 1 >= argc) usage_error(arg + " needs a value");
        value = argv[++i];
        has_value = true;
      }
      return value;
    };
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, h2lab::server::dispatch_choices().c_str(),
                  h2lab::server::engine_choices().c_str());
      std::exit(0);
    } else if (arg == "--host") {
      o.host = take_value();
    } else if (arg == "--port") {
      o.port = static_cast<uint16_t>(parse_number(arg, take_value(), 65535));
    } else if (arg == "--dispatch") {
      const auto d = h2lab::server::parse_dispatch(take_value());
      if (!d) {
        usage_error("unknown dispatcher '" + value + "' for --dispatch; valid: " +
                    h2lab::server::dispatch_choices());
      }
      o.dispatch = *d;
    } else if (arg == "--engine") {
      const auto e = h2lab::server::parse_engine(take_value());
      if (!e) {
        usage_error("unknown engine '" + value + "' for --engine; valid: " +
                    h2lab::server::engine_choices());
      }
      o.engine = *e;
    } else if (arg == "--threads") {
      o.threads = static_cast<unsigned>(parse_number(arg, take_value(), 1024));
    } else if (arg == "--epoll-listener") {
      const auto m = h2lab::server::parse_listener_mode(take_value());
      if (!m) {
        usage_error("unknown mode '" + value + "' for --epoll-listener; valid: " +
                    h2lab::server::listener_mode_choices());
      }
      o.listener_mode = *m;
    } else if (arg == "--uring-sqpoll") {
      if (has_value) usage_error("--uring-sqpoll takes no value");
      o.uring_sqpoll = true;
    } else if (arg == "--max-connections") {
      o.max_connections = parse_number(arg, take_value(), 10000000);
    } else if (arg == "--idle-timeout") {
      o.idle_timeout = std::chrono::milliseconds(parse_number(arg, take_value(), 86400000));
    } else if (arg == "--tls") {
      o.tls = parse_on_off(arg, take_value());
    } else if (arg == "--tcp-nodelay") {
      o.tcp_nodelay = parse_on_off(arg, take_value());
    } else if (arg == "--cert") {
      o.cert_file = take_value();
    } else if (arg == "--key") {
      o.key_file = take_value();
    } else if (arg == "--tls-resumption") {
      o.tls_session_resumption = parse_on_off(arg, take_value());
    } else if (arg == "--no-session-resumption") {
      if (has_value) usage_error("--no-session-resumption takes no value");
      o.tls_session_resumption = false;
    } else if (arg == "--handshake-timeout") {
      o.handshake_timeout = std::chrono::milliseconds(parse_number(arg, take_value(), 86400000));
    } else {
      usage_error("unknown option '" + arg + "'");
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  ServerOptions options = parse_args(argc, argv);
  if (options.tls) {
    // Built here rather than by create_server() so that its fingerprint can
    // be printed.
    h2lab::tls::ContextOptions tls;
    tls.cert_file = options.cert_file;
    tls.key_file = options.key_file;
    tls.session_resumption = options.tls_session_resumption;
    auto made = h2lab::tls::Context::create(tls);
    if (!made.context) {
      std::fprintf(stderr, "h2lab: %s\n", made.error.c_str());
      return 1;
    }
    options.tls_context = std::move(made.context);
  }

  // Signals are taken by one thread with sigwait(), never by a handler, so
  // the server's threads are never interrupted (they inherit this mask).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto [server, error] = h2lab::server::create_server(options);
  if (!server) {
    std::fprintf(stderr, "h2lab: %s\n", error.c_str());
    return 1;
  }
  const std::string& url = server->url();
  std::printf("h2lab listening on %s\n", url.c_str());
  const char* tls_mode = "off";
  if (options.tls) {
    tls_mode = options.tls_session_resumption ? "on (TLS 1.2/1.3, ALPN h2)"
                                              : "on (TLS 1.2/1.3, ALPN h2, no resumption)";
  }
  std::printf("  dispatch=%s engine=%s tls=%s\n",
              std::string(h2lab::server::dispatch_name(options.dispatch)).c_str(),
              std::string(h2lab::server::engine_name(options.engine)).c_str(), tls_mode);
  if (options.tls) {
    const h2lab::tls::Context& tls = *options.tls_context;
    std::printf("  %s\n  SHA-256 fingerprint %s\n", tls.description().c_str(),
                tls.fingerprint().c_str());
    std::printf("Try:\n  curl -k --http2 %s\n  h2load -n 100000 -c 1 -m 100 %s\n  nghttp -v %s\n",
                url.c_str(), url.c_str(), url.c_str());
    std::printf("  (curl -k takes any certificate; add --pinnedpubkey %s for this one only)\n",
                tls.public_key_pin().c_str());
  } else {
    std::printf(
        "Try:\n  curl --http2-prior-knowledge %s\n  h2load -n 100000 -c 1 -m 100 %s\n"
        "  nghttp -v %s\n",
        url.c_str(), url.c_str(), url.c_str());
  }
  std::printf("Stop with Ctrl-C.\n");
  std::fflush(stdout);

  std::thread([&server, stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::fprintf(stderr, "h2lab: %s: stopping gracefully (Ctrl-C again to exit at once)\n",
                 strsignal(signal));
    server->stop();
    sigwait(&stop_signals, &signal);
    std::_Exit(130);
  }).detach();

  server->wait();
  std::fprintf(stderr, "h2lab: stopped\n");
  return 0;
}
