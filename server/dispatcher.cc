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
  // Every ring, with every io_uring knob applied, is made now (disabled;
  // each proactor enables its own): what the kernel refuses is reported
  // by create_server(), not met by a proactor while serving.
  return prepare_uring_rings(options);
}

}  // namespace h2lab::server
