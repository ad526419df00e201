#include "tls/session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace h2lab::tls {
namespace {

constexpr uint8_t kHandshakeRecord = 22;  // RFC 8446 §5.1 ContentType.handshake
constexpr size_t kRecordHeaderSize = 5;

// OpenSSL reports WANT_WRITE only when a BIO refuses output; ours never
// does, so a retry cannot loop. The bound is a guard, not a schedule.
constexpr int kMaxWantWriteRetries = 4;

// The reply to a plain-HTTP/1 request on the TLS port (as nginx does), so
// that `curl http://…:8443/` explains itself instead of "empty reply".
constexpr std::string_view kHttp1Reply =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 92\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This port speaks HTTP/2 over TLS: use https:// (h2lab serves cleartext only with --tls off)\n";
static_assert(kHttp1Reply.size() - kHttp1Reply.find("\r\n\r\n") - 4 == 92);

constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

detail::ConnectionNotes* notes_of(const SSL* ssl) {
  return static_cast<detail::ConnectionNotes*>(SSL_get_app_data(ssl));
}

// Remembers the first alert each way (the info callback sees every one).
void on_info(const SSL* ssl, int where, int value) {
  detail::ConnectionNotes* notes = notes_of(ssl);
  if (notes == nullptr) return;
  if ((where & SSL_CB_ALERT) == 0) return;
  if ((where & SSL_CB_READ) != 0 && notes->alert_received < 0) notes->alert_received = value;
  if ((where & SSL_CB_WRITE) != 0 && notes->alert_sent < 0 && (value >> 8) == SSL3_AL_FATAL) {
    notes->alert_sent = value;
  }
}

// Counts the records OpenSSL protects under the server's application
// traffic secret (after its keylog callback handed us that secret): its
// NewSessionTickets use sequence numbers our record layer must not reuse
// (RFC 8446 §5.3).
void count_records(int write_p, int, int content_type, const void*, size_t, SSL* ssl, void*) {
  if (write_p == 0 || content_type != SSL3_RT_HEADER) return;
  detail::ConnectionNotes* notes = notes_of(ssl);
  if (notes != nullptr && notes->server_traffic_secret_size != 0) {
    ++notes->records_under_server_secret;
  }
}

// Alerts by which a client says it does not accept our certificate.
bool is_certificate_alert(int code) {
  switch (code) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
      return true;
    default:
      return false;
  }
}

// Up to 40 printable characters of `s`, up to its first line end.
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    if (c == '\r' || c == '\n') break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

bool looks_like_http1(std::string_view s) {
  // A method token (RFC 9110 §9: uppercase in practice) and a space.
  size_t i = 0;
  while (i < s.size() && i < 16 && s[i] >= 'A' && s[i] <= 'Z') ++i;
  return i > 0 && (i == s.size() || s[i] == ' ');
}

}  // namespace

// The BIO between OpenSSL and this session: reads come straight from the
// span read() was given (no copy into a BIO buffer), writes are appended to
// output_ (the one copy of the ciphertext). It never blocks a write, and it
// reports end of input only after on_eof().
struct Session::Bio {
  static BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "h2lab tls");
      BIO_meth_set_write_ex(meth, &Bio::write);
      BIO_meth_set_read_ex(meth, &Bio::read);
      BIO_meth_set_ctrl(meth, &Bio::ctrl);
      BIO_meth_set_create(meth, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return meth;
    }();
    return m;
  }

  static Session& session(BIO* b) { return *static_cast<Session*>(BIO_get_data(b)); }

  static int write(BIO* b, const char* data, size_t n, size_t* written) {
    BIO_clear_retry_flags(b);
    session(b).output_.append_copy(data, n);
    *written = n;
    return 1;
  }

  static int read(BIO* b, char* out, size_t n, size_t* got) {
    BIO_clear_retry_flags(b);
    Session& s = session(b);
    *got = 0;
    if (s.input_.empty()) {
      if (!s.eof_) BIO_set_retry_read(b);
      return 0;
    }
    const size_t take = std::min(n, s.input_.size());
    std::memcpy(out, s.input_.data(), take);
    s.track_records(s.input_.data(), take);
    s.input_ = s.input_.subspan(take);
    *got = take;
    return 1;
  }

  static long ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_EOF:  // OpenSSL 3 reports "unexpected eof" only when this says so
        return session(b).eof_ && session(b).input_.empty() ? 1 : 0;
      default:
        return 0;
    }
  }
};

