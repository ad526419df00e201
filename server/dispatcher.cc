#include "server/dispatcher.h"

namespace h2lab::server {

std::unique_ptr<Dispatcher> make_dispatcher(const DispatchContext& context, std::string& error) {
  switch (context.options.dispatch) {
    case Dispatch::kBlocking:
      return make_blocking_dispatcher(context);
    case Dispatch::kThreaded:
      return make_threaded_dispatcher(context);
    case Dispatch::kEpoll:
      return make_epoll_dispatcher(context);
    case Dispatch::kUring:
      return make_uring_dispatcher(context, error);
  }
  error = "unknown dispatcher";
  return nullptr;
}

}  // namespace h2lab::server
