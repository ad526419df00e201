// The socket, thread and epoll knobs (server/socket_options.h,
// server/thread_options.h, the epoll reactor), checked where they take
// effect: a server started in this process with create_server(), a real
// client, and the server's own sockets, threads and epoll instances found
// in /proc/self and read back with getsockopt, sched_getaffinity and
// fdinfo.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/server.h"
#include "server/socket_options.h"
#include "tests/support/clients.h"
#include "tests/support/content.h"
#include "tests/support/frame_builder.h"
#include "tests/support/process.h"
#include "tests/support/stderr_capture.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;
using server::Dispatch;
using server::ServerOptions;

namespace {

// As in <linux/eventpoll.h> (Linux 6.9), which glibc 2.36 lacks.
struct EpollParams {
  uint32_t busy_poll_usecs;
  uint16_t busy_poll_budget;
  uint8_t prefer_busy_poll;
  uint8_t pad;
};
constexpr unsigned long kEpiocGetParams = _IOR(0x8A, 0x02, EpollParams);

long long sysctl(const char* path) {
  std::ifstream in(path);
  long long v = -1;
  in >> v;
  return v;
}

// A cleartext server on an ephemeral loopback port; null (with `error`)
// when create_server() refused.
std::unique_ptr<server::Server> start(ServerOptions o, std::string* error = nullptr) {
  o.port = 0;
  o.tls = false;
  auto created = server::create_server(o);
  if (error != nullptr) *error = created.error;
  return std::move(created.server);
}

// start(), or a SKIP-like early return for uring where io_uring is missing.
std::unique_ptr<server::Server> start_or_warn(const ServerOptions& o) {
  std::string error;
  auto s = start(o, &error);
  if (!s && o.dispatch == Dispatch::kUring) {
    WARN("uring unavailable, not checked: " << error);
    return nullptr;
  }
  INFO(error);
  REQUIRE(s);
  return s;
}

uint16_t port_of(const server::Server& s) {
  return static_cast<uint16_t>(std::stoi(s.url().substr(s.url().rfind(':') + 1)));
}

// A client whose connection the server has accepted and is serving: the
// server's SETTINGS arrived.
std::unique_ptr<RawClient> served_client(uint16_t port) {
  auto c = std::make_unique<RawClient>(port);
  c->send(preface() + settings());
  REQUIRE(c->receive(9).size() >= 9);
  return c;
}

// served_client() without Catch2 assertions (for other threads): connects,
// sends the preface and SETTINGS, waits for the server's first octets,
// closes.
bool handshake(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  const ByteString hello = preface() + settings();
  uint8_t buf[64];
  pollfd p{fd, POLLIN, 0};
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::write(fd, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()) &&
                  ::poll(&p, 1, 3000) == 1 && ::read(fd, buf, sizeof buf) > 0;
  ::close(fd);
  return ok;
}

bool same_address(const sockaddr_storage& a, socklen_t alen, const sockaddr_storage& b,
                  socklen_t blen) {
  return alen == blen && std::memcmp(&a, &b, alen) == 0;
}

// The server's end of `client`'s connection: the socket of this process
// whose local address is the client's peer and whose peer is the client.
int server_side_of(int client) {
  sockaddr_storage cl{}, cp{};
  socklen_t cl_len = sizeof cl, cp_len = sizeof cp;
  REQUIRE(::getsockname(client, reinterpret_cast<sockaddr*>(&cl), &cl_len) == 0);
  REQUIRE(::getpeername(client, reinterpret_cast<sockaddr*>(&cp), &cp_len) == 0);
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    struct stat st {};
    if (fd == client || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage l{}, p{};
    socklen_t l_len = sizeof l, p_len = sizeof p;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&l), &l_len) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&p), &p_len) != 0) {
      continue;
    }
    if (same_address(l, l_len, cp, cp_len) && same_address(p, p_len, cl, cl_len)) return fd;
  }
  return -1;
}

// The listening sockets of this process bound to `port`.
std::vector<int> listeners_on(uint16_t port) {
  std::vector<int> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    int listening = 0;
    socklen_t len = sizeof listening;
    sockaddr_in a{};
    socklen_t alen = sizeof a;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) == 0 &&
        a.sin_family == AF_INET && ntohs(a.sin_port) == port) {
      out.push_back(fd);
    }
  }
  return out;
}