Session::Session(std::shared_ptr<Context> context, size_t record_size,
                 RecordLayer record_layer) noexcept
    : context_(std::move(context)),
      record_layer_(record_layer),
      record_size_(std::clamp<size_t>(record_size, 512, kMaxRecordPlaintext)) {
  if (!context_) error_ = "TLS: cannot create a connection: no TLS context";
  // The SSL object (about 11 KiB with its state) is made when the first
  // ciphertext arrives (start()): a client that connects and says nothing
  // costs this object only.
}

bool Session::start() noexcept {
  if (ssl_ != nullptr) return true;
  ssl_ = SSL_new(context_->native());
  BIO* bio = ssl_ != nullptr ? BIO_new(Bio::method()) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    error_ = "TLS: cannot create a connection: out of memory";
    return false;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, used both ways
  SSL_set_app_data(ssl_, &notes_);
  SSL_set_info_callback(ssl_, &on_info);
  SSL_set_accept_state(ssl_);
  // OpenSSL splits a larger write into records of at most this much.
  SSL_set_max_send_fragment(ssl_, record_size_);
  if (record_layer_ == RecordLayer::kH2lab) {
    notes_.capture_secrets = true;
    SSL_set_msg_callback(ssl_, &count_records);
  }
  return true;
}

Session::~Session() {
  SSL_free(ssl_);
}

Session::ReadResult Session::read(std::span<const uint8_t> ciphertext,
                                  std::span<uint8_t> plaintext) noexcept {
  if (failed() || peer_closed_ || plaintext.empty()) return {ciphertext.size(), 0};
  if (input_octets_ == 0 && !ciphertext.empty() && ciphertext[0] != kHandshakeRecord) {
    fail_not_tls(ciphertext);
    return {ciphertext.size(), 0};
  }
  if (protection_) return read_protected(ciphertext, plaintext);
  if (ciphertext.empty() && ssl_ == nullptr) return {0, 0};
  if (!start()) return {ciphertext.size(), 0};
  input_ = ciphertext;
  size_t produced = 0;
  int want_write_retries = 0;
  // The handshake on its own first, so that its end is seen before OpenSSL
  // reads any application record: that is where the record layer can
  // change hands.
  while (!handshake_done_ && !failed()) {
    ERR_clear_error();
    if (SSL_do_handshake(ssl_) == 1) {
      on_handshake_done();
      break;
    }
    const int error = SSL_get_error(ssl_, 0);
    if (error == SSL_ERROR_WANT_WRITE && ++want_write_retries <= kMaxWantWriteRetries) continue;
    if (error != SSL_ERROR_WANT_READ) fail(error);
    break;
  }
  if (protection_) {
    const std::span<const uint8_t> rest = input_;
    input_ = {};
    const ReadResult r = read_protected(rest, plaintext);
    return {ciphertext.size() - rest.size() + r.consumed, r.produced};
  }
  while (handshake_done_ && !failed() && produced < plaintext.size()) {
    ERR_clear_error();
    size_t n = 0;
    if (SSL_read_ex(ssl_, plaintext.data() + produced, plaintext.size() - produced, &n) == 1) {
      produced += n;
      // One record per call: go on while input or buffered data remain (a
      // call that would only say WANT_READ is skipped).
      if (input_.empty() && SSL_has_pending(ssl_) == 0) break;
      continue;
    }
    const int error = SSL_get_error(ssl_, 0);
    if (error == SSL_ERROR_WANT_READ) break;  // every input octet is inside OpenSSL now
    if (error == SSL_ERROR_WANT_WRITE && ++want_write_retries <= kMaxWantWriteRetries) continue;
    if (error == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;  // close_notify (RFC 8446 §6.1); what follows it is ignored
      break;
    }
    fail(error);
    break;
  }
  const size_t left = failed() || peer_closed_ ? 0 : input_.size();
  input_ = {};
  return {ciphertext.size() - left, produced};
}

void Session::on_handshake_done() noexcept {
  handshake_done_ = true;
  version_ = SSL_get_version(ssl_);
  const char* cipher = SSL_get_cipher_name(ssl_);
  cipher_ = cipher != nullptr ? cipher : "";
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  if (p != nullptr) std::memcpy(alpn_, p, std::min<size_t>(len, sizeof alpn_ - 1));
  resumed_ = SSL_session_reused(ssl_) == 1;
  if (record_layer_ == RecordLayer::kH2lab) hand_over();
}

