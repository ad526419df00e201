#include "server/thread_options.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <thread>

namespace h2lab::server {
namespace {

constexpr size_t kMaxThreadName = 15;  // TASK_COMM_LEN - 1

std::string cpu_list(const std::vector<unsigned>& cpus) {
  std::string out;
  for (const unsigned cpu : cpus) out += (out.empty() ? "" : ",") + std::to_string(cpu);
  return out;
}

// pthread_setaffinity_np returns the error number (it does not set errno).
int pin(pthread_t thread, const std::vector<unsigned>& cpus) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const unsigned cpu : cpus) {
    if (cpu >= CPU_SETSIZE) return EINVAL;
    CPU_SET(cpu, &set);
  }
  return pthread_setaffinity_np(thread, sizeof set, &set);
}

}  // namespace

std::string prepare_this_thread(const std::string& name, const std::vector<unsigned>& cpus,
                                unsigned* syscalls) {
  const std::string shown = name.substr(0, kMaxThreadName);
  pthread_setname_np(pthread_self(), shown.c_str());
  unsigned calls = 1;
  std::string why;
  if (!cpus.empty()) {
    ++calls;
    if (const int rc = pin(pthread_self(), cpus); rc != 0) {
      why = "--cpus: cannot pin thread " + shown + " to CPU " + cpu_list(cpus) + ": " +
            std::strerror(rc);
    }
  }
  if (syscalls != nullptr) *syscalls += calls;
  return why;
}

std::vector<unsigned> loop_cpus(const ServerOptions& options, unsigned i) {
  if (options.cpus.empty()) return {};
  return {options.cpus[i % options.cpus.size()]};
}

std::string check_cpu_pinning(const ServerOptions& options) {
  if (options.cpus.empty()) return "";
  std::string why;
  std::thread probe([&] {
    for (const unsigned cpu : options.cpus) {
      if (const int rc = pin(pthread_self(), {cpu}); rc != 0) {
        why = "--cpus: cannot pin a thread to CPU " + std::to_string(cpu) + ": " +
              std::strerror(rc);
        return;
      }
    }
    if (const int rc = pin(pthread_self(), options.cpus); rc != 0) {
      why = "--cpus: cannot pin a thread to CPUs " + cpu_list(options.cpus) + ": " +
            std::strerror(rc);
    }
  });
  probe.join();
  return why;
}

}  // namespace h2lab::server
