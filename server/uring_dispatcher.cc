// `uring`: N proactor threads, one io_uring each (beyond the seed). Every
// ring owns its listener share (as epoll: SO_REUSEPORT or one shared
// listener), a provided-buffer ring for receives, its connections and timer
// wheel; with the knobs, also a fixed-file table, a registered send staging
// area and a NAPI registration (server/uring_ring.h sets the ring up
// from the options; create_server() made it, disabled, and the proactor
// enables it on its own thread). No syscall per read or write: the thread
// only enters the ring.
//
// One loop turn:
//   publish the prepared SQEs (a store to the SQ tail) and enter the kernel
//   once, only if needed: to wait when no completion is ready (timeout: the
//   next timer tick), to submit (not with SQPOLL unless its thread sleeps),
//   or to flush an overflowed CQ / pending task work
//   reap completions in batches straight from the CQ ring, then advance it:
//     accept (multishot)  → admit (limit), register the socket in a fixed
//                           file slot (--uring-fixed-files), arm a multishot
//                           recv
//     recv (multishot)    → Session::on_data straight from the provided
//                           buffer, which goes back to the buffer ring at once
//                           (the session keeps no pointer into its input) —
//                           several buffers with --uring-recv-bundle, and with
//                           --uring-incremental-buffers only once the kernel
//                           has filled all of it; TCP_QUICKACK again
//                           (--tcp-quickack)
//     send done           → on_written; a short send is resumed below. A
//                           zero-copy sendmsg's output is consumed only at
//                           its notification (IORING_CQE_F_NOTIF); a staged
//                           send's at its result (the octets were copied),
//                           its staging slot freed at its notification
//   timer wheel: idle → GOAWAY, write/drain/linger → close
//   per connection touched: one send with the whole iovec list if none is in
//   flight (one in flight per socket keeps the byte order) — copied into a
//   registered staging slot and sent with SEND_ZC when one is free
//   (--uring-registered-buffers), else SENDMSG_ZC from --uring-send-zc
//   octets, else — with --uring-send-bundle — the iovecs queued as entries
//   of the connection's own send buffer ring and one bundle send, else
//   SENDMSG; re-arm a recv that ended (-ENOBUFS, or
//   IORING_CQE_F_MORE clear); cancel the recv while the session refuses
//   input (backpressure) and re-arm it when it drains.
//
// A connection is destroyed only once no operation of its own is in the
// kernel (its recv, send — up to a zero-copy send's notification — and
// cancel have completed), because a send in flight reads the session's
// output queue. Its fixed-file slot is emptied before its socket is closed
// (the table holds a reference to the socket).
//
// Counters (server/stats.h), exact unless said otherwise:
//   reads        recv completions that delivered data or EOF
//   writes       sends submitted (sendmsg, sendmsg_zc, staged send_zc, bundles)
//   partial_writes  send results below the octets offered
//   events       completions reaped (notifications included)
//   waits        io_uring_enter calls with IORING_ENTER_GETEVENTS and
//                min_complete 1, made only when no completion was ready: the
//                loop asked to block (the kernel may return at once)
//   syscalls     every io_uring_enter this loop makes (liburing's submit and
//                wait helpers are not used: they decide for themselves
//                whether to enter, so the loop publishes SQEs and enters
//                itself, and counts each call), the io_uring_register calls
//                of fixed-file slots, close, shutdown, setsockopt
//                (TCP_QUICKACK) and what admit_connection makes. Not
//                counted: ring setup and teardown, memory allocation.
//   buffer_exhaustion  recv completions with -ENOBUFS
//   bundled_reads  recv completions that filled more than one buffer
//   bundled_sends  bundle send completions that took more than one buffer
//   buffers_kept   recv completions with IORING_CQE_F_BUF_MORE
#include <liburing.h>
#include <signal.h>  // _NSIG
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include "server/accept.h"
#include "server/connection_table.h"
#include "server/dispatcher.h"
#include "server/io_uring_probe.h"
#include "server/uring_ring.h"
#include "server/log.h"
#include "server/loop_connection.h"
#include "server/loop_group.h"
#include "server/memory_trim.h"
#include "server/socket_options.h"
#include "server/uring_abi.h"

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kCqeBatch = 256;
// iovecs per sendmsg: with 16 KiB DATA frames (header + body reference) 64
// pieces carry 512 KiB, the backpressure bound.
constexpr size_t kMaxSendIov = 64;

// user_data = (id << 4) | operation. The id is a connection's, except for
// kStaged, whose result and notification both carry the staging slot (the
// slot outlives the connection's part in the send).
enum Op : uint64_t {
  kAccept = 1,
  kWake = 2,
  kRecv = 3,
  kSend = 4,     // sendmsg
  kCancel = 5,
  kSendZc = 6,   // sendmsg_zc: a result, then (IORING_CQE_F_MORE) a notification
  kStaged = 7,   // send_zc from a registered staging slot: likewise
  kBundle = 8,   // a send bundle from the connection's send buffer ring
};
constexpr uint64_t tag(uint64_t id, Op op) { return (id << 4) | op; }

struct SendBuffer {
  msghdr msg{};
  iovec iov[kMaxSendIov];
};

enum class Sending : uint8_t { kNone, kMsg, kMsgZc, kStaged, kBundle };