// Takes the record layer from OpenSSL when a TLS 1.3 handshake has ended
// with nothing of the peer's read beyond its Finished (OpenSSL reads whole
// records only, and no application record can precede that Finished, so
// the client's sequence number is 0) and the secrets were seen.
void Session::hand_over() noexcept {
  detail::ConnectionNotes& n = notes_;
  if (SSL_version(ssl_) == TLS1_3_VERSION && SSL_has_pending(ssl_) == 0 &&
      n.client_traffic_secret_size != 0 && n.server_traffic_secret_size != 0) {
    RecordProtection::Keys keys;
    keys.cipher_suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl_));
    keys.client_secret = {n.client_traffic_secret, n.client_traffic_secret_size};
    keys.server_secret = {n.server_traffic_secret, n.server_traffic_secret_size};
    keys.client_sequence = 0;
    keys.server_sequence = n.records_under_server_secret;
    std::string why;
    protection_ = RecordProtection::create_server(keys, output_, &why);
    if (protection_) {
      // As if shut down cleanly, so that freeing it keeps the session
      // resumable (OpenSSL drops a session whose connection just vanished).
      SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
  }
  n.capture_secrets = false;
  OPENSSL_cleanse(n.client_traffic_secret, sizeof n.client_traffic_secret);
  OPENSSL_cleanse(n.server_traffic_secret, sizeof n.server_traffic_secret);
  n.client_traffic_secret_size = n.server_traffic_secret_size = 0;
}

Session::ReadResult Session::read_protected(std::span<const uint8_t> ciphertext,
                                            std::span<uint8_t> plaintext) noexcept {
  const RecordProtection::ReadResult r = protection_->read(ciphertext, plaintext);
  track_records(ciphertext.data(), r.consumed);
  if (protection_->peer_closed()) peer_closed_ = true;
  if (protection_->failed() && error_.empty()) error_ = protection_->error();
  return {r.consumed, r.produced};
}

void Session::on_eof() noexcept {
  if (eof_) return;
  eof_ = true;
  if (failed() || peer_closed_ || closed_) return;  // after our close_notify, EOF is the answer
  // Quiet ends: a peer that sent nothing (a port probe), and one that stops
  // between records after the handshake without close_notify, as browsers
  // and curl do — HTTP/2 frames mark their own ends (RFC 9110 §9.8).
  if (input_octets_ == 0 || (handshake_done_ && header_have_ == 0)) return;
  char why[160];
  if (header_have_ != 0) {
    const size_t length = header_have_ == kRecordHeaderSize
                              ? kRecordHeaderSize + (record_header_[3] << 8 | record_header_[4])
                              : 0;
    const size_t have = length ? length - body_left_ : header_have_;
    if (length != 0) {
      std::snprintf(why, sizeof why,
                    "TLS: the peer vanished mid-record (%zu of %zu octets of a record received)",
                    have, length);
    } else {
      std::snprintf(why, sizeof why,
                    "TLS: the peer vanished mid-record (%zu octets of a record header received)",
                    have);
    }
  } else {
    std::snprintf(why, sizeof why, "TLS: the peer closed the connection during the handshake");
  }
  error_ = why;
}

size_t Session::write(std::span<const iovec> plaintext) noexcept {
  if (!handshake_done_ || closed_ || failed()) return 0;
  if (protection_) {
    if (!protection_->write(plaintext, record_size_)) {
      error_ = protection_->error();
      return 0;
    }
    size_t taken = 0;
    for (const iovec& v : plaintext) taken += v.iov_len;
    return taken;
  }
  size_t taken = 0;
  for (size_t i = 0; i < plaintext.size(); ++i) {
    const auto* p = static_cast<const uint8_t*>(plaintext[i].iov_base);
    size_t n = plaintext[i].iov_len;
    const bool last = i + 1 == plaintext.size();
    while (n != 0) {
      size_t take;
      if (staged_ == 0 && (last || n >= record_size_)) {
        // In place: whole records, or everything when nothing follows.
        take = last ? n : n - n % record_size_;
        if (!encrypt(p, take)) return taken;
      } else {
        if (!staging_) staging_ = std::make_unique<uint8_t[]>(record_size_);
        take = std::min(n, record_size_ - staged_);
        std::memcpy(staging_.get() + staged_, p, take);
        staged_ += take;
        if (staged_ == record_size_) {
          staged_ = 0;
          if (!encrypt(staging_.get(), record_size_)) return taken;
        }
      }
      p += take;
      n -= take;
      taken += take;
    }
  }
  if (staged_ != 0) {
    const size_t n = staged_;
    staged_ = 0;
    encrypt(staging_.get(), n);
  }
  return taken;
}