// The epoll instances of this process.
std::vector<int> epoll_fds() {
  std::vector<int> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec && target.string() == "anon_inode:[eventpoll]") {
      out.push_back(std::stoi(entry.path().filename().string()));
    }
  }
  return out;
}

int int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

// The threads of this process named `name` (/proc/self/task/*/comm),
// waited for up to 3 s (serving threads name themselves as they start).
std::vector<pid_t> threads_named(const std::string& name, size_t at_least = 1) {
  std::vector<pid_t> found;
  for (int i = 0; i < 300; ++i) {
    found.clear();
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(entry.path() / "comm");
      std::string line;
      std::getline(comm, line);
      if (line == name) found.push_back(std::stoi(entry.path().filename().string()));
    }
    if (found.size() >= at_least) break;
    std::this_thread::sleep_for(10ms);
  }
  return found;
}

std::set<unsigned> affinity_of(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(tid, sizeof set, &set) == 0);
  std::set<unsigned> out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.insert(c);
  }
  return out;
}

std::vector<unsigned> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<unsigned> out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

// A counter of one serving thread ("epoll-1") or of the totals ("") in
// Server::stats_json().
long long stat(const server::Server& s, const std::string& thread, const std::string& counter) {
  const long long n = stats_counter(s.stats_json(), counter, thread);
  REQUIRE(n >= 0);
  return n;
}

// CPU time (utime + stime) a thread of this process has used.
std::chrono::milliseconds cpu_time_of(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  long long ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stoll(f);
  }
  return std::chrono::milliseconds(ticks * 1000 / ::sysconf(_SC_CLK_TCK));
}

// The kernel's struct tcp_info (include/uapi/linux/tcp.h) past the part
// glibc 2.36 declares, which ends at tcpi_total_retrans: the fields the
// tests read, at the kernel's offsets.
struct KernelTcpInfo {
  tcp_info base;
  uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
};
static_assert(offsetof(KernelTcpInfo, data_segs_out) == 156, "tcpi_data_segs_out's offset");

KernelTcpInfo tcp_info_of(int fd) {
  KernelTcpInfo info{};
  socklen_t len = sizeof info;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0);
  REQUIRE(len == sizeof info);
  return info;
}

std::string congestion_of(int fd) {
  char name[16] = {};
  socklen_t len = sizeof name;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) == 0);
  return std::string(name, strnlen(name, sizeof name));
}

std::vector<std::string> words_of_file(const char* path) {
  std::ifstream in(path);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// Frames with END_STREAM (HEADERS or DATA) in `received`, a run of whole
// frames from the start of a connection's output.
size_t ended_streams(const ByteString& received) {
  size_t ended = 0, at = 0;
  while (at + 9 <= received.size()) {
    const size_t length = (size_t{received[at]} << 16) | (size_t{received[at + 1]} << 8) |
                          received[at + 2];
    const uint8_t type = received[at + 3], flags = received[at + 4];
    if (at + 9 + length > received.size()) break;
    if ((type == 0 || type == 1) && (flags & 0x1)) ++ended;
    at += 9 + length;
  }
  return ended;
}

const char* name_of(Dispatch d) {
  switch (d) {
    case Dispatch::kBlocking: return "blocking";
    case Dispatch::kThreaded: return "threaded";
    case Dispatch::kEpoll: return "epoll";
    case Dispatch::kUring: return "uring";
  }
  return "?";
}

}  // namespace

