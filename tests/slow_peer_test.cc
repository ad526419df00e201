// Slow and dribbling peers (issue 15), for every dispatcher × TLS off/on:
// each setup phase bounded by its deadline, idle meaning no progress, the
// minimum progress rule, a connection limit that dribblers cannot hold
// (eviction order included), threaded's thread bound, and the short linger
// after a connection error. Real sockets on loopback, short deadlines,
// every case bounded in time.
//
//   slow_peer_test --dispatch epoll     # one dispatcher (the BUILD targets)
//   slow_peer_test --engine nghttp2     # behind another engine (default full)
//   slow_peer_test                      # all four
//
// Catch2 with our own main() (for --dispatch), as tests/dispatch_test.cc.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proto/frame.h"
#include "tests/support/clients.h"
#include "tests/support/frame_builder.h"
#include "tests/support/process.h"
#include "tests/support/server_fixture.h"
#include "tests/support/suite_main.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;
using server::Dispatch;
using Clock = std::chrono::steady_clock;

namespace {

SuiteChoice g_suite;  // set by main() from --dispatch and --engine

bool concurrent(Dispatch d) { return d != Dispatch::kBlocking; }

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

// Long deadlines everywhere but the one a case looks at.
server::ServerOptions options_for(const Mode& m) {
  server::ServerOptions o;
  o.dispatch = m.dispatch;
  o.tls = m.tls;
  o.engine = g_suite.engine;
  o.port = 0;
  o.idle_timeout = 20s;
  o.handshake_timeout = 20s;
  o.preface_timeout = 20s;
  o.header_timeout = 20s;
  o.min_progress_window = 0ms;  // off unless a case turns it on
  return o;
}

// A scripted client over TCP or TLS (ALPN h2, any certificate) that can
// send one octet at a time and tell when the server closed.
class Client {
 public:
  // With `tls` and !`handshake`: a TCP connection that says no hello.
  Client(uint16_t port, bool tls, bool handshake = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
    timeout(SO_RCVTIMEO, 5s);
    REQUIRE(SSL_connect(ssl_) == 1);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void close() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

  // False once the server is gone (a write failed).
  bool send(const ByteString& b) { return write_some(b.data(), b.size()) == static_cast<ssize_t>(b.size()); }

  // Sends `b` one octet per `gap` until the server closes. Returns when it
  // closed (time since the call), or nothing if all of `b` went out and it
  // was still open `gap` later.
  std::optional<Clock::duration> dribble(const ByteString& b, std::chrono::milliseconds gap) {
    const auto start = Clock::now();
    for (uint8_t octet : b) {
      if (!send({octet}) || closed_within(gap)) return Clock::now() - start;
    }
    return std::nullopt;
  }

  // The next frame, or nothing on EOF or timeout.
  std::optional<std::pair<proto::FrameHeader, ByteString>> read_frame(std::chrono::milliseconds t = 3s) {
    const auto deadline = Clock::now() + t;
    while (true) {
      proto::FrameHeader h;
      if (proto::decode_frame_header(in_, h) && in_.size() >= proto::kFrameHeaderSize + h.length) {
        const auto end = in_.begin() + static_cast<std::ptrdiff_t>(proto::kFrameHeaderSize + h.length);
        std::pair<proto::FrameHeader, ByteString> f{h, ByteString(in_.begin() + proto::kFrameHeaderSize, end)};
        in_.erase(in_.begin(), end);
        return f;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }
  std::optional<std::pair<proto::FrameHeader, ByteString>> read_until(proto::FrameType type,
                                                                      std::chrono::milliseconds t = 3s) {
    while (auto f = read_frame(t)) {
      if (f->first.is(type)) return f;
    }
    return std::nullopt;
  }

  // True if the server closed the connection within `t` (what arrives
  // first is read and kept for read_frame()).
  bool closed_within(std::chrono::milliseconds t) {
    const auto deadline = Clock::now() + t;
    while (!eof_ && fill(deadline)) {
    }
    return eof_;
  }

 private:
  void timeout(int option, std::chrono::milliseconds t) {
    const timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, option, &tv, sizeof tv);
  }
  ssize_t write_some(const uint8_t* data, size_t size) {
    if (ssl_ == nullptr) return ::send(fd_, data, size, MSG_NOSIGNAL);
    const int n = SSL_write(ssl_, data, static_cast<int>(size));
    return n > 0 ? n : -1;
  }
  bool fill(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    }
    uint8_t buf[16384];
    ssize_t got;
    if (ssl_ == nullptr) {
      got = ::recv(fd_, buf, sizeof buf, 0);
    } else {
      timeout(SO_RCVTIMEO, std::max(left, 1ms));
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

// A real ClientHello (ALPN h2), as the first flight of an OpenSSL client
// through memory BIOs.
ByteString client_hello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  ByteString hello(data, data + n);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

// HEADERS opening a request whose block is not finished (no END_HEADERS).
ByteString open_header_block(uint32_t stream_id) {
  ByteString block = {0x82, 0x86, 0x84};  // :method GET, :scheme http, :path /
  return frame(proto::FrameType::kHeaders, proto::flags::kEndStream, stream_id, block);
}

size_t thread_count() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// One of server.connections.evicted's counts (docs/STATS.md) in a stats
// JSON; -1 when absent.
long long evicted(const std::string& json, const std::string& reason) {
  const size_t from = json.find("\"evicted\": {");
  if (from == std::string::npos) return -1;
  const std::string key = "\"" + reason + "\": ";
  const size_t at = json.find(key, from);
  if (at == std::string::npos || at > json.find('}', from)) return -1;
  return std::stoll(json.substr(at + key.size()));
}

// Deadlines are checked on a 10 ms wheel (loops) or a 100 ms tick
// (blocking, threaded): a close comes at most that late, plus scheduling.
constexpr auto kSlack = 600ms;

}  // namespace

TEST_CASE("a client preface dribbled one octet at a time is closed at the preface deadline") {
  const Mode m = mode();
  INFO(m);
  auto o = options_for(m);
  o.preface_timeout = 500ms;
  TestServer server(o);
  Client c(server.port(), m.tls);  // with TLS: the deadline runs from the handshake's end
  const auto closed = c.dribble(preface() + settings(), 100ms);
  REQUIRE(closed);
  CHECK(*closed >= 400ms);
  CHECK(*closed < 500ms + kSlack);
}

TEST_CASE("a header block dribbled after its HEADERS is closed at the header deadline") {
  const Mode m = mode();
  INFO(m);
  auto o = options_for(m);
  o.header_timeout = 500ms;
  TestServer server(o);
  Client c(server.port(), m.tls);
  REQUIRE(c.send(preface() + settings() + open_header_block(1)));
  // One CONTINUATION, octet by octet, that would end the block.
  const ByteString rest = bytes("\x41\x09localhost");
  const auto closed = c.dribble(
      frame(proto::FrameType::kContinuation, proto::flags::kEndHeaders, 1, rest + rest + rest), 100ms);
  REQUIRE(closed);
  CHECK(*closed < 500ms + kSlack);
}

TEST_CASE("a TLS ClientHello dribbled one octet at a time is closed at the handshake deadline") {
  const Mode m = mode();
  if (!m.tls) return;
  INFO(m);
  auto o = options_for(m);
  o.handshake_timeout = 500ms;
  TestServer server(o);
  Client c(server.port(), m.tls, /*handshake=*/false);
  const auto closed = c.dribble(client_hello(), 100ms);
  REQUIRE(closed);
  CHECK(*closed >= 400ms);
  CHECK(*closed < 500ms + kSlack);
}

TEST_CASE("idle means no progress: octets of a frame that never completes do not keep a connection") {
  const Mode m = mode();
  INFO(m);
  auto o = options_for(m);
  o.idle_timeout = 500ms;
  TestServer server(o);
  Client c(server.port(), m.tls);
  REQUIRE(c.send(preface() + settings()));
  // A PING (8 octets of payload) that takes 1.7 s to arrive.
  const auto closed = c.dribble(frame(proto::FrameType::kPing, 0, 0, bytes("12345678")), 100ms);
  REQUIRE(closed);
  CHECK(*closed < 500ms + kSlack);
}

TEST_CASE("minimum progress: complete but tiny frames do not keep a connection forever") {
  const Mode m = mode();
  INFO(m);
  auto o = options_for(m);
  o.idle_timeout = 2s;
  o.min_progress_window = 500ms;
  o.min_progress_rate = 2000;  // 1000 octets per window; the PINGs move ~340
  TestServer server(o);
  Client c(server.port(), m.tls);
  REQUIRE(c.send(preface() + settings()));
  const auto start = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - start < 3s) {
    closed = !c.send(frame(proto::FrameType::kPing, 0, 0, bytes("12345678"))) || c.closed_within(100ms);
  }
  CHECK(closed);
  CHECK(Clock::now() - start < 1s + kSlack);
}

TEST_CASE("dribblers at --max-connections do not keep a real client out") {
  require_clients({"h2load"});
  const Mode m = mode();
  if (!concurrent(m.dispatch)) return;  // one client at a time: the backlog is its limit
  INFO(m);
  auto o = options_for(m);
  o.max_connections = 20;
  TestServer server(o);
  // 50 dribblers: h2c ones send the preface an octet at a time; TLS ones
  // never say hello. Closed ones (refused, evicted) come back at once.
  std::atomic<bool> stop{false};
  std::thread fleet([&] {
    std::vector<std::unique_ptr<Client>> d;
    std::vector<size_t> sent(50, 0);
    for (int i = 0; i < 50; ++i) d.push_back(std::make_unique<Client>(server.port(), m.tls, false));
    const ByteString p = preface();
    while (!stop.load()) {
      for (size_t i = 0; i < d.size(); ++i) {
        const bool alive = m.tls ? !d[i]->closed_within(0ms)
                                 : sent[i] >= p.size() || d[i]->send({p[sent[i]++]});
        if (!alive || d[i]->closed_within(0ms)) {
          d[i] = std::make_unique<Client>(server.port(), m.tls, false);
          sent[i] = 0;
        }
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(500ms);  // the fleet holds every slot
  const auto r = run_process({"h2load", "-n", "200", "-c", "2", server.url()}, 30s);
  stop = true;
  fleet.join();
  INFO(r.output);
  require_all_succeeded(r, 200);
  const std::string json = server.get().stats_json();
  INFO(json);
  CHECK(evicted(json, m.tls ? "handshake" : "preface") >= 2);
}

TEST_CASE("at the limit an idle connection without streams makes room, one with an open stream does not") {
  const Mode m = mode();
  if (!concurrent(m.dispatch)) return;
  INFO(m);
  auto o = options_for(m);
  o.max_connections = 3;
  o.threads = m.dispatch == Dispatch::kThreaded ? 0 : 1;  // eviction looks at the accepting loop
  TestServer server(o);
  // A stream that stays open: a body larger than the window it may use.
  auto busy = [&] {
    auto c = std::make_unique<Client>(server.port(), m.tls);
    REQUIRE(c->send(preface() + settings() + get_request(1, "/bytes/1000000")));
    REQUIRE(c->read_until(proto::FrameType::kData));
    return c;
  };
  auto oldest_busy = busy();
  std::this_thread::sleep_for(200ms);  // longest without progress, yet busy
  Client idle(server.port(), m.tls);
  REQUIRE(idle.send(preface() + settings()));
  REQUIRE(idle.read_until(proto::FrameType::kSettings));
  auto second_busy = busy();
  std::this_thread::sleep_for(200ms);  // the deadlines see the state settle (threaded: a tick)

  Client newcomer(server.port(), m.tls);
  REQUIRE(newcomer.send(preface() + settings() + get_request(1)));
  const auto answer = newcomer.read_until(proto::FrameType::kHeaders);
  REQUIRE(answer);  // served, not "server full"
  const auto g = idle.read_until(proto::FrameType::kGoaway);
  REQUIRE(g);
  CHECK(ByteString(g->second.begin() + 4, g->second.begin() + 8) == u32(0));  // NO_ERROR
  CHECK(idle.closed_within(3s));
  // The busy ones were left alone.
  for (Client* c : {oldest_busy.get(), second_busy.get()}) {
    REQUIRE(c->send(frame(proto::FrameType::kWindowUpdate, 0, 1, u32(65536))));
    CHECK(c->read_until(proto::FrameType::kData));
  }
  std::this_thread::sleep_for(200ms);

  // Every slot does real work now (the newcomer's is idle: busy it up):
  // the next client is refused.
  REQUIRE(newcomer.send(get_request(3, "/bytes/1000000")));
  REQUIRE(newcomer.read_until(proto::FrameType::kData));
  std::this_thread::sleep_for(200ms);
  Client refused(server.port(), m.tls);
  REQUIRE(refused.send(preface() + settings()));
  const auto full = refused.read_until(proto::FrameType::kGoaway);
  REQUIRE(full);
  CHECK(ByteString(full->second.begin() + 8, full->second.end()) == bytes("server full"));
  const std::string json = server.get().stats_json();
  INFO(json);
  CHECK(evicted(json, "idle") == 1);
}

TEST_CASE("threaded: threads are bounded by --max-threads, whatever connects") {
  const Mode m = mode();
  if (m.dispatch != Dispatch::kThreaded) return;
  INFO(m);
  auto o = options_for(m);
  o.max_threads = 20;
  const size_t before = thread_count();
  TestServer server(o);
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 100; ++i) silent.push_back(std::make_unique<Client>(server.port(), m.tls, false));
  std::this_thread::sleep_for(500ms);
  const size_t during = thread_count();
  INFO("threads before " << before << ", with 100 silent clients " << during);
  // 20 connection threads, 5 refusing or closing, the acceptor.
  CHECK(during - before <= 20 + 5 + 1);
  silent.clear();
}

TEST_CASE("after a connection error's GOAWAY, a peer that floods on is closed quickly") {
  const Mode m = mode();
  INFO(m);
  TestServer server(options_for(m));
  Client c(server.port(), m.tls);
  // DATA on stream 0: a connection error (RFC 9113 §6.1).
  REQUIRE(c.send(preface() + settings() + frame(proto::FrameType::kData, 0, 0, bytes("x"))));
  const auto sent_bad = Clock::now();
  // Raw octets after it, as fast as the socket takes them (with TLS too:
  // the server must not be parsing any more). Gone: the server closed and
  // a send met its reset.
  const ByteString junk(16384, 'j');
  bool gone = false;
  while (!gone && Clock::now() - sent_bad < 3s) {
    pollfd p{c.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::send(c.fd(), junk.data(), junk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    gone = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
  const auto took = Clock::now() - sent_bad;
  INFO("closed after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(gone);
  CHECK(took < 700ms);
}

int main(int argc, char** argv) {
  return run_suite(argc, argv, g_suite);
}
