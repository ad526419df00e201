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
#include <vector>

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

// Which HTTP/2 engine answers: h2lab's own (full), the seed's simplified one
// (mini, the cost floor), or libnghttp2's (nghttp2, the field's reference).
enum class EngineKind { kFull, kMini, kNghttp2 };

// epoll: how connection sockets are registered. Edge-triggered (the default)
// reports readiness once per change, so a reactor reads until EAGAIN;
// level-triggered reports it on every epoll_wait while data is there.
enum class EpollTrigger { kEdge, kLevel };

// When output is handed to the kernel. kCoalesce: everything a loop turn
// produced for a connection leaves in one write (sendmsg, or one TLS
// record run). kPerResponse: one write per completed response, as a
// server that flushes after every response would.
enum class WritePolicy { kCoalesce, kPerResponse };

// Who protects TLS records once a TLS 1.3 handshake is done: h2lab's own
// record layer, which frees OpenSSL's SSL object (tls/record_protection.h),
// or OpenSSL for the connection's life (the plain path to compare with).
// TLS 1.2 connections always stay with OpenSSL.
enum class TlsRecords { kH2lab, kOpenssl };

// io_uring setup flags (IORING_SETUP_*) a user may ask for; kAuto lets the
// probe choose the best the kernel has (server/io_uring_probe.h).
namespace uring_flag {
inline constexpr unsigned kCoopTaskrun = 1u << 0;   // COOP_TASKRUN | TASKRUN_FLAG
inline constexpr unsigned kSingleIssuer = 1u << 1;  // SINGLE_ISSUER
inline constexpr unsigned kDeferTaskrun = 1u << 2;  // DEFER_TASKRUN (needs SINGLE_ISSUER)
inline constexpr unsigned kAuto = 1u << 31;
}  // namespace uring_flag

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

std::string_view epoll_trigger_name(EpollTrigger t) noexcept;
std::optional<EpollTrigger> parse_epoll_trigger(std::string_view name) noexcept;
std::string epoll_trigger_choices();

std::string_view write_policy_name(WritePolicy p) noexcept;
std::optional<WritePolicy> parse_write_policy(std::string_view name) noexcept;
std::string write_policy_choices();

std::string_view tls_records_name(TlsRecords r) noexcept;
std::optional<TlsRecords> parse_tls_records(std::string_view name) noexcept;
std::string tls_records_choices();  // "h2lab, openssl"

// "auto", "none" or a comma-separated list of coop, single, defer →
// uring_flag bits; nullopt for anything else.
std::optional<unsigned> parse_uring_flags(std::string_view list) noexcept;
std::string uring_flags_name(unsigned flags);  // the inverse: "auto", "none", "coop,single"
std::string uring_flags_choices();             // "auto, none, or a list of coop, single, defer"

// "0,1" or "0-3" or "0,2-3" → CPU numbers in the given order; nullopt when
// malformed or empty.
std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view list) noexcept;

struct ServerOptions {
  std::string host = "127.0.0.1";  // numeric address or a name; "::1" for IPv6
  // Unset: 8443 with TLS, 8080 without (resolved_port()). 0 picks a free
  // port; url() tells which.
  std::optional<uint16_t> port;
  Dispatch dispatch = Dispatch::kEpoll;
  EngineKind engine = EngineKind::kFull;
  // HTTP/2 settings and limits of the full and nghttp2 engines (proto/connection.h;
  // defaults and reasons in docs/LIMITS.md). output_high_water and
  // stats_json are set by the server.
  proto::ConnectionOptions http2;

