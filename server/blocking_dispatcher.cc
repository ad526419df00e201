// `blocking`: one thread, one client at a time (the seed's `:none`). Accept a
// connection, serve it with blocking reads and writes until it ends, then
// accept the next. Little overhead: fast for one pipelining client, useless
// for two. Its thread is "h2lab-blocking"; with --cpus it may run on any CPU
// of the list.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "server/blocking_connection.h"
#include "server/dispatcher.h"
#include "server/log.h"
#include "server/thread_options.h"

namespace h2lab::server {
namespace {

class BlockingDispatcher final : public Dispatcher {
 public:
  explicit BlockingDispatcher(const DispatchContext& context) : context_(context) {}

  void run() override {
    // accept(2) wakes once per tick to notice stop().
    set_blocking_tick(context_.listen_fd);
    ThreadStats& stats = context_.stats.open("blocking");
    // create_server() checked that the CPUs can be used (check_cpu_pinning).
    unsigned calls = 0;
    const std::string why = prepare_this_thread("h2lab-blocking", context_.options.cpus, &calls);
    stats.syscalls.add(calls);
    if (!why.empty()) log_line("%s; it runs unpinned", why.c_str());
    while (!stopping_.load(std::memory_order_relaxed)) {
      const int fd = ::accept4(context_.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      stats.syscalls.add();
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
            errno == EINVAL) {  // EINVAL: Server::stop() shut the listener down
          continue;
        }
        log_line("accept failed: %s", std::strerror(errno));
        if (errno == EMFILE || errno == ENFILE) ::usleep(kBlockingTickMs * 1000);
        continue;
      }
      // An accepted socket inherits every socket knob from the listener
      // (server/socket_options.h): nothing to set here.
      std::unique_ptr<Session> session = context_.new_session();
      session->count_into(&stats);
      stats.connections.add();
      serve_blocking_connection(fd, *session, context_.options, stopping_, stats);
    }
    context_.stats.retire(stats);
  }

  void stop() noexcept override { stopping_.store(true, std::memory_order_relaxed); }

 private:
  const DispatchContext& context_;
  std::atomic<bool> stopping_{false};
};

}  // namespace

std::unique_ptr<Dispatcher> make_blocking_dispatcher(const DispatchContext& context) {
  return std::make_unique<BlockingDispatcher>(context);
}

}  // namespace h2lab::server
