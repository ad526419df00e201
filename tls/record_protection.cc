#include "tls/record_protection.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

namespace h2lab::tls {
namespace {

// RFC 8446 §5.1 ContentType.
constexpr uint8_t kAlert = 21;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kApplicationData = 23;
// §4: HandshakeType.key_update; §4.6.3 KeyUpdateRequest.
constexpr uint8_t kKeyUpdate = 24;
constexpr uint8_t kUpdateNotRequested = 0;
constexpr uint8_t kUpdateRequested = 1;
// §6 AlertDescription.
constexpr uint8_t kCloseNotify = 0;
constexpr uint8_t kUnexpectedMessage = 10;
constexpr uint8_t kBadRecordMac = 20;
constexpr uint8_t kRecordOverflow = 22;
constexpr uint8_t kIllegalParameter = 47;
constexpr uint8_t kDecodeError = 50;
constexpr uint8_t kUserCanceled = 90;

constexpr size_t kHeaderSize = 5;
constexpr size_t kIvSize = 12;       // §5.3: iv_length, 12 for all three suites
constexpr size_t kMaxSecretSize = 48;  // SHA-384
constexpr size_t kMaxRecordSize =
    kHeaderSize + RecordProtection::kMaxPlaintext + RecordProtection::kMaxExpansion;

size_t record_length(const uint8_t* header) { return size_t{header[3]} << 8 | header[4]; }

struct Suite {
  uint16_t id;
  const char* cipher_name;  // OpenSSL's fetch name
  size_t key_size;
  bool sha384;
};
constexpr Suite kSuites[] = {
    {0x1301, "AES-128-GCM", 16, false},        // TLS_AES_128_GCM_SHA256
    {0x1302, "AES-256-GCM", 32, true},         // TLS_AES_256_GCM_SHA384
    {0x1303, "ChaCha20-Poly1305", 32, false},  // TLS_CHACHA20_POLY1305_SHA256
};

// Fetched once per process (an implicit fetch at every record would look
// the algorithm up again each time); never freed.
const EVP_CIPHER* fetched_cipher(const Suite& suite) {
  static const EVP_CIPHER* const ciphers[] = {
      EVP_CIPHER_fetch(nullptr, kSuites[0].cipher_name, nullptr),
      EVP_CIPHER_fetch(nullptr, kSuites[1].cipher_name, nullptr),
      EVP_CIPHER_fetch(nullptr, kSuites[2].cipher_name, nullptr),
  };
  return ciphers[&suite - kSuites];
}

// HKDF-Expand-Label(secret, label, "", length) (§7.1) for length up to the
// hash's size: HKDF-Expand (RFC 5869 §2.3) is then one HMAC block.
bool expand_label(const EVP_MD* md, std::span<const uint8_t> secret, const char* label,
                  uint8_t* out, size_t length) {
  uint8_t info[2 + 1 + 6 + 32 + 1 + 1];
  const size_t label_size = std::strlen(label);
  size_t n = 0;
  info[n++] = static_cast<uint8_t>(length >> 8);
  info[n++] = static_cast<uint8_t>(length);
  info[n++] = static_cast<uint8_t>(6 + label_size);
  std::memcpy(info + n, "tls13 ", 6);
  n += 6;
  std::memcpy(info + n, label, label_size);
  n += label_size;
  info[n++] = 0;     // empty context
  info[n++] = 0x01;  // T(1)
  uint8_t block[EVP_MAX_MD_SIZE];
  unsigned block_size = 0;
  if (HMAC(md, secret.data(), static_cast<int>(secret.size()), info, n, block, &block_size) ==
          nullptr ||
      block_size < length) {
    return false;
  }
  std::memcpy(out, block, length);
  OPENSSL_cleanse(block, sizeof block);
  return true;
}

}  // namespace

// The plaintext of write(), read once, in order, across its iovecs.
class RecordProtection::Pieces {
 public:
  explicit Pieces(std::span<const iovec> v) : v_(v) {}
  // The next run of at most `max` octets (empty at the end).
  std::span<const uint8_t> next(size_t max) {
    while (i_ < v_.size() && offset_ == v_[i_].iov_len) {
      ++i_;
      offset_ = 0;
    }
    if (i_ == v_.size()) return {};
    const size_t n = std::min(max, v_[i_].iov_len - offset_);
    const auto* p = static_cast<const uint8_t*>(v_[i_].iov_base) + offset_;
    offset_ += n;
    return {p, n};
  }

