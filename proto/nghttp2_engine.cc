#include "proto/nghttp2_engine.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace h2lab::proto {
namespace {

using namespace std::string_view_literals;

// As in the full engine: bodies below this are copied next to their frame
// header (one iovec), larger ones referenced.
constexpr size_t kCopyBodyBelow = 64;

std::string_view view(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

nghttp2_nv nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};  // nghttp2 copies both
}

}  // namespace

struct Nghttp2Engine::Stream {
  int32_t id = 0;
  std::string method, path;
  std::optional<uint64_t> content_length;
  size_t header_list_size = 0;  // RFC 9113 §6.5.2 units, as the full engine counts
  uint32_t fields = 0;
  bool too_large = false;      // over max_header_list_size or max_header_fields: 431
  bool responded = false;      // a response was submitted
  bool remote_closed = false;  // the peer's END_STREAM arrived
  bool complete = false;       // our END_STREAM went out
  RouteResponse response;
  uint64_t body_sent = 0;
  std::vector<uint8_t> echo;  // /echo input not yet sent back
  size_t echo_sent = 0;
};

// The callbacks nghttp2 calls while receiving and sending. They never call
// back into nghttp2: what must follow (consuming window, resuming deferred
// DATA) is recorded and done by on_input()/flush() once nghttp2 returns.
struct Nghttp2Engine::Callbacks {
  static Nghttp2Engine& engine(void* user_data) { return *static_cast<Nghttp2Engine*>(user_data); }

  static Stream* stream(nghttp2_session* session, int32_t id) {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  // Frames other than DATA, serialised by nghttp2: one copy into the arena.
  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* user_data) {
    Nghttp2Engine& e = engine(user_data);
    if (e.out_.size() >= e.options_.output_high_water) return NGHTTP2_ERR_WOULDBLOCK;
    e.out_.append_copy(data, length);
    return static_cast<ssize_t>(length);
  }

