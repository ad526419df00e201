// The threads of an event-loop dispatcher (epoll reactors, uring proactors):
// how many, which listening socket each accepts on, how each is woken for a
// stop. One loop per thread, nothing shared between loops but the
// connection limit and the stop flag.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "server/connection_limit.h"
#include "server/dispatcher.h"

namespace h2lab::server {

class LoopGroup {
 public:
  // Resolves the thread count; with ListenerMode::kReuseport (and more than
  // one thread) opens one more SO_REUSEPORT listener per extra thread — if
  // that fails, every loop shares the server's listener (logged). With
  // options.incoming_cpu, listener i gets SO_INCOMING_CPU = the CPU loop i
  // is pinned to (the server's own listener, loop 0's, got it in
  // open_listener()).
  explicit LoopGroup(const DispatchContext& context);
  ~LoopGroup();
  LoopGroup(const LoopGroup&) = delete;
  LoopGroup& operator=(const LoopGroup&) = delete;

  unsigned size() const noexcept { return static_cast<unsigned>(wake_fds_.size()); }
  // The listening socket loop `i` accepts on (non-blocking).
  int listener(unsigned i) const noexcept { return listeners_[i]; }
  // True when every loop accepts on the same socket.
  bool shared_listener() const noexcept { return own_listeners_.empty(); }
  // An eventfd that becomes readable when stop() is called.
  int wake_fd(unsigned i) const noexcept { return wake_fds_[i]; }

  // Runs loop(i) for every i, loop(0) on the calling thread, and returns
  // when all have returned. Before loop(i) runs, its thread is named
  // "h2lab-<name>-<i>" and, with options.cpus, pinned to
  // cpus[i % cpus.size()] (a failure is logged: create_server() checked the
  // CPUs with check_cpu_pinning(), server/thread_options.h).
  void run(const char* name, const std::function<void(unsigned)>& loop);

  // Thread-safe, idempotent: sets stopping() and wakes every loop.
  void stop() noexcept;
  // Wakes loop i (its wake_fd becomes readable). Thread-safe.
  void wake(unsigned i) noexcept;
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

 private:
  const ServerOptions& options_;
  std::vector<int> listeners_;
  std::vector<int> own_listeners_;  // the reuseport siblings, closed here
  std::vector<int> wake_fds_;
  std::atomic<bool> stopping_{false};
};

// How the loops of one dispatcher make room for each other at the
// connection limit (server/accept.h, RoomMaker). Each loop evicts from its
// own connections; but the kernel spreads connections over the loops, so
// the one that accepts a newcomer may hold no connection still in its
// handshake or preface while another does. It then asks that one to evict
// (request()), admits the newcomer at once above the limit
// (ConnectionLimit::admit_over()), and the asked loop closes its candidate
// at its next turn, which brings the count back. Requests not served (the
// candidate went meanwhile) leave the count above the limit by one until a
// connection ends: bounded by the candidates there were.
class EvictionBoard {
 public:
  explicit EvictionBoard(unsigned loops) : loops_(loops), slots_(new Slot[loops]) {}

  // Loop i's served connections still in handshake or preface.
  void setup_added(unsigned i) noexcept { slots_[i].setup.fetch_add(1, std::memory_order_relaxed); }
  void setup_left(unsigned i) noexcept { slots_[i].setup.fetch_sub(1, std::memory_order_relaxed); }
  // Asks a loop other than `self` with more such connections than
  // evictions asked of it to evict one: its index, or -1 when none has.
  int request(unsigned self) noexcept {
    for (unsigned j = 0; j < loops_; ++j) {
      if (j == self) continue;
      Slot& s = slots_[j];
      const int32_t setup = s.setup.load(std::memory_order_relaxed);
      if (static_cast<int64_t>(setup) > s.requests.load(std::memory_order_relaxed)) {
        s.requests.fetch_add(1, std::memory_order_relaxed);
        return static_cast<int>(j);
      }
    }
    return -1;
  }
  // The evictions asked of loop i since its last call.
  uint32_t take_requests(unsigned i) noexcept {
    Slot& s = slots_[i];
    return s.requests.load(std::memory_order_relaxed) == 0
               ? 0
               : s.requests.exchange(0, std::memory_order_relaxed);
  }

 private:
  struct alignas(64) Slot {  // each loop's own cache line
    std::atomic<int32_t> setup{0};
    std::atomic<uint32_t> requests{0};
  };
  const unsigned loops_;
  std::unique_ptr<Slot[]> slots_;
};

// What the epoll and uring dispatchers have besides their loop: the context,
// the connection limit their loops share, and the group of loops. run() is
// theirs; stop() and counts() are the same.
class LoopDispatcher : public Dispatcher {
 public:
  explicit LoopDispatcher(const DispatchContext& context)
      : context(context),
        limit(context.options.max_connections),
        group(context),
        board(group.size()) {}
  void stop() noexcept override { group.stop(); }
  ConnectionCounts counts() const noexcept override { return limit.counts(); }
  // Runs loop(i) on every thread of the group, then logs the counts. Loop
  // i counts into thread_stats(i), named "<name>-<i>".
  void run_loops(const char* name, const std::function<void(unsigned)>& loop);
  // Loop i's counters; valid while run_loops() runs. Only loop i writes them.
  ThreadStats& thread_stats(unsigned i) noexcept { return *thread_stats_[i]; }

  const DispatchContext& context;
  ConnectionLimit limit;
  LoopGroup group;
  EvictionBoard board;

 private:
  std::vector<ThreadStats*> thread_stats_;
};

}  // namespace h2lab::server
