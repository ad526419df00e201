// HTTP/2 frame codec (RFC 9113 §4, §6), zero copy.
//
// Decoding never copies or allocates: every payload field is a view into the
// caller's bytes and is valid exactly as long as those bytes are. Encoding
// writes into a caller-supplied buffer whose size the caller guarantees (each
// encoder states how many octets it writes). All functions are pure and
// noexcept; errors travel as a FrameError value (one error channel).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace h2lab::proto {

using Bytes = std::span<const uint8_t>;

// RFC 9113 §7 error codes, the values that go on the wire.
enum class ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kSettingsTimeout = 0x4,
  kStreamClosed = 0x5,
  kFrameSizeError = 0x6,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kCompressionError = 0x9,
  kConnectError = 0xa,
  kEnhanceYourCalm = 0xb,
  kInadequateSecurity = 0xc,
  kHttp11Required = 0xd,
};

// "PROTOCOL_ERROR" etc.; "UNKNOWN_ERROR" for codes outside §7.
std::string_view error_code_name(ErrorCode code) noexcept;

// RFC 9113 §5.4: a connection error ends the connection with GOAWAY; a
// stream error ends one stream with RST_STREAM.
enum class ErrorScope : uint8_t { kConnection, kStream };

// The single error channel of the codec. `detail` is a static string suitable
// for GOAWAY debug data; it is never owned.
struct FrameError {
  ErrorCode code = ErrorCode::kNoError;
  ErrorScope scope = ErrorScope::kConnection;
  const char* detail = "";

  constexpr bool ok() const noexcept { return code == ErrorCode::kNoError; }
  static constexpr FrameError none() noexcept { return {}; }
  static constexpr FrameError connection(ErrorCode c, const char* d) noexcept {
    return {c, ErrorScope::kConnection, d};
  }
  static constexpr FrameError stream(ErrorCode c, const char* d) noexcept {
    return {c, ErrorScope::kStream, d};
  }
};

// RFC 9113 §6 frame types. Values outside this list are legal on the wire and
// are ignored by the receiver (§4.1, §5.5).
enum class FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
inline constexpr uint8_t kFrameTypeCount = 10;

namespace flags {
inline constexpr uint8_t kEndStream = 0x1;   // DATA, HEADERS
inline constexpr uint8_t kAck = 0x1;         // SETTINGS, PING
inline constexpr uint8_t kEndHeaders = 0x4;  // HEADERS, PUSH_PROMISE, CONTINUATION
inline constexpr uint8_t kPadded = 0x8;      // DATA, HEADERS, PUSH_PROMISE
inline constexpr uint8_t kPriority = 0x20;   // HEADERS
}  // namespace flags

// RFC 9113 §6.5.2 setting identifiers.
enum class SettingId : uint16_t {
  kHeaderTableSize = 0x1,
  kEnablePush = 0x2,
  kMaxConcurrentStreams = 0x3,
  kInitialWindowSize = 0x4,
  kMaxFrameSize = 0x5,
  kMaxHeaderListSize = 0x6,
};

inline constexpr size_t kFrameHeaderSize = 9;
inline constexpr uint32_t kDefaultMaxFrameSize = 16384;       // §4.2
inline constexpr uint32_t kLargestMaxFrameSize = 16777215;    // §4.2, 2^24-1
inline constexpr uint32_t kMaxWindowSize = 0x7fffffff;        // §6.9.1, 2^31-1
inline constexpr uint32_t kDefaultInitialWindowSize = 65535;  // §6.9.2
inline constexpr uint32_t kStreamIdMask = 0x7fffffff;         // §4.1 reserved bit

// RFC 9113 §3.4: the client connection preface.
inline constexpr std::string_view kClientPreface =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static_assert(kClientPreface.size() == 24);

// §4.1. `type` stays a raw octet so that unknown types survive decoding.
struct FrameHeader {
  uint32_t length = 0;  // 24 bits
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // reserved bit cleared

  constexpr bool has(uint8_t flag) const noexcept { return (flags & flag) != 0; }
  constexpr bool is(FrameType t) const noexcept {
    return type == static_cast<uint8_t>(t);
  }
};

// Decodes the 9-octet header at the start of `in`. Returns false, leaving
// `out` untouched, when fewer than 9 octets are available (partial input);
// the caller retries with more bytes. The reserved bit is ignored (§4.1).
bool decode_frame_header(Bytes in, FrameHeader& out) noexcept;

// Writes exactly kFrameHeaderSize octets at `out`. Precondition: length fits
// in 24 bits. Returns out + 9.
uint8_t* encode_frame_header(uint8_t* out, uint32_t length, FrameType type,
                             uint8_t flags, uint32_t stream_id) noexcept;

// Rewrites the stream identifier (octets 5-8, §4.1) of the frame whose
// header starts at `frame`: how prebuilt frame templates are patched.
void patch_frame_stream_id(uint8_t* frame, uint32_t stream_id) noexcept;

