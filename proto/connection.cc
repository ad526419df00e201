#include "proto/connection.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>

#include "proto/short_string.h"

namespace h2lab::proto {
namespace {

using namespace std::string_view_literals;

// Bodies up to this size are copied into the output arena with their frame
// header (one iovec instead of two); larger ones are referenced.
constexpr size_t kCopyBodyBelow = 64;

// RFC 9113 §8.2.2: connection-specific fields make a request malformed.
bool is_connection_specific(std::string_view name) {
  switch (name.size()) {  // by length first: this runs for every request field
    case 7: return name == "upgrade"sv;
    case 10: return name == "connection"sv || name == "keep-alive"sv;
    case 16: return name == "proxy-connection"sv;
    case 17: return name == "transfer-encoding"sv;
    default: return false;
  }
}

// RFC 9113 §8.2.1 / RFC 9110 §5.1: a field name is lowercase token chars.
// Every request field is checked: one table look-up per octet, and the
// reason worked out only for a name that fails.
constexpr std::array<uint8_t, 256> kNameOctetOk = [] {
  std::array<uint8_t, 256> ok{};
  for (int c = 0x21; c < 0x7f; ++c) ok[c] = (c < 'A' || c > 'Z') && c != ':';
  return ok;
}();

const char* check_field_name(std::string_view name) {
  if (name.empty()) return "empty field name";
  uint8_t all_ok = 1;
  for (const char c : name) all_ok &= kNameOctetOk[static_cast<unsigned char>(c)];
  if (all_ok != 0) return nullptr;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 'A' && u <= 'Z') return "uppercase field name";
    if (kNameOctetOk[u] == 0) return "invalid character in field name";
  }
  return nullptr;
}

// Whether `value` holds a NUL, CR or LF: eight octets a step (an octet of
// w is zero exactly when (w - 0x01..) & ~w has its high bit set).
bool has_nul_cr_lf(std::string_view value) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  const auto has_zero_octet = [](uint64_t w) { return ((w - kOnes) & ~w & kHighs) != 0; };
  size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, value.data() + i, 8);
    if (has_zero_octet(w) || has_zero_octet(w ^ (kOnes * '\r')) ||
        has_zero_octet(w ^ (kOnes * '\n'))) {
      return true;
    }
  }
  for (; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '\0' || c == '\r' || c == '\n') return true;
  }
  return false;
}

// RFC 9113 §8.2.1: no NUL, CR or LF; no leading or trailing whitespace.
const char* check_field_value(std::string_view value) {
  if (has_nul_cr_lf(value)) return "NUL, CR or LF in field value";
  if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
                         value.back() == '\t')) {
    return "whitespace around field value";
  }
  return nullptr;
}

std::optional<uint64_t> parse_decimal(std::string_view s) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

// The fields of one header block that the engine keeps, with the first
// violation of RFC 9113 §8.2-§8.3 found (the block is still decoded to the
// end, so that HPACK state stays in sync).
struct Connection::Request {
  // The values routing reads; :scheme and :authority are only required to
  // be there (or, for CONNECT, not), so only their presence is kept.
  ShortString<16> method;
  ShortString<256> path;
  bool has_method = false, has_scheme = false, has_path = false, has_authority = false;
  std::optional<uint64_t> content_length;
  bool regular_seen = false;
  const char* malformed = nullptr;

  void bad(const char* why) {
    if (malformed == nullptr) malformed = why;
  }

  // As constructed, keeping what the values' storage has grown to.
  void reset() {
    method.clear();
    path.clear();
    has_method = has_scheme = has_path = has_authority = false;
    content_length.reset();
    regular_seen = false;
    malformed = nullptr;
  }

  bool first(bool& seen) {
    if (seen) {
      bad("duplicate pseudo-header");
      return false;
    }
    seen = true;
    return true;
  }
  template <size_t N>
  void pseudo(ShortString<N>& slot, bool& seen, std::string_view value) {
    if (first(seen)) slot.assign(value);
  }

  void add(std::string_view name, std::string_view value, bool trailers) {
    if (malformed != nullptr) return;
    if (!name.empty() && name[0] == ':') {
      if (trailers) return bad("pseudo-header in trailers");
      if (regular_seen) return bad("pseudo-header after a regular field");
      if (name == ":method"sv) return pseudo(method, has_method, value);
      if (name == ":scheme"sv) return static_cast<void>(first(has_scheme));
      if (name == ":path"sv) return pseudo(path, has_path, value);
      if (name == ":authority"sv) return static_cast<void>(first(has_authority));
      return bad("unknown or response pseudo-header");
    }
    regular_seen = true;
    if (const char* why = check_field_name(name)) return bad(why);
    if (const char* why = check_field_value(value)) return bad(why);
    if (is_connection_specific(name)) return bad("connection-specific field");
    if (name == "te"sv && value != "trailers"sv) return bad("te other than trailers");
    if (name == "content-length"sv && !trailers) {
      const auto n = parse_decimal(value);
      if (!n || (content_length && *content_length != *n)) return bad("invalid content-length");
      content_length = n;
    }
  }

  // §8.3.1: the pseudo-headers a request must carry.
  void finish() {
    if (malformed != nullptr) return;
    if (!has_method) return bad("missing :method");
    if (method == "CONNECT"sv) {
      if (has_scheme || has_path || !has_authority) bad("malformed CONNECT");
      return;
    }
    if (!has_scheme || !has_path) return bad("missing :scheme or :path");
    if (path.empty()) return bad("empty :path");
  }
};

