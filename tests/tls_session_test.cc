// tls::Context and tls::Session against an in-process OpenSSL client: memory
// BIOs on the client side, tls::Session's own BIO on the server side, bytes
// moved by the test — no sockets. Handshakes with every split of the
// client's flights, data both ways, coalescing into full records, a 1 MB
// response, close_notify both ways, truncation, ALPN refusals, garbage,
// resumption, SNI, certificates and their errors.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/uio.h>

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tests/tls_test_client.h"
#include "tls/context.h"
#include "tls/session.h"

// Options are written as designated initializers naming only what a test
// changes; the rest keep their defaults on purpose.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace h2lab;

namespace {

using ByteString = std::vector<uint8_t>;

ByteString bytes(std::string_view s) {
  return ByteString(s.begin(), s.end());
}

ByteString operator+(ByteString a, const ByteString& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::shared_ptr<tls::Context> make_context(tls::ContextOptions o = {}) {
  auto r = tls::Context::create(o);
  INFO(r.error);
  REQUIRE(r.context);
  return r.context;
}

// One ephemeral context for the tests that do not care which.
std::shared_ptr<tls::Context> shared_context() {
  static const std::shared_ptr<tls::Context> c = make_context();
  return c;
}

// The record layer every session of this run uses after a TLS 1.3
// handshake (--tls-records: the suite runs once with each).
tls::RecordLayer g_records = tls::RecordLayer::kH2lab;

struct TestSession : tls::Session {
  explicit TestSession(std::shared_ptr<tls::Context> c,
                       size_t record_size = tls::Session::kMaxRecordPlaintext)
      : tls::Session(std::move(c), record_size, g_records) {}
};

using TestClient = testing::MemoryTlsClient;
using testing::ClientOptions;

// Gives the server `bytes` in pieces cut at `cuts` (ascending) and returns
// the plaintext it produced, reading into a buffer of `buffer_size`.
ByteString server_read(tls::Session& s, const ByteString& bytes, std::vector<size_t> cuts = {},
                       size_t buffer_size = 64 * 1024) {
  ByteString plain;
  std::vector<uint8_t> buf(buffer_size);
  cuts.push_back(bytes.size());
  size_t pos = 0;
  for (size_t cut : cuts) {
    cut = std::min(cut, bytes.size());
    if (cut < pos) continue;
    std::span<const uint8_t> piece(bytes.data() + pos, cut - pos);
    while (true) {
      const auto r = s.read(piece, buf);
      REQUIRE(r.consumed <= piece.size());
      REQUIRE(r.produced <= buf.size());
      piece = piece.subspan(r.consumed);
      plain.insert(plain.end(), buf.begin(), buf.begin() + static_cast<long>(r.produced));
      if (r.produced == 0) break;
    }
    CHECK(piece.empty());  // every octet taken once the server cannot produce more
    pos = cut;
  }
  return plain;
}

ByteString server_output(tls::Session& s) {
  ByteString out;
  for (const iovec& v : s.output()) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    out.insert(out.end(), p, p + v.iov_len);
  }
  s.consume_output(out.size());
  return out;
}

using Splitter = std::function<std::vector<size_t>(int flight, size_t length)>;

// Runs the handshake, moving each client flight to the server (cut where
// `split` says) and each server flight back. True when both sides are done.
bool handshake(TestClient& c, tls::Session& s, const Splitter& split = {}) {
  for (int flight = 0; flight < 8; ++flight) {
    const int r = SSL_do_handshake(c.ssl());
    const int client_error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c.ssl(), r);
    const ByteString out = c.output();
    if (!out.empty())
      server_read(s, out, split ? split(flight, out.size()) : std::vector<size_t>{});
    const ByteString back = server_output(s);
    c.input(back);
    if (s.failed()) {
      UNSCOPED_INFO("server: " << s.error());
      return false;
    }
    if (client_error != SSL_ERROR_NONE && client_error != SSL_ERROR_WANT_READ) {
      UNSCOPED_INFO("client: error " << client_error);
      return false;
    }
    if (r == 1 && s.handshake_done() && out.empty() && back.empty()) return true;
  }
  return false;
}

// TLS records in `ciphertext`: {content type, length}.
std::vector<std::pair<int, size_t>> records(const ByteString& ciphertext) {
  std::vector<std::pair<int, size_t>> out;
  size_t pos = 0;
  while (pos + 5 <= ciphertext.size()) {
    const size_t len = static_cast<size_t>(ciphertext[pos + 3] << 8 | ciphertext[pos + 4]);
    out.emplace_back(ciphertext[pos], len);
    pos += 5 + len;
  }
  REQUIRE(pos == ciphertext.size());
  return out;
}

