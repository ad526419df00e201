#include "server/server.h"

#include <unistd.h>

#include <mutex>
#include <thread>

#include "server/engine_factory.h"
#include "server/dispatcher.h"
#include "server/listener.h"

namespace h2lab::server {
namespace {


class RunningServer final : public Server {
 public:
  RunningServer(const ServerOptions& options, Listener listener)
      : options_(options),
        listener_(std::move(listener)),
        context_{options_, listener_.fd,
                 [this] { return std::make_unique<Session>(make_engine(options_),
                                                           options_.max_output_bytes); }},
        dispatcher_(make_dispatcher(context_)) {}

  ~RunningServer() override {
    stop();
    wait();
    ::close(listener_.fd);
  }

  void start() {
    thread_ = std::thread([this] { dispatcher_->run(); });
  }

  const std::string& url() const noexcept override { return listener_.url; }

  void stop() noexcept override { dispatcher_->stop(); }

  void wait() noexcept override {
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  const ServerOptions options_;  // a copy: the caller's may go away
  Listener listener_;
  DispatchContext context_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::thread thread_;
  std::mutex join_mutex_;
};

}  // namespace

CreateResult create_server(const ServerOptions& options) {
  Listener listener;
  std::string error;
  if (!open_listener(options, listener, error)) return {nullptr, error};
  auto server = std::make_unique<RunningServer>(options, listener);
  if (options.on_listening) options.on_listening(server->url());
  server->start();
  return {std::move(server), ""};
}

}  // namespace h2lab::server
