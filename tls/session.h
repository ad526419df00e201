// One TLS connection, sans I/O: ciphertext in → plaintext out for the
// engine; the engine's plaintext (an iovec list) in → ciphertext out to send.
// The socket is never handed to OpenSSL, so every dispatcher drives TLS the
// same way (the seed's memory-BIO server; docs/TLS.md).
//
//   read(ciphertext, plaintext buffer)  → {consumed, produced}
//   write(plaintext iovecs)             → octets taken; ciphertext queued
//   output() / consume_output(n)        → ciphertext to send, in order
//
// Copies: OpenSSL reads ciphertext straight from the caller's span (a BIO of
// our own, no intermediate buffer), and its records' ciphertext is appended
// once to output(). Plaintext to encrypt is passed to OpenSSL in place when
// it already forms whole records (or is all there is); only smaller pieces are
// gathered into a 16 KiB staging buffer, so that many small frames become one
// full record instead of one record each.
//
// After a TLS 1.3 handshake the session, by default, frees OpenSSL's SSL
// object and protects records itself (tls/record_protection.h): an idle
// connection then keeps two AEAD contexts instead of the SSL object and its
// TLS 1.3 state. RecordLayer::kOpenssl keeps OpenSSL for the connection's
// life (the plain path differential tests compare against); TLS 1.2
// connections always keep it.
//
// Errors: a failed session stays failed; error() says why, once, in one line
// fit for the log (the peer's alert, the ALPN list it offered, "not TLS:
// looks like plain HTTP", a truncated record…). Alerts we send are already in
// output() when a call fails: flush output() before closing. No exceptions.
// Not thread-safe: one thread drives a session at a time.
#pragma once

#include <openssl/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "proto/output_queue.h"
#include "tls/context.h"
#include "tls/record_protection.h"

namespace h2lab::tls {

// Who protects records once a TLS 1.3 handshake is done (--tls-records).
enum class RecordLayer { kH2lab, kOpenssl };

class Session {
 public:
  // Largest plaintext of one TLS record (RFC 8446 §5.1).
  static constexpr size_t kMaxRecordPlaintext = 16384;

  // `record_size`: the largest plaintext per record this session sends,
  // clamped to [512, kMaxRecordPlaintext] (--tls-record-size).
  explicit Session(std::shared_ptr<Context> context, size_t record_size = kMaxRecordPlaintext,
                   RecordLayer record_layer = RecordLayer::kH2lab) noexcept;
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  struct ReadResult {
    size_t consumed = 0;  // ciphertext octets taken from `ciphertext`
    size_t produced = 0;  // plaintext octets written to the front of `plaintext`
  };
  // Takes ciphertext received from the peer, advances the handshake and
  // decrypts into `plaintext` (not empty) until it is full or nothing more
  // can be decrypted. Octets of an incomplete record are kept inside, so
  // every octet is consumed unless `plaintext` filled up: then use it and
  // call again with the rest, until a call produces nothing. After a
  // failure or the peer's close_notify, input is consumed and discarded.
  // `ciphertext` is not referenced after the call returns.
  ReadResult read(std::span<const uint8_t> ciphertext, std::span<uint8_t> plaintext) noexcept;

  // The peer closed the transport: no more ciphertext will come. Inside a
  // record (truncation) or a handshake this fails the session; between
  // records without close_notify, or before any input, it does not (HTTP/2
  // frames mark their own ends, and clients often skip close_notify).
  // Idempotent.
  void on_eof() noexcept;

  // Encrypts `plaintext` in order into output() and returns how many octets
  // it took: all of them once the handshake is done, none before it, after
  // close() or after a failure. Small pieces are coalesced into full records
  // (of record_size); everything taken is in output() when this returns, so
  // one call's plaintext never shares a record with the next call's. The
  // caller may reuse or free the pieces as soon as this returns.
  size_t write(std::span<const iovec> plaintext) noexcept;

  // Queues close_notify (RFC 8446 §6.1) once the handshake is done; before
  // that, just ends the session. Later writes take nothing. Idempotent.
  void close() noexcept;

  // Ciphertext to send: handshake messages, records, alerts, close_notify.
  // Valid until the next non-const call.
  std::span<const iovec> output() const noexcept { return output_.iovecs(); }
  size_t output_size() const noexcept { return output_.size(); }
  // The first `n` octets of output() were sent (n ≤ output_size()).
  void consume_output(size_t n) noexcept { output_.consume(n); }

  bool handshake_done() const noexcept { return handshake_done_; }
  bool peer_closed() const noexcept { return peer_closed_; }  // close_notify received
  bool closed() const noexcept { return closed_; }            // close() was called
  bool failed() const noexcept { return !error_.empty(); }
  // Why the session failed, for the log; "" while it has not.
  const char* error() const noexcept { return error_.c_str(); }

  // After the handshake: "TLSv1.3", the cipher suite, the ALPN protocol
  // ("h2"), and whether a previous session was resumed.
  std::string_view version() const noexcept { return version_; }
  std::string_view cipher() const noexcept { return cipher_; }
  std::string_view alpn() const noexcept { return alpn_; }
  bool resumed() const noexcept { return resumed_; }
  // Whether records are protected by h2lab's record layer (the SSL object
  // has been freed) rather than by OpenSSL.
  bool own_record_layer() const noexcept { return protection_ != nullptr; }

  // Frees buffers an idle session does not need (between reads).
  void trim() noexcept;
  // The ciphertext queue takes and gives back its chunks through `pool`
  // (proto::OutputQueue::use_pool: it must outlive the session).
  void use_chunk_pool(proto::ChunkPool* pool) noexcept { output_.use_pool(pool); }

 private:
  struct Bio;

  bool start() noexcept;  // makes ssl_ at the first input; false (failed) when it cannot
  void on_handshake_done() noexcept;
  void hand_over() noexcept;  // to protection_, freeing ssl_, when the handshake allows it
  ReadResult read_protected(std::span<const uint8_t> ciphertext,
                            std::span<uint8_t> plaintext) noexcept;
  bool encrypt(const uint8_t* data, size_t n) noexcept;
  void fail(int ssl_error) noexcept;
  void fail_not_tls(std::span<const uint8_t> first) noexcept;
  void track_records(const uint8_t* p, size_t n) noexcept;

  std::shared_ptr<Context> context_;
  SSL* ssl_ = nullptr;  // made by the first read() with input (start()); freed by hand_over()
  RecordLayer record_layer_;
  std::unique_ptr<RecordProtection> protection_;  // after hand_over()
  detail::ConnectionNotes notes_;  // SSL app data: what the callbacks learn

  // Ciphertext the BIO hands OpenSSL during read(): a view of the caller's.
  std::span<const uint8_t> input_;
  bool eof_ = false;
  proto::OutputQueue output_;  // ciphertext OpenSSL wrote, to send

  size_t record_size_;                  // largest plaintext per record sent
  std::unique_ptr<uint8_t[]> staging_;  // small plaintext pieces, one record
  size_t staged_ = 0;

  // Record boundaries of the input, for diagnostics only (RFC 8446 §5.1).
  uint8_t record_header_[5] = {};
  size_t header_have_ = 0;  // octets of the current record's header seen
  size_t body_left_ = 0;    // octets of its body still to come
  uint64_t input_octets_ = 0;

  // What the handshake negotiated (static strings from OpenSSL's tables).
  const char* version_ = "";
  const char* cipher_ = "";
  char alpn_[16] = {};
  bool resumed_ = false;

  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool closed_ = false;
  std::string error_;
};

}  // namespace h2lab::tls