TEST_CASE("socket knobs reach the server's accepted sockets, every dispatcher") {
  const Dispatch d =
      GENERATE(Dispatch::kBlocking, Dispatch::kThreaded, Dispatch::kEpoll, Dispatch::kUring);
  const long long wmem_max = sysctl("/proc/sys/net/core/wmem_max");
  const long long rmem_max = sysctl("/proc/sys/net/core/rmem_max");
  REQUIRE(wmem_max > 0);
  REQUIRE(rmem_max > 0);
  struct Row {
    const char* knob;
    std::function<void(ServerOptions&)> set;
    int level, name;
    long long expected;
  };
  // Linux doubles a buffer size and caps it at the sysctl first.
  const Row rows[] = {
      {"--sndbuf 100000", [](ServerOptions& o) { o.send_buffer = 100000; }, SOL_SOCKET, SO_SNDBUF,
       2 * std::min<long long>(100000, wmem_max)},
      {"--sndbuf 100000000", [](ServerOptions& o) { o.send_buffer = 100000000; }, SOL_SOCKET,
       SO_SNDBUF, 2 * std::min<long long>(100000000, wmem_max)},
      {"--rcvbuf 150000", [](ServerOptions& o) { o.receive_buffer = 150000; }, SOL_SOCKET,
       SO_RCVBUF, 2 * std::min<long long>(150000, rmem_max)},
      {"--busy-poll 50", [](ServerOptions& o) { o.busy_poll_us = 50; }, SOL_SOCKET, SO_BUSY_POLL,
       50},
      {"--notsent-lowat 16384", [](ServerOptions& o) { o.notsent_lowat = 16384; }, IPPROTO_TCP,
       TCP_NOTSENT_LOWAT, 16384},
      {"--tcp-nodelay on", [](ServerOptions& o) { o.tcp_nodelay = true; }, IPPROTO_TCP,
       TCP_NODELAY, 1},
      {"--tcp-nodelay off", [](ServerOptions& o) { o.tcp_nodelay = false; }, IPPROTO_TCP,
       TCP_NODELAY, 0},
      {"--tcp-cork on", [](ServerOptions& o) { o.tcp_cork = true; }, IPPROTO_TCP, TCP_CORK, 1},
      {"--tcp-cork off", [](ServerOptions& o) { o.tcp_cork = false; }, IPPROTO_TCP, TCP_CORK, 0},
  };
  for (const Row& row : rows) {
    INFO(name_of(d) << " " << row.knob);
    ServerOptions o;
    o.dispatch = d;
    if (d == Dispatch::kEpoll || d == Dispatch::kUring) o.threads = 2;  // reuseport siblings too
    row.set(o);
    auto s = start_or_warn(o);
    if (!s) return;
    // Several connections, so that each reuseport listener is likely used.
    const int clients = d == Dispatch::kBlocking ? 1 : 4;
    for (int i = 0; i < clients; ++i) {
      auto client = served_client(port_of(*s));
      const int fd = server_side_of(client->fd());
      REQUIRE(fd >= 0);
      // TCP_CORK reads 0 for the instant the server pushes a segment out
      // (off, then on again): a moment later it is what the knob set.
      int value = int_option(fd, row.level, row.name);
      for (int i = 0; i < 100 && value != row.expected; ++i) {
        std::this_thread::sleep_for(1ms);
        value = int_option(fd, row.level, row.name);
      }
      CHECK(value == row.expected);
    }
  }
}

TEST_CASE("the knobs are inherited over IPv6 too") {
  ServerOptions o;
  o.host = "::1";
  o.send_buffer = 100000;
  o.notsent_lowat = 4096;
  std::string error;
  auto s = start(o, &error);
  if (!s) {
    WARN("no IPv6 loopback here: " << error);
    return;
  }
  const uint16_t port = port_of(*s);
  const int client = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  a.sin6_port = htons(port);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const ByteString hello = preface() + settings();
  REQUIRE(::write(client, hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
  pollfd p{client, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 3000) == 1);  // the server's SETTINGS: accepted and served
  const int fd = server_side_of(client);
  REQUIRE(fd >= 0);
  CHECK(int_option(fd, SOL_SOCKET, SO_SNDBUF) == 200000);
  CHECK(int_option(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT) == 4096);
  CHECK(int_option(fd, IPPROTO_TCP, TCP_NODELAY) == 1);
  ::close(client);
}

TEST_CASE("configure_listener reads each value back and reports what the kernel changed") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ServerOptions o;
  o.send_buffer = 100000;
  o.receive_buffer = 1;
  o.busy_poll_us = 50;  // kept as given: no line
  std::vector<std::string> notices;
  CHECK(server::configure_listener(fd, o, &notices) == "");
  ::close(fd);
  REQUIRE(notices.size() == 2);
  CHECK(notices[0].rfind("--rcvbuf 1: the kernel set ", 0) == 0);
  CHECK(notices[0].find("(its minimum)") != std::string::npos);
  CHECK(notices[1] ==
        "--sndbuf 100000: the kernel set 200000 (it doubles the value, to leave room for its "
        "bookkeeping)");
}

