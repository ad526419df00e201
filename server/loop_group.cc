#include "server/loop_group.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "server/accept.h"
#include "server/listener.h"
#include "server/log.h"
#include "server/socket_options.h"
#include "server/thread_options.h"

namespace h2lab::server {

LoopGroup::LoopGroup(const DispatchContext& context) : options_(context.options) {
  const unsigned n = resolved_threads(context.options);
  for (unsigned i = 0; i < n; ++i) {
    // Created now, not in the loops' threads: stop() may come before a loop
    // runs, and the eventfd keeps the wake-up until the loop reads it.
    wake_fds_.push_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }
  const int shared = context.listen_fd;
  ::fcntl(shared, F_SETFL, ::fcntl(shared, F_GETFL) | O_NONBLOCK);
  listeners_.assign(n, shared);
  if (listener_uses_reuseport(context.options)) {
    for (unsigned i = 1; i < n; ++i) {
      std::string error;
      const int fd = open_reuseport_sibling(shared, context.options, error);
      if (fd < 0) {
        log_line("%s; all threads share one listener instead", error.c_str());
        for (int own : own_listeners_) ::close(own);
        own_listeners_.clear();
        listeners_.assign(n, shared);
        break;
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      own_listeners_.push_back(fd);
      listeners_[i] = fd;
    }
  }
  if (context.options.incoming_cpu) {
    if (shared_listener() && n > 1) {
      log_line("--incoming-cpu has no effect: the loops share one listener");
    }
    for (unsigned i = 1; i < n && !shared_listener(); ++i) {
      // The kernel took the same option on the server's listener at start;
      // should it refuse now, connections are only spread less well.
      const std::string why = set_incoming_cpu(listeners_[i], loop_cpus(context.options, i)[0]);
      if (!why.empty()) log_line("%s", why.c_str());
    }
  }
}

LoopGroup::~LoopGroup() {
  for (int fd : own_listeners_) ::close(fd);
  for (int fd : wake_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

void LoopGroup::run(const char* name, const std::function<void(unsigned)>& loop) {
  auto prepared = [this, name, &loop](unsigned i) {
    // Pinned before the loop sets anything up, so that its memory (buffers,
    // rings) is first touched on its own CPU.
    const std::string why = prepare_this_thread(
        "h2lab-" + std::string(name) + "-" + std::to_string(i), loop_cpus(options_, i));
    if (!why.empty()) log_line("%s; it runs unpinned", why.c_str());
    loop(i);
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < size(); ++i) threads.emplace_back(prepared, i);
  prepared(0);
  for (std::thread& t : threads) t.join();
}

void LoopDispatcher::run_loops(const char* name, const std::function<void(unsigned)>& loop) {
  for (unsigned i = 0; i < group.size(); ++i) {
    thread_stats_.push_back(&context.stats.open(std::string(name) + "-" + std::to_string(i)));
  }
  group.run(name, loop);
  for (ThreadStats* s : thread_stats_) context.stats.retire(*s);
  thread_stats_.clear();
  log_connection_counts(limit.counts());
}

void LoopGroup::wake(unsigned i) noexcept {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fds_[i], &one, sizeof one);
}

void LoopGroup::stop() noexcept {
  stopping_.store(true, std::memory_order_release);
  // Accept nothing more, on every listener — the server's own too: when a
  // loop fails to start and stops the group, clients must be refused at
  // once rather than left in a backlog nobody serves (Server::stop() shuts
  // it down again; that is harmless).
  for (int fd : listeners_) ::shutdown(fd, SHUT_RD);
  for (int fd : wake_fds_) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
  }
}

}  // namespace h2lab::server
