// The io_uring knobs of --dispatch uring (server/options.h), each checked
// against what the kernel reports of this process's rings — the
// /proc/self/fdinfo of every "anon_inode:[io_uring]" descriptor (Linux 6.18
// shows SqMask, CqMask, SqThread, SqThreadCpu, UserFiles with the sockets
// in their slots, UserBufs, NAPI), the SQPOLL thread's own /proc entries,
// and the kernel's answers to another thread using a SINGLE_ISSUER or
// DEFER_TASKRUN ring — while real clients over loopback are served; then
// the loop's counters, and the combinations create_server() must refuse at
// start.
#include <catch2/catch.hpp>

#include <liburing.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/frame.h"
#include "server/server.h"
#include "tests/support/clients.h"
#include "tests/support/content.h"
#include "tests/support/frame_builder.h"
#include "tests/support/process.h"
#include "tests/support/server_fixture.h"
#include "tests/support/stderr_capture.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;

namespace {

server::ServerOptions uring_options(unsigned threads = 1) {
  server::ServerOptions o;
  o.dispatch = server::Dispatch::kUring;
  o.tls = false;
  o.threads = threads;
  return o;
}

// What /proc/self/fdinfo says of one ring.
struct RingInfo {
  int fd = -1;
  std::map<std::string, std::string> fields;  // "SqMask" → "0xff"
  std::vector<std::string> files;    // the UserFiles lines: "3: socket:[123]"
  std::vector<std::string> buffers;  // the UserBufs lines: "0: 0x55…/4194304"
  long number(const std::string& key) const {
    const auto it = fields.find(key);
    REQUIRE(it != fields.end());
    return std::stol(it->second, nullptr, 0);
  }
  long entries(const std::string& mask_key) const { return number(mask_key) + 1; }
};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  const size_t b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<RingInfo> rings() {
  std::vector<RingInfo> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto link = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || link.string() != "anon_inode:[io_uring]") continue;
    RingInfo info;
    info.fd = std::stoi(entry.path().filename().string());
    std::ifstream in("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string line, section;
    while (std::getline(in, line)) {
      if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
        if (section == "UserFiles") info.files.push_back(trim(line));
        if (section == "UserBufs") info.buffers.push_back(trim(line));
        continue;
      }
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      section = line.substr(0, colon);
      info.fields[section] = trim(line.substr(colon + 1));
    }
    out.push_back(std::move(info));
  }
  return out;
}

