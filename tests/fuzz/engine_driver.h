// The driver shared by connection_fuzz and mini_fuzz: a proto::Engine fed
// the client preface, then the input's bytes, exactly as engine.h's carry
// contract says a caller does, with the input choosing everything a
// dispatcher would choose (chunk sizes, when the socket takes output, EOF,
// graceful stop).
//
// Input after a target's own configuration octets: a script of operations,
// each [op: 1] followed by what it needs:
//   op % 8 == 0..2  receive: [length: 2] (or, with 0x08 in op, a length of
//                   op >> 4 + 1 without a length field: the 1..16 octet
//                   splits), that many octets of the stream (the 24-octet
//                   preface first, then the input's bytes that follow);
//   op % 8 == 3     the socket took [length: 2] octets of output (0x08: all);
//   op % 8 == 4     on_output_drained(), only when the output is at or below
//                   half the high-water mark (the session's low-water mark);
//   op % 8 == 5     EOF: on_input_closed(), after which nothing is received;
//   op % 8 == 6     shutdown();
//   op % 8 == 7     the socket took everything, then on_output_drained().
// At the end: EOF, then the output is drained until nothing more comes.
//
// Invariants (abort on violation):
//   - on_input() consumes at most what it was given; the unconsumed rest,
//     once the preface is through, is one incomplete frame (fewer than 9
//     octets, or fewer than its header announces) and never more than
//     max_frame_bytes(); each call gets a fresh heap buffer that is freed
//     right after, so ASan catches a pointer kept into the input;
//   - output is bounded (EngineBounds): a call that starts at or above the
//     high-water mark adds no body, only replies bounded per input octet; a
//     call below it may overshoot by one frame of at most the largest
//     frame a peer can allow;
//   - once done(), at most a few hundred octets more output, ever;
//   - the output is a sequence of frames of RFC 9113 types, SETTINGS first;
//   - with EngineBounds::decode_headers (the full engine), every response
//     header block decodes with a standard HPACK decoder that follows the
//     client's SETTINGS_HEADER_TABLE_SIZE from the server's ACK on, and
//     starts with :status;
//   - after EOF, an engine that has nothing more to send (output drained,
//     on_output_drained adds nothing) is done(): no connection hangs on to
//     a closed peer until its idle timeout.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <optional>
#include <vector>

#include "proto/engine.h"
#include "proto/frame.h"
#include "proto/hpack.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_input.h"

namespace h2lab::fuzz {

struct EngineBounds {
  // Where the engine promises to stop producing bodies (SIZE_MAX: no promise).
  size_t high_water = SIZE_MAX;
  // The largest frame the engine may add in one call while below high_water
  // (header included): the peer's SETTINGS_MAX_FRAME_SIZE can reach 2^24-1.
  size_t one_frame = proto::kFrameHeaderSize + proto::kLargestMaxFrameSize;
  // Non-body output (SETTINGS ACK, PING ACK, WINDOW_UPDATE, response HEADERS,
  // RST_STREAM...) per octet received in the same call, plus a constant for
  // the frames a call makes on its own (GOAWAY, the resets after EOF).
  size_t per_input_octet = 8;
  size_t slack = 8192;
  // Output allowed after done(), in all (one GOAWAY with its debug text).
  size_t after_done = 512;
  // Decode the response header blocks as a client would (OutputFrames).
  bool decode_headers = false;
};

// Walks a frame stream octet by octet, as the peer does, and hands each
// complete frame to `on_frame(header, payload)`. Payloads are kept only for
// the types `keep` names (the rest are skipped, bodies can be large).
class FrameStream {
 public:
  explicit FrameStream(std::initializer_list<proto::FrameType> keep) {
    for (proto::FrameType t : keep) keep_[static_cast<uint8_t>(t)] = true;
  }