TEST_CASE("create_server logs the clamped buffer sizes and backlog, one line each") {
  const long long wmem_max = sysctl("/proc/sys/net/core/wmem_max");
  const long long somaxconn = sysctl("/proc/sys/net/core/somaxconn");
  REQUIRE(wmem_max > 0);
  REQUIRE(wmem_max < 100000000);
  REQUIRE(somaxconn > 0);
  REQUIRE(somaxconn < 100000);
  ServerOptions o;
  o.dispatch = Dispatch::kEpoll;
  o.threads = 1;
  o.send_buffer = 100000000;
  o.listen_backlog = 100000;
  std::string log;
  {
    StderrCapture capture;
    auto s = start(o);
    log = capture.text();
    REQUIRE(s);
  }
  INFO(log);
  CHECK(log.find("h2lab: --sndbuf 100000000: the kernel set " + std::to_string(2 * wmem_max) +
                 " (it caps the value at net.core.wmem_max = " + std::to_string(wmem_max) +
                 " and doubles it)\n") != std::string::npos);
  CHECK(log.find("h2lab: --backlog 100000: the kernel keeps " + std::to_string(somaxconn) +
                 " (it caps the backlog at net.core.somaxconn = " + std::to_string(somaxconn) +
                 ")\n") != std::string::npos);
}

TEST_CASE("a value the kernel refuses fails create_server, naming the flag") {
  ServerOptions o;
  std::string error;
  SECTION("SO_BUSY_POLL above INT_MAX") {
    o.busy_poll_us = 3000000000u;
    CHECK_FALSE(start(o, &error));
    CHECK(error == "--busy-poll 3000000000: the kernel refused SO_BUSY_POLL: Invalid argument");
  }
  SECTION("EPIOCSPARAMS above INT_MAX") {
    o.dispatch = Dispatch::kEpoll;
    o.epoll_busy_poll_us = 3000000000u;
    CHECK_FALSE(start(o, &error));
    CHECK(error.rfind("--epoll-busy-poll 3000000000: the kernel refused EPIOCSPARAMS: ", 0) == 0);
  }
}

TEST_CASE("--epoll-busy-poll is set on every reactor's epoll instance") {
  const unsigned usecs = GENERATE(0u, 50u);
  ServerOptions o;
  o.dispatch = Dispatch::kEpoll;
  o.threads = 2;
  o.epoll_busy_poll_us = usecs;
  std::string error;
  auto s = start(o, &error);
  if (!s) {
    // A kernel before 6.9: the refusal names the flag.
    REQUIRE(usecs != 0);
    CHECK(error.rfind("--epoll-busy-poll 50: the kernel refused EPIOCSPARAMS", 0) == 0);
    return;
  }
  served_client(port_of(*s));  // both reactors are up by now, or soon
  std::vector<unsigned> seen;
  for (int i = 0; i < 300 && seen.size() < 2; ++i) {
    seen.clear();
    for (const int epfd : epoll_fds()) {
      EpollParams p{};
      if (::ioctl(epfd, kEpiocGetParams, &p) == 0) seen.push_back(p.busy_poll_usecs);
    }
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == usecs);
  CHECK(seen[1] == usecs);
}

TEST_CASE("--cpus pins each loop to its CPU and names the threads") {
  const std::vector<unsigned> allowed = allowed_cpus();
  if (allowed.size() < 2) WARN("one CPU allowed: pinning cannot differ from the default");
  // Reversed, so that loop 0 on the second CPU shows the order is kept.
  const std::vector<unsigned> cpus =
      allowed.size() < 2 ? std::vector<unsigned>{allowed[0]}
                         : std::vector<unsigned>{allowed[1], allowed[0]};
  const Dispatch d = GENERATE(Dispatch::kEpoll, Dispatch::kUring);
  INFO(name_of(d));
  ServerOptions o;
  o.dispatch = d;
  o.cpus = cpus;  // threads 0: one loop per listed CPU
  auto s = start_or_warn(o);
  if (!s) return;
  for (unsigned i = 0; i < cpus.size(); ++i) {
    const auto tids = threads_named("h2lab-" + std::string(name_of(d)) + "-" + std::to_string(i));
    REQUIRE(tids.size() == 1);
    CHECK(affinity_of(tids[0]) == std::set<unsigned>{cpus[i]});
  }
  served_client(port_of(*s));
}

