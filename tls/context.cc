#include "tls/context.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace h2lab::tls {
namespace {

constexpr std::string_view kH2 = "h2";

// RFC 9113 §9.2.2: TLS 1.2 with ephemeral key exchange and AEAD only —
// ECDHE with AES-GCM or ChaCha20-Poly1305 (TLS 1.3 suites are all AEAD and
// ephemeral).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// TLS 1.3 suites in the server's order: AES-128-GCM first (the fastest with
// AES-NI), ChaCha20 when the client prefers it (SSL_OP_PRIORITIZE_CHACHA).
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";
// §9.2.1: at least 224-bit ECDHE groups.
constexpr const char* kGroups = "X25519:P-256:P-384";

constexpr unsigned char kSessionIdContext[] = "h2lab";
constexpr long kEphemeralDays = 30;

// The last OpenSSL error of the thread, for messages, and clears the queue.
std::string openssl_error() {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return "no detail from OpenSSL";
  const char* reason = ERR_reason_error_string(last);
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const noexcept { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

// Reads a whole file; on failure returns false with the reason (errno).
bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = std::strerror(errno);
    return false;
  }
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int saved = errno;
  std::fclose(f);
  if (failed) {
    error = std::strerror(saved);
    return false;
  }
  return true;
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Refuses to prompt for a passphrase: an encrypted key fails to load.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

std::string hex_colons(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i != 0) out += ':';
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

std::string fingerprint_of(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
  return hex_colons(md, len);
}

std::string public_key_pin_of(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
  if (len <= 0) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(der, static_cast<size_t>(len), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int b64_len = EVP_EncodeBlock(b64, md, static_cast<int>(md_len));
  return "sha256//" + std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(b64_len));
}

std::string common_name_of(X509* cert) {
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) < 0) {
    return "";
  }
  return cn;
}

bool add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool is_ip_address(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// An EC P-256 key and a self-signed X.509 v3 certificate for `names`, valid
// from an hour ago (clock skew) for kEphemeralDays.
bool make_self_signed(const std::vector<std::string>& names, PkeyPtr& key, X509Ptr& cert,
                      std::string& error) {
  if (names.empty() || names.front().empty()) {
    error = "an ephemeral certificate needs at least one name";
    return false;
  }
  key.reset(EVP_EC_gen("P-256"));
  cert.reset(X509_new());
  if (!key || !cert) {
    error = "cannot generate an EC P-256 key: " + openssl_error();
    return false;
  }
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // a positive serial number (RFC 5280 §4.1.2.2)
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  const bool serial_ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);

  std::string san;
  for (const std::string& n : names) {
    if (!san.empty()) san += ',';
    san += (is_ip_address(n) ? "IP:" : "DNS:") + n;
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const auto* cn = reinterpret_cast<const unsigned char*>(names.front().c_str());
  const auto* org = reinterpret_cast<const unsigned char*>("h2lab ephemeral");
  const bool ok =
      serial_ok && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), kEphemeralDays * 24 * 3600) != nullptr &&
      X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, org, -1, -1, 0) == 1 &&
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, cn, -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert.get(), subject) == 1 &&
      X509_set_pubkey(cert.get(), key.get()) == 1 &&
      add_extension(cert.get(), NID_subject_alt_name, san) &&
      add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") &&
      add_extension(cert.get(), NID_key_usage, "critical,digitalSignature") &&
      add_extension(cert.get(), NID_ext_key_usage, "serverAuth") &&
      add_extension(cert.get(), NID_subject_key_identifier, "hash") &&
      X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) error = "cannot build the ephemeral certificate: " + openssl_error();
  return ok;
}

// Loads cert_file (leaf, then chain) and key_file into `ctx`, checking each
// step so that the message names what is wrong.
bool load_pem_files(SSL_CTX* ctx, const ContextOptions& o, X509Ptr& leaf, std::string& error) {
  std::string cert_pem, key_pem, why;
  if (!read_file(o.cert_file, cert_pem, why)) {
    error = "cannot read certificate file '" + o.cert_file + "': " + why;
    return false;
  }
  if (!read_file(o.key_file, key_pem, why)) {
    error = "cannot read key file '" + o.key_file + "': " + why;
    return false;
  }
  BioPtr cert_bio = memory_bio(cert_pem);
  leaf.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
  if (!leaf) {
    error =
        "certificate file '" + o.cert_file + "' holds no PEM certificate (" + openssl_error() + ")";
    return false;
  }
  std::vector<X509Ptr> chain;
  while (X509* extra = PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr)) {
    chain.emplace_back(extra);
  }
  ERR_clear_error();  // the end of the file ends the loop with a "no start line" error

  BioPtr key_bio = memory_bio(key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    error = "key file '" + o.key_file + "' holds no readable PEM private key (" + openssl_error() +
            "; encrypted keys are not supported)";
    return false;
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    error = "key file '" + o.key_file + "' does not match the certificate in '" + o.cert_file + "'";
    return false;
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    error = "cannot use the certificate in '" + o.cert_file + "': " + openssl_error();
    return false;
  }
  for (X509Ptr& c : chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
      error = "cannot use the chain in '" + o.cert_file + "': " + openssl_error();
      return false;
    }
  }
  return true;
}

