// Coarse timeouts for many connections on one thread (epoll, uring): a
// hashed timing wheel (Varghese & Lauck). Arming, re-arming and disarming are
// O(1) on an intrusive node the connection owns, so 10,000 idle connections
// cost one node each and no allocation.
//
// Deadlines are rounded *up* to the tick: a node never fires early, at most
// one tick late. A deadline beyond one revolution stays in its slot and is
// skipped until its revolution comes.
//
// The connections use it lazily: activity only updates their own
// timestamps; when a node fires, the owner computes its real deadline and
// either acts or re-arms. So a busy connection touches the wheel about once
// per timeout period, not once per read.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace h2lab::server {

class TimerWheel {
 public:
  using Clock = std::chrono::steady_clock;

  struct Node {
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    bool armed() const noexcept { return prev != nullptr; }

    Node* prev = nullptr;
    Node* next = nullptr;
    uint64_t due_tick = 0;
    uint64_t key = 0;  // the owner's, e.g. a connection id
  };

  // `slots` is rounded up to a power of two.
  TimerWheel(Clock::duration tick, size_t slots, Clock::time_point start)
      : tick_(tick), start_(start), heads_(round_up_pow2(slots)), mask_(heads_.size() - 1) {
    for (Node& h : heads_) h.prev = h.next = &h;
  }
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // (Re)schedules `n` to fire at or after `due` (a due in the past fires on
  // the next expire()).
  void arm(Node& n, Clock::time_point due) noexcept {
    disarm(n);
    uint64_t t = tick_ceil(due);
    if (t <= processed_) t = processed_ + 1;
    n.due_tick = t;
    Node& head = heads_[t & mask_];
    n.prev = head.prev;
    n.next = &head;
    head.prev->next = &n;
    head.prev = &n;
    ++armed_;
  }

  void disarm(Node& n) noexcept {
    if (!n.armed()) return;
    n.prev->next = n.next;
    n.next->prev = n.prev;
    n.prev = n.next = nullptr;
    --armed_;
  }

  size_t armed() const noexcept { return armed_; }

  // Disarms every node due at `now` and calls fn(Node&) for each (fn may
  // re-arm or destroy the node it gets).
  template <typename Fn>
  void expire(Clock::time_point now, Fn&& fn) {
    const uint64_t now_tick = tick_floor(now);
    if (now_tick <= processed_) return;
    // After a long pause every slot is visited once, not once per tick.
    const uint64_t first = now_tick - processed_ > heads_.size() ? now_tick - heads_.size() + 1
                                                                : processed_ + 1;
    for (uint64_t t = first; t <= now_tick; ++t) {
      Node& head = heads_[t & mask_];
      Node due;  // the due nodes, moved out first so that fn may re-arm into this slot
      due.prev = due.next = &due;
      for (Node* n = head.next; n != &head;) {
        Node* next = n->next;
        if (n->due_tick <= now_tick) {
          n->prev->next = n->next;
          n->next->prev = n->prev;
          n->prev = due.prev;
          n->next = &due;
          due.prev->next = n;
          due.prev = n;
        }
        n = next;
      }
      processed_ = t;
      while (due.next != &due) {
        Node* n = due.next;
        due.next = n->next;
        n->next->prev = &due;
        n->prev = n->next = nullptr;
        --armed_;
        fn(*n);
      }
    }
    processed_ = now_tick;
  }

  // How long a poller may sleep before the next tick that holds a node;
  // nullopt when nothing is armed. Scans at most one revolution.
  std::optional<Clock::duration> until_next(Clock::time_point now) const noexcept {
    if (armed_ == 0) return std::nullopt;
    for (uint64_t t = processed_ + 1; t <= processed_ + heads_.size(); ++t) {
      const Node& head = heads_[t & mask_];
      if (head.next != &head) {
        const Clock::time_point at = start_ + tick_ * static_cast<int64_t>(t);
        return at > now ? at - now : Clock::duration::zero();
      }
    }
    return tick_;
  }

 private:
  static size_t round_up_pow2(size_t n) noexcept {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }
  uint64_t tick_floor(Clock::time_point t) const noexcept {
    return t <= start_ ? 0 : static_cast<uint64_t>((t - start_) / tick_);
  }
  uint64_t tick_ceil(Clock::time_point t) const noexcept {
    if (t <= start_) return 0;
    const auto d = t - start_;
    return static_cast<uint64_t>((d + tick_ - Clock::duration(1)) / tick_);
  }

  const Clock::duration tick_;
  const Clock::time_point start_;
  std::vector<Node> heads_;  // circular lists, heads are sentinels
  const size_t mask_;
  uint64_t processed_ = 0;  // every tick up to this one has fired
  size_t armed_ = 0;
};

}  // namespace h2lab::server
