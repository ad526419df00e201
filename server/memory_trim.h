// Giving memory back after many connections end. glibc keeps freed heap
// memory in its arenas (one per serving thread) for reuse; after a crowd of
// connections leaves — 10,000 idle TLS connections hold ~200 MiB — the
// server's RSS would stay at its peak for good. malloc_trim(0) returns the
// free pages of every arena to the kernel (MADV_DONTNEED inside the heap,
// not only at its top, which is all M_TRIM_THRESHOLD can reach).
//
// Cost: a walk over the arenas' free chunks, ~1 ms per 100 MiB of heap;
// made only after kMinCloses closes, then at most once a second unless the
// thread's connections fell to an eighth of what they were at the last trim
// (a mass close is trimmed as it ends, not a second later) — and once when
// the last connection of the thread is gone. Measured in
// docs/LIMITS.md (bench/idle_connections.py, "after close").
#pragma once

#include <malloc.h>

#include <chrono>
#include <cstddef>

namespace h2lab::server {

class MemoryTrim {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMinCloses = 256;

  // A connection of this thread ended.
  void on_close() noexcept { ++closed_; }
  // Once per loop turn: `open` connections remain on this thread. Returns
  // whether it trimmed.
  bool maybe_trim(size_t open, Clock::time_point now) noexcept {
    if (open > peak_) peak_ = open;
    if (closed_ == 0 || (closed_ < kMinCloses && open != 0)) return false;
    if (now - last_ < std::chrono::seconds(1) && open > peak_ / 8) return false;
    malloc_trim(0);
    closed_ = 0;
    peak_ = open;
    last_ = now;
    return true;
  }

 private:
  size_t closed_ = 0;
  size_t peak_ = 0;  // most connections open since the last trim
  Clock::time_point last_{};
};

}  // namespace h2lab::server
