// h2 over TLS end to end: create_server() with TLS on port 0 (blocking
// dispatcher, mini engine) against real clients over loopback — curl, nghttp,
// h2load, openssl s_client and a python3 ssl + h2 script — and the errors a
// user can meet, each followed by a client that is still served.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/server.h"
#include "tests/support/clients.h"
#include "tests/support/process.h"
#include "tests/support/server_fixture.h"
#include "tests/tls_test_client.h"
#include "tls/context.h"

using namespace h2lab;
using namespace h2lab::testing;
using namespace std::chrono_literals;

namespace {

server::ServerOptions tls_options() {
  server::ServerOptions o;
  o.dispatch = server::Dispatch::kBlocking;
  o.engine = server::EngineKind::kMini;
  o.tls = true;
  return o;
}

std::string temp_dir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

// The TLS tests also drive openssl s_client.
void require_tls_clients() { require_clients({"curl", "nghttp", "h2load", "openssl"}); }

// curl -k --http2 URL: the body, then "|http_version http_code".
ProcessResult curl(const std::string& url, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"curl",       "-sS", "-k", "--http2",
                                   "--max-time", "10",  "-w", "|%{http_version} %{http_code}"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return run_process(argv);
}

void require_served(const TestServer& server) {
  const auto r = curl(server.url());
  INFO(r.output);
  REQUIRE(r.output == "Hello World\n|2 200");
}


// What the server logs (stderr, fd 2) while it lives, for checking that a
// user-visible error got a clear line.
class StderrCapture {
 public:
  StderrCapture() {
    static int n = 0;
    path_ = temp_dir() + "/tls_stderr_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    std::fputs(text().c_str(), stderr);  // keep it in the test log
  }
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // True once `line` appears (log lines come when a connection closes).
  bool wait_for(const std::string& line, std::chrono::milliseconds timeout = 5s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (text().find(line) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

// An OpenSSL client whose ciphertext the test moves itself over a
// RawClient, so that it can stop anywhere — inside a record, say.
class ByteExactTlsClient {
 public:
  explicit ByteExactTlsClient(uint16_t port) : raw_(port) {}
  bool handshake() {
    for (int i = 0; i < 20; ++i) {
      const int r = SSL_do_handshake(tls_.ssl());
      raw_.send(tls_.output());
      if (r == 1) return true;
      if (SSL_get_error(tls_.ssl(), r) != SSL_ERROR_WANT_READ) return false;
      const ByteString in = raw_.receive(1, 3s);
      if (in.empty()) return false;
      tls_.input(in);
    }
    return false;
  }
  // `plaintext` as one record, not sent.
  ByteString encrypt(const std::string& plaintext) {
    tls_.write(ByteString(plaintext.begin(), plaintext.end()));
    return tls_.output();
  }
  RawClient& raw() { return raw_; }

 private:
  RawClient raw_;
  MemoryTlsClient tls_;
};

// The runfiles path of a data file of this package.
std::string runfile(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/h2lab/tests/" + name;
}

}  // namespace

TEST_CASE("tls: curl --http2 -k gets Hello World over h2, TLS 1.3 and 1.2") {
  require_tls_clients();
  TestServer server(tls_options());
  REQUIRE(server.url().rfind("https://127.0.0.1:", 0) == 0);
  for (const char* version : {"--tlsv1.3", "--tls-max"}) {
    std::vector<std::string> extra = {version};
    if (std::string(version) == "--tls-max") extra.push_back("1.2");
    const auto r = curl(server.url(), extra);
    INFO(version << ": " << r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output == "Hello World\n|2 200");
  }
}

TEST_CASE("tls: nghttp -v over https negotiates h2") {
  require_tls_clients();
  TestServer server(tls_options());
  const auto r = run_process({"nghttp", "-v", "-t", "10", server.url()});
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("The negotiated protocol: h2") != std::string::npos);
  CHECK(r.output.find("recv SETTINGS frame") != std::string::npos);
  CHECK(r.output.find(":status: 200") != std::string::npos);
  CHECK(r.output.find("Hello World") != std::string::npos);
}

TEST_CASE("tls: h2load -n 10000 -c 1 -m 10: every request succeeds") {
  require_tls_clients();
  TestServer server(tls_options());
  const auto r = run_process({"h2load", "-n", "10000", "-c", "1", "-m", "10", server.url()}, 60s);
  require_all_succeeded(r, 10000);
  CHECK(r.output.find("Application protocol: h2") != std::string::npos);
}

TEST_CASE("tls: h2load with 10 clients is served in turn by the blocking dispatcher") {
  require_tls_clients();
  TestServer server(tls_options());
  require_all_succeeded(
      run_process({"h2load", "-n", "20000", "-c", "10", "-m", "100", server.url()}, 90s), 20000);
}

TEST_CASE("tls: openssl s_client -alpn h2 sees ALPN protocol: h2") {
  require_tls_clients();
  TestServer server(tls_options());
  const auto r = run_process({"openssl", "s_client", "-alpn", "h2", "-servername", "localhost",
                              "-connect", "127.0.0.1:" + std::to_string(server.port())},
                             20s);
  INFO(r.output);
  CHECK(r.output.find("ALPN protocol: h2") != std::string::npos);
  CHECK(r.output.find("CN = localhost") != std::string::npos);
}

TEST_CASE("tls: a python3 ssl + h2 client gets the body and closes with close_notify") {
  REQUIRE(::access("/usr/bin/python3", X_OK) == 0);
  TestServer server(tls_options());
  const auto r = run_process({"/usr/bin/python3", runfile("tls_h2_client.py"), server.url()}, 30s);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("alpn h2\n") != std::string::npos);
  CHECK(r.output.find("status 200\n") != std::string::npos);
  CHECK(r.output.find("body 'Hello World\\n'\n") != std::string::npos);
  CHECK(r.output.find("closed close_notify\n") != std::string::npos);
}

TEST_CASE("tls: a client without h2 in ALPN is refused with a line naming its list") {
  require_tls_clients();
  StderrCapture log;
  TestServer server(tls_options());
  const auto r = run_process({"curl", "-sS", "-k", "--http1.1", "--max-time", "10", server.url()});
  CHECK(r.exit_code != 0);
  CHECK(
      log.wait_for("client offered ALPN [http/1.1], not h2 (sent alert 'no application "
                   "protocol')"));
  require_served(server);
}

TEST_CASE("tls: the errors a user can meet get a clear line, and the server keeps serving") {
  require_tls_clients();
  StderrCapture log;
  server::ServerOptions o = tls_options();
  o.handshake_timeout = 400ms;
  TestServer server(o);
  const std::string plain_url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";

  SECTION("plain HTTP/1 on the TLS port gets a cleartext 400 that says why") {
    const auto r =
        run_process({"curl", "-sS", "--max-time", "10", "-w", "|%{http_code}", plain_url});
    INFO(r.output);
    CHECK(r.output.find("This port speaks HTTP/2 over TLS: use https://") != std::string::npos);
    CHECK(r.output.find("|400") != std::string::npos);
    CHECK(log.wait_for("not TLS: a plain HTTP/1 request (\"GET / HTTP/1.1\") on the TLS port"));
  }
  SECTION("cleartext h2 (prior knowledge) on the TLS port") {
    const auto r =
        run_process({"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", plain_url});
    CHECK(r.exit_code != 0);
    CHECK(log.wait_for("not TLS: a cleartext HTTP/2 preface (h2c) on the TLS port"));
  }
  SECTION("garbage instead of a ClientHello") {
    RawClient c(server.port());
    c.send(ByteString{0x00, 0x01, 0x02, 0x03, 0xff, 0xfe});
    CHECK(c.closed_within(3s));
    CHECK(log.wait_for("not TLS: garbage instead of a ClientHello (first octet 0x00"));
  }
  SECTION("garbage behind a handshake record header") {
    RawClient c(server.port());
    ByteString junk = {0x16, 0x03, 0x01, 0x00, 0x20};
    junk.resize(5 + 0x20, 0xee);
    c.send(junk);
    CHECK(c.closed_within(3s));
    CHECK(log.wait_for("closing connection: TLS handshake failed: "));
  }
  SECTION("a handshake that never finishes is closed after the handshake timeout") {
    RawClient c(server.port());
    c.send(ByteString{0x16, 0x03, 0x01});  // a record header begun, then silence
    const auto start = std::chrono::steady_clock::now();
    CHECK(c.closed_within(5s));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 300ms);
    CHECK(took < 2s);
    CHECK(log.wait_for("TLS handshake timeout"));
  }
  SECTION("a client that connects and sends nothing is closed the same way") {
    RawClient c(server.port());
    CHECK(c.closed_within(5s));
    CHECK(log.wait_for("TLS handshake timeout"));
  }
  SECTION("a client that vanishes mid-record") {
    const bool reset = GENERATE(false, true);
    INFO((reset ? "RST" : "FIN"));
    ByteExactTlsClient c(server.port());
    REQUIRE(c.handshake());
    const ByteString record = c.encrypt("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    c.raw().send(ByteString(record.begin(), record.begin() + 10));
    // Let the server read them: a RST can discard data still queued for it.
    std::this_thread::sleep_for(100ms);
    if (reset) {
      const linger abort{1, 0};  // close(2) sends RST
      ::setsockopt(c.raw().fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    } else {
      c.raw().receive(SIZE_MAX, 200ms);  // the tickets: unread input would make close(2) a RST
    }
    c.raw().close();
    CHECK(log.wait_for("the peer vanished mid-record (10 of " + std::to_string(record.size()) +
                       " octets of a record received)"));
  }
  SECTION("a client that rejects our certificate") {
    const auto r = run_process({"curl", "-sS", "--http2", "--max-time", "10", server.url()});
    CHECK(r.exit_code == 60);  // curl: peer certificate cannot be authenticated
    CHECK(
        log.wait_for("the peer sent alert 'unknown CA' during the handshake: it does not accept "
                     "our certificate"));
  }
  require_served(server);
}

TEST_CASE("tls: --cert/--key from openssl req, and the mismatched-key error") {
  require_tls_clients();
  const std::string dir = temp_dir();
  const std::string cert = dir + "/req_cert.pem", key = dir + "/req_key.pem";
  const std::string other_key = dir + "/req_other_key.pem";
  const auto req = run_process({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                                "-days", "1", "-subj", "/CN=localhost", "-addext",
                                "subjectAltName=DNS:localhost,IP:127.0.0.1"});
  INFO(req.output);
  REQUIRE(req.exit_code == 0);
  REQUIRE(run_process({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                       "ec_paramgen_curve:P-256", "-out", other_key})
              .exit_code == 0);

  server::ServerOptions o = tls_options();
  o.cert_file = cert;
  o.key_file = key;
  {
    TestServer server(o);
    // Verified for real against the certificate as the trust anchor.
    const auto r = run_process({"curl", "-sS", "--http2", "--cacert", cert, "--max-time", "10",
                                "-w", "|%{http_version}", server.url()});
    INFO(r.output);
    CHECK(r.output == "Hello World\n|2");
  }
  o.key_file = other_key;
  o.port = 0;
  const auto mismatched = server::create_server(o);
  CHECK_FALSE(mismatched.server);
  CHECK(mismatched.error ==
        "key file '" + other_key + "' does not match the certificate in '" + cert + "'");
  o.cert_file = dir + "/absent.pem";
  CHECK_THAT(server::create_server(o).error,
             Catch::Contains("cannot read certificate file '" + dir +
                             "/absent.pem': No such file or directory"));
}

TEST_CASE("tls: the SNI hook picks the certificate by name") {
  require_tls_clients();
  tls::ContextOptions b_options;
  b_options.self_signed_names = {"b.example"};
  const auto b = tls::Context::create(b_options).context;
  REQUIRE(b);
  server::ServerOptions o = tls_options();
  o.on_server_name = [b](std::string_view name) -> std::shared_ptr<tls::Context> {
    return name == "b.example" ? b : nullptr;
  };
  TestServer server(o);
  const std::string connect = "127.0.0.1:" + std::to_string(server.port());
  for (const auto& [name, subject] : std::vector<std::pair<std::string, std::string>>{
           {"b.example", "CN = b.example"}, {"localhost", "CN = localhost"}}) {
    const auto r = run_process(
        {"openssl", "s_client", "-alpn", "h2", "-servername", name, "-connect", connect}, 20s);
    INFO(r.output);
    CHECK(r.output.find("subject=O = h2lab ephemeral, " + subject) != std::string::npos);
    CHECK(r.output.find("ALPN protocol: h2") != std::string::npos);
  }
  require_served(server);
}

TEST_CASE("tls: --tls off still serves cleartext h2c") {
  require_tls_clients();
  server::ServerOptions o = tls_options();
  o.tls = false;
  TestServer server(o);
  REQUIRE(server.url().rfind("http://127.0.0.1:", 0) == 0);
  const auto r =
      run_process({"curl", "-sS", "--http2-prior-knowledge", "--max-time", "10", server.url()});
  CHECK(r.output == "Hello World\n");
}
