// Is io_uring usable here, and with which features? Probed once per process
// (a trial ring, the opcodes the `uring` dispatcher needs, a buffer ring and
// a multishot recv that must actually deliver), so that `--dispatch uring`
// fails at start with the reason instead of misbehaving later. Seastar's
// reactor backend selector does the same before choosing io_uring.
// The rings themselves are made in server/uring_ring.h.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/options.h"

namespace h2lab::server {

struct UringSupport {
  bool available = false;
  std::string why;  // when !available: what is missing and what to do

  // Setup flags for the proactors' rings: SINGLE_ISSUER|DEFER_TASKRUN
  // (Linux 6.1: task work runs only when the ring's thread waits),
  // else COOP_TASKRUN|TASKRUN_FLAG (5.19), else none.
  unsigned setup_flags = 0;
  bool sqpoll = false;      // a trial IORING_SETUP_SQPOLL ring worked
  std::string sqpoll_why;   // when !sqpoll

  // One line for the log: the flags chosen.
  std::string describe() const;
};

// Thread-safe; the first call probes (a few syscalls, well under 1 ms).
const UringSupport& probe_io_uring();

// Why io_uring_setup failed (its -errno), in words a user can act on.
std::string describe_setup_failure(int rc);

}  // namespace h2lab::server