bool Session::encrypt(const uint8_t* data, size_t n) noexcept {
  ERR_clear_error();
  size_t written = 0;
  // Partial writes are off and the BIO never refuses: all or a failure.
  if (SSL_write_ex(ssl_, data, n, &written) == 1) return true;
  fail(SSL_get_error(ssl_, 0));
  return false;
}

void Session::close() noexcept {
  if (closed_) return;
  closed_ = true;
  if (!handshake_done_ || failed()) return;
  if (protection_) {
    protection_->send_alert(0);  // close_notify
    return;
  }
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues close_notify; the peer's is not awaited
  ERR_clear_error();
}

void Session::fail(int ssl_error) noexcept {
  if (failed()) return;
  const char* stage = handshake_done_ ? "TLS error: " : "TLS handshake failed: ";
  std::string why;
  const int received = notes_.alert_received;
  if (received >= 0 && (received & 0xff) != SSL_AD_CLOSE_NOTIFY) {
    why = std::string("TLS: the peer sent alert '") + SSL_alert_desc_string_long(received) + "'" +
          (handshake_done_ ? "" : " during the handshake");
    if (is_certificate_alert(received & 0xff)) {
      why += ": it does not accept our certificate (self-signed: use curl -k, or --cert/--key)";
    }
  } else if (!notes_.alpn_failure.empty()) {
    why = stage + notes_.alpn_failure;
  } else {
    const unsigned long e = ERR_peek_error();
    const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
    if (reason == nullptr) {
      reason = ssl_error == SSL_ERROR_SYSCALL ? "unexpected end of input" : "unknown error";
    }
    why = stage + std::string(reason);
  }
  if (notes_.alert_sent >= 0) {
    why += std::string(" (sent alert '") + SSL_alert_desc_string_long(notes_.alert_sent) + "')";
  }
  error_ = std::move(why);
  ERR_clear_error();
}

void Session::fail_not_tls(std::span<const uint8_t> first) noexcept {
  const std::string_view s(reinterpret_cast<const char*>(first.data()), first.size());
  if (kClientPreface.starts_with(s.substr(0, std::min(s.size(), kClientPreface.size())))) {
    error_ =
        "not TLS: a cleartext HTTP/2 preface (h2c) on the TLS port; use https://, or run "
        "the server with --tls off";
  } else if (looks_like_http1(s)) {
    error_ = "not TLS: a plain HTTP/1 request (\"" + excerpt(s) +
             "\") on the TLS port; use https://, or run the server with --tls off";
    output_.append_ref(kHttp1Reply.data(), kHttp1Reply.size());
  } else {
    char why[120];
    std::snprintf(why, sizeof why,
                  "not TLS: garbage instead of a ClientHello (first octet 0x%02x, want 0x16)",
                  first[0]);
    error_ = why;
  }
}

void Session::track_records(const uint8_t* p, size_t n) noexcept {
  input_octets_ += n;
  while (n != 0) {
    size_t take;
    if (header_have_ < kRecordHeaderSize) {
      take = std::min(n, kRecordHeaderSize - header_have_);
      std::memcpy(record_header_ + header_have_, p, take);
      header_have_ += take;
      if (header_have_ == kRecordHeaderSize) {
        body_left_ = static_cast<size_t>(record_header_[3] << 8 | record_header_[4]);
        if (body_left_ == 0) header_have_ = 0;
      }
    } else {
      take = std::min(n, body_left_);
      body_left_ -= take;
      if (body_left_ == 0) header_have_ = 0;
    }
    p += take;
    n -= take;
  }
}

void Session::trim() noexcept {
  if (staged_ == 0) staging_.reset();
  if (output_.empty()) output_.release();
  if (ssl_ != nullptr) SSL_free_buffers(ssl_);
  if (protection_) protection_->trim();  // OpenSSL's record buffers, when not in use
}

}  // namespace h2lab::tls
