// tls_session_fuzz: tls::Session, server side, with the ephemeral
// certificate, over hostile ciphertext. Three modes, by the first octet % 3:
//
//   0  a real ClientHello (made once by an in-process OpenSSL client, TLS
//      1.3 or, with 0x04 in the first octet, 1.2) is read first; then the
//      script below runs over arbitrary ciphertext;
//   1  the script runs from the first octet: the input is the whole record
//      stream (the committed seeds start with a captured ClientHello);
//   2  a live handshake and data with an in-process client, whose whole
//      client-to-server record stream the input mutates: [mutations: 1]
//      then that many [offset: 2][xor: 1], [chunk: 1], then the plaintext
//      the client sends and, after [0xff], the plaintext the server sends.
//
// Script (modes 0, 1): [op: 1] and what it needs:
//   op % 6 == 0  receive [length: 2] octets (0x08: (op >> 4) + 1 octets),
//                decrypting into a plaintext buffer of 1, 5, 512 or 16384
//                octets (op bits 4-5 when 0x08 is clear), called again with
//                the rest whenever the buffer filled, as session.h asks;
//   op % 6 == 1  write [length: 1] octets of plaintext in up to 3 pieces;
//   op % 6 == 2  the socket took [length: 2] octets of output (0x08: all);
//   op % 6 == 3  on_eof();   op % 6 == 4  close();   op % 6 == 5  trim().
//
// Invariants (abort on violation):
//   - read(): consumed <= given, produced <= room; all consumed unless the
//     plaintext buffer filled; after failed() or close_notify everything is
//     consumed and nothing produced; plaintext only after the handshake;
//   - write(): nothing taken before the handshake, after close() or after a
//     failure; otherwise everything, unless that write failed the session;
//   - output(): its iovecs are readable and sum to output_size();
//     failed() exactly when error() is not empty; after the handshake ALPN
//     is "h2";
//   - mode 2: what the server decrypts is always a prefix of what the
//     client sent (AEAD: a mutated record never yields other plaintext);
//     without mutations the handshake completes, all of it arrives, and the
//     client decrypts exactly what the server's writes took.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/tls_peer.h"
#include "tls/session.h"

namespace {

using namespace h2lab;

constexpr size_t kRooms[] = {1, 5, 512, tls::Session::kMaxRecordPlaintext};

class Checked {
 public:
  Checked() : session_(fuzz::fuzz_context()) {}

  // Feeds ciphertext as a dispatcher does; returns the plaintext produced.
  std::vector<uint8_t> receive(std::span<const uint8_t> ciphertext, size_t room) {
    std::vector<uint8_t> plain;
    std::vector<uint8_t> buffer(room);
    for (int calls = 0; calls < 100000; ++calls) {
      const bool ended = session_.failed() || session_.peer_closed();
      const tls::Session::ReadResult r = session_.read(ciphertext, buffer);
      FUZZ_CHECK(r.consumed <= ciphertext.size());
      FUZZ_CHECK(r.produced <= buffer.size());
      if (r.consumed < ciphertext.size()) FUZZ_CHECK(r.produced == buffer.size());
      if (ended) FUZZ_CHECK(r.consumed == ciphertext.size() && r.produced == 0);
      if (r.produced != 0) FUZZ_CHECK(session_.handshake_done());
      plain.insert(plain.end(), buffer.begin(), buffer.begin() + r.produced);
      ciphertext = ciphertext.subspan(r.consumed);
      check();
      // session.h: call again with the rest until a call produces nothing.
      if (r.produced == 0) {
        FUZZ_CHECK(ciphertext.empty());
        break;
      }
    }
    return plain;
  }

  size_t write(std::span<const iovec> pieces) {
    size_t total = 0;
    for (const iovec& v : pieces) total += v.iov_len;
    const bool can = session_.handshake_done() && !session_.closed() && !session_.failed();
    const size_t taken = session_.write(pieces);
    if (!can) FUZZ_CHECK(taken == 0);
    if (can && !session_.failed()) FUZZ_CHECK(taken == total);
    FUZZ_CHECK(taken <= total);
    check();
    return taken;
  }

  // The socket took up to n octets of output; returns them.
  std::vector<uint8_t> send(size_t n) {
    n = std::min(n, session_.output_size());
    std::vector<uint8_t> sent;
    for (const iovec& v : session_.output()) {
      if (sent.size() == n) break;
      const size_t k = std::min(n - sent.size(), v.iov_len);
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      sent.insert(sent.end(), p, p + k);
    }
    FUZZ_CHECK(sent.size() == n);
    session_.consume_output(n);
    check();
    return sent;
  }

  void check() {
    size_t sum = 0;
    volatile uint8_t touch = 0;
    for (const iovec& v : session_.output()) {
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      for (size_t i = 0; i < v.iov_len; i += 61) touch = touch ^ p[i];
      if (v.iov_len != 0) touch = touch ^ p[v.iov_len - 1];
      sum += v.iov_len;
    }
    FUZZ_CHECK(sum == session_.output_size());
    FUZZ_CHECK(session_.failed() == (*session_.error() != '\0'));
    if (session_.handshake_done() && !session_.failed()) FUZZ_CHECK(session_.alpn() == "h2");
  }

  tls::Session& session() { return session_; }

