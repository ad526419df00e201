// The rings the `uring` proactors serve with, set up from the io_uring knobs
// of ServerOptions when the dispatcher is made, before it serves
// (prepare_uring_rings), so that whatever the kernel refuses — a setup
// flag, an SQPOLL CPU, a file table, registered or locked memory, NAPI — is
// reported at start, naming the flag, and never met while serving.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/options.h"

namespace h2lab::server {

// The provided-buffer group every recv of a ring takes its buffers from.
inline constexpr uint16_t kRecvBufferGroup = 0;

// What one proactor's ring is made of: the io_uring knobs of ServerOptions
// (their meaning is documented in options.h) resolved against the probe.
struct UringRingPlan {
  unsigned setup_flags = 0;  // IORING_SETUP_*, CQSIZE and CLAMP included
  bool flags_from_probe = true;  // --uring-flags auto (else the user's list)
  unsigned user_flags = 0;   // options.uring_flags when not auto
  unsigned sq_entries = 0;   // asked of io_uring_setup
  unsigned cq_entries = 0;
  bool sqpoll = false;
  unsigned sqpoll_idle_ms = 0;
  int sqpoll_cpu = -1;  // -1: the kernel chooses
  unsigned recv_buffers = 0;  // provided buffers (a power of two) …
  unsigned recv_buffer_size = 0;  // … of this many octets each
  unsigned file_slots = 0;  // sparse fixed-file table; 0: no fixed files
  // Registered send staging: send_slots × send_slot_size octets, registered
  // as one buffer (index 0); 0 slots: off.
  unsigned send_slots = 0;
  unsigned send_slot_size = 0;
  size_t send_zc_threshold = 0;  // 0: never
  unsigned napi_busy_poll_us = 0;  // 0: no NAPI registration
  bool recv_bundle = false;         // recvs carry IORING_RECVSEND_BUNDLE
  bool send_bundle = false;         // sends too, from per-connection buffer rings
  bool incremental_buffers = false;  // the buffer ring is registered IOU_PBUF_RING_INC
  bool register_ring_fd = true;     // enable() registers the ring fd
  bool no_sqarray = false;          // IORING_SETUP_NO_SQARRAY (in setup_flags too)
};

UringRingPlan plan_uring_ring(const ServerOptions& options);

// One line for the log: the ring configuration `plan` puts in effect, for
// `rings` rings.
std::string describe_uring_plan(const UringRingPlan& plan, unsigned rings);

// One ring set up as a plan says, with the memory it registers (the
// provided-buffer ring and its buffers, the send staging area). Owns all of
// it; the destructor tears the ring down before it frees the memory.
// Made disabled (IORING_SETUP_R_DISABLED) on one thread, enabled on the
// thread that will submit — with SINGLE_ISSUER, the only one that may.
class UringRing {
 public:
  UringRing() = default;
  ~UringRing();
  UringRing(const UringRing&) = delete;
  UringRing& operator=(const UringRing&) = delete;

  // Sets up everything `plan` names, the ring disabled. Returns "" on
  // success, else why — naming the //server:main flag at fault and the
  // kernel's error — with nothing left set up.
  std::string open(const UringRingPlan& plan);
  // Enables the ring for the calling thread, which from now on is the one
  // that submits (and registers its fd for io_uring_enter). "" or why.
  std::string enable();
  bool is_open() const noexcept { return open_; }
  // Tears the ring down (the kernel cancels what is in flight), then frees
  // the memory. Idempotent; the destructor calls it.
  void close() noexcept;

  io_uring ring{};
  // What the kernel gave (io_uring_params after setup).
  unsigned sq_entries = 0;
  unsigned cq_entries = 0;
  // The SQ has its index array: false once the kernel took
  // IORING_SETUP_NO_SQARRAY (it then reports no array offset), and then
  // nothing may write ring.sq.array (liburing 2.3 points it at the ring's
  // head): SQEs are taken in ring order.
  bool has_sq_array = true;
  // After enable(): the kernel answered io_uring_register_ring_fd with the
  // ring's index in the thread's table; io_uring_enter then takes
  // ring.enter_ring_fd with IORING_ENTER_REGISTERED_RING. When the plan
  // asked for it and the kernel refused, ring_fd_refusal says why (the ring
  // still serves, entered by its fd).
  bool ring_fd_registered = false;
  std::string ring_fd_refusal;
  // The provided buffers of kRecvBufferGroup; buffer `bid` starts at
  // recv_buffer(bid), and open() added buffer i at ring position i.
  io_uring_buf_ring* buf_ring = nullptr;
  uint8_t* recv_buffer(unsigned bid) const noexcept {
    return recv_memory_ + size_t{bid} * recv_buffer_size_;
  }
  // Send staging slot `i` (registered buffer 0 covers all of them).
  uint8_t* send_slot(unsigned i) const noexcept {
    return send_memory_ + size_t{i} * send_slot_size_;
  }

 private:
  bool open_ = false;
  bool register_ring_fd_ = true;
  size_t buf_ring_bytes_ = 0;
  uint8_t* recv_memory_ = nullptr;
  size_t recv_memory_bytes_ = 0;
  unsigned recv_buffer_size_ = 0;
  uint8_t* send_memory_ = nullptr;
  size_t send_memory_bytes_ = 0;
  unsigned send_slot_size_ = 0;
};

// Sets up the rings of a `uring` dispatcher with these options, one per
// loop thread (resolved_threads), disabled (each proactor enables its own on
// its thread), into `rings`. Returns "" when all could be made, else why —
// naming the flag as //server:main spells it — leaving `rings` empty.
// Checks the probe first, and that the buffers of every ring fit in the
// memory available.
std::string prepare_uring_rings(const ServerOptions& options,
                                std::vector<std::unique_ptr<UringRing>>& rings);

}  // namespace h2lab::server