// The rings of the one server running, once `count` of them exist (each
// proactor makes its ring on its own thread, after create_server returned).
std::vector<RingInfo> server_rings(size_t count) {
  std::vector<RingInfo> found;
  for (int i = 0; i < 200; ++i) {
    found = rings();
    if (found.size() >= count) break;
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(found.size() == count);
  return found;
}

// A few totals of the server's counters (stats_json(), docs/STATS.md).
struct Totals {
  long requests = 0, bytes_in = 0, bytes_out = 0, backpressure_pauses = 0, reads = 0, writes = 0,
       partial_writes = 0, syscalls = 0, waits = 0, events = 0, buffer_exhaustion = 0,
       connections = 0, zero_copy_sends = 0, bundled_reads = 0, bundled_sends = 0,
       buffers_kept = 0;
};

Totals totals(server::Server& s) {
  const std::string json = s.stats_json();
  INFO(json);
  auto field = [&](const char* name) {
    const long long n = stats_counter(json, name);
    REQUIRE(n >= 0);
    return static_cast<long>(n);
  };
  Totals t;
  t.connections = field("connections");
  t.requests = field("requests");
  t.bytes_in = field("bytes_in");
  t.bytes_out = field("bytes_out");
  t.backpressure_pauses = field("backpressure_pauses");
  t.reads = field("reads");
  t.writes = field("writes");
  t.partial_writes = field("partial_writes");
  t.syscalls = field("syscalls");
  t.waits = field("waits");
  t.events = field("events");
  t.buffer_exhaustion = field("buffer_exhaustion");
  t.zero_copy_sends = field("zero_copy_sends");
  t.bundled_reads = field("bundled_reads");
  t.bundled_sends = field("bundled_sends");
  t.buffers_kept = field("buffers_kept");
  return t;
}

// Completions that are neither a read nor a send's result nor explained
// by the rest of the counters: every connection brings an accept and at
// most one recv that ends without delivering (cancelled, reset); every
// backpressure pause a cancel and the recv it ends; every -ENOBUFS a recv
// end. What is left are zero-copy notifications (IORING_CQE_F_NOTIF), one
// per zero-copy send.
long unexplained_completions(const Totals& t) {
  return t.events - t.reads - t.writes - 2 * t.connections - 2 * t.backpressure_pauses -
         t.buffer_exhaustion;
}

void h2load(const TestServer& server, long n, int clients = 2, int streams = 10) {
  require_all_succeeded(run_process({"h2load", "-n", std::to_string(n), "-c", std::to_string(clients),
                                     "-m", std::to_string(streams), server.url()},
                                    60s),
                        n);
}


// GET /bytes/N through curl, every octet against the pattern computed here
// (tests/support/content.h): never against another server's answer, which
// would share a bug of the engine (issue 11).
void require_bytes_route(const TestServer& server, bool tls, size_t n) {
  const auto r = run_process(curl_h2(tls, {server.url() + "bytes/" + std::to_string(n)}, 30), 60s);
  REQUIRE(r.exit_code == 0);
  CHECK(content_mismatch(r.output, expected_bytes(n)) == "");
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

// `count` curls upload distinct bodies of `size` octets to /echo at the
// same time (their recvs share the ring's buffers), and every octet that
// comes back is checked against what each sent.
void require_parallel_echoes(const TestServer& server, int count, size_t size) {
  std::vector<std::string> bodies, ins, outs;
  for (int i = 0; i < count; ++i) {
    bodies.push_back(random_body(size, 100 + static_cast<unsigned>(i)));
    ins.push_back(temp_path("echo_" + std::to_string(i) + ".in"));
    outs.push_back(temp_path("echo_" + std::to_string(i) + ".out"));
    std::ofstream(ins.back(), std::ios::binary) << bodies.back();
  }
  std::vector<ProcessResult> results(static_cast<size_t>(count));
  std::vector<std::thread> curls;
  for (size_t i = 0; i < results.size(); ++i) {
    curls.emplace_back([&, i] {  // no assertions off the test's thread
      results[i] = run_process(
          curl_h2(false, {"--data-binary", "@" + ins[i], "-o", outs[i], server.url() + "echo"}, 30),
          60s);
    });
  }
  for (std::thread& t : curls) t.join();
  for (size_t i = 0; i < results.size(); ++i) {
    INFO("upload " << i << ": " << results[i].output);
    REQUIRE(results[i].exit_code == 0);
    std::ifstream got(outs[i], std::ios::binary);
    const std::string echoed((std::istreambuf_iterator<char>(got)), std::istreambuf_iterator<char>());
    CHECK(content_mismatch(echoed, bodies[i]) == "");
  }
}

// The thread ids of this process's SQPOLL threads (named "iou-sqp-<pid>").
// Found by name: fdinfo's SqThread is a pid of the kernel's first
// namespace, which a sandbox's /proc may not show.
std::vector<std::string> sqpoll_threads() {
  std::vector<std::string> tids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name.rfind("iou-sqp-", 0) == 0) {
      tids.push_back(entry.path().filename().string());
    }
  }
  return tids;
}