std::string fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  std::string out;
  char hex[4];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", md[i]);
    out += hex;
  }
  return out;
}

std::string peer_fingerprint(TestClient& c) {
  X509* peer = SSL_get1_peer_certificate(c.ssl());
  REQUIRE(peer != nullptr);
  const std::string f = fingerprint(peer);
  X509_free(peer);
  return f;
}

std::string temp_dir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

// Writes an EC key and a self-signed certificate for `cn` as PEM files.
void write_pem_pair(const std::string& cert_path, const std::string& key_path,
                    const std::string& cn) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_set_pubkey(cert, key);
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  FILE* f = std::fopen(cert_path.c_str(), "w");
  REQUIRE(f);
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  REQUIRE(f);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

iovec iov(const ByteString& b) {
  return {const_cast<uint8_t*>(b.data()), b.size()};
}

const ByteString kRequest =
    bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + ByteString{0, 0, 0, 4, 0, 0, 0, 0, 0};

}  // namespace

TEST_CASE("tls: handshake, ALPN h2 and data both ways") {
  const auto version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  INFO("version " << version);
  TestSession s(shared_context());
  CHECK(s.write(std::vector<iovec>{iov(kRequest)}) == 0);  // nothing before the handshake
  TestClient c({.min_version = version, .max_version = version});
  REQUIRE(handshake(c, s));
  CHECK(s.alpn() == "h2");
  CHECK(s.version() == (version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2"));
  CHECK_FALSE(s.cipher().empty());
  CHECK_FALSE(s.resumed());

  c.write(kRequest);
  CHECK(server_read(s, c.output()) == kRequest);

  const ByteString a = bytes("first "), b = bytes("second "), d = bytes("third");
  const std::vector<iovec> pieces = {iov(a), iov(b), iov(d)};
  CHECK(s.write(pieces) == a.size() + b.size() + d.size());
  c.input(server_output(s));
  CHECK(c.read() == a + b + d);
  CHECK_FALSE(s.failed());
}

TEST_CASE("tls: each client flight split at every byte boundary") {
  const auto version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  // The lengths of the client's flights, from one plain run.
  std::vector<size_t> lengths;
  {
    TestSession s(shared_context());
    TestClient c({.min_version = version, .max_version = version});
    REQUIRE(handshake(c, s, [&](int, size_t len) {
      lengths.push_back(len);
      return std::vector<size_t>{};
    }));
  }
  REQUIRE(lengths.size() == 2);
  for (int flight = 0; flight < 2; ++flight) {
    for (size_t cut = 0; cut <= lengths[flight]; ++cut) {
      INFO("version " << version << ", flight " << flight << " cut at " << cut);
      TestSession s(shared_context());
      TestClient c({.min_version = version, .max_version = version});
      REQUIRE(handshake(c, s, [&](int f, size_t) {
        return f == flight ? std::vector<size_t>{cut} : std::vector<size_t>{};
      }));
      // A small request split at the same offset of its record(s).
      c.write(kRequest);
      const ByteString record = c.output();
      REQUIRE(server_read(s, record, {cut % (record.size() + 1)}, 7) == kRequest);
    }
  }
}

TEST_CASE("tls: everything one byte at a time") {
  TestSession s(shared_context());
  TestClient c;
  const Splitter every_byte = [](int, size_t len) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < len; ++i) cuts.push_back(i);
    return cuts;
  };
  REQUIRE(handshake(c, s, every_byte));
  c.write(kRequest);
  const ByteString record = c.output();
  CHECK(server_read(s, record, every_byte(0, record.size()), 1) == kRequest);
}

TEST_CASE("tls: small frames are coalesced into one record") {
  TestSession s(shared_context());
  TestClient c;
  REQUIRE(handshake(c, s));
  c.input(server_output(s));  // TLS 1.3 tickets
  c.read();
  // 100 responses of 31 octets, each its own iovec (the worst case).
  std::vector<ByteString> frames;
  for (int i = 0; i < 100; ++i) frames.push_back(ByteString(31, static_cast<uint8_t>(i)));
  std::vector<iovec> pieces;
  ByteString expected;
  for (const ByteString& f : frames) {
    pieces.push_back(iov(f));
    expected = expected + f;
  }
  CHECK(s.write(pieces) == 3100);
  const ByteString out = server_output(s);
  CHECK(records(out).size() == 1);
  c.input(out);
  CHECK(c.read() == expected);
}

