// The connection limit shared by a dispatcher's threads (--max-connections),
// and its counters.
//
// Above the limit a client is not left hanging in the backlog nor reset: it
// is *refused* — served by a Session whose engine answers SETTINGS and
// GOAWAY(last-stream-id 0, "server full") and ends (proto/refuse_engine.h),
// so that TLS, when on, wraps the refusal like any other connection.
// Refusals in progress are bounded too (kMaxRefusing); beyond that a client
// is closed at once, counted as dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace h2lab::server {

// A snapshot of the counters (full stats arrive with /stats).
struct ConnectionCounts {
  uint64_t active = 0;    // connections being served now
  uint64_t accepted = 0;  // served, since start
  uint64_t refused = 0;   // answered "server full" (or dropped), since start
  uint64_t dropped = 0;   // of those, closed without a word: too many refusals at once
};

enum class Admission { kServe, kRefuse, kDrop };

class ConnectionLimit {
 public:
  // A refusal lasts one round trip for a well-behaved client; this many at
  // once is far above what a full server should see, yet bounds the memory
  // (and, for `threaded`, the threads) a flood of refused clients can take.
  static constexpr size_t kMaxRefusing = 256;

  explicit ConnectionLimit(size_t max_connections) noexcept : max_(max_connections) {}

  // Decides for a new connection. kServe and kRefuse take a slot that
  // release() gives back when the connection ends. Thread-safe.
  Admission admit() noexcept;
  void release(Admission a) noexcept;

  ConnectionCounts counts() const noexcept;

 private:
  const size_t max_;
  std::atomic<size_t> active_{0};
  std::atomic<size_t> refusing_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> dropped_{0};
};

// Holds one admitted connection's slot and gives it back when destroyed.
class AdmissionSlot {
 public:
  AdmissionSlot() = default;
  AdmissionSlot(ConnectionLimit& limit, Admission a) noexcept : limit_(&limit), admission_(a) {}
  AdmissionSlot(AdmissionSlot&& o) noexcept : limit_(o.limit_), admission_(o.admission_) {
    o.limit_ = nullptr;
  }
  AdmissionSlot& operator=(AdmissionSlot&& o) noexcept {
    if (this != &o) {
      reset();
      limit_ = o.limit_;
      admission_ = o.admission_;
      o.limit_ = nullptr;
    }
    return *this;
  }
  ~AdmissionSlot() { reset(); }
  // Gives the slot back now.
  void reset() noexcept {
    if (limit_ != nullptr) limit_->release(admission_);
    limit_ = nullptr;
  }
  bool refused() const noexcept { return admission_ == Admission::kRefuse; }

 private:
  ConnectionLimit* limit_ = nullptr;
  Admission admission_ = Admission::kDrop;
};

}  // namespace h2lab::server
