#include "proto/output_queue.h"

#include <algorithm>
#include <cstring>

namespace h2lab::proto {

uint8_t* OutputQueue::append_in_new_chunk(size_t n) {
  if (!chunks_.empty()) chunks_.back().end_seq = last_arena_seq_;
  Chunk c;
  if (!spare_.empty()) {
    c.data = std::move(spare_.back());
    spare_.pop_back();
  } else {
    c.data = std::make_unique_for_overwrite<uint8_t[]>(kChunkSize);  // no memset: written before read
  }
  arena_next_ = c.data.get();
  arena_limit_ = arena_next_ + kChunkSize;
  last_arena_end_ = nullptr;
  chunks_.push_back(std::move(c));
  return append(n);
}

void OutputQueue::append_ref(const void* data, size_t n) {
  if (n == 0) return;
  iov_.push_back(iovec{const_cast<void*>(data), n});
  last_arena_end_ = nullptr;
  pending_bytes_ += n;
  appended_seq_ += n;
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
  while (next_end_ < response_ends_.size() && response_ends_[next_end_] <= consumed_seq_) {
    ++next_end_;
    ++responses_consumed_;
  }
  if (next_end_ == response_ends_.size()) {
    response_ends_.clear();
    next_end_ = 0;
  } else if (next_end_ > 64 && next_end_ * 2 > response_ends_.size()) {
    response_ends_.erase(response_ends_.begin(),
                         response_ends_.begin() + static_cast<std::ptrdiff_t>(next_end_));
    next_end_ = 0;
  }
}

void OutputQueue::reset_newest_chunk() noexcept {
  arena_next_ = chunks_.back().data.get();
  arena_limit_ = arena_next_ + kChunkSize;
  last_arena_end_ = nullptr;
}

void OutputQueue::recycle_consumed_chunks() noexcept {
  if (chunks_.empty()) return;
  // Older chunks are free once everything written into them is consumed;
  // the newest one once its last arena write is.
  size_t free_older = 0;
  while (free_older + 1 < chunks_.size() && chunks_[free_older].end_seq <= consumed_seq_) {
    ++free_older;
  }
  for (size_t i = 0; i < free_older; ++i) spare_.push_back(std::move(chunks_[i].data));
  if (free_older != 0) {
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(free_older));
  }
  if (chunks_.size() == 1 && last_arena_seq_ <= consumed_seq_) reset_newest_chunk();
  // Keep one spare chunk at most: memory held by an idle queue stays small.
  if (spare_.size() > 1) spare_.resize(1);
}

void OutputQueue::release() noexcept {
  iov_.clear();
  iov_.shrink_to_fit();
  head_ = 0;
  chunks_.clear();
  spare_.clear();
  arena_next_ = arena_limit_ = nullptr;
  last_arena_end_ = nullptr;
  std::vector<uint64_t>().swap(response_ends_);
}

}  // namespace h2lab::proto
