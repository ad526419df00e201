// The TLS configuration every connection of a server shares: an OpenSSL
// SSL_CTX set up for HTTP/2 over TLS (RFC 9113 §3.2, §9.2) and its
// certificate. Sans I/O like the rest of tls/: a Context never touches a
// socket; tls::Session (tls/session.h) drives one connection through it.
//
// What a Context enforces:
//   - TLS 1.2 and 1.3 only. On TLS 1.2 only ECDHE key exchange with AEAD
//     suites (RFC 9113 §9.2.2), no compression (§9.2.1), no renegotiation
//     (§9.2.1, SSL_OP_NO_RENEGOTIATION).
//   - ALPN selects "h2". A client that offers no ALPN, or a list without
//     "h2", gets the no_application_protocol alert (RFC 7301 §3.2); the list
//     it offered is named in the connection's error. A malformed list gets
//     decode_error.
//   - No client certificates.
//   - Session resumption (tickets and the server session cache) on, unless
//     turned off.
//
// Errors travel as a ContextResult (no exceptions).
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace h2lab::tls {

class Context;

// SNI hook (RFC 6066 §3; the seed's "hook into client hello processing"):
// called during a handshake with the server name the client asked for, on
// the thread that serves the connection (so it must be thread-safe when
// connections are served on several threads) and never for a client that
// sends no name. It returns the context whose certificate the connection
// should use, or null to keep the current one. Must not throw.
using ServerNameHook = std::function<std::shared_ptr<Context>(std::string_view server_name)>;

struct ContextOptions {
  // PEM files: the certificate (leaf first, then any intermediates) and its
  // unencrypted private key. Both empty: an ephemeral self-signed
  // certificate is generated in memory instead.
  std::string cert_file;
  std::string key_file;
  // Names of the ephemeral certificate: the first is its common name; each
  // goes into subjectAltName, as an IP address when it parses as one.
  std::vector<std::string> self_signed_names = {"localhost", "127.0.0.1", "::1"};
  // Session tickets and the server-side session cache; off makes every
  // connection a full handshake (for experiments).
  bool session_resumption = true;
  ServerNameHook on_server_name;
};

struct ContextResult {
  std::shared_ptr<Context> context;  // null on failure
  std::string error;                 // why, on failure: names the file and the fix
};

class Context {
 public:
  // Builds a context. Fails, with a message naming the file, when a file is
  // missing or unreadable, holds no PEM certificate or key (or an encrypted
  // key), or when the key does not match the certificate; also when only one
  // of cert_file and key_file is given.
  static ContextResult create(const ContextOptions& options);

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The OpenSSL context; owned by this object.
  SSL_CTX* native() const noexcept { return ctx_; }

  // SHA-256 of the leaf certificate (DER), as "AB:CD:…" like
  // `openssl x509 -noout -fingerprint -sha256`.
  const std::string& fingerprint() const noexcept { return fingerprint_; }
  // curl's --pinnedpubkey form of the certificate's public key:
  // "sha256//" + base64(SHA-256(SubjectPublicKeyInfo)).
  const std::string& public_key_pin() const noexcept { return public_key_pin_; }
  // One line for the log: "ephemeral self-signed certificate for localhost,
  // 127.0.0.1, ::1" or "certificate from FILE (CN=…)".
  const std::string& description() const noexcept { return description_; }
  bool session_resumption() const noexcept { return session_resumption_; }

 private:
  Context() = default;
  friend struct ContextCallbacks;

  SSL_CTX* ctx_ = nullptr;
  std::string fingerprint_;
  std::string public_key_pin_;
  std::string description_;
  bool session_resumption_ = true;
  ServerNameHook on_server_name_;
};

// ALPN (RFC 7301 §3.1): a ProtocolNameList is a sequence of length-prefixed,
// non-empty names. Pure functions over the client's bytes, defensive about
// every length: they never read outside `list`.
enum class AlpnMatch { kFound, kAbsent, kMalformed };
// Looks for `protocol` in `list`; on kFound, `*at` (when given) is the offset
// of its length octet.
AlpnMatch find_alpn(std::span<const uint8_t> list, std::string_view protocol,
                    size_t* at = nullptr) noexcept;
// The list for a log line: "http/1.1, spdy/3" (non-printable octets as \xNN,
// each name and the whole line bounded); "(empty)" or "(malformed)" as needed.
std::string describe_alpn(std::span<const uint8_t> list);

namespace detail {

// What the context's callbacks learn about one connection (SSL app data,
// owned by its tls::Session).
struct ConnectionNotes {
  std::string alpn_failure;              // why ALPN refused the client
  std::shared_ptr<Context> sni_context;  // chosen by the SNI hook, kept alive
  int alert_received = -1;               // first alert from the peer (level << 8 | code)
  int alert_sent = -1;                   // first fatal alert we sent

  // TLS 1.3 application traffic secrets (RFC 8446 §7.1) as OpenSSL derives
  // them (its keylog callback), kept only while capture_secrets is set, so
  // that tls::Session can protect records itself after the handshake.
  bool capture_secrets = false;
  uint8_t client_traffic_secret[48] = {};
  uint8_t server_traffic_secret[48] = {};
  size_t client_traffic_secret_size = 0;
  size_t server_traffic_secret_size = 0;
  // Records OpenSSL protected under the server's application secret (its
  // NewSessionTickets): the sequence number the next record must carry.
  uint64_t records_under_server_secret = 0;
};

}  // namespace detail
}  // namespace h2lab::tls
