#include "proto/output_queue.h"

#include <algorithm>
#include <cstring>

namespace h2lab::proto {

uint8_t* OutputQueue::append(size_t n) {
  if (chunks_.empty() || kChunkSize - chunks_.back().used < n) {
    Chunk c;
    if (!spare_.empty()) {
      c.data = std::move(spare_.back());
      spare_.pop_back();
    } else {
      c.data = std::make_unique<uint8_t[]>(kChunkSize);
    }
    chunks_.push_back(std::move(c));
    last_arena_end_ = nullptr;
  }
  Chunk& c = chunks_.back();
  uint8_t* out = c.data.get() + c.used;
  c.used += n;
  push_iovec(out, n, true);
  c.end_seq = appended_seq_;
  return out;
}

void OutputQueue::append_ref(const void* data, size_t n) {
  if (n != 0) push_iovec(data, n, false);
}

void OutputQueue::append_copy(const void* data, size_t n) {
  const auto* src = static_cast<const uint8_t*>(data);
  while (n != 0) {
    const size_t piece = std::min(n, kChunkSize);
    std::memcpy(append(piece), src, piece);
    src += piece;
    n -= piece;
  }
}

void OutputQueue::push_iovec(const void* data, size_t n, bool arena) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (arena && p == last_arena_end_ && head_ < iov_.size()) {
    iov_.back().iov_len += n;  // contiguous with the previous arena write
  } else {
    iov_.push_back(iovec{const_cast<uint8_t*>(p), n});
  }
  last_arena_end_ = arena ? p + n : nullptr;
  pending_bytes_ += n;
  appended_seq_ += n;
}

void OutputQueue::consume(size_t n) noexcept {
  pending_bytes_ -= n;
  consumed_seq_ += n;
  while (n != 0) {
    iovec& v = iov_[head_];
    if (n < v.iov_len) {
      v.iov_base = static_cast<uint8_t*>(v.iov_base) + n;
      v.iov_len -= n;
      break;
    }
    n -= v.iov_len;
    ++head_;
  }
  if (head_ == iov_.size()) {
    iov_.clear();
    head_ = 0;
    last_arena_end_ = nullptr;
  } else if (head_ > 64 && head_ * 2 > iov_.size()) {
    iov_.erase(iov_.begin(), iov_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  recycle_consumed_chunks();
}

void OutputQueue::recycle_consumed_chunks() noexcept {
  // A chunk is free once everything written into it has been consumed. The
  // newest chunk is reset in place rather than recycled, when it is free too.
  size_t free_count = 0;
  while (free_count < chunks_.size() && chunks_[free_count].end_seq <= consumed_seq_) {
    ++free_count;
  }
  if (free_count == 0) return;
  if (free_count == chunks_.size()) {
    --free_count;
    chunks_.back().used = 0;
    last_arena_end_ = nullptr;
  }
  for (size_t i = 0; i < free_count; ++i) spare_.push_back(std::move(chunks_[i].data));
  chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(free_count));
  // Keep one spare chunk at most: memory held by an idle queue stays small.
  if (spare_.size() > 1) spare_.resize(1);
}

void OutputQueue::release() noexcept {
  iov_.clear();
  iov_.shrink_to_fit();
  head_ = 0;
  chunks_.clear();
  spare_.clear();
  last_arena_end_ = nullptr;
}

}  // namespace h2lab::proto