// --uring-send-bundle: one page of provided-buffer ring per sending
// connection (a send takes the entries of its group in ring order, so a
// group cannot be shared), 256 entries, of which a send uses at most
// kMaxSendIov. Registered pages are pinned (RLIMIT_MEMLOCK, with the rings
// themselves): a connection that cannot have one sends with sendmsg.
constexpr unsigned kSendGroupEntries = 256;
constexpr size_t kSendGroupBytes = kSendGroupEntries * sizeof(io_uring_buf);
static_assert(kSendGroupBytes == 4096, "one page");
static_assert(kMaxSendIov <= kSendGroupEntries);
struct SendGroup {
  uint16_t bgid = 0;
  io_uring_buf_ring* ring = nullptr;
  uint16_t head = 0;  // the kernel's head: entries it has taken (tail == head between sends)
};

struct Conn : LoopConnection {
  using LoopConnection::LoopConnection;
  bool recv_armed = false;
  bool cancel_pending = false;
  bool closing = false;  // aborting: waiting for the kernel to let go
  Sending sending = Sending::kNone;  // the send in flight, if any
  size_t offered = 0;     // octets that send offered
  int zc_result = 0;      // a sendmsg_zc's result, kept until its notification
  int file_slot = -1;     // fixed-file slot, or -1: operations name fd
  int send_group = -1;    // --uring-send-bundle: its send group, -1 none yet, -2 none to be had
  unsigned bundled = 0;   // buffers the send bundle in flight offered
  std::unique_ptr<SendBuffer> send;  // the iovecs of a sendmsg(_zc) in flight
  std::vector<uint8_t> held;         // input that arrived after reading was paused
};

class Proactor final : public RoomMaker {
 public:
  // Serves with `ring` (prepared by create_server, disabled), or — when null
  // — with a ring of its own made here.
  Proactor(LoopDispatcher& d, unsigned index, std::unique_ptr<UringRing> ring);
  ~Proactor();
  bool ready() const noexcept { return ready_; }
  void loop();
  Room make_room() noexcept override;
  void evict_for_others();

 private:
  using Id = ConnectionTable<Conn>::Id;

  unsigned publish_sqes() noexcept;
  int enter(unsigned to_submit, unsigned min_complete, unsigned flags, io_uring_getevents_arg* arg);
  bool submit_and_wait(const Clock::duration* timeout);
  void reap();
  io_uring_sqe* get_sqe();
  void target(io_uring_sqe* sqe, const Conn& c);
  void arm_accept();
  void arm_wake();
  void arm_recv(Id id, Conn& c);
  void cancel_recv(Id id, Conn& c);
  void start_send(Id id, Conn& c);
  void keep_iovecs(Conn& c, std::span<const iovec> iov);
  bool start_staged_send(Id id, Conn& c, std::span<const iovec> iov);
  bool start_bundle_send(Id id, Conn& c, std::span<const iovec> iov);
  bool take_send_group(Conn& c);
  void on_bundle_sent(Id id, const io_uring_cqe& cqe);
  void recycle(uint16_t bid);
  template <typename Use>
  void consume_buffers(const io_uring_cqe& cqe, Use&& use);
  void take_file_slot(Conn& c);
  void release_file_slot(Conn& c);

  void on_cqe(const io_uring_cqe& cqe);
  void on_accept(const io_uring_cqe& cqe);
  void on_recv(Id id, const io_uring_cqe& cqe);
  void on_send_zc(Id id, const io_uring_cqe& cqe);
  void on_staged(unsigned slot, const io_uring_cqe& cqe);
  void send_done(Id id, Conn& c, int result);
  void service(Id id, Conn& c);
  void end_cleanly(Id id, Conn& c);
  void abort(Id id, Conn& c);
  void finish_if_released(Id id, Conn& c);
  void begin_stop();
  void note_overflow();

  LoopDispatcher& d_;
  const ServerOptions& options_;
  const unsigned index_;
  const int listen_fd_;
  const int wake_fd_;
  ThreadStats& stats_;
  const UringRingPlan plan_;
  const std::unique_ptr<UringRing> ring_;
  io_uring& r_;
  bool ready_ = false;
  bool accept_armed_ = false;
  bool wake_armed_ = false;
  bool draining_ = false;
  Clock::time_point accept_resume_at_{};
  uint64_t wake_value_ = 0;
  unsigned overflow_seen_ = 0;
  Clock::time_point now_;
  proto::ChunkPool chunk_pool_;  // before conns_: their queues give chunks back to it
  ConnectionTable<Conn> conns_;
  TimerWheel wheel_;
  TurnQueue queued_;  // connections something happened to this turn
  std::vector<std::unique_ptr<SendBuffer>> spare_sends_;
  std::vector<int> free_file_slots_;       // --uring-fixed-files
  std::vector<unsigned> free_send_slots_;  // --uring-registered-buffers
  std::vector<Id> send_slot_owner_;        // the connection a staged send's result goes to
  // Where each provided buffer sits in the buffer ring (the position it was
  // last added at; a bundle's buffers follow the first one named), and —
  // with --uring-incremental-buffers — how much of it the kernel filled
  // before it kept the rest.
  std::vector<uint16_t> buffer_position_;
  std::vector<uint32_t> buffer_filled_;
  std::vector<SendGroup> send_groups_;   // --uring-send-bundle: group i has bgid i + 1
  std::vector<unsigned> free_send_groups_;
  bool send_group_refused_ = false;     // logged once
  MemoryTrim trim_;
};

class UringDispatcher final : public LoopDispatcher {
 public:
  UringDispatcher(const DispatchContext& context, std::vector<std::unique_ptr<UringRing>> rings)
      : LoopDispatcher(context), rings_(std::move(rings)) {
    if (rings_.size() != group.size()) rings_.clear();  // not prepared: each proactor makes its own
    UringRingPlan in_effect = plan_uring_ring(context.options);
    if (!rings_.empty()) {  // what the kernel gave (the same, unless it clamped)
      in_effect.sq_entries = rings_.front()->sq_entries;
      in_effect.cq_entries = rings_.front()->cq_entries;
    }
    log_line("uring: %s", describe_uring_plan(in_effect, group.size()).c_str());
  }

