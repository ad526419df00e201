#include "server/process_usage.h"

#include <sys/resource.h>

namespace h2lab::server {
namespace {

uint64_t microseconds(const timeval& t) noexcept {
  return static_cast<uint64_t>(t.tv_sec) * 1000000u + static_cast<uint64_t>(t.tv_usec);
}

}  // namespace

ProcessUsage process_usage() noexcept {
  rusage u{};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return {};
  return {microseconds(u.ru_utime), microseconds(u.ru_stime),
          static_cast<uint64_t>(u.ru_nvcsw), static_cast<uint64_t>(u.ru_nivcsw)};
}

}  // namespace h2lab::server
