// proto/frame: byte-exact vectors, partial input, and every frame-local
// violation with its RFC 9113 code and scope.
#include <catch2/catch.hpp>

#include "proto/frame.h"
#include "tests/support/frame_builder.h"

using namespace h2lab::proto;
using h2lab::testing::ByteString;
using h2lab::testing::frame;

TEST_CASE("frame header decodes the 9-octet layout of RFC 9113 §4.1") {
  const ByteString wire = {0x00, 0x40, 0x01, 0x01, 0x25, 0x80, 0x00, 0x00, 0x07};
  FrameHeader h;
  REQUIRE(decode_frame_header(wire, h));
  CHECK(h.length == 0x4001);
  CHECK(h.is(FrameType::kHeaders));
  CHECK(h.flags == 0x25);
  CHECK(h.has(flags::kEndStream));
  CHECK(h.has(flags::kPriority));
  CHECK(h.stream_id == 7);  // reserved bit ignored
}

TEST_CASE("frame header needs all 9 octets: partial input is not consumed") {
  const ByteString wire = frame(FrameType::kPing, 0, 0, ByteString(8, 0));
  for (size_t n = 0; n < kFrameHeaderSize; ++n) {
    FrameHeader h{123, 4, 5, 6};
    CHECK_FALSE(decode_frame_header(Bytes(wire).first(n), h));
    CHECK(h.length == 123);  // untouched
  }
  FrameHeader h;
  CHECK(decode_frame_header(Bytes(wire).first(kFrameHeaderSize), h));
  CHECK(h.length == 8);
}

TEST_CASE("frame header round trip, unknown type kept raw") {
  uint8_t buf[kFrameHeaderSize];
  encode_frame_header(buf, 0xabcdef, static_cast<FrameType>(0xfa), 0x33, 0x7fffffff);
  const ByteString expected = {0xab, 0xcd, 0xef, 0xfa, 0x33, 0x7f, 0xff, 0xff, 0xff};
  CHECK(ByteString(buf, buf + 9) == expected);
  FrameHeader h;
  REQUIRE(decode_frame_header(Bytes(buf, 9), h));
  CHECK(h.type == 0xfa);
  CHECK(h.length == 0xabcdef);
}

namespace {
FrameHeader header_of(const ByteString& f) {
  FrameHeader h;
  REQUIRE(decode_frame_header(f, h));
  return h;
}
Bytes payload_of(const ByteString& f) { return Bytes(f).subspan(kFrameHeaderSize); }
}  // namespace

TEST_CASE("DATA: padding removed, flow-controlled length includes it") {
  const ByteString f = frame(0x0, flags::kPadded | flags::kEndStream, 1, {2, 'h', 'i', 0, 0});
  DataFrame d;
  REQUIRE(parse_data(header_of(f), payload_of(f), d).ok());
  CHECK(std::string(d.data.begin(), d.data.end()) == "hi");
  CHECK(d.flow_controlled_length == 5);
}

TEST_CASE("HEADERS: padding and priority fields") {
  const ByteString f = frame(0x1, flags::kPadded | flags::kPriority | flags::kEndHeaders, 3,
                             {1, 0x80, 0, 0, 1, 15, 0x82, 0});
  HeadersFrame hf;
  REQUIRE(parse_headers(header_of(f), payload_of(f), hf).ok());
  CHECK(hf.has_priority);
  CHECK(hf.priority.exclusive);
  CHECK(hf.priority.stream_dependency == 1);
  CHECK(hf.priority.weight == 15);
  REQUIRE(hf.block_fragment.size() == 1);
  CHECK(hf.block_fragment[0] == 0x82);
}

TEST_CASE("SETTINGS entries are read in order, unknown ids kept") {
  const ByteString f = h2lab::testing::settings({{0x3, 100}, {0x4, 65535}, {0xff, 7}});
  SettingsFrame s;
  REQUIRE(parse_settings(header_of(f), payload_of(f), s).ok());
  REQUIRE(s.count() == 3);
  CHECK(s.at(0).id == 3);
  CHECK(s.at(0).value == 100);
  CHECK(s.at(1).value == 65535);
  CHECK(s.at(2).id == 0xff);
  CHECK(validate_setting(s.at(2)).ok());
}