  // How much of a body the next DATA frame carries; the octets themselves
  // are written by send_data (NGHTTP2_DATA_FLAG_NO_COPY).
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t length, uint32_t* data_flags,
                           nghttp2_data_source* source, void*) {
    const Stream& s = *static_cast<const Stream*>(source->ptr);
    const RouteResponse& r = s.response;
    uint64_t remaining = 0;
    switch (r.body) {
      case BodyKind::kStatic:
        remaining = r.static_body.size() - s.body_sent;
        break;
      case BodyKind::kOwned:
        remaining = r.owned_body.size() - s.body_sent;
        break;
      case BodyKind::kPattern:
        remaining = r.length - s.body_sent;
        break;
      case BodyKind::kEcho:
        remaining = s.echo.size() - s.echo_sent;
        break;
      case BodyKind::kNone:
        break;
    }
    const bool body_complete = r.body != BodyKind::kEcho || s.remote_closed;
    if (remaining == 0 && !body_complete) return NGHTTP2_ERR_DEFERRED;  // resumed when input comes
    const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, length));
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == remaining && body_complete) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  // A whole DATA frame: its header copied, its body referenced or copied.
  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                       size_t length, nghttp2_data_source* source, void* user_data) {
    Nghttp2Engine& e = engine(user_data);
    if (e.out_.size() >= e.options_.output_high_water) return NGHTTP2_ERR_WOULDBLOCK;
    Stream& s = *static_cast<Stream*>(source->ptr);
    const RouteResponse& r = s.response;
    e.out_.append_copy(framehd, kFrameHeaderSize);  // no padding: we never ask for any
    const uint8_t* body = nullptr;
    bool by_reference = false;
    switch (r.body) {
      case BodyKind::kStatic:
        body = reinterpret_cast<const uint8_t*>(r.static_body.data()) + s.body_sent;
        by_reference = true;
        break;
      case BodyKind::kOwned:
        body = reinterpret_cast<const uint8_t*>(r.owned_body.data()) + s.body_sent;
        break;
      case BodyKind::kPattern:
        body = reinterpret_cast<const uint8_t*>(pattern_at(s.body_sent).data());
        by_reference = true;
        break;
      case BodyKind::kEcho:
        body = s.echo.data() + s.echo_sent;
        break;
      case BodyKind::kNone:
        break;
    }
    if (length != 0) {
      if (by_reference && length >= kCopyBodyBelow) {
        e.out_.append_ref(body, length);
      } else {
        e.out_.append_copy(body, length);
      }
    }
    if (r.body == BodyKind::kEcho) {
      s.echo_sent += length;
      if (s.echo_sent == s.echo.size()) {
        s.echo.clear();
        s.echo_sent = 0;
      }
      e.consume_.push_back({frame->hd.stream_id, length});  // echoed: the peer may send more
    } else {
      s.body_sent += length;
    }
    return 0;
  }

  static int begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Nghttp2Engine& e = engine(user_data);
    auto s = std::make_unique<Stream>();
    s->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, s->id, s.get());
    e.streams_.emplace(s->id, std::move(s));
    return 0;
  }

  // nghttp2 has validated the field (RFC 9113 §8.2); we keep what routing
  // needs and count the list against our limits.
  static int header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                    void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Stream* s = stream(session, frame->hd.stream_id);
    if (s == nullptr) return 0;
    const Nghttp2Engine& e = engine(user_data);
    s->header_list_size += namelen + valuelen + 32;
    if (++s->fields > e.options_.max_header_fields ||
        s->header_list_size > e.options_.max_header_list_size) {
      s->too_large = true;
    }
    if (s->too_large) return 0;
    const std::string_view n = view(name, namelen);
    const std::string_view v = view(value, valuelen);
    if (n == ":method"sv) {
      s->method.assign(v);
    } else if (n == ":path"sv) {
      s->path.assign(v);
    } else if (n == "content-length"sv) {
      uint64_t length = 0;
      std::from_chars(v.data(), v.data() + v.size(), length);  // nghttp2 checked the digits
      s->content_length = length;
    }
    return 0;
  }

  static int frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    Nghttp2Engine& e = engine(user_data);
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    Stream* s = stream(session, frame->hd.stream_id);
    if (s == nullptr) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s->remote_closed = end_stream;
      e.respond(*s);
      return 0;
    }
    if (end_stream) {
      s->remote_closed = true;
      if (s->response.body == BodyKind::kEcho) e.resume_.push_back(s->id);
    }
    return 0;
  }

  static int data_chunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                        size_t len, void* user_data) {
    Nghttp2Engine& e = engine(user_data);
    Stream* s = stream(session, id);
    if (s != nullptr && s->response.body == BodyKind::kEcho && !s->complete) {
      s->echo.insert(s->echo.end(), data, data + len);  // given back when it is sent back
      e.resume_.push_back(id);
    } else {
      e.consume_.push_back({id, len});  // a body nobody reads
    }
    return 0;
  }

  static int frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Nghttp2Engine& e = engine(user_data);
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        if (end_stream) {
          if (Stream* s = stream_of(e, frame->hd.stream_id)) s->complete = true;
          e.out_.end_response();
          ++e.counters_.responses;
        }
        break;
      case NGHTTP2_RST_STREAM:
        ++e.counters_.resets_sent;
        if (frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) ++e.counters_.refused;
        break;
      case NGHTTP2_GOAWAY:
        e.counters_.goaway_sent = true;
        e.counters_.goaway_code = frame->goaway.error_code;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
          e.close_reason_ = nghttp2_http2_strerror(frame->goaway.error_code);
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int stream_close(nghttp2_session*, int32_t id, uint32_t, void* user_data) {
    Nghttp2Engine& e = engine(user_data);
    const auto it = e.streams_.find(id);
    if (it == e.streams_.end()) return 0;
    if (it->second->responded && !it->second->complete) ++e.counters_.abandoned;
    e.streams_.erase(it);
    return 0;
  }

  static Stream* stream_of(Nghttp2Engine& e, int32_t id) {
    const auto it = e.streams_.find(id);
    return it == e.streams_.end() ? nullptr : it->second.get();
  }
};

Nghttp2Engine::Nghttp2Engine(ConnectionOptions options)
    : options_(std::move(options)), stats_renderer_([this] {
        return stats_body(counters_, streams_.size(), options_.stats_json);
      }) {}

Nghttp2Engine::~Nghttp2Engine() {
  streams_.clear();
  nghttp2_session_del(session_);
}

// After the client preface: a server session, our SETTINGS and the
// connection window raised (§6.9.2), as the full engine opens.
void Nghttp2Engine::start_session() {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_send_callback(cbs, Callbacks::send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, Callbacks::send_data);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, Callbacks::begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, Callbacks::header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Callbacks::frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Callbacks::data_chunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, Callbacks::frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Callbacks::stream_close);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_recv_client_magic(opt, 1);   // PrefaceMatcher took it
  nghttp2_option_set_no_auto_window_update(opt, 1);  // window comes back as /echo leaves
  const int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    fail("nghttp2 could not make a session");
    return;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, options_.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (options_.connection_window_size > kDefaultInitialWindowSize) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(options_.connection_window_size));
  }
}

