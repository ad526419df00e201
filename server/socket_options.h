// The socket knobs of ServerOptions, in one place: set on the listening
// socket, read back, reported; what accepted sockets need on top; epoll
// busy polling.
//
// Linux copies a listener's SO_SNDBUF, SO_RCVBUF (with their "set by the
// user" locks, so autotuning stays off), SO_BUSY_POLL, TCP_NODELAY,
// TCP_NOTSENT_LOWAT, TCP_CORK, TCP_CONGESTION and SO_MAX_PACING_RATE to
// every socket accept(2) returns (inet_csk_clone_lock
// copies the whole socket; verified with getsockopt on accepted sockets on
// Linux 6.18, IPv4 and IPv6 — tests/socket_options_test.cc checks it on
// every run). So these are set once, on the listener, and an accepted
// socket costs no system call for them. SO_INCOMING_CPU is not copied (an
// accepted socket's is the CPU its packets arrived on), and only matters on
// listeners anyway. TCP_QUICKACK is not sticky at all: rearm_quickack().
#pragma once

#include <string>
#include <vector>

#include "server/options.h"

namespace h2lab::server {

// Before bind(2) and listen(2) on a listening socket `fd`: sets SO_RCVBUF
// (before listen(2): the window scale a connection announces in its SYN-ACK
// follows the receive buffer it inherits), SO_SNDBUF, SO_BUSY_POLL,
// TCP_NODELAY, TCP_NOTSENT_LOWAT, TCP_CORK, SO_MAX_PACING_RATE and
// TCP_CONGESTION — each only when options ask for it — and reads each
// back. A congestion control the kernel does not have is refused with the
// list it offers (/proc/sys/net/ipv4/tcp_available_congestion_control).
// Returns "" on success, else why, naming the flag:
// "--busy-poll 3000000000: the kernel refused SO_BUSY_POLL: Invalid
// argument". When `notices` is non-null, appends one line per value the
// kernel changed ("--sndbuf 100000000: the kernel set 8388608 (it doubles
// the value and caps it at net.core.wmem_max = 4194304)").
std::string configure_listener(int fd, const ServerOptions& options,
                               std::vector<std::string>* notices);

// After listen(2): compares the backlog the kernel keeps (a listener's
// TCP_INFO tcpi_sacked) with options.listen_backlog and appends a line to
// `notices` when it differs (the cap is net.core.somaxconn).
void report_listen_backlog(int fd, const ServerOptions& options,
                           std::vector<std::string>& notices);

// SO_INCOMING_CPU = cpu on a listener (reuseport: the group then prefers, for
// a new connection, the listener whose CPU received its packets). Returns ""
// or why, naming --incoming-cpu.
std::string set_incoming_cpu(int fd, unsigned cpu);

// TCP_QUICKACK is not sticky: the kernel leaves quick-ack mode on its own,
// so with options.tcp_quickack a dispatcher calls this after every read
// that returned data. Returns true when it made a system call (for the
// counters).
bool rearm_quickack(int fd, const ServerOptions& options) noexcept;

// With options.tcp_cork: sends the partial segment TCP_CORK holds back
// (TCP_CORK off pushes it out, then on again for the next writes). A
// dispatcher calls it once a connection's output has all been handed to
// the kernel. Returns the system calls it made (0 or 2), for the counters.
int push_corked(int fd, const ServerOptions& options) noexcept;

// epoll busy polling (EPIOCSPARAMS, Linux 6.9) on the epoll instance
// `epfd`: epoll_wait spins up to `usecs` on the NAPI queues of its sockets
// (a budget of 8 packets per poll, the kernel's default; no
// prefer_busy_poll). Returns "" or why, naming --epoll-busy-poll.
std::string set_epoll_busy_poll(int epfd, unsigned usecs);

// For create_server(), before anything starts: with --dispatch epoll and
// options.epoll_busy_poll_us, tries set_epoll_busy_poll on a throw-away
// epoll instance, so that a kernel without EPIOCSPARAMS fails the start
// rather than each reactor later. "" when there is nothing to refuse.
std::string check_epoll_busy_poll(const ServerOptions& options);

}  // namespace h2lab::server
