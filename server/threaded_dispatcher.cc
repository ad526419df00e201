// `threaded`: an acceptor thread and one thread per connection, blocking I/O
// (the seed's `:thread`). Each connection thread runs the same loop as
// `blocking` (server/blocking_connection.h). Simple and fair between
// clients; every connection costs a thread and a context switch per
// wake-up. The acceptor runs as "h2lab-accept", each connection thread as
// "h2lab-conn"; with --cpus all of them may run on any CPU of the list.
//
// Threads are bounded explicitly (--max-threads): served connections at
// most min(--max-connections, --max-threads), refusals and evicted
// connections still closing at most a quarter of --max-threads more
// (ConnectionLimit's refusal bound). Each thread has a small stack
// (kThreadStack) and its buffers are allocated, untouched, on first use:
// what a connection costs here is in docs/LIMITS.md.
//
// At the limit the acceptor makes room as the loops do (server/accept.h):
// each connection thread publishes where its connection stands
// (ConnectionWatch) and the acceptor evicts the one longest without
// progress, which its thread closes or GOAWAYs within a tick.
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <memory>
#include <string>

#include "server/accept.h"
#include "server/blocking_connection.h"
#include "server/dispatcher.h"
#include "server/log.h"
#include "server/memory_trim.h"
#include "server/thread_options.h"

namespace h2lab::server {
namespace {

// A connection thread's stack. What it runs is shallow (no recursion; the
// deepest path is an OpenSSL handshake, a few tens of KiB); only touched
// pages cost memory, but 8 MiB of address space per thread (glibc's
// default) would make 10,000 threads reserve 80 GiB.
constexpr size_t kThreadStack = 256 * 1024;

size_t closing_bound(const ServerOptions& o) { return std::max<size_t>(1, o.max_threads / 4); }

class ThreadedDispatcher final : public Dispatcher, public RoomMaker {
 public:
  explicit ThreadedDispatcher(const DispatchContext& context)
      : context_(context),
        limit_(std::min(context.options.max_connections, context.options.max_threads),
               closing_bound(context.options)) {}

  ~ThreadedDispatcher() override { join_all(); }

  void run() override {
    // accept(2) wakes once per tick to notice stop() and reap threads.
    set_blocking_tick(context_.listen_fd);
    // create_server() checked that the CPUs can be used (check_cpu_pinning).
    const std::string why = prepare_this_thread("h2lab-accept", context_.options.cpus);
    if (!why.empty()) log_line("%s; it runs unpinned", why.c_str());
    while (!stopping_.load(std::memory_order_relaxed)) {
      reap_finished();
      const int fd = ::accept4(context_.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (classify_accept_error(errno) == AcceptFailure::kExhausted) {
          ::usleep(kAcceptPauseMs * 1000);
        }
        continue;
      }
      reap_finished();  // slots of threads that ended during the accept
      std::optional<NewConnection> conn = admit_connection(fd, limit_, context_, nullptr, this);
      if (conn) start_worker(std::move(*conn));
    }
    join_all();
    log_connection_counts(limit_.counts());
  }

  void stop() noexcept override { stopping_.store(true, std::memory_order_relaxed); }

  ConnectionCounts counts() const noexcept override { return limit_.counts(); }

