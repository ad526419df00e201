#include "server/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "server/engine_factory.h"
#include "server/dispatcher.h"
#include "server/listener.h"
#include "server/log.h"
#include "server/socket_options.h"
#include "server/thread_options.h"
#include "tls/context.h"
#include "tls/session.h"

namespace h2lab::server {
namespace {


class RunningServer final : public Server {
 public:
  RunningServer(const ServerOptions& options, Listener listener,
                std::shared_ptr<tls::Context> tls)
      : options_(with_stats_route(options)),
        listener_(std::move(listener)),
        tls_(std::move(tls)),
        context_{options_, listener_.fd,
                 [this] { return make_session(make_engine(options_)); },
                 [this](std::unique_ptr<proto::Engine> engine) {
                   return make_session(std::move(engine));
                 },
                 stats_} {
    stats_.set_description(
        "\"dispatch\": \"" + std::string(dispatch_name(options_.dispatch)) +
        "\", \"engine\": \"" + std::string(engine_name(options_.engine)) +
        "\", \"tls\": " + (options_.tls ? "true" : "false") +
        ", \"write_policy\": \"" + std::string(write_policy_name(options_.write_policy)) + "\"");
  }

  ~RunningServer() override {
    if (dispatcher_) {
      stop();
      wait();
    }
    ::close(listener_.fd);
  }

  // Makes the dispatcher and starts serving; returns why not ("" on
  // success) — then the server is only to be destroyed.
  std::string start() {
    std::string error;
    dispatcher_ = make_dispatcher(context_, error);
    if (!dispatcher_) return error;
    thread_ = std::thread([this] { dispatcher_->run(); });
    return "";
  }

  const std::string& url() const noexcept override { return listener_.url; }

  std::string stats_json() const override { return stats_.json(dispatcher_->counts()); }
  std::string stats_summary() const override { return stats_.summary(dispatcher_->counts()); }
  std::string stats_live_line() override { return stats_.live_line(dispatcher_->counts()); }

  void stop() noexcept override {
    dispatcher_->stop();
    // Accept nothing more: clients still in the backlog are reset now, and
    // new ones refused, rather than left waiting for the drain to end.
    ::shutdown(listener_.fd, SHUT_RD);
  }

  void wait() noexcept override {
    std::lock_guard lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  // A Session around `engine`, behind TLS when the server speaks it.
  std::unique_ptr<Session> make_session(std::unique_ptr<proto::Engine> engine) const {
    auto session = std::make_unique<Session>(
        std::move(engine), options_.max_output_bytes,
        tls_ ? std::make_unique<tls::Session>(tls_, options_.tls_record_size,
                                              options_.tls_records == TlsRecords::kH2lab
                                                  ? tls::RecordLayer::kH2lab
                                                  : tls::RecordLayer::kOpenssl)
             : nullptr);
    if (options_.write_policy == WritePolicy::kPerResponse) session->write_one_response_at_a_time();
    return session;
  }

  // The caller's options with /stats rendering this server's counters.
  ServerOptions with_stats_route(const ServerOptions& options) {
    ServerOptions o = options;
    o.http2.stats_json = [this] { return stats_json(); };
    return o;
  }

  StatsRegistry stats_;  // before everything that counts into it
  const ServerOptions options_;  // a copy: the caller's may go away
  Listener listener_;
  std::shared_ptr<tls::Context> tls_;  // null: cleartext
  DispatchContext context_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::thread thread_;
  std::mutex join_mutex_;
};

}  // namespace

CreateResult create_server(const ServerOptions& options) {
  if (std::string why = options_conflict(options); !why.empty()) return {nullptr, why};
  // Knobs the kernel may refuse that are applied on serving threads: tried
  // here, so that a refusal fails the start instead of being logged later.
  if (std::string why = check_cpu_pinning(options); !why.empty()) return {nullptr, why};
  if (std::string why = check_epoll_busy_poll(options); !why.empty()) return {nullptr, why};
  std::shared_ptr<tls::Context> tls = options.tls ? options.tls_context : nullptr;
  if (options.tls && !tls) {
    tls::ContextOptions o;
    o.cert_file = options.cert_file;
    o.key_file = options.key_file;
    o.session_resumption = options.tls_session_resumption;
    o.on_server_name = options.on_server_name;
    auto made = tls::Context::create(o);
    if (!made.context) return {nullptr, made.error};
    tls = std::move(made.context);
  }
  Listener listener;
  std::string error;
  if (!open_listener(options, listener, error)) return {nullptr, error};
  for (const std::string& notice : listener.notices) log_line("%s", notice.c_str());
  auto server = std::make_unique<RunningServer>(options, listener, std::move(tls));
  // The dispatcher is made before on_listening: a setting it cannot use
  // (io_uring knobs) fails the start.
  if (std::string why = server->start(); !why.empty()) return {nullptr, why};
  if (options.on_listening) options.on_listening(server->url());
  return {std::move(server), ""};
}

}  // namespace h2lab::server
