#include "server/connection_limit.h"

namespace h2lab::server {

Admission ConnectionLimit::admit() noexcept {
  if (active_.fetch_add(1, std::memory_order_relaxed) < max_) {
    accepted_.fetch_add(1, std::memory_order_relaxed);
    return Admission::kServe;
  }
  active_.fetch_sub(1, std::memory_order_relaxed);
  refused_.fetch_add(1, std::memory_order_relaxed);
  if (refusing_.fetch_add(1, std::memory_order_relaxed) < kMaxRefusing) return Admission::kRefuse;
  refusing_.fetch_sub(1, std::memory_order_relaxed);
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return Admission::kDrop;
}

void ConnectionLimit::release(Admission a) noexcept {
  if (a == Admission::kServe) active_.fetch_sub(1, std::memory_order_relaxed);
  if (a == Admission::kRefuse) refusing_.fetch_sub(1, std::memory_order_relaxed);
}

ConnectionCounts ConnectionLimit::counts() const noexcept {
  return {active_.load(std::memory_order_relaxed), accepted_.load(std::memory_order_relaxed),
          refused_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed)};
}

}  // namespace h2lab::server