// Those of the server running: an SQPOLL thread of a ring already closed
// ends a moment later (the kernel frees rings asynchronously).
std::vector<std::string> server_sqpoll_threads(size_t count) {
  std::vector<std::string> tids;
  for (int i = 0; i < 300; ++i) {
    tids = sqpoll_threads();
    if (tids.size() == count) break;
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(tids.size() == count);
  return tids;
}

std::string task_file(const std::string& tid, const std::string& file) {
  std::ifstream in("/proc/self/task/" + tid + "/" + file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The scheduler state letter of a thread of this process ('R', 'S', …).
char thread_state(const std::string& tid) {
  const std::string stat = task_file(tid, "stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && stat.size() > paren + 2 ? stat[paren + 2] : '?';
}

std::string thread_status(const std::string& tid, const std::string& key) {
  std::istringstream in(task_file(tid, "status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return trim(line.substr(key.size() + 1));
  }
  return "";
}

std::vector<unsigned> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<unsigned> cpus;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

std::string create_error(const server::ServerOptions& o) {
  server::ServerOptions options = o;
  options.port = 0;
  auto created = server::create_server(options);
  if (created.server) {
    created.server->stop();
    created.server->wait();
  }
  return created.error;
}

}  // namespace

TEST_CASE("--uring-entries and --uring-buffers size each ring's SQ and CQ") {
  require_clients();
  auto o = uring_options(2);
  {
    TestServer server(o);
    h2load(server, 2000);
    for (const RingInfo& r : server_rings(2)) {
      CHECK(r.entries("SqMask") == 2048);  // the default
      CHECK(r.entries("CqMask") == 4096);  // twice the SQ, whatever the connection limit
    }
  }
  o.uring_entries = 256;
  o.uring_buffers = 8192;
  TestServer server(o);
  h2load(server, 2000);
  for (const RingInfo& r : server_rings(2)) {
    CHECK(r.entries("SqMask") == 256);
    // Each provided buffer can hold a completion: the CQ follows the pool.
    CHECK(r.entries("CqMask") >= 2 * 8192);
  }
}

TEST_CASE("--uring-buffers and --uring-buffer-size: one small buffer still carries a 1 MB /echo") {
  require_clients({"curl"});
  auto o = uring_options();
  o.uring_buffers = 1;
  o.uring_buffer_size = 512;
  TestServer server(o);
  const std::string body = random_body(1000000, 7);
  const std::string in = temp_path("uring_echo.in");
  const std::string out = temp_path("uring_echo.out");
  std::ofstream(in, std::ios::binary) << body;
  const auto r = run_process(
      curl_h2(false, {"--data-binary", "@" + in, "-o", out, server.url() + "echo"}, 30), 60s);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::ifstream got(out, std::ios::binary);
  const std::string echoed((std::istreambuf_iterator<char>(got)), std::istreambuf_iterator<char>());
  CHECK(content_mismatch(echoed, body) == "");
  const Totals t = totals(server.get());
  // No completion can deliver more than one 512-octet buffer…
  CHECK(t.reads >= t.bytes_in / 512);
  // … and the one buffer is out while the next data arrives.
  CHECK(t.buffer_exhaustion >= 1);
}

TEST_CASE("--uring-sqpoll-cpu binds each ring's SQPOLL thread to that CPU") {
  require_clients();
  const unsigned cpu = allowed_cpus().back();
  auto o = uring_options(2);
  o.uring_sqpoll = true;
  o.uring_sqpoll_cpu = cpu;
  TestServer server(o);
  h2load(server, 5000);
  for (const RingInfo& r : server_rings(2)) {
    CHECK(r.number("SqThread") > 0);
    CHECK(r.number("SqThreadCpu") == static_cast<long>(cpu));
  }
  const std::vector<std::string> threads = server_sqpoll_threads(2);
  for (const std::string& tid : threads) {
    // IORING_SETUP_SQ_AFF: the thread may run on that CPU only.
    CHECK(thread_status(tid, "Cpus_allowed_list") == std::to_string(cpu));
  }
}

TEST_CASE("--uring-sqpoll-idle: the SQPOLL thread polls that long after the last submission") {
  require_clients();
  auto sq_thread_state_after_idle = [](unsigned idle_ms) {
    auto o = uring_options();
    o.uring_sqpoll = true;
    o.uring_sqpoll_idle_ms = idle_ms;
    TestServer server(o);
    h2load(server, 2000);
    const std::vector<std::string> threads = server_sqpoll_threads(1);
    std::this_thread::sleep_for(400ms);  // nothing is submitted meanwhile
    return thread_state(threads.front());
  };
  // Still polling (running or runnable) 0.4 s into a 5 s idle time…
  CHECK(sq_thread_state_after_idle(5000) == 'R');
  // … asleep after 20 ms.
  CHECK(sq_thread_state_after_idle(20) == 'S');
}

TEST_CASE("--uring-flags: the setup flags asked for are the ones the ring has") {
  require_clients();
  // Only a ring's submitter may register with a SINGLE_ISSUER ring, and only
  // it may wait on a DEFER_TASKRUN ring: the kernel answers EEXIST to anyone
  // else — here, this test's thread. (COOP_TASKRUN changes when task work
  // runs, which no interface shows; "coop" is told from "auto" by the
  // absence of SINGLE_ISSUER|DEFER_TASKRUN, which auto picks on 6.1+.)
  struct Row {
    const char* flags;
    bool single_issuer;
    bool defer_taskrun;
  };
  const Row row = GENERATE(Row{"none", false, false}, Row{"coop", false, false},
                           Row{"single", true, false}, Row{"single,defer", true, true},
                           Row{"auto", true, true});
  INFO("--uring-flags " << row.flags);
  auto o = uring_options();
  o.uring_flags = *server::parse_uring_flags(row.flags);
  TestServer server(o);
  h2load(server, 2000);
  const RingInfo ring = server_rings(1).front();
  // IORING_REGISTER_PROBE only reads the ring; it wants zeroed memory.
  std::vector<uint8_t> probe(sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op), 0);
  const int registered = io_uring_register(static_cast<unsigned>(ring.fd), IORING_REGISTER_PROBE,
                                           probe.data(), 256);
  if (row.single_issuer) {
    CHECK(registered == -EEXIST);
  } else {
    CHECK(registered >= 0);
  }
  // min_complete 0: returns at once, whoever may wait.
  const int waited = io_uring_enter(static_cast<unsigned>(ring.fd), 0, 0, IORING_ENTER_GETEVENTS,
                                    nullptr);
  if (row.defer_taskrun) {
    CHECK(waited == -EEXIST);
  } else {
    CHECK(waited == 0);
  }
  h2load(server, 2000);  // and the server went on serving
}

TEST_CASE("--uring-fixed-files: a sparse table sized for the limit, each socket in a slot while it lives") {
  require_clients();
  auto o = uring_options();
  o.max_connections = 100;
  {
    TestServer server(o);  // off: no table
    h2load(server, 1000);
    CHECK(server_rings(1).front().number("UserFiles") == 0);
  }
  o.uring_fixed_files = true;
  TestServer server(o);
  h2load(server, 5000);
  const RingInfo idle = server_rings(1).front();
  CHECK(idle.number("UserFiles") == 100 + 256);  // --max-connections + the refusals in progress
  {
    RawClient client(server.port());
    client.send(preface() + settings());
    const ByteString answer = client.receive(proto::kFrameHeaderSize);  // the server's SETTINGS
    REQUIRE(answer.size() >= proto::kFrameHeaderSize);
    const RingInfo busy = server_rings(1).front();
    REQUIRE(busy.files.size() == 1);
    CHECK(busy.files[0].find("socket:[") != std::string::npos);
  }
  // Closed: its slot is emptied (else the table would keep the socket open).
  std::vector<std::string> left;
  for (int i = 0; i < 200; ++i) {
    left = server_rings(1).front().files;
    if (left.empty()) break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(left.empty());
  require_bytes_route(server, false, 200000);
}

TEST_CASE("--uring-registered-buffers: a registered staging area, sends from it are whole") {
  require_clients();
  const bool tls = GENERATE(false, true);
  INFO((tls ? "TLS" : "cleartext"));
  auto o = uring_options();
  o.tls = tls;
  {
    TestServer server(o);
    h2load(server, 1000);
    CHECK(server_rings(1).front().number("UserBufs") == 0);
  }
  o.uring_registered_buffers = true;
  TestServer server(o);
  h2load(server, 5000);
  require_bytes_route(server, tls, 200000);
  require_bytes_route(server, tls, 3000000);
  const RingInfo ring = server_rings(1).front();
  REQUIRE(ring.number("UserBufs") == 1);
  REQUIRE(ring.buffers.size() == 1);
  CHECK(ring.buffers[0].substr(ring.buffers[0].rfind('/') + 1) == std::to_string(32 * 32768));
  // Staged sends go out with SEND_ZC, counted as they are submitted.
  const Totals t = totals(server.get());
  INFO("events " << t.events << ", reads " << t.reads << ", writes " << t.writes
                 << ", zero-copy " << t.zero_copy_sends);
  CHECK(t.zero_copy_sends >= 100);
}

TEST_CASE("--uring-send-zc: responses above the threshold go zero-copy and arrive intact") {
  require_clients();
  const bool tls = GENERATE(false, true);
  INFO((tls ? "TLS" : "cleartext"));
  auto run = [tls](size_t threshold) {
    auto o = uring_options();
    o.tls = tls;
    o.uring_send_zc_threshold = threshold;
    TestServer server(o);
    h2load(server, 2000);  // small responses: below any threshold here
    require_bytes_route(server, tls, 200000);
    require_bytes_route(server, tls, 3000000);
    return totals(server.get());
  };
  const Totals copied = run(0);
  const Totals zero_copy = run(16384);
  INFO("copied: writes " << copied.writes << ", zero-copy " << copied.zero_copy_sends);
  INFO("zero-copy: writes " << zero_copy.writes << ", zero-copy " << zero_copy.zero_copy_sends
                            << ", unexplained completions " << unexplained_completions(zero_copy));
  // No zero-copy send (and no notification) without the threshold…
  CHECK(copied.zero_copy_sends == 0);
  CHECK(unexplained_completions(copied) <= 0);
  // … with it, the large responses go zero-copy while the 2000 small
  // responses below it do not.
  CHECK(zero_copy.zero_copy_sends >= 3);  // 3.2 MB in sends of at most 64 × 16 KiB (+ records)
  CHECK(zero_copy.zero_copy_sends < 200);
  CHECK(unexplained_completions(zero_copy) >= 1);  // their notifications
}

TEST_CASE("--uring-napi registers NAPI busy polling with each ring") {
  require_clients();
  auto o = uring_options(2);
  {
    TestServer server(o);
    h2load(server, 1000);
    CHECK(server_rings(2).front().fields.at("NAPI") == "disabled");
  }
  o.uring_napi_busy_poll_us = 50;
  TestServer server(o);
  h2load(server, 2000);
  for (const RingInfo& r : server_rings(2)) {
    CHECK(r.fields.at("NAPI") == "enabled");
    CHECK(r.number("napi_busy_poll_dt") == 50 * 1000);  // ns
  }
}

TEST_CASE("--uring-recv-bundle: one completion fills several buffers, uploads come back intact") {
  require_clients({"curl", "h2load"});
  auto run = [](bool bundle) {
    auto o = uring_options();
    o.uring_buffer_size = 512;  // a 1 MB upload fills about 2000 of them
    o.uring_recv_bundle = bundle;
    TestServer server(o);
    require_parallel_echoes(server, 3, 1000000);
    h2load(server, 2000);
    return totals(server.get());
  };
  const Totals single = run(false);
  const Totals bundled = run(true);
  INFO("without bundles: " << single.reads << " reads of " << single.bytes_in
                           << " octets; with: " << bundled.reads << " reads, "
                           << bundled.bundled_reads << " of them bundles");
  CHECK(single.bundled_reads == 0);
  CHECK(single.reads >= single.bytes_in / 512);  // one buffer a completion
  CHECK(bundled.bundled_reads >= 1);
  CHECK(bundled.reads < single.reads);  // the same octets in fewer completions
}

TEST_CASE("--uring-send-bundle: responses leave in bundle sends, every octet in order") {
  require_clients();
  const bool tls = GENERATE(false, true);
  INFO((tls ? "TLS" : "cleartext"));
  auto run = [tls](bool bundle) {
    auto o = uring_options();
    o.tls = tls;
    o.uring_send_bundle = bundle;
    if (!tls) o.send_buffer = 8192;
    TestServer server(o);
    h2load(server, 2000);
    require_bytes_route(server, tls, 200000);
    require_bytes_route(server, tls, 3000000);
    if (!tls) {
      // Clients that reset mid-response, the windows open and the server's
      // socket buffer small: sends in flight fail, their groups go to the
      // next connections — which must get none of their entries.
      for (int i = 0; i < 10; ++i) {
        RawClient client(server.port());
        client.send(preface() + settings({{0x4, 0x7fffffff}}) +  // SETTINGS_INITIAL_WINDOW_SIZE
                    frame(proto::FrameType::kWindowUpdate, 0, 0, u32(0x7fffffff - 65535)) +
                    get_request(1, "/bytes/5000000"));
        REQUIRE(client.receive(200000).size() >= 200000);
        client.close();  // unread data: a reset
      }
      require_bytes_route(server, tls, 3000000);
      require_parallel_echoes(server, 3, 300000);
    }
    return totals(server.get());
  };
  const Totals plain = run(false);
  const Totals bundled = run(true);
  INFO("bundles: " << bundled.writes << " writes, " << bundled.bundled_sends
                   << " took more than one buffer");
  CHECK(plain.bundled_sends == 0);
  // In cleartext a DATA frame is two pieces (its header, then the body's
  // octets): the large responses go out in sends of many. With TLS records
  // are sealed into runs of contiguous ciphertext, so fewer sends have
  // more than one piece.
  CHECK(bundled.bundled_sends >= (tls ? 1 : 10));
  CHECK(bundled.zero_copy_sends == 0);
}

TEST_CASE("--uring-incremental-buffers: a recv takes what it fills, the rest serves the next") {
  require_clients({"curl", "h2load"});
  const bool bundle = GENERATE(false, true);
  INFO((bundle ? "with recv bundles" : "without recv bundles"));
  auto run = [bundle](bool incremental) {
    auto o = uring_options();
    // Few buffers: without incremental consumption each small read would
    // take a whole one.
    o.uring_buffers = bundle ? 16 : 4;
    o.uring_buffer_size = bundle ? 4096 : 65536;
    o.uring_recv_bundle = bundle;
    o.uring_incremental_buffers = incremental;
    TestServer server(o);
    h2load(server, 4000, 4, 10);
    require_parallel_echoes(server, 3, 1000000);
    return totals(server.get());
  };
  const Totals whole = run(false);
  const Totals incremental = run(true);
  INFO("incremental: " << incremental.reads << " reads, " << incremental.buffers_kept
                       << " left the rest of their buffer, " << incremental.bundled_reads
                       << " bundles");
  CHECK(whole.buffers_kept == 0);
  // h2load's requests come a few hundred octets a read: those leave most
  // of their buffer to the next.
  CHECK(incremental.buffers_kept >= 100);
  if (bundle) CHECK(incremental.bundled_reads >= 1);
}

TEST_CASE("--uring-no-sqarray: rings without an SQ array serve every octet") {
  require_clients();
  auto o = uring_options(2);
  o.uring_no_sqarray = true;
  TestServer server(o);
  h2load(server, 5000, 4, 10);
  require_bytes_route(server, false, 3000000);
  require_parallel_echoes(server, 2, 500000);
  // The server starts only if the kernel reported no SQ array offset (it
  // refuses otherwise); an SQE taken by a stale index would have broken
  // these requests. Every submission was consumed.
  for (const RingInfo& r : server_rings(2)) CHECK(r.number("SqHead") == r.number("SqTail"));
}

TEST_CASE("--uring-register-ring-fd: each proactor enters its ring by the registered index, or by fd") {
  require_clients();
  const bool registered = GENERATE(true, false);
  auto o = uring_options(2);
  o.uring_register_ring_fd = registered;
  std::string log;
  {
    StderrCapture capture;
    {
      TestServer server(o);
      h2load(server, 3000);
    }
    log = capture.text();
  }
  INFO(log);
  CHECK(log.find(registered ? ", registered ring fd" : ", ring entered by its fd") !=
        std::string::npos);
  // The kernel answered each registration with the ring's index (a
  // refusal is logged); a proactor entering with an index it did not get
  // would have failed its first io_uring_enter (EBADF) and served nothing.
  CHECK(log.find("IORING_REGISTER_RING_FDS") == std::string::npos);
}

TEST_CASE("the proactor counts reads, writes, syscalls, waits and completions") {
  require_clients();
  const bool sqpoll = GENERATE(false, true);
  INFO((sqpoll ? "SQPOLL" : "no SQPOLL"));
  auto o = uring_options();
  o.uring_sqpoll = sqpoll;
  TestServer server(o);
  h2load(server, 2000, 1, 1);  // one request at a time
  const Totals t = totals(server.get());
  CHECK(t.requests >= 2000);
  CHECK(t.reads >= 1);
  CHECK(t.writes >= 1);
  CHECK(t.waits >= 1);
  CHECK(t.syscalls > 0);
  CHECK(t.syscalls >= t.waits);  // a wait is an io_uring_enter
  CHECK(t.events >= t.requests);  // a request's read and its response's send
  CHECK(t.events >= t.reads + t.writes);
  CHECK(t.buffer_exhaustion == 0);
}

TEST_CASE("--tcp-quickack: one setsockopt counted per read that brought data") {
  require_clients();
  auto extra_syscalls = [](bool quickack) {
    auto o = uring_options();
    o.tcp_quickack = quickack;
    TestServer server(o);
    h2load(server, 300, 1, 1);  // one request at a time: one read each
    const Totals t = totals(server.get());
    return std::pair{t.syscalls - t.waits, t.reads};
  };
  const auto [without, reads_without] = extra_syscalls(false);
  const auto [with, reads_with] = extra_syscalls(true);
  INFO("without: " << without << " beyond the waits; with: " << with << ", " << reads_with << " reads");
  REQUIRE(reads_with >= 300);
  CHECK(without < 50);  // accept-side and close-side calls, entering to submit only
  CHECK(with - without >= reads_with - 20);  // every read but the EOF's, give or take the base
}

TEST_CASE("create_server refuses what the kernel or the options refuse, naming the flag") {
  auto o = uring_options();
  SECTION("SQPOLL with DEFER_TASKRUN (the options refuse it)") {
    o.uring_sqpoll = true;
    o.uring_flags = server::uring_flag::kSingleIssuer | server::uring_flag::kDeferTaskrun;
    const std::string error = create_error(o);
    CHECK_THAT(error, Catch::Contains("--uring-flags"));
  }
  SECTION("an SQPOLL CPU the kernel cannot bind to") {
    o.uring_sqpoll = true;
    o.uring_sqpoll_cpu = 1000;
    const std::string error = create_error(o);
    CHECK_THAT(error, Catch::Contains("--uring-sqpoll-cpu 1000"));
    CHECK_THAT(error, Catch::Contains("Invalid argument"));
  }
  SECTION("a fixed-file table larger than RLIMIT_NOFILE") {
    // In a child: the hard limit is lowered (liburing raises the soft one
    // up to it for the table), and could not be raised again in a sandbox.
    o.uring_fixed_files = true;
    o.max_connections = 5000;
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      const rlimit lowered{1024, 1024};
      std::string error = ::setrlimit(RLIMIT_NOFILE, &lowered) == 0 ? create_error(o) : "setrlimit";
      [[maybe_unused]] const ssize_t n = ::write(out[1], error.data(), error.size());
      ::_exit(0);
    }
    ::close(out[1]);
    std::string error;
    char buf[512];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) error.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK_THAT(error, Catch::Contains("--uring-fixed-files"));
    CHECK_THAT(error, Catch::Contains("Too many open files"));
  }
  SECTION("send bundles with another way of sending (the options refuse it)") {
    o.uring_send_bundle = true;
    o.uring_registered_buffers = true;
    const std::string error = create_error(o);
    CHECK(error == "--uring-send-bundle, --uring-registered-buffers and --uring-send-zc are "
                   "three ways of sending: choose one");
  }
  SECTION("receive buffers beyond the memory there is") {
    o.threads = 64;
    o.uring_buffers = 32768;
    o.uring_buffer_size = 1024 * 1024;  // 32 GiB a ring
    const std::string error = create_error(o);
    CHECK_THAT(error, Catch::Contains("--uring-buffers"));
  }
  // Nothing was left behind by the trials.
  CHECK(rings().empty());
}