  // A connection that makes no progress — receives no complete frame and
  // writes nothing — for this long gets GOAWAY and is closed (octets of a
  // partial frame are not progress). The blocking dispatcher serves one
  // client at a time, so this is also how long an idle client can hold the
  // server. h2o's default.
  std::chrono::milliseconds idle_timeout{10000};
  // Setup and progress deadlines (server/connection_deadlines.h; the
  // reasons for each default are in docs/LIMITS.md). The client preface
  // and first SETTINGS must arrive within preface_timeout of the accept
  // (h2c) or of the handshake's end (TLS).
  std::chrono::milliseconds preface_timeout{5000};
  // A header block (HEADERS through its last CONTINUATION) must be complete
  // this long after its HEADERS frame.
  std::chrono::milliseconds header_timeout{10000};
  // Minimum progress: in every window of this length in which anything
  // moved, a connection completes a response or moves min_progress_rate
  // octets per second (both directions together), or is closed. 0 for
  // either turns the rule off.
  std::chrono::milliseconds min_progress_window{30000};
  uint32_t min_progress_rate = 500;
  // A write that makes no progress for this long closes the connection
  // (a peer that stopped reading). nghttpx's write timeout.
  std::chrono::milliseconds write_timeout{30000};
  // After a graceful stop began, connections still open after this long are
  // closed.
  std::chrono::milliseconds drain_timeout{5000};
  // Backpressure: above this many octets of unsent output a connection stops
  // reading until the socket drains. h2o's 512 KiB.
  size_t max_output_bytes = 512 * 1024;
  // listen(2) backlog (--backlog); the kernel clamps it to
  // net.core.somaxconn (reported at start).
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
  // threaded: connection threads at most (served connections are bounded by
  // the smaller of this and max_connections; refusals and evicted
  // connections still closing take at most a quarter more). Each thread
  // costs its stack's touched pages and a kernel task (docs/LIMITS.md).
  size_t max_threads = 1000;
  // TCP_NODELAY on accepted sockets (the seed's Nagle switch). On: every
  // write leaves at once; off: the kernel may hold small writes back
  // (Nagle), which costs latency at few streams.
  bool tcp_nodelay = true;

  // Socket knobs (server/socket_options.h applies them; each one is read
  // back with getsockopt at start and a value the kernel changed is
  // reported). 0 leaves the kernel's default.
  // SO_SNDBUF / SO_RCVBUF in octets. Setting one turns the kernel's
  // autotuning off for that direction; the kernel doubles the value and
  // caps it at net.core.wmem_max / rmem_max.
  int send_buffer = 0;
  int receive_buffer = 0;
  // SO_BUSY_POLL: µs a blocking read (and epoll_wait, with
  // net.core.busy_poll) may spin on the device queue before sleeping.
  unsigned busy_poll_us = 0;
  // TCP_QUICKACK on accepted sockets: acknowledge at once instead of
  // delaying ACKs. The kernel leaves quick-ack mode by itself, so it is set
  // again after every read.
  bool tcp_quickack = false;
  // TCP_NOTSENT_LOWAT: the socket reports writable only while fewer than
  // this many octets are unsent, bounding what sits in the kernel.
  unsigned notsent_lowat = 0;
  // TCP_CONGESTION: the congestion control algorithm of every connection
  // ("reno", "cubic", "bbr"; one of
  // /proc/sys/net/ipv4/tcp_available_congestion_control). Empty: the
  // kernel's default, net.ipv4.tcp_congestion_control.
  std::string congestion;
  // SO_MAX_PACING_RATE in octets per second: the most each connection
  // sends per second (TCP's own pacing, or the fq qdisc's); 0 = no cap.
  uint64_t max_pacing_rate = 0;
  // TCP_CORK on every connection: the kernel sends only full segments and
  // holds a partial one until the dispatcher pushes it (server/
  // socket_options.h push_corked) once a connection's output of a turn has
  // all been handed over: with --write-policy per-response, the responses
  // of one turn leave in full segments instead of one segment (or more)
  // each. Two system calls per push, counted.
  bool tcp_cork = false;
  // SO_INCOMING_CPU on each reuseport listener, set to the CPU its thread
  // is pinned to (needs --cpus and reuseport listeners): the kernel hands a
  // connection to the listener of the CPU that received its packets.
  bool incoming_cpu = false;

