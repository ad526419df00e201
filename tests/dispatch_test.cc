// One suite for every dispatcher: real clients (curl, nghttp, h2load) and
// raw sockets against a server started in-process through create_server(),
// on loopback, bounded in time.
//
//   dispatch_test --dispatch epoll     # one dispatcher (the BUILD targets)
//   dispatch_test                      # all four
//   dispatch_test --engine nghttp2     # behind another engine (default full)
//
// Every case runs with TLS off (h2c) and on (h2, ALPN, the ephemeral
// self-signed certificate: clients skip verification); the last one is
// uring's alone (SQPOLL).
// Catch2 with our own main() (for --dispatch), so no //third_party:catch2.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ssl.h>

#include "proto/frame.h"
#include "tests/support/clients.h"
#include "tests/support/content.h"
#include "tests/support/frame_builder.h"
#include "tests/support/process.h"
#include "tests/support/server_fixture.h"
#include "tests/support/suite_main.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;
using server::Dispatch;

namespace {

SuiteChoice g_suite;  // set by main() from --dispatch and --engine

bool concurrent(Dispatch d) { return d != Dispatch::kBlocking; }

// One run of a test case: a dispatcher chosen on the command line, TLS off
// or on. mode() generates them (Catch2 GENERATE), so every case calling it
// runs once per combination.
struct Mode {
  Dispatch dispatch;
  bool tls;
};

std::ostream& operator<<(std::ostream& out, const Mode& m) {
  return out << "dispatch " << server::dispatch_name(m.dispatch) << (m.tls ? ", TLS" : ", cleartext");
}

Mode mode() {
  const Dispatch d = GENERATE(from_range(g_suite.dispatchers));
  const bool tls = GENERATE(false, true);
  return {d, tls};
}

server::ServerOptions options_for(const Mode& m) {
  server::ServerOptions o;
  o.dispatch = m.dispatch;
  o.engine = g_suite.engine;
  o.tls = m.tls;
  o.port = 0;
  return o;
}

// A client for scripted conversations, over TCP or TLS (ALPN h2, any
// certificate): buffered frame reads, an optional small receive buffer (a
// slow reader), bulk writes that stop when the server stops reading.
class Client {
 public:
  // With `tls` and !`handshake`: a TCP connection that never says hello.
  Client(uint16_t port, bool tls, int rcvbuf = 0, bool handshake = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (!tls || !handshake) return;
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    set_timeout(SO_RCVTIMEO, 5s);
    REQUIRE(SSL_connect(ssl_) == 1);
  }
  ~Client() { close(); }
  void close() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(const ByteString& b) { REQUIRE(write_some(b.data(), b.size()) == static_cast<ssize_t>(b.size())); }