// The last request header block that decoded without changing the HPACK
// decoder's state, and its decoded request. An identical block decoded
// against the same state decodes to the same fields (decoding is a function
// of the block and that state), so it is neither decoded nor validated
// again: clients repeat blocks made only of indexed fields (h2load, a
// browser reloading), and this turns their request headers into one memcmp.
// Keyed on hpack::Decoder::state_version() as well as the octets: any block
// that touched the table since — a size update, an insertion, one rejected
// with 431, trailers, a block on a reset stream — makes the entry miss.
struct Connection::RequestCache {
  static constexpr size_t kMaxBlock = 256;
  std::vector<uint8_t> block;
  uint64_t decoder_version = 0;
  Request request;
  bool valid = false;
  // The route of `request`, once computed, unless it renders per request
  // (/stats).
  std::optional<RouteResponse> response;

  const Request* find(Bytes b, uint64_t version) const {
    if (!valid || version != decoder_version || b.size() != block.size()) return nullptr;
    // Blocks of indexed fields are a few octets: a loop beats a memcmp call.
    for (size_t i = 0; i < b.size(); ++i) {
      if (b[i] != block[i]) return nullptr;
    }
    return &request;
  }
  void store(Bytes b, uint64_t version, const Request& r) {
    valid = b.size() <= kMaxBlock;
    if (!valid) return;
    block.assign(b.begin(), b.end());
    decoder_version = version;
    request = r;
    response.reset();
  }
};

struct Connection::Stream {
  uint32_t id = 0;
  bool remote_closed = false;  // the peer sent END_STREAM
  bool local_closed = false;   // we sent END_STREAM
  bool head = false;           // HEAD: headers only
  int64_t send_window = 0;
  int64_t recv_window = 0;
  uint32_t recv_unacked = 0;
  std::optional<uint64_t> expected_length;  // the request's content-length
  uint64_t received = 0;
  RouteResponse response;
  uint64_t body_sent = 0;
  std::vector<uint8_t> echo;  // /echo input waiting for send window
  size_t echo_sent = 0;
  Bytes echo_input;  // during on_data only: input not yet echoed, after `echo`
};

Connection::Connection(ConnectionOptions options)
    : options_(std::move(options)),
      decoder_(hpack::Limits{options_.max_header_list_size, options_.max_header_fields,
                             options_.max_field_size, hpack::kDefaultTableSize}),
      budget_(options_.abuse_budget),
      stats_renderer_(
          [this] { return stats_body(counters_, streams_.size(), options_.stats_json); }) {}

Connection::~Connection() = default;

// ---------------------------------------------------------------------------
// Input

size_t Connection::on_input(Bytes in) noexcept {
  if (done_) return in.size();
  size_t pos = 0;
  if (!preface_.preface_complete()) {
    // §3.4: the client preface, octet by octet (it may arrive split).
    const PrefaceStep step = take_preface(preface_, in, out_, counters_);
    if (step.state == PrefaceStep::kWaiting) return in.size();
    if (step.state == PrefaceStep::kRefused) {
      close_reason_ = step.close_reason;
      goaway_sent_ = counters_.goaway_sent;
      done_ = true;
      return in.size();
    }
    pos = step.consumed;
    send_server_preface();
  }

  while (!done_) {
    FrameHeader h;
    if (!decode_frame_header(in.subspan(pos), h)) break;
    // §4.2: larger than our SETTINGS_MAX_FRAME_SIZE, judged at the header.
    if (h.length > options_.max_frame_size) {
      connection_error(ErrorCode::kFrameSizeError, "frame larger than SETTINGS_MAX_FRAME_SIZE");
      return in.size();
    }
    if (in.size() - pos < kFrameHeaderSize + h.length) break;
    const Bytes payload = in.subspan(pos + kFrameHeaderSize, h.length);
    pos += kFrameHeaderSize + h.length;
    ++frames_received_;
    if (!on_frame(h, payload)) return in.size();
  }
  return done_ ? in.size() : pos;
}

// Our preface: SETTINGS, then open the connection window (§6.9.2 leaves the
// connection window at 65535 whatever SETTINGS say).
void Connection::send_server_preface() {
  const Setting settings[] = {
      {static_cast<uint16_t>(SettingId::kMaxConcurrentStreams), options_.max_concurrent_streams},
      {static_cast<uint16_t>(SettingId::kInitialWindowSize), options_.initial_window_size},
      {static_cast<uint16_t>(SettingId::kMaxFrameSize), options_.max_frame_size},
      {static_cast<uint16_t>(SettingId::kMaxHeaderListSize), options_.max_header_list_size},
  };
  encode_settings(out_.append(kFrameHeaderSize + 6 * std::size(settings)), settings);
  if (options_.connection_window_size > kDefaultInitialWindowSize) {
    const uint32_t raise = options_.connection_window_size - kDefaultInitialWindowSize;
    encode_window_update(out_.append(kWindowUpdateFrameSize), 0, raise);
    conn_recv_window_ += raise;
  }
}