  // Thread knobs. CPUs the serving threads are pinned to: loop thread i
  // (epoll, uring) runs on cpus[i % size]; blocking and threaded threads
  // may run on any CPU of the list. Empty: no pinning. With threads 0,
  // epoll and uring run one loop per listed CPU.
  std::vector<unsigned> cpus;

  // epoll knobs.
  EpollTrigger epoll_trigger = EpollTrigger::kEdge;
  // Events one epoll_wait returns at most.
  unsigned epoll_max_events = 256;
  // epoll busy polling (EPIOCSPARAMS, Linux 6.9): µs epoll_wait spins on
  // the device queues of its sockets before sleeping; 0 = off.
  unsigned epoll_busy_poll_us = 0;

  // io_uring knobs (uring_sqpoll above).
  // Submission queue entries per ring (a power of two, 1 to 32768).
  unsigned uring_entries = 2048;
  // SQPOLL: ms the kernel thread polls an idle queue before it sleeps, and
  // the CPU it is bound to (unset: the kernel chooses).
  unsigned uring_sqpoll_idle_ms = 100;
  std::optional<unsigned> uring_sqpoll_cpu;
  // uring_flag bits, or uring_flag::kAuto.
  unsigned uring_flags = uring_flag::kAuto;
  // Provided receive buffers per ring (a power of two) and their size.
  unsigned uring_buffers = 256;
  unsigned uring_buffer_size = 16 * 1024;
  // Accepted sockets also registered as fixed files: operations name a
  // slot of the ring's table instead of an fd the kernel must look up.
  bool uring_fixed_files = false;
  // Sends go from buffers registered with the ring (one copy of the
  // output into them) instead of the output queue's own memory.
  bool uring_registered_buffers = false;
  // Sends of at least this many octets use zero-copy sendmsg
  // (IORING_OP_SENDMSG_ZC); 0 = never.
  size_t uring_send_zc_threshold = 0;
  // NAPI busy polling registered with the ring (IORING_REGISTER_NAPI,
  // Linux 6.9): µs; 0 = off.
  unsigned uring_napi_busy_poll_us = 0;
  // Recv bundles (IORING_RECVSEND_BUNDLE, Linux 6.10): one multishot recv
  // completion may fill several provided buffers, in ring order, instead
  // of one.
  bool uring_recv_bundle = false;
  // Send bundles (IORING_RECVSEND_BUNDLE on a send, Linux 6.10): a
  // connection's output is queued as entries of a provided-buffer ring of
  // its own and one send takes them all, instead of a sendmsg's iovec.
  bool uring_send_bundle = false;
  // Incremental provided-buffer consumption (IOU_PBUF_RING_INC, Linux
  // 6.12): a recv takes only what it fills of a buffer; the rest of the
  // buffer serves the next recvs, so large buffers do not go out one per
  // small read.
  bool uring_incremental_buffers = false;
  // io_uring_register_ring_fd: io_uring_enter names the ring by its index
  // in the thread's registered-ring table (IORING_ENTER_REGISTERED_RING,
  // Linux 5.18), saving the fd lookup of every enter.
  bool uring_register_ring_fd = true;
  // IORING_SETUP_NO_SQARRAY (Linux 6.6): the SQ has no index array; the
  // kernel takes entries in ring order.
  bool uring_no_sqarray = false;

  // Output policy knobs.
  WritePolicy write_policy = WritePolicy::kCoalesce;
  // Largest plaintext per TLS record, 512 to 16384 octets. Small records
  // let a client decrypt the first bytes sooner; full ones cost less CPU.
  size_t tls_record_size = 16384;
  // Record layer after a TLS 1.3 handshake (--tls-records).
  TlsRecords tls_records = TlsRecords::kH2lab;

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

// Why these options cannot be used together or with this dispatcher (a knob
// of another dispatcher, a CPU this process may not run on, a value out of
// range), naming the flag as //server:main spells it; "" when they can.
// create_server() refuses to start with this message.
std::string options_conflict(const ServerOptions& options);

}  // namespace h2lab::server