TEST_CASE("--cpus pins blocking's thread, threaded's acceptor and connection threads") {
  const std::vector<unsigned> allowed = allowed_cpus();
  // One CPU of several: the whole (one-CPU) list differs from the default.
  const std::vector<unsigned> cpus = {allowed.back()};
  ServerOptions o;
  o.cpus = cpus;
  SECTION("blocking") {
    o.dispatch = Dispatch::kBlocking;
    auto s = start_or_warn(o);
    const auto tids = threads_named("h2lab-blocking");
    REQUIRE(tids.size() == 1);
    CHECK(affinity_of(tids[0]) == std::set<unsigned>(cpus.begin(), cpus.end()));
  }
  SECTION("threaded") {
    o.dispatch = Dispatch::kThreaded;
    auto s = start_or_warn(o);
    auto a = served_client(port_of(*s));
    auto b = served_client(port_of(*s));
    const auto acceptor = threads_named("h2lab-accept");
    REQUIRE(acceptor.size() == 1);
    CHECK(affinity_of(acceptor[0]) == std::set<unsigned>(cpus.begin(), cpus.end()));
    const auto conns = threads_named("h2lab-conn", 2);
    REQUIRE(conns.size() == 2);
    for (const pid_t tid : conns) {
      CHECK(affinity_of(tid) == std::set<unsigned>(cpus.begin(), cpus.end()));
    }
  }
}

TEST_CASE("--incoming-cpu: each reuseport listener prefers its loop's CPU") {
  const std::vector<unsigned> allowed = allowed_cpus();
  if (allowed.size() < 2) {
    WARN("one CPU allowed: SO_INCOMING_CPU cannot steer anything");
    return;
  }
  const bool on = GENERATE(false, true);
  INFO("incoming_cpu " << on);
  ServerOptions o;
  o.dispatch = Dispatch::kEpoll;
  o.cpus = {allowed[0], allowed[1]};
  o.incoming_cpu = on;
  auto s = start_or_warn(o);
  const uint16_t port = port_of(*s);
  std::multiset<int> steered;
  for (const int fd : listeners_on(port)) steered.insert(int_option(fd, SOL_SOCKET, SO_INCOMING_CPU));
  if (on) {
    CHECK(steered == std::multiset<int>{static_cast<int>(allowed[0]), static_cast<int>(allowed[1])});
  } else {
    CHECK(steered == std::multiset<int>{-1, -1});
  }
  // Over loopback a SYN is processed on the CPU of the connecting thread:
  // from the second CPU, every connection lands on loop 1.
  constexpr int kConnections = 20;
  int pinned = -1, handshakes = 0;  // no Catch2 assertions off the test's thread
  std::thread client([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(allowed[1], &set);
    pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    for (int i = 0; i < kConnections; ++i) handshakes += handshake(port) ? 1 : 0;
  });
  client.join();
  REQUIRE(pinned == 0);
  REQUIRE(handshakes == kConnections);
  const long long on_loop_1 = stat(*s, "epoll-1", "connections");
  if (on) {
    CHECK(on_loop_1 == kConnections);
  } else {
    // The reuseport hash spreads them; all 20 on one loop is 2^-19 likely.
    CHECK(on_loop_1 < kConnections);
    CHECK(on_loop_1 > 0);
  }
}

TEST_CASE("--epoll-trigger registers connection sockets with or without EPOLLET") {
  const auto trigger = GENERATE(server::EpollTrigger::kEdge, server::EpollTrigger::kLevel);
  ServerOptions o;
  o.dispatch = Dispatch::kEpoll;
  o.threads = 1;
  o.epoll_trigger = trigger;
  auto s = start_or_warn(o);
  auto client = served_client(port_of(*s));
  const int fd = server_side_of(client->fd());
  REQUIRE(fd >= 0);
  const auto epfds = epoll_fds();
  REQUIRE(epfds.size() == 1);
  // fdinfo lists each registered fd: "tfd: 7 events: 80002019 data: ..."
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(epfds[0]));
  std::string word;
  unsigned long events = 0;
  bool found = false;
  while (info >> word) {
    if (word != "tfd:") continue;
    int tfd = -1;
    info >> tfd >> word >> std::hex >> events >> std::dec;
    if (tfd == fd) {
      found = true;
      break;
    }
  }
  REQUIRE(found);
  CHECK((events & EPOLLIN) != 0);
  CHECK(((events & EPOLLET) != 0) == (trigger == server::EpollTrigger::kEdge));
}

