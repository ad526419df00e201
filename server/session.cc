#include "server/session.h"

#include <algorithm>

#include "proto/frame.h"
#include "server/stats.h"
#include "tls/session.h"

namespace h2lab::server {
namespace {

// How many more octets `partial` needs to hold one whole frame (or, below 9
// octets, a whole frame header).
size_t bytes_to_complete_frame(std::span<const uint8_t> partial) noexcept {
  proto::FrameHeader h;
  if (!proto::decode_frame_header(partial, h)) return proto::kFrameHeaderSize - partial.size();
  const size_t frame = proto::kFrameHeaderSize + h.length;
  return frame > partial.size() ? frame - partial.size() : 1;
}

// The first `n` octets of `iov` (n ≤ their total), in `scratch` when the
// last piece must be cut.
std::span<const iovec> first_octets(std::span<const iovec> iov, size_t n,
                                    std::vector<iovec>& scratch) {
  scratch.clear();
  for (const iovec& v : iov) {
    if (n == 0) break;
    scratch.push_back(v);
    if (v.iov_len >= n) {
      scratch.back().iov_len = n;
      break;
    }
    n -= v.iov_len;
  }
  return scratch;
}

// Keep a small carry buffer across reads; give back a large one.
constexpr size_t kKeptPartialCapacity = 4096;

// Plaintext decrypted per batch before the engine parses it: a few records.
constexpr size_t kPlaintextBatch = 4 * tls::Session::kMaxRecordPlaintext;

}  // namespace

Session::Session(std::unique_ptr<proto::Engine> engine, size_t max_output_bytes)
    : engine_(std::move(engine)), max_output_bytes_(max_output_bytes) {}

Session::Session(std::unique_ptr<proto::Engine> engine, size_t max_output_bytes,
                 std::unique_ptr<tls::Session> tls)
    : engine_(std::move(engine)), max_output_bytes_(max_output_bytes), tls_(std::move(tls)) {}

Session::~Session() = default;

void Session::write_one_response_at_a_time() noexcept {
  one_response_per_write_ = true;
  engine_->output().track_responses();
}

void Session::use_chunk_pool(proto::ChunkPool* pool) noexcept {
  engine_->output().use_pool(pool);
  if (tls_) tls_->use_chunk_pool(pool);
}

void Session::count_into(ThreadStats* stats) noexcept {
  stats_ = stats;
  counted_ = engine_->counters();
  proto::OutputQueue& out = engine_->output();
  out.track_responses();  // where each response ends: when its clock stops
  responses_timed_ = out.responses_consumed();
}

void Session::on_data(std::span<const uint8_t> data) noexcept {
  // Read before the input is processed: a request's latency includes
  // parsing it and producing its response.
  const Clock::time_point arrived = stats_ != nullptr ? Clock::now() : Clock::time_point{};
  if (tls_) {
    on_tls_data(data);
  } else {
    on_plaintext(data);
  }
  if (stats_ != nullptr) {
    stats_->bytes_in.add(data.size());
    count_engine(arrived);
  }
}

// Adds what the engine did since the last look to the thread's counters.
// `arrived`: when the input being handled arrived; left unset by the calls
// that handle no input (the engine starts requests only from input, so
// they need no clock).
void Session::count_engine(Clock::time_point arrived) noexcept {
  const proto::EngineCounters& c = engine_->counters();
  if (const uint64_t started = c.streams - counted_.streams; started != 0) {
    stats_->requests.add(started);
    arrivals_.push_back({arrived == Clock::time_point{} ? Clock::now() : arrived, started});
  }
  if (const uint64_t done = c.responses - counted_.responses; done != 0) {
    stats_->responses.add(done);
  }
  abandoned_untimed_ += c.abandoned - counted_.abandoned;
  // Counted before it is written, so a peer that received it finds it counted.
  if (c.goaway_sent && !counted_.goaway_sent) {
    stats_->goaways[std::min(c.goaway_code, kGoawayCodes - 1)].add();
  }
  counted_ = c;
  const bool over = backlog() >= max_output_bytes_;
  if (over && !paused_) stats_->backpressure_pauses.add();
  paused_ = over;
}

// After a write: stops the clocks of the requests whose responses are now
// wholly in the kernel's hands.
void Session::count_written(size_t n) noexcept {
  stats_->bytes_out.add(n);
  // The engine's queue knows which responses it has handed on; with TLS
  // they went into ciphertext, which is all out only when nothing is left.
  if (tls_ && tls_->output_size() != 0) return;
  const uint64_t written = engine_->output().responses_consumed();
  uint64_t to_time = written - responses_timed_ + abandoned_untimed_;
  if (to_time == 0) return;
  responses_timed_ = written;
  abandoned_untimed_ = 0;
  const Clock::time_point now = Clock::now();
  size_t used = 0;
  while (to_time != 0 && used < arrivals_.size()) {
    Arrival& a = arrivals_[used];
    const uint64_t k = std::min(a.requests, to_time);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - a.at).count();
    stats_->latency.record(static_cast<uint64_t>(ns), k);
    a.requests -= k;
    to_time -= k;
    if (a.requests == 0) ++used;
  }
  arrivals_.erase(arrivals_.begin(), arrivals_.begin() + static_cast<std::ptrdiff_t>(used));
}

