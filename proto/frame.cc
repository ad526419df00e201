#include "proto/frame.h"

#include <endian.h>

#include <cstring>

namespace h2lab::proto {
namespace {

uint32_t read_u24(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
}
uint32_t read_u32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint8_t* write_u16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
  return p + 2;
}
uint8_t* write_u32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
  return p + 4;
}

constexpr FrameError conn(ErrorCode c, const char* d) { return FrameError::connection(c, d); }

// Strips §6.1/§6.2/§6.6 padding: `payload` loses the Pad Length octet in front
// and the padding behind. `fixed` is the size of the type's fields that sit
// between the Pad Length octet and the data (priority, promised id).
FrameError strip_padding(const FrameHeader& h, Bytes& payload, size_t fixed) noexcept {
  size_t pad = 0;
  if (h.has(flags::kPadded)) {
    if (payload.empty()) {
      return conn(ErrorCode::kFrameSizeError, "padded frame without pad length");
    }
    pad = payload[0];
    payload = payload.subspan(1);
  }
  if (payload.size() < fixed) {
    return conn(ErrorCode::kFrameSizeError, "frame too short for its fields");
  }
  // "Padding that exceeds the size remaining ... MUST be treated as a
  // PROTOCOL_ERROR" (§6.1, §6.2, §6.6).
  if (pad > payload.size() - fixed) {
    return conn(ErrorCode::kProtocolError, "padding exceeds payload");
  }
  payload = payload.first(payload.size() - pad);
  return FrameError::none();
}

PriorityFields read_priority(const uint8_t* p) noexcept {
  const uint32_t word = read_u32(p);
  return PriorityFields{word & kStreamIdMask, (word >> 31) != 0, p[4]};
}

}  // namespace

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kNoError: return "NO_ERROR";
    case ErrorCode::kProtocolError: return "PROTOCOL_ERROR";
    case ErrorCode::kInternalError: return "INTERNAL_ERROR";
    case ErrorCode::kFlowControlError: return "FLOW_CONTROL_ERROR";
    case ErrorCode::kSettingsTimeout: return "SETTINGS_TIMEOUT";
    case ErrorCode::kStreamClosed: return "STREAM_CLOSED";
    case ErrorCode::kFrameSizeError: return "FRAME_SIZE_ERROR";
    case ErrorCode::kRefusedStream: return "REFUSED_STREAM";
    case ErrorCode::kCancel: return "CANCEL";
    case ErrorCode::kCompressionError: return "COMPRESSION_ERROR";
    case ErrorCode::kConnectError: return "CONNECT_ERROR";
    case ErrorCode::kEnhanceYourCalm: return "ENHANCE_YOUR_CALM";
    case ErrorCode::kInadequateSecurity: return "INADEQUATE_SECURITY";
    case ErrorCode::kHttp11Required: return "HTTP_1_1_REQUIRED";
  }
  return "UNKNOWN_ERROR";
}

bool decode_frame_header(Bytes in, FrameHeader& out) noexcept {
  if (in.size() < kFrameHeaderSize) return false;
  const uint8_t* p = in.data();
  out.length = read_u24(p);
  out.type = p[3];
  out.flags = p[4];
  out.stream_id = read_u32(p + 5) & kStreamIdMask;
  return true;
}

uint8_t* encode_frame_header(uint8_t* out, uint32_t length, FrameType type,
                             uint8_t frame_flags, uint32_t stream_id) noexcept {
  // Two big-endian words and a byte: this runs for every frame sent.
  const uint32_t length_and_type = htobe32((length << 8) | static_cast<uint8_t>(type));
  std::memcpy(out, &length_and_type, 4);
  out[4] = frame_flags;
  patch_frame_stream_id(out, stream_id);
  return out + kFrameHeaderSize;
}

void patch_frame_stream_id(uint8_t* frame, uint32_t stream_id) noexcept {
  const uint32_t stream = htobe32(stream_id & kStreamIdMask);
  std::memcpy(frame + 5, &stream, 4);
}