 private:
  std::span<const iovec> v_;
  size_t i_ = 0;
  size_t offset_ = 0;
};

// One direction's traffic keys (§7.3) and its sequence number (§5.3).
struct RecordProtection::Direction {
  const Suite* suite = nullptr;
  bool encrypt = false;
  EVP_CIPHER_CTX* ctx = nullptr;
  uint8_t secret[kMaxSecretSize] = {};
  size_t secret_size = 0;
  uint8_t iv[kIvSize] = {};
  uint64_t sequence = 0;

  ~Direction() {
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(iv, sizeof iv);
  }

  const EVP_MD* md() const { return suite->sha384 ? EVP_sha384() : EVP_sha256(); }

  // Keys from `s` (secret_size octets), sequence number from 0.
  bool install(const uint8_t* s) {
    if (s != secret) std::memcpy(secret, s, secret_size);
    uint8_t key[32];
    const std::span<const uint8_t> current(secret, secret_size);
    const bool ok = expand_label(md(), current, "key", key, suite->key_size) &&
                    expand_label(md(), current, "iv", iv, kIvSize) &&
                    EVP_CipherInit_ex2(ctx, fetched_cipher(*suite), key, nullptr, encrypt ? 1 : 0,
                                       nullptr) == 1;
    OPENSSL_cleanse(key, sizeof key);
    sequence = 0;
    return ok;
  }

  // §7.2: application_traffic_secret_N+1.
  bool update() {
    uint8_t next[kMaxSecretSize];
    const bool ok =
        expand_label(md(), {secret, secret_size}, "traffic upd", next, secret_size);
    if (ok) std::memcpy(secret, next, secret_size);
    OPENSSL_cleanse(next, sizeof next);
    return ok && install(secret);
  }

  // The nonce of the next record (§5.3); false when the sequence number
  // would wrap (§5.5: a key must be changed before that).
  bool begin_record() {
    if (sequence == UINT64_MAX) return false;
    uint8_t nonce[kIvSize];
    std::memcpy(nonce, iv, kIvSize);
    for (int i = 0; i < 8; ++i) nonce[kIvSize - 1 - i] ^= static_cast<uint8_t>(sequence >> (8 * i));
    ++sequence;
    return EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce, encrypt ? 1 : 0, nullptr) == 1;
  }
};

RecordProtection::RecordProtection(proto::OutputQueue& output) : output_(output) {}

RecordProtection::~RecordProtection() = default;

std::unique_ptr<RecordProtection> RecordProtection::create_server(const Keys& keys,
                                                                  proto::OutputQueue& output,
                                                                  std::string* error) {
  const Suite* suite = nullptr;
  for (const Suite& s : kSuites) {
    if (s.id == keys.cipher_suite) suite = &s;
  }
  if (suite == nullptr) {
    *error = "TLS: no record protection of our own for cipher suite " +
             std::to_string(keys.cipher_suite);
    return nullptr;
  }
  const size_t secret_size = suite->sha384 ? 48 : 32;
  if (keys.client_secret.size() != secret_size || keys.server_secret.size() != secret_size) {
    *error = "TLS: traffic secrets of the wrong size for the cipher suite";
    return nullptr;
  }
  if (fetched_cipher(*suite) == nullptr) {
    *error = std::string("TLS: OpenSSL has no ") + suite->cipher_name;
    return nullptr;
  }
  std::unique_ptr<RecordProtection> p(new RecordProtection(output));
  p->read_ = std::make_unique<Direction>();
  p->write_ = std::make_unique<Direction>();
  const struct {
    Direction* d;
    bool encrypt;
    std::span<const uint8_t> secret;
    uint64_t sequence;
  } sides[] = {{p->read_.get(), false, keys.client_secret, keys.client_sequence},
               {p->write_.get(), true, keys.server_secret, keys.server_sequence}};
  for (const auto& side : sides) {
    side.d->suite = suite;
    side.d->encrypt = side.encrypt;
    side.d->secret_size = secret_size;
    side.d->ctx = EVP_CIPHER_CTX_new();
    if (side.d->ctx == nullptr || !side.d->install(side.secret.data())) {
      *error = "TLS: cannot set up the traffic keys";
      return nullptr;
    }
    side.d->sequence = side.sequence;
  }
  return p;
}

