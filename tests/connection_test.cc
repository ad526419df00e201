// proto/connection (the full engine, `--engine full`) driven by scripted
// conversations: bytes in through on_input(), frames out of output(), decoded
// with the frame codec and an HPACK decoder — no sockets. Each row is named
// after the RFC 9113 / RFC 7541 rule it checks.
//
// Every conversation also runs through a model of the client (Client below)
// that checks what a server MUST always do: never send DATA beyond the
// client's flow-control windows (§6.9.1) or larger than its
// SETTINGS_MAX_FRAME_SIZE (§4.2), nothing on a stream after END_STREAM or
// RST_STREAM (§5.1), no even (pushed) streams, nothing after a GOAWAY that
// carries an error (§5.4.1).
#include "proto/connection.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "proto/hpack.h"
#include "proto/routes.h"
#include "tests/support/frame_builder.h"

using namespace h2lab::proto;
using namespace h2lab::testing;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr uint8_t kEs = flags::kEndStream;
constexpr uint8_t kEh = flags::kEndHeaders;
constexpr uint16_t kHeaderTableSize = 1, kEnablePush = 2, kMaxConcurrent = 3, kInitialWindow = 4,
                   kMaxFrame = 5, kMaxHeaderList = 6;
constexpr uint32_t kConnWindowRaise = 1024 * 1024 - 65535;  // our preface WINDOW_UPDATE

uint32_t be32(const ByteString& b, size_t off) {
  return (uint32_t{b[off]} << 24) | (uint32_t{b[off + 1]} << 16) | (uint32_t{b[off + 2]} << 8) |
         b[off + 3];
}

std::string text(const ByteString& b) {
  return std::string(b.begin(), b.end());
}

// ---------------------------------------------------------------------------
// Client frames

ByteString data(uint32_t id, const ByteString& body, uint8_t f = 0) {
  return frame(FrameType::kData, f, id, body);
}
ByteString padded(const ByteString& body, uint8_t pad) {
  return ByteString{pad} + body + ByteString(pad, 0);
}
ByteString window_update(uint32_t id, uint32_t increment) {
  return frame(FrameType::kWindowUpdate, 0, id, u32(increment));
}
ByteString rst_stream(uint32_t id, ErrorCode code) {
  return frame(FrameType::kRstStream, 0, id, u32(static_cast<uint32_t>(code)));
}
ByteString ping(const ByteString& opaque, uint8_t f = 0) {
  return frame(FrameType::kPing, f, 0, opaque);
}
ByteString goaway(uint32_t last, ErrorCode code) {
  return frame(FrameType::kGoaway, 0, 0, u32(last) + u32(static_cast<uint32_t>(code)));
}
ByteString priority(uint32_t id, uint32_t dependency, uint8_t weight = 15) {
  return frame(FrameType::kPriority, 0, id, u32(dependency) + ByteString{weight});
}
ByteString settings_ack() {
  return frame(FrameType::kSettings, flags::kAck, 0, {});
}
ByteString continuation(uint32_t id, const ByteString& fragment, uint8_t f = 0) {
  return frame(FrameType::kContinuation, f, id, fragment);
}
// The 9 octets of a frame header alone (its payload never sent).
ByteString header_only(uint8_t type, uint32_t length, uint32_t id) {
  return frame(type, 0, id, {}, length);
}
ByteString payload_of(const ByteString& f) {
  return ByteString(f.begin() + kFrameHeaderSize, f.end());
}

// A header block as HEADERS + exactly n-1 CONTINUATION frames.
ByteString split_n(uint32_t id, const ByteString& block, size_t n, uint8_t end_stream);

// A header block as HEADERS + CONTINUATION frames of at most `piece` octets.
ByteString split_block(uint32_t id, const ByteString& block, size_t piece, uint8_t end_stream) {
  ByteString out;
  size_t pos = 0;
  bool first = true;
  do {
    const size_t n = std::min(piece, block.size() - pos);
    const ByteString part(block.begin() + static_cast<long>(pos),
                          block.begin() + static_cast<long>(pos + n));
    pos += n;
    const uint8_t eh = pos == block.size() ? kEh : 0;
    out = out + (first ? frame(FrameType::kHeaders, static_cast<uint8_t>(end_stream | eh), id, part)
                       : continuation(id, part, eh));
    first = false;
  } while (pos < block.size());
  return out;
}

ByteString split_n(uint32_t id, const ByteString& block, size_t n, uint8_t end_stream) {
  REQUIRE(block.size() >= n);
  ByteString out;
  size_t pos = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t len = i + 1 == n ? block.size() - pos : block.size() / n;
    const ByteString part(block.begin() + static_cast<long>(pos),
                          block.begin() + static_cast<long>(pos + len));
    pos += len;
    const uint8_t eh = i + 1 == n ? kEh : 0;
    out =
        out + (i == 0 ? frame(FrameType::kHeaders, static_cast<uint8_t>(end_stream | eh), id, part)
                      : continuation(id, part, eh));
  }
  return out;
}

Fields request(std::string_view method, std::string_view path, const Fields& extra = {}) {
  Fields f = {{":method", std::string(method)},
              {":scheme", "http"},
              {":path", std::string(path)},
              {":authority", "localhost"}};
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}

// ---------------------------------------------------------------------------
// Server frames

struct Frame {
  FrameHeader h;
  ByteString payload;
  Fields fields;  // HEADERS: the decoded block

  uint32_t word(size_t off) const { return be32(payload, off); }
  bool is(FrameType t) const { return h.is(t); }
};

std::string describe(const Frame& f) {
  static const char* const kNames[] = {"DATA",          "HEADERS",      "PRIORITY", "RST_STREAM",
                                       "SETTINGS",      "PUSH_PROMISE", "PING",     "GOAWAY",
                                       "WINDOW_UPDATE", "CONTINUATION"};
  std::ostringstream o;
  o << (f.h.type < kFrameTypeCount ? kNames[f.h.type] : "UNKNOWN") << "(s=" << f.h.stream_id
    << " f=0x" << std::hex << int{f.h.flags} << std::dec << " len=" << f.h.length;
  if ((f.is(FrameType::kRstStream) || f.is(FrameType::kWindowUpdate)) && f.payload.size() == 4) {
    o << " v=" << f.word(0);
  }
  if (f.is(FrameType::kGoaway) && f.payload.size() >= 8) {
    o << " last=" << f.word(0) << " code=" << f.word(4) << " \""
      << text(ByteString(f.payload.begin() + 8, f.payload.end())) << '"';
  }
  for (const auto& [n, v] : f.fields) o << ' ' << n << ": " << v.substr(0, 40);
  o << ')';
  return o.str();
}

std::string describe(const std::vector<Frame>& frames) {
  std::string s;
  for (const Frame& f : frames) s += describe(f) + "\n";
  return s.empty() ? "(no frames)" : s;
}

void check_goaway(const Frame& f, uint32_t last, ErrorCode code, std::string_view debug) {
  INFO(describe(f));
  REQUIRE(f.is(FrameType::kGoaway));
  REQUIRE(f.h.stream_id == 0);
  REQUIRE(f.payload.size() >= 8);
  CHECK(f.word(0) == last);
  CHECK(f.word(4) == static_cast<uint32_t>(code));
  CHECK(text(ByteString(f.payload.begin() + 8, f.payload.end())) == debug);
}

void check_rst(const Frame& f, uint32_t id, ErrorCode code) {
  INFO(describe(f));
  REQUIRE(f.is(FrameType::kRstStream));
  CHECK(f.h.stream_id == id);
  REQUIRE(f.payload.size() == 4);
  CHECK(f.word(0) == static_cast<uint32_t>(code));
}

size_t count(const std::vector<Frame>& frames, FrameType t) {
  return static_cast<size_t>(
      std::count_if(frames.begin(), frames.end(), [t](const Frame& f) { return f.is(t); }));
}

// What the server sent on one stream.
struct Response {
  Fields fields;
  ByteString body;
  std::vector<uint32_t> data_sizes;
  bool headers_seen = false;
  bool ended = false;         // END_STREAM seen
  bool client_reset = false;  // the client sent RST_STREAM
  std::optional<uint32_t> rst;

  std::string field(std::string_view name) const {
    for (const auto& [n, v] : fields) {
      if (n == name) return v;
    }
    return "<absent>";
  }
  std::string status() const { return field(":status"); }
};

// ---------------------------------------------------------------------------
// The client side of a conversation.

class Client {
 public:
  explicit Client(ConnectionOptions options = {}) : options_(options), conn_(std::move(options)) {}

  Connection& conn() { return conn_; }
  hpack::Encoder& encoder() { return enc_; }
  // Off: output is drained but on_output_drained() is not called (a slow socket).
  void set_auto_drain(bool on) { auto_drain_ = on; }
  const ByteString& last_output() const { return last_output_; }
  size_t max_queued() const { return max_queued_; }
  Response& response(uint32_t id) { return responses_[id]; }
  int64_t conn_window() const { return conn_window_; }
  int64_t stream_window(uint32_t id) const { return windows_.at(id); }

  // Feeds `in`: the preface and then one complete frame per on_input() call,
  // so that each output frame answers a known input frame (any split is
  // allowed by the contract; the split tests below check that the output
  // does not depend on it). An incomplete tail is presented too.
  std::vector<Frame> send(const ByteString& in) {
    unframed_.insert(unframed_.end(), in.begin(), in.end());
    std::vector<Frame> frames;
    last_output_.clear();
    while (const size_t n = unit_length()) {
      const ByteString unit(unframed_.begin(), unframed_.begin() + static_cast<long>(n));
      observe(unit);
      const ByteString out = feed(ByteString(unit.begin() + static_cast<long>(fed_), unit.end()));
      unframed_.erase(unframed_.begin(), unframed_.begin() + static_cast<long>(n));
      fed_ = 0;
      append(frames, out);
    }
    if (unframed_.size() > fed_) {
      const ByteString out =
          feed(ByteString(unframed_.begin() + static_cast<long>(fed_), unframed_.end()));
      fed_ = unframed_.size();
      append(frames, out);
    }
    return frames;
  }

  // The session's "output drained" signal, once.
  std::vector<Frame> drained() {
    conn_.on_output_drained();
    max_queued_ = std::max(max_queued_, conn_.output().size());
    last_output_ = drain(conn_.output());
    return parse(last_output_);
  }

  // Preface + SETTINGS; checks the server preface (§3.4) and the ACK (§6.5.3).
  void open(std::initializer_list<std::pair<uint16_t, uint32_t>> entries = {}) {
    const auto frames = send(preface() + settings(entries));
    INFO(describe(frames));
    const bool raise = options_.connection_window_size > kDefaultInitialWindowSize;
    REQUIRE(frames.size() == (raise ? 3u : 2u));
    REQUIRE(frames[0].is(FrameType::kSettings));
    CHECK(frames[0].h.flags == 0);
    CHECK(frames[0].payload ==
          payload_of(settings({{kMaxConcurrent, options_.max_concurrent_streams},
                               {kInitialWindow, options_.initial_window_size},
                               {kMaxFrame, options_.max_frame_size},
                               {kMaxHeaderList, options_.max_header_list_size}})));
    if (raise) {
      REQUIRE(frames[1].is(FrameType::kWindowUpdate));
      CHECK(frames[1].h.stream_id == 0);
      CHECK(frames[1].word(0) == options_.connection_window_size - kDefaultInitialWindowSize);
    }
    CHECK(frames.back().is(FrameType::kSettings));
    CHECK(frames.back().h.flags == flags::kAck);
    CHECK(frames.back().h.length == 0);
  }

  ByteString block(const Fields& fields) {
    std::vector<hpack::Header> list;
    for (const auto& [n, v] : fields) list.push_back({n, v});
    ByteString out(enc_.max_encoded_size(list));
    const auto n = enc_.encode(list, out);
    REQUIRE(n);
    out.resize(*n);
    return out;
  }
  ByteString headers(uint32_t id, const Fields& fields, uint8_t f = kEs | kEh) {
    return frame(FrameType::kHeaders, f, id, block(fields));
  }
  ByteString get(uint32_t id, std::string_view path = "/") {
    return headers(id, request("GET", path));
  }

 private:
  // Octets of the next whole unit (the preface, or one frame), 0 if incomplete.
  size_t unit_length() const {
    if (preface_left_ > 0) return unframed_.size() >= preface_left_ ? preface_left_ : 0;
    FrameHeader h;
    if (!decode_frame_header(unframed_, h)) return 0;
    return unframed_.size() >= kFrameHeaderSize + h.length ? kFrameHeaderSize + h.length : 0;
  }