  // Writes `chunk` over and over, without reading, until `limit` octets went
  // out or the socket took nothing for `stall`. Returns the octets written.
  size_t send_until_stalled(const ByteString& chunk, size_t limit, std::chrono::milliseconds stall) {
    set_timeout(SO_SNDTIMEO, stall);
    size_t written = 0;
    while (written < limit) {
      // TLS writes whole records or nothing (no partial-write mode): 16 KiB
      // at a time keeps the count close.
      const size_t offset = written % chunk.size();
      const size_t piece = std::min<size_t>(chunk.size() - offset, ssl_ ? 16384 : chunk.size());
      const ssize_t n = write_some(chunk.data() + offset, piece);
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    return written;
  }

  struct Frame {
    proto::FrameHeader header;
    ByteString payload;
  };
  // The next frame, or nothing on EOF or timeout.
  std::optional<Frame> read_frame(std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      proto::FrameHeader h;
      if (proto::decode_frame_header(in_, h) && in_.size() >= proto::kFrameHeaderSize + h.length) {
        const auto end = in_.begin() + static_cast<std::ptrdiff_t>(proto::kFrameHeaderSize + h.length);
        Frame f{h, ByteString(in_.begin() + proto::kFrameHeaderSize, end)};
        in_.erase(in_.begin(), end);
        return f;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }
  // Reads frames until one of `type` arrives.
  std::optional<Frame> read_until(proto::FrameType type, std::chrono::milliseconds timeout = 3s) {
    while (auto f = read_frame(timeout)) {
      if (f->header.is(type)) return f;
    }
    return std::nullopt;
  }
  // Closes the sending side only: TLS close_notify, then the TCP FIN.
  void half_close() {
    if (ssl_ != nullptr) SSL_shutdown(ssl_);
    ::shutdown(fd_, SHUT_WR);
  }
  // True if the server closed the connection within the timeout (reading
  // and discarding whatever comes first).
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (fill(deadline)) in_.clear();
    return eof_;
  }

 private:
  void set_timeout(int option, std::chrono::milliseconds t) {
    const timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, option, &tv, sizeof tv);
  }
  ssize_t write_some(const uint8_t* data, size_t size) {
    if (ssl_ == nullptr) return ::send(fd_, data, size, MSG_NOSIGNAL);
    const int n = SSL_write(ssl_, data, static_cast<int>(size));
    return n > 0 ? n : -1;
  }
  bool fill(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    }
    uint8_t buf[16384];
    ssize_t got;
    if (ssl_ == nullptr) {
      got = ::recv(fd_, buf, sizeof buf, 0);
    } else {
      set_timeout(SO_RCVTIMEO, std::max(left, 1ms));  // a record may arrive in pieces
      got = SSL_read(ssl_, buf, sizeof buf);
      if (got <= 0 && SSL_get_error(ssl_, static_cast<int>(got)) == SSL_ERROR_WANT_READ) return false;
    }
    if (got <= 0) {
      eof_ = true;
      return false;
    }
    in_.insert(in_.end(), buf, buf + got);
    return true;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool eof_ = false;
  ByteString in_;
};

// h2load sized for the dispatcher: 100 clients × 10 streams where clients
// are served at once, 4 clients taking turns on `blocking`.
std::vector<std::string> h2load_args(Dispatch d, const std::string& url, long n) {
  const std::string clients = concurrent(d) ? "100" : "4";
  return {"h2load", "-n", std::to_string(n), "-c", clients, "-m", "10", url};
}

// What a server may grow while one client reads nothing: 16 MiB, against
// the ~60 MB an unbounded server would queue. Sanitizers add shadow memory
// (and ASan a quarantine) to every allocation, so they get more room.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr long kRssBoundKib = 48 * 1024;
#else
constexpr long kRssBoundKib = 16 * 1024;
#endif

long vm_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

uint16_t port_of(const std::string& url) {
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// A data file of the workspace, from the runfiles.
std::string runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir != nullptr ? srcdir : ".") + "/h2lab/" + path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("curl gets Hello World") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  const auto r = run_process(curl_h2(tls, {"-w", "|%{http_version} %{http_code}", server.url()}));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output == "Hello World\n|2 200");
}

TEST_CASE("nghttp sees the server's SETTINGS and the response") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  const auto r = run_process({"nghttp", "-v", "-t", "10", server.url()});
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("recv SETTINGS frame") != std::string::npos);
  CHECK(r.output.find(":status: 200") != std::string::npos);
  CHECK(r.output.find("Hello World") != std::string::npos);
}

TEST_CASE("h2load: every request succeeds, this engine and mini, both listener layouts") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  auto o = options_for(m);
  o.engine = GENERATE(values({g_suite.engine, server::EngineKind::kMini}));
  o.listener_mode = GENERATE(server::ListenerMode::kReuseport, server::ListenerMode::kExclusive);
  // The listener layout only matters to the event-loop dispatchers.
  if ((d == Dispatch::kBlocking || d == Dispatch::kThreaded) &&
      o.listener_mode == server::ListenerMode::kExclusive) {
    return;
  }
  INFO(m << ", engine " << server::engine_name(o.engine) << ", listener "
          << server::listener_mode_name(o.listener_mode));
  TestServer server(o);
  const long n = concurrent(d) ? 20000 : 2000;
  require_all_succeeded(run_process(h2load_args(d, server.url(), n), 60s), n);
}