TEST_CASE("level-triggered and --epoll-max-events 1 serve h2load completely") {
  require_clients({"h2load"});
  struct Case {
    server::EpollTrigger trigger;
    unsigned max_events;
  };
  const Case c = GENERATE(Case{server::EpollTrigger::kLevel, 256}, Case{server::EpollTrigger::kLevel, 1},
                          Case{server::EpollTrigger::kEdge, 1});
  INFO("level " << (c.trigger == server::EpollTrigger::kLevel) << ", max events " << c.max_events);
  ServerOptions o;
  o.dispatch = Dispatch::kEpoll;
  o.threads = 1;
  o.epoll_trigger = c.trigger;
  o.epoll_max_events = c.max_events;
  auto s = start_or_warn(o);
  require_all_succeeded(
      run_process({"h2load", "-n", "10000", "-c", "4", "-m", "10", s->url()}, 60s), 10000);
  const long long events = stat(*s, "", "events");
  const long long waits = stat(*s, "", "waits");
  INFO(events << " events in " << waits << " waits");
  if (c.max_events == 1) CHECK(events <= waits);
  // 4 busy connections make batches; if not, the check above proves little.
  if (c.max_events == 256 && events <= waits) WARN("no epoll_wait returned several events");
}

TEST_CASE("level-triggered: a client that reads nothing does not make the reactor spin") {
  ServerOptions o;
  o.dispatch = Dispatch::kEpoll;
  o.threads = 1;
  o.epoll_trigger = server::EpollTrigger::kLevel;
  o.engine = server::EngineKind::kMini;  // answers every pipelined request at once
  o.max_output_bytes = 64 * 1024;
  auto s = start_or_warn(o);
  const auto reactor = threads_named("h2lab-epoll-0");
  REQUIRE(reactor.size() == 1);

  // 256 KiB of pipelined GETs, sent again and again (mini does not mind
  // the stream ids repeating; dispatch_test.cc does the same).
  ByteString chunk;
  for (uint32_t id = 1; chunk.size() < 256 * 1024; id += 2) {
    const ByteString request = get_request(id);
    chunk.insert(chunk.end(), request.begin(), request.end());
  }
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int small = 16 * 1024;
  ::setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port_of(*s));
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  ::fcntl(client, F_SETFL, O_NONBLOCK);
  // Send until the server stops taking requests (backpressure) for 300 ms;
  // unbounded, 64 MiB of requests would be taken in.
  const ByteString hello = preface() + settings();
  REQUIRE(::send(client, hello.data(), hello.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(hello.size()));
  const size_t offered = 64u << 20;
  size_t sent = 0;
  const auto began = std::chrono::steady_clock::now();
  auto last_progress = began;
  while (sent < offered && std::chrono::steady_clock::now() - last_progress < 300ms &&
         std::chrono::steady_clock::now() - began < 5s) {
    const size_t at = sent % chunk.size();
    const ssize_t n = ::send(client, chunk.data() + at, chunk.size() - at, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      last_progress = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  REQUIRE(sent < offered);  // the server stopped reading: requests wait in its socket
  const auto before = cpu_time_of(reactor[0]);
  std::this_thread::sleep_for(1s);
  const auto used = cpu_time_of(reactor[0]) - before;
  INFO("the reactor used " << used.count() << " ms of CPU in 1 s");
  CHECK(used < 300ms);
  ::close(client);
}

TEST_CASE("--quickack re-arms TCP_QUICKACK after every read") {
  const Dispatch d = GENERATE(Dispatch::kBlocking, Dispatch::kThreaded, Dispatch::kEpoll);
  const bool quickack = GENERATE(false, true);
  INFO(name_of(d) << ", quickack " << quickack);
  ServerOptions o;
  o.dispatch = d;
  if (d == Dispatch::kEpoll) o.threads = 1;
  o.tcp_quickack = quickack;
  auto s = start_or_warn(o);
  auto client = served_client(port_of(*s));
  const int fd = server_side_of(client->fd());
  REQUIRE(fd >= 0);
  // Request and answer in quick succession: the kernel takes the server's
  // socket for interactive and delays its ACKs (pingpong mode, in which
  // getsockopt(TCP_QUICKACK) reads 0). Then input that gets no answer: only
  // a re-arm after its read puts the socket back in quick-ack mode — until
  // the delayed-ACK timer (40 ms at least) leaves pingpong mode on its own,
  // so a look later than 30 ms after the send proves nothing and is retried.
  uint32_t id = 1;
  std::optional<int> seen;
  for (int attempt = 0; attempt < 5 && !seen; ++attempt) {
    for (int i = 0; i < 5; ++i, id += 2) {
      client->send(get_request(id));
      REQUIRE(!client->receive(20, 1s).empty());
    }
    std::this_thread::sleep_for(5ms);  // the last response's tail is in
    const auto sent = std::chrono::steady_clock::now();
    client->send(frame(proto::FrameType::kWindowUpdate, 0, 0, u32(1000)));
    int unread = 1;
    while (unread > 0 && std::chrono::steady_clock::now() - sent < 1s) {
      if (::ioctl(fd, FIONREAD, &unread) != 0) break;  // the server's receive queue
    }
    std::this_thread::sleep_for(2ms);  // its read is followed by the re-arm
    const int quick = int_option(fd, IPPROTO_TCP, TCP_QUICKACK);
    if (std::chrono::steady_clock::now() - sent < 30ms) seen = quick;
  }
  REQUIRE(seen);
  CHECK(*seen == (quickack ? 1 : 0));
}

TEST_CASE("TCP_NODELAY is on by default") {
  CHECK(ServerOptions{}.tcp_nodelay);
}

TEST_CASE("--congestion and --max-pacing-rate reach accepted sockets, every dispatcher") {
  const Dispatch d =
      GENERATE(Dispatch::kBlocking, Dispatch::kThreaded, Dispatch::kEpoll, Dispatch::kUring);
  // Any process may choose the allowed ones (CAP_NET_ADMIN, which a
  // sandbox's root may lack, the others too: the next test).
  const auto names = words_of_file("/proc/sys/net/ipv4/tcp_allowed_congestion_control");
  REQUIRE(!names.empty());
  uint64_t rate = 3000000;
  for (const std::string& name : names) {
    INFO(name_of(d) << " --congestion " << name << " --max-pacing-rate " << rate);
    ServerOptions o;
    o.dispatch = d;
    o.congestion = name;
    o.max_pacing_rate = rate;
    auto s = start_or_warn(o);
    if (!s) return;
    auto client = served_client(port_of(*s));
    const int fd = server_side_of(client->fd());
    REQUIRE(fd >= 0);
    CHECK(congestion_of(fd) == name);
    uint64_t got = 0;
    socklen_t len = sizeof got;
    REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &got, &len) == 0);
    CHECK(got == rate);
    CHECK(tcp_info_of(fd).max_pacing_rate == rate);
    // The client's own socket keeps the kernel's defaults.
    CHECK(tcp_info_of(client->fd()).max_pacing_rate == ~uint64_t{0});
    rate += 1000000;  // a value of its own for each server
  }
}