  // The client's view of its own frames: new streams, windows, settings.
  void observe(const ByteString& unit) {
    if (preface_left_ > 0) {
      preface_left_ = 0;
      return;
    }
    FrameHeader h;
    decode_frame_header(unit, h);
    const ByteString p(unit.begin() + kFrameHeaderSize, unit.end());
    if (h.is(FrameType::kHeaders) && h.stream_id % 2 == 1 && h.stream_id > max_stream_) {
      max_stream_ = h.stream_id;
      windows_[h.stream_id] = initial_window_;
    } else if (h.is(FrameType::kSettings) && !h.has(flags::kAck) && p.size() % 6 == 0) {
      for (size_t i = 0; i < p.size(); i += 6) {
        const uint16_t id = static_cast<uint16_t>((p[i] << 8) | p[i + 1]);
        const uint32_t v = be32(p, i + 2);
        if (id == kInitialWindow && v <= kMaxWindowSize) {
          for (auto& [sid, w] : windows_) w += int64_t{v} - initial_window_;
          initial_window_ = v;
        } else if (id == kMaxFrame && v >= kDefaultMaxFrameSize && v <= kLargestMaxFrameSize) {
          max_frame_ = v;
        }
      }
    } else if (h.is(FrameType::kWindowUpdate) && p.size() == 4) {
      const uint32_t inc = be32(p, 0) & kMaxWindowSize;
      if (h.stream_id == 0) {
        conn_window_ += inc;
      } else if (windows_.count(h.stream_id) != 0) {
        windows_[h.stream_id] += inc;
      }
    } else if (h.is(FrameType::kRstStream) && h.stream_id != 0) {
      responses_[h.stream_id].client_reset = true;
    }
  }

  // One on_input() call as a session makes it, checking the contract.
  ByteString feed(const ByteString& in) {
    pending_.insert(pending_.end(), in.begin(), in.end());
    const size_t used = conn_.on_input(pending_);
    REQUIRE(used <= pending_.size());
    consumed_ += used;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(used));
    if (conn_.done()) {
      CHECK(pending_.empty());  // input after the end is discarded, not kept
    } else if (consumed_ >= kClientPreface.size() && pending_.size() >= kFrameHeaderSize) {
      // Only an incomplete frame may be left (engine.h).
      FrameHeader h;
      decode_frame_header(pending_, h);
      REQUIRE(pending_.size() < kFrameHeaderSize + h.length);
      REQUIRE(pending_.size() < conn_.max_frame_bytes());
    }
    max_queued_ = std::max(max_queued_, conn_.output().size());
    ByteString out = drain(conn_.output());
    while (auto_drain_ && !conn_.done()) {
      conn_.on_output_drained();
      const ByteString more = drain(conn_.output());
      if (more.empty()) break;
      out = out + more;
    }
    last_output_ = last_output_ + out;
    return out;
  }

  void append(std::vector<Frame>& to, const ByteString& out) {
    auto frames = parse(out);
    to.insert(to.end(), frames.begin(), frames.end());
  }

  std::vector<Frame> parse(const ByteString& out) {
    std::vector<Frame> frames;
    size_t pos = 0;
    while (pos < out.size()) {
      FrameHeader h;
      REQUIRE(decode_frame_header(Bytes(out).subspan(pos), h));
      REQUIRE(out.size() - pos >= kFrameHeaderSize + h.length);
      Frame f{h,
              ByteString(out.begin() + static_cast<long>(pos + kFrameHeaderSize),
                         out.begin() + static_cast<long>(pos + kFrameHeaderSize + h.length)),
              {}};
      pos += kFrameHeaderSize + h.length;
      INFO("server sent " << describe(f));
      REQUIRE_FALSE(error_goaway_seen_);  // §5.4.1: a GOAWAY with an error is the last frame
      REQUIRE(h.type < kFrameTypeCount);
      if (h.is(FrameType::kHeaders) || h.is(FrameType::kData) || h.is(FrameType::kRstStream)) {
        REQUIRE(h.stream_id % 2 == 1);  // no server push (§8.4)
        REQUIRE(h.stream_id <= max_stream_);
      }
      Response& r = responses_[h.stream_id];
      switch (static_cast<FrameType>(h.type)) {
        case FrameType::kHeaders: {
          REQUIRE(h.has(kEh));
          REQUIRE_FALSE(h.has(flags::kPadded));
          REQUIRE_FALSE(h.has(flags::kPriority));
          REQUIRE_FALSE(r.headers_seen);  // we send no trailers
          REQUIRE_FALSE(r.ended);
          REQUIRE_FALSE(r.rst);
          REQUIRE_FALSE(r.client_reset);
          const auto status = dec_.decode(f.payload, [&](std::string_view n, std::string_view v) {
            f.fields.emplace_back(std::string(n), std::string(v));
          });
          REQUIRE(status == hpack::Status::Ok);
          r.fields = f.fields;
          r.headers_seen = true;
          r.ended = h.has(kEs);
          break;
        }
        case FrameType::kData: {
          REQUIRE(r.headers_seen);
          REQUIRE_FALSE(r.ended);
          REQUIRE_FALSE(r.rst);
          REQUIRE_FALSE(r.client_reset);
          REQUIRE_FALSE(h.has(flags::kPadded));
          REQUIRE(h.length <= max_frame_);  // §4.2: the client's SETTINGS_MAX_FRAME_SIZE
          conn_window_ -= h.length;         // §6.9.1
          windows_.at(h.stream_id) -= h.length;
          REQUIRE(conn_window_ >= 0);
          REQUIRE(windows_.at(h.stream_id) >= 0);
          r.body = r.body + f.payload;
          r.data_sizes.push_back(h.length);
          r.ended = h.has(kEs);
          break;
        }
        case FrameType::kRstStream:
          REQUIRE(h.length == 4);
          r.rst = f.word(0);
          break;
        case FrameType::kGoaway:
          REQUIRE(h.stream_id == 0);
          if (f.word(4) != 0) error_goaway_seen_ = true;
          break;
        case FrameType::kPushPromise:
        case FrameType::kContinuation:
        case FrameType::kPriority:
          FAIL("a server never sends this frame");
          break;
        default:
          break;
      }
      frames.push_back(std::move(f));
    }
    return frames;
  }

  ConnectionOptions options_;
  Connection conn_;
  hpack::Encoder enc_;
  hpack::Decoder dec_;
  bool auto_drain_ = true;

  ByteString unframed_;  // client octets not yet cut into units
  size_t fed_ = 0;       // octets of unframed_ already presented
  size_t preface_left_ = kClientPreface.size();
  ByteString pending_;  // what the engine left unconsumed
  size_t consumed_ = 0;
  ByteString last_output_;
  size_t max_queued_ = 0;

  uint32_t max_stream_ = 0;
  int64_t initial_window_ = kDefaultInitialWindowSize;
  uint32_t max_frame_ = kDefaultMaxFrameSize;
  int64_t conn_window_ = kDefaultInitialWindowSize;
  std::map<uint32_t, int64_t> windows_;
  std::map<uint32_t, Response> responses_;
  bool error_goaway_seen_ = false;
};

}  // namespace

// ===========================================================================
// §3.4 Connection preface

TEST_CASE(
    "§3.4 server preface: SETTINGS with our limits, connection WINDOW_UPDATE, ACK of the client's "
    "SETTINGS") {
  Client c;
  c.open({{kMaxConcurrent, 50}});  // checks every value
  CHECK(c.conn().max_frame_bytes() == kFrameHeaderSize + 16384);
  CHECK_FALSE(c.conn().done());

  ConnectionOptions o;
  o.max_concurrent_streams = 7;
  o.initial_window_size = 30000;
  o.max_frame_size = 20000;
  o.max_header_list_size = 1000;
  o.connection_window_size = 65535;  // nothing to raise: no WINDOW_UPDATE
  Client d(o);
  d.open();
  CHECK(d.conn().max_frame_bytes() == kFrameHeaderSize + 20000);
  // §4.2: our SETTINGS_MAX_FRAME_SIZE is the bound we judge frames by.
  CHECK(d.send(frame(0xfa, 0, 0, ByteString(20000, 'x'))).empty());
  const auto frames = d.send(header_only(0xfa, 20001, 0));
  REQUIRE(frames.size() == 1);
  check_goaway(frames[0], 0, ErrorCode::kFrameSizeError,
               "frame larger than SETTINGS_MAX_FRAME_SIZE");
}

// What a wrong preface gets: our SETTINGS (the server preface comes first),
// then GOAWAY(0, PROTOCOL_ERROR) — computed here, not from the engine.
ByteString invalid_preface_answer() {
  return frame(FrameType::kSettings, 0, 0, {}) +
         frame(FrameType::kGoaway, 0, 0,
               u32(0) + u32(static_cast<uint32_t>(ErrorCode::kProtocolError)) +
                   bytes("invalid connection preface"));
}

ByteString run_in_pieces(const ByteString& in, std::vector<size_t> cuts, bool* done = nullptr);
std::vector<size_t> every_octet(size_t n);