  void run() override {
    run_loops("uring", [this](unsigned i) {
      Proactor p(*this, i, rings_.empty() ? nullptr : std::move(rings_[i]));
      if (p.ready()) {
        p.loop();
      } else {
        group.stop();  // a ring that cannot serve its listener share must not leave it hanging
      }
    });
  }

 private:
  // Made with the dispatcher (prepare_uring_rings), one per loop; each
  // moves to its proactor's thread.
  std::vector<std::unique_ptr<UringRing>> rings_;
};

Proactor::Proactor(LoopDispatcher& d, unsigned index, std::unique_ptr<UringRing> ring)
    : d_(d),
      options_(d.context.options),
      index_(index),
      listen_fd_(d.group.listener(index)),
      wake_fd_(d.group.wake_fd(index)),
      stats_(d.thread_stats(index)),
      plan_(plan_uring_ring(d.context.options)),
      ring_(ring ? std::move(ring) : std::make_unique<UringRing>()),
      r_(ring_->ring),
      now_(Clock::now()),
      wheel_(make_loop_timer_wheel(now_)) {
  if (!ring_->is_open()) {
    if (const std::string why = ring_->open(plan_); !why.empty()) {
      log_line("uring proactor %u: %s", index, why.c_str());
      return;
    }
  }
  // Enabled here, on the thread that submits (SINGLE_ISSUER, DEFER_TASKRUN).
  if (const std::string why = ring_->enable(); !why.empty()) {
    log_line("uring proactor %u: %s", index, why.c_str());
    ring_->close();
    return;
  }
  ready_ = true;
  for (int i = static_cast<int>(plan_.file_slots) - 1; i >= 0; --i) free_file_slots_.push_back(i);
  for (unsigned i = plan_.send_slots; i-- > 0;) free_send_slots_.push_back(i);
  send_slot_owner_.assign(plan_.send_slots, 0);
  buffer_position_.resize(plan_.recv_buffers);
  for (unsigned bid = 0; bid < plan_.recv_buffers; ++bid) {
    buffer_position_[bid] = static_cast<uint16_t>(bid);
  }
  buffer_filled_.assign(plan_.recv_buffers, 0);
  if (!ring_->ring_fd_refusal.empty()) {
    log_line("uring proactor %u: %s", index, ring_->ring_fd_refusal.c_str());
  }
}

Proactor::~Proactor() {
  if (!ready_) return;
  // Only reached with connections left if the loop failed: the ring's exit
  // (UringRing) cancels their operations; the sockets close after it.
  const std::vector<Id> left = conns_.ids();
  ring_->close();  // unregisters the send groups too
  for (Id id : left) {
    ::close(conns_.find(id)->fd);
    conns_.remove(id);
  }
  for (const SendGroup& g : send_groups_) ::munmap(g.ring, kSendGroupBytes);
}

// Makes the SQEs prepared since the last call visible to the kernel: fills
// the SQ index array for them (liburing 2.3 keeps it 1:1, so this writes
// what is there already, but the loop does not rely on that; a ring without
// one, --uring-no-sqarray, takes the entries in order) and stores the new
// tail with release semantics. No syscall. Returns how many entries the
// kernel has not consumed yet.
unsigned Proactor::publish_sqes() noexcept {
  io_uring_sq& sq = r_.sq;
  const unsigned tail = sq.sqe_tail;
  if (sq.sqe_head != tail) {
    if (ring_->has_sq_array) {
      for (unsigned i = sq.sqe_head; i != tail; ++i) sq.array[i & sq.ring_mask] = i & sq.ring_mask;
    }
    sq.sqe_head = tail;
    io_uring_smp_store_release(sq.ktail, tail);
  }
  return tail - io_uring_smp_load_acquire(sq.khead);
}

// The loop's one way into io_uring_enter, counted.
int Proactor::enter(unsigned to_submit, unsigned min_complete, unsigned flags,
                    io_uring_getevents_arg* arg) {
  unsigned fd = static_cast<unsigned>(r_.ring_fd);
  if (ring_->ring_fd_registered) {
    fd = static_cast<unsigned>(r_.enter_ring_fd);
    flags |= IORING_ENTER_REGISTERED_RING;
  }
  stats_.syscalls.add();
  if (arg != nullptr) {
    return io_uring_enter2(fd, to_submit, min_complete, flags | IORING_ENTER_EXT_ARG,
                           reinterpret_cast<sigset_t*>(arg), sizeof *arg);
  }
  return io_uring_enter2(fd, to_submit, min_complete, flags, nullptr, _NSIG / 8);
}

