#include "server/socket_options.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace h2lab::server {

bool configure_accepted_socket(int fd, const ServerOptions& options) noexcept {
  const int nodelay = options.tcp_nodelay ? 1 : 0;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay) == 0;
}

bool rearm_quickack(int fd, const ServerOptions& options) noexcept {
  if (!options.tcp_quickack) return false;
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
  return true;
}

}  // namespace h2lab::server