TEST_CASE("§3.4 a wrong preface is GOAWAY(PROTOCOL_ERROR), whole or split anywhere") {
  const ByteString inputs[] = {
      bytes("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),  // wrong at octet 18
      ByteString{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03,
                 0x03},  // a TLS ClientHello
      bytes("pri * http/2.0\r\n\r\nSM\r\n\r\n"),
      bytes("INVALID CONNECTION PREFACE\r\n\r\n"),  // three words, but not HTTP/1.x
      bytes("GET / HTTP/2.0\r\n\r\n"),
      bytes("GET  / HTTP/1.1\r\n"),  // two spaces: not a request line
      bytes("G(T / HTTP/1.1\r\n"),   // '(' is not a token octet
  };
  for (const ByteString& in : inputs) {
    INFO(text(in));
    bool done = false;
    CHECK(run_in_pieces(in, {}, &done) == invalid_preface_answer());
    CHECK(done);
    CHECK(run_in_pieces(in, every_octet(in.size()), &done) == invalid_preface_answer());
    CHECK(done);
    for (size_t cut = 1; cut < in.size(); ++cut) {
      INFO("cut at " << cut);
      CHECK(run_in_pieces(in, {cut}, &done) == invalid_preface_answer());
      CHECK(done);
    }
    Connection c;
    CHECK(c.on_input(in) == in.size());
    CHECK(std::string(c.close_reason()) == "invalid connection preface");
    CHECK(c.counters().goaway_sent);
    CHECK(c.counters().goaway_code == static_cast<uint32_t>(ErrorCode::kProtocolError));
  }
  // The 17 octets of a fuzzer's find: a token and a space may still become
  // a request line, whatever the cuts — nothing is decided, nothing sent.
  const ByteString undecided = bytes("PHBBBBBBBBBBBTTA ");
  for (const std::vector<size_t>& cuts : {std::vector<size_t>{}, every_octet(undecided.size())}) {
    bool done = true;
    CHECK(run_in_pieces(undecided, cuts, &done).empty());
    CHECK_FALSE(done);
  }
  // Too short to decide, then EOF: no connection, nothing to say.
  for (const char* partial : {"GET", "PRI * HTTP/2.0\r\n", "GET /index.html HTTP/1"}) {
    INFO(partial);
    Connection c;
    CHECK(c.on_input(bytes(partial)) == std::string_view(partial).size());
    CHECK_FALSE(c.done());
    c.on_input_closed();
    CHECK(c.done());
    CHECK(c.output().empty());
    c.shutdown();  // no connection yet: no GOAWAY either
    CHECK(c.output().empty());
  }
  // Octets after the deciding one are not looked at.
  Connection c;
  CHECK(c.on_input(bytes("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")) == 24);
}

constexpr std::string_view kHttp1Answer =
    "HTTP/1.1 505 HTTP Version Not Supported\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 103\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This server speaks HTTP/2 only (h2c with prior knowledge).\n"
    "With curl: curl --http2-prior-knowledge URL\n";

// Feeds `in` cut at `cuts` the way a session does (the unconsumed rest is
// presented again with the next piece); returns all output.
ByteString run_in_pieces(const ByteString& in, std::vector<size_t> cuts, bool* done) {
  Connection c;
  ByteString pending;
  ByteString out;
  size_t prev = 0;
  cuts.push_back(in.size());
  for (const size_t cut : cuts) {
    pending.insert(pending.end(), in.begin() + static_cast<long>(prev),
                   in.begin() + static_cast<long>(cut));
    prev = cut;
    const size_t used = c.on_input(pending);
    REQUIRE(used <= pending.size());
    pending.erase(pending.begin(), pending.begin() + static_cast<long>(used));
    REQUIRE(pending.size() < c.max_frame_bytes());
    out = out + drain(c.output());
  }
  CHECK((pending.empty() || !c.done()));
  if (done != nullptr) *done = c.done();
  return out;
}

std::vector<size_t> every_octet(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

TEST_CASE("§3.4 an HTTP/1.1 request gets the 505 text, whole or split anywhere") {
  for (const char* request_line :
       {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "POST /echo HTTP/1.1\r\n\r\n",
        "PRI * HTTP/1.1\r\n\r\n", "OPTIONS * HTTP/1.1\r\n\r\n", "get /x?a=b HTTP/1.0\r\n\r\n",
        "M-SEARCH * HTTP/1.1\r\n"}) {
    INFO(request_line);
    const ByteString in = bytes(request_line);
    bool done = false;
    CHECK(text(run_in_pieces(in, {}, &done)) == kHttp1Answer);
    CHECK(done);
    CHECK(text(run_in_pieces(in, every_octet(in.size()), &done)) == kHttp1Answer);
    CHECK(done);
    for (size_t cut = 1; cut < in.size(); ++cut) {
      INFO("cut at " << cut);
      CHECK(text(run_in_pieces(in, {cut}, &done)) == kHttp1Answer);
      CHECK(done);
    }
  }
  Connection c;
  c.on_input(bytes("GET / HTTP/1.1\r\n\r\n"));
  CHECK(std::string(c.close_reason()) == "HTTP/1.1 request on an HTTP/2-only port");
}

TEST_CASE("§3.4 the client's first frame must be SETTINGS: else GOAWAY PROTOCOL_ERROR") {
  const std::pair<const char*, ByteString> firsts[] = {
      {"PING", ping(ByteString(8, 1))},
      {"SETTINGS ACK", settings_ack()},
      {"HEADERS", get_request(1)},
      {"WINDOW_UPDATE", window_update(0, 1)},
      {"an unknown type", frame(0xfa, 0, 0, bytes("x"))},
  };
  for (const auto& [name, first] : firsts) {
    INFO(name);
    Client c;
    const auto frames = c.send(preface() + first);
    REQUIRE(frames.size() == 3);  // SETTINGS, WINDOW_UPDATE, GOAWAY
    check_goaway(frames[2], 0, ErrorCode::kProtocolError, "first frame is not SETTINGS");
    CHECK(c.conn().done());
  }
}

// ===========================================================================
// The on_input() contract: the output does not depend on how input is split.

TEST_CASE("engine.h: input split at every octet, or in two anywhere, gives the same output") {
  hpack::Encoder enc;
  const auto blk = [&](const Fields& fields) {
    std::vector<hpack::Header> list;
    for (const auto& [n, v] : fields) list.push_back({n, v});
    ByteString out(enc.max_encoded_size(list));
    out.resize(*enc.encode(list, out));
    return out;
  };
  const ByteString conversations[] = {
      // Requests, control frames, a block over CONTINUATIONs, padded DATA, echo.
      preface() + settings({{kInitialWindow, 100000}, {kMaxFrame, 20000}}) +
          frame(FrameType::kHeaders, kEs | kEh, 1, blk(request("GET", "/"))) +
          ping(bytes("12345678")) +
          split_block(3, blk(request("POST", "/echo", {{"content-length", "5"}})), 7, 0) +
          data(3, bytes("hel")) + data(3, padded(bytes("lo"), 3), kEs | flags::kPadded) +
          window_update(0, 100000) +
          frame(FrameType::kHeaders, kEs | kEh, 5, blk(request("GET", "/bytes/40000"))) +
          priority(7, 0) + frame(0xfe, 0, 0, bytes("x")) +
          frame(FrameType::kHeaders, kEs | kEh, 7, blk(request("HEAD", "/nope"))) + settings_ack(),
      // Ends in a connection error judged at a frame header.
      preface() + settings() + get_request(1) + header_only(0, 16385, 1),
  };
  for (const ByteString& in : conversations) {
    const ByteString whole = run_in_pieces(in, {});
    REQUIRE_FALSE(whole.empty());
    CHECK(run_in_pieces(in, every_octet(in.size())) == whole);
    for (size_t cut = 1; cut < in.size(); ++cut) {
      INFO("cut at " << cut);
      CHECK(run_in_pieces(in, {cut}) == whole);
    }
  }
}

// ===========================================================================
// One row per rule. Each row starts on a connection where stream 1 (GET /)
// was answered, sends its bytes, and expects one outcome. After a stream
// error or an accepted frame the connection must still serve a request that
// refers to the dynamic table (so every header block was decoded: HPACK in
// sync, RFC 9113 §4.3).

enum class Expect { kGoaway, kRst, kNothing, kBytes, kAnswered };

using Script = std::function<ByteString(Client&)>;

struct Row {
  std::string name;
  Script bytes;
  Expect expect = Expect::kNothing;
  ErrorCode code = ErrorCode::kNoError;
  uint32_t id = 0;         // GOAWAY: last-stream-id; RST_STREAM, answered: the stream
  std::string detail = {};  // GOAWAY: debug data; answered: :status
  ByteString output = {};  // kBytes: the exact output
  std::string body = {};   // kAnswered: the body, when given
};

Script fixed(ByteString b) {
  return [b](Client&) { return b; };
}

Row conn_error(std::string name, Script s, ErrorCode code, std::string debug, uint32_t last = 1) {
  return Row{std::move(name), std::move(s), Expect::kGoaway, code, last, std::move(debug)};
}
Row stream_error(std::string name, Script s, uint32_t id, ErrorCode code) {
  return Row{std::move(name), std::move(s), Expect::kRst, code, id, {}};
}
Row ignored(std::string name, Script s) {
  return Row{std::move(name), std::move(s), Expect::kNothing};
}
Row answered_with(std::string name, Script s, ByteString output) {
  return Row{std::move(name),  std::move(s), Expect::kBytes, ErrorCode::kNoError, 0, {},
             std::move(output)};
}
Row answered(std::string name, Script s, uint32_t id, std::string status, std::string body = {}) {
  return Row{std::move(name),   std::move(s), Expect::kAnswered, ErrorCode::kNoError, id,
             std::move(status), {},           std::move(body)};
}

// Stream 3 half-closed (remote): GET /bytes/100000 waiting for its stream
// window (the connection window was raised, so later streams still flow).
ByteString blocked_on_stream_window(Client& c) {
  return window_update(0, 200000) + c.get(3, "/bytes/100000");
}

const Fields kSync = {
    {"x-sync", "1"}};  // inserted into the dynamic table by the row, used after it

Fields with_sync(Fields f) {
  f.insert(f.end(), kSync.begin(), kSync.end());
  return f;
}

// A malformed request on stream 3 (§8.1.1: stream error PROTOCOL_ERROR).
Row malformed(std::string name, Fields fields, uint8_t f = kEs | kEh) {
  return stream_error(
      std::move(name), [fields, f](Client& c) { return c.headers(3, with_sync(fields), f); }, 3,
      ErrorCode::kProtocolError);
}

Fields without(Fields f, std::string_view name) {
  f.erase(std::remove_if(f.begin(), f.end(), [&](const auto& p) { return p.first == name; }),
          f.end());
  return f;
}

const ByteString kSettingsAckFrame = settings_ack();

// Opens stream 3 as POST /echo (body follows).
ByteString open_echo(Client& c, uint32_t id = 3, Fields extra = {}) {
  return c.headers(id, request("POST", "/echo", extra), kEh);
}

// Stream 5 answered first: a server stream id below it is still idle (we
// never push), not closed.
Script after_stream_5(ByteString then) {
  return [then](Client& c) { return c.get(5) + then; };
}

std::vector<Row> rows() {
  const Fields get = request("GET", "/");
  const Fields post_echo = request("POST", "/echo");
  std::vector<Row> r;

  // §4 frames: sizes and per-type rules (proto/frame.cc), all connection errors.
  r.push_back(conn_error(
      "§4.2 frame over SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR at the header, payload never sent",
      fixed(header_only(0, 16385, 1)), ErrorCode::kFrameSizeError,
      "frame larger than SETTINGS_MAX_FRAME_SIZE"));
  r.push_back(conn_error("§4.2 the size limit applies to unknown frame types too",
                         fixed(header_only(0xfa, 16385, 0)), ErrorCode::kFrameSizeError,
                         "frame larger than SETTINGS_MAX_FRAME_SIZE"));
  r.push_back(ignored("§4.2/§5.5 a frame of exactly SETTINGS_MAX_FRAME_SIZE is accepted",
                      fixed(frame(0xfa, 0, 0, ByteString(16384, 0)))));
  r.push_back(answered(
      "§4.1 unknown flags are ignored",
      [](Client& c) {
        return c.headers(3, request("GET", "/"), kEs | kEh | 0x2 | 0x10 | 0x40 | 0x80);
      },
      3, "200"));
  r.push_back(answered(
      "§4.1 the reserved bit of the stream id is ignored",
      [](Client& c) { return c.headers(3 | 0x80000000u, request("GET", "/")); }, 3, "200"));
  r.push_back(conn_error("§6.1 DATA on stream 0: PROTOCOL_ERROR", fixed(data(0, bytes("x"))),
                         ErrorCode::kProtocolError, "DATA on stream 0"));
  r.push_back(conn_error("§6.1 padded DATA without a Pad Length octet: FRAME_SIZE_ERROR",
                         fixed(data(1, {}, flags::kPadded)), ErrorCode::kFrameSizeError,
                         "padded frame without pad length"));
  r.push_back(stream_error(
      "§6.1 DATA padding one octet shorter than the payload is valid (here: closed stream)",
      fixed(data(1, ByteString{1, 0}, flags::kPadded)), 1, ErrorCode::kStreamClosed));
  r.push_back(conn_error("§6.1 DATA padding as long as the payload: PROTOCOL_ERROR",
                         fixed(data(1, ByteString{1}, flags::kPadded)), ErrorCode::kProtocolError,
                         "padding exceeds payload"));
  r.push_back(conn_error(
      "§6.2 HEADERS on stream 0: PROTOCOL_ERROR",
      [](Client& c) { return c.headers(0, request("GET", "/")); }, ErrorCode::kProtocolError,
      "HEADERS on stream 0"));
  r.push_back(conn_error(
      "§6.2 HEADERS padding longer than the payload: PROTOCOL_ERROR",
      fixed(frame(FrameType::kHeaders, kEs | kEh | flags::kPadded, 3, ByteString{10, 0x82})),
      ErrorCode::kProtocolError, "padding exceeds payload"));
  r.push_back(conn_error(
      "§6.2 HEADERS with PRIORITY flag shorter than 5 octets: FRAME_SIZE_ERROR",
      fixed(frame(FrameType::kHeaders, kEs | kEh | flags::kPriority, 3, ByteString{0, 0, 0, 0})),
      ErrorCode::kFrameSizeError, "frame too short for its fields"));
  r.push_back(conn_error(
      "§5.3.1 HEADERS that depend on their own stream: PROTOCOL_ERROR",
      [](Client& c) {
        return frame(FrameType::kHeaders, kEs | kEh | flags::kPriority, 3,
                     u32(3) + ByteString{15} + c.block(request("GET", "/")));
      },
      ErrorCode::kProtocolError, "stream depends on itself"));
  r.push_back(answered(
      "§6.2 HEADERS with padding and priority fields are answered",
      [](Client& c) {
        return frame(FrameType::kHeaders, kEs | kEh | flags::kPadded | flags::kPriority, 3,
                     ByteString{4} + u32(0x80000001u) + ByteString{200} +
                         c.block(request("GET", "/")) + ByteString(4, 0));
      },
      3, "200", "Hello World\n"));
  r.push_back(conn_error("§6.3 PRIORITY on stream 0: PROTOCOL_ERROR", fixed(priority(0, 1)),
                         ErrorCode::kProtocolError, "PRIORITY on stream 0"));
  r.push_back(stream_error("§6.3 PRIORITY of 4 octets: stream error FRAME_SIZE_ERROR",
                           fixed(frame(FrameType::kPriority, 0, 1, u32(0))), 1,
                           ErrorCode::kFrameSizeError));
  r.push_back(
      stream_error("§5.3.1 PRIORITY depending on its own stream: stream error PROTOCOL_ERROR",
                   fixed(priority(1, 1)), 1, ErrorCode::kProtocolError));
  r.push_back(ignored("§5.1/§5.3.2 PRIORITY on an idle stream is accepted", fixed(priority(9, 0))));
  // §5.1: no RST_STREAM on an idle stream, so the stream error is raised to
  // a connection error there (§5.4).
  r.push_back(conn_error("§6.3 PRIORITY of 4 octets on an idle stream: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kPriority, 0, 9, u32(0))),
                         ErrorCode::kFrameSizeError, "PRIORITY length is not 5"));
  r.push_back(conn_error("§5.3.1 PRIORITY on an idle even stream depending on itself",
                         fixed(priority(4, 4)), ErrorCode::kProtocolError,
                         "stream depends on itself"));
  r.push_back(
      ignored("§5.1/§5.3.2 PRIORITY on an idle even stream is accepted", fixed(priority(4, 0))));
  r.push_back(conn_error("§6.4 RST_STREAM on stream 0: PROTOCOL_ERROR",
                         fixed(rst_stream(0, ErrorCode::kCancel)), ErrorCode::kProtocolError,
                         "RST_STREAM on stream 0"));
  r.push_back(conn_error("§6.4 RST_STREAM of 3 octets: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kRstStream, 0, 1, ByteString{0, 0, 8})),
                         ErrorCode::kFrameSizeError, "RST_STREAM length is not 4"));
  r.push_back(conn_error("§5.1/§6.4 RST_STREAM on an idle stream: PROTOCOL_ERROR",
                         fixed(rst_stream(5, ErrorCode::kCancel)), ErrorCode::kProtocolError,
                         "RST_STREAM on an idle stream"));
  r.push_back(conn_error(
      "§5.1 RST_STREAM on an even stream below the last client stream (idle): PROTOCOL_ERROR",
      after_stream_5(rst_stream(2, ErrorCode::kCancel)), ErrorCode::kProtocolError,
      "RST_STREAM on an idle stream", 5));
  r.push_back(ignored("§5.1 RST_STREAM on a closed stream is accepted",
                      fixed(rst_stream(1, ErrorCode::kCancel))));
  r.push_back(conn_error("§6.5 SETTINGS on a stream: PROTOCOL_ERROR",
                         fixed(frame(FrameType::kSettings, 0, 1, {})), ErrorCode::kProtocolError,
                         "SETTINGS on a stream"));
  r.push_back(conn_error("§6.5 SETTINGS ACK with a payload: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kSettings, flags::kAck, 0, ByteString(6, 0))),
                         ErrorCode::kFrameSizeError, "SETTINGS ACK with a payload"));
  r.push_back(conn_error("§6.5 SETTINGS of 5 octets: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kSettings, 0, 0, ByteString{0, 3, 0, 0, 0})),
                         ErrorCode::kFrameSizeError, "SETTINGS length not a multiple of 6"));
  r.push_back(conn_error("§6.5.2 SETTINGS_ENABLE_PUSH 2: PROTOCOL_ERROR",
                         fixed(settings({{kEnablePush, 2}})), ErrorCode::kProtocolError,
                         "ENABLE_PUSH not 0 or 1"));
  r.push_back(conn_error("§6.5.2 SETTINGS_INITIAL_WINDOW_SIZE 2^31: FLOW_CONTROL_ERROR",
                         fixed(settings({{kInitialWindow, 0x80000000u}})),
                         ErrorCode::kFlowControlError, "INITIAL_WINDOW_SIZE above 2^31-1"));
  r.push_back(conn_error("§6.5.2 SETTINGS_MAX_FRAME_SIZE 16383: PROTOCOL_ERROR",
                         fixed(settings({{kMaxFrame, 16383}})), ErrorCode::kProtocolError,
                         "MAX_FRAME_SIZE out of range"));
  r.push_back(conn_error("§6.5.2 SETTINGS_MAX_FRAME_SIZE 2^24: PROTOCOL_ERROR",
                         fixed(settings({{kMaxFrame, 1u << 24}})), ErrorCode::kProtocolError,
                         "MAX_FRAME_SIZE out of range"));
  r.push_back(answered_with(
      "§6.5.3 SETTINGS is acknowledged; §6.5.2 unknown and boundary values are accepted",
      fixed(settings({{0x99, 7},
                      {kEnablePush, 0},
                      {kEnablePush, 1},
                      {kMaxFrame, 16777215},
                      {kMaxFrame, 16384},
                      {kInitialWindow, 0x7fffffff},
                      {kInitialWindow, 65535},
                      {kMaxHeaderList, 1},
                      {kMaxConcurrent, 0},
                      {kHeaderTableSize, 4096}})),
      kSettingsAckFrame));
  r.push_back(
      ignored("§6.5.3 a SETTINGS ACK from the client is not answered", fixed(settings_ack())));
  r.push_back(conn_error(
      "§8.4 PUSH_PROMISE from a client: PROTOCOL_ERROR",
      [](Client& c) {
        return frame(FrameType::kPushPromise, kEh, 1, u32(2) + c.block(request("GET", "/")));
      },
      ErrorCode::kProtocolError, "client sent PUSH_PROMISE"));
  r.push_back(answered_with(
      "§6.7 PING is answered with ACK and the same opaque data",
      fixed(ping(bytes("\x01\x02\x03\x04\xf5\xf6\xf7\xf8"))),
      frame(FrameType::kPing, flags::kAck, 0, bytes("\x01\x02\x03\x04\xf5\xf6\xf7\xf8"))));
  r.push_back(
      ignored("§6.7 a PING ACK is not answered", fixed(ping(ByteString(8, 7), flags::kAck))));
  r.push_back(conn_error("§6.7 PING on a stream: PROTOCOL_ERROR",
                         fixed(frame(FrameType::kPing, 0, 1, ByteString(8, 0))),
                         ErrorCode::kProtocolError, "PING on a stream"));
  r.push_back(conn_error("§6.7 PING of 7 octets: FRAME_SIZE_ERROR", fixed(ping(ByteString(7, 0))),
                         ErrorCode::kFrameSizeError, "PING length is not 8"));
  r.push_back(conn_error("§6.7 PING of 9 octets: FRAME_SIZE_ERROR", fixed(ping(ByteString(9, 0))),
                         ErrorCode::kFrameSizeError, "PING length is not 8"));
  r.push_back(conn_error("§6.8 GOAWAY on a stream: PROTOCOL_ERROR",
                         fixed(frame(FrameType::kGoaway, 0, 1, ByteString(8, 0))),
                         ErrorCode::kProtocolError, "GOAWAY on a stream"));
  r.push_back(conn_error("§6.8 GOAWAY of 7 octets: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kGoaway, 0, 0, ByteString(7, 0))),
                         ErrorCode::kFrameSizeError, "GOAWAY shorter than 8"));
  r.push_back(conn_error("§6.9 WINDOW_UPDATE of 3 octets: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kWindowUpdate, 0, 0, ByteString{0, 0, 1})),
                         ErrorCode::kFrameSizeError, "WINDOW_UPDATE length is not 4"));
  r.push_back(conn_error("§6.9 WINDOW_UPDATE of 5 octets on a stream: FRAME_SIZE_ERROR",
                         fixed(frame(FrameType::kWindowUpdate, 0, 1, ByteString{0, 0, 0, 1, 0})),
                         ErrorCode::kFrameSizeError, "WINDOW_UPDATE length is not 4"));
  r.push_back(conn_error("§6.9 WINDOW_UPDATE increment 0 on stream 0: PROTOCOL_ERROR",
                         fixed(window_update(0, 0)), ErrorCode::kProtocolError,
                         "WINDOW_UPDATE increment 0"));
  r.push_back(stream_error(
      "§6.9 WINDOW_UPDATE increment 0 on an open stream: stream error PROTOCOL_ERROR",
      [](Client& c) { return open_echo(c) + window_update(3, 0); }, 3, ErrorCode::kProtocolError));
  r.push_back(ignored("§4.1/§6.9 the reserved bit of a WINDOW_UPDATE increment is ignored",
                      fixed(window_update(0, 0x80000001u))));
  // Stream 1's response took 12 octets of the connection's 65535.
  r.push_back(ignored("§6.9.1 the connection window may reach exactly 2^31-1",
                      fixed(window_update(0, 0x7fffffff - (65535 - 12)))));
  r.push_back(conn_error("§6.9.1 connection window above 2^31-1: FLOW_CONTROL_ERROR",
                         fixed(window_update(0, 0x7fffffff - (65535 - 12)) + window_update(0, 1)),
                         ErrorCode::kFlowControlError, "connection window above 2^31-1"));
  r.push_back(stream_error(
      "§6.9.1 stream window above 2^31-1: stream error FLOW_CONTROL_ERROR",
      [](Client& c) {
        return open_echo(c) + window_update(3, 0x7fffffff - 65535) + window_update(3, 1);
      },
      3, ErrorCode::kFlowControlError));
  r.push_back(
      ignored("§5.1 WINDOW_UPDATE on a closed stream is accepted", fixed(window_update(1, 100))));
  r.push_back(conn_error("§5.1 WINDOW_UPDATE on an idle stream: PROTOCOL_ERROR",
                         fixed(window_update(5, 100)), ErrorCode::kProtocolError,
                         "WINDOW_UPDATE on an idle stream"));
  r.push_back(conn_error(
      "§5.1 WINDOW_UPDATE on an even stream below the last client stream (idle): PROTOCOL_ERROR",
      after_stream_5(window_update(2, 100)), ErrorCode::kProtocolError,
      "WINDOW_UPDATE on an idle stream", 5));

  // §5.1 stream states.
  r.push_back(conn_error("§5.1 DATA on an idle stream: PROTOCOL_ERROR", fixed(data(3, bytes("x"))),
                         ErrorCode::kProtocolError, "DATA on an idle stream"));
  r.push_back(conn_error(
      "§5.1 DATA on an even stream below the last client stream (idle): PROTOCOL_ERROR",
      after_stream_5(data(4, bytes("x"))), ErrorCode::kProtocolError, "DATA on an idle stream", 5));
  r.push_back(stream_error("§5.1 DATA on a closed stream: stream error STREAM_CLOSED",
                           fixed(data(1, bytes("x"))), 1, ErrorCode::kStreamClosed));
  r.push_back(stream_error(
      "§5.1 DATA on a half-closed (remote) stream: stream error STREAM_CLOSED",
      [](Client& c) { return blocked_on_stream_window(c) + data(3, bytes("x")); }, 3,
      ErrorCode::kStreamClosed));
  r.push_back(stream_error(
      "§5.1 HEADERS on a half-closed (remote) stream: stream error STREAM_CLOSED",
      [](Client& c) {
        ByteString b = blocked_on_stream_window(c);
        return b + c.headers(3, kSync);
      },
      3, ErrorCode::kStreamClosed));
  r.push_back(conn_error(
      "§5.1.1 HEADERS on an even stream id: PROTOCOL_ERROR", [](Client& c) { return c.get(2); },
      ErrorCode::kProtocolError, "client stream id is even"));
  r.push_back(conn_error(
      "§5.1 HEADERS on a closed stream: STREAM_CLOSED", [](Client& c) { return c.get(1); },
      ErrorCode::kStreamClosed, "HEADERS on a closed stream"));
  r.push_back(conn_error(
      "§5.1.1 HEADERS on a lower, never used stream id: PROTOCOL_ERROR",
      [](Client& c) {
        ByteString b = c.get(7);
        return b + c.get(5);
      },
      ErrorCode::kProtocolError, "stream id lower than one already used", 7));
  // §5.1 closed: "An endpoint MUST ignore frames that it receives on closed
  // streams after it has sent a RST_STREAM frame." Stream 3 is reset for
  // sending more than its content-length; what the client had in flight
  // follows and must draw no second RST_STREAM and no GOAWAY.
  r.push_back(stream_error(
      "§5.1 DATA in flight after our RST_STREAM is ignored",
      [](Client& c) {
        return c.headers(3, request("POST", "/echo", {{"content-length", "1"}}), kEh) +
               data(3, bytes("xy")) + data(3, bytes("more")) + data(3, bytes("end"), kEs);
      },
      3, ErrorCode::kProtocolError));
  r.push_back(stream_error(
      "§5.1 trailers in flight after our RST_STREAM are ignored, HPACK still in sync",
      [](Client& c) {
        // Two blocks from one encoder: sequenced, since the operands of +
        // may be evaluated in any order.
        ByteString b = c.headers(3, request("POST", "/echo", {{"content-length", "1"}}), kEh);
        b = b + data(3, bytes("xy"));
        return b + c.headers(3, kSync, kEs | kEh);
      },
      3, ErrorCode::kProtocolError));
  r.push_back(ignored("§5.5 unknown frame types are ignored, on stream 0 and on streams",
                      fixed(frame(0x20, 0xff, 0, bytes("abc")) + frame(0xfa, 0, 7, {}) +
                            frame(0x0a, 0, 1, bytes("x")))));

  // §6.10 CONTINUATION.
  r.push_back(answered(
      "§6.10 a block over HEADERS + 8 CONTINUATIONs is decoded and answered",
      [](Client& c) {
        const ByteString b = c.block(request("GET", "/", {{"x-long", std::string(90, 'v')}}));
        return split_n(3, b, 9, kEs);
      },
      3, "200", "Hello World\n"));
  r.push_back(answered(
      "§6.10 empty CONTINUATION fragments are accepted",
      [](Client& c) {
        return frame(FrameType::kHeaders, kEs, 3, c.block(request("GET", "/"))) +
               continuation(3, {}) + continuation(3, {}, kEh);
      },
      3, "200", "Hello World\n"));
  r.push_back(conn_error(
      "HARDENING a 9th CONTINUATION: ENHANCE_YOUR_CALM",
      [](Client& c) {
        const ByteString b = c.block(request("GET", "/", {{"x-long", std::string(90, 'v')}}));
        return split_n(3, b, 10, kEs);
      },
      ErrorCode::kEnhanceYourCalm, "too many CONTINUATION frames"));
  r.push_back(conn_error(
      "HARDENING a header block over twice SETTINGS_MAX_HEADER_LIST_SIZE: ENHANCE_YOUR_CALM",
      fixed(frame(FrameType::kHeaders, kEs, 3, ByteString(16384, 0)) +
            [] {
              ByteString b;
              for (int i = 0; i < 8; ++i) b = b + continuation(3, ByteString(16384, 0));
              return b;
            }()),
      ErrorCode::kEnhanceYourCalm, "header block too large"));
  r.push_back(conn_error(
      "§6.10 CONTINUATION without HEADERS: PROTOCOL_ERROR",
      [](Client& c) { return continuation(1, c.block(kSync), kEh); }, ErrorCode::kProtocolError,
      "CONTINUATION without HEADERS"));
  r.push_back(conn_error(
      "§6.10 CONTINUATION after a block that ended: PROTOCOL_ERROR",
      [](Client& c) {
        ByteString b = c.get(3);
        return b + continuation(3, c.block(kSync), kEh);
      },
      ErrorCode::kProtocolError, "CONTINUATION without HEADERS", 3));
  r.push_back(conn_error("§6.10 CONTINUATION on stream 0: PROTOCOL_ERROR",
                         fixed(continuation(0, {}, kEh)), ErrorCode::kProtocolError,
                         "CONTINUATION on stream 0"));
  const auto interleaved = [](const char* what, ByteString between) {
    return conn_error(
        std::string("§6.2/§6.10 ") + what + " inside a header block: PROTOCOL_ERROR",
        [between](Client& c) {
          return frame(FrameType::kHeaders, kEs, 3, c.block(request("GET", "/"))) + between +
                 continuation(3, {}, kEh);
        },
        ErrorCode::kProtocolError, "frame interleaved in a header block");
  };
  r.push_back(interleaved("PING", ping(ByteString(8, 0))));
  r.push_back(interleaved("a CONTINUATION of another stream", continuation(5, {})));
  r.push_back(interleaved("HEADERS of another stream", get_request(5)));
  r.push_back(interleaved("DATA on the same stream", data(3, bytes("x"))));
  r.push_back(interleaved("PRIORITY on the same stream", priority(3, 0)));
  r.push_back(interleaved("an unknown frame type (§5.5)", frame(0xfa, 0, 3, {})));
  r.push_back(interleaved("SETTINGS", settings()));

  // RFC 7541 decoding errors: connection error COMPRESSION_ERROR (RFC 9113 §4.3).
  const auto bad_block = [](const char* name, ByteString block, const char* debug) {
    return conn_error(name, fixed(frame(FrameType::kHeaders, kEs | kEh, 3, block)),
                      ErrorCode::kCompressionError, debug);
  };
  r.push_back(bad_block("RFC 7541 §6.1 indexed field with index 0", {0x80},
                        "indexed field with index 0 (RFC 7541 §6.1)"));
  r.push_back(bad_block("RFC 7541 §2.3.3 index past the dynamic table", {0xff, 0x10},
                        "index past the end of the dynamic table (RFC 7541 §2.3.3)"));
  r.push_back(bad_block("RFC 7541 §2.3.3 literal name index past the dynamic table",
                        {0x7f, 0x10, 0x01, 'x'},
                        "index past the end of the dynamic table (RFC 7541 §2.3.3)"));
  r.push_back(
      bad_block("RFC 7541 §6.3 table size update above SETTINGS_HEADER_TABLE_SIZE (4097)",
                {0x3f, 0xe2, 0x1f, 0x82},
                "dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §6.3)"));
  r.push_back(bad_block("RFC 7541 §4.2 table size update after a field", {0x82, 0x20},
                        "dynamic table size update after a field (RFC 7541 §4.2)"));
  r.push_back(bad_block("RFC 7541 §5.2 Huffman string containing EOS",
                        {0x04, 0x84, 0xff, 0xff, 0xff, 0xff}, "Huffman string contains EOS"));
  r.push_back(bad_block("RFC 7541 §5.2 Huffman padding longer than 7 bits", {0x04, 0x81, 0xff},
                        "Huffman padding longer than 7 bits"));
  r.push_back(bad_block("RFC 7541 §5.2 Huffman padding not the EOS prefix", {0x04, 0x81, 0x18},
                        "Huffman padding is not a prefix of EOS"));
  r.push_back(bad_block("RFC 7541 §5.1 integer of more than 32 bits",
                        {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f},
                        "integer overflows 32 bits (RFC 7541 §5.1)"));
  r.push_back(
      bad_block("RFC 7541 §5.1 truncated integer", {0xff}, "truncated integer (RFC 7541 §5.1)"));
  r.push_back(bad_block("RFC 7541 §5.2 string longer than the block", {0x04, 0x05, 'a'},
                        "string literal longer than the rest of the block (RFC 7541 §5.2)"));

  // §8.1-§8.3 malformed requests: stream error PROTOCOL_ERROR, block decoded.
  r.push_back(malformed("§8.3.1 :method missing", without(get, ":method")));
  r.push_back(malformed("§8.3.1 :scheme missing", without(get, ":scheme")));
  r.push_back(malformed("§8.3.1 :path missing", without(get, ":path")));
  r.push_back(malformed("§8.3.1 :path empty", request("GET", "")));
  r.push_back(
      malformed("§8.3 :method twice",
                {{":method", "GET"}, {":method", "GET"}, {":scheme", "http"}, {":path", "/"}}));
  r.push_back(malformed("§8.3 :path twice",
                        {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":path", "/"}}));
  r.push_back(
      malformed("§8.3 :scheme twice",
                {{":method", "GET"}, {":scheme", "http"}, {":scheme", "http"}, {":path", "/"}}));
  r.push_back(malformed("§8.3 :authority twice", {{":method", "GET"},
                                                  {":scheme", "http"},
                                                  {":path", "/"},
                                                  {":authority", "a"},
                                                  {":authority", "a"}}));
  r.push_back(malformed("§8.3 an unknown pseudo-header",
                        {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":foo", "x"}}));
  r.push_back(
      malformed("§8.3.2 :status in a request",
                {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":status", "200"}}));
  r.push_back(
      malformed("§8.3 a pseudo-header after a regular field",
                {{":method", "GET"}, {":scheme", "http"}, {"accept", "*/*"}, {":path", "/"}}));
  r.push_back(malformed("§8.2.1 an uppercase field name", request("GET", "/", {{"X-Upper", "1"}})));
  r.push_back(
      malformed("§8.2.1 an empty field name (CVE-2019-9516)", request("GET", "/", {{"", "x"}})));
  r.push_back(malformed("§8.2.1 a space in a field name", request("GET", "/", {{"x y", "1"}})));
  r.push_back(malformed("§8.2.1 a colon inside a field name", request("GET", "/", {{"x:y", "1"}})));
  r.push_back(malformed("§8.2.1 a DEL in a field name", request("GET", "/", {{"x\x7f", "1"}})));
  r.push_back(malformed("§8.2.1 NUL in a field value",
                        request("GET", "/", {{"x-v", std::string("a\0b", 3)}})));
  r.push_back(malformed("§8.2.1 CR in a field value", request("GET", "/", {{"x-v", "a\rb"}})));
  r.push_back(malformed("§8.2.1 LF in a field value", request("GET", "/", {{"x-v", "a\nb"}})));
  // Values are checked eight octets a step, then octet by octet: the
  // forbidden octet in each lane of the steps and in the tail.
  for (const size_t at : {0, 1, 7, 8, 15, 16, 23, 24, 26}) {
    for (const char bad : {'\0', '\r', '\n'}) {
      std::string value(27, 'v');
      value[at] = bad;
      r.push_back(malformed("§8.2.1 octet " + std::to_string(static_cast<int>(bad)) +
                                " at " + std::to_string(at) + " of a 27-octet field value",
                            request("GET", "/", {{"x-v", value}})));
    }
  }
  r.push_back(answered(
      "§8.2.1 a field value holding every other control octet (0x01-0x1f) is accepted",
      [](Client& c) {
        std::string value = "a";
        for (char o = 1; o < 0x20; ++o) {
          if (o != '\r' && o != '\n') value += o;
        }
        value += "zz";
        return c.headers(3, request("GET", "/", {{"x-v", value}}));
      },
      3, "200", "Hello World\n"));
  r.push_back(malformed("§8.2.1 a field value starting with a space",
                        request("GET", "/", {{"x-v", " a"}})));
  r.push_back(
      malformed("§8.2.1 a field value ending with a tab", request("GET", "/", {{"x-v", "a\t"}})));
  for (const char* name :
       {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    r.push_back(malformed(std::string("§8.2.2 connection-specific field ") + name,
                          request("GET", "/", {{name, "close"}})));
  }
  r.push_back(malformed("§8.2.2 te: gzip", request("GET", "/", {{"te", "gzip"}})));
  r.push_back(
      malformed("§8.2.2 te: trailers, gzip", request("GET", "/", {{"te", "trailers, gzip"}})));
  r.push_back(answered(
      "§8.2.2 te: trailers is accepted",
      [](Client& c) {
        return c.headers(3, request("GET", "/", {{"te", "trailers"}}));
      },
      3, "200", "Hello World\n"));
  r.push_back(malformed("§8.1.1 content-length not a number",
                        request("POST", "/echo", {{"content-length", "5x"}}), kEh));
  r.push_back(
      malformed("§8.1.1 two different content-length values",
                request("POST", "/echo", {{"content-length", "5"}, {"content-length", "6"}}), kEh));
  r.push_back(malformed("§8.1.1 content-length 5 with END_STREAM on HEADERS (no body)",
                        request("POST", "/echo", {{"content-length", "5"}})));
  r.push_back(answered(
      "§8.1.1 content-length 0 with END_STREAM on HEADERS is fine",
      [](Client& c) {
        return c.headers(3, request("POST", "/echo", {{"content-length", "0"}}));
      },
      3, "200", ""));
  r.push_back(stream_error(
      "§8.1.1 more DATA than content-length: stream error PROTOCOL_ERROR, nothing echoed",
      [](Client& c) {
        return open_echo(c, 3, {{"content-length", "3"}}) + data(3, bytes("abcd"), kEs);
      },
      3, ErrorCode::kProtocolError));
  r.push_back(stream_error(
      "§8.1.1 less DATA than content-length: stream error PROTOCOL_ERROR",
      [](Client& c) {
        return open_echo(c, 3, {{"content-length", "5"}}) + data(3, bytes("abc")) +
               data(3, {}, kEs);
      },
      3, ErrorCode::kProtocolError));
  r.push_back(stream_error(
      "§8.1.1 less DATA than content-length, then trailers: stream error PROTOCOL_ERROR",
      [](Client& c) {
        ByteString b = open_echo(c, 3, {{"content-length", "5"}}) + data(3, bytes("abc"));
        return b + c.headers(3, kSync);
      },
      3, ErrorCode::kProtocolError));
  r.push_back(stream_error(
      "§8.1 trailers without END_STREAM: stream error PROTOCOL_ERROR",
      [](Client& c) {
        ByteString b = open_echo(c);
        return b + c.headers(3, kSync, kEh);
      },
      3, ErrorCode::kProtocolError));
  r.push_back(stream_error(
      "§8.1/§8.3 a pseudo-header in trailers: stream error PROTOCOL_ERROR",
      [](Client& c) {
        ByteString b = open_echo(c);
        return b + c.headers(3, Fields{{":path", "/"}, {"x-sync", "1"}});
      },
      3, ErrorCode::kProtocolError));
  r.push_back(answered(
      "§8.1 trailers end the request; the body before them is echoed",
      [](Client& c) {
        ByteString b = open_echo(c, 3, {{"content-length", "2"}}) + data(3, bytes("ab"));
        return b + c.headers(3, {{"x-trailer", "t"}, {"x-sync", "1"}});
      },
      3, "200", "ab"));
  r.push_back(malformed("§8.5 CONNECT with :path",
                        {{":method", "CONNECT"}, {":path", "/"}, {":authority", "a:1"}}, kEh));
  r.push_back(malformed("§8.5 CONNECT without :authority", {{":method", "CONNECT"}}, kEh));
  r.push_back(answered(
      "§8.5 a well-formed CONNECT is answered 405",
      [](Client& c) {
        return c.headers(3, {{":method", "CONNECT"}, {":authority", "a:1"}});
      },
      3, "405"));
  return r;
}

