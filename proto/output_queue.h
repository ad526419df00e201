// The bytes a connection has produced and not yet handed to the kernel (or to
// TLS), as an ordered iovec list.
//
// Zero copy: small pieces the engine builds (frame headers, prebuilt frames,
// HPACK blocks) are written into the queue's own arena; large bodies are
// appended by reference and never copied. The arena is made of fixed chunks
// that never move, so an iovec stays valid until consume() passes it; a chunk
// is recycled once every byte written into it has been consumed, so a queue
// that is drained in order never grows beyond what is pending.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace h2lab::proto {

// Arena chunks that queues have given back, for other queues to take again
// instead of allocating: with many connections per thread, a queue that
// empties between reads gives its chunk back (an idle connection holds no
// arena) and the next busy one takes it, so a loop turn costs no 16 KiB
// malloc/free per connection. Holds at most `max_chunks`; what comes back
// beyond that is freed. Not thread-safe: one pool per dispatcher thread,
// used by the queues that thread drives, and it must outlive them.
class ChunkPool {
 public:
  static constexpr size_t kDefaultMaxChunks = 32;  // 512 KiB per thread at most
  explicit ChunkPool(size_t max_chunks = kDefaultMaxChunks) : max_chunks_(max_chunks) {}
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // A chunk of OutputQueue::kChunkSize octets (contents undefined), or null
  // when the pool is empty.
  std::unique_ptr<uint8_t[]> take() noexcept;
  // Takes ownership of a chunk of OutputQueue::kChunkSize octets.
  void give(std::unique_ptr<uint8_t[]> chunk) noexcept;
  size_t held() const noexcept { return free_.size(); }

 private:
  size_t max_chunks_;
  std::vector<std::unique_ptr<uint8_t[]>> free_;
};

class OutputQueue {
 public:
  static constexpr size_t kChunkSize = 16384;

  OutputQueue() = default;
  ~OutputQueue();
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  // From now on chunks come from `pool` when it has one and go back to it
  // on release() and destruction (null: malloc and free, the default).
  // `pool` must outlive the queue; see ChunkPool for its thread rule.
  void use_pool(ChunkPool* pool) noexcept { pool_ = pool; }

  // Appends `n` (1 ≤ n ≤ kChunkSize) arena octets to the queue and returns
  // them for the caller to fill before the next call on this queue. Adjacent
  // arena writes merge into one iovec.
  uint8_t* append(size_t n) {
    // The hot path (every frame header): room in the current chunk.
    if (n <= static_cast<size_t>(arena_limit_ - arena_next_)) {
      uint8_t* out = arena_next_;
      if (out == last_arena_end_ && head_ < iov_.size()) {
        iov_.back().iov_len += n;  // contiguous with the previous arena write
      } else {
        iov_.push_back(iovec{out, n});
      }
      arena_next_ += n;
      last_arena_end_ = arena_next_;
      pending_bytes_ += n;
      appended_seq_ += n;
      last_arena_seq_ = appended_seq_;
      return out;
    }
    return append_in_new_chunk(n);
  }

  // Appends between 1 and min(n, kChunkSize) arena octets (n ≥ 1): what
  // room the newest chunk has left, or a new chunk when it has none — for a
  // caller that fills a long run piece by piece (TLS records encrypted into
  // the queue) without leaving the ends of chunks unused.
  std::span<uint8_t> append_up_to(size_t n) {
    const size_t room = static_cast<size_t>(arena_limit_ - arena_next_);
    const size_t take = std::min(n, room != 0 ? room : kChunkSize);
    return {append(take), take};
  }

  // Appends a reference to `n` octets owned by the caller, who keeps them
  // alive and unchanged until they are consumed (static data, a shared
  // pattern, a buffer owned by a stream that outlives its queued output).
  void append_ref(const void* data, size_t n);

  // Copies `n` octets into the arena (for data whose owner will not wait).
  void append_copy(const void* data, size_t n);

  size_t size() const noexcept { return pending_bytes_; }
  bool empty() const noexcept { return pending_bytes_ == 0; }

  // The pending bytes in order. Valid until the next non-const call.
  std::span<const iovec> iovecs() const noexcept {
    return {iov_.data() + head_, iov_.size() - head_};
  }

  // Marks the first `n` pending octets as written (n ≤ size()).
  void consume(size_t n) noexcept;

  // Octets of arena memory currently held (for the memory-per-connection
  // figures); 0 for a queue that has never been used or was released.
  size_t arena_bytes() const noexcept { return (chunks_.size() + spare_.size()) * kChunkSize; }

  // Gives all arena memory back (to the pool, else to the allocator) and
  // the bookkeeping vectors' memory unless it is small (a queue that is
  // busy again soon would only allocate it anew). Precondition: empty().
  void release() noexcept;

  // Response boundaries, for the per-response write policy
  // (server/session.h). An engine calls end_response() right after the last
  // octet of each response; the queue remembers where only while tracking
  // is on (off by default, and then end_response() costs one test).
  void track_responses() noexcept { track_responses_ = true; }
  void end_response() {
    if (track_responses_) response_ends_.push_back(appended_seq_);
  }
  // Responses whose last octet has been consumed, since tracking began.
  uint64_t responses_consumed() const noexcept { return responses_consumed_; }
  // Pending octets up to the end of the oldest response not yet consumed
  // — output queued before it (SETTINGS, WINDOW_UPDATE…) included — or
  // size() when no response end is pending.
  size_t octets_through_next_response() const noexcept {
    return next_end_ < response_ends_.size()
               ? static_cast<size_t>(response_ends_[next_end_] - consumed_seq_)
               : pending_bytes_;
  }

 private:
  struct Chunk {
    std::unique_ptr<uint8_t[]> data;
    uint64_t end_seq = 0;  // queue offset just past its last byte; set when it stops taking appends
  };

  uint8_t* append_in_new_chunk(size_t n);
  void give_back(std::unique_ptr<uint8_t[]> chunk) noexcept;
  void recycle_consumed_chunks() noexcept;
  void reset_newest_chunk() noexcept;

  std::vector<iovec> iov_;
  size_t head_ = 0;  // first pending iovec
  size_t pending_bytes_ = 0;
  uint64_t appended_seq_ = 0;    // total octets ever appended
  uint64_t consumed_seq_ = 0;    // total octets ever consumed
  uint64_t last_arena_seq_ = 0;  // appended_seq_ after the last arena write
  std::vector<Chunk> chunks_;    // in use, oldest first; the last takes appends
  std::vector<std::unique_ptr<uint8_t[]>> spare_;
  ChunkPool* pool_ = nullptr;
  uint8_t* arena_next_ = nullptr;   // free space of the newest chunk
  uint8_t* arena_limit_ = nullptr;
  const uint8_t* last_arena_end_ = nullptr;  // for merging adjacent writes
  bool track_responses_ = false;
  std::vector<uint64_t> response_ends_;  // appended_seq_ after each response, in order
  size_t next_end_ = 0;                  // first of response_ends_ not yet consumed
  uint64_t responses_consumed_ = 0;
};

}  // namespace h2lab::proto
