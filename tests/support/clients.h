// What the integration suites share for talking to a running server: the
// check that Debian's clients are installed, h2load's verdict, and a raw
// TCP client for scripted conversations. Catch2 assertions: call from tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "tests/support/frame_builder.h"
#include "tests/support/process.h"

namespace h2lab::testing {

// REQUIREs each program in PATH, naming ./setup when one is missing.
void require_clients(std::initializer_list<const char*> programs = {"curl", "nghttp", "h2load"});

// h2load's summary: "requests: N total, N started, N done, N succeeded,
// N failed, N errored, N timeout" and "status codes: N 2xx, N 3xx, ...".
struct H2loadCounts {
  long total = 0, started = 0, done = 0, succeeded = 0, failed = 0, errored = 0, timeout = 0;
  long non_2xx = 0;
};
H2loadCounts h2load_counts(const ProcessResult& r);

// h2load exited 0 and every one of `expected` requests succeeded.
void require_all_succeeded(const ProcessResult& r, long expected);

// A plain TCP client to 127.0.0.1:port that sends exactly the bytes a test
// wants and reads with a deadline. Closes its socket when destroyed.
class RawClient {
 public:
  explicit RawClient(uint16_t port);
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void send(const ByteString& bytes);
  // What arrives within `timeout`, until `n` octets or EOF.
  ByteString receive(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(3));
  // True if the server closed the connection within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout);
  void close();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool eof_ = false;
};

// curl speaking HTTP/2 to a test server — h2 over TLS taking any
// certificate, or h2c with prior knowledge — then `args`, bounded by
// --max-time.
std::vector<std::string> curl_h2(bool tls, std::vector<std::string> args, int max_time_s = 10);

// A counter of the server's stats JSON (Server::stats_json() or GET
// /stats, docs/STATS.md): from "totals", or from one serving thread's entry
// (`thread` = "epoll-1"); -1 when absent. Names inside nested objects work
// too ("PROTOCOL_ERROR" of "goaways", "count" of "latency").
long long stats_counter(const std::string& stats_json, const std::string& counter,
                        const std::string& thread = "");

}  // namespace h2lab::testing