 private:
  tls::Session session_;
};

void run_script(Checked& c, fuzz::FuzzInput& in) {
  while (!in.empty()) {
    const uint8_t op = in.u8();
    switch (op % 6) {
      case 0: {
        const bool small = (op & 0x08) != 0;
        const size_t n = small ? (op >> 4) + 1 : in.u16();
        const size_t room = small ? tls::Session::kMaxRecordPlaintext : kRooms[(op >> 4) & 3];
        c.receive(in.bytes(n), room);
        break;
      }
      case 1: {
        const auto plain = in.bytes(in.u8());
        const size_t a = plain.size() / 3, b = plain.size() / 2;
        const iovec pieces[] = {{const_cast<uint8_t*>(plain.data()), a},
                                {const_cast<uint8_t*>(plain.data()) + a, b - a},
                                {const_cast<uint8_t*>(plain.data()) + b, plain.size() - b}};
        c.write(pieces);
        break;
      }
      case 2:
        c.send((op & 0x08) != 0 ? SIZE_MAX : in.u16());
        break;
      case 3:
        c.session().on_eof();
        c.check();
        break;
      case 4:
        c.session().close();
        c.check();
        break;
      case 5:
        c.session().trim();
        c.check();
        break;
    }
  }
  c.session().on_eof();
  c.check();
  c.send(SIZE_MAX);
}

// Mode 2: a live handshake through an in-process client, the client's
// stream mutated on the way.
void run_live(fuzz::FuzzInput& in, bool tls12) {
  struct Flip {
    size_t at;
    uint8_t with;
  };
  std::vector<Flip> flips;
  const size_t count = in.u8() % 4;
  for (size_t i = 0; i < count; ++i) {
    const size_t at = in.u16();
    const uint8_t with = in.u8();
    if (with != 0) flips.push_back({at, with});
  }
  const size_t chunk = std::max<size_t>(1, in.u8()) * 16;
  const auto rest = in.rest();
  const auto split = std::find(rest.begin(), rest.end(), uint8_t{0xff});
  const std::span<const uint8_t> client_plain(rest.data(), split - rest.begin());
  const std::span<const uint8_t> server_plain =
      split == rest.end() ? std::span<const uint8_t>() : rest.subspan(split - rest.begin() + 1);

  Checked c;
  fuzz::TlsPeer peer(tls12);
  size_t position = 0;  // of the client-to-server stream
  std::vector<uint8_t> received;
  auto deliver = [&](std::vector<uint8_t> bytes) {
    for (const Flip& f : flips) {
      if (f.at >= position && f.at < position + bytes.size()) bytes[f.at - position] ^= f.with;
    }
    position += bytes.size();
    for (size_t at = 0; at < bytes.size(); at += chunk) {
      const size_t n = std::min(chunk, bytes.size() - at);
      const auto plain = c.receive(std::span<const uint8_t>(bytes).subspan(at, n), 16384);
      received.insert(received.end(), plain.begin(), plain.end());
    }
    peer.give(c.send(SIZE_MAX));
  };
  for (int round = 0; round < 8 && !(peer.done() && c.session().handshake_done()); ++round) {
    peer.step();
    deliver(peer.take_output());
    if (c.session().failed()) break;
  }
  const bool mutated = [&] {
    for (const Flip& f : flips) {
      if (f.at < position) return true;
    }
    return false;
  }();
  if (!mutated) FUZZ_CHECK(c.session().handshake_done() && peer.done());
  if (!peer.done()) return;

  peer.write(client_plain);
  deliver(peer.take_output());
  const bool mutated_any = [&] {
    for (const Flip& f : flips) {
      if (f.at < position) return true;
    }
    return false;
  }();
  FUZZ_CHECK(received.size() <= client_plain.size());
  FUZZ_CHECK(received.empty() ||
             std::memcmp(received.data(), client_plain.data(), received.size()) == 0);
  if (!mutated_any) FUZZ_CHECK(received.size() == client_plain.size());

  // The other way: what the server's writes took is what the client reads.
  const iovec piece{const_cast<uint8_t*>(server_plain.data()), server_plain.size()};
  const size_t taken = server_plain.empty() ? 0 : c.write(std::span<const iovec>(&piece, 1));
  peer.give(c.send(SIZE_MAX));
  std::vector<uint8_t> back;
  const bool ok = peer.read(back);
  if (!mutated_any) {
    FUZZ_CHECK(ok);
    FUZZ_CHECK(taken == server_plain.size());
    FUZZ_CHECK(back.size() == taken);
    FUZZ_CHECK(taken == 0 || std::memcmp(back.data(), server_plain.data(), taken) == 0);
  }
  c.session().close();
  c.check();
  c.send(SIZE_MAX);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t mode = in.u8();
  const bool tls12 = (mode & 0x04) != 0;
  switch (mode % 3) {
    case 0: {
      static const std::vector<uint8_t> hello13 = fuzz::TlsPeer::client_hello(false);
      static const std::vector<uint8_t> hello12 = fuzz::TlsPeer::client_hello(true);
      Checked c;
      c.receive(tls12 ? hello12 : hello13, tls::Session::kMaxRecordPlaintext);
      FUZZ_CHECK(!c.session().failed());
      FUZZ_CHECK(c.session().output_size() != 0);  // the ServerHello flight
      run_script(c, in);
      break;
    }
    case 1: {
      Checked c;
      run_script(c, in);
      break;
    }
    case 2:
      run_live(in, tls12);
      break;
  }
  return 0;
}