// Submits what the turn prepared and waits for a completion if none is
// ready, in at most one io_uring_enter. Returns false on an error the loop
// cannot go on after (logged).
bool Proactor::submit_and_wait(const Clock::duration* timeout) {
  const unsigned pending = publish_sqes();
  const bool sqpoll = plan_.sqpoll;
  unsigned flags = 0;
  bool to_submit = pending != 0;
  if (sqpoll && to_submit) {
    // The kernel thread takes the new tail by itself unless it went to
    // sleep (idle); the full barrier orders the tail store before the
    // flags load, as the kernel orders the flag store before its last look
    // at the tail.
    io_uring_smp_mb();
    if (IO_URING_READ_ONCE(*r_.sq.kflags) & IORING_SQ_NEED_WAKEUP) {
      flags |= IORING_ENTER_SQ_WAKEUP;
    } else {
      to_submit = false;
    }
  }
  const bool wait = io_uring_cq_ready(&r_) == 0;
  // Completions the kernel holds back (CQ overflow) or task work it flagged
  // (COOP_TASKRUN|TASKRUN_FLAG) are only posted from io_uring_enter.
  const bool flush =
      (IO_URING_READ_ONCE(*r_.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;
  if (!wait && !to_submit && !flush) return true;  // no syscall this turn
  if (wait || flush) flags |= IORING_ENTER_GETEVENTS;
  const unsigned submit_count = sqpoll ? 0 : pending;
  int rc;
  if (wait) {
    __kernel_timespec ts{};
    io_uring_getevents_arg arg{};
    arg.sigmask_sz = _NSIG / 8;
    if (timeout != nullptr) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
      ts.tv_sec = ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      arg.ts = reinterpret_cast<uint64_t>(&ts);
    }
    stats_.waits.add();
    rc = enter(submit_count, 1, flags, &arg);
  } else {
    rc = enter(submit_count, 0, flags, nullptr);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
    log_line("uring proactor %u: io_uring_enter: %s", index_, std::strerror(-rc));
    return false;
  }
  return true;
}

void Proactor::reap() {
  uint64_t reaped = 0;
  while (const unsigned ready = io_uring_cq_ready(&r_)) {
    const unsigned n = std::min(ready, kCqeBatch);
    const unsigned head = *r_.cq.khead;
    // The slots stay ours until cq_advance: on_cqe may enter the kernel (a
    // full SQ), which may post more completions behind these.
    for (unsigned i = 0; i < n; ++i) on_cqe(r_.cq.cqes[(head + i) & r_.cq.ring_mask]);
    io_uring_cq_advance(&r_, n);
    reaped += n;
  }
  stats_.events.add(reaped);
}

io_uring_sqe* Proactor::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&r_);
  while (sqe == nullptr) {
    // The SQ is full: hand it to the kernel (with SQPOLL, wake its thread
    // if needed and wait until it made room), then retry.
    const unsigned pending = publish_sqes();
    if (plan_.sqpoll) {
      enter(0, 0, IORING_ENTER_SQ_WAKEUP | IORING_ENTER_SQ_WAIT, nullptr);
    } else {
      enter(pending, 0, 0, nullptr);
    }
    sqe = io_uring_get_sqe(&r_);
  }
  return sqe;
}

// Names the connection's socket: its fixed-file slot, or its fd.
void Proactor::target(io_uring_sqe* sqe, const Conn& c) {
  if (c.file_slot >= 0) {
    sqe->fd = c.file_slot;
    sqe->flags |= IOSQE_FIXED_FILE;
  } else {
    sqe->fd = c.fd;
  }
}

void Proactor::arm_accept() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, tag(0, kAccept));
  accept_armed_ = true;
}

void Proactor::arm_wake() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(sqe, tag(0, kWake));
  wake_armed_ = true;
}

void Proactor::arm_recv(Id id, Conn& c) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  target(sqe, c);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kRecvBufferGroup;
  if (plan_.recv_bundle) sqe->ioprio |= uring_abi::kRecvSendBundle;
  io_uring_sqe_set_data64(sqe, tag(id, kRecv));
  c.recv_armed = true;
}

void Proactor::cancel_recv(Id id, Conn& c) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, tag(id, kRecv), 0);
  io_uring_sqe_set_data64(sqe, tag(id, kCancel));
  c.cancel_pending = true;
}

// A send buffer for `c` (a spare one if there is), holding a copy of `iov`.
void Proactor::keep_iovecs(Conn& c, std::span<const iovec> iov) {
  if (spare_sends_.empty()) {
    c.send = std::make_unique<SendBuffer>();
  } else {
    c.send = std::move(spare_sends_.back());
    spare_sends_.pop_back();
  }
  std::copy(iov.begin(), iov.end(), c.send->iov);
}

void Proactor::start_send(Id id, Conn& c) {
  const auto pending = c.session->pending_output();
  const auto iov = pending.first(std::min(pending.size(), kMaxSendIov));
  stats_.writes.add();
  if (!free_send_slots_.empty() && start_staged_send(id, c, iov)) return;
  if (plan_.send_bundle && start_bundle_send(id, c, iov)) return;
  // The iovec array is copied (the queue's own may move as the engine adds
  // output meanwhile); the bytes it points at stay put until on_written().
  keep_iovecs(c, iov);
  c.send->msg = msghdr{};
  c.send->msg.msg_iov = c.send->iov;
  c.send->msg.msg_iovlen = iov.size();
  c.offered = 0;
  for (const iovec& v : iov) c.offered += v.iov_len;
  io_uring_sqe* sqe = get_sqe();
  if (plan_.send_zc_threshold != 0 && c.offered >= plan_.send_zc_threshold) {
    // The pages are sent from where they are; they must stay untouched —
    // the output unconsumed — until the notification says the kernel let go.
    io_uring_prep_sendmsg_zc(sqe, c.fd, &c.send->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(id, kSendZc));
    c.sending = Sending::kMsgZc;
    stats_.zero_copy_sends.add();
  } else {
    io_uring_prep_sendmsg(sqe, c.fd, &c.send->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(id, kSend));
    c.sending = Sending::kMsg;
  }
  target(sqe, c);
}

