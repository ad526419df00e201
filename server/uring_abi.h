// The parts of the io_uring ABI newer than liburing 2.3's headers (Debian
// 12's), defined here with the values of include/uapi/linux/io_uring.h.
// Each is probed before use (server/uring_ring.cc): an older kernel
// refuses the flag or lacks the feature bit, and the start fails naming the
// //server:main flag.
#pragma once

#include <cstdint>

namespace h2lab::server::uring_abi {

// io_uring_setup flags.
constexpr unsigned kSetupNoSqArray = 1U << 16;  // IORING_SETUP_NO_SQARRAY, Linux 6.6

// io_uring_params.features.
constexpr unsigned kFeatRecvSendBundle = 1U << 14;  // IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10

// sqe->ioprio of a send or recv: the operation may take several provided
// buffers at once (recv: fills them in ring order; one completion).
constexpr uint16_t kRecvSendBundle = 1U << 4;  // IORING_RECVSEND_BUNDLE, Linux 6.10

// io_uring_buf_reg.flags: buffers are consumed incrementally, a recv
// taking only what it fills of one.
constexpr uint16_t kPbufRingIncremental = 2;  // IOU_PBUF_RING_INC, Linux 6.12
// cqe->flags: the buffer named was only partly filled; the kernel keeps the
// rest for the next recv, so it must not be given back yet.
constexpr uint32_t kCqeBufMore = 1U << 4;  // IORING_CQE_F_BUF_MORE, Linux 6.12

// io_uring_register: where the kernel's head of a provided-buffer ring is
// (how many entries it has taken), for rings the application maps itself.
constexpr unsigned kRegisterPbufStatus = 26;  // IORING_REGISTER_PBUF_STATUS, Linux 6.8
struct PbufStatus {                           // struct io_uring_buf_status
  uint32_t buf_group;  // in
  uint32_t head;       // out
  uint32_t resv[8];
};
static_assert(sizeof(PbufStatus) == 40, "struct io_uring_buf_status is 40 octets");

// io_uring_register opcode and argument of NAPI busy polling.
constexpr unsigned kRegisterNapi = 27;  // IORING_REGISTER_NAPI, Linux 6.9
struct NapiRegistration {               // struct io_uring_napi
  uint32_t busy_poll_to;  // µs
  uint8_t prefer_busy_poll;
  uint8_t pad[3];
  uint64_t resv;
};
static_assert(sizeof(NapiRegistration) == 16, "struct io_uring_napi is 16 octets");

}  // namespace h2lab::server::uring_abi