TEST_CASE("tls: a 1 MB response in full records, either way it is queued") {
  TestSession s(shared_context());
  TestClient c;
  REQUIRE(handshake(c, s));
  c.input(server_output(s));
  c.read();

  ByteString body(16384);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 7 + 3);
  std::vector<ByteString> headers;
  for (int i = 0; i < 64; ++i) headers.push_back(ByteString(9, static_cast<uint8_t>(i)));

  SECTION("DATA frames: 9-octet headers and 16 KiB bodies by reference") {
    std::vector<iovec> pieces;
    ByteString expected;
    for (const ByteString& h : headers) {
      pieces.push_back(iov(h));
      pieces.push_back(iov(body));
      expected = expected + h + body;
    }
    CHECK(s.write(pieces) == expected.size());
    const ByteString out = server_output(s);
    const auto recs = records(out);
    CHECK(recs.size() == (expected.size() + 16383) / 16384);  // full records only
    c.input(out);
    CHECK(c.read() == expected);
  }
  SECTION("one contiguous megabyte, encrypted in place") {
    ByteString mb;
    for (int i = 0; i < 64; ++i) mb = mb + body;
    CHECK(s.write(std::vector<iovec>{iov(mb)}) == mb.size());
    const ByteString out = server_output(s);
    CHECK(records(out).size() == 64);
    c.input(out);
    CHECK(c.read() == mb);
  }
  SECTION("a megabyte from the client, read into a small buffer") {
    ByteString mb;
    for (int i = 0; i < 64; ++i) mb = mb + body;
    c.write(mb);
    CHECK(server_read(s, c.output(), {12345, 500000}, 1000) == mb);
  }
}

TEST_CASE("tls: --tls-record-size bounds every record, small pieces and large alike") {
  constexpr size_t kRecordSize = 1000;
  TestSession s(shared_context(), kRecordSize);
  TestClient c;
  REQUIRE(handshake(c, s));
  c.input(server_output(s));
  c.read();
  // 100 small pieces (coalesced up to the bound), then 50000 contiguous
  // octets (encrypted in place, split by OpenSSL's max_send_fragment).
  std::vector<ByteString> small(100, ByteString(31, 0x5a));
  ByteString large(50000);
  for (size_t i = 0; i < large.size(); ++i) large[i] = static_cast<uint8_t>(i * 13);
  std::vector<iovec> pieces;
  ByteString expected;
  for (const ByteString& f : small) {
    pieces.push_back(iov(f));
    expected = expected + f;
  }
  pieces.push_back(iov(large));
  expected = expected + large;
  CHECK(s.write(pieces) == expected.size());
  const ByteString out = server_output(s);
  const auto recs = records(out);
  // TLS 1.3 AEAD adds the inner content type and a 16-octet tag.
  for (const auto& [type, length] : recs) CHECK(length <= kRecordSize + 17);
  CHECK(recs.size() >= expected.size() / kRecordSize);
  c.input(out);
  CHECK(c.read() == expected);
}

TEST_CASE("tls: close_notify both ways") {
  TestSession s(shared_context());
  TestClient c;
  REQUIRE(handshake(c, s));
  SECTION("the client closes first") {
    c.input(server_output(s));
    c.read();
    SSL_shutdown(c.ssl());
    server_read(s, c.output());
    CHECK(s.peer_closed());
    CHECK_FALSE(s.failed());
    s.close();
    c.input(server_output(s));
    c.read();
    CHECK(c.got_close_notify);
    s.on_eof();
    CHECK_FALSE(s.failed());
  }
  SECTION("the server closes first") {
    const ByteString last = bytes("last words");
    s.write(std::vector<iovec>{iov(last)});
    s.close();
    CHECK(s.closed());
    CHECK(s.write(std::vector<iovec>{iov(last)}) == 0);
    c.input(server_output(s));
    CHECK(c.read() == last);
    CHECK(c.got_close_notify);
    SSL_shutdown(c.ssl());
    server_read(s, c.output());
    CHECK(s.peer_closed());
    s.on_eof();
    CHECK_FALSE(s.failed());
    CHECK(std::string(s.error()).empty());
  }
}