// Ciphertext → tls::Session → plaintext batches → the same path as
// cleartext. Every octet of `ciphertext` is taken before this returns
// (an incomplete record waits inside tls::Session).
void Session::on_tls_data(std::span<const uint8_t> ciphertext) noexcept {
  // One batch buffer per thread, like the dispatchers' read buffers: the
  // engine parses the plaintext in place and only an incomplete frame's tail
  // is carried (partial_), as in cleartext.
  // On the heap and not value-initialised: static thread-local storage is
  // zeroed at every thread's start, which would touch all 64 KiB for each
  // `threaded` connection thread.
  thread_local std::unique_ptr<uint8_t[]> batch_buffer(new uint8_t[kPlaintextBatch]);
  const std::span<uint8_t> batch(batch_buffer.get(), kPlaintextBatch);
  while (true) {
    const auto r = tls_->read(ciphertext, batch);
    ciphertext = ciphertext.subspan(r.consumed);
    if (r.produced == 0) break;
    if (fault_ == nullptr) on_plaintext(batch.first(r.produced));
  }
  if (tls_->peer_closed() && !input_closed_) {  // close_notify: the end of input
    input_closed_ = true;
    engine_->on_input_closed();
  }
  pump_tls();
}

// Engine output → tls::Session (encrypted, coalesced into full records);
// the engine's end → close_notify.
void Session::pump_tls() noexcept {
  proto::OutputQueue& out = engine_->output();
  if (one_response_per_write_) {
    // The next response's records only once the previous ones are out.
    if (!out.empty() && tls_->output_size() == 0) {
      out.consume(tls_->write(first_octets(out.iovecs(), out.octets_through_next_response(),
                                           limited_)));
    }
  } else if (!out.empty() && tls_->output_size() < max_output_bytes_) {
    // Above the bound the plaintext waits, by reference, in the engine's queue.
    out.consume(tls_->write(out.iovecs()));
  }
  if (engine_->done() && (out.empty() || !tls_->handshake_done() || tls_->failed())) {
    tls_->close();
  }
}

size_t Session::backlog() const noexcept {
  return engine_->output().size() + (tls_ ? tls_->output_size() : 0);
}