FrameError parse_data(const FrameHeader& h, Bytes payload, DataFrame& out) noexcept {
  if (h.stream_id == 0) return conn(ErrorCode::kProtocolError, "DATA on stream 0");
  out.flow_controlled_length = h.length;
  if (FrameError e = strip_padding(h, payload, 0); !e.ok()) return e;
  out.data = payload;
  return FrameError::none();
}

FrameError parse_headers(const FrameHeader& h, Bytes payload, HeadersFrame& out) noexcept {
  if (h.stream_id == 0) return conn(ErrorCode::kProtocolError, "HEADERS on stream 0");
  if ((h.flags & (flags::kPadded | flags::kPriority)) == 0) {  // the usual HEADERS
    out.has_priority = false;
    out.priority = {};
    out.block_fragment = payload;
    return FrameError::none();
  }
  const size_t fixed = h.has(flags::kPriority) ? 5 : 0;
  if (FrameError e = strip_padding(h, payload, fixed); !e.ok()) return e;
  out.has_priority = fixed != 0;
  out.priority = {};
  if (out.has_priority) {
    out.priority = read_priority(payload.data());
    // §5.3.1: "A stream cannot depend on itself."
    if (out.priority.stream_dependency == h.stream_id) {
      return FrameError::stream(ErrorCode::kProtocolError, "stream depends on itself");
    }
  }
  out.block_fragment = payload.subspan(fixed);
  return FrameError::none();
}

FrameError parse_priority(const FrameHeader& h, Bytes payload, PriorityFields& out) noexcept {
  if (h.stream_id == 0) return conn(ErrorCode::kProtocolError, "PRIORITY on stream 0");
  if (payload.size() != 5) {
    return FrameError::stream(ErrorCode::kFrameSizeError, "PRIORITY length is not 5");
  }
  out = read_priority(payload.data());
  if (out.stream_dependency == h.stream_id) {
    return FrameError::stream(ErrorCode::kProtocolError, "stream depends on itself");
  }
  return FrameError::none();
}

FrameError parse_rst_stream(const FrameHeader& h, Bytes payload, RstStreamFrame& out) noexcept {
  if (h.stream_id == 0) return conn(ErrorCode::kProtocolError, "RST_STREAM on stream 0");
  if (payload.size() != 4) return conn(ErrorCode::kFrameSizeError, "RST_STREAM length is not 4");
  out.error_code = read_u32(payload.data());
  return FrameError::none();
}

Setting SettingsFrame::at(size_t i) const noexcept {
  const uint8_t* p = entries.data() + i * kSettingEntrySize;
  return Setting{static_cast<uint16_t>((p[0] << 8) | p[1]), read_u32(p + 2)};
}

FrameError parse_settings(const FrameHeader& h, Bytes payload, SettingsFrame& out) noexcept {
  if (h.stream_id != 0) return conn(ErrorCode::kProtocolError, "SETTINGS on a stream");
  out.ack = h.has(flags::kAck);
  if (out.ack && !payload.empty()) {
    return conn(ErrorCode::kFrameSizeError, "SETTINGS ACK with a payload");
  }
  if (payload.size() % kSettingEntrySize != 0) {
    return conn(ErrorCode::kFrameSizeError, "SETTINGS length not a multiple of 6");
  }
  out.entries = payload;
  return FrameError::none();
}

FrameError validate_setting(Setting s) noexcept {
  switch (static_cast<SettingId>(s.id)) {
    case SettingId::kEnablePush:
      if (s.value > 1) return conn(ErrorCode::kProtocolError, "ENABLE_PUSH not 0 or 1");
      break;
    case SettingId::kInitialWindowSize:
      if (s.value > kMaxWindowSize) {
        return conn(ErrorCode::kFlowControlError, "INITIAL_WINDOW_SIZE above 2^31-1");
      }
      break;
    case SettingId::kMaxFrameSize:
      if (s.value < kDefaultMaxFrameSize || s.value > kLargestMaxFrameSize) {
        return conn(ErrorCode::kProtocolError, "MAX_FRAME_SIZE out of range");
      }
      break;
    default:
      break;
  }
  return FrameError::none();
}