TEST_CASE("tls: a truncated stream is an error, never a hang") {
  TestSession s(shared_context());
  TestClient c;
  SECTION("mid-record") {
    REQUIRE(handshake(c, s));
    c.write(kRequest);
    const ByteString record = c.output();
    server_read(s, ByteString(record.begin(), record.begin() + 20));
    CHECK_FALSE(s.failed());
    s.on_eof();
    CHECK(s.failed());
    CHECK_THAT(s.error(), Catch::Contains("mid-record (20 of " + std::to_string(record.size())));
  }
  SECTION("mid-record header") {
    REQUIRE(handshake(c, s));
    c.write(kRequest);
    const ByteString record = c.output();
    server_read(s, ByteString(record.begin(), record.begin() + 3));
    s.on_eof();
    CHECK_THAT(s.error(), Catch::Contains("3 octets of a record header"));
  }
  SECTION("at a record boundary, without close_notify: a quiet end") {
    REQUIRE(handshake(c, s));
    s.on_eof();
    CHECK_FALSE(s.failed());
    CHECK_FALSE(s.peer_closed());
    return;
  }
  SECTION("during the handshake") {
    SSL_do_handshake(c.ssl());
    server_read(s, c.output());
    s.on_eof();
    CHECK_THAT(s.error(), Catch::Contains("during the handshake"));
  }
  SECTION("before anything: a quiet end (a port probe)") {
    s.on_eof();
    CHECK_FALSE(s.failed());
    return;
  }
  // A failed session swallows input and produces nothing.
  const ByteString more(100, 0x17);
  std::vector<uint8_t> buf(100);
  const auto r = s.read(more, buf);
  CHECK(r.consumed == 100);
  CHECK(r.produced == 0);
}

TEST_CASE("tls: ALPN without h2 gets no_application_protocol and a clear error") {
  struct Row {
    std::string alpn;
    const char* error;
  };
  const Row row =
      GENERATE(Row{std::string("\x08http/1.1", 9), "client offered ALPN [http/1.1], not h2"},
               Row{std::string("\x06spdy/3\x08http/1.1", 16),
                   "client offered ALPN [spdy/3, http/1.1], not h2"},
               Row{"", "client offered no ALPN"});
  const int version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  INFO(row.error << " version " << version);
  TestSession s(shared_context());
  TestClient c({.alpn = row.alpn, .min_version = version, .max_version = version});
  CHECK_FALSE(handshake(c, s));
  CHECK(s.failed());
  CHECK_THAT(s.error(), Catch::Contains(row.error));
  CHECK_THAT(s.error(), Catch::Contains("sent alert 'no application protocol'"));
  // The alert reached the client.
  CHECK(SSL_do_handshake(c.ssl()) != 1);
  CHECK_THAT(ERR_reason_error_string(ERR_peek_last_error()),
             Catch::Contains("no application protocol"));
  ERR_clear_error();
}

TEST_CASE("tls: ALPN lists are parsed defensively") {
  auto list = [](std::initializer_list<uint8_t> b) { return ByteString(b); };
  size_t at = 99;
  CHECK(tls::find_alpn(list({2, 'h', '2'}), "h2", &at) == tls::AlpnMatch::kFound);
  CHECK(at == 0);
  CHECK(tls::find_alpn(list({1, 'x', 2, 'h', '2'}), "h2", &at) == tls::AlpnMatch::kFound);
  CHECK(at == 2);
  CHECK(tls::find_alpn(list({3, 'h', '2', 'c'}), "h2") == tls::AlpnMatch::kAbsent);
  CHECK(tls::find_alpn(list({}), "h2") == tls::AlpnMatch::kMalformed);
  CHECK(tls::find_alpn(list({0}), "h2") == tls::AlpnMatch::kMalformed);
  CHECK(tls::find_alpn(list({3, 'h', '2'}), "h2") == tls::AlpnMatch::kMalformed);
  CHECK(tls::find_alpn(list({2, 'h', '2', 5, 'a'}), "h2") == tls::AlpnMatch::kMalformed);
  CHECK(tls::find_alpn(list({2, 'h', '2', 0}), "h2") == tls::AlpnMatch::kMalformed);
  CHECK(tls::describe_alpn(list({2, 'h', '2', 3, 'a', 0x01, 'b'})) == "h2, a\\x01b");
  CHECK(tls::describe_alpn(list({})) == "(empty)");
  CHECK(tls::describe_alpn(list({9, 'x'})) == "(malformed)");
  ByteString many;
  for (int i = 0; i < 100; ++i) many = many + ByteString{5, 'a', 'b', 'c', 'd', 'e'};
  CHECK(tls::describe_alpn(many).size() < 220);
}

