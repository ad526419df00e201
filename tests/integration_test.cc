// A server started through create_server() on port 0 with the default
// dispatcher, driven over loopback by real clients from Debian (curl, h2load)
// and by raw sockets: what the engines and create_server do. What every
// dispatcher must do (curl, nghttp, h2load, /bytes, /echo, backpressure,
// limits, stop) is tests/dispatch_test.cc, run once per dispatcher.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "proto/frame.h"
#include "tests/support/clients.h"
#include "tests/support/content.h"
#include "tests/support/frame_builder.h"
#include "tests/support/process.h"
#include "tests/support/server_fixture.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;
using h2lab::proto::Bytes;

namespace {
// These tests speak cleartext h2c; TLS (the default) has tls_integration_test.
server::ServerOptions cleartext() {
  server::ServerOptions o;
  o.tls = false;
  return o;
}

// Every client test runs against both engines.
server::ServerOptions with_engine() {
  server::ServerOptions o = cleartext();
  o.engine = GENERATE(server::EngineKind::kFull, server::EngineKind::kMini);
  return o;
}
}  // namespace

TEST_CASE("h2load -n 10000 -c 1 -m 10: every request succeeds") {
  require_clients();
  TestServer server(with_engine());
  require_all_succeeded(run_process({"h2load", "-n", "10000", "-c", "1", "-m", "10", server.url()}, 60s), 10000);
}

TEST_CASE("a wrong preface is closed and the next client is served") {
  require_clients();
  TestServer server(cleartext());
  {
    RawClient c(server.port());
    c.send(bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    CHECK(c.closed_within(3s));
  }
  const auto r = run_process({"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", server.url()});
  CHECK(r.output == "Hello World\n");
}

TEST_CASE("an oversized frame is closed at its header") {
  TestServer server(with_engine());
  RawClient c(server.port());
  c.send(preface() + settings() + frame(0x0, 0, 1, {}, 1 << 20));
  CHECK(c.closed_within(3s));
}

TEST_CASE("an idle client is closed after the idle timeout") {
  require_clients();
  server::ServerOptions o = cleartext();
  o.idle_timeout = 300ms;
  o.preface_timeout = 300ms;  // silent before the preface: its deadline, not idle's
  TestServer server(o);
  RawClient c(server.port());
  const auto start = std::chrono::steady_clock::now();
  CHECK(c.closed_within(5s));
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
  const auto r = run_process({"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", server.url()});
  CHECK(r.output == "Hello World\n");
}

namespace {
// Reads frames until a GOAWAY arrives; returns its payload (last stream id,
// code), or an empty string when none came.
ByteString read_until_goaway(RawClient& c) {
  ByteString in;
  size_t pos = 0;
  while (true) {
    proto::FrameHeader h;
    while (!proto::decode_frame_header(Bytes(in).subspan(pos), h) ||
           in.size() - pos < proto::kFrameHeaderSize + h.length) {
      const ByteString more = c.receive(1);
      if (more.empty()) return {};
      in.insert(in.end(), more.begin(), more.end());
    }
    const size_t start = pos + proto::kFrameHeaderSize;
    pos = start + h.length;
    if (h.is(proto::FrameType::kGoaway)) return ByteString(in.begin() + start, in.begin() + start + 8);
  }
}
}  // namespace

TEST_CASE("graceful stop: GOAWAY with the last stream id, then close") {
  const auto engine = GENERATE(server::EngineKind::kFull, server::EngineKind::kMini);
  INFO("engine " << server::engine_name(engine));
  server::ServerOptions o = cleartext();
  o.port = 0;
  o.engine = engine;
  auto created = server::create_server(o);
  REQUIRE(created.server);
  auto& srv = *created.server;
  const uint16_t port = static_cast<uint16_t>(std::stoi(srv.url().substr(srv.url().rfind(':') + 1)));
  RawClient c(port);
  c.send(preface() + settings() + get_request(1) + get_request(3));
  c.receive(40, 300ms);  // the responses
  const auto start = std::chrono::steady_clock::now();
  srv.stop();
  CHECK(read_until_goaway(c) == u32(3) + u32(0));  // last stream 3, NO_ERROR
  CHECK(c.closed_within(3s));
  srv.wait();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("create_server reports a port that is taken") {
  TestServer first(cleartext());
  server::ServerOptions o = cleartext();
  o.port = first.port();
  auto second = server::create_server(o);
  CHECK_FALSE(second.server);
  CHECK(second.error.find("cannot listen on 127.0.0.1 port " + std::to_string(first.port())) != std::string::npos);
  CHECK(second.error.find("Address already in use") != std::string::npos);
}

TEST_CASE("IPv6 loopback") {
  require_clients();
  server::ServerOptions o = cleartext();
  o.host = "::1";
  TestServer server(o);
  CHECK(server.url().rfind("http://[::1]:", 0) == 0);
  const auto r = run_process({"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", server.url()});
  CHECK(r.output == "Hello World\n");
}

// The full engine's routes through real clients.

TEST_CASE("full: status codes and headers of the routes") {
  require_clients();
  TestServer server(cleartext());
  auto head = [&](const std::string& path, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", "-o", "/dev/null",
                                     "-D", "-", server.url() + path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv).output;
  };
  CHECK(head("").find("HTTP/2 200") == 0);
  CHECK(head("").find("content-type: text/plain") != std::string::npos);
  CHECK(head("").find("content-length: 12") != std::string::npos);
  CHECK(head("bytes/5").find("content-length: 5") != std::string::npos);
  // The body itself, across a few periods of the 37-octet pattern.
  const auto body = run_process({"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                                 server.url() + "bytes/100"});
  CHECK(content_mismatch(body.output, expected_bytes(100)) == "");
  CHECK(head("bytes/x").find("HTTP/2 400") == 0);
  CHECK(head("nowhere").find("HTTP/2 404") == 0);
  CHECK(head("", {"-X", "POST"}).find("HTTP/2 405") == 0);
  CHECK(head("stats").find("content-type: application/json") != std::string::npos);
}

TEST_CASE("full: an HTTP/1.1 client is told to use HTTP/2") {
  require_clients();
  TestServer server(cleartext());
  const auto r = run_process({"curl", "-sS", "--max-time", "10", "-i", server.url()});
  INFO(r.output);
  CHECK(r.output.find("HTTP/1.1 505") == 0);
  CHECK(r.output.find("curl --http2-prior-knowledge") != std::string::npos);
}

TEST_CASE("full: h2load -n 100000 -c 10 -m 100, every request succeeds") {
  require_clients();
  TestServer server(cleartext());
  require_all_succeeded(run_process({"h2load", "-n", "100000", "-c", "10", "-m", "100", server.url()}, 120s), 100000);
}
