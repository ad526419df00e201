#include "tests/support/clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <regex>
#include <string>

namespace h2lab::testing {

void require_clients(std::initializer_list<const char*> programs) {
  for (const char* p : programs) {
    INFO(p << " is missing: run ./setup");
    REQUIRE(have_program(p));
  }
}

H2loadCounts h2load_counts(const ProcessResult& r) {
  INFO(r.output);
  std::smatch m;
  REQUIRE(std::regex_search(
      r.output, m,
      std::regex(R"(requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout)")));
  H2loadCounts c{std::stol(m[1]), std::stol(m[2]), std::stol(m[3]), std::stol(m[4]),
                 std::stol(m[5]), std::stol(m[6]), std::stol(m[7])};
  REQUIRE(std::regex_search(r.output, m,
                            std::regex(R"(status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx)")));
  c.non_2xx = std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]);
  return c;
}

void require_all_succeeded(const ProcessResult& r, long expected) {
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const H2loadCounts c = h2load_counts(r);
  CHECK(c.total == expected);
  CHECK(c.succeeded == expected);
  CHECK(c.failed == 0);
  CHECK(c.errored == 0);
}

RawClient::RawClient(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
}

void RawClient::send(const ByteString& bytes) {
  REQUIRE(::write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

ByteString RawClient::receive(size_t n, std::chrono::milliseconds timeout) {
  ByteString out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    uint8_t buf[16384];
    const ssize_t got = ::read(fd_, buf, sizeof buf);
    if (got <= 0) {
      eof_ = true;
      break;
    }
    out.insert(out.end(), buf, buf + got);
  }
  return out;
}

bool RawClient::closed_within(std::chrono::milliseconds timeout) {
  receive(SIZE_MAX, timeout);
  return eof_;
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<std::string> curl_h2(bool tls, std::vector<std::string> args, int max_time_s) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", std::to_string(max_time_s)};
  if (tls) {
    argv.insert(argv.end(), {"-k", "--http2"});
  } else {
    argv.push_back("--http2-prior-knowledge");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

long long stats_counter(const std::string& stats_json, const std::string& counter,
                        const std::string& thread) {
  // The object to look in: "totals" up to the thread list, or one thread's
  // entry up to the next.
  const std::string start = thread.empty() ? "\"totals\": {" : "{\"name\": \"" + thread + "\"";
  const size_t from = stats_json.find(start);
  if (from == std::string::npos) return -1;
  const size_t to = stats_json.find(thread.empty() ? "\"threads\": [" : "{\"name\": ", from + 1);
  const std::string key = "\"" + counter + "\": ";
  const size_t at = stats_json.find(key, from);
  if (at == std::string::npos || at > to) return -1;
  return std::stoll(stats_json.substr(at + key.size()));
}

}  // namespace h2lab::testing
