#include "server/socket_options.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

// epoll busy polling appeared in Linux 6.9 (include/uapi/linux/eventpoll.h);
// glibc 2.36's <sys/epoll.h> does not have it yet.
#ifndef EPIOCSPARAMS
struct epoll_params {
  uint32_t busy_poll_usecs;
  uint16_t busy_poll_budget;
  uint8_t prefer_busy_poll;
  uint8_t __pad;  // must be zero
};
#define EPOLL_IOC_TYPE 0x8A
#define EPIOCSPARAMS _IOW(EPOLL_IOC_TYPE, 0x01, struct epoll_params)
#define EPIOCGPARAMS _IOR(EPOLL_IOC_TYPE, 0x02, struct epoll_params)
#endif
static_assert(sizeof(epoll_params) == 8, "struct epoll_params is 8 octets in the kernel ABI");

namespace h2lab::server {
namespace {

// The kernel's BUSY_POLL_BUDGET: packets per NAPI poll when the budget is 0.
constexpr uint16_t kEpollBusyPollBudget = 8;

// A sysctl under /proc/sys, or -1 when it cannot be read.
long long read_sysctl(const char* path) {
  std::ifstream in(path);
  long long value = -1;
  if (!(in >> value)) return -1;
  return value;
}

// One integer socket option a knob sets on the listener: an int, or — wide
// — the kernel's unsigned long (SO_MAX_PACING_RATE), 8 octets in and out.
struct Knob {
  const char* flag;      // "--sndbuf"
  std::string shown;     // the value as the user gave it: "100000", "on"
  int level;
  int name;
  const char* name_text;  // "SO_SNDBUF"
  uint64_t value;         // passed on as the int the kernel takes unless wide
  bool wide = false;
};

// Why the kernel's value differs from what was asked, for the buffer sizes:
// on SO_SNDBUF/SO_RCVBUF it caps the value at the sysctl, doubles it (room
// for its struct sk_buff bookkeeping) and raises it to a floor.
std::string explain_buffer(long long asked, long long got, const char* sysctl_name,
                           const char* sysctl_path) {
  const long long max = read_sysctl(sysctl_path);
  if (max >= 0 && asked > max && got == 2 * max) {
    return " (it caps the value at " + std::string(sysctl_name) + " = " + std::to_string(max) +
           " and doubles it)";
  }
  if (got == 2 * asked) return " (it doubles the value, to leave room for its bookkeeping)";
  if (got > 2 * asked) return " (its minimum)";
  return "";
}

std::string refused(const char* flag, const std::string& shown, const char* option,
                    int error_number) {
  return std::string(flag) + " " + shown + ": the kernel refused " + option + ": " +
         std::strerror(error_number);
}

// The first line of a /proc/sys file ("reno bbr cubic"), "" when unreadable.
std::string read_sysctl_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// TCP_CONGESTION takes a name (up to TCP_CA_NAME_MAX, 16, with its NUL).
// ENOENT: no such algorithm (not built, module not loaded); EPERM: one that
// is available but not in tcp_allowed_congestion_control, for a process
// without CAP_NET_ADMIN.
std::string set_congestion(int fd, const std::string& name, std::vector<std::string>* notices) {
  const std::string flag = "--congestion " + name;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(),
                   static_cast<socklen_t>(name.size())) != 0) {
    const int error_number = errno;
    const std::string available =
        read_sysctl_line("/proc/sys/net/ipv4/tcp_available_congestion_control");
    if (error_number == ENOENT) {
      return flag + ": the kernel has no such congestion control; it offers " + available +
             " (net.ipv4.tcp_available_congestion_control; modprobe tcp_" + name +
             " to add one built as a module)";
    }
    if (error_number == EPERM) {
      return flag + ": not permitted: without CAP_NET_ADMIN only " +
             read_sysctl_line("/proc/sys/net/ipv4/tcp_allowed_congestion_control") +
             " (net.ipv4.tcp_allowed_congestion_control) may be chosen, of " + available;
    }
    return refused("--congestion", name, "TCP_CONGESTION", error_number);
  }
  char got[16] = {};
  socklen_t len = sizeof got;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, got, &len) != 0) {
    return flag + ": cannot read TCP_CONGESTION back: " + std::strerror(errno);
  }
  const std::string in_effect(got, strnlen(got, sizeof got));
  if (in_effect != name && notices != nullptr) {
    notices->push_back(flag + ": the kernel set " + in_effect);
  }
  return "";
}

}  // namespace