FrameError parse_push_promise(const FrameHeader& h, Bytes payload,
                              PushPromiseFrame& out) noexcept {
  if (h.stream_id == 0) return conn(ErrorCode::kProtocolError, "PUSH_PROMISE on stream 0");
  if (FrameError e = strip_padding(h, payload, 4); !e.ok()) return e;
  out.promised_stream_id = read_u32(payload.data()) & kStreamIdMask;
  out.block_fragment = payload.subspan(4);
  return FrameError::none();
}

FrameError parse_ping(const FrameHeader& h, Bytes payload, PingFrame& out) noexcept {
  if (h.stream_id != 0) return conn(ErrorCode::kProtocolError, "PING on a stream");
  if (payload.size() != 8) return conn(ErrorCode::kFrameSizeError, "PING length is not 8");
  out.ack = h.has(flags::kAck);
  out.opaque = payload;
  return FrameError::none();
}

FrameError parse_goaway(const FrameHeader& h, Bytes payload, GoawayFrame& out) noexcept {
  if (h.stream_id != 0) return conn(ErrorCode::kProtocolError, "GOAWAY on a stream");
  if (payload.size() < 8) return conn(ErrorCode::kFrameSizeError, "GOAWAY shorter than 8");
  out.last_stream_id = read_u32(payload.data()) & kStreamIdMask;
  out.error_code = read_u32(payload.data() + 4);
  out.debug_data = payload.subspan(8);
  return FrameError::none();
}

FrameError parse_window_update(const FrameHeader& h, Bytes payload,
                               WindowUpdateFrame& out) noexcept {
  if (payload.size() != 4) {
    return conn(ErrorCode::kFrameSizeError, "WINDOW_UPDATE length is not 4");
  }
  out.increment = read_u32(payload.data()) & kMaxWindowSize;
  if (out.increment == 0) {
    // §6.9: a stream error on a stream, a connection error on stream 0.
    return h.stream_id == 0
               ? conn(ErrorCode::kProtocolError, "WINDOW_UPDATE increment 0")
               : FrameError::stream(ErrorCode::kProtocolError, "WINDOW_UPDATE increment 0");
  }
  return FrameError::none();
}

FrameError parse_continuation(const FrameHeader& h, Bytes payload,
                              ContinuationFrame& out) noexcept {
  if (h.stream_id == 0) return conn(ErrorCode::kProtocolError, "CONTINUATION on stream 0");
  out.block_fragment = payload;
  return FrameError::none();
}

uint8_t* encode_settings(uint8_t* out, std::span<const Setting> entries) noexcept {
  out = encode_frame_header(out, static_cast<uint32_t>(entries.size() * kSettingEntrySize),
                            FrameType::kSettings, 0, 0);
  for (const Setting& s : entries) out = write_u32(write_u16(out, s.id), s.value);
  return out;
}

uint8_t* encode_settings_ack(uint8_t* out) noexcept {
  return encode_frame_header(out, 0, FrameType::kSettings, flags::kAck, 0);
}

uint8_t* encode_ping(uint8_t* out, bool ack, Bytes opaque) noexcept {
  out = encode_frame_header(out, 8, FrameType::kPing, ack ? flags::kAck : 0, 0);
  std::memcpy(out, opaque.data(), 8);
  return out + 8;
}

uint8_t* encode_rst_stream(uint8_t* out, uint32_t stream_id, ErrorCode code) noexcept {
  out = encode_frame_header(out, 4, FrameType::kRstStream, 0, stream_id);
  return write_u32(out, static_cast<uint32_t>(code));
}

uint8_t* encode_window_update(uint8_t* out, uint32_t stream_id, uint32_t increment) noexcept {
  out = encode_frame_header(out, 4, FrameType::kWindowUpdate, 0, stream_id);
  return write_u32(out, increment & kMaxWindowSize);
}

uint8_t* encode_goaway(uint8_t* out, uint32_t last_stream_id, ErrorCode code,
                       std::string_view debug) noexcept {
  out = encode_frame_header(out, static_cast<uint32_t>(8 + debug.size()), FrameType::kGoaway,
                            0, 0);
  out = write_u32(out, last_stream_id & kStreamIdMask);
  out = write_u32(out, static_cast<uint32_t>(code));
  if (!debug.empty()) std::memcpy(out, debug.data(), debug.size());
  return out + debug.size();
}

}  // namespace h2lab::proto