void follow_up(Client& c) {
  c.send(c.headers(101, request("GET", "/", kSync)));
  const Response& r = c.response(101);
  CHECK(r.status() == "200");
  CHECK(text(r.body) == "Hello World\n");
  CHECK(r.ended);
}

void run_row(const Row& row) {
  Client c;
  c.open();
  c.send(c.get(1));
  REQUIRE(c.response(1).status() == "200");
  REQUIRE(c.response(1).ended);
  const auto frames = c.send(row.bytes(c));
  INFO("server sent:\n" << describe(frames));
  switch (row.expect) {
    case Expect::kGoaway:
      REQUIRE_FALSE(frames.empty());
      check_goaway(frames.back(), row.id, row.code, row.detail);
      CHECK(count(frames, FrameType::kGoaway) == 1);
      CHECK(count(frames, FrameType::kRstStream) == 0);
      CHECK(c.conn().done());
      CHECK(std::string(c.conn().close_reason()) == row.detail);
      CHECK(c.conn().counters().goaway_code == static_cast<uint32_t>(row.code));
      return;
    case Expect::kRst:
      REQUIRE_FALSE(frames.empty());
      check_rst(frames.back(), row.id, row.code);
      CHECK(count(frames, FrameType::kRstStream) == 1);
      CHECK(count(frames, FrameType::kGoaway) == 0);
      break;
    case Expect::kNothing:
      CHECK(frames.empty());
      break;
    case Expect::kBytes:
      CHECK(c.last_output() == row.output);
      break;
    case Expect::kAnswered: {
      CHECK(count(frames, FrameType::kRstStream) == 0);
      CHECK(count(frames, FrameType::kGoaway) == 0);
      const Response& r = c.response(row.id);
      CHECK(r.status() == row.detail);
      CHECK(r.ended);
      if (!row.body.empty()) CHECK(text(r.body) == row.body);
      break;
    }
  }
  REQUIRE_FALSE(c.conn().done());
  follow_up(c);
}

