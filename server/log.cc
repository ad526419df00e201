#include "server/log.h"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace h2lab::server {

void log_line(const char* format, ...) noexcept {
  char line[512];
  int n = std::snprintf(line, sizeof line, "h2lab: ");
  va_list args;
  va_start(args, format);
  const int body = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, format, args);
  va_end(args);
  if (body < 0) return;
  n = std::min<int>(n + body, static_cast<int>(sizeof line) - 2);
  line[n++] = '\n';
  // One write per line so that lines from several threads never interleave.
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<size_t>(n));
}

}  // namespace h2lab::server