TEST_CASE("GOAWAY, RST_STREAM, WINDOW_UPDATE, PING, PUSH_PROMISE, CONTINUATION fields") {
  const ByteString g = frame(0x7, 0, 0, {0x80, 0, 0, 5, 0, 0, 0, 0xb, 'x'});
  GoawayFrame ga;
  REQUIRE(parse_goaway(header_of(g), payload_of(g), ga).ok());
  CHECK(ga.last_stream_id == 5);
  CHECK(ga.error_code == 0xb);
  CHECK(ga.debug_data.size() == 1);

  const ByteString r = frame(0x3, 0, 9, {0, 0, 0, 8});
  RstStreamFrame rs;
  REQUIRE(parse_rst_stream(header_of(r), payload_of(r), rs).ok());
  CHECK(rs.error_code == 8);

  const ByteString w = frame(0x8, 0, 0, {0x80, 0, 0x10, 0});
  WindowUpdateFrame wu;
  REQUIRE(parse_window_update(header_of(w), payload_of(w), wu).ok());
  CHECK(wu.increment == 0x1000);  // reserved bit ignored

  const ByteString p = frame(0x6, flags::kAck, 0, {1, 2, 3, 4, 5, 6, 7, 8});
  PingFrame pf;
  REQUIRE(parse_ping(header_of(p), payload_of(p), pf).ok());
  CHECK(pf.ack);
  CHECK(pf.opaque[7] == 8);

  const ByteString pp = frame(0x5, flags::kEndHeaders, 1, {0, 0, 0, 2, 0x82});
  PushPromiseFrame ppf;
  REQUIRE(parse_push_promise(header_of(pp), payload_of(pp), ppf).ok());
  CHECK(ppf.promised_stream_id == 2);
  CHECK(ppf.block_fragment.size() == 1);

  const ByteString c = frame(0x9, flags::kEndHeaders, 1, {0x84});
  ContinuationFrame cf;
  REQUIRE(parse_continuation(header_of(c), payload_of(c), cf).ok());
  CHECK(cf.block_fragment.size() == 1);
}

namespace {
struct ErrorRow {
  const char* name;
  ByteString frame;
  ErrorCode code;
  ErrorScope scope;
};

FrameError parse_any(const ByteString& f) {
  const FrameHeader h = header_of(f);
  const Bytes p = payload_of(f);
  switch (static_cast<FrameType>(h.type)) {
    case FrameType::kData: { DataFrame x; return parse_data(h, p, x); }
    case FrameType::kHeaders: { HeadersFrame x; return parse_headers(h, p, x); }
    case FrameType::kPriority: { PriorityFields x; return parse_priority(h, p, x); }
    case FrameType::kRstStream: { RstStreamFrame x; return parse_rst_stream(h, p, x); }
    case FrameType::kSettings: { SettingsFrame x; return parse_settings(h, p, x); }
    case FrameType::kPushPromise: { PushPromiseFrame x; return parse_push_promise(h, p, x); }
    case FrameType::kPing: { PingFrame x; return parse_ping(h, p, x); }
    case FrameType::kGoaway: { GoawayFrame x; return parse_goaway(h, p, x); }
    case FrameType::kWindowUpdate: { WindowUpdateFrame x; return parse_window_update(h, p, x); }
    case FrameType::kContinuation: { ContinuationFrame x; return parse_continuation(h, p, x); }
  }
  return FrameError::none();
}
}  // namespace

