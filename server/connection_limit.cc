#include "server/connection_limit.h"

namespace h2lab::server {

Admission ConnectionLimit::admit() noexcept {
  if (active_.fetch_add(1, std::memory_order_relaxed) < max_) {
    accepted_.fetch_add(1, std::memory_order_relaxed);
    return Admission::kServe;
  }
  active_.fetch_sub(1, std::memory_order_relaxed);
  refused_.fetch_add(1, std::memory_order_relaxed);
  if (refusing_.fetch_add(1, std::memory_order_relaxed) < max_refusing_) return Admission::kRefuse;
  refusing_.fetch_sub(1, std::memory_order_relaxed);
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return Admission::kDrop;
}

void ConnectionLimit::release(Admission a) noexcept {
  if (a == Admission::kServe) active_.fetch_sub(1, std::memory_order_relaxed);
  if (a == Admission::kRefuse) refusing_.fetch_sub(1, std::memory_order_relaxed);
}

bool ConnectionLimit::take_closing() noexcept {
  if (refusing_.fetch_add(1, std::memory_order_relaxed) >= max_refusing_) {
    refusing_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

Admission ConnectionLimit::admit_handed_over() noexcept {
  accepted_.fetch_add(1, std::memory_order_relaxed);
  return Admission::kServe;
}

void ConnectionLimit::count_eviction(EvictionReason why) noexcept {
  evicted_[static_cast<int>(why)].fetch_add(1, std::memory_order_relaxed);
}

bool ConnectionLimit::eviction_report(int64_t second, uint64_t (&since_last)[3]) noexcept {
  if (report_second_.exchange(second, std::memory_order_relaxed) == second) return false;
  for (int i = 0; i < 3; ++i) {
    const uint64_t now = evicted_[i].load(std::memory_order_relaxed);
    since_last[i] = now - reported_[i].exchange(now, std::memory_order_relaxed);
  }
  return true;
}

Admission ConnectionLimit::admit_over() noexcept {
  active_.fetch_add(1, std::memory_order_relaxed);
  accepted_.fetch_add(1, std::memory_order_relaxed);
  return Admission::kServe;
}

ConnectionCounts ConnectionLimit::counts() const noexcept {
  ConnectionCounts c;
  c.active = active_.load(std::memory_order_relaxed);
  c.accepted = accepted_.load(std::memory_order_relaxed);
  c.refused = refused_.load(std::memory_order_relaxed);
  c.dropped = dropped_.load(std::memory_order_relaxed);
  c.evicted_handshake = evicted_[0].load(std::memory_order_relaxed);
  c.evicted_preface = evicted_[1].load(std::memory_order_relaxed);
  c.evicted_idle = evicted_[2].load(std::memory_order_relaxed);
  return c;
}

}  // namespace h2lab::server
