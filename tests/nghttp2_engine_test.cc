// proto/nghttp2_engine: libnghttp2 behind the engine contract (engine.h),
// fed scripted bytes: the carry contract, the routes' exact bodies, /echo
// under flow control, backpressure, half-close and graceful stop. Chunking
// invariance is in engine_property_test; real clients in the dispatch suite.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "proto/hpack.h"
#include "proto/nghttp2_engine.h"
#include "tests/support/conversations.h"
#include "tests/support/frame_builder.h"

using namespace h2lab::proto;
using namespace h2lab::testing;

namespace {

struct Frame {
  FrameHeader h;
  ByteString payload;
};

// Parses the engine's output as a client would, decoding its header blocks.
struct Reader {
  hpack::Decoder decoder;
  std::map<uint32_t, std::string> status;
  std::map<uint32_t, ByteString> body;
  std::map<uint32_t, bool> ended;
  std::vector<Frame> frames;

  void read(const ByteString& out) {
    size_t pos = 0;
    FrameHeader h;
    while (decode_frame_header(Bytes(out).subspan(pos), h)) {
      REQUIRE(out.size() - pos >= kFrameHeaderSize + h.length);
      Frame f{h, ByteString(out.begin() + static_cast<long>(pos + kFrameHeaderSize),
                            out.begin() + static_cast<long>(pos + kFrameHeaderSize + h.length))};
      pos += kFrameHeaderSize + h.length;
      if (h.is(FrameType::kHeaders)) {
        REQUIRE(decoder.decode(f.payload, [&](std::string_view n, std::string_view v) {
          if (n == ":status") status[h.stream_id] = v;
        }) == hpack::Status::Ok);
      } else if (h.is(FrameType::kData)) {
        body[h.stream_id] = body[h.stream_id] + f.payload;
      }
      if ((h.is(FrameType::kHeaders) || h.is(FrameType::kData)) && h.has(flags::kEndStream)) {
        ended[h.stream_id] = true;
      }
      frames.push_back(std::move(f));
    }
    REQUIRE(pos == out.size());
  }
  const Frame* last(FrameType t) const {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      if (it->h.is(t)) return &*it;
    }
    return nullptr;
  }
};

ByteString pattern(size_t n) {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789\n";
  ByteString b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(kAlphabet[i % kAlphabet.size()]);
  return b;
}

}  // namespace

TEST_CASE("nghttp2 engine: routes answer as the full engine's do, every octet") {
  Nghttp2Engine e;
  Reader r;
  ByteString in = preface() + settings({{0x4, 1 << 20}}) + frame(FrameType::kWindowUpdate, 0, 0, u32(1 << 20));
  in = in + get_request(1) + get_request(3, "/bytes/100003") + get_request(5, "/missing") +
       get_request(7, "/bytes/x");
  CHECK(e.on_input(in) == in.size());
  r.read(drain(e.output()));
  CHECK(r.status[1] == "200");
  CHECK(r.body[1] == bytes("Hello World\n"));
  CHECK(r.status[3] == "200");
  CHECK(r.body[3] == pattern(100003));
  CHECK(r.status[5] == "404");
  CHECK(r.status[7] == "400");
  CHECK(e.counters().streams == 4);
  CHECK(e.counters().responses == 4);
  CHECK_FALSE(e.done());
}

TEST_CASE("nghttp2 engine: an incomplete frame stays with the caller") {
  Nghttp2Engine e;
  const ByteString in = preface() + settings() + get_request(1);
  // All but the last 3 octets: the HEADERS frame is incomplete.
  CHECK(e.on_input(Bytes(in).first(in.size() - 3)) == in.size() - 3 - (get_request(1).size() - 3));
  CHECK(e.on_input(get_request(1)) == get_request(1).size());
  Reader r;
  r.read(drain(e.output()));
  CHECK(r.body[1] == bytes("Hello World\n"));
}