// ---------------------------------------------------------------------------
// Per-type payload views. Each parse_* takes the decoded header and exactly
// header.length payload octets (the caller has checked that the whole frame is
// present and within SETTINGS_MAX_FRAME_SIZE). It validates everything that
// the frame alone determines — stream-id rules, fixed sizes, padding — and
// returns the RFC-mandated error otherwise. Checks that need connection state
// (stream states, flow control windows) belong to the connection engine.

// RFC 9113 §5.3.2 (deprecated, but the fields must still be parsed).
struct PriorityFields {
  uint32_t stream_dependency = 0;
  bool exclusive = false;
  uint8_t weight = 0;  // wire value; effective weight is weight + 1
};

struct DataFrame {  // §6.1
  Bytes data;       // padding removed
  // The whole payload counts against flow control, padding included (§6.1).
  uint32_t flow_controlled_length = 0;
};

struct HeadersFrame {  // §6.2
  Bytes block_fragment;
  bool has_priority = false;
  PriorityFields priority;
};

struct RstStreamFrame {  // §6.4
  uint32_t error_code = 0;  // raw: unknown codes are legal (§7)
};

struct Setting {
  uint16_t id = 0;  // raw: unknown identifiers must be ignored (§6.5.2)
  uint32_t value = 0;
};

struct SettingsFrame {  // §6.5
  bool ack = false;
  Bytes entries;  // a multiple of 6 octets
  size_t count() const noexcept { return entries.size() / 6; }
  Setting at(size_t i) const noexcept;
};

struct PushPromiseFrame {  // §6.6
  uint32_t promised_stream_id = 0;
  Bytes block_fragment;
};

struct PingFrame {  // §6.7
  bool ack = false;
  Bytes opaque;  // exactly 8 octets
};

struct GoawayFrame {  // §6.8
  uint32_t last_stream_id = 0;
  uint32_t error_code = 0;
  Bytes debug_data;
};

struct WindowUpdateFrame {  // §6.9
  uint32_t increment = 0;  // never 0 after a successful parse
};

struct ContinuationFrame {  // §6.10
  Bytes block_fragment;
};

FrameError parse_data(const FrameHeader& h, Bytes payload, DataFrame& out) noexcept;
FrameError parse_headers(const FrameHeader& h, Bytes payload, HeadersFrame& out) noexcept;
FrameError parse_priority(const FrameHeader& h, Bytes payload, PriorityFields& out) noexcept;
FrameError parse_rst_stream(const FrameHeader& h, Bytes payload, RstStreamFrame& out) noexcept;
FrameError parse_settings(const FrameHeader& h, Bytes payload, SettingsFrame& out) noexcept;
FrameError parse_push_promise(const FrameHeader& h, Bytes payload, PushPromiseFrame& out) noexcept;
FrameError parse_ping(const FrameHeader& h, Bytes payload, PingFrame& out) noexcept;
FrameError parse_goaway(const FrameHeader& h, Bytes payload, GoawayFrame& out) noexcept;
FrameError parse_window_update(const FrameHeader& h, Bytes payload, WindowUpdateFrame& out) noexcept;
FrameError parse_continuation(const FrameHeader& h, Bytes payload, ContinuationFrame& out) noexcept;

// RFC 9113 §6.5.2: the value rules of the defined settings (ENABLE_PUSH is 0
// or 1, INITIAL_WINDOW_SIZE ≤ 2^31-1 else FLOW_CONTROL_ERROR, MAX_FRAME_SIZE
// within [2^14, 2^24-1]). Unknown identifiers are accepted.
FrameError validate_setting(Setting s) noexcept;

// ---------------------------------------------------------------------------
// Encoders for the frames a server sends. Each writes into `out`, which must
// hold at least the number of octets named, and returns the end pointer.

inline constexpr size_t kSettingEntrySize = 6;
// 9 + 6 * entries.size()
uint8_t* encode_settings(uint8_t* out, std::span<const Setting> entries) noexcept;
// 9
uint8_t* encode_settings_ack(uint8_t* out) noexcept;
inline constexpr size_t kPingFrameSize = kFrameHeaderSize + 8;
// 17; `opaque` must be 8 octets.
uint8_t* encode_ping(uint8_t* out, bool ack, Bytes opaque) noexcept;
inline constexpr size_t kRstStreamFrameSize = kFrameHeaderSize + 4;
// 13
uint8_t* encode_rst_stream(uint8_t* out, uint32_t stream_id, ErrorCode code) noexcept;
inline constexpr size_t kWindowUpdateFrameSize = kFrameHeaderSize + 4;
// 13; increment in [1, 2^31-1].
uint8_t* encode_window_update(uint8_t* out, uint32_t stream_id, uint32_t increment) noexcept;
// 17 + debug.size()
uint8_t* encode_goaway(uint8_t* out, uint32_t last_stream_id, ErrorCode code,
                       std::string_view debug) noexcept;

}  // namespace h2lab::proto