// "uptime_s" of a /stats answer.
double process_uptime(const std::string& json) {
  const size_t at = json.find("\"uptime_s\": ");
  REQUIRE(at != std::string::npos);
  return std::stod(json.substr(at + 12));
}

TEST_CASE("counters: N requests are counted once each, /stats is the JSON docs/STATS.md documents") {
  require_clients({"curl", "h2load", "python3"});
  const Mode m = mode();
  const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  constexpr long kRequests = 1000;
  require_all_succeeded(
      run_process({"h2load", "-n", std::to_string(kRequests), "-c", "1", "-m", "10", server.url()},
                  30s),
      kRequests);

  // The route, through a real client: documented fields only, all of them.
  const auto fetched = run_process(curl_h2(tls, {server.url() + "stats"}));
  REQUIRE(fetched.exit_code == 0);
  const auto checked = run_process(
      {"python3", runfile("tests/stats_schema_check.py"), runfile("docs/STATS.md")}, 10s,
      fetched.output);
  INFO(fetched.output);
  INFO(checked.output);
  CHECK(checked.exit_code == 0);

  // The numbers, as the /stats request saw them: h2load's requests, each
  // counted once and timed once (the /stats request itself is counted after
  // its answer was rendered).
  const std::string json = fetched.output;
  CHECK(stats_counter(json, "requests") == kRequests);
  CHECK(stats_counter(json, "responses") == kRequests);
  CHECK(stats_counter(json, "count") == kRequests);  // latency samples
  CHECK(stats_counter(json, "connections") == 2);    // h2load's and curl's
  CHECK(stats_counter(json, "bytes_in") > 0);
  CHECK(stats_counter(json, "bytes_out") > 0);
  CHECK(stats_counter(json, "reads") >= 1);
  // h2load sends 10 requests at a time: their responses share writes.
  CHECK(stats_counter(json, "writes") >= 1);
  CHECK(stats_counter(json, "writes") < kRequests);
  CHECK(stats_counter(json, "syscalls") > 0);
  if (d == Dispatch::kEpoll || d == Dispatch::kUring) {
    CHECK(stats_counter(json, "waits") >= 1);
    CHECK(stats_counter(json, "events") >= stats_counter(json, "waits") / 2);
  }
  if (d != Dispatch::kUring) {  // uring's reads and writes are not system calls
    CHECK(stats_counter(json, "syscalls") >= stats_counter(json, "reads") + stats_counter(json, "writes"));
  }
  CHECK(json.find("\"dispatch\": \"" + std::string(server::dispatch_name(d)) + "\"") !=
        std::string::npos);

  // The kernel's side, for the whole process since the server started:
  // CPU time spent and context switches (every wait that slept is one).
  auto process = [&json](const std::string& name) {
    const size_t from = json.find("\"process\": {");
    REQUIRE(from != std::string::npos);
    const size_t at = json.find("\"" + name + "\": ", from);
    REQUIRE(at < json.find('}', from));
    return std::stod(json.substr(at + name.size() + 4));
  };
  const double cpu = process("user_cpu_s") + process("system_cpu_s");
  CHECK(cpu > 0);
  CHECK(cpu < 2 * process_uptime(json) * std::thread::hardware_concurrency() + 1);
  const double switches = process("voluntary_context_switches");
  CHECK(switches >= 1);
  CHECK(switches < 1e7);  // a delta, not a wrapped difference
  CHECK(process("voluntary_switches_per_request") ==
        Approx(switches / static_cast<double>(kRequests)).margin(0.006));
  CHECK(process("involuntary_context_switches") >= 0);

  // A protocol error: GOAWAY(PROTOCOL_ERROR), counted by code (RFC 9113
  // §6.1: DATA on stream 0).
  CHECK(stats_counter(server.get().stats_json(), "PROTOCOL_ERROR") == -1);
  Client bad(server.port(), tls);
  bad.send(preface() + settings() + frame(proto::FrameType::kData, 0, 0, bytes("x")));
  const auto goaway = bad.read_until(proto::FrameType::kGoaway);
  REQUIRE(goaway);
  CHECK(stats_counter(server.get().stats_json(), "PROTOCOL_ERROR") == 1);
}