// Copies the start of the output into a free staging slot and sends it
// from there with SEND_ZC on registered buffer 0. Returns false (nothing
// done) when there is nothing to copy.
bool Proactor::start_staged_send(Id id, Conn& c, std::span<const iovec> iov) {
  const unsigned slot = free_send_slots_.back();
  uint8_t* const start = ring_->send_slot(slot);
  size_t copied = 0;
  for (const iovec& v : iov) {
    const size_t n = std::min<size_t>(v.iov_len, plan_.send_slot_size - copied);
    std::memcpy(start + copied, v.iov_base, n);
    copied += n;
    if (copied == plan_.send_slot_size) break;
  }
  if (copied == 0) return false;
  free_send_slots_.pop_back();
  send_slot_owner_[slot] = id;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_send_zc_fixed(sqe, c.fd, start, copied, MSG_NOSIGNAL, 0, 0);
  target(sqe, c);
  io_uring_sqe_set_data64(sqe, tag(slot, kStaged));
  c.sending = Sending::kStaged;
  stats_.zero_copy_sends.add();
  c.offered = copied;
  return true;
}

// Queues the output's pieces as entries of the connection's send group and
// sends them with one bundle send: the kernel takes every entry there is.
// Returns false (nothing done) when the connection has no group.
bool Proactor::start_bundle_send(Id id, Conn& c, std::span<const iovec> iov) {
  if (c.send_group == -2 || (c.send_group == -1 && !take_send_group(c))) return false;
  SendGroup& g = send_groups_[static_cast<size_t>(c.send_group)];
  keep_iovecs(c, iov);  // their lengths tell, at the completion, how many entries went
  const int mask = io_uring_buf_ring_mask(kSendGroupEntries);
  c.offered = 0;
  for (size_t i = 0; i < iov.size(); ++i) {
    io_uring_buf_ring_add(g.ring, iov[i].iov_base, static_cast<unsigned>(iov[i].iov_len),
                          static_cast<uint16_t>(i), mask, static_cast<int>(i));
    c.offered += iov[i].iov_len;
  }
  io_uring_buf_ring_advance(g.ring, static_cast<int>(iov.size()));
  c.bundled = static_cast<unsigned>(iov.size());
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_send(sqe, c.fd, nullptr, 0, MSG_NOSIGNAL);
  target(sqe, c);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = g.bgid;
  sqe->ioprio |= uring_abi::kRecvSendBundle;
  io_uring_sqe_set_data64(sqe, tag(id, kBundle));
  c.sending = Sending::kBundle;
  return true;
}

