// TLS 1.3 record protection after the handshake (RFC 8446 §5), for one
// connection, sans I/O: the record layer tls::Session switches to once
// OpenSSL has finished a TLS 1.3 handshake, so that the SSL object (about
// 9 KiB with its TLS 1.3 state, kept for the connection's life otherwise)
// can be freed. What stays per connection is two AEAD contexts, two
// traffic secrets and the carry of one incomplete record (docs/TLS.md).
//
// It does what RFC 8446 asks of a record layer that has no handshake left
// to run:
//   - §5.2–5.3: AEAD (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) with the
//     per-record nonce (write_iv XOR the 64-bit sequence number) and the
//     record header as additional data; inner content type and padding;
//   - §7.3: traffic keys and IVs from the application traffic secrets;
//   - §4.6.3, §7.2: KeyUpdate from the peer (the read key moves on; an
//     update_requested gets our own KeyUpdate before any more data);
//   - §6: close_notify ends the input, user_canceled is ignored, any other
//     alert ends the connection; what we reject gets the alert §6.2 names
//     (bad_record_mac, record_overflow, unexpected_message, decode_error,
//     illegal_parameter) queued before the failure is reported.
// Anything else after the handshake (a NewSessionTicket, a CertificateRequest
// answer, a ChangeCipherSpec, a record of a type other than
// application_data) is unexpected_message.
//
// Output goes to the OutputQueue given at construction (the session's
// ciphertext queue): records are encrypted straight into its arena, the
// plaintext read once from the caller's iovecs (no staging copy).
// Errors: a failed RecordProtection stays failed; error() says why in one
// line. No exceptions. Not thread-safe.
#pragma once

#include <openssl/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "proto/output_queue.h"

namespace h2lab::tls {

class RecordProtection {
 public:
  // What the handshake left: the negotiated TLS 1.3 cipher suite (its
  // two-octet identifier, RFC 8446 §B.4), the client's and the server's
  // application traffic secrets (client_/server_application_traffic_secret_0,
  // §7.1), and the sequence numbers already used under each (records OpenSSL
  // protected with them: the server's NewSessionTickets).
  struct Keys {
    uint16_t cipher_suite = 0;
    std::span<const uint8_t> client_secret;
    std::span<const uint8_t> server_secret;
    uint64_t client_sequence = 0;
    uint64_t server_sequence = 0;
  };

  // The server side. Null, with `*error` set, when the suite is not one of
  // the three above, a secret does not have the suite's hash length, or
  // OpenSSL cannot set up the cipher. `output` must outlive the object.
  static std::unique_ptr<RecordProtection> create_server(const Keys& keys,
                                                         proto::OutputQueue& output,
                                                         std::string* error);
  ~RecordProtection();
  RecordProtection(const RecordProtection&) = delete;
  RecordProtection& operator=(const RecordProtection&) = delete;

  // Largest plaintext of one record (§5.1) and the most a record's
  // ciphertext may exceed it by (§5.2).
  static constexpr size_t kMaxPlaintext = 16384;
  static constexpr size_t kMaxExpansion = 256;
  static constexpr size_t kTagSize = 16;

  struct ReadResult {
    size_t consumed = 0;
    size_t produced = 0;
  };
  // tls::Session::read()'s contract: opens records from `ciphertext` into
  // `plaintext` (not empty) and consumes every octet (an incomplete record
  // is carried inside) unless a record did not fit in what was left of
  // `plaintext` — then `produced` > 0 and the caller calls again with the
  // rest. A record larger than all of `plaintext` is opened into an
  // internal buffer and handed out across calls. After a failure or
  // close_notify, input is consumed and discarded.
  ReadResult read(std::span<const uint8_t> ciphertext, std::span<uint8_t> plaintext) noexcept;

  // Seals all of `plaintext`, in order, into records of at most
  // `record_size` octets (every record full but the last). False on
  // failure (then nothing more is sent).
  bool write(std::span<const iovec> plaintext, size_t record_size) noexcept;

  // Queues an alert record (level fatal unless it is close_notify).
  void send_alert(uint8_t description) noexcept;

  bool peer_closed() const noexcept { return peer_closed_; }  // close_notify received
  bool failed() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  // Octets of an incomplete record held (a peer that stops here truncated it).
  size_t carried() const noexcept { return carried_; }
  // Frees the carry and unread-plaintext buffers when they hold nothing.
  void trim() noexcept;

 private:
  struct Direction;
  class Pieces;
  explicit RecordProtection(proto::OutputQueue& output);

  bool header_acceptable(const uint8_t* header);
  bool open_record(std::span<const uint8_t> record, std::span<uint8_t> out, size_t* content_size);
  bool on_handshake(std::span<const uint8_t> content);
  bool on_alert(std::span<const uint8_t> content);
  bool seal_record(uint8_t content_type, Pieces& pieces, size_t n);
  void fail(uint8_t alert, std::string why) noexcept;

  proto::OutputQueue& output_;
  std::unique_ptr<Direction> read_;
  std::unique_ptr<Direction> write_;

  // One record being assembled across reads (header and body).
  std::unique_ptr<uint8_t[]> carry_;
  size_t carried_ = 0;
  // A record's plaintext that did not fit the caller's buffer.
  std::unique_ptr<uint8_t[]> unread_;
  size_t unread_begin_ = 0;
  size_t unread_end_ = 0;
  // Handshake octets of a message split across records (only KeyUpdate is
  // valid here, 5 octets; anything longer is rejected before it is kept).
  uint8_t handshake_[8] = {};
  size_t handshake_size_ = 0;

  bool peer_closed_ = false;
  std::string error_;
};

}  // namespace h2lab::tls
