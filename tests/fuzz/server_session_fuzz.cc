// server_session_fuzz: server::Session with the full engine, TLS off or on,
// driven through its public API exactly as a dispatcher drives it: bytes
// arrive in a socket buffer and are handed to on_data() only while
// wants_read(); output leaves through pending_output() / on_written() in
// input-chosen amounts; EOF, shutdown and trim come at input-chosen points;
// once wants_close() the connection is closed and nothing more is called.
//
// Input: [config: 1] then a script of [op: 1] and what it needs.
//   config: 0x01 TLS (a real handshake with an in-process client first;
//   0x02 makes it TLS 1.2), 0x04 the per-response write policy, 0x08 count
//   into a ThreadStats, bits 4-5 the backpressure bound (512 KiB, 16 KiB,
//   1 KiB, 64 KiB), which is also the engine's high-water mark, as
//   engine_factory.cc sets it.
//   op % 8 == 0..2  [length: 2] octets of the HTTP/2 stream (the client
//                   preface first) arrive: as they are in cleartext, as the
//                   client's TLS records with TLS; with 0x08 in op they
//                   arrive raw even with TLS (garbage in the record stream);
//   op % 8 == 3     the socket takes [length: 2] octets of output (0x08: all);
//   op % 8 == 4     EOF;   5 shutdown();   6 trim();   7 it takes everything.
// At the end: EOF, then output is drained until nothing more comes.
//
// Invariants (abort on violation):
//   - pending_output() is readable and sums to pending_bytes() (at most,
//     with the per-response policy); wants_write() == pending_bytes() != 0;
//   - the cleartext the peer sees (decrypted by the client with TLS) is a
//     sequence of frames of RFC 9113 types, SETTINGS first; with TLS and no
//     raw octets injected, the client decrypts everything without error;
//   - after EOF, a session with nothing left to write wants_close():
//     no connection is kept open for a peer that has gone.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "proto/connection.h"
#include "server/session.h"
#include "server/stats.h"
#include "tests/fuzz/engine_driver.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/tls_peer.h"
#include "tls/session.h"

namespace {

using namespace h2lab;

constexpr size_t kBounds[] = {512 * 1024, 16 * 1024, 1024, 64 * 1024};

class Dispatcher {
 public:
  Dispatcher(uint8_t config) : tls_((config & 0x01) != 0) {
    const size_t bound = kBounds[(config >> 4) & 3];
    proto::ConnectionOptions options;
    options.output_high_water = bound;
    auto engine = std::make_unique<proto::Connection>(options);
    if (tls_) {
      peer_ = std::make_unique<fuzz::TlsPeer>((config & 0x02) != 0);
      session_ = std::make_unique<server::Session>(
          std::move(engine), bound, std::make_unique<tls::Session>(fuzz::fuzz_context()));
    } else {
      session_ = std::make_unique<server::Session>(std::move(engine), bound);
    }
    if ((config & 0x04) != 0) {
      per_response_ = true;
      session_->write_one_response_at_a_time();
    }
    if ((config & 0x08) != 0) session_->count_into(&stats_);
    if (tls_) handshake();
  }

  void run(fuzz::FuzzInput& in) {
    while (!in.empty() && !closed_) {
      const uint8_t op = in.u8();
      switch (op % 8) {
        case 0:
        case 1:
        case 2:
          arrive(in.bytes(in.u16()), (op & 0x08) != 0);
          break;
        case 3:
          write((op & 0x08) != 0 ? SIZE_MAX : in.u16());
          break;
        case 4:
          eof();
          break;
        case 5:
          session_->shutdown();
          after_call();
          break;
        case 6:
          session_->trim();
          after_call();
          break;
        case 7:
          write(SIZE_MAX);
          break;
      }
    }
    eof();
    for (int round = 0; round < 64 && !closed_; ++round) {
      const size_t before = session_->pending_bytes();
      write(SIZE_MAX);
      if (closed_) break;
      if (before == 0 && session_->pending_bytes() == 0) {
        if (!session_->wants_close()) std::fprintf(stderr, "after EOF: idle, yet open\n");
        FUZZ_CHECK(session_->wants_close());
        break;
      }
    }
  }