TEST_CASE("RFC 9113 §4-§8 and RFC 7541: one row per rule") {
  for (const Row& row : rows()) {
    DYNAMIC_SECTION(row.name) {
      // A failed REQUIRE ends this row only; the other rows still run.
      try {
        run_row(row);
      } catch (const Catch::TestFailureException&) {
      }
    }
  }
}

// ===========================================================================
// Routes (issue 3 §5): exact headers and bodies.

Fields response_fields(std::string_view status, std::string_view type,
                       std::optional<uint64_t> length) {
  Fields f = {{":status", std::string(status)}};
  if (!type.empty()) f.emplace_back("content-type", std::string(type));
  if (length) f.emplace_back("content-length", std::to_string(*length));
  return f;
}

// The /bytes/N body, computed here and not from the engine's buffer: octet i
// is the alphabet's octet i mod 37, at every offset, whatever the frames.
ByteString pattern(size_t n) {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789\n";
  ByteString b(n, 0);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(kAlphabet[i % kAlphabet.size()]);
  return b;
}

// A /bytes body received in frames of these sizes: the frames split the one
// pattern; none restarts it.
ByteString pattern_body(const std::vector<uint32_t>& frame_sizes) {
  size_t n = 0;
  for (const uint32_t size : frame_sizes) n += size;
  return pattern(n);
}

