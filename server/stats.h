// Measurement points, cheap enough to stay on: per-thread counters and a
// server-side request latency histogram, served at /stats (JSON), printed as
// a summary when the server stops, and as one live line by
// --stats-interval. docs/STATS.md documents every field.
//
// Each serving thread owns one ThreadStats and is its only writer: a counter
// is bumped with a relaxed load and store (a plain add, no locked
// instruction, no shared cache line with other threads). Readers (the
// /stats route, on whichever thread serves it) see every counter at most a
// few events old; a snapshot is not taken atomically across counters.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "server/connection_limit.h"
#include "server/process_usage.h"

namespace h2lab::server {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A log-linear histogram of nanoseconds: four buckets per power of two, so
// a bucket's bounds are within 25% of each other, over the whole uint64_t
// range. One writer (as Counter).
class LatencyHistogram {
 public:
  static constexpr unsigned kBuckets = 252;

  void record(uint64_t ns, uint64_t count = 1) noexcept {
    buckets_[bucket_of(ns)].add(count);
    total_ns_.add(ns * count);
  }
  uint64_t count(unsigned bucket) const noexcept { return buckets_[bucket].get(); }
  uint64_t total_ns() const noexcept { return total_ns_.get(); }

  static unsigned bucket_of(uint64_t ns) noexcept {
    if (ns < 8) return static_cast<unsigned>(ns);
    const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(ns));
    return 4 * (msb - 1) + static_cast<unsigned>((ns >> (msb - 2)) & 3);
  }
  // The smallest value of the next bucket: every value in `bucket` is below.
  static uint64_t bucket_limit_ns(unsigned bucket) noexcept {
    if (bucket < 8) return bucket + 1;
    const unsigned msb = bucket / 4 + 1;
    const uint64_t sub = bucket % 4;
    return (msb == 63 && sub == 3) ? UINT64_MAX : (5 + sub) << (msb - 2);
  }

 private:
  std::array<Counter, kBuckets> buckets_;
  Counter total_ns_;
};

// GOAWAY error codes are 0 (NO_ERROR) to 13 (HTTP_1_1_REQUIRED), RFC 9113
// §7; anything else is counted in the last slot.
inline constexpr unsigned kGoawayCodes = 15;

// One thread's counters. Which dispatcher counts what is in docs/STATS.md;
// in short: a "read" or "write" is one read(2)/sendmsg(2) call (blocking,
// threaded, epoll) or one recv completion / sendmsg submission (uring);
// `syscalls` are the system calls the thread made while serving, whatever
// they were; a "wait" is one blocking wait for events (epoll_wait,
// io_uring_enter waiting for completions).
struct alignas(64) ThreadStats {  // its own cache lines: no false sharing between threads
  explicit ThreadStats(std::string thread_name) : name(std::move(thread_name)) {}
  ThreadStats(const ThreadStats&) = delete;
  ThreadStats& operator=(const ThreadStats&) = delete;

  const std::string name;  // "epoll-0", "uring-1", "blocking", "threaded"

  // Connections and HTTP/2 (counted by the sessions).
  Counter connections;  // connections served (refused ones are in the limit's counts)
  Counter requests;     // streams the engine accepted
  Counter responses;    // responses completed
  Counter bytes_in;     // octets received (ciphertext with TLS)
  Counter bytes_out;    // octets handed to the kernel
  Counter backpressure_pauses;  // times a connection stopped reading: too much unsent output
  std::array<Counter, kGoawayCodes> goaways;  // GOAWAYs sent, by error code

  // I/O (counted by the dispatcher).
  Counter reads;
  Counter writes;
  Counter partial_writes;  // writes the kernel took only part of
  Counter syscalls;
  Counter waits;
  Counter events;             // epoll events / completions handled
  Counter buffer_exhaustion;  // uring: a recv found the provided-buffer ring empty
  Counter zero_copy_sends;    // uring: writes sent zero-copy (--uring-send-zc, registered buffers)
  Counter bundled_reads;      // uring: recv completions that filled more than one buffer
  Counter bundled_sends;      // uring: send completions that took more than one buffer
  Counter buffers_kept;       // uring: recv completions that left the rest of their buffer to
                              // the kernel (IORING_CQE_F_BUF_MORE, --uring-incremental-buffers)

  // From the read that brought a request's first octets to the write that
  // handed the last octet of its response to the kernel (server/session.h).
  LatencyHistogram latency;
};

// Every serving thread's counters, for the life of the server. Thread-safe.
class StatsRegistry {
 public:
  StatsRegistry();
  ~StatsRegistry();

  // Counters for the calling thread, valid until retire(). A dispatcher
  // opens one per thread it runs (threaded: per connection thread).
  ThreadStats& open(std::string thread_name);
  // The thread is done: its counts are added to the "finished threads"
  // totals and `stats` is freed.
  void retire(ThreadStats& stats);

  // Labels shown with the counters ("dispatch": "epoll", …), set once by
  // the server before serving.
  void set_description(std::string json_members) { description_ = std::move(json_members); }

  // The server's part of /stats: {…description, "uptime_s", "connections":
  // {the limit's counts}, "process": {what the kernel accounted to the
  // process since the registry was made}, "totals": {…}, "threads":
  // [{"name", …}, …]}.
  std::string json(const ConnectionCounts& connections) const;
  // A few lines for the log when the server stops.
  std::string summary(const ConnectionCounts& connections) const;
  // One line for --stats-interval: rates since the previous call.
  std::string live_line(const ConnectionCounts& connections);

  // The sum of every thread's counters (live and finished), as plain numbers.
  struct Totals {
    uint64_t connections = 0, requests = 0, responses = 0, bytes_in = 0, bytes_out = 0,
             backpressure_pauses = 0, reads = 0, writes = 0, partial_writes = 0, syscalls = 0,
             waits = 0, events = 0, buffer_exhaustion = 0, zero_copy_sends = 0,
             bundled_reads = 0, bundled_sends = 0, buffers_kept = 0, latency_total_ns = 0;
    std::array<uint64_t, kGoawayCodes> goaways{};
    std::array<uint64_t, LatencyHistogram::kBuckets> latency{};
    void add(const ThreadStats& s) noexcept;
    uint64_t latency_count() const noexcept;
    // The bucket limit below which `fraction` of the latencies fall (ns);
    // 0 with no samples.
    uint64_t latency_quantile_ns(double fraction) const noexcept;
  };
  Totals totals() const;

 private:
  mutable std::mutex mutex_;
  std::deque<std::unique_ptr<ThreadStats>> live_;
  Totals finished_;
  std::string description_;
  const std::chrono::steady_clock::time_point started_;
  const ProcessUsage usage_at_start_;
  // live_line()'s previous sample.
  Totals last_live_;
  std::chrono::steady_clock::time_point last_live_at_;
  ProcessUsage last_live_usage_;
};

}  // namespace h2lab::server