RecordProtection::ReadResult RecordProtection::read(std::span<const uint8_t> ciphertext,
                                                    std::span<uint8_t> plaintext) noexcept {
  size_t consumed = 0;
  size_t produced = 0;
  while (!failed() && !peer_closed_) {
    if (unread_begin_ < unread_end_) {
      const size_t n = std::min(unread_end_ - unread_begin_, plaintext.size() - produced);
      std::memcpy(plaintext.data() + produced, unread_.get() + unread_begin_, n);
      unread_begin_ += n;
      produced += n;
      if (unread_begin_ < unread_end_) break;  // the caller's buffer is full
    }
    // The next whole record: in place in the input, or assembled in the carry.
    std::span<const uint8_t> in = ciphertext.subspan(consumed);
    std::span<const uint8_t> record;
    const bool in_place = carried_ == 0 && in.size() >= kHeaderSize &&
                          in.size() >= kHeaderSize + record_length(in.data());
    if (in_place) {
      if (!header_acceptable(in.data())) break;
      record = in.first(kHeaderSize + record_length(in.data()));
    } else {
      if (in.empty() && carried_ == 0) break;
      if (!carry_) carry_ = std::make_unique_for_overwrite<uint8_t[]>(kMaxRecordSize);
      size_t used = 0;
      if (carried_ < kHeaderSize) {
        used = std::min(kHeaderSize - carried_, in.size());
        std::memcpy(carry_.get() + carried_, in.data(), used);
        carried_ += used;
      }
      if (carried_ >= kHeaderSize) {
        // Checked before the body is kept, so no more than one legal record
        // is ever held.
        if (!header_acceptable(carry_.get())) break;
        const size_t want = kHeaderSize + record_length(carry_.get()) - carried_;
        const size_t body = std::min(want, in.size() - used);
        std::memcpy(carry_.get() + carried_, in.data() + used, body);
        carried_ += body;
        used += body;
      }
      consumed += used;
      if (carried_ < kHeaderSize || carried_ < kHeaderSize + record_length(carry_.get())) break;
      record = {carry_.get(), carried_};
    }
    // Where its plaintext goes: the caller's buffer when it fits there.
    const size_t inner_max = record_length(record.data()) - kTagSize;
    const std::span<uint8_t> space = plaintext.subspan(produced);
    const bool into_caller = space.size() >= inner_max;
    if (!into_caller && produced != 0) break;  // the record waits for the next call
    if (!into_caller && !unread_) unread_ = std::make_unique_for_overwrite<uint8_t[]>(kMaxRecordSize);
    uint8_t* target = into_caller ? space.data() : unread_.get();
    size_t content_size = 0;
    if (!open_record(record, {target, inner_max}, &content_size)) break;
    if (in_place) {
      consumed += record.size();
    } else {
      carried_ = 0;
    }
    const uint8_t type = target[content_size];
    const std::span<const uint8_t> content(target, content_size);
    if (type == kApplicationData) {
      if (into_caller) {
        produced += content_size;
      } else {
        unread_begin_ = 0;
        unread_end_ = content_size;
      }
    } else if (type == kHandshake) {
      if (!on_handshake(content)) break;
    } else if (type == kAlert) {
      if (!on_alert(content)) break;
    } else {
      fail(kUnexpectedMessage,
           "TLS error: a protected record of type " + std::to_string(type) + " after the handshake");
      break;
    }
  }
  if (failed() || peer_closed_) consumed = ciphertext.size();
  return {consumed, produced};
}