TEST_CASE("routes: / is Hello World with content-type and content-length") {
  Client c;
  c.open();
  const auto frames = c.send(c.get(1));
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].is(FrameType::kHeaders));
  CHECK(frames[0].h.flags == kEh);
  CHECK(frames[0].fields == response_fields("200", "text/plain", 12));
  CHECK(frames[1].is(FrameType::kData));
  CHECK(frames[1].h.flags == kEs);
  CHECK(text(frames[1].payload) == "Hello World\n");
  // The same response again: the header block may differ (dynamic table), the fields may not.
  c.send(c.get(3));
  CHECK(c.response(3).fields == response_fields("200", "text/plain", 12));
  CHECK(text(c.response(3).body) == "Hello World\n");
  CHECK(c.conn().counters().streams == 2);
  CHECK(c.conn().counters().responses == 2);
  CHECK(c.conn().open_streams() == 0);
}

TEST_CASE("routes: /bytes/N sends N pattern octets in DATA frames of at most 16384") {
  Client c;
  c.open({{kInitialWindow, 1 << 20}});
  c.send(window_update(0, 1 << 20));
  const std::pair<uint64_t, std::vector<uint32_t>> cases[] = {
      {0, {}},
      {1, {1}},
      {16384, {16384}},
      {16385, {16384, 1}},
      {100000, {16384, 16384, 16384, 16384, 16384, 16384, 1696}},
  };
  uint32_t id = 1;
  for (const auto& [n, sizes] : cases) {
    INFO("/bytes/" << n);
    c.send(c.get(id, "/bytes/" + std::to_string(n)));
    const Response& r = c.response(id);
    CHECK(r.fields == response_fields("200", "application/octet-stream", n));
    CHECK(r.ended);
    CHECK(r.data_sizes == sizes);
    CHECK(r.body == pattern_body(sizes));
    id += 2;
  }
  c.send(c.get(id, "/bytes/5?x=1"));  // the query plays no part
  CHECK(c.response(id).body == pattern(5));
}

TEST_CASE("requests: nothing of one header block carries into the next on the connection") {
  // The engine decodes every block into one reused Request (reset per
  // block): a malformed block, a content-length, a long :path and a HEAD
  // must each leave no trace in the request after it.
  Client c;
  c.open();
  c.send(c.headers(1, request("GET", "/", {{"x-bad", "a\nb"}})));
  CHECK(c.response(1).rst == static_cast<uint32_t>(ErrorCode::kProtocolError));
  c.send(c.get(3, "/bytes/3"));
  CHECK(c.response(3).fields == response_fields("200", "application/octet-stream", 3));
  c.send(c.headers(5, request("POST", "/echo", {{"content-length", "2"}}), kEh) +
         data(5, bytes("ab"), kEs));
  CHECK(text(c.response(5).body) == "ab");
  c.send(c.get(7));  // END_STREAM and no body: fine only if content-length 2 is gone
  CHECK(text(c.response(7).body) == "Hello World\n");
  c.send(c.get(9, "/bytes/" + std::string(400, '0') + "4"));  // on the heap
  CHECK(c.response(9).body == pattern(4));
  c.send(c.get(11, "/bytes/2"));  // inline again, shorter
  CHECK(c.response(11).body == pattern(2));
  c.send(c.headers(13, request("HEAD", "/")));
  CHECK(c.response(13).ended);
  CHECK(c.response(13).body.empty());
  c.send(c.headers(15, request("GET", "/")));  // a GET after a HEAD has its body
  CHECK(text(c.response(15).body) == "Hello World\n");
  c.send(c.headers(17, {{":method", "GET"}, {":path", "/"}}));  // no :scheme: a reset, not the last one's
  CHECK(c.response(17).rst == static_cast<uint32_t>(ErrorCode::kProtocolError));
}

TEST_CASE("routes: a :path is routed whole, at every length around the engine's inline copy") {
  // The engine keeps a :path of up to 256 octets inline and a longer one on
  // the heap (proto/short_string.h). /bytes/ + zeros + "7" is 7 octets only
  // if every digit arrived; a cut copy would end in zeros.
  Client c;
  c.open();
  uint32_t id = 1;
  for (const size_t length : {size_t{9}, size_t{15}, size_t{16}, size_t{255}, size_t{256},
                              size_t{257}, size_t{300}, size_t{4000}}) {
    INFO(":path of " << length << " octets");
    const std::string path = "/bytes/" + std::string(length - 8, '0') + "7";
    REQUIRE(path.size() == length);
    c.send(c.get(id, path));
    const Response& r = c.response(id);
    CHECK(r.fields == response_fields("200", "application/octet-stream", 7));
    CHECK(r.body == pattern(7));
    id += 2;
  }
}

TEST_CASE("routes: errors and methods") {
  struct Case {
    const char* method;
    const char* path;
    const char* status;
    const char* body;
  };
  const Case cases[] = {
      {"GET", "/bytes/abc", "400", "bad size: use /bytes/N with N from 0 to 2^40\n"},
      {"GET", "/bytes/", "400", "bad size: use /bytes/N with N from 0 to 2^40\n"},
      {"GET", "/bytes/-1", "400", "bad size: use /bytes/N with N from 0 to 2^40\n"},
      {"GET", "/bytes/1099511627777", "400", "bad size: use /bytes/N with N from 0 to 2^40\n"},
      {"GET", "/nope", "404", "not found\n"},
      {"GET", "/echo/x", "404", "not found\n"},
      {"POST", "/", "405", "method not allowed\n"},
      {"PUT", "/bytes/5", "405", "method not allowed\n"},
      {"DELETE", "/stats", "405", "method not allowed\n"},
  };
  Client c;
  c.open();
  uint32_t id = 1;
  for (const Case& k : cases) {
    INFO(k.method << ' ' << k.path);
    c.send(c.headers(id, request(k.method, k.path)));
    const Response& r = c.response(id);
    CHECK(r.fields == response_fields(k.status, "text/plain", std::string_view(k.body).size()));
    CHECK(text(r.body) == k.body);
    CHECK(r.ended);
    id += 2;
  }
}

TEST_CASE("routes: HEAD sends the headers only, with content-length") {
  Client c;
  c.open();
  auto frames = c.send(c.headers(1, request("HEAD", "/")));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].h.flags == (kEs | kEh));
  CHECK(frames[0].fields == response_fields("200", "text/plain", 12));
  frames = c.send(c.headers(3, request("HEAD", "/bytes/100000")));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].h.flags == (kEs | kEh));
  CHECK(frames[0].fields == response_fields("200", "application/octet-stream", 100000));
  CHECK(c.conn_window() == 65535);  // nothing was spent
}

TEST_CASE("routes: /stats is JSON with this connection's counters and the server's") {
  ConnectionOptions o;
  o.stats_json = [] { return std::string("{\"connections\": 1}"); };
  Client c(o);
  c.open();
  c.send(c.get(1));
  c.send(c.get(3, "/stats"));
  const Response& r = c.response(3);
  const std::string body =
      "{\"connection\": {\"streams\": 2, \"responses\": 1, \"resets_sent\": 0, \"refused\": 0, "
      "\"open_streams\": 0}, \"server\": {\"connections\": 1}}\n";
  CHECK(r.fields == response_fields("200", "application/json", body.size()));
  CHECK(text(r.body) == body);
}

TEST_CASE("routes: /echo streams the body back as it arrives, with and without content-length") {
  Client c;
  c.open();
  // With content-length: the response carries it.
  auto frames = c.send(open_echo(c, 1, {{"content-length", "11"}}));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].fields == response_fields("200", "application/octet-stream", 11));
  CHECK(frames[0].h.flags == kEh);
  frames = c.send(data(1, bytes("hello ")));
  REQUIRE(frames.size() == 1);  // echoed at once, not buffered whole
  CHECK(text(frames[0].payload) == "hello ");
  CHECK(frames[0].h.flags == 0);
  frames = c.send(data(1, padded(bytes("world"), 20), kEs | flags::kPadded));
  REQUIRE(frames.size() == 1);
  CHECK(text(frames[0].payload) == "world");  // padding stays behind
  CHECK(frames[0].h.flags == kEs);
  CHECK(c.response(1).data_sizes == std::vector<uint32_t>{6, 5});

  // Without content-length, the end comes as an empty DATA with END_STREAM.
  frames = c.send(open_echo(c, 3));
  CHECK(frames[0].fields == response_fields("200", "application/octet-stream", std::nullopt));
  c.send(data(3, bytes("abc")) + data(3, bytes("de")) + data(3, {}, kEs));
  CHECK(text(c.response(3).body) == "abcde");
  CHECK(c.response(3).data_sizes == std::vector<uint32_t>{3, 2, 0});
  CHECK(c.response(3).ended);

  // No body at all: END_STREAM on the response HEADERS.
  frames = c.send(c.headers(5, request("POST", "/echo")));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].h.flags == (kEs | kEh));
  CHECK(c.conn().open_streams() == 0);
}

TEST_CASE("§6.9 /echo is bounded by both windows: 200 KB through a 65535 stream window") {
  Client c;
  c.open();
  const auto body = [] {
    ByteString b(200000);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>((i * 7 + i / 251) & 0xff);
    return b;
  }();
  c.send(open_echo(c, 1));
  int64_t server_stream_window = 65535;  // what the server granted us (its SETTINGS)
  int64_t server_conn_window = 1 << 20;  // 65535 + the preface WINDOW_UPDATE
  size_t sent = 0;
  uint64_t granted = 0;
  const auto absorb_grants = [&](const std::vector<Frame>& frames) {
    for (const Frame& f : frames) {
      if (!f.is(FrameType::kWindowUpdate)) continue;
      (f.h.stream_id == 0 ? server_conn_window : server_stream_window) += f.word(0);
      if (f.h.stream_id == 1) granted += f.word(0);
    }
  };
  // Sends as much as the server's windows allow; returns the octets sent.
  const auto send_allowed = [&] {
    size_t n = 0;
    while (sent < body.size() && std::min(server_stream_window, server_conn_window) > 0) {
      const size_t len =
          static_cast<size_t>(std::min<int64_t>({16384, static_cast<int64_t>(body.size() - sent),
                                                 server_stream_window, server_conn_window}));
      const ByteString chunk(body.begin() + static_cast<long>(sent),
                             body.begin() + static_cast<long>(sent + len));
      sent += len;
      n += len;
      server_stream_window -= static_cast<int64_t>(len);
      server_conn_window -= static_cast<int64_t>(len);
      absorb_grants(c.send(data(1, chunk, sent == body.size() ? kEs : 0)));
    }
    return n;
  };
  // Phase 1: we never grant the server any window. It echoes what our
  // 65535-octet stream window allows and gives back exactly that much, so
  // we can send 2 x 65535 and no more; the second half waits in the server.
  send_allowed();
  CHECK(c.response(1).body.size() == 65535);
  CHECK(sent == 2 * 65535);
  CHECK(granted == 65535);
  CHECK(c.stream_window(1) == 0);
  CHECK(send_allowed() == 0);
  // Phase 2: we read and grant; every grant lets echo data leave, which
  // grants us room for more, until the whole body went both ways.
  for (int round = 0; round < 20 && !c.response(1).ended; ++round) {
    const size_t have = c.response(1).body.size();
    absorb_grants(c.send(window_update(1, 65535) + window_update(0, 65535)));
    CHECK(c.response(1).body.size() > have);
    send_allowed();
  }
  CHECK(sent == body.size());
  CHECK(c.response(1).ended);
  CHECK(c.response(1).body == body);
  CHECK(c.conn().open_streams() == 0);
}