size_t Nghttp2Engine::on_input(Bytes in) noexcept {
  if (done_) return in.size();
  size_t pos = 0;  // the first octet after the preface
  if (!preface_.preface_complete()) {
    const PrefaceStep step = take_preface(preface_, in, out_, counters_);
    if (step.state == PrefaceStep::kWaiting) return in.size();
    if (step.state == PrefaceStep::kRefused) {
      fail(step.close_reason);
      return in.size();
    }
    start_session();
    flush();  // our preface goes out before anything it answers
    pos = step.consumed;
  }
  // One frame at a time, each followed by a flush: nghttp2 sees the same
  // calls, and the output comes in the same order, however the input was
  // cut; an incomplete frame stays with the caller (the carry contract).
  while (!done_ && session_ != nullptr) {
    FrameHeader h;
    if (!decode_frame_header(in.subspan(pos), h)) break;
    // §4.2: a frame over our SETTINGS_MAX_FRAME_SIZE is judged at its
    // header; nghttp2 sees the header alone and answers FRAME_SIZE_ERROR.
    const bool too_large = h.length > options_.max_frame_size;
    if (!too_large && in.size() - pos < kFrameHeaderSize + h.length) break;
    const size_t n = too_large ? kFrameHeaderSize : kFrameHeaderSize + h.length;
    if (!too_large) {
      ++frames_;
      if (h.is(FrameType::kHeaders) || h.is(FrameType::kContinuation)) {
        in_header_block_ = !h.has(flags::kEndHeaders);
      }
    }
    const ssize_t rv = nghttp2_session_mem_recv(session_, in.data() + pos, n);
    pos += n;
    if (rv < 0) {
      // Fatal to nghttp2 (a flood, no memory): end with ENHANCE_YOUR_CALM
      // where the session can still send it.
      close_reason_ = nghttp2_strerror(static_cast<int>(rv));
      nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    flush();
    if (too_large && !done_) fail("frame larger than SETTINGS_MAX_FRAME_SIZE");
  }
  return done_ ? in.size() : pos;
}

void Nghttp2Engine::respond(Stream& s) {
  s.responded = true;
  ++counters_.streams;
  if (s.too_large) {
    // RFC 9113 §10.5.1 / RFC 6585, as the full engine answers.
    s.response = RouteResponse{431, {}, 0, BodyKind::kNone, {}, 0, {}};
  } else if (s.method == "CONNECT"sv) {
    s.response = RouteResponse{405, "text/plain", 0, BodyKind::kNone, {}, 0, {}};
  } else {
    s.response = route(s.method, s.path, s.content_length, stats_renderer_);
  }
  const RouteResponse& r = s.response;
  char status[4];
  std::to_chars(status, status + 3, r.status);
  char length[24];
  nghttp2_nv fields[3];
  size_t count = 0;
  fields[count++] = nv(":status", std::string_view(status, 3));
  if (!r.content_type.empty()) fields[count++] = nv("content-type", r.content_type);
  if (r.content_length) {
    const char* end = std::to_chars(length, length + sizeof length, *r.content_length).ptr;
    fields[count++] =
        nv("content-length", std::string_view(length, static_cast<size_t>(end - length)));
  }
  const bool echo_done = r.body == BodyKind::kEcho && s.remote_closed;
  const bool no_body = r.body == BodyKind::kNone || s.method == "HEAD"sv ||
                       (r.body == BodyKind::kStatic && r.static_body.empty()) ||
                       (echo_done && s.echo.empty());
  nghttp2_data_provider body;
  body.source.ptr = &s;
  body.read_callback = Callbacks::read_body;
  nghttp2_submit_response(session_, s.id, fields, count, no_body ? nullptr : &body);
  if (s.too_large && !s.remote_closed) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_NO_ERROR);
  }
}

// Sends what nghttp2 has, applying what the callbacks recorded in between,
// until nothing moves; then decides whether the connection is over.
void Nghttp2Engine::flush() {
  if (session_ == nullptr) return;
  for (int turn = 0; turn < 64; ++turn) {
    for (const int32_t id : resume_) nghttp2_session_resume_data(session_, id);
    resume_.clear();
    for (const auto& [id, n] : consume_) nghttp2_session_consume(session_, id, n);
    consume_.clear();
    if (nghttp2_session_send(session_) != 0) {
      close_reason_ = "nghttp2 could not send";
      done_ = true;
      return;
    }
    if (resume_.empty() && consume_.empty()) break;
  }
  const bool idle = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (idle || (input_closed_ && streams_.empty() && !nghttp2_session_want_write(session_))) {
    done_ = true;
  }
}

void Nghttp2Engine::fail(const char* reason) {
  close_reason_ = reason;
  done_ = true;
}

// The peer closed its sending side: complete requests are answered as far as
// the windows allow; those still waiting for a body are cancelled.
void Nghttp2Engine::on_input_closed() noexcept {
  if (done_) return;
  input_closed_ = true;
  if (session_ == nullptr) {
    done_ = true;  // no HTTP/2 connection yet: nothing to answer
    return;
  }
  for (const auto& [id, s] : streams_) {
    if (!s->remote_closed)
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
  flush();
}

// §6.8 graceful: GOAWAY naming the last stream we processed; nghttp2
// finishes those and then wants neither to read nor to write.
void Nghttp2Engine::shutdown() noexcept {
  if (done_) return;
  if (session_ == nullptr) {
    done_ = true;
    return;
  }
  if (!counters_.goaway_sent) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
  }
  flush();
}

void Nghttp2Engine::on_output_drained() noexcept {
  if (!done_) flush();
}

}  // namespace h2lab::proto