TEST_CASE("--congestion: one available but not allowed is taken with CAP_NET_ADMIN, else refused") {
  const auto allowed = words_of_file("/proc/sys/net/ipv4/tcp_allowed_congestion_control");
  const auto available = words_of_file("/proc/sys/net/ipv4/tcp_available_congestion_control");
  std::string allowed_text, available_text;
  for (const auto& n : allowed) allowed_text += (allowed_text.empty() ? "" : " ") + n;
  for (const auto& n : available) available_text += (available_text.empty() ? "" : " ") + n;
  size_t tried = 0;
  for (const std::string& name : available) {
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    ++tried;
    INFO("--congestion " << name);
    ServerOptions o;
    o.congestion = name;
    std::string error;
    auto s = start(o, &error);
    if (s) {  // the process may: the sockets have it
      auto client = served_client(port_of(*s));
      const int fd = server_side_of(client->fd());
      REQUIRE(fd >= 0);
      CHECK(congestion_of(fd) == name);
    } else {
      CHECK(error == "--congestion " + name +
                         ": not permitted: without CAP_NET_ADMIN only " + allowed_text +
                         " (net.ipv4.tcp_allowed_congestion_control) may be chosen, of " +
                         available_text);
    }
  }
  if (tried == 0) WARN("every available congestion control is allowed here: nothing to refuse");
}

