#include "server/session.h"

#include <algorithm>

#include "proto/frame.h"

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

// Keep a small carry buffer across reads; give back a large one.
constexpr size_t kKeptPartialCapacity = 4096;

}  // namespace

Session::Session(std::unique_ptr<proto::Engine> engine, size_t max_output_bytes)
    : engine_(std::move(engine)), max_output_bytes_(max_output_bytes) {}

void Session::on_data(std::span<const uint8_t> data) noexcept {
  // TLS seam: with TLS on, `data` is ciphertext and goes through
  // tls::Session first; its plaintext then follows the same path.

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

void Session::on_eof() noexcept { engine_->on_input_closed(); }

void Session::shutdown() noexcept { engine_->shutdown(); }

std::span<const iovec> Session::pending_output() const noexcept {
  return engine_->output().iovecs();
}

size_t Session::pending_bytes() const noexcept { return engine_->output().size(); }

void Session::on_written(size_t n) noexcept {
  proto::OutputQueue& out = engine_->output();
  out.consume(n);
  // Low-water mark: half the bound, so that streaming bodies refill in
  // batches rather than one frame per write.
  if (out.size() <= max_output_bytes_ / 2) engine_->on_output_drained();
}

bool Session::wants_read() const noexcept {
  return fault_ == nullptr && !engine_->done() && pending_bytes() < max_output_bytes_;
}

bool Session::wants_close() const noexcept {
  return fault_ != nullptr || (engine_->done() && pending_bytes() == 0);
}

const char* Session::close_reason() const noexcept {
  return fault_ != nullptr ? fault_ : engine_->close_reason();
}

void Session::trim() noexcept {
  if (partial_.empty() && partial_.capacity() > kKeptPartialCapacity) {
    std::vector<uint8_t>().swap(partial_);
  }
}

}  // namespace h2lab::server