TEST_CASE("--write-policy per-response: one write per response, the same bytes") {
  require_clients({"curl", "h2load"});
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  auto o = options_for(m);
  o.write_policy = server::WritePolicy::kPerResponse;
  TestServer server(o);
  constexpr long kRequests = 1000;
  require_all_succeeded(
      run_process({"h2load", "-n", std::to_string(kRequests), "-c", "1", "-m", "10", server.url()},
                  30s),
      kRequests);
  const std::string json = server.get().stats_json();
  INFO(json);
  // Coalesced, 10 pipelined responses share a write; here each has its own
  // (a few more carry the preface's SETTINGS and the handshake).
  CHECK(stats_counter(json, "writes") >= kRequests);
  CHECK(stats_counter(json, "writes") <= kRequests + 10);
  const auto body = run_process(curl_h2(tls, {server.url() + "bytes/100000"}));
  CHECK(content_mismatch(body.output, expected_bytes(100000)) == "");
}

TEST_CASE("a client that half-closes after its request still gets the whole response") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  Client c(server.port(), tls);
  // Windows open enough for the whole body: the client will send no
  // WINDOW_UPDATE after its FIN.
  constexpr uint32_t kBody = 3'000'000;
  c.send(preface() + settings({{0x4, 0x7fffffff}}) +
         frame(proto::FrameType::kWindowUpdate, 0, 0, u32(0x7fffffff - 65535)) +
         get_request(1, "/bytes/" + std::to_string(kBody)));
  c.half_close();
  std::string body;
  bool ended = false;
  while (auto f = c.read_frame(10s)) {
    if (f->header.is(proto::FrameType::kData) && f->header.stream_id == 1) {
      body.append(f->payload.begin(), f->payload.end());
      ended = f->header.has(proto::flags::kEndStream);
    }
    if (ended) break;
  }
  CHECK(content_mismatch(body, expected_bytes(kBody)) == "");
  CHECK(ended);
  CHECK(c.closed_within(5s));  // and then the server ends the connection
}

TEST_CASE("/bytes/10000000 arrives whole through flow control") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  const std::string out = temp_path("bytes.out");
  const auto r = run_process(curl_h2(tls, {"--max-time", "30", "-o", out, "-w",
                                        "%{http_code} %{size_download}",
                                        server.url() + "bytes/10000000"}),
                             60s);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output == "200 10000000");
  CHECK(content_mismatch(read_file(out), expected_bytes(10000000)) == "");
}

TEST_CASE("a 1 MB /echo comes back intact") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  const std::string body = random_body(1000000, 42);
  const std::string in = temp_path("echo.in");
  const std::string out = temp_path("echo.out");
  std::ofstream(in, std::ios::binary) << body;
  const auto r = run_process(curl_h2(tls, {"--max-time", "30", "--data-binary", "@" + in, "-o", out,
                                        server.url() + "echo"}),
                             60s);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(content_mismatch(read_file(out), body) == "");
}

TEST_CASE("clients that disconnect mid-response do not disturb the server") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  TestServer server(options_for(m));
  {
    // A large body, abandoned after its first frames (the close resets:
    // unread data was pending).
    Client c(server.port(), tls);
    c.send(preface() + settings() + get_request(1, "/bytes/50000000"));
    const auto first = c.read_until(proto::FrameType::kData);
    REQUIRE(first);
    CHECK(content_mismatch(std::string(first->payload.begin(), first->payload.end()),
                           expected_bytes(first->payload.size())) == "");
  }
  {
    // Thousands of pipelined requests, not one answer read.
    Client c(server.port(), tls);
    ByteString requests = preface() + settings();
    for (uint32_t id = 1; id < 2 * 2000; id += 2) requests = requests + get_request(id);
    c.send(requests);
  }
  CHECK(run_process(curl_h2(tls, {server.url()})).output == "Hello World\n");
  require_all_succeeded(run_process(h2load_args(d, server.url(), 2000), 60s), 2000);
}