TEST_CASE("--congestion: a name the kernel lacks is refused with the list it offers") {
  std::ifstream in("/proc/sys/net/ipv4/tcp_available_congestion_control");
  std::string available;
  std::getline(in, available);
  REQUIRE(!available.empty());
  ServerOptions o;
  o.congestion = "h2lab-none";
  std::string error;
  CHECK_FALSE(start(o, &error));
  CHECK(error == "--congestion h2lab-none: the kernel has no such congestion control; it offers " +
                     available +
                     " (net.ipv4.tcp_available_congestion_control; modprobe tcp_h2lab-none to add "
                     "one built as a module)");
}

TEST_CASE("--max-pacing-rate: a download takes as long as the rate says") {
  require_clients({"curl"});
  constexpr size_t kOctets = 1500000;
  // The time curl takes for kOctets, every one checked.
  auto download = [](uint64_t rate) {
    ServerOptions o;
    o.dispatch = Dispatch::kEpoll;
    o.threads = 1;
    o.max_pacing_rate = rate;
    auto s = start_or_warn(o);
    const auto began = std::chrono::steady_clock::now();
    const auto r = run_process(curl_h2(false, {s->url() + "bytes/" + std::to_string(kOctets)}, 30),
                               60s);
    const auto took = std::chrono::steady_clock::now() - began;
    REQUIRE(r.exit_code == 0);
    CHECK(content_mismatch(r.output, expected_bytes(kOctets)) == "");
    return std::chrono::duration<double>(took).count();
  };
  const double unpaced = download(0);
  const double paced = download(1000000);  // 1.5 s at 1 MB/s, less what the first burst carries
  INFO("unpaced " << unpaced << " s, paced at 1 MB/s " << paced << " s");
  CHECK(paced >= 0.8);
  CHECK(paced > 2 * unpaced);
}

TEST_CASE("--tcp-cork: per-response writes leave in full segments, nothing waits for the cork timer") {
  const Dispatch d =
      GENERATE(Dispatch::kBlocking, Dispatch::kThreaded, Dispatch::kEpoll, Dispatch::kUring);
  constexpr size_t kRequests = 50;
  // Segments the server sent for the 50 responses to one batch of requests
  // (and the connection's SETTINGS), each response written on its own.
  auto segments = [&](bool cork) -> std::optional<uint32_t> {
    INFO(name_of(d) << (cork ? ", cork" : ", no cork"));
    ServerOptions o;
    o.dispatch = d;
    if (d == Dispatch::kEpoll || d == Dispatch::kUring) o.threads = 1;
    o.write_policy = server::WritePolicy::kPerResponse;
    o.tcp_cork = cork;
    auto s = start_or_warn(o);
    if (!s) return std::nullopt;
    RawClient client(port_of(*s));
    ByteString batch = preface() + settings();
    for (uint32_t i = 0; i < kRequests; ++i) batch = batch + get_request(2 * i + 1);
    client.send(batch);
    ByteString received;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (ended_streams(received) < kRequests && std::chrono::steady_clock::now() < deadline) {
      received = received + client.receive(1 << 16, 50ms);
    }
    REQUIRE(ended_streams(received) == kRequests);
    const int fd = server_side_of(client.fd());
    REQUIRE(fd >= 0);
    const uint32_t sent = tcp_info_of(fd).data_segs_out;
    // One more request, alone: its response comes at once, not after the
    // kernel's 200 ms cork timer.
    const size_t before = received.size();
    const auto asked = std::chrono::steady_clock::now();
    client.send(get_request(2 * kRequests + 1));
    while (ended_streams(received) < kRequests + 1 &&
           std::chrono::steady_clock::now() - asked < 1s) {
      received = received + client.receive(1 << 16, 10ms);
    }
    const auto answered = std::chrono::steady_clock::now() - asked;
    CHECK(received.size() > before);
    CHECK(ended_streams(received) == kRequests + 1);
    CHECK(answered < 150ms);
    return sent;
  };
  const auto uncorked = segments(false);
  const auto corked = segments(true);
  if (!uncorked || !corked) return;
  INFO(name_of(d) << ": " << *uncorked << " data segments without the cork, " << *corked
                  << " with it");
  // 50 responses of about 60 octets fit one segment: with the cork the
  // server's SETTINGS, its ACK of ours and the responses take a few.
  CHECK(*corked <= 4);
  CHECK(*uncorked >= 2 * *corked);
}