  template <class OnFrame>
  void feed(const uint8_t* p, size_t n, OnFrame&& on_frame) {
    while (n != 0) {
      if (have_ < proto::kFrameHeaderSize) {
        header_[have_++] = *p++;
        --n;
        if (have_ == proto::kFrameHeaderSize) {
          FUZZ_CHECK(proto::decode_frame_header(proto::Bytes(header_, have_), h_));
          payload_.clear();
          left_ = h_.length;
        }
      } else {
        const size_t k = std::min<size_t>(left_, n);
        if (h_.type < proto::kFrameTypeCount && keep_[h_.type])
          payload_.insert(payload_.end(), p, p + k);
        left_ -= k;
        p += k;
        n -= k;
      }
      if (have_ == proto::kFrameHeaderSize && left_ == 0) {
        on_frame(h_, proto::Bytes(payload_));
        have_ = 0;
      }
    }
  }

 private:
  bool keep_[proto::kFrameTypeCount] = {};
  uint8_t header_[proto::kFrameHeaderSize];
  size_t have_ = 0;
  proto::FrameHeader h_;
  uint64_t left_ = 0;
  std::vector<uint8_t> payload_;
};

// The server's output as the peer sees it: every frame header names a frame
// type the server may send (never PUSH_PROMISE), the first is SETTINGS
// (§3.4). With an HPACK peer (decode_headers), every response header block
// also decodes with a standard decoder that follows the client's
// SETTINGS_HEADER_TABLE_SIZE from the moment the server acknowledged it, and
// starts with :status: the server's encoder and its header-block caches stay
// in step with a real client's decoder.
class OutputFrames {
 public:
  explicit OutputFrames(bool decode_headers = false) : decode_headers_(decode_headers) {}

  // The client sent a SETTINGS frame (not an ACK); `table_size` is its
  // HEADER_TABLE_SIZE if it has one. In force once the server ACKs it.
  void client_settings(std::optional<uint32_t> table_size) { pending_.push_back(table_size); }

  void feed(const uint8_t* p, size_t n) {
    stream_.feed(p, n, [&](const proto::FrameHeader& h, proto::Bytes payload) {
      FUZZ_CHECK(h.type < proto::kFrameTypeCount);
      FUZZ_CHECK(!h.is(proto::FrameType::kPushPromise));  // never: push is not used
      if (frames_++ == 0) FUZZ_CHECK(h.is(proto::FrameType::kSettings));
      if (!decode_headers_) return;
      if (h.is(proto::FrameType::kSettings) && h.has(proto::flags::kAck)) {
        FUZZ_CHECK(!pending_.empty());  // an ACK for a SETTINGS the client sent
        if (const auto size = pending_.front()) {
          // Our decoder's memory is bounded; the server's encoder uses at
          // most 4096 anyway (its own limit), so a larger value is the same.
          decoder_.set_max_table_size_limit(std::min<uint32_t>(*size, 65536));
        }
        pending_.pop_front();
      } else if (h.is(proto::FrameType::kHeaders)) {
        proto::HeadersFrame f;
        FUZZ_CHECK(proto::parse_headers(h, payload, f).ok());
        block_.assign(f.block_fragment.begin(), f.block_fragment.end());
        if (h.has(proto::flags::kEndHeaders)) decode_block();
      } else if (h.is(proto::FrameType::kContinuation)) {
        block_.insert(block_.end(), payload.begin(), payload.end());
        if (h.has(proto::flags::kEndHeaders)) decode_block();
      }
    });
  }

 private:
  void decode_block() {
    size_t fields = 0;
    bool status_first = false;
    const proto::hpack::Status st =
        decoder_.decode(block_, [&](std::string_view name, std::string_view) {
          if (fields++ == 0) status_first = name == ":status";
        });
    if (st != proto::hpack::Status::Ok) {
      std::fprintf(stderr, "the peer cannot decode a response header block: %s\n",
                   decoder_.error_detail());
    }
    FUZZ_CHECK(st == proto::hpack::Status::Ok);
    FUZZ_CHECK(status_first);
  }