// A record header after the handshake (§5.1–5.2): application_data, no
// longer than 2^14 + 256, long enough for a tag and a content type.
bool RecordProtection::header_acceptable(const uint8_t* header) {
  if (header[0] != kApplicationData) {
    fail(kUnexpectedMessage, "TLS error: a record of type " + std::to_string(header[0]) +
                                 " after the handshake (only application_data is protected)");
    return false;
  }
  if (record_length(header) > kMaxPlaintext + kMaxExpansion) {
    fail(kRecordOverflow, "TLS error: record overflow (a record longer than 2^14 + 256)");
    return false;
  }
  if (record_length(header) <= kTagSize) {
    fail(kBadRecordMac, "TLS error: bad record mac (a record too short to be protected)");
    return false;
  }
  return true;
}

// Opens one whole record into `out` (room for its inner plaintext); sets
// `*content_size` to the content's length, with the content type at
// out[*content_size] (§5.2, §5.4).
bool RecordProtection::open_record(std::span<const uint8_t> record, std::span<uint8_t> out,
                                   size_t* content_size) {
  Direction& d = *read_;
  const uint8_t* body = record.data() + kHeaderSize;
  const size_t inner = out.size();
  int n = 0;
  int final_n = 0;
  const bool opened =
      d.begin_record() && EVP_CipherUpdate(d.ctx, nullptr, &n, record.data(), kHeaderSize) == 1 &&
      EVP_CipherUpdate(d.ctx, out.data(), &n, body, static_cast<int>(inner)) == 1 &&
      static_cast<size_t>(n) == inner &&
      EVP_CIPHER_CTX_ctrl(d.ctx, EVP_CTRL_AEAD_SET_TAG, kTagSize,
                          const_cast<uint8_t*>(body + inner)) == 1 &&
      EVP_CipherFinal_ex(d.ctx, out.data() + inner, &final_n) == 1;
  if (!opened) {
    fail(kBadRecordMac, "TLS error: bad record mac (a record failed authentication)");
    return false;
  }
  size_t i = inner;
  while (i != 0 && out[i - 1] == 0) --i;  // padding (§5.4)
  if (i == 0) {
    fail(kUnexpectedMessage, "TLS error: a protected record without a content type");
    return false;
  }
  *content_size = i - 1;
  if (*content_size > kMaxPlaintext) {
    fail(kRecordOverflow, "TLS error: record overflow (more than 2^14 octets of plaintext)");
    return false;
  }
  return true;
}

// Post-handshake messages (§4.6): only KeyUpdate can come to a server that
// asked for no client certificate. A message may span records but must not
// span a key change (§5.1), so a KeyUpdate ends its record.
bool RecordProtection::on_handshake(std::span<const uint8_t> content) {
  if (content.empty()) {
    fail(kUnexpectedMessage, "TLS error: an empty handshake record");  // §5.1
    return false;
  }
  for (size_t i = 0; i < content.size();) {
    handshake_[handshake_size_++] = content[i++];
    if (handshake_size_ == 1 && handshake_[0] != kKeyUpdate) {
      fail(kUnexpectedMessage, "TLS error: handshake message type " +
                                   std::to_string(handshake_[0]) + " after the handshake");
      return false;
    }
    if (handshake_size_ == 4 && (handshake_[1] != 0 || handshake_[2] != 0 || handshake_[3] != 1)) {
      fail(kDecodeError, "TLS error: a KeyUpdate whose length is not 1");
      return false;
    }
    if (handshake_size_ < 5) continue;
    handshake_size_ = 0;
    const uint8_t request = handshake_[4];
    if (request != kUpdateNotRequested && request != kUpdateRequested) {
      fail(kIllegalParameter, "TLS error: a KeyUpdate with request_update " +
                                  std::to_string(request));
      return false;
    }
    if (i != content.size()) {
      fail(kUnexpectedMessage, "TLS error: data after a KeyUpdate in the same record");
      return false;
    }
    if (!read_->update()) {
      fail(0, "TLS error: cannot derive the peer's next traffic key");
      return false;
    }
    if (request == kUpdateRequested) {
      // §4.6.3: our own KeyUpdate, under the current key, before any more data.
      static constexpr uint8_t kOurs[] = {kKeyUpdate, 0, 0, 1, kUpdateNotRequested};
      const iovec v{const_cast<uint8_t*>(kOurs), sizeof kOurs};
      Pieces pieces({&v, 1});
      if (!seal_record(kHandshake, pieces, sizeof kOurs) || !write_->update()) {
        fail(0, "TLS error: cannot update our traffic key");
        return false;
      }
    }
  }
  return true;
}

