#include "server/dispatcher.h"

#include "server/io_uring_probe.h"

namespace h2lab::server {

std::unique_ptr<Dispatcher> make_dispatcher(const DispatchContext& context) {
  switch (context.options.dispatch) {
    case Dispatch::kBlocking:
      return make_blocking_dispatcher(context);
    case Dispatch::kThreaded:
      return make_threaded_dispatcher(context);
    case Dispatch::kEpoll:
      return make_epoll_dispatcher(context);
    case Dispatch::kUring:
      return make_uring_dispatcher(context);
  }
  return nullptr;
}

std::string dispatcher_unavailable(const ServerOptions& options) {
  if (options.dispatch != Dispatch::kUring) return "";
  const UringSupport& uring = probe_io_uring();
  if (!uring.available) return "--dispatch uring: io_uring is unavailable here: " + uring.why;
  if (options.uring_sqpoll && !uring.sqpoll) {
    return "--uring-sqpoll: the kernel refused IORING_SETUP_SQPOLL: " + uring.sqpoll_why;
  }
  return "";
}

}  // namespace h2lab::server