  bool decode_headers_;
  FrameStream stream_{proto::FrameType::kHeaders, proto::FrameType::kContinuation};
  uint64_t frames_ = 0;
  proto::hpack::Decoder decoder_;
  std::deque<std::optional<uint32_t>> pending_;
  std::vector<uint8_t> block_;
};

// The client's frames as the engine receives them: its SETTINGS, in order,
// for OutputFrames.
class InputSettings {
 public:
  void feed(const uint8_t* p, size_t n, OutputFrames& out) {
    stream_.feed(p, n, [&](const proto::FrameHeader& h, proto::Bytes payload) {
      if (!h.is(proto::FrameType::kSettings) || h.has(proto::flags::kAck)) return;
      proto::SettingsFrame f;
      if (!proto::parse_settings(h, payload, f).ok()) return;  // answered by GOAWAY, not ACK
      std::optional<uint32_t> table_size;
      for (size_t i = 0; i < f.count(); ++i) {
        if (f.at(i).id == static_cast<uint16_t>(proto::SettingId::kHeaderTableSize)) {
          table_size = f.at(i).value;
        }
      }
      out.client_settings(table_size);
    });
  }

 private:
  FrameStream stream_{proto::FrameType::kSettings};
};

class EngineDriver {
 public:
  EngineDriver(proto::Engine& engine, EngineBounds bounds)
      : engine_(engine), bounds_(bounds), frames_(bounds.decode_headers) {}

  void run(FuzzInput& in) {
    while (!in.empty()) {
      const uint8_t op = in.u8();
      switch (op % 8) {
        case 0:
        case 1:
        case 2: {
          const size_t n = (op & 0x08) != 0 ? (op >> 4) + 1 : in.u16();
          if (!input_closed_) receive(in, n);
          break;
        }
        case 3:
          write((op & 0x08) != 0 ? SIZE_MAX : in.u16());
          break;
        case 4:
          if (engine_.output().size() <= low_water()) call([&] { engine_.on_output_drained(); }, 0);
          break;
        case 5:
          close_input();
          break;
        case 6:
          call([&] { engine_.shutdown(); }, 0);
          break;
        case 7:
          write(SIZE_MAX);
          call([&] { engine_.on_output_drained(); }, 0);
          break;
      }
    }
    finish();
  }

 private:
  size_t low_water() const {
    return bounds_.high_water == SIZE_MAX ? SIZE_MAX : bounds_.high_water / 2;
  }
  uint64_t produced() const { return written_ + engine_.output().size(); }

  // Runs one engine call and checks the output bound and the done() rule.
  template <class F>
  void call(F&& f, size_t input_octets) {
    const size_t before = engine_.output().size();
    f();
    const size_t after = engine_.output().size();
    // Above the mark only replies; below it, up to the mark and one frame.
    size_t allowed = before;
    if (bounds_.high_water != SIZE_MAX && before < bounds_.high_water) {
      allowed = bounds_.high_water + bounds_.one_frame;
    }
    allowed += bounds_.per_input_octet * input_octets + bounds_.slack;
    if (after > allowed) {
      std::fprintf(stderr, "output grew from %zu to %zu octets (allowed %zu) on %zu input octets\n",
                   before, after, allowed, input_octets);
    }
    FUZZ_CHECK(after <= allowed);
    if (engine_.done()) {
      // The call that ended the engine may add its last frames (GOAWAY);
      // from then on almost nothing.
      if (!done_seen_) produced_at_done_ = produced();
      done_seen_ = true;
      if (produced() - produced_at_done_ > bounds_.after_done) {
        std::fprintf(stderr, "%llu octets of output after done()\n",
                     static_cast<unsigned long long>(produced() - produced_at_done_));
      }
      FUZZ_CHECK(produced() - produced_at_done_ <= bounds_.after_done);
      FUZZ_CHECK(engine_.close_reason() != nullptr);
    }
  }

