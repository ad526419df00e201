// proto/mini_engine fed scripted bytes: the seed's protocol, and its two
// safety rules (bad preface, oversized frame).
#include <catch2/catch.hpp>

#include "proto/mini_engine.h"
#include "tests/support/frame_builder.h"

using namespace h2lab::proto;
using namespace h2lab::testing;

namespace {
const ByteString kServerSettings = {0, 0, 0, 4, 0, 0, 0, 0, 0};
const ByteString kSettingsAck = {0, 0, 0, 4, 1, 0, 0, 0, 0};

ByteString response(uint32_t id) {
  const auto s = u32(id);
  return ByteString{0, 0, 1, 1, 4} + s + ByteString{0x88} + ByteString{0, 0, 12, 0, 1} + s +
         bytes("Hello World\n");
}
}  // namespace

TEST_CASE("mini: preface, SETTINGS ACK, one response per request") {
  MiniEngine e;
  const ByteString in = preface() + settings({{3, 100}}) + get_request(1) + get_request(3);
  CHECK(e.on_input(in) == in.size());
  CHECK(drain(e.output()) == kServerSettings + kSettingsAck + response(1) + response(3));
  CHECK_FALSE(e.done());
}

TEST_CASE("mini: input split at every byte gives the same output") {
  const ByteString in = preface() + settings() + get_request(1) +
                        frame(FrameType::kWindowUpdate, 0, 0, u32(1000)) + get_request(0x7fffffff);
  const ByteString expected = kServerSettings + kSettingsAck + response(1) + response(0x7fffffff);
  for (size_t split = 0; split <= in.size(); ++split) {
    INFO("split at " << split);
    MiniEngine e;
    ByteString carried(in.begin(), in.begin() + static_cast<long>(split));
    const size_t used = e.on_input(carried);
    carried.erase(carried.begin(), carried.begin() + static_cast<long>(used));
    CHECK(carried.size() < kFrameHeaderSize);  // only an incomplete header is left over
    carried.insert(carried.end(), in.begin() + static_cast<long>(split), in.end());
    CHECK(e.on_input(carried) == carried.size());
    CHECK(drain(e.output()) == expected);
  }
}

TEST_CASE("mini: DATA with END_STREAM answers; frames without it are skipped") {
  MiniEngine e;
  const ByteString in = preface() + settings() +
                        get_request(1, "/", flags::kEndHeaders) +  // POST-like: body follows
                        frame(FrameType::kData, 0, 1, bytes("abc")) +
                        frame(FrameType::kPing, 0, 0, ByteString(8, 0)) +
                        frame(0xfe, 0xff, 1, bytes("unknown type")) +
                        frame(FrameType::kData, flags::kEndStream, 1, bytes("d"));
  CHECK(e.on_input(in) == in.size());
  CHECK(drain(e.output()) == kServerSettings + kSettingsAck + response(1));
}

// The first octets are decided as the full engine decides them
// (proto/preface.h); the expected bytes are spelled out here.
TEST_CASE("mini: HTTP/1.x gets the 505 hint, any other wrong preface GOAWAY(PROTOCOL_ERROR)") {
  {
    MiniEngine e;
    const ByteString in = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(e.on_input(in) == in.size());
    CHECK(e.done());
    CHECK(std::string(e.close_reason()) == "HTTP/1.1 request on an HTTP/2-only port");
    const ByteString out = drain(e.output());
    CHECK(std::string(out.begin(), out.end()).rfind("HTTP/1.1 505 HTTP Version Not Supported\r\n", 0) == 0);
  }
  const ByteString in = bytes("INVALID CONNECTION PREFACE\r\n\r\n");
  const ByteString want =
      frame(FrameType::kSettings, 0, 0, {}) +
      frame(FrameType::kGoaway, 0, 0, u32(0) + u32(1) + bytes("invalid connection preface"));
  for (size_t piece : {in.size(), size_t{1}}) {  // whole, then one octet per call
    INFO("pieces of " << piece);
    MiniEngine e;
    for (size_t at = 0; at < in.size() && !e.done(); at += piece) {
      CHECK(e.on_input(ByteString(in.begin() + static_cast<long>(at),
                                  in.begin() + static_cast<long>(std::min(at + piece, in.size())))) ==
            std::min(piece, in.size() - at));
    }
    CHECK(e.done());
    CHECK(std::string(e.close_reason()) == "invalid connection preface");
    CHECK(drain(e.output()) == want);
    e.shutdown();  // no second GOAWAY
    CHECK(e.output().empty());
  }
}

TEST_CASE("mini: a frame over 16384 octets ends the connection at its header") {
  MiniEngine e;
  ByteString in = preface() + settings();
  in = in + frame(0x0, 0, 1, {}, 16385);  // header only: the payload never needs to arrive
  CHECK(e.on_input(in) == in.size());
  CHECK(e.done());
  CHECK(std::string(e.close_reason()) == "frame larger than 16384 octets");

  MiniEngine ok;
  const ByteString max = preface() + frame(0x0, flags::kEndStream, 1, ByteString(16384, 'x'));
  CHECK(ok.on_input(max) == max.size());
  CHECK_FALSE(ok.done());
}

TEST_CASE("mini: GOAWAY from the client ends; shutdown sends GOAWAY with the last stream") {
  MiniEngine a;
  const ByteString in = preface() + get_request(5) + frame(FrameType::kGoaway, 0, 0, ByteString(8, 0));
  CHECK(a.on_input(in) == in.size());
  CHECK(a.done());
  CHECK(std::string(a.close_reason()).empty());

  MiniEngine b;
  const ByteString in2 = preface() + get_request(5) + get_request(9);
  b.on_input(in2);
  drain(b.output());
  b.shutdown();
  CHECK(b.done());
  CHECK(drain(b.output()) == ByteString({0, 0, 8, 7, 0, 0, 0, 0, 0}) + u32(9) + u32(0));
}

TEST_CASE("mini: EOF ends the engine") {
  MiniEngine e;
  e.on_input(preface());
  e.on_input_closed();
  CHECK(e.done());
}