bool Connection::on_frame(const FrameHeader& h, Bytes payload) {
  // §3.4: the first frame of the client must be SETTINGS.
  if (!settings_seen_ && (!h.is(FrameType::kSettings) || h.has(flags::kAck))) {
    return connection_error(ErrorCode::kProtocolError, "first frame is not SETTINGS");
  }
  // §6.10: nothing may come between HEADERS and its last CONTINUATION.
  if (continuation_stream_ != 0 &&
      (!h.is(FrameType::kContinuation) || h.stream_id != continuation_stream_)) {
    return connection_error(ErrorCode::kProtocolError, "frame interleaved in a header block");
  }
  if (h.type >= kFrameTypeCount) return true;  // §5.5: unknown types are ignored
  switch (static_cast<FrameType>(h.type)) {
    case FrameType::kData: return on_data(h, payload);
    case FrameType::kHeaders: return on_headers(h, payload);
    case FrameType::kPriority: {
      // Deprecated (§5.3.2) and ignored, but still validated and counted.
      PriorityFields p;
      const FrameError e = parse_priority(h, payload, p);
      // RST_STREAM must not be sent on an idle stream (§5.1): there the
      // stream error becomes a connection error, which §5.4 allows.
      const bool idle = h.stream_id > last_peer_stream_ || h.stream_id % 2 == 0;
      if (!e.ok() && (e.scope == ErrorScope::kConnection || idle)) {
        return connection_error(e);
      }
      if (!e.ok()) {
        reset_stream(h.stream_id, e.code);
        return !done_;
      }
      return spend_budget("too many PRIORITY frames");
    }
    case FrameType::kRstStream: return on_rst_stream(h, payload);
    case FrameType::kSettings: return on_settings(h, payload);
    case FrameType::kPushPromise:
      return connection_error(ErrorCode::kProtocolError, "client sent PUSH_PROMISE");  // §8.4
    case FrameType::kPing: return on_ping(h, payload);
    case FrameType::kGoaway: return on_goaway(h, payload);
    case FrameType::kWindowUpdate: return on_window_update(h, payload);
    case FrameType::kContinuation: return on_continuation(h, payload);
  }
  return true;
}

bool Connection::on_data(const FrameHeader& h, Bytes payload) {
  DataFrame d;
  if (const FrameError e = parse_data(h, payload, d); !e.ok()) return connection_error(e);
  // §6.9: every DATA frame counts against the connection window.
  if (d.flow_controlled_length > conn_recv_window_) {
    return connection_error(ErrorCode::kFlowControlError, "DATA beyond the connection window");
  }
  conn_recv_window_ -= d.flow_controlled_length;
  // Even ids are server streams and we never push: always idle.
  if (h.stream_id > last_peer_stream_ || h.stream_id % 2 == 0) {
    return connection_error(ErrorCode::kProtocolError, "DATA on an idle stream");  // §5.1
  }
  const auto it = streams_.find(h.stream_id);
  if (it == streams_.end() && history_.was_reset(h.stream_id)) {
    // §5.1: "MUST ignore frames ... on closed streams after sending a
    // RST_STREAM" — but they still count against the connection window.
    grant_window(0, d.flow_controlled_length);
    return true;
  }
  if (it == streams_.end() || it->second->remote_closed) {
    // §5.1: closed or half-closed (remote).
    grant_window(0, d.flow_controlled_length);
    reset_stream(h.stream_id, ErrorCode::kStreamClosed);
    return !done_;
  }
  Stream& s = *it->second;
  if (d.flow_controlled_length > s.recv_window) {
    grant_window(0, d.flow_controlled_length);
    reset_stream(s.id, ErrorCode::kFlowControlError);
    return !done_;
  }
  s.recv_window -= d.flow_controlled_length;
  s.received += d.data.size();
  const bool end_stream = h.has(flags::kEndStream);
  // §8.1.1: content-length must match the DATA received.
  if (s.expected_length &&
      (s.received > *s.expected_length || (end_stream && s.received != *s.expected_length))) {
    grant_window(0, d.flow_controlled_length);
    reset_stream(s.id, ErrorCode::kProtocolError);
    return !done_;
  }
  if (d.flow_controlled_length == 0 && !end_stream && !spend_budget("too many empty DATA frames")) {
    return false;
  }
  if (end_stream) s.remote_closed = true;
  if (s.response.body == BodyKind::kEcho && !s.local_closed) {
    // Padding is granted back at once; the data when it leaves as echo.
    grant_window(s.id, d.flow_controlled_length - static_cast<uint32_t>(d.data.size()));
    // Sent straight from the input as far as the windows allow (one copy,
    // into the output arena); only the rest is copied to wait in the stream.
    s.echo_input = d.data;
    pump(s);
    s.echo.insert(s.echo.end(), s.echo_input.begin(), s.echo_input.end());
    s.echo_input = {};
    if (s.local_closed && s.remote_closed) finish_stream(s.id);
  } else {
    grant_window(s.id, d.flow_controlled_length);  // a body nobody reads
    if (end_stream) end_of_request_body(s);
  }
  return !done_;
}