// A send group for `c`: one a closed connection left, or a new page
// registered as a buffer ring (one io_uring_register). When the kernel
// refuses (locked memory, most likely), the connection sends with sendmsg
// and the refusal is logged once.
bool Proactor::take_send_group(Conn& c) {
  if (!free_send_groups_.empty()) {
    c.send_group = static_cast<int>(free_send_groups_.back());
    free_send_groups_.pop_back();
    return true;
  }
  c.send_group = -2;
  // bgids are 16 bits, one of them the recv group's.
  static_assert(kRecvBufferGroup == 0, "send groups are numbered from 1");
  if (send_groups_.size() >= 65535 - 1) return false;
  void* page = ::mmap(nullptr, kSendGroupBytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (page == MAP_FAILED) return false;
  SendGroup g;
  g.bgid = static_cast<uint16_t>(send_groups_.size() + 1);
  g.ring = static_cast<io_uring_buf_ring*>(page);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(page);
  reg.ring_entries = kSendGroupEntries;
  reg.bgid = g.bgid;
  stats_.syscalls.add();
  if (const int rc = io_uring_register_buf_ring(&r_, &reg, 0); rc != 0) {
    ::munmap(page, kSendGroupBytes);
    if (!send_group_refused_) {
      send_group_refused_ = true;
      log_line("uring proactor %u: --uring-send-bundle: the kernel refused send buffer ring %zu: "
               "%s%s; connections without one send with sendmsg",
               index_, send_groups_.size() + 1, std::strerror(-rc),
               rc == -ENOMEM ? " (locked-memory limit: ulimit -l)" : "");
    }
    return false;
  }
  io_uring_buf_ring_init(g.ring);
  c.send_group = static_cast<int>(send_groups_.size());
  send_groups_.push_back(g);
  return true;
}

// A bundle send's result. The kernel took the entries the sent octets
// came from (a partly sent one included) and left the rest; the tail is
// moved back to its head, so the group is empty again and the next send
// offers what is still pending, from where the output stands. When not
// everything went, the head is asked of the kernel (one
// IORING_REGISTER_PBUF_STATUS) rather than inferred.
void Proactor::on_bundle_sent(Id id, const io_uring_cqe& cqe) {
  Conn* c = conns_.find(id);
  if (c == nullptr || c->send_group < 0) return;
  SendGroup& g = send_groups_[static_cast<size_t>(c->send_group)];
  if (cqe.res >= 0 && static_cast<size_t>(cqe.res) == c->offered) {
    g.head = static_cast<uint16_t>(g.head + c->bundled);
  } else {
    uring_abi::PbufStatus status{};
    status.buf_group = g.bgid;
    stats_.syscalls.add();
    if (io_uring_register(static_cast<unsigned>(r_.ring_fd), uring_abi::kRegisterPbufStatus,
                          &status, 1) == 0) {
      g.head = static_cast<uint16_t>(status.head);
    }
  }
  io_uring_smp_store_release(&g.ring->tail, g.head);
  if (cqe.res > 0 && c->bundled > 1 && static_cast<size_t>(cqe.res) > c->send->iov[0].iov_len) {
    stats_.bundled_sends.add();
  }
  send_done(id, *c, cqe.res);
}

void Proactor::recycle(uint16_t bid) {
  buffer_position_[bid] = ring_->buf_ring->tail;  // where the add below puts it
  io_uring_buf_ring_add(ring_->buf_ring, ring_->recv_buffer(bid), plan_.recv_buffer_size, bid,
                        io_uring_buf_ring_mask(plan_.recv_buffers), 0);
  io_uring_buf_ring_advance(ring_->buf_ring, 1);
}

// Hands `use` the octets of a recv completion chunk by chunk, in the order
// they arrived, and gives each provided buffer back to the ring after —
// except the last one when the kernel keeps the rest of it for the next
// recv (IORING_CQE_F_BUF_MORE, --uring-incremental-buffers). Without bundles
// a completion fills one buffer; with them (--uring-recv-bundle) it may
// fill several, which the kernel took from the ring in order starting at
// the one named: the ring's own entries say which follow. They are read
// before the buffer ahead of them is given back, whose add could reuse a
// slot the ring has passed. The kernel posts recv completions in the order
// it picked their buffers, so none of a bundle's slots has been reused yet.
template <typename Use>
void Proactor::consume_buffers(const io_uring_cqe& cqe, Use&& use) {
  const unsigned mask = static_cast<unsigned>(io_uring_buf_ring_mask(plan_.recv_buffers));
  auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  uint16_t position = buffer_position_[bid];
  size_t left = static_cast<size_t>(cqe.res);
  unsigned filled = 0;
  while (left > 0) {
    const uint32_t offset = buffer_filled_[bid];
    const size_t n = std::min<size_t>(left, plan_.recv_buffer_size - offset);
    if (n == 0) break;  // a buffer the kernel cannot have filled: nothing more to trust
    left -= n;
    ++filled;
    use(ring_->recv_buffer(bid) + offset, n);
    const uint16_t next = ++position;
    const uint16_t next_bid = left > 0 ? ring_->buf_ring->bufs[next & mask].bid : 0;
    if (left == 0 && (cqe.flags & uring_abi::kCqeBufMore)) {
      buffer_filled_[bid] = static_cast<uint32_t>(offset + n);  // still the kernel's
      stats_.buffers_kept.add();
    } else {
      buffer_filled_[bid] = 0;
      recycle(bid);  // the session kept no pointer into it
    }
    bid = next_bid;
  }
  if (filled > 1) stats_.bundled_reads.add();
}

// Registers the connection's socket in a free slot of the ring's file table
// (one io_uring_register call). Without a slot — the table is sized for the
// connection limit, so only if the kernel refused — it is named by its fd.
void Proactor::take_file_slot(Conn& c) {
  if (free_file_slots_.empty()) return;
  const int slot = free_file_slots_.back();
  stats_.syscalls.add();
  const int rc = io_uring_register_files_update(&r_, static_cast<unsigned>(slot), &c.fd, 1);
  if (rc != 1) {
    static std::atomic<bool> logged{false};
    if (!logged.exchange(true)) {
      log_line("uring proactor %u: registering a socket as a fixed file failed (%s); such "
               "connections use their fd",
               index_, std::strerror(rc < 0 ? -rc : EIO));
    }
    return;
  }
  free_file_slots_.pop_back();
  c.file_slot = slot;
}

void Proactor::release_file_slot(Conn& c) {
  if (c.file_slot < 0) return;
  int none = -1;
  stats_.syscalls.add();
  io_uring_register_files_update(&r_, static_cast<unsigned>(c.file_slot), &none, 1);
  free_file_slots_.push_back(c.file_slot);
  c.file_slot = -1;
}

void Proactor::loop() {
  arm_wake();
  arm_accept();
  while (true) {
    if (d_.group.stopping() && !draining_) begin_stop();
    // Staging slots are the ring's: their notifications are waited for too.
    if (draining_ && conns_.empty() && !accept_armed_ &&
        free_send_slots_.size() == plan_.send_slots) {
      break;
    }

    const Clock::time_point before = Clock::now();
    std::optional<Clock::duration> next = wheel_.until_next(before);
    if (const auto trim = trim_.until_due(before)) next = next ? std::min(*next, *trim) : *trim;
    if (!submit_and_wait(next ? &*next : nullptr)) break;
    now_ = Clock::now();
    reap();
    note_overflow();
    evict_for_others();

    expire_timeouts(
        wheel_, conns_, now_, [this](Id id, Conn& c) { queued_.add(id, c); },
        [this](Id id, Conn& c) { abort(id, c); });
    queued_.drain(conns_, [this](Id id, Conn& c) { service(id, c); });
    trim_.maybe_trim(conns_.size(), now_);
    if (!accept_armed_ && !draining_ && now_ >= accept_resume_at_) arm_accept();
    if (!wake_armed_ && !draining_) arm_wake();
  }
}

void Proactor::note_overflow() {
  const unsigned overflow = IO_URING_READ_ONCE(*r_.cq.koverflow);
  if (overflow != overflow_seen_) {
    log_line("uring proactor %u: the completion queue overflowed (%u completions waited in the "
             "kernel); raise its size",
             index_, overflow - overflow_seen_);
    overflow_seen_ = overflow;
  }
}

void Proactor::on_cqe(const io_uring_cqe& cqe) {
  const uint64_t id = cqe.user_data >> 4;
  switch (static_cast<Op>(cqe.user_data & 0xf)) {
    case kAccept:
      on_accept(cqe);
      break;
    case kWake:
      wake_armed_ = false;  // the loop looks at stopping()
      break;
    case kRecv:
      on_recv(id, cqe);
      break;
    case kSend:
      if (Conn* c = conns_.find(id)) send_done(id, *c, cqe.res);
      break;
    case kSendZc:
      on_send_zc(id, cqe);
      break;
    case kStaged:
      on_staged(static_cast<unsigned>(id), cqe);
      break;
    case kBundle:
      on_bundle_sent(id, cqe);
      break;
    case kCancel:
      if (Conn* c = conns_.find(id)) {
        c->cancel_pending = false;
        queued_.add(id, *c);
      }
      break;
  }
}

void Proactor::on_accept(const io_uring_cqe& cqe) {
  if (!(cqe.flags & IORING_CQE_F_MORE)) accept_armed_ = false;  // re-armed by the loop
  if (cqe.res < 0) {
    if (cqe.res == -ECANCELED) return;
    switch (classify_accept_error(-cqe.res)) {
      case AcceptFailure::kExhausted:
        accept_resume_at_ = now_ + std::chrono::milliseconds(kAcceptPauseMs);
        break;
      case AcceptFailure::kClosed:
        accept_resume_at_ = Clock::time_point::max();  // stopping: never again
        break;
      default:
        break;
    }
    return;
  }
  if (draining_) {
    stats_.syscalls.add();
    ::close(cqe.res);  // accepted while the cancel was on its way
    return;
  }
  // admit_connection counts the system calls it makes (a close when it drops).
  std::optional<NewConnection> nc = admit_connection(cqe.res, d_.limit, d_.context, &stats_, this);
  if (!nc) return;
  nc->session->use_chunk_pool(&chunk_pool_);
  auto owned = std::make_unique<Conn>(std::move(*nc), options_, now_);
  Conn& c = *owned;
  const Id id = conns_.add(std::move(owned));
  c.timer.key = id;
  track_setup(c, d_.board, index_);
  if (plan_.file_slots != 0) take_file_slot(c);
  schedule_timeout(c, wheel_);
  arm_recv(id, c);
}

Room Proactor::make_room() noexcept {
  return make_room_in(
      d_, index_, conns_, wheel_, now_, [this](Id id, Conn& c) { queued_.add(id, c); },
      [this](Id id, Conn& c) { abort(id, c); });
}

// What other proactors asked (EvictionBoard).
void Proactor::evict_for_others() {
  evict_for_other_loops(d_, index_, conns_, [this](Id id, Conn& c) { abort(id, c); });
}

void Proactor::on_recv(Id id, const io_uring_cqe& cqe) {
  Conn* c = conns_.find(id);
  if (c != nullptr && !(cqe.flags & IORING_CQE_F_MORE)) c->recv_armed = false;
  if (cqe.res >= 0) stats_.reads.add();
  if (cqe.res == -ENOBUFS) stats_.buffer_exhaustion.add();
  if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    bool flooding = false;  // lingering, and past the bound of what it discards
    consume_buffers(cqe, [&](const uint8_t* data, size_t size) {
      if (c == nullptr || c->closing || flooding) {
        // discarded
      } else if (c->lingering) {
        // discarded, up to a bound: still flooding after our FIN, close
        flooding = !c->deadlines.linger_discard(size);
      } else if (!c->session->wants_read()) {
        c->held.insert(c->held.end(), data, data + size);  // the cancel is on its way
      } else {
        c->session->on_data({data, size});
        c->deadlines.on_input(now_, c->session->progress(), size);
        track_setup(*c, d_.board, index_);
      }
    });
    if (flooding) {
      abort(id, *c);
      return;
    }
    // The kernel leaves quick-ack mode by itself: set it again per read.
    if (c != nullptr && !c->closing && !c->lingering && rearm_quickack(c->fd, options_)) {
      stats_.syscalls.add();
    }
  }
  if (c == nullptr) return;
  if (cqe.res == 0) {
    c->peer_eof = true;
    if (c->lingering) {
      abort(id, *c);
      return;
    }
    if (!c->closing) c->session->on_eof();
  } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
    abort(id, *c);  // ECONNRESET and friends
    return;
  }
  // -ENOBUFS: every buffer was in use; they are back once this batch is
  // reaped, and service() re-arms the recv.
  queued_.add(id, *c);
}

