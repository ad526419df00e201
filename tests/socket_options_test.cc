// server/socket_options: the per-socket knobs, read back with getsockopt on
// a real accepted loopback connection.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/socket_options.h"

namespace {

// A connected pair over 127.0.0.1; returns the accepted (server) side.
int accepted_loopback_socket(int& client) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(listener);
  REQUIRE(fd >= 0);
  return fd;
}

int nodelay_of(int fd) {
  int value = -1;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) == 0);
  return value;
}

}  // namespace

TEST_CASE("--tcp-nodelay on and off reach the accepted socket") {
  const bool nodelay = GENERATE(true, false);
  INFO("tcp_nodelay " << nodelay);
  int client = -1;
  const int fd = accepted_loopback_socket(client);
  h2lab::server::ServerOptions options;
  options.tcp_nodelay = nodelay;
  CHECK(h2lab::server::configure_accepted_socket(fd, options));
  CHECK((nodelay_of(fd) != 0) == nodelay);
  ::close(fd);
  ::close(client);
}

TEST_CASE("TCP_NODELAY is on by default") {
  CHECK(h2lab::server::ServerOptions{}.tcp_nodelay);
}