TEST_CASE("nghttp2 engine: /echo is flow-controlled and comes back whole") {
  Nghttp2Engine e;
  Reader r;
  ByteString body(200000, 0);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 31 + 7);
  // Our receive windows wide open: the echo can always leave at once.
  ByteString in = preface() + settings({{0x4, 1 << 30}}) +
                  frame(FrameType::kWindowUpdate, 0, 0, u32(1 << 30)) + post_echo(1);
  CHECK(e.on_input(in) == in.size());
  r.read(drain(e.output()));
  // The engine's stream window is 65535: more arrives only as the echo
  // leaves and the engine grants it back.
  size_t sent = 0;
  int64_t window = 65535;
  for (int round = 0; round < 1000 && sent < body.size(); ++round) {
    const size_t n = std::min<size_t>({body.size() - sent, static_cast<size_t>(window), 16384});
    REQUIRE(n > 0);  // else the engine never granted the window back
    const ByteString chunk(body.begin() + static_cast<long>(sent), body.begin() + static_cast<long>(sent + n));
    const ByteString f = frame(FrameType::kData, sent + n == body.size() ? flags::kEndStream : 0, 1, chunk);
    CHECK(e.on_input(f) == f.size());
    sent += n;
    window -= static_cast<int64_t>(n);
    const size_t before = r.frames.size();
    r.read(drain(e.output()));
    for (size_t i = before; i < r.frames.size(); ++i) {
      const Frame& fr = r.frames[i];
      if (fr.h.is(FrameType::kWindowUpdate) && fr.h.stream_id == 1) {
        window += (int64_t{fr.payload[0] & 0x7f} << 24) | (fr.payload[1] << 16) | (fr.payload[2] << 8) |
                  fr.payload[3];
      }
    }
  }
  CHECK(r.ended[1]);
  CHECK(r.body[1] == body);
}

TEST_CASE("nghttp2 engine: output stops at the high-water mark and resumes when drained") {
  ConnectionOptions o;
  o.output_high_water = 64 * 1024;
  Nghttp2Engine e(o);
  ByteString in = preface() + settings({{0x4, 1 << 30}}) +
                  frame(FrameType::kWindowUpdate, 0, 0, u32((1u << 31) - 65536)) +
                  get_request(1, "/bytes/3000000");
  CHECK(e.on_input(in) == in.size());
  Reader r;
  size_t most = 0;
  for (int turn = 0; turn < 1000 && !r.ended[1]; ++turn) {
    most = std::max(most, e.output().size());
    r.read(drain(e.output()));
    e.on_output_drained();
  }
  CHECK(r.ended[1]);
  CHECK(r.body[1] == pattern(3000000));
  CHECK(most <= o.output_high_water + kFrameHeaderSize + kDefaultMaxFrameSize);
}

TEST_CASE("nghttp2 engine: half-close answers complete requests, cancels waiting ones") {
  Nghttp2Engine e;
  const ByteString in = preface() + settings() + get_request(1, "/bytes/1000") + post_echo(3);
  e.on_input(in);
  Reader r;
  r.read(drain(e.output()));
  e.on_input_closed();
  r.read(drain(e.output()));
  CHECK(r.body[1] == pattern(1000));
  const Frame* rst = r.last(FrameType::kRstStream);
  REQUIRE(rst != nullptr);
  CHECK(rst->h.stream_id == 3);
  CHECK(rst->payload == u32(static_cast<uint32_t>(ErrorCode::kCancel)));
  CHECK(e.done());
}

TEST_CASE("nghttp2 engine: graceful stop names the last stream and finishes it") {
  Nghttp2Engine e;
  const ByteString in = preface() + settings() + get_request(1, "/bytes/100000");
  e.on_input(in);
  Reader r;
  r.read(drain(e.output()));
  e.shutdown();
  r.read(drain(e.output()));
  const Frame* goaway = r.last(FrameType::kGoaway);
  REQUIRE(goaway != nullptr);
  CHECK(ByteString(goaway->payload.begin(), goaway->payload.begin() + 8) == u32(1) + u32(0));
  CHECK_FALSE(e.done());  // stream 1 waits for window
  const ByteString grant = frame(FrameType::kWindowUpdate, 0, 1, u32(1 << 20)) +
                           frame(FrameType::kWindowUpdate, 0, 0, u32(1 << 20));
  e.on_input(grant);
  r.read(drain(e.output()));
  CHECK(r.body[1] == pattern(100000));
  CHECK(e.done());
}

TEST_CASE("nghttp2 engine: a wrong preface is refused as by every engine") {
  Nghttp2Engine e;
  CHECK(e.on_input(bytes("INVALID CONNECTION PREFACE\r\n\r\n")) == 30);
  CHECK(e.done());
  CHECK(drain(e.output()) == frame(FrameType::kSettings, 0, 0, {}) +
                                 frame(FrameType::kGoaway, 0, 0,
                                       u32(0) + u32(1) + bytes("invalid connection preface")));
  Nghttp2Engine h1;
  h1.on_input(bytes("GET / HTTP/1.1\r\n\r\n"));
  CHECK(std::string(h1.close_reason()) == "HTTP/1.1 request on an HTTP/2-only port");
}
