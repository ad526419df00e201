// The full HTTP/2 server engine (`--engine full`): RFC 9113 connection and
// stream state, HPACK (RFC 7541), flow control in both directions, request
// validation, routes, and limits against hostile peers. Sans I/O: see
// proto/engine.h for the contract.
//
// Zero copy: frames are parsed in place in the caller's input; a header
// block split over CONTINUATION frames is the one input that is copied.
// Response bodies are referenced (static text, the shared pattern) or, for
// /echo, copied once from input into the output queue.
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/engine.h"
#include "proto/hpack.h"
#include "proto/preface.h"
#include "proto/routes.h"

namespace h2lab::proto {

// Limits and settings with their defaults; the reasons are in
// docs/LIMITS.md (values from HARDENING.md's survey of mature servers).
struct ConnectionOptions {
  uint32_t max_concurrent_streams = 100;        // SETTINGS_MAX_CONCURRENT_STREAMS
  uint32_t max_header_list_size = 64 * 1024;    // SETTINGS_MAX_HEADER_LIST_SIZE
  uint32_t max_header_fields = 100;
  uint32_t max_field_size = 8 * 1024;
  uint32_t max_frame_size = kDefaultMaxFrameSize;      // SETTINGS_MAX_FRAME_SIZE (accepted)
  uint32_t initial_window_size = kDefaultInitialWindowSize;  // per stream, receive
  uint32_t connection_window_size = 1024 * 1024;  // receive, raised at start
  uint32_t max_continuation_frames = 8;           // per header block
  // Abuse budget: PING, SETTINGS, RST_STREAM, PRIORITY, empty frames and
  // streams the peer or we reset each cost one; each completed response
  // earns one back. At zero: GOAWAY(ENHANCE_YOUR_CALM).
  uint32_t abuse_budget = 1000;
  // Stop producing response bodies above this many queued octets; the
  // session calls on_output_drained() below it.
  size_t output_high_water = 512 * 1024;
  // Replay caches (request block + route, response block, small-response
  // frame template), each keyed on the HPACK state it depends on. Off: every
  // block is decoded and encoded — the plain path the cached one is checked
  // against (tests/connection_cache_test), byte for byte.
  bool replay_caches = true;
  // Renders the server-wide part of /stats as a JSON value; may be empty.
  std::function<std::string()> stats_json;
};

class Connection final : public Engine {
 public:
  explicit Connection(ConnectionOptions options = {});
  ~Connection() override;

  size_t on_input(Bytes in) noexcept override;
  void on_input_closed() noexcept override;
  void shutdown() noexcept override;
  void on_output_drained() noexcept override;
  OutputQueue& output() noexcept override { return out_; }
  bool done() const noexcept override { return done_; }
  const char* close_reason() const noexcept override { return close_reason_; }
  size_t max_frame_bytes() const noexcept override {
    return kFrameHeaderSize + options_.max_frame_size;
  }

  // Counters for tests and /stats.
  using Counters = EngineCounters;
  const Counters& counters() const noexcept override { return counters_; }
  size_t open_streams() const noexcept { return streams_.size(); }
  EngineProgress progress() const noexcept override {
    return {frames_received_, settings_seen_, continuation_stream_ != 0,
            static_cast<uint32_t>(streams_.size())};
  }

 private:
  struct Stream;
  struct Request;
  struct RequestCache;

  // Frame handlers; each returns false once the connection is failing.
  bool on_frame(const FrameHeader& h, Bytes payload);
  bool on_data(const FrameHeader& h, Bytes payload);
  bool on_headers(const FrameHeader& h, Bytes payload);
  bool on_continuation(const FrameHeader& h, Bytes payload);
  bool on_settings(const FrameHeader& h, Bytes payload);
  bool on_ping(const FrameHeader& h, Bytes payload);
  bool on_goaway(const FrameHeader& h, Bytes payload);
  bool on_window_update(const FrameHeader& h, Bytes payload);
  bool on_rst_stream(const FrameHeader& h, Bytes payload);

  bool on_header_block(uint32_t stream_id, Bytes block, bool end_stream);
  // `route_memo`: where a repeated request's route is remembered, or null.
  bool start_request(uint32_t stream_id, const Request& request, bool end_stream,
                     std::optional<RouteResponse>* route_memo);
  void start_response(Stream& s);
  void end_of_request_body(Stream& s);
  void pump(Stream& s);
  void response_complete(Stream& s);
  void count_response();
  void pump_all();
  void finish_stream(uint32_t id);

  bool connection_error(ErrorCode code, const char* detail);
  bool connection_error(const FrameError& e) { return connection_error(e.code, e.detail); }
  void reset_stream(uint32_t id, ErrorCode code);
  void send_rst_stream(uint32_t id, ErrorCode code);  // reset_stream without the budget
  void settle_after_input_closed();
  bool spend_budget(const char* what);
  void send_goaway(ErrorCode code, const char* detail);
  static constexpr size_t kMaxResponseBlock = 256;
  Bytes response_header_block(const RouteResponse& r,
                              std::span<uint8_t, kMaxResponseBlock> scratch);
  void send_headers(uint32_t id, const RouteResponse& r, bool end_stream);
  bool send_small_response(uint32_t id, const RouteResponse& r, int64_t stream_window);
  void send_data(uint32_t id, const void* data, size_t n, bool end_stream, bool by_reference);
  void grant_window(uint32_t stream_id, uint32_t consumed);
  void send_server_preface();

