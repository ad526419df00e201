// frame_fuzz: the frame codec of proto/frame.h over arbitrary bytes.
//
// The input is read as a sequence of frames. Each header is decoded; its
// payload (as much as the input still holds) is copied into a buffer of
// exactly that size, so that ASan sees any read past it, and handed to EVERY
// per-type parser, not only the one its type names: each parser is a pure
// function of (header, payload) and must be safe for any pair.
//
// Invariants (abort on violation):
//   - decode_frame_header fails exactly when fewer than 9 octets remain, and
//     encode_frame_header gives back the decoded fields (length, type,
//     flags, stream id without the reserved bit).
//   - every view a parser returns lies inside the payload it was given;
//     DATA's flow-controlled length is the whole payload (§6.1); SETTINGS
//     entries are whole 6-octet entries; PING's opaque data is 8 octets;
//     a parsed WINDOW_UPDATE increment is never 0.
//   - the encoders' frames (SETTINGS of the parsed entries, PING,
//     RST_STREAM, WINDOW_UPDATE, GOAWAY of the parsed fields) decode and
//     parse back to the same values.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "proto/frame.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace h2lab::proto;

bool inside(Bytes view, Bytes whole) {
  if (view.empty()) return true;
  return view.data() >= whole.data() && view.data() + view.size() <= whole.data() + whole.size();
}

// Decodes the frame at `frame` (exactly one frame) and checks its header.
FrameHeader reread(const std::vector<uint8_t>& frame, uint8_t type, uint32_t stream_id) {
  FrameHeader h;
  FUZZ_CHECK(decode_frame_header(frame, h));
  FUZZ_CHECK(h.length + kFrameHeaderSize == frame.size());
  FUZZ_CHECK(h.type == type);
  FUZZ_CHECK(h.stream_id == (stream_id & kStreamIdMask));
  return h;
}

Bytes payload_of(const std::vector<uint8_t>& frame) {
  return Bytes(frame).subspan(kFrameHeaderSize);
}

void check_encoders(const FrameHeader& h, Bytes payload) {
  // SETTINGS: the parsed entries, at most 64 of them, encoded again.
  if (payload.size() >= kSettingEntrySize) {
    const size_t count = std::min<size_t>(payload.size() / kSettingEntrySize, 64);
    std::vector<Setting> entries(count);
    for (size_t i = 0; i < count; ++i) {
      entries[i].id = static_cast<uint16_t>(payload[6 * i] << 8 | payload[6 * i + 1]);
      std::memcpy(&entries[i].value, &payload[6 * i + 2], 4);
      validate_setting(entries[i]);
    }
    std::vector<uint8_t> frame(kFrameHeaderSize + kSettingEntrySize * count);
    FUZZ_CHECK(encode_settings(frame.data(), entries) == frame.data() + frame.size());
    const FrameHeader eh = reread(frame, static_cast<uint8_t>(FrameType::kSettings), 0);
    SettingsFrame s;
    FUZZ_CHECK(parse_settings(eh, payload_of(frame), s).ok());
    FUZZ_CHECK(!s.ack && s.count() == count);
    for (size_t i = 0; i < count; ++i) {
      FUZZ_CHECK(s.at(i).id == entries[i].id && s.at(i).value == entries[i].value);
    }
  }
  {
    std::vector<uint8_t> frame(kFrameHeaderSize);
    encode_settings_ack(frame.data());
    const FrameHeader eh = reread(frame, static_cast<uint8_t>(FrameType::kSettings), 0);
    SettingsFrame s;
    FUZZ_CHECK(parse_settings(eh, payload_of(frame), s).ok() && s.ack && s.count() == 0);
  }
  if (payload.size() >= 8) {
    std::vector<uint8_t> frame(kPingFrameSize);
    const bool ack = h.has(flags::kAck);
    encode_ping(frame.data(), ack, payload.first(8));
    const FrameHeader eh = reread(frame, static_cast<uint8_t>(FrameType::kPing), 0);
    PingFrame p;
    FUZZ_CHECK(parse_ping(eh, payload_of(frame), p).ok());
    FUZZ_CHECK(p.ack == ack && p.opaque.size() == 8);
    FUZZ_CHECK(std::memcmp(p.opaque.data(), payload.data(), 8) == 0);
  }
  const uint32_t id = h.stream_id == 0 ? 1 : h.stream_id;
  {
    std::vector<uint8_t> frame(kRstStreamFrameSize);
    const auto code = static_cast<ErrorCode>(h.length);
    encode_rst_stream(frame.data(), id, code);
    const FrameHeader eh = reread(frame, static_cast<uint8_t>(FrameType::kRstStream), id);
    RstStreamFrame r;
    FUZZ_CHECK(parse_rst_stream(eh, payload_of(frame), r).ok());
    FUZZ_CHECK(r.error_code == h.length);
  }
  {
    // Increment in [1, 2^31-1], taken from the header's fields.
    const uint32_t increment = (h.length << 7 ^ h.flags ^ h.stream_id) % kMaxWindowSize + 1;
    std::vector<uint8_t> frame(kWindowUpdateFrameSize);
    encode_window_update(frame.data(), h.stream_id, increment);
    const FrameHeader eh =
        reread(frame, static_cast<uint8_t>(FrameType::kWindowUpdate), h.stream_id);
    WindowUpdateFrame w;
    FUZZ_CHECK(parse_window_update(eh, payload_of(frame), w).ok());
    FUZZ_CHECK(w.increment == increment);
  }
  {
    const std::string_view debug(reinterpret_cast<const char*>(payload.data()),
                                 std::min<size_t>(payload.size(), 256));
    std::vector<uint8_t> frame(kFrameHeaderSize + 8 + debug.size());
    FUZZ_CHECK(encode_goaway(frame.data(), h.stream_id, static_cast<ErrorCode>(h.flags), debug) ==
               frame.data() + frame.size());
    const FrameHeader eh = reread(frame, static_cast<uint8_t>(FrameType::kGoaway), 0);
    GoawayFrame g;
    FUZZ_CHECK(parse_goaway(eh, payload_of(frame), g).ok());
    FUZZ_CHECK(g.last_stream_id == h.stream_id && g.error_code == h.flags);
    FUZZ_CHECK(g.debug_data.size() == debug.size());
    FUZZ_CHECK(debug.empty() || std::memcmp(g.debug_data.data(), debug.data(), debug.size()) == 0);
  }
}