TEST_CASE("a client that reads nothing: memory stays bounded, others are served") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  auto o = options_for(m);
  // mini answers every pipelined request at once (31 octets each), with no
  // stream limit: only the dispatcher's backpressure can stop it buffering.
  o.engine = server::EngineKind::kMini;
  o.max_output_bytes = 64 * 1024;
  TestServer server(o);

  ByteString chunk;
  for (uint32_t id = 1; chunk.size() < 256 * 1024; id += 2) chunk = chunk + get_request(id);
  // Unbounded, 48 MB of requests would queue about 60 MB of answers.
  const size_t offered = 48u << 20;
  {
    // A first round, so that what the server touches once (uring's receive
    // buffers, allocator arenas, sanitizer shadow) is in the baseline.
    Client warm_up(server.port(), tls, 16 * 1024);
    warm_up.send(preface() + settings());
    warm_up.send_until_stalled(chunk, offered, 500ms);
  }
  const long rss_before = vm_rss_kib();
  Client slow(server.port(), tls, 16 * 1024);
  slow.send(preface() + settings());
  std::thread others;
  ProcessResult served;
  if (concurrent(d)) {
    others = std::thread([&] {
      served = run_process({"h2load", "-n", "2000", "-c", "10", "-m", "10", server.url()}, 60s);
    });
  }
  const size_t written = slow.send_until_stalled(chunk, offered, 1000ms);
  const long rss_after = vm_rss_kib();
  if (others.joinable()) others.join();
  INFO("written " << written << " octets; VmRSS " << rss_before << " -> " << rss_after << " KiB");
  CHECK(written < offered);                        // the server stopped reading
  CHECK(rss_after - rss_before < kRssBoundKib);  // and buffered a bounded amount
  CHECK(stats_counter(server.get().stats_json(), "backpressure_pauses") >= 1);  // and counted it
  if (concurrent(d)) require_all_succeeded(served, 2000);
  slow.close();
  CHECK(run_process(curl_h2(tls, {server.url()})).output == "Hello World\n");
}

TEST_CASE("above --max-connections a client gets SETTINGS, GOAWAY \"server full\", then a close") {
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  if (!concurrent(d)) return;  // one client at a time: the others wait in the backlog
  INFO(m);
  auto o = options_for(m);
  o.max_connections = 2;
  TestServer server(o);
  auto first = std::make_unique<Client>(server.port(), tls);
  Client second(server.port(), tls);
  // Both do real work — a response held back by flow control — so neither
  // may be evicted to make room (docs/LIMITS.md).
  for (Client* c : {first.get(), &second}) {
    c->send(preface() + settings() + get_request(1, "/bytes/1000000"));
    REQUIRE(c->read_until(proto::FrameType::kData));
  }

  Client refused(server.port(), tls);  // with TLS: the handshake completes first
  refused.send(preface() + settings() + get_request(1));
  const auto s = refused.read_frame();
  REQUIRE(s);
  CHECK(s->header.is(proto::FrameType::kSettings));
  CHECK(s->header.flags == 0);
  CHECK(s->payload == ByteString({0x00, 0x03, 0, 0, 0, 0}));  // MAX_CONCURRENT_STREAMS 0
  const auto g = refused.read_frame();
  REQUIRE(g);
  CHECK(g->header.is(proto::FrameType::kGoaway));
  CHECK(g->payload == u32(0) + u32(0) + bytes("server full"));  // last stream 0, NO_ERROR
  CHECK(refused.closed_within(3s));

  // A slot comes back when a served client leaves.
  first.reset();
  std::string body;
  for (int attempt = 0; attempt < 20 && body != "Hello World\n"; ++attempt) {
    std::this_thread::sleep_for(50ms);
    body = run_process(curl_h2(tls, {server.url()})).output;
  }
  CHECK(body == "Hello World\n");
}