bool Connection::on_headers(const FrameHeader& h, Bytes payload) {
  HeadersFrame hf;
  const FrameError e = parse_headers(h, payload, hf);
  if (!e.ok() && e.scope == ErrorScope::kConnection) return connection_error(e);
  // A stream-scope error (self-dependency) is treated as a connection error,
  // which §5.4 allows: the header block would otherwise still need decoding.
  if (!e.ok()) return connection_error(e);
  if (h.stream_id % 2 == 0) {
    return connection_error(ErrorCode::kProtocolError, "client stream id is even");  // §5.1.1
  }
  if (h.stream_id <= last_peer_stream_ && streams_.find(h.stream_id) == streams_.end()) {
    // §5.1: frames on a stream we reset may still be in flight: ignored
    // (the block is still decoded to keep HPACK in sync).
    if (history_.was_reset(h.stream_id)) {
      ignoring_block_ = true;
    } else if (!history_.was_opened(h.stream_id)) {
      // §5.1.1: a new stream's id must exceed every id already used.
      return connection_error(ErrorCode::kProtocolError, "stream id lower than one already used");
    } else {
      return connection_error(ErrorCode::kStreamClosed, "HEADERS on a closed stream");  // §5.1
    }
  }
  if (h.stream_id > last_peer_stream_) {
    last_peer_stream_ = h.stream_id;
    history_.open(h.stream_id);
  }
  const bool end_stream = h.has(flags::kEndStream);
  if (h.has(flags::kEndHeaders)) return on_header_block(h.stream_id, hf.block_fragment, end_stream);
  if (hf.block_fragment.empty() && !spend_budget("too many empty header fragments")) return false;
  header_block_.assign(hf.block_fragment.begin(), hf.block_fragment.end());
  continuation_stream_ = h.stream_id;
  continuation_end_stream_ = end_stream;
  continuation_frames_ = 0;
  return true;
}

bool Connection::on_continuation(const FrameHeader& h, Bytes payload) {
  ContinuationFrame c;
  if (const FrameError e = parse_continuation(h, payload, c); !e.ok()) return connection_error(e);
  if (continuation_stream_ == 0) {
    return connection_error(ErrorCode::kProtocolError, "CONTINUATION without HEADERS");  // §6.10
  }
  // CONTINUATION floods: bounded in count and in bytes, and refused before
  // anything more is buffered.
  if (++continuation_frames_ > options_.max_continuation_frames) {
    return connection_error(ErrorCode::kEnhanceYourCalm, "too many CONTINUATION frames");
  }
  if (header_block_.size() + c.block_fragment.size() > 2 * size_t{options_.max_header_list_size}) {
    return connection_error(ErrorCode::kEnhanceYourCalm, "header block too large");
  }
  if (c.block_fragment.empty() && !h.has(flags::kEndHeaders) &&
      !spend_budget("too many empty CONTINUATION frames")) {
    return false;
  }
  header_block_.insert(header_block_.end(), c.block_fragment.begin(), c.block_fragment.end());
  if (!h.has(flags::kEndHeaders)) return true;
  const uint32_t id = continuation_stream_;
  continuation_stream_ = 0;
  std::vector<uint8_t> block;
  block.swap(header_block_);
  return on_header_block(id, block, continuation_end_stream_);
}

bool Connection::on_header_block(uint32_t stream_id, Bytes block, bool end_stream) {
  if (ignoring_block_) {  // on a stream we reset: decoded for HPACK's sake only
    ignoring_block_ = false;
    if (decoder_.decode(block, [](std::string_view, std::string_view) {}) ==
        hpack::Status::CompressionError) {
      return connection_error(ErrorCode::kCompressionError, decoder_.error_detail());
    }
    return true;  // a table change here makes the request cache miss (state_version)
  }
  // Most requests are answered at once, so the map is usually empty.
  const auto existing = streams_.empty() ? streams_.end() : streams_.find(stream_id);
  const bool trailers = existing != streams_.end();
  const Request* cached = trailers || !request_cache_
                               ? nullptr
                               : request_cache_->find(block, decoder_.state_version());
  hpack::Status status = hpack::Status::Ok;
  if (cached == nullptr) {
    if (!decoding_) decoding_ = std::make_unique<Request>();
    Request& decoded = *decoding_;
    decoded.reset();
    const uint64_t version_before = decoder_.state_version();
    status = decoder_.decode(block, [&](std::string_view name, std::string_view value) {
      decoded.add(name, value, trailers);
    });
    if (status == hpack::Status::CompressionError) {
      return connection_error(ErrorCode::kCompressionError, decoder_.error_detail());
    }
    if (!trailers) decoded.finish();
    // A block that left the decoder's state exactly as it was will decode
    // to the same request again, as long as that state lasts: cache it.
    if (options_.replay_caches && !trailers && status == hpack::Status::Ok &&
        decoder_.state_version() == version_before) {
      if (!request_cache_) request_cache_ = std::make_unique<RequestCache>();
      request_cache_->store(block, version_before, decoded);
    }
  }
  const Request& request = cached != nullptr ? *cached : *decoding_;
  const bool too_large = status == hpack::Status::HeaderListTooLarge;

  if (trailers) {
    Stream& s = *existing->second;
    // §8.1: trailers end the stream and carry no pseudo-headers.
    if (too_large || request.malformed != nullptr || !end_stream || s.remote_closed) {
      reset_stream(stream_id, s.remote_closed ? ErrorCode::kStreamClosed : ErrorCode::kProtocolError);
      return !done_;
    }
    if (s.expected_length && s.received != *s.expected_length) {
      reset_stream(stream_id, ErrorCode::kProtocolError);
      return !done_;
    }
    s.remote_closed = true;
    end_of_request_body(s);
    return !done_;
  }

  // §6.8: after our GOAWAY, new streams are not processed (the block was
  // still decoded to keep HPACK in sync).
  if (goaway_sent_) {
    if (streams_.empty()) done_ = true;  // the last stream may have ended during this block
    return true;
  }
  if (too_large) {
    // RFC 9113 §10.5.1 / RFC 6585: 431, then stop the request body.
    RouteResponse r;
    r.status = 431;
    r.content_length = 0;
    send_headers(stream_id, r, true);
    last_processed_ = stream_id;
    if (!end_stream) {
      encode_rst_stream(out_.append(kRstStreamFrameSize), stream_id, ErrorCode::kNoError);
    }
    return spend_budget("too many oversized header lists");
  }
  const bool empty_body_mismatch =
      request.malformed == nullptr && end_stream && request.content_length.value_or(0) != 0;
  if (request.malformed != nullptr || empty_body_mismatch) {
    reset_stream(stream_id, ErrorCode::kProtocolError);  // §8.1.1
    return !done_;
  }
  if (streams_.size() >= options_.max_concurrent_streams) {
    ++counters_.refused;
    reset_stream(stream_id, ErrorCode::kRefusedStream);  // §5.1.2
    return !done_;
  }
  return start_request(stream_id, request, end_stream,
                       cached != nullptr ? &request_cache_->response : nullptr);
}

