// Giving memory back after a crowd of connections leaves. glibc keeps freed
// heap memory in its arenas (one per serving thread) for reuse; after a crowd
// leaves — 10,000 idle TLS connections hold ~200 MiB — the server's RSS
// would stay at its peak for good. malloc_trim(0) returns the free pages of
// every arena to the kernel (MADV_DONTNEED inside the heap, not only at its
// top, which is all M_TRIM_THRESHOLD can reach).
//
// When: once a thread's connections have stayed at half of their peak (the
// most open since the last trim) or fewer for a whole second, and at least
// one connection closed in between. Not at once when they fall: returned
// pages come back as page faults (zeroed by the kernel) the moment the next
// connections are made, so a thread that trimmed whenever a burst of
// connections ended would pay that for every burst — one request per
// connection in bursts of 2,000 (bench churn) made ~28 MiB of page faults
// per burst, ~4 µs of server CPU per connection (docs/BENCHMARKS.md). A
// crowd that stays gone is trimmed a second after it left; a crowd that
// comes back reuses the memory it left. Memory never goes above what the
// thread held at its peak.
//
// Cost of a trim: a walk over the arenas' free chunks, ~1 ms per 100 MiB of
// heap, at most once a second per thread. Measured in docs/LIMITS.md
// (bench/idle_connections.py, "after close").
//
// The first trim of the process is made by one thread only (trim_heap):
// glibc sets its allocator up on the first call into it, and that set-up
// (ptmalloc_init) is not safe on two threads at once — each takes the main
// arena as its own, and the second to exit fails glibc's assertion
// "a->attached_threads > 0" and aborts. A normal build runs it at the
// process's first malloc; under AddressSanitizer, whose allocator replaces
// glibc's, the first call into glibc's can be two loops' first trims at the
// same instant (2 aborts in 200 runs of two threads trimming at once).
#pragma once

#include <malloc.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>

namespace h2lab::server {

class MemoryTrim {
 public:
  using Clock = std::chrono::steady_clock;
  // How long the connections must stay at half their peak or fewer.
  static constexpr Clock::duration kSettle = std::chrono::seconds(1);

  // A connection of this thread ended.
  void on_close() noexcept { ++closed_; }

  // Once per loop turn: `open` connections remain on this thread. Trims when
  // the crowd has stayed gone for kSettle; returns whether it trimmed.
  bool maybe_trim(size_t open, Clock::time_point now) noexcept {
    if (open > peak_) peak_ = open;
    if (closed_ == 0 || open > peak_ / 2) {
      low_since_.reset();
      return false;
    }
    if (!low_since_) low_since_ = now;
    if (now - *low_since_ < kSettle) return false;
    trim_heap();
    closed_ = 0;
    peak_ = open;
    low_since_.reset();
    return true;
  }

  // When maybe_trim would trim if the connections stay as they are; nullopt
  // when no trim is pending. A loop that waits with a timeout takes this into
  // it, so that an idle thread still wakes to trim.
  std::optional<Clock::time_point> due() const noexcept {
    if (!low_since_) return std::nullopt;
    return *low_since_ + kSettle;
  }
  // The same as a wait from `now` (zero when overdue), as TimerWheel's
  // until_next gives it.
  std::optional<Clock::duration> until_due(Clock::time_point now) const noexcept {
    const std::optional<Clock::time_point> at = due();
    if (!at) return std::nullopt;
    return *at > now ? *at - now : Clock::duration::zero();
  }

  // malloc_trim(0), the process's first one made once (see the top).
  static void trim_heap() noexcept {
    static std::once_flag first;
    bool trimmed = false;
    std::call_once(first, [&trimmed] {
      malloc_trim(0);
      trimmed = true;
    });
    if (!trimmed) malloc_trim(0);
  }

 private:
  size_t closed_ = 0;  // connections ended since the last trim
  size_t peak_ = 0;    // most connections open since the last trim
  std::optional<Clock::time_point> low_since_;  // since when at half the peak or fewer
};

}  // namespace h2lab::server
