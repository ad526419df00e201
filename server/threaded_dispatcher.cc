// `threaded`: an acceptor thread and one thread per connection, blocking I/O
// (the seed's `:thread`). Each connection thread runs the same loop as
// `blocking` (server/blocking_connection.h); the connection limit bounds the
// threads. Simple and fair between clients; every connection costs a thread
// (its stack is mostly untouched virtual memory) and a context switch per
// wake-up. The acceptor runs as "h2lab-accept", each connection thread as
// "h2lab-conn"; with --cpus all of them may run on any CPU of the list.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <list>
#include <string>
#include <system_error>
#include <thread>

#include "server/accept.h"
#include "server/blocking_connection.h"
#include "server/dispatcher.h"
#include "server/log.h"
#include "server/thread_options.h"

namespace h2lab::server {
namespace {

class ThreadedDispatcher final : public Dispatcher {
 public:
  explicit ThreadedDispatcher(const DispatchContext& context)
      : context_(context), limit_(context.options.max_connections) {}

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
      std::optional<NewConnection> conn = admit_connection(fd, limit_, context_, nullptr);
      if (conn) start_worker(std::move(*conn));
    }
    join_all();
    log_connection_counts(limit_.counts());
  }

  void stop() noexcept override { stopping_.store(true, std::memory_order_relaxed); }

  ConnectionCounts counts() const noexcept override { return limit_.counts(); }

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  void start_worker(NewConnection conn) {
    const int fd = conn.fd;
    Worker& w = workers_.emplace_back();
    try {
      w.thread = std::thread(&ThreadedDispatcher::serve, this, std::move(conn), std::ref(w));
    } catch (const std::system_error& e) {
      // The connection went with the failed thread's state (its slot is back);
      // its socket is closed here.
      log_line("cannot start a connection thread: %s", e.what());
      ::close(fd);
      workers_.pop_back();
    }
  }

  void serve(NewConnection c, Worker& w) noexcept {
    ThreadStats& stats = context_.stats.open("threaded");
    unsigned calls = 0;
    const std::string why = prepare_this_thread("h2lab-conn", context_.options.cpus, &calls);
    stats.syscalls.add(calls);
    if (!why.empty()) log_line("%s; it runs unpinned", why.c_str());
    c.session->count_into(&stats);
    if (!c.slot.refused()) stats.connections.add();
    serve_blocking_connection(c.fd, *c.session, context_.options, stopping_, stats,
                              c.slot.refused());
    c.session.reset();
    context_.stats.retire(stats);
    c.slot.reset();
    w.finished.store(true, std::memory_order_release);
  }

  // Joins the threads whose connections ended, so that a long-running
  // server does not accumulate them.
  void reap_finished() {
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->finished.load(std::memory_order_acquire)) {
        it->thread.join();
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void join_all() {
    for (Worker& w : workers_) {
      if (w.thread.joinable()) w.thread.join();
    }
    workers_.clear();
  }

  const DispatchContext& context_;
  ConnectionLimit limit_;
  std::atomic<bool> stopping_{false};
  std::list<Worker> workers_;  // touched by the acceptor thread only
};

}  // namespace

std::unique_ptr<Dispatcher> make_threaded_dispatcher(const DispatchContext& context) {
  return std::make_unique<ThreadedDispatcher>(context);
}

}  // namespace h2lab::server
