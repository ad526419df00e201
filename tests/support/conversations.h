// Client conversations shared by the property tests (engines, sessions):
// scripted ones that walk every path the suite tests one by one, and random
// frame sequences from a seed. Each is the whole input of one connection.
#pragma once

#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/frame_builder.h"
#include "tests/support/hpack_block_writer.h"

namespace h2lab::testing {

using proto::FrameType;
namespace flags = proto::flags;

inline ByteString headers(uint32_t id, uint8_t flags, const ByteString& block) {
  return frame(FrameType::kHeaders, flags, id, block);
}
inline constexpr uint8_t kEsEh = flags::kEndStream | flags::kEndHeaders;

inline ByteString data(uint32_t id, std::string_view body, bool end) {
  return frame(FrameType::kData, end ? flags::kEndStream : 0, id, bytes(body));
}

inline ByteString post_echo(uint32_t id) {
  // :method POST (index 3), :scheme http, :path /echo (literal, indexed
  // name 4), :authority localhost (literal, indexed name 1)
  ByteString block = {0x83, 0x86, 0x04, 5};
  block = block + bytes("/echo") + ByteString{0x01, 9} + bytes("localhost");
  return headers(id, flags::kEndHeaders, block);
}

// The conversations the suite scripts elsewhere, condensed: every path
// through preface, settings, routes, flow control, CONTINUATION, errors.
inline std::vector<std::pair<std::string, ByteString>> scripted_conversations() {
  const ByteString open = preface() + settings();
  const ByteString small_window = preface() + settings({{0x4, 1000}, {0x5, 16384}});
  ByteString big_echo_body(70000, 'e');
  for (size_t i = 0; i < big_echo_body.size(); ++i) big_echo_body[i] = static_cast<uint8_t>(i * 7);
  ByteString block = {0x82, 0x86, 0x84, 0x41, 9};
  block = block + bytes("localhost");
  return {
      {"hello, repeated (replay caches)",
       open + get_request(1) + get_request(3) + get_request(5) + get_request(7) +
           frame(FrameType::kPing, 0, 0, ByteString(8, 3)) + get_request(9)},
      {"routes", open + get_request(1, "/bytes/40000") + get_request(3, "/nope") +
                     get_request(5, "/bytes/0") + get_request(7, "/stats") +
                     get_request(9, "/bytes/x")},
      {"small windows and odd updates",
       small_window + get_request(1, "/bytes/100003") + frame(FrameType::kWindowUpdate, 0, 1, u32(777)) +
           frame(FrameType::kWindowUpdate, 0, 0, u32(5555)) +
           frame(FrameType::kWindowUpdate, 0, 1, u32(70001)) + get_request(3, "/bytes/5000")},
      {"echo", open + post_echo(1) + data(1, "abc", false) + data(1, "defgh", true) + post_echo(3) +
                   frame(FrameType::kData, flags::kEndStream, 3, big_echo_body)},
      {"CONTINUATION", open +
                           headers(1, flags::kEndStream, ByteString(block.begin(), block.begin() + 2)) +
                           frame(FrameType::kContinuation, 0, 1, ByteString(block.begin() + 2, block.begin() + 4)) +
                           frame(FrameType::kContinuation, flags::kEndHeaders, 1,
                                 ByteString(block.begin() + 4, block.end()))},
      {"reset and GOAWAY", open + get_request(1, "/bytes/300000", flags::kEndHeaders | flags::kEndStream) +
                               frame(FrameType::kRstStream, 0, 1, u32(8)) + get_request(3) +
                               frame(FrameType::kGoaway, 0, 0, u32(3) + u32(0))},
      {"errors: DATA on an idle stream", open + data(5, "x", true)},
      {"errors: frame too large", open + frame(FrameType::kPing, 0, 0, ByteString(20000, 0))},
      {"errors: first frame not SETTINGS", preface() + get_request(1)},
      {"HTTP/1.1", bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
      {"invalid preface", bytes("INVALID CONNECTION PREFACE\r\n\r\n")},
      {"undecided preface", bytes("PHBBBBBBBBBBBTTA ")},
      {"wrong at octet 18", bytes("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")},
  };
}

// A random frame sequence after the preface: mostly plausible (GETs, DATA,
// window updates on the streams used), with wrong lengths, ids and types
// mixed in at a low rate.
inline ByteString random_conversation(std::mt19937& rng) {
  ByteString in = preface() + settings({{0x4, 1 + rng() % 70000}});
  uint32_t next_id = 1;
  const char* const paths[] = {"/", "/bytes/37", "/bytes/16385", "/echo", "/missing"};
  const int frames = 1 + static_cast<int>(rng() % 25);
  for (int i = 0; i < frames; ++i) {
    const uint32_t open_id = next_id > 1 ? next_id - 2 : 1;
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2:
        in = in + get_request(next_id, paths[rng() % std::size(paths)],
                              rng() % 4 ? kEsEh : flags::kEndHeaders);
        next_id += 2;
        break;
      case 3: {
        std::string body(rng() % 3000, 'b');
        in = in + data(open_id, body, rng() % 2);
        break;
      }
      case 4:
        in = in + frame(FrameType::kWindowUpdate, 0, rng() % 2 ? 0 : open_id, u32(1 + rng() % 100000));
        break;
      case 5:
        in = in + frame(FrameType::kPing, rng() % 8 == 0 ? flags::kAck : 0, 0, ByteString(8, 1));
        break;
      case 6:
        in = in + frame(FrameType::kRstStream, 0, open_id, u32(rng() % 14));
        break;
      case 7:
        in = in + settings({{static_cast<uint16_t>(1 + rng() % 6), rng() % 70000}});
        break;
      case 8: {  // a random frame: any type, flags, stream and payload
        ByteString payload(rng() % 40, static_cast<uint8_t>(rng()));
        in = in + frame(static_cast<uint8_t>(rng() % 12), static_cast<uint8_t>(rng()), rng() % 8, payload);
        break;
      }
      default: {  // a random header block on a new stream
        BlockWriter w(rng);
        for (uint32_t r = rng() % 6; r > 0; --r) w.representation(4);
        ByteString b = {0x82, 0x86, 0x84};
        const Block extra = w.take();
        in = in + headers(next_id, kEsEh, b + ByteString(extra.begin(), extra.end()));
        next_id += 2;
        break;
      }
    }
  }
  return in;
}

}  // namespace h2lab::testing