bool Connection::start_request(uint32_t id, const Request& request, bool end_stream,
                               std::optional<RouteResponse>* route_memo) {
  ++counters_.streams;
  last_processed_ = id;
  const bool head = request.method == "HEAD"sv;
  // A repeated request whose small answer fits at once needs no Stream.
  if (route_memo != nullptr && route_memo->has_value() && end_stream && !head &&
      send_small_response(id, **route_memo, peer_initial_window_)) {
    count_response();
    return true;
  }
  // Built on the stack: a request answered at once (the common case) is
  // never stored.
  Stream s;
  s.id = id;
  s.remote_closed = end_stream;
  s.send_window = peer_initial_window_;
  s.recv_window = options_.initial_window_size;
  s.expected_length = request.content_length;
  s.head = head;
  if (route_memo != nullptr && route_memo->has_value()) {
    s.response = **route_memo;
  } else {
    s.response = request.method == "CONNECT"sv
                     ? RouteResponse{405, "text/plain", 0, BodyKind::kNone, {}, 0, {}}
                     : route(request.method.view(), request.path.view(), request.content_length,
                             stats_renderer_);
    if (route_memo != nullptr && s.response.body != BodyKind::kOwned) *route_memo = s.response;
  }
  start_response(s);
  if (s.local_closed && s.remote_closed) return true;
  streams_.emplace(id, std::make_unique<Stream>(std::move(s)));
  return true;
}

void Connection::start_response(Stream& s) {
  RouteResponse& r = s.response;
  const bool echo_done = r.body == BodyKind::kEcho && s.remote_closed && s.echo.empty();
  const bool no_body = r.body == BodyKind::kNone || s.head || echo_done ||
                       (r.body == BodyKind::kStatic && r.static_body.empty());
  if (!no_body && send_small_response(s.id, r, s.send_window)) {
    s.send_window -= static_cast<int64_t>(r.static_body.size());
    response_complete(s);
    return;
  }
  send_headers(s.id, r, no_body);
  if (no_body) {
    response_complete(s);
    return;
  }
  pump(s);
}

void Connection::end_of_request_body(Stream& s) {
  if (s.response.body == BodyKind::kEcho) pump(s);
  if (s.local_closed && s.remote_closed) finish_stream(s.id);
}

// Sends as much of the stream's body as both windows, the peer's frame size
// and the output high-water mark allow.
void Connection::pump(Stream& s) {
  if (s.local_closed) return;
  RouteResponse& r = s.response;
  const bool echo = r.body == BodyKind::kEcho;
  while (true) {
    uint64_t remaining = 0;   // octets of body left
    uint64_t contiguous = 0;  // of which at `data` in one piece
    const uint8_t* data = nullptr;
    const size_t buffered = s.echo.size() - s.echo_sent;
    switch (r.body) {
      case BodyKind::kStatic:
        remaining = r.static_body.size() - s.body_sent;
        data = reinterpret_cast<const uint8_t*>(r.static_body.data()) + s.body_sent;
        break;
      case BodyKind::kOwned:
        remaining = r.owned_body.size() - s.body_sent;
        data = reinterpret_cast<const uint8_t*>(r.owned_body.data()) + s.body_sent;
        break;
      case BodyKind::kPattern:
        remaining = r.length - s.body_sent;
        // The pattern goes on where the previous frame left it.
        data = reinterpret_cast<const uint8_t*>(pattern_at(s.body_sent).data());
        break;
      case BodyKind::kEcho:
        // Buffered echo first, then the input being delivered right now.
        remaining = buffered + s.echo_input.size();
        data = buffered != 0 ? s.echo.data() + s.echo_sent : s.echo_input.data();
        contiguous = buffered != 0 ? buffered : s.echo_input.size();
        break;
      case BodyKind::kNone:
        break;
    }
    if (!echo) contiguous = remaining;
    const bool body_complete = !echo || s.remote_closed;
    if (remaining == 0) {
      if (body_complete) {
        send_data(s.id, nullptr, 0, true, false);  // an empty END_STREAM
        response_complete(s);
      }
      break;
    }
    const int64_t window = std::min(conn_send_window_, s.send_window);
    if (window <= 0 || out_.size() >= options_.output_high_water) break;
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>({contiguous, peer_max_frame_size_, static_cast<uint64_t>(window)}));
    const bool end = n == remaining && body_complete;
    // Static and pattern bodies outlive any stream; owned and echo bytes are
    // copied into the arena because the stream may end first.
    const bool by_reference = r.body == BodyKind::kStatic || r.body == BodyKind::kPattern;
    send_data(s.id, data, n, end, by_reference);
    conn_send_window_ -= static_cast<int64_t>(n);
    s.send_window -= static_cast<int64_t>(n);
    if (echo) {
      if (buffered != 0) {
        s.echo_sent += n;
        if (s.echo_sent == s.echo.size()) {
          s.echo.clear();
          s.echo_sent = 0;
        }
      } else {
        s.echo_input = s.echo_input.subspan(n);
      }
      grant_window(s.id, static_cast<uint32_t>(n));
    } else {
      s.body_sent += n;
    }
    if (end) {
      response_complete(s);
      break;
    }
  }
}