// A sendmsg_zc completes twice: its result (IORING_CQE_F_MORE set when a
// notification follows) and its notification (IORING_CQE_F_NOTIF), after
// which the kernel no longer reads the pages. Only then is the output
// consumed and the send over.
void Proactor::on_send_zc(Id id, const io_uring_cqe& cqe) {
  Conn* c = conns_.find(id);
  if (c == nullptr) return;
  if (cqe.flags & IORING_CQE_F_NOTIF) {
    send_done(id, *c, c->zc_result);
  } else if (cqe.flags & IORING_CQE_F_MORE) {
    c->zc_result = cqe.res;
  } else {
    send_done(id, *c, cqe.res);  // failed before any page was taken: no notification
  }
}

// A staged send's octets were copied: its result ends the connection's send
// (the output is consumed now); its notification frees the slot.
void Proactor::on_staged(unsigned slot, const io_uring_cqe& cqe) {
  if (slot >= send_slot_owner_.size()) return;
  if (!(cqe.flags & IORING_CQE_F_MORE)) free_send_slots_.push_back(slot);  // last completion
  if (cqe.flags & IORING_CQE_F_NOTIF) return;
  const Id id = send_slot_owner_[slot];
  if (Conn* c = conns_.find(id)) send_done(id, *c, cqe.res);
}

