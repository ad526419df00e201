// The server's log: one line per event on stderr, prefixed "h2lab: ".
// Safe to call from any thread (each line is one write(2)).
#pragma once

namespace h2lab::server {

void log_line(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace h2lab::server