// Our END_STREAM went out: a completed response earns back abuse budget.
void Connection::response_complete(Stream& s) {
  s.local_closed = true;
  count_response();
}

void Connection::count_response() {
  out_.end_response();
  ++counters_.responses;
  budget_ = std::min<int64_t>(budget_ + 1, options_.abuse_budget);
}

void Connection::pump_all() {
  if (streams_.empty()) return;
  std::vector<uint32_t> ids;
  ids.reserve(streams_.size());
  for (const auto& [id, s] : streams_) {
    if (!s->local_closed) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());  // oldest stream first
  for (const uint32_t id : ids) {
    const auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    Stream& s = *it->second;
    pump(s);
    if (s.local_closed && s.remote_closed) finish_stream(id);
    if (out_.size() >= options_.output_high_water) break;
  }
}

void Connection::finish_stream(uint32_t id) {
  if (const auto it = streams_.find(id); it != streams_.end()) {
    // §6.9: echo input that will never leave was never granted back, but the
    // peer counted it against the connection window: return it.
    const size_t unsent = it->second->echo.size() - it->second->echo_sent;
    if (!it->second->local_closed) ++counters_.abandoned;
    streams_.erase(it);
    if (unsent != 0 && !done_) grant_window(0, static_cast<uint32_t>(unsent));
  }
  if ((goaway_sent_ || peer_goaway_ || input_closed_) && streams_.empty() &&
      continuation_stream_ == 0) {
    done_ = true;
  }
}


// ---------------------------------------------------------------------------
// Control frames

bool Connection::on_settings(const FrameHeader& h, Bytes payload) {
  SettingsFrame f;
  if (const FrameError e = parse_settings(h, payload, f); !e.ok()) return connection_error(e);
  if (f.ack) return true;  // our settings are in force from the start
  if (settings_seen_ && !spend_budget("too many SETTINGS frames")) return false;
  settings_seen_ = true;
  for (size_t i = 0; i < f.count(); ++i) {
    const Setting s = f.at(i);
    if (const FrameError e = validate_setting(s); !e.ok()) return connection_error(e);
    switch (static_cast<SettingId>(s.id)) {
      case SettingId::kHeaderTableSize:
        // The table may shrink and the next block carries a size update;
        // the encoder's state_version() changes, so no cached block of ours
        // is replayed, and the next one is not cached.
        encoder_.set_peer_max_table_size(s.value);
        break;
      case SettingId::kInitialWindowSize: {
        // §6.9.2: the change applies to every open stream's send window.
        const int64_t delta = int64_t{s.value} - peer_initial_window_;
        for (auto& [id, stream] : streams_) {
          stream->send_window += delta;
          if (stream->send_window > kMaxWindowSize) {
            return connection_error(ErrorCode::kFlowControlError,
                                    "INITIAL_WINDOW_SIZE overflows a stream window");
          }
        }
        peer_initial_window_ = s.value;
        break;
      }
      case SettingId::kMaxFrameSize:
        peer_max_frame_size_ = s.value;
        break;
      default:
        break;  // ENABLE_PUSH: we never push; others are advisory or unknown
    }
  }
  encode_settings_ack(out_.append(kFrameHeaderSize));
  pump_all();
  return !done_;
}

bool Connection::on_ping(const FrameHeader& h, Bytes payload) {
  PingFrame p;
  if (const FrameError e = parse_ping(h, payload, p); !e.ok()) return connection_error(e);
  if (p.ack) return true;  // we send no PINGs of our own
  if (!spend_budget("too many PING frames")) return false;
  encode_ping(out_.append(kPingFrameSize), true, p.opaque);  // §6.7
  return true;
}

bool Connection::on_goaway(const FrameHeader& h, Bytes payload) {
  GoawayFrame g;
  if (const FrameError e = parse_goaway(h, payload, g); !e.ok()) return connection_error(e);
  // The client opens no new streams; finish ours, then close.
  peer_goaway_ = true;
  if (streams_.empty()) done_ = true;
  return true;
}

bool Connection::on_window_update(const FrameHeader& h, Bytes payload) {
  WindowUpdateFrame w;
  const FrameError e = parse_window_update(h, payload, w);
  if (!e.ok() && e.scope == ErrorScope::kConnection) return connection_error(e);
  if (h.stream_id > last_peer_stream_ || (h.stream_id != 0 && h.stream_id % 2 == 0)) {
    return connection_error(ErrorCode::kProtocolError, "WINDOW_UPDATE on an idle stream");
  }
  if (!e.ok()) {
    reset_stream(h.stream_id, e.code);
    return !done_;
  }
  if (h.stream_id == 0) {
    conn_send_window_ += w.increment;
    if (conn_send_window_ > kMaxWindowSize) {  // §6.9.1
      return connection_error(ErrorCode::kFlowControlError, "connection window above 2^31-1");
    }
    pump_all();
    return !done_;
  }
  const auto it = streams_.find(h.stream_id);
  if (it == streams_.end()) return true;  // closed: ignored (§5.1)
  Stream& s = *it->second;
  s.send_window += w.increment;
  if (s.send_window > kMaxWindowSize) {
    reset_stream(s.id, ErrorCode::kFlowControlError);
    return !done_;
  }
  pump(s);
  if (s.local_closed && s.remote_closed) finish_stream(s.id);
  return !done_;
}