  void receive(FuzzInput& in, size_t n) {
    // The stream: the 24-octet preface first, then the input's octets.
    std::vector<uint8_t> chunk;
    const size_t from_preface = std::min(n, proto::kClientPreface.size() - preface_sent_);
    chunk.insert(chunk.end(), proto::kClientPreface.begin() + preface_sent_,
                 proto::kClientPreface.begin() + preface_sent_ + from_preface);
    preface_sent_ += from_preface;
    const auto bytes = in.bytes(n - from_preface);
    chunk.insert(chunk.end(), bytes.begin(), bytes.end());
    if (chunk.empty()) return;
    if (bounds_.decode_headers) settings_.feed(bytes.data(), bytes.size(), frames_);

    // The carried rest in front of the new octets, in a buffer of exactly
    // that size that dies after the call (engine.h: no pointer kept).
    const size_t size = carry_.size() + chunk.size();
    auto* buffer = new uint8_t[size];
    if (!carry_.empty()) std::memcpy(buffer, carry_.data(), carry_.size());
    std::memcpy(buffer + carry_.size(), chunk.data(), chunk.size());
    size_t used = 0;
    const bool was_done = engine_.done();
    call([&] { used = engine_.on_input(proto::Bytes(buffer, size)); }, chunk.size());
    FUZZ_CHECK(used <= size);
    consumed_ += used;
    if (engine_.done()) {
      carry_.clear();  // input after done() is discarded; nothing is carried
    } else {
      FUZZ_CHECK(!was_done);
      carry_.assign(buffer + used, buffer + size);
      FUZZ_CHECK(carry_.size() <= engine_.max_frame_bytes());
      if (consumed_ >= proto::kClientPreface.size() && carry_.size() >= proto::kFrameHeaderSize) {
        proto::FrameHeader h;
        FUZZ_CHECK(proto::decode_frame_header(carry_, h));
        // The engine consumes every complete frame (engine.h).
        FUZZ_CHECK(carry_.size() < proto::kFrameHeaderSize + size_t{h.length});
      }
    }
    delete[] buffer;
  }

  // The socket took up to `n` octets: read them all (ASan checks every
  // iovec) and follow the frames, then consume.
  void write(size_t n) {
    proto::OutputQueue& out = engine_.output();
    n = std::min(n, out.size());
    size_t left = n;
    for (const iovec& v : out.iovecs()) {
      if (left == 0) break;
      const size_t k = std::min(left, v.iov_len);
      frames_.feed(static_cast<const uint8_t*>(v.iov_base), k);
      left -= k;
    }
    FUZZ_CHECK(left == 0);
    out.consume(n);
    written_ += n;
  }

  void close_input() {
    if (input_closed_) return;
    input_closed_ = true;
    call([&] { engine_.on_input_closed(); }, 0);
  }

  void finish() {
    close_input();
    // Drain as a fast socket would. Bodies of up to 2^40 octets may still be
    // owed (/bytes/N with wide windows), so the rounds are bounded; when a
    // round produces nothing, the engine has nothing more to do.
    for (int round = 0; round < 64; ++round) {
      const uint64_t before = produced();
      write(SIZE_MAX);
      call([&] { engine_.on_output_drained(); }, 0);
      if (produced() == before && engine_.output().empty()) {
        if (!engine_.done())
          std::fprintf(stderr, "after EOF: nothing left to send, yet not done\n");
        FUZZ_CHECK(engine_.done());
        return;
      }
    }
  }

  proto::Engine& engine_;
  const EngineBounds bounds_;
  std::vector<uint8_t> carry_;
  size_t preface_sent_ = 0;
  uint64_t consumed_ = 0;
  uint64_t written_ = 0;
  bool input_closed_ = false;
  bool done_seen_ = false;
  uint64_t produced_at_done_ = 0;
  OutputFrames frames_;
  InputSettings settings_;
};

}  // namespace h2lab::fuzz