// ===========================================================================
// §6.9 flow control of responses

TEST_CASE(
    "§6.9.1 /bytes/100000 stops at 65535 and resumes with WINDOW_UPDATEs on stream and "
    "connection") {
  Client c;
  c.open();
  c.send(c.get(1, "/bytes/100000"));
  CHECK(c.response(1).data_sizes == std::vector<uint32_t>{16384, 16384, 16384, 16383});
  CHECK(c.send(window_update(1, 34465)).empty());  // the connection window is still 0
  c.send(window_update(0, 20000));                 // 16384 + 3616: all of the new connection window
  CHECK(c.response(1).data_sizes == std::vector<uint32_t>{16384, 16384, 16384, 16383, 16384, 3616});
  c.send(window_update(0, 50000));
  CHECK(c.response(1).ended);
  CHECK(c.response(1).body == pattern_body(c.response(1).data_sizes));
  CHECK(c.response(1).body.size() == 100000);
  CHECK(c.conn_window() == 65535 + 20000 + 50000 - 100000);
  CHECK(c.conn().open_streams() == 0);
}

TEST_CASE(
    "§6.9.2 SETTINGS_INITIAL_WINDOW_SIZE changes apply to open streams, not to the connection") {
  SECTION("an increase resumes a blocked response, after the SETTINGS ACK") {
    Client c;
    c.open();
    c.send(window_update(0, 1000000));
    c.send(c.get(1, "/bytes/100000"));
    CHECK(c.response(1).body.size() == 65535);
    const auto frames = c.send(settings({{kInitialWindow, 100000}}));
    REQUIRE(frames.size() == 4);
    CHECK(frames[0].is(FrameType::kSettings));
    CHECK(frames[0].h.flags == flags::kAck);
    CHECK(c.response(1).data_sizes ==
          std::vector<uint32_t>{16384, 16384, 16384, 16383, 16384, 16384, 1697});
    CHECK(c.response(1).ended);
  }
  SECTION("a decrease makes the window negative: nothing until WINDOW_UPDATEs bring it above 0") {
    Client c;
    c.open();
    c.send(window_update(0, 1000000));
    c.send(c.get(1, "/bytes/100000"));
    const auto frames = c.send(settings({{kInitialWindow, 16384}}));
    REQUIRE(frames.size() == 1);  // the ACK only
    CHECK(c.stream_window(1) == 16384 - 65535);
    CHECK(c.send(window_update(1, 65535 - 16384)).empty());  // back to exactly 0
    c.send(window_update(1, 1000));
    CHECK(c.response(1).data_sizes.back() == 1000);
    CHECK(c.response(1).body.size() == 66535);
  }
  SECTION("a new stream starts with the new value; the connection window does not change") {
    Client c;
    c.open({{kInitialWindow, 200000}});
    c.send(c.get(1, "/bytes/100000"));
    CHECK(c.response(1).body.size() == 65535);  // the connection window's 65535
    c.send(window_update(0, 100000));
    CHECK(c.response(1).body.size() == 100000);
    c.send(settings({{kInitialWindow, 20000}}));
    c.send(c.get(3, "/bytes/50000"));
    CHECK(c.response(3).data_sizes == std::vector<uint32_t>{16384, 3616});
  }
  SECTION("a change that takes an open stream's window above 2^31-1: FLOW_CONTROL_ERROR") {
    Client c;
    c.open();
    c.send(open_echo(c, 1) + window_update(1, 0x7fffffff - 65535));
    const auto frames = c.send(settings({{kInitialWindow, 65536}}));
    REQUIRE(frames.size() == 1);
    check_goaway(frames[0], 1, ErrorCode::kFlowControlError,
                 "INITIAL_WINDOW_SIZE overflows a stream window");
  }
}

TEST_CASE(
    "§4.2/§6.5.2 the client's SETTINGS_MAX_FRAME_SIZE sets our DATA sizes; bodies split at "
    "min(window, frame)") {
  Client c;
  c.open({{kMaxFrame, 32768}, {kInitialWindow, 1 << 20}});
  c.send(window_update(0, 1 << 20));
  c.send(c.get(1, "/bytes/100000"));
  CHECK(c.response(1).data_sizes == std::vector<uint32_t>{32768, 32768, 32768, 1696});
  CHECK(c.response(1).body == pattern_body(c.response(1).data_sizes));
  CHECK(c.response(1).body.size() == 100000);
  c.send(settings({{kMaxFrame, 16777215}}));
  c.send(c.get(3, "/bytes/300000"));
  CHECK(c.response(3).data_sizes == std::vector<uint32_t>{300000});
  c.send(settings({{kInitialWindow, 20000}}));
  c.send(c.get(5, "/bytes/50000"));
  CHECK(c.response(5).data_sizes == std::vector<uint32_t>{20000});
  c.send(window_update(5, 7));
  c.send(window_update(5, 40000));
  CHECK(c.response(5).data_sizes == std::vector<uint32_t>{20000, 7, 29993});
}

// ===========================================================================
// §6.9 flow control of requests

TEST_CASE("§6.9.1 DATA beyond the connection window: GOAWAY FLOW_CONTROL_ERROR") {
  // The client reads nothing (window 0), so echo data stays in the server
  // and is not granted back: 16 streams fill 16 x 65535 of the 1 MiB window.
  Client c;
  c.open({{kInitialWindow, 0}});
  const ByteString chunk(16384, 'x');
  for (uint32_t id = 1; id <= 31; id += 2) {
    ByteString b = open_echo(c, id);
    for (int i = 0; i < 3; ++i) b = b + data(id, chunk);
    c.send(b + data(id, ByteString(16383, 'y')));
  }
  c.send(open_echo(c, 33));
  CHECK(c.send(data(33, ByteString(16, 'z'))).empty());  // 1048576 - 16 x 65535 = 16 left
  const auto frames = c.send(data(33, ByteString(1, 'z')));
  REQUIRE(frames.size() == 1);
  check_goaway(frames[0], 33, ErrorCode::kFlowControlError, "DATA beyond the connection window");
}

TEST_CASE("§6.9.1 DATA beyond a stream window: RST_STREAM FLOW_CONTROL_ERROR; padding counts") {
  Client c;
  c.open({{kInitialWindow, 0}});
  c.send(open_echo(c, 1));
  // 65535 octets, 255 of them in padded frames (§6.1: padding is flow-controlled).
  c.send(data(1, padded(ByteString(16000, 'a'), 255), flags::kPadded) +
         data(1, ByteString(16384, 'b')) + data(1, ByteString(16384, 'c')) +
         data(1, ByteString(16384, 'd')) + data(1, ByteString(65535 - 16256 - 3 * 16384, 'e')));
  const auto frames = c.send(data(1, ByteString(1, 'e')));
  REQUIRE(frames.size() == 1);
  check_rst(frames[0], 1, ErrorCode::kFlowControlError);
  CHECK_FALSE(c.conn().done());
  c.send(c.headers(3, request("GET", "/")));
  CHECK(c.response(3).headers_seen);
}

TEST_CASE(
    "§6.9 request bodies are granted back: stream WINDOW_UPDATEs at half the window, padding "
    "included") {
  Client c;
  c.open();
  c.send(c.headers(1, request("POST", "/"), kEh));  // 405 at once; the body is read and dropped
  CHECK(c.response(1).status() == "405");
  auto frames = c.send(data(1, padded(ByteString(100, 'a'), 200), flags::kPadded) +
                       data(1, ByteString(16384, 'b')));
  CHECK(frames.empty());
  frames = c.send(data(1, ByteString(16382, 'c')));  // 301 + 16384 + 16382 = 33067 >= 65535 / 2
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].is(FrameType::kWindowUpdate));
  CHECK(frames[0].h.stream_id == 1);
  CHECK(frames[0].word(0) == 301 + 16384 + 16382);
  // The connection's grants are batched at half of its 1 MiB window.
  std::vector<uint32_t> connection_grants;
  for (int i = 0; i < 32; ++i) {
    for (const Frame& f : c.send(data(1, ByteString(16384, 'd')))) {
      if (f.is(FrameType::kWindowUpdate) && f.h.stream_id == 0)
        connection_grants.push_back(f.word(0));
    }
  }
  CHECK(connection_grants == std::vector<uint32_t>{33067 + 30 * 16384});
  c.send(data(1, {}, kEs));
  CHECK(c.conn().open_streams() == 0);
}

TEST_CASE("§6.9 echo input dropped by a reset is given back to the connection window") {
  // 20 echo streams, each sent 60000 octets the client never reads, then
  // cancelled. Without the grant the 1 MiB connection window would be gone
  // after 17 of them and the connection would stall for good.
  Client c;
  c.open({{kInitialWindow, 0}});
  int64_t window = 1 << 20;  // the server's connection receive window, as we see it
  for (uint32_t id = 1; id <= 39; id += 2) {
    INFO("stream " << id);
    REQUIRE(window >= 60000);
    ByteString b = open_echo(c, id);
    for (int i = 0; i < 3; ++i) b = b + data(id, ByteString(16384, 'x'));
    b = b + data(id, ByteString(60000 - 3 * 16384, 'y')) + rst_stream(id, ErrorCode::kCancel);
    window -= 60000;
    for (const Frame& f : c.send(b)) {
      if (f.is(FrameType::kWindowUpdate) && f.h.stream_id == 0) window += f.word(0);
    }
  }
  CHECK(window >= (1 << 20) - (1 << 19) - 60000);
  CHECK_FALSE(c.conn().done());
  CHECK(c.conn().open_streams() == 0);
}

// ===========================================================================
// Limits against hostile peers (HARDENING.md)

TEST_CASE("§5.1.2 MAX_CONCURRENT_STREAMS: the 101st open stream is refused with REFUSED_STREAM") {
  Client c;
  c.open();
  for (uint32_t id = 1; id <= 199; id += 2) c.send(open_echo(c, id));
  CHECK(c.conn().open_streams() == 100);
  auto frames = c.send(open_echo(c, 201));
  REQUIRE(frames.size() == 1);
  check_rst(frames[0], 201, ErrorCode::kRefusedStream);
  CHECK(c.conn().counters().refused == 1);
  c.send(c.get(203));  // answered at once would still need a slot: refused too
  REQUIRE(c.response(203).rst);
  CHECK(*c.response(203).rst == static_cast<uint32_t>(ErrorCode::kRefusedStream));
  c.send(data(1, bytes("x"), kEs));  // stream 1 ends: a slot frees
  CHECK(c.response(1).ended);
  CHECK(c.conn().open_streams() == 99);
  frames = c.send(open_echo(c, 205));
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].is(FrameType::kHeaders));
  CHECK(c.conn().open_streams() == 100);
}

struct Flood {
  const char* name;
  Script setup;
  std::function<ByteString(Client&, uint32_t)> unit;
  const char* debug;
  uint32_t last_stream;
};

TEST_CASE(
    "HARDENING floods: the 1000th costly frame gets GOAWAY ENHANCE_YOUR_CALM (abuse budget 1000)") {
  const Flood floods[] = {
      {"PING (CVE-2019-9512)", fixed({}), [](Client&, uint32_t i) { return ping(u32(i) + u32(i)); },
       "too many PING frames", 0},
      {"SETTINGS (CVE-2019-9515)", fixed({}),
       [](Client&, uint32_t) {
         return settings({{kMaxHeaderList, 1000}});
       },
       "too many SETTINGS frames", 0},
      {"PRIORITY on idle streams (CVE-2019-9513)", fixed({}),
       [](Client&, uint32_t i) { return priority(2 * i + 1, 0); }, "too many PRIORITY frames", 0},
      {"empty DATA (CVE-2019-9518)", [](Client& c) { return open_echo(c, 1); },
       [](Client&, uint32_t) { return data(1, {}); }, "too many empty DATA frames", 1},
      {"HEADERS + RST_STREAM on open streams (Rapid Reset, CVE-2023-44487)", fixed({}),
       [](Client& c, uint32_t i) {
         ByteString b = open_echo(c, 2 * i + 1);
         return b + rst_stream(2 * i + 1, ErrorCode::kCancel);
       },
       "too many RST_STREAM frames", 1999},
      {"malformed requests, each reset by us (MadeYouReset, CVE-2025-8671)", fixed({}),
       [](Client& c, uint32_t i) {
         return c.headers(2 * i + 1, request("GET", "/", {{"te", "gzip"}}));
       },
       "too many streams reset", 0},
  };
  for (const Flood& flood : floods) {
    DYNAMIC_SECTION(flood.name) {
      Client c;
      c.open();
      c.send(flood.setup(c));
      size_t answers = 0;
      for (uint32_t i = 0; i < 999; ++i) {
        const auto frames = c.send(flood.unit(c, i));
        REQUIRE(count(frames, FrameType::kGoaway) == 0);
        answers += count(frames, FrameType::kPing) + count(frames, FrameType::kSettings);
      }
      if (std::string_view(flood.name).rfind("PING", 0) == 0 ||
          std::string_view(flood.name).rfind("SETTINGS", 0) == 0) {
        CHECK(answers == 999);  // each answered until then
      }
      const auto frames = c.send(flood.unit(c, 999));
      INFO(describe(frames));
      REQUIRE_FALSE(frames.empty());
      check_goaway(frames.back(), flood.last_stream, ErrorCode::kEnhanceYourCalm, flood.debug);
      CHECK(c.conn().done());
      CHECK(count(frames, FrameType::kPing) == 0);
    }
  }
}