 private:
  void handshake() {
    for (int round = 0; round < 8 && !(peer_->done() && session_->handshake_done()); ++round) {
      peer_->step();
      deliver(peer_->take_output());
      write(SIZE_MAX);
    }
    FUZZ_CHECK(peer_->done() && session_->handshake_done());
  }

  // Octets of the HTTP/2 stream arrive at the socket.
  void arrive(std::span<const uint8_t> bytes, bool raw) {
    if (eof_) return;
    std::vector<uint8_t> stream;
    const size_t from_preface =
        std::min(proto::kClientPreface.size() - preface_sent_, bytes.size());
    stream.insert(stream.end(), proto::kClientPreface.begin() + preface_sent_,
                  proto::kClientPreface.begin() + preface_sent_ + from_preface);
    preface_sent_ += from_preface;
    stream.insert(stream.end(), bytes.begin() + from_preface, bytes.end());
    if (tls_ && !raw) {
      peer_->write(stream);
      stream = peer_->take_output();
    }
    if (tls_ && raw) raw_ = true;
    socket_in_.insert(socket_in_.end(), stream.begin(), stream.end());
    deliver({});
  }

  // What the socket holds goes in while the session wants to read, in a
  // heap buffer of exactly its size that is freed at once (the session may
  // keep no pointer into it).
  void deliver(std::vector<uint8_t> more) {
    socket_in_.insert(socket_in_.end(), more.begin(), more.end());
    if (socket_in_.empty() || closed_ || !session_->wants_read()) return;
    auto buffer = std::make_unique<uint8_t[]>(socket_in_.size());
    std::memcpy(buffer.get(), socket_in_.data(), socket_in_.size());
    const size_t n = socket_in_.size();
    socket_in_.clear();
    session_->on_data(std::span<const uint8_t>(buffer.get(), n));
    after_call();
  }

  void write(size_t n) {
    if (closed_) return;
    std::vector<uint8_t> sent;
    for (const iovec& v : session_->pending_output()) {
      if (sent.size() >= n) break;
      const size_t k = std::min(n - sent.size(), v.iov_len);
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      sent.insert(sent.end(), p, p + k);
    }
    if (sent.empty()) return;
    session_->on_written(sent.size());
    if (tls_) {
      peer_->give(sent);
      std::vector<uint8_t> plain;
      const bool ok = peer_->read(plain);
      if (!raw_ && session_->handshake_done()) FUZZ_CHECK(ok || peer_->got_close_notify);
      frames_.feed(plain.data(), plain.size());
    } else {
      frames_.feed(sent.data(), sent.size());
    }
    after_call();
    deliver({});  // the session may want to read again
  }

  void eof() {
    if (eof_ || closed_) return;
    eof_ = true;
    // Octets still in the socket buffer come before the EOF.
    deliver({});
    socket_in_.clear();
    session_->on_eof();
    after_call();
  }

  void after_call() {
    size_t sum = 0;
    for (const iovec& v : session_->pending_output()) sum += v.iov_len;
    FUZZ_CHECK(sum <= session_->pending_bytes());
    // Cut at a response's end only by the cleartext per-response policy.
    if (sum != session_->pending_bytes()) FUZZ_CHECK(per_response_ && !tls_);
    FUZZ_CHECK(session_->wants_write() == (session_->pending_bytes() != 0));
    FUZZ_CHECK(session_->close_reason() != nullptr);
    if (session_->wants_close()) closed_ = true;  // the dispatcher closes
  }
  const bool tls_;
  bool per_response_ = false;
  std::unique_ptr<fuzz::TlsPeer> peer_;
  server::ThreadStats stats_{"fuzz"};
  std::unique_ptr<server::Session> session_;
  std::vector<uint8_t> socket_in_;
  size_t preface_sent_ = 0;
  bool raw_ = false;
  bool eof_ = false;
  bool closed_ = false;
  fuzz::OutputFrames frames_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  Dispatcher d(in.u8());
  d.run(in);
  return 0;
}