TEST_CASE("frame-local violations get the RFC 9113 code and scope") {
  using EC = ErrorCode;
  constexpr auto C = ErrorScope::kConnection;
  constexpr auto S = ErrorScope::kStream;
  const ErrorRow rows[] = {
      {"DATA on stream 0 (§6.1)", frame(0x0, 0, 0, {1}), EC::kProtocolError, C},
      {"DATA padded, empty (§4.2)", frame(0x0, flags::kPadded, 1, {}), EC::kFrameSizeError, C},
      {"DATA padding = payload (§6.1)", frame(0x0, flags::kPadded, 1, {1}), EC::kProtocolError, C},
      {"DATA padding > payload (§6.1)", frame(0x0, flags::kPadded, 1, {9, 0, 0}), EC::kProtocolError, C},
      {"HEADERS on stream 0 (§6.2)", frame(0x1, 0, 0, {0x82}), EC::kProtocolError, C},
      {"HEADERS too short for priority (§4.2)", frame(0x1, flags::kPriority, 1, {0, 0}), EC::kFrameSizeError, C},
      {"HEADERS padding exceeds (§6.2)", frame(0x1, flags::kPadded, 1, {5, 0x82}), EC::kProtocolError, C},
      {"HEADERS depends on itself (§5.3.1)", frame(0x1, flags::kPriority, 3, {0, 0, 0, 3, 0}), EC::kProtocolError, S},
      {"PRIORITY on stream 0 (§6.3)", frame(0x2, 0, 0, {0, 0, 0, 1, 0}), EC::kProtocolError, C},
      {"PRIORITY length 4 (§6.3)", frame(0x2, 0, 1, {0, 0, 0, 0}), EC::kFrameSizeError, S},
      {"PRIORITY depends on itself", frame(0x2, 0, 5, {0, 0, 0, 5, 0}), EC::kProtocolError, S},
      {"RST_STREAM on stream 0 (§6.4)", frame(0x3, 0, 0, {0, 0, 0, 0}), EC::kProtocolError, C},
      {"RST_STREAM length 3 (§6.4)", frame(0x3, 0, 1, {0, 0, 0}), EC::kFrameSizeError, C},
      {"SETTINGS on a stream (§6.5)", frame(0x4, 0, 1, {}), EC::kProtocolError, C},
      {"SETTINGS ACK with payload (§6.5)", frame(0x4, flags::kAck, 0, {0, 3, 0, 0, 0, 1}), EC::kFrameSizeError, C},
      {"SETTINGS length 5 (§6.5)", frame(0x4, 0, 0, {0, 3, 0, 0, 0}), EC::kFrameSizeError, C},
      {"PUSH_PROMISE on stream 0 (§6.6)", frame(0x5, 0, 0, {0, 0, 0, 2}), EC::kProtocolError, C},
      {"PUSH_PROMISE too short (§4.2)", frame(0x5, 0, 1, {0, 0}), EC::kFrameSizeError, C},
      {"PING on a stream (§6.7)", frame(0x6, 0, 1, ByteString(8, 0)), EC::kProtocolError, C},
      {"PING length 7 (§6.7)", frame(0x6, 0, 0, ByteString(7, 0)), EC::kFrameSizeError, C},
      {"PING length 9 (§6.7)", frame(0x6, 0, 0, ByteString(9, 0)), EC::kFrameSizeError, C},
      {"GOAWAY on a stream (§6.8)", frame(0x7, 0, 1, ByteString(8, 0)), EC::kProtocolError, C},
      {"GOAWAY length 7 (§4.2)", frame(0x7, 0, 0, ByteString(7, 0)), EC::kFrameSizeError, C},
      {"WINDOW_UPDATE length 5 (§6.9)", frame(0x8, 0, 1, ByteString(5, 0)), EC::kFrameSizeError, C},
      {"WINDOW_UPDATE 0 on a stream (§6.9)", frame(0x8, 0, 1, {0, 0, 0, 0}), EC::kProtocolError, S},
      {"WINDOW_UPDATE 0 on the connection (§6.9)", frame(0x8, 0, 0, {0, 0, 0, 0}), EC::kProtocolError, C},
      {"CONTINUATION on stream 0 (§6.10)", frame(0x9, 0, 0, {}), EC::kProtocolError, C},
  };
  for (const ErrorRow& row : rows) {
    INFO(row.name);
    const FrameError e = parse_any(row.frame);
    CHECK(e.code == row.code);
    CHECK(e.scope == row.scope);
    CHECK(std::string(e.detail).size() > 0);
  }
}

TEST_CASE("SETTINGS values (§6.5.2)") {
  CHECK(validate_setting({0x2, 1}).ok());
  CHECK(validate_setting({0x2, 2}).code == ErrorCode::kProtocolError);
  CHECK(validate_setting({0x4, 0x7fffffff}).ok());
  CHECK(validate_setting({0x4, 0x80000000}).code == ErrorCode::kFlowControlError);
  CHECK(validate_setting({0x5, 16384}).ok());
  CHECK(validate_setting({0x5, 16383}).code == ErrorCode::kProtocolError);
  CHECK(validate_setting({0x5, 16777215}).ok());
  CHECK(validate_setting({0x5, 16777216}).code == ErrorCode::kProtocolError);
  CHECK(validate_setting({0x1, 0}).ok());
}

TEST_CASE("encoders write the exact octets") {
  uint8_t buf[64];
  const Setting entries[] = {{0x3, 100}, {0x4, 0x10000}};
  CHECK(ByteString(buf, encode_settings(buf, entries)) ==
        ByteString({0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0}));
  CHECK(ByteString(buf, encode_settings_ack(buf)) == ByteString({0, 0, 0, 4, 1, 0, 0, 0, 0}));
  const uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(ByteString(buf, encode_ping(buf, true, opaque)) ==
        ByteString({0, 0, 8, 6, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}));
  CHECK(ByteString(buf, encode_rst_stream(buf, 3, ErrorCode::kRefusedStream)) ==
        ByteString({0, 0, 4, 3, 0, 0, 0, 0, 3, 0, 0, 0, 7}));
  CHECK(ByteString(buf, encode_window_update(buf, 0, 0x7fffffff)) ==
        ByteString({0, 0, 4, 8, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}));
  CHECK(ByteString(buf, encode_goaway(buf, 5, ErrorCode::kEnhanceYourCalm, "no")) ==
        ByteString({0, 0, 10, 7, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0xb, 'n', 'o'}));
}

TEST_CASE("error code names") {
  CHECK(error_code_name(ErrorCode::kEnhanceYourCalm) == "ENHANCE_YOUR_CALM");
  CHECK(error_code_name(ErrorCode::kHttp11Required) == "HTTP_1_1_REQUIRED");
  CHECK(error_code_name(static_cast<ErrorCode>(0x42)) == "UNKNOWN_ERROR");
}
