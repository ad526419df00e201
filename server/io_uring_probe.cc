#include "server/io_uring_probe.h"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>


namespace h2lab::server {
namespace {

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

// Why io_uring_queue_init failed, in words a user can act on.
std::string init_failure(int rc) {
  switch (-rc) {
    case ENOSYS:
      return "the kernel has no io_uring (older than 5.1, or built without it), "
             "or a seccomp filter (container runtime) blocks io_uring_setup";
    case EPERM:
      return "io_uring_setup is not permitted: see sysctl kernel.io_uring_disabled, "
             "or a seccomp/LSM policy";
    case ENOMEM:
      return "io_uring_setup ran out of memory (locked-memory limit: ulimit -l)";
    default:
      return "io_uring_setup failed: " + errno_text(rc);
  }
}

// 0 when a ring with these setup flags can be made, else -errno.
int try_ring(unsigned flags) {
  io_uring ring;
  io_uring_params p{};
  p.flags = flags;
  if (flags & IORING_SETUP_SQPOLL) p.sq_thread_idle = 50;
  if (const int rc = io_uring_queue_init_params(8, &ring, &p); rc != 0) return rc;
  io_uring_queue_exit(&ring);
  return 0;
}

// A multishot recv into a one-buffer ring, on a socketpair, must deliver one
// byte with IORING_CQE_F_BUFFER and IORING_CQE_F_MORE (Linux 6.0).
std::string check_multishot_recv(io_uring& ring) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return "mmap failed";
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br);
  reg.ring_entries = 1;
  reg.bgid = 0;
  std::string problem;
  int fds[2] = {-1, -1};
  if (const int rc = io_uring_register_buf_ring(&ring, &reg, 0); rc != 0) {
    problem = "provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19) are missing: " +
              errno_text(rc);
  } else if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    problem = "socketpair failed";
  } else {
    static char buffer[64];
    io_uring_buf_ring_init(br);
    io_uring_buf_ring_add(br, buffer, sizeof buffer, 0, io_uring_buf_ring_mask(1), 0);
    io_uring_buf_ring_advance(br, 1);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, fds[0], nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, 1);
    io_uring_submit(&ring);
    [[maybe_unused]] const ssize_t w = ::write(fds[1], "x", 1);
    __kernel_timespec ts{1, 0};
    io_uring_cqe* cqe = nullptr;
    if (const int rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts); rc != 0) {
      problem = "a multishot recv did not complete: " + errno_text(rc);
    } else if (cqe->res != 1 || !(cqe->flags & IORING_CQE_F_BUFFER) ||
               !(cqe->flags & IORING_CQE_F_MORE)) {
      problem = cqe->res < 0 ? "multishot recv (Linux 6.0) is missing: " + errno_text(cqe->res)
                             : "multishot recv did not behave as documented";
    }
    if (cqe != nullptr) io_uring_cqe_seen(&ring, cqe);
    ::close(fds[0]);  // ends the multishot recv
    ::close(fds[1]);
  }
  io_uring_queue_exit(&ring);  // before the buffer ring memory goes
  ::munmap(mem, page);
  return problem;
}

UringSupport probe() {
  UringSupport s;
  {
    std::ifstream sysctl("/proc/sys/kernel/io_uring_disabled");
    int disabled = 0;
    if (sysctl >> disabled && disabled == 2) {
      s.why = "disabled by sysctl kernel.io_uring_disabled=2";
      return s;
    }
  }
  io_uring ring;
  io_uring_params p{};
  if (const int rc = io_uring_queue_init_params(8, &ring, &p); rc != 0) {
    s.why = init_failure(rc);
    return s;
  }
  const unsigned needed_features = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL;
  if ((p.features & needed_features) != needed_features) {
    io_uring_queue_exit(&ring);
    s.why = "the kernel's io_uring lacks NODROP, EXT_ARG or FAST_POLL (Linux 5.11 or later needed)";
    return s;
  }
  if (io_uring_probe* ops = io_uring_get_probe_ring(&ring)) {
    for (const int op : {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SENDMSG, IORING_OP_ASYNC_CANCEL,
                         IORING_OP_READ}) {
      if (!io_uring_opcode_supported(ops, op) && s.why.empty()) {
        s.why = "the kernel's io_uring lacks opcode " + std::to_string(op);
      }
    }
    io_uring_free_probe(ops);
  }
  if (!s.why.empty()) {
    io_uring_queue_exit(&ring);
    return s;
  }
  s.why = check_multishot_recv(ring);  // exits the ring
  if (!s.why.empty()) return s;
  s.available = true;

  // Each flag set is tried on its own ring: an older kernel answers EINVAL.
  if (try_ring(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN) == 0) {
    s.setup_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  } else if (try_ring(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG) == 0) {
    s.setup_flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  }
  if (const int rc = try_ring(IORING_SETUP_SQPOLL); rc == 0) {
    s.sqpoll = true;
  } else {
    s.sqpoll_why = "a trial ring failed: " + errno_text(rc) +
                   (rc == -EPERM ? " (SQPOLL needs CAP_SYS_NICE before Linux 5.11)" : "");
  }
  return s;
}

}  // namespace

std::string UringSupport::describe() const {
  if (!available) return "io_uring unavailable: " + why;
  if (setup_flags & IORING_SETUP_DEFER_TASKRUN) return "io_uring with SINGLE_ISSUER|DEFER_TASKRUN";
  if (setup_flags & IORING_SETUP_COOP_TASKRUN) return "io_uring with COOP_TASKRUN|TASKRUN_FLAG";
  return "io_uring (no task-run flags on this kernel)";
}

const UringSupport& probe_io_uring() {
  static const UringSupport support = probe();
  return support;
}

std::string describe_setup_failure(int rc) { return init_failure(rc); }

}  // namespace h2lab::server
