// What the kernel accounted to this process: CPU time split into user and
// system, and context switches (getrusage(RUSAGE_SELF): every thread, the
// ones that ended included). The stats registry reports it as deltas since
// the server started (/stats "process") and per --stats-interval line, next
// to what the server itself counted: a syscall the server counts shows up
// here as system time, a wait that slept as a voluntary switch, a thread
// preempted by another as an involuntary one.
#pragma once

#include <cstdint>

namespace h2lab::server {

struct ProcessUsage {
  uint64_t user_us = 0;    // CPU time in user mode, µs
  uint64_t system_us = 0;  // CPU time in the kernel on the process's behalf, µs
  uint64_t voluntary_switches = 0;    // the thread gave the CPU up: it waited (ru_nvcsw)
  uint64_t involuntary_switches = 0;  // the scheduler took it away (ru_nivcsw)

  // Field by field a - b (a taken after b).
  ProcessUsage since(const ProcessUsage& b) const noexcept {
    return {user_us - b.user_us, system_us - b.system_us,
            voluntary_switches - b.voluntary_switches,
            involuntary_switches - b.involuntary_switches};
  }
};

// Now; all zero if getrusage fails (it does not on Linux).
ProcessUsage process_usage() noexcept;

}  // namespace h2lab::server
