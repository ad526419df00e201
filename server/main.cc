// //server:main — the h2lab command line: a thin layer over ServerOptions
// and create_server(). Prints how to reach the server, serves until SIGINT or
// SIGTERM (graceful stop; a second SIGINT exits at once).
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
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
  --engine NAME          HTTP/2 engine: %s (default full)
  --max-connections N    above this, clients get GOAWAY "server full" (default 10000)
  --idle-timeout MS      GOAWAY and close a connection that makes no progress
                         (no complete frame in, nothing out) this long
                         (default 10000)
  --preface-timeout MS   close a connection whose client preface and first
                         SETTINGS are not in after this long (from the
                         accept, or with TLS from the handshake's end)
                         (default 5000)
  --header-timeout MS    close a connection whose header block (HEADERS to
                         its last CONTINUATION) takes longer (default 10000)
  --min-progress-window MS
                         minimum progress: in each such window in which
                         anything moved, a response completes or
                         --min-progress-rate is met, else close; 0 = off
                         (default 30000)
  --min-progress-rate BYTES
                         octets per second of that window, both directions
                         (default 500)
  --max-threads N        threaded: connection threads at most (default 1000)

Threads:
  --threads N            epoll/uring loop threads, 0 = one per CPU, or one
                         per --cpus entry (default 0)
  --cpus LIST            pin serving threads to these CPUs, e.g. 0,1 or 0-3
                         (loop i on the i-th; default: no pinning)

Sockets (0 keeps the kernel's default; values the kernel changes are reported):
  --tcp-nodelay on|off   TCP_NODELAY on accepted sockets; off lets Nagle's
                         algorithm hold small writes back (default on)
  --sndbuf BYTES         SO_SNDBUF (turns send autotuning off) (default 0)
  --rcvbuf BYTES         SO_RCVBUF (turns receive autotuning off) (default 0)
  --busy-poll US         SO_BUSY_POLL: spin this long on the device queue
                         before sleeping in a read (default 0)
  --quickack on|off      TCP_QUICKACK, set again after every read (default off)
  --notsent-lowat BYTES  TCP_NOTSENT_LOWAT: writable only below this much
                         unsent data (default 0)
  --backlog N            listen(2) backlog, capped by net.core.somaxconn
                         (default 4096)
  --epoll-listener MODE  epoll/uring: reuseport (SO_REUSEPORT, one listener
                         per thread) or exclusive (one shared listener)
                         (default reuseport)
  --incoming-cpu on|off  SO_INCOMING_CPU on each reuseport listener, set to
                         its thread's CPU (needs --cpus) (default off)
  --congestion NAME      TCP_CONGESTION: one of
                         net.ipv4.tcp_available_congestion_control
                         (default: the kernel's, tcp_congestion_control)
  --max-pacing-rate BYTES
                         SO_MAX_PACING_RATE: octets per second at most, per
                         connection (default 0: no cap)
  --tcp-cork on|off      TCP_CORK: only full segments leave until a
                         connection's output of a turn is all handed over
                         (default off)

epoll:
  --epoll-trigger MODE   %s (default edge)
  --epoll-max-events N   events per epoll_wait (default 256)
  --epoll-busy-poll US   epoll busy polling (EPIOCSPARAMS, Linux 6.9) (default 0)

io_uring:
  --uring-entries N      submission queue entries, a power of two (default 2048)
  --uring-sqpoll         a kernel thread polls the submission queues
  --uring-sqpoll-idle MS idle time before that thread sleeps (default 100)
  --uring-sqpoll-cpu N   the CPU that thread runs on (default: any)
  --uring-flags LIST     setup flags: %s
                         (default auto: the best the kernel has)
  --uring-buffers N      provided receive buffers per ring, a power of two
                         (default 256)
  --uring-buffer-size BYTES
                         size of each (default 16384)
  --uring-fixed-files on|off
                         register accepted sockets as fixed files (default off)
  --uring-registered-buffers on|off
                         send from buffers registered with the ring (default off)
  --uring-send-zc BYTES  zero-copy sends from this size, 0 = never (default 0)
  --uring-napi US        NAPI busy polling (Linux 6.9), 0 = off (default 0)
  --uring-recv-bundle on|off
                         one recv completion fills several buffers
                         (IORING_RECVSEND_BUNDLE, Linux 6.10) (default off)
  --uring-send-bundle on|off
                         one send takes a connection's whole output from a
                         buffer ring of its own (Linux 6.10) (default off)
  --uring-incremental-buffers on|off
                         a recv takes only what it fills of a provided
                         buffer (IOU_PBUF_RING_INC, Linux 6.12) (default off)
  --uring-register-ring-fd on|off
                         io_uring_enter names the ring by its registered
                         index (Linux 5.18) (default on)
  --uring-no-sqarray on|off
                         no SQ index array (IORING_SETUP_NO_SQARRAY, Linux
                         6.6) (default off)

Output:
  --write-policy NAME    %s: one write per loop turn, or one
                         per response (default coalesce)
  --tls-record-size BYTES
                         largest TLS record plaintext, 512-16384 (default 16384)
  --tls-records NAME     %s: who protects records after a TLS 1.3
                         handshake; h2lab frees OpenSSL's connection object
                         (default h2lab)

Measurement:
  --stats-interval S     print one line of rates every S seconds (default 0: off)
                         (counters are always at /stats and printed on stop)

TLS:
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

// A name from one of options.h's tables, or a usage error listing them.
template <typename Parse>
auto parse_choice(std::string_view flag, const std::string& value, Parse parse,
                  const std::string& choices) {
  const auto parsed = parse(value);
  if (!parsed) {
    usage_error("invalid value '" + value + "' for " + std::string(flag) + "; valid: " + choices);
  }
  return *parsed;
}

struct Arguments {
  ServerOptions server;
  unsigned stats_interval_s = 0;
};

Arguments parse_args(int argc, char** argv) {
  Arguments args;
  ServerOptions& o = args.server;
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
                  h2lab::server::engine_choices().c_str(),
                  h2lab::server::epoll_trigger_choices().c_str(),
                  h2lab::server::uring_flags_choices().c_str(),
                  h2lab::server::write_policy_choices().c_str(),
                  h2lab::server::tls_records_choices().c_str());
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
    } else if (arg == "--preface-timeout") {
      o.preface_timeout = std::chrono::milliseconds(parse_number(arg, take_value(), 86400000));
    } else if (arg == "--header-timeout") {
      o.header_timeout = std::chrono::milliseconds(parse_number(arg, take_value(), 86400000));
    } else if (arg == "--min-progress-window") {
      o.min_progress_window = std::chrono::milliseconds(parse_number(arg, take_value(), 86400000));
    } else if (arg == "--min-progress-rate") {
      o.min_progress_rate = static_cast<uint32_t>(parse_number(arg, take_value(), 1u << 30));
    } else if (arg == "--max-threads") {
      o.max_threads = parse_number(arg, take_value(), 100000);
    } else if (arg == "--tls") {
      o.tls = parse_on_off(arg, take_value());
    } else if (arg == "--tcp-nodelay") {
      o.tcp_nodelay = parse_on_off(arg, take_value());
    } else if (arg == "--sndbuf") {
      o.send_buffer = static_cast<int>(parse_number(arg, take_value(), 1 << 30));
    } else if (arg == "--rcvbuf") {
      o.receive_buffer = static_cast<int>(parse_number(arg, take_value(), 1 << 30));
    } else if (arg == "--busy-poll") {
      o.busy_poll_us = static_cast<unsigned>(parse_number(arg, take_value(), 1000000));
    } else if (arg == "--quickack") {
      o.tcp_quickack = parse_on_off(arg, take_value());
    } else if (arg == "--notsent-lowat") {
      o.notsent_lowat = static_cast<unsigned>(parse_number(arg, take_value(), 1 << 30));
    } else if (arg == "--backlog") {
      o.listen_backlog = static_cast<int>(parse_number(arg, take_value(), 1 << 30));
    } else if (arg == "--incoming-cpu") {
      o.incoming_cpu = parse_on_off(arg, take_value());
    } else if (arg == "--congestion") {
      o.congestion = take_value();
      // TCP_CA_NAME_MAX is 16 with the NUL; the kernel checks the name.
      if (o.congestion.empty() || o.congestion.size() > 15) {
        usage_error("invalid value '" + value + "' for --congestion: expected a name such as " +
                    "reno, cubic or bbr");
      }
    } else if (arg == "--max-pacing-rate") {
      o.max_pacing_rate = parse_number(arg, take_value(), ~0UL - 1);
    } else if (arg == "--tcp-cork") {
      o.tcp_cork = parse_on_off(arg, take_value());
    } else if (arg == "--cpus") {
      const auto cpus = h2lab::server::parse_cpu_list(take_value());
      if (!cpus) {
        usage_error("invalid value '" + value +
                    "' for --cpus: expected CPU numbers like 0,1 or 0-3");
      }
      o.cpus = *cpus;
    } else if (arg == "--epoll-trigger") {
      o.epoll_trigger = parse_choice(arg, take_value(), h2lab::server::parse_epoll_trigger,
                                     h2lab::server::epoll_trigger_choices());
    } else if (arg == "--epoll-max-events") {
      o.epoll_max_events = static_cast<unsigned>(parse_number(arg, take_value(), 65536));
    } else if (arg == "--epoll-busy-poll") {
      o.epoll_busy_poll_us = static_cast<unsigned>(parse_number(arg, take_value(), 1000000));
    } else if (arg == "--uring-entries") {
      o.uring_entries = static_cast<unsigned>(parse_number(arg, take_value(), 32768));
    } else if (arg == "--uring-sqpoll-idle") {
      o.uring_sqpoll_idle_ms = static_cast<unsigned>(parse_number(arg, take_value(), 60000));
    } else if (arg == "--uring-sqpoll-cpu") {
      o.uring_sqpoll_cpu = static_cast<unsigned>(parse_number(arg, take_value(), CPU_SETSIZE - 1));
    } else if (arg == "--uring-flags") {
      o.uring_flags = parse_choice(arg, take_value(), h2lab::server::parse_uring_flags,
                                   h2lab::server::uring_flags_choices());
    } else if (arg == "--uring-buffers") {
      o.uring_buffers = static_cast<unsigned>(parse_number(arg, take_value(), 32768));
    } else if (arg == "--uring-buffer-size") {
      o.uring_buffer_size = static_cast<unsigned>(parse_number(arg, take_value(), 1 << 20));
    } else if (arg == "--uring-fixed-files") {
      o.uring_fixed_files = parse_on_off(arg, take_value());
    } else if (arg == "--uring-registered-buffers") {
      o.uring_registered_buffers = parse_on_off(arg, take_value());
    } else if (arg == "--uring-send-zc") {
      o.uring_send_zc_threshold = parse_number(arg, take_value(), 1 << 30);
    } else if (arg == "--uring-napi") {
      o.uring_napi_busy_poll_us = static_cast<unsigned>(parse_number(arg, take_value(), 1000000));
    } else if (arg == "--uring-recv-bundle") {
      o.uring_recv_bundle = parse_on_off(arg, take_value());
    } else if (arg == "--uring-send-bundle") {
      o.uring_send_bundle = parse_on_off(arg, take_value());
    } else if (arg == "--uring-incremental-buffers") {
      o.uring_incremental_buffers = parse_on_off(arg, take_value());
    } else if (arg == "--uring-register-ring-fd") {
      o.uring_register_ring_fd = parse_on_off(arg, take_value());
    } else if (arg == "--uring-no-sqarray") {
      o.uring_no_sqarray = parse_on_off(arg, take_value());
    } else if (arg == "--write-policy") {
      o.write_policy = parse_choice(arg, take_value(), h2lab::server::parse_write_policy,
                                    h2lab::server::write_policy_choices());
    } else if (arg == "--tls-record-size") {
      o.tls_record_size = parse_number(arg, take_value(), 16384);
    } else if (arg == "--tls-records") {
      o.tls_records = parse_choice(arg, take_value(), h2lab::server::parse_tls_records,
                                   h2lab::server::tls_records_choices());
    } else if (arg == "--stats-interval") {
      args.stats_interval_s = static_cast<unsigned>(parse_number(arg, take_value(), 86400));
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
  if (std::string why = h2lab::server::options_conflict(o); !why.empty()) usage_error(why);
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args = parse_args(argc, argv);
  ServerOptions& options = args.server;
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

  // The signal thread stops the server; main destroys it once wait()
  // returns — which can be while stop() is still running on that thread
  // (the dispatcher was done before stop() shut the listener down). So
  // stop() runs under a lock that main takes before it returns, and not at
  // all once main has. Static: the detached thread outlives main's locals.
  static std::mutex stop_mutex;
  static bool server_done = false;
  std::thread([&server, stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::fprintf(stderr, "h2lab: %s: stopping gracefully (Ctrl-C again to exit at once)\n",
                 strsignal(signal));
    {
      std::lock_guard lock(stop_mutex);
      if (!server_done) server->stop();
    }
    sigwait(&stop_signals, &signal);
    std::_Exit(130);
  }).detach();

  // The live view: one line of rates per interval until the server stops.
  std::mutex live_mutex;
  std::condition_variable live_wake;
  bool served = false;
  std::thread live_view;
  if (args.stats_interval_s != 0) {
    live_view = std::thread([&, interval = std::chrono::seconds(args.stats_interval_s)] {
      std::unique_lock lock(live_mutex);
      while (!live_wake.wait_for(lock, interval, [&] { return served; })) {
        std::fprintf(stderr, "h2lab: stats: %s\n", server->stats_live_line().c_str());
      }
    });
  }

  server->wait();
  if (live_view.joinable()) {
    {
      std::lock_guard lock(live_mutex);
      served = true;
    }
    live_wake.notify_one();
    live_view.join();
  }
  std::string summary = server->stats_summary();
  for (size_t at = 0; (at = summary.find('\n', at)) != std::string::npos; at += 3) {
    summary.replace(at, 1, "\n  ");
  }
  std::fprintf(stderr, "h2lab: stopped\n  %s\n", summary.c_str());
  {
    std::lock_guard lock(stop_mutex);
    server_done = true;  // no stop() in progress from here on: `server` may go
  }
  return 0;
}
