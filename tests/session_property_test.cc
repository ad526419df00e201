// server::Session, driven as a dispatcher drives it, over the conversations
// of tests/support/conversations.h: the plaintext a client receives is the
// same octet for octet whether the input arrives in one read, one octet per
// read or at random cuts, and whether TLS is on or off (an in-process
// OpenSSL client encrypts the conversation in records of random sizes and
// decrypts the answer). The full engine is behind the session.
#include <catch2/catch.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <random>
#include <vector>

#include "proto/connection.h"
#include "server/session.h"
#include "tests/support/conversations.h"
#include "tests/tls_test_client.h"
#include "tls/context.h"
#include "tls/session.h"

using namespace h2lab;
using namespace h2lab::testing;

namespace {

constexpr size_t kBackpressure = 512 * 1024;

std::shared_ptr<tls::Context> context() {
  static const std::shared_ptr<tls::Context> c = [] {
    auto r = tls::Context::create({});
    REQUIRE(r.context);
    return r.context;
  }();
  return c;
}

ByteString take(server::Session& s) {
  ByteString out;
  for (const iovec& v : s.pending_output()) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    out.insert(out.end(), p, p + v.iov_len);
  }
  s.on_written(out.size());
  return out;
}

std::vector<size_t> cuts_for(int mode, size_t n, std::mt19937& rng) {
  std::vector<size_t> cuts;
  if (mode == 1) {
    for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  } else if (mode == 2 && n > 1) {
    for (size_t i = 1 + rng() % 64; i < n; i += 1 + rng() % 700) cuts.push_back(i);
  }
  return cuts;
}

// Feeds `wire` in pieces as a dispatcher would (reading only while the
// session wants to, writing what it has after every read); `deliver` turns
// what the session wrote into the plaintext the client sees.
template <class Deliver>
void feed(server::Session& s, const ByteString& wire, const std::vector<size_t>& cuts,
          Deliver&& deliver) {
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(wire.size());
  for (const size_t to : ends) {
    if (to <= from) continue;
    REQUIRE(s.wants_read());
    s.on_data(std::span<const uint8_t>(wire.data() + from, to - from));
    from = to;
    deliver(take(s));
    if (s.wants_close()) return;
  }
}

ByteString cleartext(const ByteString& in, const std::vector<size_t>& cuts) {
  server::Session s(std::make_unique<proto::Connection>(), kBackpressure);
  ByteString got;
  const auto deliver = [&](const ByteString& out) { got = got + out; };
  feed(s, in, cuts, deliver);
  s.on_eof();
  for (int i = 0; i < 100 && s.wants_write(); ++i) deliver(take(s));
  return got;
}

ByteString over_tls(const ByteString& in, int mode, std::mt19937& rng) {
  server::Session s(std::make_unique<proto::Connection>(), kBackpressure,
                    std::make_unique<tls::Session>(context()));
  MemoryTlsClient client;
  // Handshake, flight by flight.
  for (int flight = 0; flight < 10 && !SSL_is_init_finished(client.ssl()); ++flight) {
    SSL_do_handshake(client.ssl());
    const ByteString hello = client.output();
    if (!hello.empty()) s.on_data(hello);
    client.input(take(s));
  }
  REQUIRE(SSL_is_init_finished(client.ssl()));
  REQUIRE(s.handshake_done());
  // The conversation in records of random sizes.
  for (size_t at = 0; at < in.size();) {
    const size_t n = std::min(in.size() - at, 1 + size_t{rng() % 3000});
    client.write(ByteString(in.begin() + static_cast<long>(at), in.begin() + static_cast<long>(at + n)));
    at += n;
  }
  const ByteString wire = client.output();
  ByteString got;
  const auto deliver = [&](const ByteString& out) {
    client.input(out);
    got = got + client.read();
  };
  feed(s, wire, cuts_for(mode, wire.size(), rng), deliver);
  s.on_eof();
  for (int i = 0; i < 100 && s.wants_write(); ++i) deliver(take(s));
  return got;
}

}  // namespace

TEST_CASE("session: the same conversation gives the same plaintext, any cuts, TLS on or off") {
  std::mt19937 rng(11);
  std::vector<std::pair<std::string, ByteString>> conversations = scripted_conversations();
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    std::mt19937 r(seed);
    conversations.emplace_back("random " + std::to_string(seed), random_conversation(r));
  }
  for (const auto& [name, in] : conversations) {
    INFO(name << ", " << in.size() << " octets");
    const ByteString want = cleartext(in, {});
    for (int mode : {1, 2}) {
      INFO((mode == 1 ? "one octet per read" : "random cuts"));
      REQUIRE(cleartext(in, cuts_for(mode, in.size(), rng)) == want);
    }
    // TLS needs a connection to carry it: the preface conversations that end
    // before one exists are answered the same, in plaintext, all the same.
    for (int mode : {0, 1, 2}) {
      INFO("TLS, " << (mode == 0 ? "one read" : (mode == 1 ? "one octet per read" : "random cuts")));
      REQUIRE(over_tls(in, mode, rng) == want);
    }
  }
}
