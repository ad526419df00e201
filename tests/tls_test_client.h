// An in-process OpenSSL client for TLS tests (tls_session_test,
// tls_integration_test): memory BIOs, no socket of its own.
#pragma once

#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace h2lab::testing {

using ByteString = std::vector<uint8_t>;

struct ClientOptions {
  std::string alpn = std::string("\x02h2", 3);  // wire format; "" offers no ALPN
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string tls12_ciphers;  // OpenSSL's default when empty
  std::string tls13_suites;   // OpenSSL's default when empty
  std::string server_name;
  SSL_SESSION* session = nullptr;  // to resume
  bool verify = false;             // verify the server against the default trust store
};

// An OpenSSL client over two memory BIOs: the test moves its ciphertext
// (output() to the server, input() from it), so it can cut, delay or drop
// any of it.
class MemoryTlsClient {
 public:
  explicit MemoryTlsClient(const ClientOptions& o = {}) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, o.min_version);
    SSL_CTX_set_max_proto_version(ctx_, o.max_version);
    if (!o.tls12_ciphers.empty()) REQUIRE(SSL_CTX_set_cipher_list(ctx_, o.tls12_ciphers.c_str()));
    if (!o.tls13_suites.empty()) REQUIRE(SSL_CTX_set_ciphersuites(ctx_, o.tls13_suites.c_str()));
    if (o.verify) {
      SSL_CTX_set_default_verify_paths(ctx_);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);  // empty means "retry", not EOF
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    if (!o.alpn.empty()) {
      REQUIRE(SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(o.alpn.data()),
                                  static_cast<unsigned>(o.alpn.size())) == 0);
    }
    if (!o.server_name.empty()) SSL_set_tlsext_host_name(ssl_, o.server_name.c_str());
    if (o.session != nullptr) SSL_set_session(ssl_, o.session);
  }
  MemoryTlsClient(const MemoryTlsClient&) = delete;
  MemoryTlsClient& operator=(const MemoryTlsClient&) = delete;
  ~MemoryTlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  SSL* ssl() { return ssl_; }

  // What the client has written, to send to the server.
  ByteString output() {
    ByteString out;
    char buf[16384];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
    return out;
  }
  void input(const ByteString& b) {
    if (!b.empty()) BIO_write(in_, b.data(), static_cast<int>(b.size()));
  }
  // Plaintext the client can decrypt from what it was given; sets
  // got_close_notify when the server's close_notify arrived.
  ByteString read() {
    ByteString out;
    char buf[16384];
    while (true) {
      size_t n = 0;
      if (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) {
        out.insert(out.end(), buf, buf + n);
        continue;
      }
      const int e = SSL_get_error(ssl_, 0);
      if (e == SSL_ERROR_ZERO_RETURN) got_close_notify = true;
      if (e != SSL_ERROR_WANT_READ) last_error = e;
      break;
    }
    return out;
  }
  void write(const ByteString& b) {
    size_t n = 0;
    REQUIRE(SSL_write_ex(ssl_, b.data(), b.size(), &n) == 1);
  }
  bool got_close_notify = false;
  int last_error = 0;

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

}  // namespace h2lab::testing
