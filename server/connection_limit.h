// The connection limit shared by a dispatcher's threads (--max-connections),
// and its counters.
//
// Above the limit a client is not left hanging in the backlog nor reset: it
// is *refused* — served by a Session whose engine answers SETTINGS and
// GOAWAY(last-stream-id 0, "server full") and ends (proto/refuse_engine.h),
// so that TLS, when on, wraps the refusal like any other connection.
// Refusals in progress are bounded too (kMaxRefusing); beyond that a client
// is closed at once, counted as dropped.
//
// Before refusing, a dispatcher may make room (admit_connection's
// RoomMaker): it *evicts* the connection of its own that has gone longest
// without progress — one still in its handshake or preface first, then an
// idle one with no open stream — whose slot goes to the newcomer while it
// closes in a refusal slot (evict()). So connections that do nothing cannot
// hold the limit; only connections doing real work make it refuse.
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
  // Connections closed to admit a newcomer at the limit, by why they could
  // be: still in the TLS handshake, still before the client preface and
  // first SETTINGS, idle with no open stream.
  uint64_t evicted_handshake = 0;
  uint64_t evicted_preface = 0;
  uint64_t evicted_idle = 0;
};

// Why a connection was evicted (counted separately).
enum class EvictionReason { kHandshake, kPreface, kIdle };

enum class Admission { kServe, kRefuse, kDrop };

class ConnectionLimit {
 public:
  // A refusal lasts one round trip for a well-behaved client; this many at
  // once is far above what a full server should see, yet bounds the memory
  // (and, for `threaded`, the threads) a flood of refused clients can take.
  static constexpr size_t kMaxRefusing = 256;

  // `max_refusing`: refusals (and evicted connections still closing) in
  // progress at once, at most kMaxRefusing.
  explicit ConnectionLimit(size_t max_connections, size_t max_refusing = kMaxRefusing) noexcept
      : max_(max_connections), max_refusing_(max_refusing < kMaxRefusing ? max_refusing
                                                                        : kMaxRefusing) {}

  // Decides for a new connection. kServe and kRefuse take a slot that
  // release() gives back when the connection ends. Thread-safe.
  Admission admit() noexcept;
  void release(Admission a) noexcept;
  // Every served slot is taken: admit() would refuse now. Thread-safe.
  bool full() const noexcept { return active_.load(std::memory_order_relaxed) >= max_; }
  // Admits a new connection into the served slot an evicted one handed
  // over (AdmissionSlot::evict() or hand_over()): counted as accepted, the
  // active count unchanged — so no other thread can take the slot between
  // the eviction and this admission.
  Admission admit_handed_over() noexcept;
  // Admits a new connection above the limit because another thread was
  // asked to evict one of its own (server/loop_group.h, EvictionBoard).
  Admission admit_over() noexcept;
  // Counts an eviction (AdmissionSlot::evict() moves the slot itself).
  void count_eviction(EvictionReason why) noexcept;
  // For a log line once per `second` (a monotonic count of seconds): true
  // for the first call in a new second, with the evictions by reason since
  // the previous true answer in `since_last`.
  bool eviction_report(int64_t second, uint64_t (&since_last)[3]) noexcept;

  ConnectionCounts counts() const noexcept;

 private:
  friend class AdmissionSlot;
  // Takes a closing (refusal) slot for an evicted connection: false when
  // refusals are at their bound.
  bool take_closing() noexcept;

  const size_t max_;
  const size_t max_refusing_;
  std::atomic<uint64_t> evicted_[3] = {};
  std::atomic<uint64_t> reported_[3] = {};
  std::atomic<int64_t> report_second_{0};
  std::atomic<size_t> active_{0};
  std::atomic<size_t> refusing_{0};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> dropped_{0};
};

// Holds one admitted connection's slot and gives it back when destroyed.
// reset() and evict() may be called from different threads (threaded: the
// connection's thread ends it, the acceptor evicts it); moves may not race
// with either.
class AdmissionSlot {
 public:
  AdmissionSlot() = default;
  AdmissionSlot(ConnectionLimit& limit, Admission a) noexcept : limit_(&limit), admission_(a) {}
  AdmissionSlot(AdmissionSlot&& o) noexcept
      : limit_(o.limit_), admission_(o.admission_.exchange(Admission::kDrop)) {}
  AdmissionSlot& operator=(AdmissionSlot&& o) noexcept {
    if (this != &o) {
      reset();
      limit_ = o.limit_;
      admission_.store(o.admission_.exchange(Admission::kDrop));
    }
    return *this;
  }
  ~AdmissionSlot() { reset(); }
  // Gives the slot back now.
  void reset() noexcept {
    const Admission a = admission_.exchange(Admission::kDrop);
    if (limit_ != nullptr && a != Admission::kDrop) limit_->release(a);
  }
  // A served connection makes room: its served slot goes to a newcomer
  // (ConnectionLimit::admit_handed_over()) and it holds a closing slot
  // until reset(). False, changing nothing, when it is not served or no
  // closing slot is left.
  bool evict() noexcept {
    if (limit_ == nullptr || admission_.load() != Admission::kServe) return false;
    if (!limit_->take_closing()) return false;
    Admission expected = Admission::kServe;
    if (admission_.compare_exchange_strong(expected, Admission::kRefuse)) return true;
    limit_->release(Admission::kRefuse);  // ended meanwhile: nothing to hand over
    return false;
  }
  // The same, for a connection closed at once: it holds no slot from now
  // on. False when it is not served.
  bool hand_over() noexcept {
    Admission expected = Admission::kServe;
    return limit_ != nullptr && admission_.compare_exchange_strong(expected, Admission::kDrop);
  }
  bool refused() const noexcept { return admission_.load() == Admission::kRefuse; }
  bool served() const noexcept { return admission_.load() == Admission::kServe; }

 private:
  ConnectionLimit* limit_ = nullptr;
  std::atomic<Admission> admission_{Admission::kDrop};
};

}  // namespace h2lab::server