void parse_all(const FrameHeader& h, Bytes payload) {
  {
    DataFrame d;
    if (parse_data(h, payload, d).ok()) {
      FUZZ_CHECK(inside(d.data, payload));
      FUZZ_CHECK(d.flow_controlled_length == payload.size());
    }
  }
  {
    HeadersFrame f;
    if (parse_headers(h, payload, f).ok()) FUZZ_CHECK(inside(f.block_fragment, payload));
  }
  {
    PriorityFields p;
    parse_priority(h, payload, p);
  }
  {
    RstStreamFrame r;
    parse_rst_stream(h, payload, r);
  }
  {
    SettingsFrame s;
    if (parse_settings(h, payload, s).ok()) {
      FUZZ_CHECK(inside(s.entries, payload));
      FUZZ_CHECK(s.entries.size() % kSettingEntrySize == 0);
      for (size_t i = 0; i < s.count(); ++i) validate_setting(s.at(i));
    }
  }
  {
    PushPromiseFrame p;
    if (parse_push_promise(h, payload, p).ok()) FUZZ_CHECK(inside(p.block_fragment, payload));
  }
  {
    PingFrame p;
    if (parse_ping(h, payload, p).ok()) {
      FUZZ_CHECK(p.opaque.size() == 8 && inside(p.opaque, payload));
    }
  }
  {
    GoawayFrame g;
    if (parse_goaway(h, payload, g).ok()) FUZZ_CHECK(inside(g.debug_data, payload));
  }
  {
    WindowUpdateFrame w;
    if (parse_window_update(h, payload, w).ok()) FUZZ_CHECK(w.increment != 0);
  }
  {
    ContinuationFrame c;
    if (parse_continuation(h, payload, c).ok()) FUZZ_CHECK(inside(c.block_fragment, payload));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  while (true) {
    FrameHeader h;
    const bool decoded = decode_frame_header(in, h);
    FUZZ_CHECK(decoded == (in.size() >= kFrameHeaderSize));
    if (!decoded) break;
    {
      uint8_t again[kFrameHeaderSize];
      encode_frame_header(again, h.length, static_cast<FrameType>(h.type), h.flags, h.stream_id);
      FrameHeader h2;
      FUZZ_CHECK(decode_frame_header(Bytes(again, sizeof again), h2));
      FUZZ_CHECK(h2.length == h.length && h2.type == h.type && h2.flags == h.flags &&
                 h2.stream_id == h.stream_id && h.stream_id <= kStreamIdMask);
      patch_frame_stream_id(again, h.stream_id ^ 1);
      FUZZ_CHECK(decode_frame_header(Bytes(again, sizeof again), h2));
      FUZZ_CHECK(h2.stream_id == ((h.stream_id ^ 1) & kStreamIdMask) && h2.length == h.length);
    }
    in = in.subspan(kFrameHeaderSize);
    // A frame cut short by the end of the input is parsed as the frame its
    // remaining octets make (the parsers need header.length == payload size).
    const size_t n = std::min<size_t>(h.length, in.size());
    h.length = static_cast<uint32_t>(n);
    auto payload = std::make_unique<uint8_t[]>(n == 0 ? 1 : n);
    if (n != 0) std::memcpy(payload.get(), in.data(), n);
    const Bytes view(payload.get(), n);
    parse_all(h, view);
    check_encoders(h, view);
    in = in.subspan(n);
  }
  return 0;
}
