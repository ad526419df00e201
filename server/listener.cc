#include "server/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "server/socket_options.h"

namespace h2lab::server {
namespace {

std::string format_url(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {};
  uint16_t port = 0;
  if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    port = ntohs(a.sin6_port);
    return "http://[" + std::string(host) + "]:" + std::to_string(port) + "/";
  }
  const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
  inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
  port = ntohs(a.sin_port);
  return "http://" + std::string(host) + ":" + std::to_string(port) + "/";
}

// With SO_REUSEPORT a bind succeeds next to another reuseport socket of the
// same user: try the port without it first (port 0 is always free).
bool port_is_free(const addrinfo* ai, int& error_number) {
  error_number = 0;
  const auto* sa = ai->ai_addr;
  const uint16_t port = sa->sa_family == AF_INET6
                            ? reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port
                            : reinterpret_cast<const sockaddr_in*>(sa)->sin_port;
  if (port == 0) return true;
  const int probe = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (probe < 0) return true;  // the real bind will tell
  const int one = 1;
  ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool free = ::bind(probe, ai->ai_addr, ai->ai_addrlen) == 0;
  error_number = errno;
  if (free) error_number = 0;
  ::close(probe);
  return free;
}

}  // namespace

bool listener_uses_reuseport(const ServerOptions& options) {
  return (options.dispatch == Dispatch::kEpoll || options.dispatch == Dispatch::kUring) &&
         options.listener_mode == ListenerMode::kReuseport && resolved_threads(options) > 1;
}

int open_reuseport_sibling(int listen_fd, const ServerOptions& options, std::string& error) {
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    error = std::string("getsockname: ") + std::strerror(errno);
    return -1;
  }
  const int fd = ::socket(bound.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  // The server's listener took the same knobs already: no notices twice.
  std::string knobs = fd < 0 ? "" : configure_listener(fd, options, nullptr);
  if (fd < 0 || !knobs.empty() ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&bound), len) != 0 ||
      ::listen(fd, options.listen_backlog) != 0) {
    error = "cannot open another SO_REUSEPORT listener on " + format_url(bound) + ": " +
            (knobs.empty() ? std::strerror(errno) : knobs);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

bool open_listener(const ServerOptions& options, Listener& out, std::string& error) {
  const std::string where = options.host + " port " + std::to_string(resolved_port(options));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(resolved_port(options));
  if (int rc = getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve host " + options.host + ": " + gai_strerror(rc);
    return false;
  }
  int last_errno = 0;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    std::vector<std::string> notices;
    if (std::string why = configure_listener(fd, options, &notices); !why.empty()) {
      // A refused knob is the user's to fix, whatever the address.
      ::close(fd);
      freeaddrinfo(found);
      error = why;
      return false;
    }
    if (listener_uses_reuseport(options)) {
      if (!port_is_free(ai, last_errno) ||
          ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        if (last_errno == 0) last_errno = errno;
        ::close(fd);
        continue;
      }
    }
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        ::listen(fd, options.listen_backlog) != 0) {
      last_errno = errno;
      ::close(fd);
      continue;
    }
    report_listen_backlog(fd, options, notices);
    if (options.incoming_cpu && !options.cpus.empty()) {
      if (std::string why = set_incoming_cpu(fd, options.cpus[0]); !why.empty()) {
        ::close(fd);
        freeaddrinfo(found);
        error = why;
        return false;
      }
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    freeaddrinfo(found);
    out.fd = fd;
    out.notices = std::move(notices);
    out.url = format_url(bound);
    if (options.tls) out.url.insert(4, "s");  // "https://"
    return true;
  }
  freeaddrinfo(found);
  error = "cannot listen on " + where + ": " + std::strerror(last_errno);
  return false;
}

}  // namespace h2lab::server