bool Connection::on_rst_stream(const FrameHeader& h, Bytes payload) {
  RstStreamFrame r;
  if (const FrameError e = parse_rst_stream(h, payload, r); !e.ok()) return connection_error(e);
  if (h.stream_id > last_peer_stream_ || h.stream_id % 2 == 0) {
    return connection_error(ErrorCode::kProtocolError, "RST_STREAM on an idle stream");  // §5.1
  }
  // Rapid Reset (CVE-2023-44487): every reset costs budget.
  if (!spend_budget("too many RST_STREAM frames")) return false;
  finish_stream(h.stream_id);
  return !done_;
}

// ---------------------------------------------------------------------------
// Output

// The HPACK block for a response's fields: replayed from header_cache_ when
// the encoder's state is the one the cached block was encoded against (its
// encoding changed nothing, so it would encode the same again), else
// encoded into `scratch` (and cached when encoding changed nothing).
// Valid until the next call.
Bytes Connection::response_header_block(const RouteResponse& r,
                                        std::span<uint8_t, kMaxResponseBlock> scratch) {
  HeaderBlockCache& cache = header_cache_;
  if (cache_holds(r)) return {cache.block, cache.size};
  char status[4];
  std::to_chars(status, status + 3, r.status);
  char length[24];
  hpack::Header fields[3];
  size_t count = 0;
  fields[count++] = {":status", std::string_view(status, 3)};
  if (!r.content_type.empty()) fields[count++] = {"content-type", r.content_type};
  if (r.content_length) {
    const char* end = std::to_chars(length, length + sizeof length, *r.content_length).ptr;
    fields[count++] = {"content-length", std::string_view(length, static_cast<size_t>(end - length))};
  }
  const uint64_t version_before = encoder_.state_version();
  const size_t size = encoder_.encode({fields, count}, scratch).value_or(0);
  // A block that changed the table, or carries a size update (§6.3), must
  // not be replayed: both change the version.
  cache.valid = options_.replay_caches && encoder_.state_version() == version_before &&
                size <= sizeof cache.block;
  cache.body = nullptr;  // a new block: no small-response template yet
  cache.frames_size = 0;
  if (cache.valid) {
    cache.encoder_version = version_before;
    cache.status = r.status;
    cache.content_type = r.content_type;
    cache.content_length = r.content_length;
    cache.size = size;
    std::memcpy(cache.block, scratch.data(), size);
  }
  return {scratch.data(), size};
}

// The cached block encodes exactly `r`'s fields under the encoder's state.
bool Connection::cache_holds(const RouteResponse& r) const noexcept {
  const HeaderBlockCache& cache = header_cache_;
  // Content types are static strings: equal pointers settle it cheaply.
  const bool same_type = (cache.content_type.data() == r.content_type.data() &&
                          cache.content_type.size() == r.content_type.size()) ||
                         cache.content_type == r.content_type;
  return cache.valid && cache.encoder_version == encoder_.state_version() &&
         cache.status == r.status && same_type && cache.content_length == r.content_length;
}

void Connection::send_headers(uint32_t id, const RouteResponse& r, bool end_stream) {
  uint8_t scratch[kMaxResponseBlock];
  const Bytes block = response_header_block(r, scratch);
  uint8_t* p = out_.append(kFrameHeaderSize + block.size());
  const uint8_t frame_flags = flags::kEndHeaders | (end_stream ? flags::kEndStream : 0);
  encode_frame_header(p, static_cast<uint32_t>(block.size()), FrameType::kHeaders, frame_flags, id);
  std::memcpy(p + kFrameHeaderSize, block.data(), block.size());
}

// The common answer (Hello World): a small static body that the windows,
// the peer's frame size and the output bound all allow at once. HEADERS and
// DATA(END_STREAM) go into the arena in one append — one iovec, no pump.
// Returns false, having sent nothing, when any condition does not hold.
bool Connection::send_small_response(uint32_t id, const RouteResponse& r, int64_t stream_window) {
  const size_t n = r.body == BodyKind::kStatic ? r.static_body.size() : 0;
  if (n == 0 || n >= kCopyBodyBelow || static_cast<int64_t>(n) > conn_send_window_ ||
      static_cast<int64_t>(n) > stream_window || n > peer_max_frame_size_ ||
      out_.size() >= options_.output_high_water) {
    return false;
  }
  conn_send_window_ -= static_cast<int64_t>(n);
  HeaderBlockCache& cache = header_cache_;
  const size_t data_header_at = kFrameHeaderSize + cache.size;
  if (cache.frames_size != 0 && cache.body == r.static_body.data() && cache.body_size == n &&
      cache_holds(r)) {
    // The same answer as last time, under the same HPACK state: copy the
    // template and patch the stream ids (§4.1, octets 5-8 of each frame).
    uint8_t* p = out_.append(cache.frames_size);
    std::memcpy(p, cache.frames, cache.frames_size);
    patch_frame_stream_id(p, id);
    patch_frame_stream_id(p + data_header_at, id);
    return true;
  }
  uint8_t scratch[kMaxResponseBlock];
  const Bytes block = response_header_block(r, scratch);
  const size_t size = 2 * kFrameHeaderSize + block.size() + n;
  uint8_t* const start = out_.append(size);
  uint8_t* p = encode_frame_header(start, static_cast<uint32_t>(block.size()), FrameType::kHeaders,
                                   flags::kEndHeaders, id);
  std::memcpy(p, block.data(), block.size());
  p = encode_frame_header(p + block.size(), static_cast<uint32_t>(n), FrameType::kData,
                          flags::kEndStream, id);
  std::memcpy(p, r.static_body.data(), n);
  if (block.data() == cache.block && size <= sizeof cache.frames) {  // replayed: keep a template
    std::memcpy(cache.frames, start, size);
    cache.frames_size = size;
    cache.body = r.static_body.data();
    cache.body_size = n;
  }
  return true;
}