TEST_CASE("tls: TLS 1.2 suites without ECDHE or AEAD, and TLS 1.1, are refused") {
  const std::string ciphers =
      GENERATE(std::string("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA"),
               std::string("AES128-GCM-SHA256"), std::string("DHE-RSA-AES128-GCM-SHA256"));
  INFO(ciphers);
  TestSession s(shared_context());
  TestClient c({.max_version = TLS1_2_VERSION, .tls12_ciphers = ciphers});
  CHECK_FALSE(handshake(c, s));
  CHECK_THAT(s.error(), Catch::Contains("no shared cipher"));

  TestSession old(shared_context());
  TestClient c11({.min_version = TLS1_1_VERSION,
                  .max_version = TLS1_1_VERSION,
                  .tls12_ciphers = "DEFAULT@SECLEVEL=0"});
  CHECK_FALSE(handshake(c11, old));
  CHECK(old.failed());
}

TEST_CASE("tls: a client that rejects our certificate is named in the error") {
  TestSession s(shared_context());
  TestClient c({.verify = true});
  CHECK_FALSE(handshake(c, s));
  server_read(s, c.output());  // the client's alert
  CHECK(s.failed());
  CHECK_THAT(s.error(), Catch::Contains("the peer sent alert"));
  CHECK_THAT(s.error(), Catch::Contains("does not accept our certificate"));
  ERR_clear_error();
}