void Session::on_plaintext(std::span<const uint8_t> data) noexcept {
  // Complete the carried frame first, taking from `data` only what it lacks,
  // so that the rest of `data` is parsed in place without a copy.
  while (!partial_.empty() && !data.empty() && !engine_->done()) {
    const size_t take = std::min(bytes_to_complete_frame(partial_), data.size());
    partial_.insert(partial_.end(), data.begin(), data.begin() + take);
    data = data.subspan(take);
    const size_t used = engine_->on_input(partial_);
    partial_.erase(partial_.begin(), partial_.begin() + static_cast<std::ptrdiff_t>(used));
  }
  if (!data.empty() && !engine_->done()) {
    const size_t used = engine_->on_input(data);
    partial_.assign(data.begin() + static_cast<std::ptrdiff_t>(used), data.end());
  }
  if (engine_->done()) partial_.clear();
  if (partial_.size() > engine_->max_frame_bytes()) {
    // An engine must reject an oversized frame at its header; this guards the
    // bound on carried bytes should one not.
    fault_ = "incomplete frame larger than the engine accepts";
    partial_.clear();
  }
}

void Session::on_eof() noexcept {
  if (tls_) tls_->on_eof();  // without close_notify first: truncation, logged
  if (!input_closed_) {
    input_closed_ = true;
    engine_->on_input_closed();
  }
  if (tls_) pump_tls();
  if (stats_ != nullptr) count_engine({});
}

void Session::shutdown() noexcept {
  engine_->shutdown();
  if (tls_) pump_tls();
  if (stats_ != nullptr) count_engine({});
}

std::span<const iovec> Session::pending_output() const noexcept {
  if (tls_) return tls_->output();  // pump_tls() encrypted one response at a time
  const proto::OutputQueue& out = engine_->output();
  if (!one_response_per_write_) return out.iovecs();
  const size_t n = out.octets_through_next_response();
  return n == out.size() ? out.iovecs() : first_octets(out.iovecs(), n, limited_);
}

size_t Session::pending_bytes() const noexcept {
  return tls_ ? tls_->output_size() : engine_->output().size();
}

void Session::on_written(size_t n) noexcept {
  if (tls_) {
    tls_->consume_output(n);
    pump_tls();
    if (backlog() <= max_output_bytes_ / 2) {
      engine_->on_output_drained();
      pump_tls();
    }
  } else {
    proto::OutputQueue& out = engine_->output();
    out.consume(n);
    // Low-water mark: half the bound, so that streaming bodies refill in
    // batches rather than one frame per write.
    if (out.size() <= max_output_bytes_ / 2) engine_->on_output_drained();
  }
  if (stats_ != nullptr) {
    count_written(n);
    count_engine({});
  }
}

bool Session::wants_read() const noexcept {
  return fault_ == nullptr && !engine_->done() && backlog() < max_output_bytes_ &&
         (!tls_ || (!tls_->failed() && !tls_->peer_closed()));
}

bool Session::wants_close() const noexcept {
  if (fault_ != nullptr) return true;
  if (tls_) return (tls_->failed() || tls_->closed()) && tls_->output_size() == 0;
  return engine_->done() && pending_bytes() == 0;
}

bool Session::handshake_done() const noexcept { return !tls_ || tls_->handshake_done(); }

SessionProgress Session::progress() const noexcept {
  return {handshake_done(), engine_->progress(), engine_->counters().responses};
}

const char* Session::close_reason() const noexcept {
  if (fault_ != nullptr) return fault_;
  if (tls_ && tls_->failed()) return tls_->error();
  return engine_->close_reason();
}

void Session::trim() noexcept {
  if (partial_.empty() && partial_.capacity() > kKeptPartialCapacity) {
    std::vector<uint8_t>().swap(partial_);
  }
  if (arrivals_.empty() && arrivals_.capacity() > 16) std::vector<Arrival>().swap(arrivals_);
  if (tls_) tls_->trim();
  // An empty output queue gives its arena back: an idle connection then
  // holds no 16 KiB chunk (the next write allocates one again).
  proto::OutputQueue& out = engine_->output();
  if (out.empty()) out.release();
}

}  // namespace h2lab::server
