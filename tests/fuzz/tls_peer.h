// The TLS side of the TLS fuzz targets: one ephemeral server Context for the
// whole process (generating a certificate per input would be all the work),
// and an in-process OpenSSL client over memory BIOs that makes real
// ClientHellos and handshake flights. Aborts when OpenSSL itself cannot be
// set up: that is the harness failing, not a finding.
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "tls/context.h"

namespace h2lab::fuzz {

inline std::shared_ptr<tls::Context> fuzz_context() {
  static const std::shared_ptr<tls::Context> context = [] {
    tls::ContextResult r = tls::Context::create(tls::ContextOptions{});
    if (!r.context) {
      std::fprintf(stderr, "fuzz: no TLS context: %s\n", r.error.c_str());
      std::abort();
    }
    return r.context;
  }();
  return context;
}

// An OpenSSL client (ALPN h2, TLS 1.2 or 1.3 as asked) whose ciphertext the
// target moves by hand.
class TlsPeer {
 public:
  explicit TlsPeer(bool tls12 = false) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    const int version = tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, version);
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    if (ctx_ == nullptr || ssl_ == nullptr || in_ == nullptr || out_ == nullptr) std::abort();
    BIO_set_mem_eof_return(in_, -1);  // empty means "retry", not EOF
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_set_alpn_protos(ssl_, kAlpn, sizeof kAlpn);
    SSL_set_tlsext_host_name(ssl_, "localhost");
  }
  TlsPeer(const TlsPeer&) = delete;
  TlsPeer& operator=(const TlsPeer&) = delete;
  ~TlsPeer() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // Advances the handshake; true once it is done on this side.
  bool step() { return SSL_do_handshake(ssl_) == 1; }
  bool done() const { return SSL_is_init_finished(ssl_) == 1; }

  // Ciphertext the client wrote (its next flight, records), to send.
  std::vector<uint8_t> take_output() {
    std::vector<uint8_t> out;
    uint8_t buf[16384];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
    return out;
  }
  // Ciphertext from the server.
  void give(std::span<const uint8_t> b) {
    if (!b.empty()) BIO_write(in_, b.data(), static_cast<int>(b.size()));
  }
  // Encrypts `plain` into records (take_output() then has them).
  void write(std::span<const uint8_t> plain) {
    if (plain.empty()) return;
    size_t n = 0;
    SSL_write_ex(ssl_, plain.data(), plain.size(), &n);
  }
  // Decrypts what the server sent and appends it to `plain`; false once the
  // client failed or got close_notify.
  bool read(std::vector<uint8_t>& plain) {
    uint8_t buf[16384];
    size_t n = 0;
    while (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) plain.insert(plain.end(), buf, buf + n);
    const int e = SSL_get_error(ssl_, 0);
    if (e == SSL_ERROR_ZERO_RETURN) got_close_notify = true;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
  }
  bool got_close_notify = false;

  // A fresh client's first flight: a real ClientHello.
  static std::vector<uint8_t> client_hello(bool tls12 = false) {
    TlsPeer peer(tls12);
    peer.step();
    return peer.take_output();
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

}  // namespace h2lab::fuzz