  ConnectionOptions options_;
  OutputQueue out_;
  hpack::Decoder decoder_;
  hpack::Encoder encoder_;

  // Peer settings (§6.5.2) and windows (§6.9).
  uint32_t peer_max_frame_size_ = kDefaultMaxFrameSize;
  uint32_t peer_initial_window_ = kDefaultInitialWindowSize;
  int64_t conn_send_window_ = kDefaultInitialWindowSize;
  int64_t conn_recv_window_ = kDefaultInitialWindowSize;
  uint32_t conn_recv_unacked_ = 0;  // consumed octets not yet granted back

  // The last response header block, replayed while an identical response
  // follows and the encoder's state has not changed (encoding is a function
  // of the field list and that state, hpack::Encoder::state_version()): most
  // responses of a busy connection are the same few octets, so HPACK work
  // drops to a memcpy.
  struct HeaderBlockCache {
    bool valid = false;
    uint64_t encoder_version = 0;
    uint16_t status = 0;
    std::string_view content_type;
    std::optional<uint64_t> content_length;
    uint8_t block[64];
    size_t size = 0;
    // The whole small response last sent with this block — HEADERS then
    // DATA(END_STREAM) of `body` — as a template whose two stream ids are
    // patched in (DESIGN.md: "prebuilt frame templates patched in place").
    // Lives and dies with the block; empty until send_small_response fills it.
    const char* body = nullptr;
    size_t body_size = 0;
    uint8_t frames[2 * kFrameHeaderSize + sizeof block + 64];
    size_t frames_size = 0;
  };
  HeaderBlockCache header_cache_;
  bool cache_holds(const RouteResponse& r) const noexcept;
  std::unique_ptr<RequestCache> request_cache_;  // created on first use
  // Where header blocks are decoded: made by the first one and reset for
  // each, so that a request costs no construction. ~330 octets per
  // connection that sent a request, plus a :path over 256 octets, which
  // stays (bounded by max_field_size).
  std::unique_ptr<Request> decoding_;

  // Which of the most recent client stream ids were opened, and which we
  // reset: the rules that look back at closed streams (§5.1 ignore frames
  // after our RST_STREAM; §5.1.1 ids must grow) with bounded memory. Ids
  // older than the window count as opened and not reset.
  class StreamHistory {
   public:
    void open(uint32_t id) noexcept {  // id: odd, above every id seen
      uint32_t skipped = newest_ == 0 ? 1 : newest_ + 2;
      for (uint32_t n = 0; skipped < id && n < kSpan; skipped += 2, ++n) {
        opened_.reset(slot(skipped));
        reset_.reset(slot(skipped));
      }
      opened_.set(slot(id));
      reset_.reset(slot(id));
      newest_ = id;
    }
    void mark_reset(uint32_t id) noexcept {
      if (remembers(id)) reset_.set(slot(id));
    }
    bool was_opened(uint32_t id) const noexcept { return !remembers(id) || opened_.test(slot(id)); }
    bool was_reset(uint32_t id) const noexcept { return remembers(id) && reset_.test(slot(id)); }

   private:
    static constexpr uint32_t kSpan = 1024;  // odd ids remembered
    static size_t slot(uint32_t id) noexcept { return (id >> 1) % kSpan; }
    bool remembers(uint32_t id) const noexcept {
      return id % 2 == 1 && id <= newest_ && newest_ - id < 2 * kSpan;
    }
    std::bitset<kSpan> opened_, reset_;
    uint32_t newest_ = 0;
  };
  StreamHistory history_;
  bool ignoring_block_ = false;  // the header block in progress is on a stream we reset

  std::unordered_map<uint32_t, std::unique_ptr<Stream>> streams_;
  uint32_t last_peer_stream_ = 0;  // highest stream id the peer opened
  uint32_t last_processed_ = 0;    // highest stream id we accepted (for GOAWAY)

  // A header block in progress (HEADERS without END_HEADERS, §6.10).
  std::vector<uint8_t> header_block_;
  uint32_t continuation_stream_ = 0;
  bool continuation_end_stream_ = false;
  uint32_t continuation_frames_ = 0;

  PrefaceMatcher preface_;
  bool settings_seen_ = false;  // §3.4: the first frame must be SETTINGS
  bool goaway_sent_ = false;
  bool peer_goaway_ = false;
  bool input_closed_ = false;  // the peer closed its sending side (EOF)
  bool done_ = false;
  int64_t budget_;
  const char* close_reason_ = "";
  Counters counters_;
  const std::function<std::string()> stats_renderer_;  // route()'s /stats hook, built once
  uint64_t frames_received_ = 0;  // complete frames, for progress()
};

}  // namespace h2lab::proto
