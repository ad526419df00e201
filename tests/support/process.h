// Running a real client (curl, nghttp, h2load, python3) from a test, bounded
// in time: the child gets its own process group and is killed with it when
// the deadline passes, so no test leaves a process behind.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace h2lab::testing {

struct ProcessResult {
  int exit_code = -1;     // the child's exit status; -1 if it was killed or failed to start
  bool timed_out = false;
  std::string output;     // stdout and stderr, interleaved as written
};

// Runs argv[0] (looked up in PATH) with `input` on its stdin.
ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          const std::string& input = "");

// True if `name` is an executable in PATH.
bool have_program(const std::string& name);

}  // namespace h2lab::testing