  // On the acceptor thread, at a full limit.
  Room make_room() noexcept override {
    Worker* best = nullptr;
    bool best_setup = false;
    int64_t best_at = 0;
    EvictionClass best_class = EvictionClass::kNone;
    for (Worker& w : workers_) {
      if (w.finished.load(std::memory_order_acquire) || !w.slot.served() ||
          w.watch.evict.load(std::memory_order_relaxed) >= 0) {
        continue;
      }
      const EvictionClass k = w.watch.eviction_class.load(std::memory_order_relaxed);
      if (k == EvictionClass::kNone) continue;
      const bool setup = k != EvictionClass::kIdle;
      const int64_t at = w.watch.last_progress_ns.load(std::memory_order_relaxed);
      if (best != nullptr && (best_setup > setup || (best_setup == setup && best_at <= at))) {
        continue;
      }
      best = &w;
      best_setup = setup;
      best_at = at;
      best_class = k;
    }
    // Its thread must close it (within a tick), so it holds a closing slot
    // meanwhile: the served one goes to the newcomer now.
    if (best == nullptr || !best->slot.evict()) return Room::kNone;
    const EvictionReason reason = best_class == EvictionClass::kHandshake ? EvictionReason::kHandshake
                                  : best_class == EvictionClass::kPreface ? EvictionReason::kPreface
                                                                         : EvictionReason::kIdle;
    best->watch.evict.store(static_cast<int>(reason), std::memory_order_relaxed);
    note_eviction(limit_, reason);
    return Room::kHandedOver;
  }

 private:
  struct Worker {
    pthread_t thread{};
    bool started = false;
    std::atomic<bool> finished{false};
    AdmissionSlot slot;     // the acceptor may evict() it while the thread runs
    ConnectionWatch watch;  // published by the thread, read by the acceptor
  };
  struct Start {
    ThreadedDispatcher* self;
    NewConnection conn;
    Worker* worker;
  };

  void start_worker(NewConnection conn) {
    const int fd = conn.fd;
    Worker& w = workers_.emplace_back();
    w.slot = std::move(conn.slot);
    auto start = std::make_unique<Start>(Start{this, std::move(conn), &w});
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kThreadStack);
    const int rc = pthread_create(&w.thread, &attr, &ThreadedDispatcher::thread_main, start.get());
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      // The slot goes back with the worker; the socket is closed here.
      log_line("cannot start a connection thread: %s", std::strerror(rc));
      start->conn.session.reset();
      ::close(fd);
      workers_.pop_back();
      return;
    }
    start.release();  // the thread owns it now
    w.started = true;
  }

  static void* thread_main(void* arg) {
    std::unique_ptr<Start> start(static_cast<Start*>(arg));
    start->self->serve(std::move(start->conn), *start->worker);
    return nullptr;
  }

  void serve(NewConnection c, Worker& w) noexcept {
    ThreadStats& stats = context_.stats.open("threaded");
    unsigned calls = 0;
    const std::string why = prepare_this_thread("h2lab-conn", context_.options.cpus, &calls);
    stats.syscalls.add(calls);
    if (!why.empty()) log_line("%s; it runs unpinned", why.c_str());
    const bool refused = w.slot.refused();
    c.session->count_into(&stats);
    if (!refused) stats.connections.add();
    serve_blocking_connection(c.fd, *c.session, context_.options, stopping_, stats, refused,
                              &w.watch);
    c.session.reset();
    context_.stats.retire(stats);
    w.slot.reset();
    w.finished.store(true, std::memory_order_release);
  }

  // Joins the threads whose connections ended, so that a long-running
  // server does not accumulate them.
  void reap_finished() {
    trim_.maybe_trim(workers_.size(), std::chrono::steady_clock::now());
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->finished.load(std::memory_order_acquire)) {
        pthread_join(it->thread, nullptr);
        it = workers_.erase(it);
        trim_.on_close();
      } else {
        ++it;
      }
    }
  }

  void join_all() {
    for (Worker& w : workers_) {
      if (w.started) pthread_join(w.thread, nullptr);
      w.started = false;
    }
    workers_.clear();
  }

  const DispatchContext& context_;
  ConnectionLimit limit_;
  std::atomic<bool> stopping_{false};
  std::list<Worker> workers_;  // touched by the acceptor thread only
  MemoryTrim trim_;
};

}  // namespace

std::unique_ptr<Dispatcher> make_threaded_dispatcher(const DispatchContext& context) {
  return std::make_unique<ThreadedDispatcher>(context);
}

}  // namespace h2lab::server