TEST_CASE(
    "HARDENING completed responses earn budget back; cancelling answered requests is not abuse") {
  SECTION("998 PINGs, one response, then the third PING after it ends the connection") {
    Client c;
    c.open();
    for (int i = 0; i < 998; ++i) c.send(ping(ByteString(8, 1)));
    c.send(c.get(1));
    CHECK(c.send(ping(ByteString(8, 2))).size() == 1);
    CHECK(c.send(ping(ByteString(8, 3))).size() == 1);
    const auto frames = c.send(ping(ByteString(8, 4)));
    REQUIRE(frames.size() == 1);
    check_goaway(frames[0], 1, ErrorCode::kEnhanceYourCalm, "too many PING frames");
  }
  SECTION("3000 answered requests each followed by RST_STREAM(CANCEL)") {
    Client c;
    c.open();
    for (uint32_t id = 1; id < 6000; id += 2) {
      ByteString b = c.get(id);
      const auto frames = c.send(b + rst_stream(id, ErrorCode::kCancel));
      REQUIRE(count(frames, FrameType::kGoaway) == 0);
    }
    CHECK_FALSE(c.conn().done());
    CHECK(c.conn().counters().responses == 3000);
  }
}

// ===========================================================================
// §6.8 GOAWAY

TEST_CASE("§6.8 a client GOAWAY: done at once without streams, else once they finish") {
  SECTION("no open stream") {
    Client c;
    c.open();
    c.send(c.get(1));
    CHECK(c.send(goaway(0, ErrorCode::kNoError)).empty());
    CHECK(c.conn().done());
    CHECK(std::string(c.conn().close_reason()).empty());
  }
  SECTION("an /echo in progress finishes first") {
    Client c;
    c.open();
    c.send(open_echo(c, 1));
    CHECK(c.send(goaway(0, ErrorCode::kNoError)).empty());
    CHECK_FALSE(c.conn().done());
    c.send(data(1, bytes("bye"), kEs));
    CHECK(text(c.response(1).body) == "bye");
    CHECK(c.response(1).ended);
    CHECK(c.conn().done());
    CHECK(std::string(c.conn().close_reason()).empty());
  }
}

TEST_CASE(
    "§6.8 shutdown(): GOAWAY NO_ERROR with the last accepted stream; open streams finish, new ones "
    "are ignored") {
  SECTION("with an /echo in progress") {
    Client c;
    c.open();
    c.send(c.get(1));
    c.send(open_echo(c, 3));
    c.conn().shutdown();
    auto frames = c.drained();
    REQUIRE(frames.size() == 1);
    check_goaway(frames[0], 3, ErrorCode::kNoError, "");
    CHECK_FALSE(c.conn().done());
    c.conn().shutdown();  // idempotent: no second GOAWAY
    CHECK(c.drained().empty());
    CHECK(c.send(c.get(5)).empty());  // above the last stream id: not processed
    CHECK_FALSE(c.response(5).headers_seen);
    CHECK(c.send(ping(ByteString(8, 9))).size() == 1);  // the connection still works
    c.send(data(3, bytes("end"), kEs));
    CHECK(text(c.response(3).body) == "end");
    CHECK(c.response(3).ended);
    CHECK(c.conn().done());
    CHECK(std::string(c.conn().close_reason()).empty());
  }
  SECTION("idle: GOAWAY and done at once") {
    Client c;
    c.open();
    c.send(c.get(1));
    c.conn().shutdown();
    const auto frames = c.drained();
    REQUIRE(frames.size() == 1);
    check_goaway(frames[0], 1, ErrorCode::kNoError, "");
    CHECK(c.conn().done());
  }
  SECTION("before the preface: no connection, no GOAWAY") {
    Connection c;
    c.on_input(bytes("PRI * HTTP/2.0\r\n"));
    c.shutdown();
    CHECK(c.done());
    CHECK(c.output().empty());
  }
  SECTION("the last stream finishes while a new header block is still open: done once it ends") {
    ConnectionOptions o;
    o.output_high_water = 1;  // one DATA frame per on_output_drained()
    Client c(o);
    c.open({{kInitialWindow, 1 << 20}});
    c.send(window_update(0, 1 << 20));
    c.set_auto_drain(false);
    c.send(c.get(1, "/bytes/100000"));
    c.conn().shutdown();
    const ByteString b = c.block(request("GET", "/"));
    const size_t half = b.size() / 2;
    auto frames = c.drained();
    REQUIRE(frames.size() == 1);
    check_goaway(frames[0], 1, ErrorCode::kNoError, "");
    CHECK(c.send(frame(FrameType::kHeaders, kEs, 3,
                       ByteString(b.begin(), b.begin() + static_cast<long>(half))))
              .empty());
    for (int i = 0; i < 20 && !c.response(1).ended; ++i) c.drained();
    CHECK(c.response(1).body == pattern_body(c.response(1).data_sizes));
    CHECK(c.response(1).body.size() == 100000);
    CHECK(c.send(continuation(3, ByteString(b.begin() + static_cast<long>(half), b.end()), kEh))
              .empty());
    CHECK(c.conn().done());
  }
}

// Opens with every window at its largest and output not auto-drained: a
// /bytes body is then held back by output_high_water alone.
void open_with_wide_windows(Client& c) {
  c.open({{kInitialWindow, 0x7fffffff}});
  c.send(window_update(0, 0x7fffffff - 65535));
  c.set_auto_drain(false);
}

TEST_CASE("engine.h: EOF ends the engine") {
  Client c;
  c.open();
  c.conn().on_input_closed();
  CHECK(c.conn().done());
  CHECK(std::string(c.conn().close_reason()).empty());
}

TEST_CASE("engine.h: after EOF, complete requests are answered in full, then the engine ends") {
  // A TCP half-close: the peer sends no more but still reads.
  ConnectionOptions o;
  o.output_high_water = 20000;
  Client c(o);
  open_with_wide_windows(c);
  c.send(c.get(1, "/bytes/1000000"));
  c.send(c.get(3, "/"));
  REQUIRE_FALSE(c.response(1).ended);  // held back at the high-water mark
  c.conn().on_input_closed();
  CHECK_FALSE(c.conn().done());
  for (int i = 0; i < 200 && !c.conn().done(); ++i) c.drained();
  CHECK(c.response(1).body == pattern_body(c.response(1).data_sizes));
  CHECK(c.response(1).body.size() == 1000000);
  CHECK(c.response(1).ended);
  CHECK(c.response(3).body == bytes("Hello World\n"));
  CHECK(c.conn().done());
  CHECK(c.conn().output().empty());
  CHECK(std::string(c.conn().close_reason()).empty());
}

TEST_CASE("engine.h: after EOF, a stream that waits for input that cannot come is reset (CANCEL)") {
  Client c;
  c.open();
  c.send(c.headers(1, request("POST", "/echo"), kEh));  // its body would come later
  c.send(c.get(3, "/bytes/1000000"));  // beyond the 65535 octets the peer granted
  REQUIRE(c.response(3).body.size() == 65535);
  c.conn().on_input_closed();
  c.drained();
  CHECK(c.response(1).rst == static_cast<uint32_t>(ErrorCode::kCancel));
  CHECK(c.response(3).rst == static_cast<uint32_t>(ErrorCode::kCancel));
  CHECK(c.conn().counters().abandoned == 2);
  CHECK(c.conn().done());
}

// ===========================================================================
// engine.h backpressure

TEST_CASE(
    "engine.h: above output_high_water a body waits for on_output_drained(), one frame over at "
    "most") {
  ConnectionOptions o;
  o.output_high_water = 20000;
  Client c(o);
  open_with_wide_windows(c);
  c.send(c.get(1, "/bytes/1000000"));
  CHECK(c.response(1).body.size() == 2 * 16384);  // the second frame crossed the mark
  int batches = 1;
  while (!c.response(1).ended) {
    REQUIRE(++batches < 100);
    REQUIRE_FALSE(c.drained().empty());
  }
  CHECK(batches == (1000000 + 2 * 16384 - 1) / (2 * 16384));
  CHECK(c.max_queued() < o.output_high_water + kFrameHeaderSize + 16384);
  CHECK(c.response(1).body == pattern_body(c.response(1).data_sizes));
  CHECK(c.response(1).body.size() == 1000000);
  CHECK(c.drained().empty());  // nothing left to do
}

// ===========================================================================
// Header list limits (RFC 9113 §10.5.1, RFC 6585 431) and HPACK table size

TEST_CASE(
    "§10.5.1 header lists over the limits get 431; HPACK stays in sync and the connection goes "
    "on") {
  const auto check_431_then_served = [](Client& c, const std::vector<Frame>& frames,
                                        bool end_stream) {
    INFO(describe(frames));
    REQUIRE(frames.size() == (end_stream ? 1u : 2u));
    CHECK(frames[0].h.stream_id == 3);
    CHECK(frames[0].h.flags == (kEs | kEh));
    CHECK(frames[0].fields == response_fields("431", "", 0));
    if (!end_stream) check_rst(frames[1], 3, ErrorCode::kNoError);
    follow_up(c);
  };
  SECTION("over 64 KiB of literal fields, over CONTINUATIONs") {
    Client c;
    c.open();
    c.send(c.get(1));
    Fields f = request("GET", "/");
    for (int i = 0; i < 17; ++i)
      f.emplace_back("x-big", std::string(4000, static_cast<char>('a' + i)));
    const ByteString b = c.block(f);
    REQUIRE(b.size() > 16384);
    check_431_then_served(c, c.send(split_block(3, b, 16384, kEs)), true);
  }
  SECTION("an HPACK bomb: one 4000-octet entry referenced 16 more times, no END_STREAM") {
    Client c;
    c.open();
    c.send(c.get(1));
    ByteString b = c.block(request("GET", "/"));
    ByteString tmp(5000);
    b = b + ByteString(tmp.begin(),
                       tmp.begin() + static_cast<long>(*c.encoder().encode_literal(
                                         hpack::Indexing::Incremental, "x-big",
                                         std::string(4000, 'z'), hpack::Coding::Raw, tmp)));
    for (int i = 0; i < 16; ++i)
      b = b + ByteString(tmp.begin(),
                         tmp.begin() + static_cast<long>(*c.encoder().encode_indexed(62, tmp)));
    REQUIRE(b.size() < 4200);
    check_431_then_served(c, c.send(frame(FrameType::kHeaders, kEh, 3, b)), false);
  }
  SECTION("101 fields") {
    Client c;
    c.open();
    c.send(c.get(1));
    Fields f = request("GET", "/");
    for (int i = 0; i < 97; ++i) f.emplace_back("x-f" + std::to_string(i), "v");
    check_431_then_served(c, c.send(c.headers(3, f)), true);
  }
  SECTION("one field over 8 KiB") {
    Client c;
    c.open();
    c.send(c.get(1));
    check_431_then_served(
        c, c.send(c.headers(3, request("GET", "/", {{"x-big", std::string(9000, 'q')}}))), true);
  }
  SECTION("100 fields and 8 KiB fields are within the limits") {
    Client c;
    c.open();
    Fields f = request("GET", "/", {{"x-big", std::string(8192 - 5, 'q')}});
    for (int i = 0; i < 95; ++i) f.emplace_back("x-f" + std::to_string(i), "v");
    c.send(c.headers(1, f));
    CHECK(c.response(1).status() == "200");
  }
}

TEST_CASE(
    "RFC 7541 §4.2 the client's SETTINGS_HEADER_TABLE_SIZE 0: our next block opens with a size "
    "update to 0") {
  Client c;
  c.open();
  c.send(c.get(1));
  c.send(c.get(3, "/nope"));
  auto frames = c.send(settings({{kHeaderTableSize, 0}}) + c.get(5));
  REQUIRE(frames.size() == 3);  // ACK, HEADERS, DATA
  REQUIRE_FALSE(frames[1].payload.empty());
  CHECK(frames[1].payload[0] == 0x20);
  CHECK(frames[1].fields == response_fields("200", "text/plain", 12));
  // From now on nothing may refer to the dynamic table (our decoder's is 0).
  c.send(c.get(7, "/nope"));
  c.send(c.get(9));
  CHECK(c.response(7).fields == response_fields("404", "text/plain", 10));
  CHECK(c.response(9).fields == response_fields("200", "text/plain", 12));
}
