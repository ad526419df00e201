// The thread knobs of ServerOptions: names the serving threads carry (so
// that `top -H` and /proc/PID/task/*/comm tell them apart) and the CPUs
// they are pinned to (--cpus).
#pragma once

#include <string>
#include <vector>

#include "server/options.h"

namespace h2lab::server {

// Names the calling thread `name` (pthread_setname_np; the kernel keeps 15
// characters: "h2lab-epoll-0", "h2lab-conn") and, when `cpus` is not empty,
// pins it to those CPUs (pthread_setaffinity_np). Returns "" or why the
// pinning failed, naming --cpus and the thread; the thread then runs where
// it ran before. Adds the system calls made to `syscalls` when non-null.
std::string prepare_this_thread(const std::string& name, const std::vector<unsigned>& cpus,
                                unsigned* syscalls = nullptr);

// The CPU loop thread `i` (epoll, uring) is pinned to: {cpus[i % size]}, or
// nothing when cpus is empty.
std::vector<unsigned> loop_cpus(const ServerOptions& options, unsigned i);

// For create_server(), before anything starts: pins a short-lived thread to
// each CPU of options.cpus in turn and to the whole list, so that a CPU the
// process may not use (a cpuset, an offline CPU) fails the start rather
// than leaving a serving thread unpinned. "" when options.cpus is empty or
// every pinning worked.
std::string check_cpu_pinning(const ServerOptions& options);

}  // namespace h2lab::server