std::string configure_listener(int fd, const ServerOptions& options,
                               std::vector<std::string>* notices) {
  std::vector<Knob> knobs;
  // SO_RCVBUF first, and all of them before listen(2) (see the header).
  if (options.receive_buffer > 0) {
    knobs.push_back({"--rcvbuf", std::to_string(options.receive_buffer), SOL_SOCKET, SO_RCVBUF,
                     "SO_RCVBUF", options.receive_buffer});
  }
  if (options.send_buffer > 0) {
    knobs.push_back({"--sndbuf", std::to_string(options.send_buffer), SOL_SOCKET, SO_SNDBUF,
                     "SO_SNDBUF", options.send_buffer});
  }
  if (options.busy_poll_us > 0) {
    // Passed on as the int the kernel takes: above INT_MAX it is negative
    // and refused (EINVAL), which is reported rather than hidden.
    knobs.push_back({"--busy-poll", std::to_string(options.busy_poll_us), SOL_SOCKET,
                     SO_BUSY_POLL, "SO_BUSY_POLL", static_cast<int>(options.busy_poll_us)});
  }
  if (options.tcp_nodelay) {
    knobs.push_back({"--tcp-nodelay", "on", IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", 1});
  }
  if (options.notsent_lowat > 0) {
    knobs.push_back({"--notsent-lowat", std::to_string(options.notsent_lowat), IPPROTO_TCP,
                     TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT",
                     static_cast<int>(options.notsent_lowat)});
  }
  if (options.tcp_cork) {
    knobs.push_back({"--tcp-cork", "on", IPPROTO_TCP, TCP_CORK, "TCP_CORK", 1});
  }
  if (options.max_pacing_rate > 0) {
    knobs.push_back({"--max-pacing-rate", std::to_string(options.max_pacing_rate), SOL_SOCKET,
                     SO_MAX_PACING_RATE, "SO_MAX_PACING_RATE", options.max_pacing_rate,
                     /*wide=*/true});
  }
  for (const Knob& k : knobs) {
    const int narrow = static_cast<int>(k.value);
    const uint64_t wide = k.value;
    const socklen_t size = k.wide ? sizeof wide : sizeof narrow;
    if (::setsockopt(fd, k.level, k.name, k.wide ? static_cast<const void*>(&wide) : &narrow,
                     size) != 0) {
      return refused(k.flag, k.shown, k.name_text, errno);
    }
    int got_narrow = 0;
    uint64_t got_wide = 0;
    socklen_t len = size;
    if (::getsockopt(fd, k.level, k.name, k.wide ? static_cast<void*>(&got_wide) : &got_narrow,
                     &len) != 0) {
      return std::string(k.flag) + " " + k.shown + ": cannot read " + k.name_text +
             " back: " + std::strerror(errno);
    }
    const uint64_t got = k.wide ? got_wide : static_cast<uint64_t>(got_narrow);
    if (got == (k.wide ? wide : static_cast<uint64_t>(narrow)) || notices == nullptr) continue;
    std::string why;
    if (k.name == SO_SNDBUF && k.level == SOL_SOCKET) {
      why = explain_buffer(narrow, got_narrow, "net.core.wmem_max", "/proc/sys/net/core/wmem_max");
    } else if (k.name == SO_RCVBUF && k.level == SOL_SOCKET) {
      why = explain_buffer(narrow, got_narrow, "net.core.rmem_max", "/proc/sys/net/core/rmem_max");
    }
    notices->push_back(std::string(k.flag) + " " + k.shown + ": the kernel set " +
                       (k.wide ? std::to_string(got_wide) : std::to_string(got_narrow)) + why);
  }
  if (!options.congestion.empty()) return set_congestion(fd, options.congestion, notices);
  return "";
}

void report_listen_backlog(int fd, const ServerOptions& options,
                           std::vector<std::string>& notices) {
  // For a listener, tcp_get_info() puts sk_max_ack_backlog in tcpi_sacked.
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
  const long long kept = info.tcpi_sacked;
  if (kept == options.listen_backlog) return;
  const long long somaxconn = read_sysctl("/proc/sys/net/core/somaxconn");
  std::string line = "--backlog " + std::to_string(options.listen_backlog) +
                     ": the kernel keeps " + std::to_string(kept);
  if (somaxconn >= 0 && kept == somaxconn) {
    line += " (it caps the backlog at net.core.somaxconn = " + std::to_string(somaxconn) + ")";
  }
  notices.push_back(line);
}

std::string set_incoming_cpu(int fd, unsigned cpu) {
  const int value = static_cast<int>(cpu);
  if (::setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &value, sizeof value) != 0) {
    return refused("--incoming-cpu", "on (CPU " + std::to_string(cpu) + ")", "SO_INCOMING_CPU",
                   errno);
  }
  return "";
}

bool rearm_quickack(int fd, const ServerOptions& options) noexcept {
  if (!options.tcp_quickack) return false;
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
  return true;
}

int push_corked(int fd, const ServerOptions& options) noexcept {
  if (!options.tcp_cork) return 0;
  const int off = 0, on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
  ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  return 2;
}

std::string set_epoll_busy_poll(int epfd, unsigned usecs) {
  epoll_params params{};
  params.busy_poll_usecs = usecs;
  params.busy_poll_budget = kEpollBusyPollBudget;
  params.prefer_busy_poll = 0;
  if (::ioctl(epfd, EPIOCSPARAMS, &params) != 0) {
    const int error_number = errno;
    std::string why = refused("--epoll-busy-poll", std::to_string(usecs), "EPIOCSPARAMS",
                              error_number);
    if (error_number == ENOTTY) why += " (epoll busy polling needs Linux 6.9)";
    return why;
  }
  return "";
}

std::string check_epoll_busy_poll(const ServerOptions& options) {
  if (options.dispatch != Dispatch::kEpoll || options.epoll_busy_poll_us == 0) return "";
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return std::string("epoll_create1: ") + std::strerror(errno);
  std::string why = set_epoll_busy_poll(epfd, options.epoll_busy_poll_us);
  ::close(epfd);
  return why;
}

}  // namespace h2lab::server
