// The threads of an event-loop dispatcher (epoll reactors, uring proactors):
// how many, which listening socket each accepts on, how each is woken for a
// stop. One loop per thread, nothing shared between loops but the
// connection limit and the stop flag.
#pragma once

#include <atomic>
#include <functional>
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
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

 private:
  const ServerOptions& options_;
  std::vector<int> listeners_;
  std::vector<int> own_listeners_;  // the reuseport siblings, closed here
  std::vector<int> wake_fds_;
  std::atomic<bool> stopping_{false};
};

// What the epoll and uring dispatchers have besides their loop: the context,
// the connection limit their loops share, and the group of loops. run() is
// theirs; stop() and counts() are the same.
class LoopDispatcher : public Dispatcher {
 public:
  explicit LoopDispatcher(const DispatchContext& context)
      : context(context), limit(context.options.max_connections), group(context) {}
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

 private:
  std::vector<ThreadStats*> thread_stats_;
};

}  // namespace h2lab::server