void Proactor::send_done(Id id, Conn& c, int result) {
  c.sending = Sending::kNone;
  if (c.send) spare_sends_.push_back(std::move(c.send));
  if (result < 0) {
    abort(id, c);  // EPIPE, ECONNRESET: the peer is gone
    return;
  }
  if (static_cast<size_t>(result) < c.offered) stats_.partial_writes.add();
  if (!c.closing) {
    c.session->on_written(static_cast<size_t>(result));
    c.deadlines.on_write(now_, static_cast<size_t>(result), c.session->wants_write(),
                         c.session->progress());
    // All handed over: what TCP_CORK holds back goes now (--tcp-cork).
    if (!c.session->wants_write()) stats_.syscalls.add(push_corked(c.fd, options_));
  }
  queued_.add(id, c);
}

// Once per turn for each connection something happened to.
void Proactor::service(Id id, Conn& c) {
  if (c.closing) {
    finish_if_released(id, c);
    return;
  }
  Session& s = *c.session;
  const bool sending = c.sending != Sending::kNone;
  if (!c.lingering) {
    if (!c.held.empty() && s.wants_read()) {
      std::vector<uint8_t> held;
      held.swap(c.held);
      s.on_data(held);
      c.deadlines.on_input(now_, s.progress(), held.size());
      track_setup(c, d_.board, index_);
    }
    if (!sending && s.wants_write()) {
      start_send(id, c);
      c.deadlines.on_write(now_, 0, true, s.progress());
    }
    if (c.sending == Sending::kNone && s.wants_close()) {
      log_close_reason(c);
      end_cleanly(id, c);
      return;
    }
  }
  const bool want_input = c.lingering || (s.wants_read() && c.held.empty() && !c.peer_eof);
  if (want_input && !c.recv_armed && !c.cancel_pending) {
    arm_recv(id, c);
  } else if (!want_input && c.recv_armed && !c.cancel_pending && !c.peer_eof) {
    cancel_recv(id, c);  // backpressure: stop reading until the output drains
  }
  if (c.sending == Sending::kNone && !s.wants_write()) s.trim();
  schedule_timeout(c, wheel_);
}

void Proactor::end_cleanly(Id id, Conn& c) {
  if (!begin_linger(c, wheel_, now_)) {
    abort(id, c);
  } else {
    stats_.syscalls.add();  // begin_linger's shutdown(SHUT_WR)
    queued_.add(id, c);     // re-arms the recv if it was paused
  }
}

// Closes without further ado. The socket is shut down so that the kernel
// completes the connection's recv and send at once; the connection (and the
// output a send may still read) is freed when they have completed — maybe
// right here: `c` must not be used after this call.
void Proactor::abort(Id id, Conn& c) {
  if (!c.closing) {
    c.closing = true;
    track_setup(c, d_.board, index_, /*gone=*/true);
    c.slot.reset();  // served no more: the limit may admit another now
    wheel_.disarm(c.timer);
    if (c.recv_armed || c.sending != Sending::kNone || c.cancel_pending) {
      stats_.syscalls.add();
      ::shutdown(c.fd, SHUT_RDWR);
      if (c.recv_armed && !c.cancel_pending) cancel_recv(id, c);
    }
  }
  finish_if_released(id, c);
}

void Proactor::finish_if_released(Id id, Conn& c) {
  if (!c.closing || c.recv_armed || c.sending != Sending::kNone || c.cancel_pending) return;
  // No operation on this socket is in the kernel or still in the SQ (the
  // flags are set when an SQE is prepared), so its slot and fd number may
  // be reused now. The slot first: the table holds the socket open.
  release_file_slot(c);
  if (c.send_group >= 0) free_send_groups_.push_back(static_cast<unsigned>(c.send_group));
  stats_.syscalls.add();
  ::close(c.fd);
  conns_.remove(id);
  trim_.on_close();
}

void Proactor::begin_stop() {
  draining_ = true;
  if (accept_armed_) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, tag(0, kAccept), 0);
    io_uring_sqe_set_data64(sqe, tag(0, kCancel));
  }
  now_ = Clock::now();
  for (Id id : conns_.ids()) {
    Conn& c = *conns_.find(id);
    if (c.lingering || c.closing) continue;
    shut_down_gracefully(c, wheel_, now_);
    queued_.add(id, c);
  }
  // Sends the GOAWAYs now rather than after the next completion.
  queued_.drain(conns_, [this](Id id, Conn& c) { service(id, c); });
}

}  // namespace

std::unique_ptr<Dispatcher> make_uring_dispatcher(const DispatchContext& context,
                                                  std::string& error) {
  // Every ring, with every io_uring knob applied, is made now, before
  // create_server() returns: what the kernel refuses is reported at start,
  // not met by a proactor while serving. They are made on a thread of their
  // own that ends at once: the kernel links a ring to the task that created
  // it, and when the ring is freed it sends that task work with a signal
  // (TWA_SIGNAL) — which, were it the caller's thread, would interrupt the
  // caller's own blocking calls (EINTR on a recv with a timeout) long after
  // the server is gone. A task that has exited has no link left.
  std::vector<std::unique_ptr<UringRing>> rings;
  try {
    std::thread([&] { error = prepare_uring_rings(context.options, rings); }).join();
  } catch (const std::system_error& e) {
    error = std::string("--dispatch uring: cannot start a thread to set up the rings: ") + e.what();
  }
  if (!error.empty()) return nullptr;
  return std::make_unique<UringDispatcher>(context, std::move(rings));
}

}  // namespace h2lab::server
