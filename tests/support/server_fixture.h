// A real server on an ephemeral loopback port for one test, stopped (and
// waited for) when the fixture goes out of scope.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "server/server.h"

namespace h2lab::testing {

class TestServer {
 public:
  explicit TestServer(server::ServerOptions options = {}) {
    options.port = 0;
    options.on_listening = [this](const std::string& url) { announced_ = url; };
    auto created = server::create_server(options);
    INFO(created.error);
    REQUIRE(created.server);
    server_ = std::move(created.server);
    REQUIRE(announced_ == server_->url());
  }
  ~TestServer() {
    server_->stop();
    server_->wait();
  }
  const std::string& url() const { return server_->url(); }
  uint16_t port() const { return static_cast<uint16_t>(std::stoi(url().substr(url().rfind(':') + 1))); }
  server::Server& get() { return *server_; }

 private:
  std::string announced_;
  std::unique_ptr<server::Server> server_;
};

}  // namespace h2lab::testing