detail::ConnectionNotes* notes_of(const SSL* ssl) {
  return static_cast<detail::ConnectionNotes*>(SSL_get_app_data(ssl));
}

}  // namespace

// The OpenSSL callbacks; a struct so that they may read Context's privates.
struct ContextCallbacks {
  // OpenSSL's keylog line for each secret it derives ("LABEL <client
  // random> <secret>", hex): the two application traffic secrets are kept
  // for a session that will protect records itself (ConnectionNotes).
  static void on_keylog(const SSL* ssl, const char* line) {
    detail::ConnectionNotes* notes = notes_of(ssl);
    if (notes == nullptr || !notes->capture_secrets) return;
    const std::string_view s(line);
    uint8_t* secret = nullptr;
    size_t* size = nullptr;
    if (s.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) {
      secret = notes->client_traffic_secret;
      size = &notes->client_traffic_secret_size;
    } else if (s.starts_with("SERVER_TRAFFIC_SECRET_0 ")) {
      secret = notes->server_traffic_secret;
      size = &notes->server_traffic_secret_size;
      notes->records_under_server_secret = 0;
    } else {
      return;
    }
    const size_t at = s.rfind(' ') + 1;
    const std::string_view hex = s.substr(at);
    *size = 0;
    if (hex.size() % 2 != 0 || hex.size() / 2 > sizeof notes->client_traffic_secret) return;
    auto nibble = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                 : -1;
    };
    for (size_t i = 0; i < hex.size(); i += 2) {
      const int hi = nibble(hex[i]);
      const int lo = nibble(hex[i + 1]);
      if (hi < 0 || lo < 0) return;
      secret[i / 2] = static_cast<uint8_t>(hi << 4 | lo);
    }
    *size = hex.size() / 2;
  }

  // Runs first on every ClientHello: refuses a client that does not offer
  // h2, naming what it offered (the ALPN callback below would not even be
  // called for a client without the extension).
  static int on_client_hello(SSL* ssl, int* alert, void*) {
    detail::ConnectionNotes* notes = notes_of(ssl);
    const unsigned char* ext = nullptr;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                  &len) != 1) {
      if (notes) notes->alpn_failure = "client offered no ALPN; h2 over TLS needs ALPN \"h2\"";
      *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
      return SSL_CLIENT_HELLO_ERROR;
    }
    // extension_data is the ProtocolNameList behind its 2-octet length.
    const bool framed = len >= 2 && (static_cast<size_t>(ext[0]) << 8 | ext[1]) == len - 2;
    const std::span<const uint8_t> list =
        framed ? std::span(ext + 2, len - 2) : std::span<const uint8_t>();
    const AlpnMatch m = framed ? find_alpn(list, kH2) : AlpnMatch::kMalformed;
    if (m == AlpnMatch::kFound) return SSL_CLIENT_HELLO_SUCCESS;
    if (m == AlpnMatch::kMalformed) {
      if (notes) notes->alpn_failure = "client sent a malformed ALPN extension";
      *alert = SSL_AD_DECODE_ERROR;
    } else {
      if (notes) notes->alpn_failure = "client offered ALPN [" + describe_alpn(list) + "], not h2";
      *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    }
    return SSL_CLIENT_HELLO_ERROR;
  }

  // Selects h2; parses the list itself rather than through
  // SSL_select_next_proto (CVE-2024-5535).
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void*) {
    size_t at = 0;
    if (find_alpn({in, inlen}, kH2, &at) == AlpnMatch::kFound) {
      *out = in + at + 1;
      *outlen = static_cast<unsigned char>(kH2.size());
      return SSL_TLSEXT_ERR_OK;
    }
    detail::ConnectionNotes* notes = notes_of(ssl);
    if (notes && notes->alpn_failure.empty()) {
      notes->alpn_failure = "client offered ALPN [" + describe_alpn({in, inlen}) + "], not h2";
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
  }

  static int on_server_name(SSL* ssl, int* alert, void* arg) {
    const auto* self = static_cast<const Context*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr || !self->on_server_name_) return SSL_TLSEXT_ERR_OK;
    std::shared_ptr<Context> chosen;
    try {
      chosen = self->on_server_name_(name);
    } catch (...) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (chosen && chosen.get() != self) {
      SSL_set_SSL_CTX(ssl, chosen->native());
      if (detail::ConnectionNotes* notes = notes_of(ssl)) notes->sni_context = std::move(chosen);
    }
    return SSL_TLSEXT_ERR_OK;
  }
};