TEST_CASE("idle clients are closed after the idle (or handshake) timeout") {
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  auto o = options_for(m);
  o.idle_timeout = 300ms;
  o.handshake_timeout = 300ms;
  o.preface_timeout = 300ms;  // silent before the preface: its deadline, not idle's
  TestServer server(o);
  SECTION("silent from the start (with TLS: no ClientHello)") {
    Client c(server.port(), tls, 0, /*handshake=*/false);
    const auto start = std::chrono::steady_clock::now();
    CHECK(c.closed_within(5s));
    CHECK(std::chrono::steady_clock::now() - start >= 250ms);
  }
  SECTION("silent after the preface: GOAWAY first") {
    Client c(server.port(), tls);
    c.send(preface() + settings());
    const auto start = std::chrono::steady_clock::now();
    const auto g = c.read_until(proto::FrameType::kGoaway, 5s);
    REQUIRE(g);
    CHECK(std::chrono::steady_clock::now() - start >= 250ms);
    CHECK(c.closed_within(5s));
  }
}

TEST_CASE("graceful stop: GOAWAY with the last stream id, then close") {
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  auto created = server::create_server(options_for(m));
  REQUIRE(created.server);
  auto& srv = *created.server;
  Client c(port_of(srv.url()), tls);
  c.send(preface() + settings() + get_request(1) + get_request(3));
  int responses = 0;
  while (responses < 2) {
    const auto f = c.read_frame();
    REQUIRE(f);
    if (f->header.has(proto::flags::kEndStream)) ++responses;
  }
  const auto start = std::chrono::steady_clock::now();
  srv.stop();
  const auto g = c.read_until(proto::FrameType::kGoaway);
  REQUIRE(g);
  CHECK(ByteString(g->payload.begin(), g->payload.begin() + 8) == u32(3) + u32(0));
  CHECK(c.closed_within(3s));
  srv.wait();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("graceful stop finishes a response in progress") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  auto created = server::create_server(options_for(m));
  REQUIRE(created.server);
  ProcessResult download;
  const std::string out = temp_path("stopped.out");
  // 30 MB at 20 MB/s: still running when the stop comes.
  std::thread client([&] {
    download = run_process(curl_h2(tls, {"--max-time", "20", "--limit-rate", "20M", "-o",
                                      out, "-w", "%{size_download}",
                                      created.server->url() + "bytes/30000000"}),
                           30s);
  });
  std::this_thread::sleep_for(500ms);
  created.server->stop();
  created.server->wait();
  client.join();
  INFO(download.output);
  CHECK(download.exit_code == 0);
  CHECK(download.output == "30000000");
  CHECK(content_mismatch(read_file(out), expected_bytes(30000000)) == "");
}

TEST_CASE("graceful stop under h2load: every started request succeeds or is refused, none hangs") {
  require_clients();
  const Mode m = mode();
  [[maybe_unused]] const auto [d, tls] = m;
  INFO(m);
  auto created = server::create_server(options_for(m));
  REQUIRE(created.server);
  const long clients = concurrent(d) ? 20 : 4;
  const long streams = 10;
  ProcessResult load;
  std::thread client([&] {
    load = run_process({"h2load", "-n", "100000000", "-c", std::to_string(clients), "-m",
                        std::to_string(streams), created.server->url()},
                       30s);
  });
  std::this_thread::sleep_for(700ms);
  const auto start = std::chrono::steady_clock::now();
  created.server->stop();
  created.server->wait();
  const auto stopped_in = std::chrono::steady_clock::now() - start;
  client.join();
  INFO(load.output);
  CHECK_FALSE(load.timed_out);
  CHECK(load.exit_code == 0);
  CHECK(stopped_in < 3s);
  const H2loadCounts c = h2load_counts(load);
  CHECK(c.succeeded > 0);
  CHECK(c.timeout == 0);
  CHECK(c.non_2xx == 0);
  // Only the requests in flight when the GOAWAY came may fail (refused:
  // above its last-stream-id, or not yet sent): at most one window per client.
  CHECK(c.started - c.succeeded <= clients * streams);
}

TEST_CASE("uring with --uring-sqpoll serves h2load and stops") {
  require_clients();
  const Mode m = mode();
  if (m.dispatch != Dispatch::kUring) return;
  INFO(m);
  auto o = options_for(m);
  o.uring_sqpoll = true;
  TestServer server(o);
  require_all_succeeded(run_process(h2load_args(m.dispatch, server.url(), 20000), 60s), 20000);
}

int main(int argc, char** argv) {
  return run_suite(argc, argv, g_suite);
}