bool RecordProtection::on_alert(std::span<const uint8_t> content) {
  if (content.size() != 2) {
    fail(kDecodeError, "TLS error: an alert record of " + std::to_string(content.size()) +
                           " octets");
    return false;
  }
  const uint8_t description = content[1];
  if (description == kCloseNotify) {
    peer_closed_ = true;  // §6.1: what follows is ignored
    return false;
  }
  if (description == kUserCanceled) return true;  // §6.1: close_notify should follow
  // §6: every other alert ends the connection; none is sent back.
  error_ = std::string("TLS: the peer sent alert '") +
           SSL_alert_desc_string_long(content[0] << 8 | description) + "'";
  return false;
}

bool RecordProtection::write(std::span<const iovec> plaintext, size_t record_size) noexcept {
  if (failed()) return false;
  size_t total = 0;
  for (const iovec& v : plaintext) total += v.iov_len;
  Pieces pieces(plaintext);
  while (total != 0) {
    const size_t n = std::min(total, record_size);
    if (!seal_record(kApplicationData, pieces, n)) {
      fail(0, "TLS error: cannot encrypt a record");
      return false;
    }
    total -= n;
  }
  return true;
}

// One record of `n` plaintext octets from `pieces`, encrypted straight into
// the output queue's arena: header, ciphertext, then the tag.
bool RecordProtection::seal_record(uint8_t content_type, Pieces& pieces, size_t n) {
  Direction& d = *write_;
  const size_t length = n + 1 + kTagSize;
  const uint8_t header[kHeaderSize] = {kApplicationData, 0x03, 0x03,
                                       static_cast<uint8_t>(length >> 8),
                                       static_cast<uint8_t>(length)};
  int out_n = 0;
  if (!d.begin_record() || EVP_CipherUpdate(d.ctx, nullptr, &out_n, header, kHeaderSize) != 1) {
    return false;
  }
  output_.append_copy(header, kHeaderSize);
  auto seal = [&](const uint8_t* p, size_t size) {
    while (size != 0) {
      const std::span<uint8_t> dst = output_.append_up_to(size);
      if (EVP_CipherUpdate(d.ctx, dst.data(), &out_n, p, static_cast<int>(dst.size())) != 1 ||
          static_cast<size_t>(out_n) != dst.size()) {
        return false;
      }
      p += dst.size();
      size -= dst.size();
    }
    return true;
  };
  for (size_t left = n; left != 0;) {
    const std::span<const uint8_t> piece = pieces.next(left);
    if (!seal(piece.data(), piece.size())) return false;
    left -= piece.size();
  }
  uint8_t tag[kTagSize];
  if (!seal(&content_type, 1) || EVP_CipherFinal_ex(d.ctx, tag, &out_n) != 1 ||
      EVP_CIPHER_CTX_ctrl(d.ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, tag) != 1) {
    return false;
  }
  output_.append_copy(tag, kTagSize);
  return true;
}

void RecordProtection::send_alert(uint8_t description) noexcept {
  // §6: close_notify is a warning; every error alert is fatal.
  const uint8_t alert[2] = {static_cast<uint8_t>(description == kCloseNotify ? 1 : 2),
                            description};
  const iovec v{const_cast<uint8_t*>(alert), sizeof alert};
  Pieces pieces({&v, 1});
  seal_record(kAlert, pieces, sizeof alert);
}

void RecordProtection::fail(uint8_t alert, std::string why) noexcept {
  if (failed()) return;
  if (alert != 0) {
    send_alert(alert);
    why += std::string(" (sent alert '") + SSL_alert_desc_string_long(2 << 8 | alert) + "')";
  }
  error_ = std::move(why);
}

void RecordProtection::trim() noexcept {
  if (carried_ == 0) carry_.reset();
  if (unread_begin_ == unread_end_) unread_.reset();
}

}  // namespace h2lab::tls
