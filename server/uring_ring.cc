#include "server/uring_ring.h"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "server/connection_limit.h"
#include "server/io_uring_probe.h"
#include "server/uring_abi.h"

namespace h2lab::server {
namespace {

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

// The registered send staging area of a ring: 32 slots of 32 KiB, 1 MiB of
// pinned memory per ring. Pinned memory counts against RLIMIT_MEMLOCK (8 MiB
// by default, and shared by all the processes of a user without
// CAP_IPC_LOCK in the first user namespace — a sandboxed test, say), which
// also pays for each ring's SQ/CQ memory: 1 MiB leaves room for several
// rings. A slot carries two full 16 KiB DATA frames; 32 of them cover the
// sends in flight of a ring serving a few dozen busy connections. A send
// that finds no free slot goes out as an ordinary sendmsg.
constexpr unsigned kSendSlots = 32;
constexpr unsigned kSendSlotSize = 32 * 1024;

unsigned next_power_of_two(size_t n, unsigned floor, unsigned cap) {
  unsigned v = floor;
  while (v < n && v < cap) v <<= 1;
  return v;
}

// The CQ holds twice a full SQ, and at least one completion per provided
// buffer and staging slot (each may complete before the loop reaps) — not
// one per connection the limit admits: ring memory is locked memory,
// counted against RLIMIT_MEMLOCK (8 MiB per user on Debian, shared by all
// of a user's rings), and 10000 connections' worth would take 1 MiB per
// ring. Should more completions arrive between two reaps, the kernel keeps
// them (IORING_FEAT_NODROP, checked by the probe), the loop flushes them on
// its next enter and logs the overflow once: --uring-entries raises both
// queues.
unsigned cq_entries_for(const ServerOptions& options, unsigned sq_entries, unsigned send_slots) {
  const size_t want = 2 * size_t{options.uring_buffers} + 2 * size_t{send_slots} + 64;
  // IORING_MAX_CQ_ENTRIES is 65536.
  return next_power_of_two(std::max<size_t>(want, 2 * size_t{sq_entries}), 4096, 65536);
}

std::string flag_names(unsigned setup_flags) {
  static const struct {
    unsigned bit;
    const char* name;
  } kNames[] = {{IORING_SETUP_SQPOLL, "SQPOLL"},
                {IORING_SETUP_SQ_AFF, "SQ_AFF"},
                {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
                {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
                {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
                {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
                {uring_abi::kSetupNoSqArray, "NO_SQARRAY"}};
  std::string out;
  for (const auto& n : kNames) {
    if (setup_flags & n.bit) out += (out.empty() ? "" : "|") + std::string(n.name);
  }
  return out.empty() ? "no task-run flags" : out;
}

// io_uring_queue_init_params, except with IORING_SETUP_NO_SQARRAY:
// liburing 2.3 fills the SQ index array at init, at the offset the kernel
// reports for it — 0 when there is none, which would overwrite the ring's
// head and tail. So that ring is set up with the system call and only
// mapped by liburing (io_uring_queue_mmap writes nothing). 0 or -errno.
int init_ring(unsigned entries, io_uring& ring, io_uring_params& p) {
  if (!(p.flags & uring_abi::kSetupNoSqArray)) {
    return io_uring_queue_init_params(entries, &ring, &p);
  }
  const long fd = ::syscall(__NR_io_uring_setup, entries, &p);
  if (fd < 0) return -errno;
  if (const int rc = io_uring_queue_mmap(static_cast<int>(fd), &p, &ring); rc != 0) {
    ::close(static_cast<int>(fd));
    return rc;
  }
  return 0;
}

int try_setup(const UringRingPlan& plan, unsigned flags) {
  io_uring ring;
  io_uring_params p{};
  p.flags = flags;
  p.cq_entries = plan.cq_entries;
  p.sq_thread_idle = plan.sqpoll_idle_ms;
  if (flags & IORING_SETUP_SQ_AFF) p.sq_thread_cpu = static_cast<unsigned>(plan.sqpoll_cpu);
  if (const int rc = init_ring(plan.sq_entries, ring, p); rc != 0) return rc;
  io_uring_queue_exit(&ring);
  return 0;
}

// io_uring_setup refused the plan with `rc`: finds the knob at fault by
// retrying without each in turn.
std::string setup_failure(const UringRingPlan& plan, int rc) {
  const std::string error = errno_text(rc);
  if (plan.no_sqarray && try_setup(plan, plan.setup_flags & ~uring_abi::kSetupNoSqArray) == 0) {
    return "--uring-no-sqarray on: the kernel refused IORING_SETUP_NO_SQARRAY: " + error +
           (rc == -EINVAL ? " (rings without an SQ array need Linux 6.6)" : "");
  }
  const unsigned task_flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if ((plan.setup_flags & IORING_SETUP_SQ_AFF) &&
      try_setup(plan, plan.setup_flags & ~IORING_SETUP_SQ_AFF) == 0) {
    return "--uring-sqpoll-cpu " + std::to_string(plan.sqpoll_cpu) +
           ": the kernel refused IORING_SETUP_SQ_AFF with sq_thread_cpu " +
           std::to_string(plan.sqpoll_cpu) + ": " + error +
           " (a CPU that is offline, absent, or outside this process's cpuset)";
  }
  if (!plan.flags_from_probe && (plan.setup_flags & task_flags) &&
      try_setup(plan, plan.setup_flags & ~task_flags) == 0) {
    return "--uring-flags " + uring_flags_name(plan.user_flags) + ": the kernel refused " +
           flag_names(plan.setup_flags & task_flags) +
           (plan.sqpoll ? " with SQPOLL" : "") + ": " + error;
  }
  if (plan.sqpoll && try_setup(plan, plan.setup_flags & ~(IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF |
                                                         task_flags)) == 0) {
    return "--uring-sqpoll: the kernel refused IORING_SETUP_SQPOLL: " + error;
  }
  return "--uring-entries " + std::to_string(plan.sq_entries) + ": io_uring_setup with " +
         std::to_string(plan.sq_entries) + " SQ and " + std::to_string(plan.cq_entries) +
         " CQ entries failed: " + describe_setup_failure(rc);
}

// The MemAvailable line of /proc/meminfo in octets, 0 when unknown.
size_t memory_available() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

}  // namespace

UringRingPlan plan_uring_ring(const ServerOptions& options) {
  const UringSupport& support = probe_io_uring();
  UringRingPlan plan;
  plan.setup_flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  plan.sqpoll = options.uring_sqpoll;
  if (plan.sqpoll) {
    plan.setup_flags |= IORING_SETUP_SQPOLL;
    plan.sqpoll_idle_ms = options.uring_sqpoll_idle_ms;
    if (options.uring_sqpoll_cpu) {
      plan.setup_flags |= IORING_SETUP_SQ_AFF;
      plan.sqpoll_cpu = static_cast<int>(*options.uring_sqpoll_cpu);
    }
  }
  if (options.uring_flags & uring_flag::kAuto) {
    // The kernel's SQPOLL thread runs the task work itself: the task-run
    // flags the probe found are for rings whose own thread submits.
    if (!plan.sqpoll) plan.setup_flags |= support.setup_flags;
  } else {
    plan.flags_from_probe = false;
    plan.user_flags = options.uring_flags;
    if (options.uring_flags & uring_flag::kCoopTaskrun) {
      // TASKRUN_FLAG: the kernel flags pending task work in the SQ ring, so
      // that a loop with completions ready still enters to run it.
      plan.setup_flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    }
    if (options.uring_flags & uring_flag::kSingleIssuer) plan.setup_flags |= IORING_SETUP_SINGLE_ISSUER;
    if (options.uring_flags & uring_flag::kDeferTaskrun) plan.setup_flags |= IORING_SETUP_DEFER_TASKRUN;
  }
  plan.sq_entries = options.uring_entries;
  plan.recv_buffers = options.uring_buffers;
  plan.recv_buffer_size = options.uring_buffer_size;
  if (options.uring_fixed_files) {
    // A ring may end up holding every connection the limit admits,
    // refusals included.
    plan.file_slots = static_cast<unsigned>(
        std::min<size_t>(options.max_connections + ConnectionLimit::kMaxRefusing, 1u << 20));
  }
  if (options.uring_registered_buffers) {
    plan.send_slots = kSendSlots;
    plan.send_slot_size = kSendSlotSize;
  }
  plan.send_zc_threshold = options.uring_send_zc_threshold;
  plan.napi_busy_poll_us = options.uring_napi_busy_poll_us;
  plan.recv_bundle = options.uring_recv_bundle;
  plan.send_bundle = options.uring_send_bundle;
  plan.incremental_buffers = options.uring_incremental_buffers;
  plan.register_ring_fd = options.uring_register_ring_fd;
  plan.no_sqarray = options.uring_no_sqarray;
  if (plan.no_sqarray) plan.setup_flags |= uring_abi::kSetupNoSqArray;
  plan.cq_entries = cq_entries_for(options, plan.sq_entries, plan.send_slots);
  return plan;
}

std::string describe_uring_plan(const UringRingPlan& plan, unsigned rings) {
  const unsigned task_flags =
      plan.setup_flags & ~(IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SQPOLL |
                           IORING_SETUP_SQ_AFF | uring_abi::kSetupNoSqArray);
  std::string s = std::to_string(rings) + " ring(s), SQ " + std::to_string(plan.sq_entries) +
                  " / CQ " + std::to_string(plan.cq_entries) + " entries, " +
                  flag_names(task_flags) +
                  (plan.flags_from_probe ? " (auto)" : " (--uring-flags)");
  if (plan.sqpoll) {
    s += ", SQPOLL idle " + std::to_string(plan.sqpoll_idle_ms) + " ms" +
         (plan.sqpoll_cpu >= 0 ? " on CPU " + std::to_string(plan.sqpoll_cpu) : "");
  }
  s += ", " + std::to_string(plan.recv_buffers) + " recv buffers of " +
       std::to_string(plan.recv_buffer_size) + " B";
  s += plan.file_slots ? ", fixed files (" + std::to_string(plan.file_slots) + " slots)"
                       : ", no fixed files";
  s += plan.send_slots ? ", registered send buffers (" + std::to_string(plan.send_slots) + " × " +
                             std::to_string(plan.send_slot_size) + " B, SEND_ZC)"
                       : ", no registered buffers";
  s += plan.send_zc_threshold
           ? ", zero-copy sendmsg from " + std::to_string(plan.send_zc_threshold) + " B"
           : ", no zero-copy sendmsg";
  s += plan.napi_busy_poll_us ? ", NAPI busy poll " + std::to_string(plan.napi_busy_poll_us) + " µs"
                              : ", no NAPI";
  s += plan.recv_bundle ? ", recv bundles" : "";
  s += plan.send_bundle ? ", send bundles" : "";
  s += plan.incremental_buffers ? ", incremental buffers" : "";
  s += plan.register_ring_fd ? ", registered ring fd" : ", ring entered by its fd";
  s += plan.no_sqarray ? ", no SQ array" : "";
  return s;
}

UringRing::~UringRing() { close(); }

void UringRing::close() noexcept {
  if (open_) {
    // Explicitly, before the exit: the kernel frees a ring asynchronously,
    // and pinned pages still registered would count a while longer against
    // the memlock limit of the rings made next.
    if (send_memory_ != nullptr) io_uring_unregister_buffers(&ring);
    io_uring_queue_exit(&ring);
    open_ = false;
  }
  if (buf_ring != nullptr) ::munmap(buf_ring, buf_ring_bytes_);
  if (recv_memory_ != nullptr) ::munmap(recv_memory_, recv_memory_bytes_);
  if (send_memory_ != nullptr) ::munmap(send_memory_, send_memory_bytes_);
  buf_ring = nullptr;
  recv_memory_ = nullptr;
  send_memory_ = nullptr;
}

std::string UringRing::open(const UringRingPlan& plan) {
  io_uring_params p{};
  // Disabled until enable(): registrations are made now, on this thread;
  // submissions (and, with SINGLE_ISSUER, the submitter) come with enable().
  p.flags = plan.setup_flags | IORING_SETUP_R_DISABLED;
  p.cq_entries = plan.cq_entries;
  p.sq_thread_idle = plan.sqpoll_idle_ms;  // ms of idleness before the SQPOLL thread sleeps
  if (plan.setup_flags & IORING_SETUP_SQ_AFF) p.sq_thread_cpu = static_cast<unsigned>(plan.sqpoll_cpu);
  if (const int rc = init_ring(plan.sq_entries, ring, p); rc != 0) return setup_failure(plan, rc);
  open_ = true;
  sq_entries = p.sq_entries;
  cq_entries = p.cq_entries;
  has_sq_array = p.sq_off.array != 0;
  register_ring_fd_ = plan.register_ring_fd;

  auto fail = [this](std::string why) {
    close();
    return why;
  };
  if (plan.no_sqarray && has_sq_array) {
    return fail("--uring-no-sqarray on: the kernel set the ring up with an SQ array");
  }
  for (const auto& [asked, flag] : {std::pair{plan.recv_bundle, "--uring-recv-bundle"},
                                    std::pair{plan.send_bundle, "--uring-send-bundle"}}) {
    if (asked && !(p.features & uring_abi::kFeatRecvSendBundle)) {
      return fail(std::string(flag) + " on: the kernel lacks IORING_FEAT_RECVSEND_BUNDLE " +
                  "(bundles need Linux 6.10)");
    }
  }

  // The provided-buffer ring (liburing 2.3 has no io_uring_setup_buf_ring):
  // page-aligned ring memory, registered, then filled with every buffer.
  // The buffers are populated now: the pool is a fixed cost of the ring,
  // paid at start rather than as page faults on the receive path.
  const std::string buffers_flags = "--uring-buffers " + std::to_string(plan.recv_buffers) +
                                    " --uring-buffer-size " + std::to_string(plan.recv_buffer_size);
  buf_ring_bytes_ = size_t{plan.recv_buffers} * sizeof(io_uring_buf);
  recv_memory_bytes_ = size_t{plan.recv_buffers} * plan.recv_buffer_size;
  recv_buffer_size_ = plan.recv_buffer_size;
  void* ring_mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring_mem == MAP_FAILED) return fail(buffers_flags + ": cannot map the buffer ring");
  buf_ring = static_cast<io_uring_buf_ring*>(ring_mem);
  void* buffers = ::mmap(nullptr, recv_memory_bytes_, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buffers == MAP_FAILED) {
    return fail(buffers_flags + ": cannot map " + std::to_string(recv_memory_bytes_) +
                " octets of receive buffers: " + std::strerror(errno));
  }
  recv_memory_ = static_cast<uint8_t*>(buffers);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring);
  reg.ring_entries = plan.recv_buffers;
  reg.bgid = kRecvBufferGroup;
  // The kernel's `flags` is liburing 2.3's `pad` (the same 16 bits).
  if (plan.incremental_buffers) reg.pad = uring_abi::kPbufRingIncremental;
  if (const int rc = io_uring_register_buf_ring(&ring, &reg, 0); rc != 0) {
    if (plan.incremental_buffers) {
      return fail("--uring-incremental-buffers on: the kernel refused a buffer ring with "
                  "IOU_PBUF_RING_INC: " + errno_text(rc) +
                  (rc == -EINVAL ? " (incremental buffer consumption needs Linux 6.12)" : ""));
    }
    return fail(buffers_flags + ": io_uring_register_buf_ring: " + errno_text(rc));
  }
  io_uring_buf_ring_init(buf_ring);
  const int mask = io_uring_buf_ring_mask(plan.recv_buffers);
  for (unsigned i = 0; i < plan.recv_buffers; ++i) {
    io_uring_buf_ring_add(buf_ring, recv_buffer(i), plan.recv_buffer_size, static_cast<uint16_t>(i),
                          mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring, static_cast<int>(plan.recv_buffers));

  if (plan.file_slots != 0) {
    if (const int rc = io_uring_register_files_sparse(&ring, plan.file_slots); rc != 0) {
      rlimit nofile{};
      ::getrlimit(RLIMIT_NOFILE, &nofile);
      // liburing raises the soft RLIMIT_NOFILE as far as the hard one for
      // the table; beyond that the kernel answers EMFILE.
      return fail("--uring-fixed-files on: registering a sparse table of " +
                  std::to_string(plan.file_slots) + " files (--max-connections + " +
                  std::to_string(ConnectionLimit::kMaxRefusing) + " refusals) failed: " +
                  errno_text(rc) + " (the table may not exceed RLIMIT_NOFILE, " +
                  std::to_string(nofile.rlim_max) +
                  " here at most: raise ulimit -Hn or lower --max-connections)");
    }
  }

  if (plan.send_slots != 0) {
    send_memory_bytes_ = size_t{plan.send_slots} * plan.send_slot_size;
    send_slot_size_ = plan.send_slot_size;
    void* mem = ::mmap(nullptr, send_memory_bytes_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
      return fail("--uring-registered-buffers on: cannot map " + std::to_string(send_memory_bytes_) +
                  " octets of send staging: " + std::strerror(errno));
    }
    send_memory_ = static_cast<uint8_t*>(mem);
    const iovec area{send_memory_, send_memory_bytes_};
    if (const int rc = io_uring_register_buffers(&ring, &area, 1); rc != 0) {
      ::munmap(send_memory_, send_memory_bytes_);
      send_memory_ = nullptr;  // not registered: close() must not unregister
      return fail("--uring-registered-buffers on: io_uring_register_buffers of " +
                  std::to_string(send_memory_bytes_) + " octets failed: " + errno_text(rc) +
                  (rc == -ENOMEM ? " (locked-memory limit: ulimit -l)" : ""));
    }
  }

  if (plan.send_slots != 0 || plan.send_zc_threshold != 0) {
    // Registered-buffer sends go out as IORING_OP_SEND_ZC (the one fixed-
    // buffer send that takes MSG_NOSIGNAL; IORING_OP_SEND refuses
    // IORING_RECVSEND_FIXED_BUF on 6.18); zero-copy sends as SENDMSG_ZC.
    io_uring_probe* ops = io_uring_get_probe_ring(&ring);
    const bool send_zc = ops != nullptr && io_uring_opcode_supported(ops, IORING_OP_SEND_ZC);
    const bool sendmsg_zc = ops != nullptr && io_uring_opcode_supported(ops, IORING_OP_SENDMSG_ZC);
    if (ops != nullptr) io_uring_free_probe(ops);
    if (plan.send_slots != 0 && !send_zc) {
      return fail("--uring-registered-buffers on: the kernel lacks IORING_OP_SEND_ZC (Linux 6.0), "
                  "the fixed-buffer send used");
    }
    if (plan.send_zc_threshold != 0 && !sendmsg_zc) {
      return fail("--uring-send-zc " + std::to_string(plan.send_zc_threshold) +
                  ": the kernel lacks IORING_OP_SENDMSG_ZC (Linux 6.1)");
    }
  }

  if (plan.napi_busy_poll_us != 0) {
    uring_abi::NapiRegistration napi{};
    napi.busy_poll_to = plan.napi_busy_poll_us;
    // liburing's io_uring_register is the raw syscall (-errno on failure).
    if (const int rc = io_uring_register(static_cast<unsigned>(ring.ring_fd),
                                         uring_abi::kRegisterNapi, &napi, 1);
        rc < 0) {
      return fail("--uring-napi " + std::to_string(plan.napi_busy_poll_us) +
                  ": the kernel refused IORING_REGISTER_NAPI: " + errno_text(rc) +
                  (rc == -EINVAL ? " (NAPI busy polling needs Linux 6.9)" : ""));
    }
  }
  return "";
}

std::string UringRing::enable() {
  // liburing 2.3 declares io_uring_enable_rings but does not export it.
  if (const int rc = io_uring_register(static_cast<unsigned>(ring.ring_fd),
                                       IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
      rc < 0) {
    return "IORING_REGISTER_ENABLE_RINGS: " + errno_text(rc);
  }
  // Saves an fd lookup per io_uring_enter; the ring serves without it. The
  // registration is the calling thread's, like the ring from now on.
  if (register_ring_fd_) {
    const int rc = io_uring_register_ring_fd(&ring);
    ring_fd_registered = rc == 1;  // the number of rings registered
    if (!ring_fd_registered) {
      ring_fd_refusal =
          "--uring-register-ring-fd on: the kernel refused IORING_REGISTER_RING_FDS: " +
          (rc < 0 ? errno_text(rc) : "registered " + std::to_string(rc)) +
                        " (Linux 5.18); the ring is entered by its fd";
    }
  }
  return "";
}

std::string prepare_uring_rings(const ServerOptions& options,
                                std::vector<std::unique_ptr<UringRing>>& rings) {
  rings.clear();
  const UringSupport& support = probe_io_uring();
  if (!support.available) return "--dispatch uring: io_uring is unavailable here: " + support.why;
  if (options.uring_sqpoll && !support.sqpoll) {
    return "--uring-sqpoll: the kernel refused IORING_SETUP_SQPOLL: " + support.sqpoll_why;
  }
  const UringRingPlan plan = plan_uring_ring(options);
  // Every ring maps its receive pool and staging area up front.
  const size_t per_ring = size_t{plan.recv_buffers} * plan.recv_buffer_size +
                          size_t{plan.send_slots} * plan.send_slot_size;
  const size_t count = resolved_threads(options);
  if (const size_t available = memory_available(); available != 0 && per_ring * count > available) {
    return "--uring-buffers " + std::to_string(plan.recv_buffers) + " --uring-buffer-size " +
           std::to_string(plan.recv_buffer_size) + ": " + std::to_string(count) + " ring(s) need " +
           std::to_string(per_ring * count >> 20) + " MiB of buffers, more than the " +
           std::to_string(available >> 20) + " MiB available";
  }
  for (size_t i = 0; i < count; ++i) {
    auto ring = std::make_unique<UringRing>();
    if (std::string why = ring->open(plan); !why.empty()) {
      rings.clear();
      return count > 1 ? why + " (ring " + std::to_string(i + 1) + " of " + std::to_string(count) + ")"
                       : why;
    }
    rings.push_back(std::move(ring));
  }
  return "";
}

}  // namespace h2lab::server