void Connection::send_data(uint32_t id, const void* data, size_t n, bool end_stream,
                           bool by_reference) {
  encode_frame_header(out_.append(kFrameHeaderSize), static_cast<uint32_t>(n), FrameType::kData,
                      end_stream ? flags::kEndStream : 0, id);
  // Small bodies are copied next to their header (the arena merges them into
  // one iovec); large ones are referenced when their owner outlives them.
  if (by_reference && n >= kCopyBodyBelow) {
    out_.append_ref(data, n);
  } else if (n != 0) {
    out_.append_copy(data, n);
  }
}

// Gives the peer back `consumed` octets of receive window: on the stream
// (if it still takes data) and on the connection, batched to half a window
// so that a stream of small DATA frames does not cause a WINDOW_UPDATE each.
void Connection::grant_window(uint32_t stream_id, uint32_t consumed) {
  if (consumed == 0) return;
  conn_recv_unacked_ += consumed;
  if (conn_recv_unacked_ >= options_.connection_window_size / 2) {
    encode_window_update(out_.append(kWindowUpdateFrameSize), 0, conn_recv_unacked_);
    conn_recv_window_ += conn_recv_unacked_;
    conn_recv_unacked_ = 0;
  }
  if (stream_id == 0) return;
  const auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  if (s.remote_closed) return;  // it will send nothing more
  s.recv_unacked += consumed;
  if (s.recv_unacked >= options_.initial_window_size / 2) {
    encode_window_update(out_.append(kWindowUpdateFrameSize), stream_id, s.recv_unacked);
    s.recv_window += s.recv_unacked;
    s.recv_unacked = 0;
  }
}

void Connection::reset_stream(uint32_t id, ErrorCode code) {
  send_rst_stream(id, code);
  // MadeYouReset (CVE-2025-8671): resets we send cost the same budget.
  spend_budget("too many streams reset");
}

void Connection::send_rst_stream(uint32_t id, ErrorCode code) {
  encode_rst_stream(out_.append(kRstStreamFrameSize), id, code);
  history_.mark_reset(id);
  ++counters_.resets_sent;
  finish_stream(id);
}

bool Connection::spend_budget(const char* what) {
  if (--budget_ > 0) return true;
  return connection_error(ErrorCode::kEnhanceYourCalm, what);
}

bool Connection::connection_error(ErrorCode code, const char* detail) {
  if (!done_) {
    send_goaway(code, detail);
    done_ = true;
    close_reason_ = detail;
  }
  return false;
}

void Connection::send_goaway(ErrorCode code, const char* detail) {
  const std::string_view debug(detail);
  encode_goaway(out_.append(kFrameHeaderSize + 8 + debug.size()), last_processed_, code, debug);
  goaway_sent_ = true;
  counters_.goaway_sent = true;
  counters_.goaway_code = static_cast<uint32_t>(code);
}

// The peer closed its sending side (a TCP half-close, TLS close_notify):
// nothing more arrives — no request body, no WINDOW_UPDATE — but the peer
// may still read. Requests already complete are answered, as far as the
// windows granted so far allow; the rest are reset (CANCEL). Done when no
// stream is left.
void Connection::on_input_closed() noexcept {
  if (done_) return;
  input_closed_ = true;
  if (!preface_.preface_complete()) {
    done_ = true;  // no HTTP/2 connection yet: nothing to answer
    return;
  }
  pump_all();
  settle_after_input_closed();
}

// After input closed: once the output is below the high-water mark, every
// stream has been pumped as far as it can go, so one still unanswered waits
// for a request body or window that can no longer come — reset it; one
// answered whose request body was still coming is over too.
void Connection::settle_after_input_closed() {
  if (!input_closed_ || done_) return;
  if (out_.size() < options_.output_high_water) {
    std::vector<uint32_t> ids;
    ids.reserve(streams_.size());
    for (const auto& [id, s] : streams_) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (const uint32_t id : ids) {
      const auto it = streams_.find(id);
      if (it == streams_.end()) continue;
      if (it->second->local_closed) {
        finish_stream(id);
      } else {
        send_rst_stream(id, ErrorCode::kCancel);
      }
    }
  }
  if (streams_.empty()) done_ = true;
}

void Connection::shutdown() noexcept {
  if (done_) return;
  if (!preface_.preface_complete()) {
    done_ = true;
    return;
  }
  // §6.8 graceful: name the last stream we will answer, finish those.
  if (!goaway_sent_) send_goaway(ErrorCode::kNoError, "");
  if (streams_.empty()) done_ = true;
}

void Connection::on_output_drained() noexcept {
  if (done_) return;
  pump_all();
  settle_after_input_closed();
}

}  // namespace h2lab::proto