TEST_CASE("tls: garbage instead of a ClientHello fails cleanly") {
  SECTION("plain HTTP/1 gets a cleartext 400 that explains") {
    TestSession s(shared_context());
    server_read(s, bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK_THAT(s.error(), Catch::Contains("plain HTTP/1 request (\"GET / HTTP/1.1\")"));
    const ByteString out = server_output(s);
    const std::string reply(out.begin(), out.end());
    CHECK(reply.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK_THAT(reply, Catch::Contains("use https://"));
  }
  SECTION("cleartext HTTP/2") {
    TestSession s(shared_context());
    server_read(s, kRequest);
    CHECK_THAT(s.error(), Catch::Contains("cleartext HTTP/2 preface (h2c)"));
    CHECK(s.output_size() == 0);
  }
  SECTION("binary garbage") {
    TestSession s(shared_context());
    server_read(s, ByteString{0x00, 0xff, 0x10});
    CHECK_THAT(s.error(), Catch::Contains("first octet 0x00"));
  }
  SECTION("random bytes behind a handshake record type, many times") {
    std::mt19937 rng(4);
    for (int i = 0; i < 300; ++i) {
      TestSession s(shared_context());
      ByteString junk(1 + rng() % 600);
      for (uint8_t& b : junk) b = static_cast<uint8_t>(rng());
      junk[0] = 0x16;
      if (i % 2 == 0 && junk.size() > 3) {  // a plausible record header
        junk[1] = 3;
        junk[2] = 1;
      }
      server_read(s, junk, {rng() % junk.size()});
      s.on_eof();
      CHECK(s.failed());
      CHECK(std::string(s.error()).size() > 10);
      CHECK(s.write(std::vector<iovec>{iov(junk)}) == 0);
    }
  }
  SECTION("a valid ClientHello followed by garbage records") {
    TestSession s(shared_context());
    TestClient c;
    SSL_do_handshake(c.ssl());
    server_read(s, c.output() + ByteString{0x16, 3, 3, 0, 4, 1, 2, 3, 4});
    CHECK(s.failed());
    CHECK_FALSE(s.handshake_done());
  }
}

TEST_CASE("tls: session resumption on and off") {
  const int version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  const bool resumption = GENERATE(true, false);
  INFO("version " << version << " resumption " << resumption);
  const auto context = make_context({.session_resumption = resumption});
  SSL_SESSION* saved = nullptr;
  {
    TestSession s(context);
    TestClient c({.min_version = version, .max_version = version});
    REQUIRE(handshake(c, s));
    c.input(server_output(s));
    c.read();  // takes the TLS 1.3 tickets
    saved = SSL_get1_session(c.ssl());
    REQUIRE(saved != nullptr);
    // An OpenSSL client that frees a connection it did not shut down marks
    // the session not resumable.
    SSL_shutdown(c.ssl());
  }
  TestSession s(context);
  TestClient c({.min_version = version, .max_version = version, .session = saved});
  REQUIRE(handshake(c, s));
  CHECK(s.resumed() == resumption);
  CHECK((SSL_session_reused(c.ssl()) == 1) == resumption);
  SSL_SESSION_free(saved);
}

TEST_CASE("tls: the SNI hook picks a certificate by name") {
  const auto a = make_context({.self_signed_names = {"a.example"}});
  const auto b = make_context({.self_signed_names = {"b.example"}});
  tls::ContextOptions o;
  std::vector<std::string> asked;
  o.on_server_name = [&](std::string_view name) -> std::shared_ptr<tls::Context> {
    asked.emplace_back(name);
    if (name == "a.example") return a;
    if (name == "b.example") return b;
    return nullptr;
  };
  const auto front = make_context(o);
  struct Row {
    std::string name;
    std::string fingerprint;
  };
  for (const Row& row :
       {Row{"b.example", b->fingerprint()}, Row{"a.example", a->fingerprint()},
        Row{"other.example", front->fingerprint()}, Row{"", front->fingerprint()}}) {
    INFO("server name '" << row.name << "'");
    TestSession s(front);
    TestClient c({.server_name = row.name});
    REQUIRE(handshake(c, s));
    CHECK(peer_fingerprint(c) == row.fingerprint);
    CHECK(s.alpn() == "h2");
  }
  CHECK(asked == std::vector<std::string>{"b.example", "a.example", "other.example"});
}

TEST_CASE("tls: the ephemeral certificate names localhost, 127.0.0.1 and ::1") {
  const auto context = shared_context();
  TestSession s(context);
  TestClient c;
  REQUIRE(handshake(c, s));
  X509* peer = SSL_get1_peer_certificate(c.ssl());
  REQUIRE(peer);
  CHECK(X509_check_host(peer, "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(peer, "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(peer, "::1", 0) == 1);
  CHECK(X509_check_host(peer, "example.com", 0, 0, nullptr) == 0);
  CHECK(EVP_PKEY_is_a(X509_get0_pubkey(peer), "EC"));
  CHECK(fingerprint(peer) == context->fingerprint());
  X509_free(peer);
  CHECK(context->fingerprint().size() == 32 * 3 - 1);
  CHECK(context->public_key_pin().rfind("sha256//", 0) == 0);
  CHECK(context->public_key_pin().size() == 8 + 44);
  CHECK_THAT(context->description(), Catch::Contains("ephemeral self-signed"));
  // Each start makes a new key.
  CHECK(make_context()->fingerprint() != context->fingerprint());
}

TEST_CASE("tls: --cert/--key files, and clear errors") {
  const std::string dir = temp_dir();
  const std::string cert = dir + "/tls_test_cert.pem", key = dir + "/tls_test_key.pem";
  const std::string cert2 = dir + "/tls_test_cert2.pem", key2 = dir + "/tls_test_key2.pem";
  write_pem_pair(cert, key, "files.example");
  write_pem_pair(cert2, key2, "other.example");
  const std::string junk = dir + "/tls_test_junk.pem";
  FILE* f = std::fopen(junk.c_str(), "w");
  std::fputs("not a PEM file\n", f);
  std::fclose(f);

  const auto good = tls::Context::create({.cert_file = cert, .key_file = key});
  INFO(good.error);
  REQUIRE(good.context);
  CHECK(good.context->description() == "certificate from " + cert + " (CN=files.example)");
  {
    TestSession s(good.context);
    TestClient c;
    REQUIRE(handshake(c, s));
    CHECK(peer_fingerprint(c) == good.context->fingerprint());
  }
  struct Row {
    std::string cert, key, error;
  };
  for (const Row& row : {
           Row{dir + "/missing.pem", key,
               "cannot read certificate file '" + dir + "/missing.pem': No such file or directory"},
           Row{cert, dir + "/missing.pem",
               "cannot read key file '" + dir + "/missing.pem': No such file or directory"},
           Row{junk, key, "certificate file '" + junk + "' holds no PEM certificate"},
           Row{cert, junk, "key file '" + junk + "' holds no readable PEM private key"},
           Row{cert, key2,
               "key file '" + key2 + "' does not match the certificate in '" + cert + "'"},
           Row{cert, "", "a certificate file needs a key file (--key)"},
           Row{"", key, "a key file needs a certificate file (--cert)"},
       }) {
    const auto r = tls::Context::create({.cert_file = row.cert, .key_file = row.key});
    CHECK_FALSE(r.context);
    CHECK_THAT(r.error, Catch::Contains(row.error));
  }
  CHECK(ERR_peek_error() == 0);  // no stale OpenSSL errors left for the next connection
}

// --- After the handshake: who protects records (tls/record_protection.h) ---

namespace {

ByteString random_bytes(std::mt19937& rng, size_t n) {
  ByteString b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// Random cut points in [0, n), ascending.
std::vector<size_t> random_cuts(std::mt19937& rng, size_t n, int count) {
  std::vector<size_t> cuts;
  for (int i = 0; i < count && n != 0; ++i) cuts.push_back(rng() % n);
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

// The server's plaintext split into iovecs at random points.
std::vector<iovec> random_pieces(std::mt19937& rng, const ByteString& b) {
  std::vector<iovec> v;
  size_t pos = 0;
  for (size_t cut : random_cuts(rng, b.size(), 6)) {
    if (cut > pos) v.push_back({const_cast<uint8_t*>(b.data() + pos), cut - pos});
    pos = std::max(pos, cut);
  }
  v.push_back({const_cast<uint8_t*>(b.data() + pos), b.size() - pos});
  return v;
}

// The alert the client received, as OpenSSL reports it (its reason code is
// SSL_AD_REASON_OFFSET + the alert's description); 0 for none.
int alert_the_client_got(TestClient& c) {
  c.read();
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    const int reason = ERR_GET_REASON(e);
    if (reason > SSL_AD_REASON_OFFSET) return reason - SSL_AD_REASON_OFFSET;
  }
  return 0;
}

}  // namespace

TEST_CASE("tls: after a TLS 1.3 handshake, every suite carries random data both ways") {
  const char* suite = GENERATE("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                               "TLS_CHACHA20_POLY1305_SHA256");
  INFO(suite);
  std::mt19937 rng(7);
  TestSession s(shared_context());
  TestClient c({.tls13_suites = suite});
  REQUIRE(handshake(c, s));
  CHECK(s.cipher() == suite);
  CHECK(s.own_record_layer() == (g_records == tls::RecordLayer::kH2lab));
  for (int round = 0; round < 20; ++round) {
    const ByteString up = random_bytes(rng, rng() % 70000);
    size_t written = 0;
    while (written < up.size()) {  // several client writes of random sizes
      const size_t n = std::min(up.size() - written, size_t{1} + rng() % 30000);
      c.write(ByteString(up.begin() + written, up.begin() + written + n));
      written += n;
    }
    const ByteString sent = c.output();
    CHECK(server_read(s, sent, random_cuts(rng, sent.size(), 5), 1 + rng() % 70000) == up);
    const ByteString down = random_bytes(rng, rng() % 70000);
    CHECK(s.write(random_pieces(rng, down)) == down.size());
    c.input(server_output(s));
    CHECK(c.read() == down);
  }
  CHECK_FALSE(s.failed());
}

TEST_CASE("tls: TLS 1.2 keeps OpenSSL's record layer") {
  TestSession s(shared_context());
  TestClient c({.min_version = TLS1_2_VERSION, .max_version = TLS1_2_VERSION});
  REQUIRE(handshake(c, s));
  CHECK_FALSE(s.own_record_layer());
}

TEST_CASE("tls: a KeyUpdate from the client, and the one it requests back (RFC 8446 §4.6.3)") {
  const int type = GENERATE(SSL_KEY_UPDATE_NOT_REQUESTED, SSL_KEY_UPDATE_REQUESTED);
  INFO("update_requested " << (type == SSL_KEY_UPDATE_REQUESTED));
  TestSession s(shared_context());
  TestClient c;
  REQUIRE(handshake(c, s));
  c.input(server_output(s));
  c.read();  // the tickets
  for (int round = 0; round < 3; ++round) {
    REQUIRE(SSL_key_update(c.ssl(), type) == 1);
    const ByteString ping = bytes("ping " + std::to_string(round));
    c.write(ping);
    CHECK(server_read(s, c.output()) == ping);
    const ByteString pong = bytes("pong " + std::to_string(round));
    CHECK(s.write(std::vector<iovec>{iov(pong)}) == pong.size());
    const ByteString out = server_output(s);
    // Our own KeyUpdate first when one was requested, then the data.
    CHECK(records(out).size() == (type == SSL_KEY_UPDATE_REQUESTED ? 2u : 1u));
    c.input(out);
    CHECK(c.read() == pong);
  }
  CHECK_FALSE(s.failed());
}

TEST_CASE("tls: a forged or malformed record gets the alert RFC 8446 names") {
  struct Row {
    const char* what;
    int alert;
    std::function<ByteString(ByteString record)> make;
  };
  const std::vector<Row> rows = {
      {"a flipped ciphertext octet (§5.2)", SSL_AD_BAD_RECORD_MAC,
       [](ByteString r) {
         r[7] ^= 1;
         return r;
       }},
      {"a flipped tag octet", SSL_AD_BAD_RECORD_MAC,
       [](ByteString r) {
         r.back() ^= 0x80;
         return r;
       }},
      {"a record header announcing 2^14 + 257 octets", SSL_AD_RECORD_OVERFLOW,
       [](ByteString) { return ByteString{23, 3, 3, 0x41, 0x01}; }},
      {"a ChangeCipherSpec after the handshake (§5)", SSL_AD_UNEXPECTED_MESSAGE,
       [](ByteString) { return ByteString{20, 3, 3, 0, 1, 1}; }},
      {"an unprotected handshake record", SSL_AD_UNEXPECTED_MESSAGE,
       [](ByteString) { return ByteString{22, 3, 3, 0, 5, 24, 0, 0, 1, 0}; }},
  };
  for (const Row& row : rows) {
    INFO(row.what);
    TestSession s(shared_context());
    TestClient c;
    REQUIRE(handshake(c, s));
    c.input(server_output(s));
    c.read();
    c.write(bytes("hello"));
    server_read(s, row.make(c.output()));
    CHECK(s.failed());
    c.input(server_output(s));
    CHECK(alert_the_client_got(c) == row.alert);
    // Nothing more is taken or sent.
    const ByteString more = bytes("more");
    CHECK(s.write(std::vector<iovec>{iov(more)}) == 0);
    CHECK(s.output_size() == 0);
  }
}

TEST_CASE("tls: records larger than the caller's buffer are handed out across calls") {
  const size_t buffer = GENERATE(size_t{1}, size_t{100}, size_t{16383}, size_t{16384});
  INFO("buffer " << buffer);
  std::mt19937 rng(11);
  TestSession s(shared_context());
  TestClient c;
  REQUIRE(handshake(c, s));
  const ByteString data = random_bytes(rng, 50000);
  c.write(data);
  const ByteString sent = c.output();
  CHECK(server_read(s, sent, random_cuts(rng, sent.size(), 3), buffer) == data);
}

// The same conversation through both record layers: the same plaintext
// either way, and the same records (sizes and types) on the wire.
TEST_CASE("tls: h2lab's record layer and OpenSSL's agree on the same conversation") {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    std::vector<std::vector<std::pair<int, size_t>>> wire[2];
    std::vector<ByteString> heard[2];
    const tls::RecordLayer layers[2] = {tls::RecordLayer::kH2lab, tls::RecordLayer::kOpenssl};
    for (int k = 0; k < 2; ++k) {
      std::mt19937 rng(seed);
      const size_t record_size = 512 + rng() % 16000;
      tls::Session s(shared_context(), record_size, layers[k]);
      TestClient c;
      REQUIRE(handshake(c, s));
      CHECK(s.own_record_layer() == (k == 0));
      c.input(server_output(s));
      c.read();
      for (int round = 0; round < 6; ++round) {
        const ByteString up = random_bytes(rng, rng() % 40000);
        c.write(up);
        const ByteString sent = c.output();
        heard[k].push_back(server_read(s, sent, random_cuts(rng, sent.size(), 4)));
        const ByteString down = random_bytes(rng, rng() % 40000);
        CHECK(s.write(random_pieces(rng, down)) == down.size());
        const ByteString out = server_output(s);
        wire[k].push_back(records(out));
        c.input(out);
        CHECK(c.read() == down);
      }
      s.close();
      wire[k].push_back(records(server_output(s)));
    }
    CHECK(heard[0] == heard[1]);
    CHECK(wire[0] == wire[1]);
  }
}

int main(int argc, char** argv) {
  Catch::Session session;
  std::string records = "h2lab";
  using Catch::clara::Opt;
  session.cli(session.cli() | Opt(records, "name")["--tls-records"](
                                  "record layer after a TLS 1.3 handshake: h2lab or openssl"));
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  if (records == "h2lab") {
    g_records = tls::RecordLayer::kH2lab;
  } else if (records == "openssl") {
    g_records = tls::RecordLayer::kOpenssl;
  } else {
    std::fprintf(stderr, "unknown --tls-records '%s'; valid: h2lab, openssl\n", records.c_str());
    return 2;
  }
  return session.run();
}
