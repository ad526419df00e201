#include "server/dispatcher.h"

namespace h2lab::server {

std::unique_ptr<Dispatcher> make_dispatcher(const DispatchContext& context) {
  switch (context.options.dispatch) {
    case Dispatch::kBlocking:
      return make_blocking_dispatcher(context);
  }
  return nullptr;
}

}  // namespace h2lab::server
