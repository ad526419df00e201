#include "proto/output_queue.h"

#include <algorithm>
#include <cstring>

namespace h2lab::proto {
namespace {

// Bookkeeping vectors up to this many entries keep their memory on
// release(): a few hundred octets per connection that was busy once,
// against an allocation per loop turn for one that is busy all the time.
constexpr size_t kKeptEntries = 16;

template <typename T>
void clear_keeping_small(std::vector<T>& v) noexcept {
  if (v.capacity() > kKeptEntries) {
    std::vector<T>().swap(v);
  } else {
    v.clear();
  }
}

}  // namespace

std::unique_ptr<uint8_t[]> ChunkPool::take() noexcept {
  if (free_.empty()) return nullptr;
  std::unique_ptr<uint8_t[]> chunk = std::move(free_.back());
  free_.pop_back();
  return chunk;
}

void ChunkPool::give(std::unique_ptr<uint8_t[]> chunk) noexcept {
  if (free_.size() >= max_chunks_) return;  // `chunk` is freed here
  if (free_.capacity() == 0) free_.reserve(max_chunks_);  // never grows after: no throw below
  free_.push_back(std::move(chunk));
}

OutputQueue::~OutputQueue() {
  for (Chunk& c : chunks_) give_back(std::move(c.data));
  for (auto& c : spare_) give_back(std::move(c));
}

void OutputQueue::give_back(std::unique_ptr<uint8_t[]> chunk) noexcept {
  if (pool_ != nullptr) pool_->give(std::move(chunk));
}

uint8_t* OutputQueue::append_in_new_chunk(size_t n) {
  if (!chunks_.empty()) chunks_.back().end_seq = last_arena_seq_;
  Chunk c;
  if (!spare_.empty()) {
    c.data = std::move(spare_.back());
    spare_.pop_back();
  } else {
    if (pool_ != nullptr) c.data = pool_->take();
    if (!c.data) c.data = std::make_unique_for_overwrite<uint8_t[]>(kChunkSize);  // no memset: written before read
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
  while (spare_.size() > 1) {
    give_back(std::move(spare_.back()));
    spare_.pop_back();
  }
}

void OutputQueue::release() noexcept {
  clear_keeping_small(iov_);
  head_ = 0;
  for (Chunk& c : chunks_) give_back(std::move(c.data));
  clear_keeping_small(chunks_);
  for (auto& c : spare_) give_back(std::move(c));
  clear_keeping_small(spare_);
  arena_next_ = arena_limit_ = nullptr;
  last_arena_end_ = nullptr;
  clear_keeping_small(response_ends_);
  next_end_ = 0;
}

}  // namespace h2lab::proto