AlpnMatch find_alpn(std::span<const uint8_t> list, std::string_view protocol, size_t* at) noexcept {
  if (list.empty()) return AlpnMatch::kMalformed;  // RFC 7301 §3.1: at least one name
  bool found = false;
  size_t pos = 0;
  while (pos < list.size()) {
    const size_t len = list[pos];
    if (len == 0 || len > list.size() - pos - 1) return AlpnMatch::kMalformed;
    if (!found && len == protocol.size() &&
        std::memcmp(list.data() + pos + 1, protocol.data(), len) == 0) {
      found = true;
      if (at != nullptr) *at = pos;
    }
    pos += 1 + len;
  }
  return found ? AlpnMatch::kFound : AlpnMatch::kAbsent;
}

std::string describe_alpn(std::span<const uint8_t> list) {
  if (list.empty()) return "(empty)";
  // No name is empty, so this only checks that the list is well formed.
  if (find_alpn(list, "", nullptr) == AlpnMatch::kMalformed) return "(malformed)";
  constexpr size_t kMaxName = 32, kMaxLine = 200;
  std::string out;
  for (size_t pos = 0; pos < list.size(); pos += 1 + list[pos]) {
    if (out.size() > kMaxLine) {
      out += ", …";
      break;
    }
    if (!out.empty()) out += ", ";
    const size_t len = list[pos];
    for (size_t i = 0; i < len && i < kMaxName; ++i) {
      const uint8_t c = list[pos + 1 + i];
      if (c >= 0x20 && c < 0x7f) {
        out += static_cast<char>(c);
      } else {
        char esc[5];
        std::snprintf(esc, sizeof esc, "\\x%02x", c);
        out += esc;
      }
    }
    if (len > kMaxName) out += "…";
  }
  return out;
}

Context::~Context() {
  SSL_CTX_free(ctx_);
}

ContextResult Context::create(const ContextOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return {nullptr, options.cert_file.empty() ? "a key file needs a certificate file (--cert)"
                                               : "a certificate file needs a key file (--key)"};
  }
  ERR_clear_error();
  std::shared_ptr<Context> c(new Context());
  c->session_resumption_ = options.session_resumption;
  c->on_server_name_ = options.on_server_name;
  c->ctx_ = SSL_CTX_new(TLS_server_method());
  SSL_CTX* ctx = c->ctx_;
  if (ctx == nullptr) return {nullptr, "cannot create a TLS context: " + openssl_error()};

  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    return {nullptr, "cannot configure TLS ciphers: " + openssl_error()};
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // no client certificates
  // OpenSSL frees a connection's record buffers (16 KiB and more each way)
  // as soon as they are empty, instead of keeping them for the
  // connection's life: an idle or pending connection holds none.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  if (options.session_resumption) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  SSL_CTX_set_client_hello_cb(ctx, &ContextCallbacks::on_client_hello, nullptr);
  SSL_CTX_set_keylog_callback(ctx, &ContextCallbacks::on_keylog);
  SSL_CTX_set_alpn_select_cb(ctx, &ContextCallbacks::on_alpn, nullptr);
  if (options.on_server_name) {
    SSL_CTX_set_tlsext_servername_callback(ctx, &ContextCallbacks::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx, c.get());
  }

  X509Ptr leaf;
  std::string error;
  if (options.cert_file.empty()) {
    PkeyPtr key;
    if (!make_self_signed(options.self_signed_names, key, leaf, error)) return {nullptr, error};
    if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
      return {nullptr, "cannot use the ephemeral certificate: " + openssl_error()};
    }
    c->description_ = "ephemeral self-signed certificate for ";
    for (size_t i = 0; i < options.self_signed_names.size(); ++i) {
      c->description_ += (i ? ", " : "") + options.self_signed_names[i];
    }
  } else {
    if (!load_pem_files(ctx, options, leaf, error)) return {nullptr, error};
    c->description_ = "certificate from " + options.cert_file;
    if (const std::string cn = common_name_of(leaf.get()); !cn.empty()) {
      c->description_ += " (CN=" + cn + ")";
    }
  }
  c->fingerprint_ = fingerprint_of(leaf.get());
  c->public_key_pin_ = public_key_pin_of(leaf.get());
  ERR_clear_error();
  return {std::move(c), ""};
}

}  // namespace h2lab::tls
