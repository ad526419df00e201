// `uring`: N proactor threads, one io_uring each (beyond the seed). Every
// ring owns its listener share (as epoll: SO_REUSEPORT or one shared
// listener), a provided-buffer ring for receives, its connections and timer
// wheel. No syscall per read or write: the thread only waits on the ring.
//
// One loop turn:
//   submit + wait for ≥1 completion (timeout: the next timer tick)
//   reap completions in batches (io_uring_peek_batch_cqe, then cq_advance):
//     accept (multishot)  → admit (limit), arm a multishot recv
//     recv (multishot)    → Session::on_data straight from the provided
//                           buffer, which goes back to the buffer ring at once
//                           (the session keeps no pointer into its input)
//     send done           → on_written; a short send is resumed below
//   timer wheel: idle → GOAWAY, write/drain/linger → close
//   per connection touched: one sendmsg with the whole iovec list if none is
//   in flight (one in flight per socket keeps the byte order); re-arm a recv
//   that ended (-ENOBUFS, or IORING_CQE_F_MORE clear); cancel the recv while
//   the session refuses input (backpressure) and re-arm it when it drains.
//
// A connection is destroyed only once no operation of its own is in the
// kernel (its recv, send and cancel have completed), because a send in
// flight reads the session's output queue.
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "server/accept.h"
#include "server/connection_table.h"
#include "server/dispatcher.h"
#include "server/io_uring_probe.h"
#include "server/log.h"
#include "server/loop_connection.h"
#include "server/loop_group.h"

namespace h2lab::server {
namespace {

using Clock = std::chrono::steady_clock;

// Provided receive buffers per ring: 256 × 16 KiB = 4 MiB, shared by all the
// ring's connections (an idle connection holds none). 16 KiB takes a whole
// default-size frame in one completion.
constexpr unsigned kRecvBuffers = 256;
constexpr unsigned kRecvBufferSize = 16 * 1024;
constexpr uint16_t kBufferGroup = 0;
constexpr unsigned kSqEntries = 2048;
constexpr unsigned kCqeBatch = 256;
// iovecs per sendmsg: with 16 KiB DATA frames (header + body reference) 64
// pieces carry 512 KiB, the backpressure bound.
constexpr size_t kMaxSendIov = 64;

// user_data = (connection id << 4) | operation.
enum Op : uint64_t { kAccept = 1, kWake = 2, kRecv = 3, kSend = 4, kCancel = 5 };
constexpr uint64_t tag(uint64_t id, Op op) { return (id << 4) | op; }

struct SendBuffer {
  msghdr msg{};
  iovec iov[kMaxSendIov];
};

struct Conn : LoopConnection {
  using LoopConnection::LoopConnection;
  bool recv_armed = false;
  bool cancel_pending = false;
  bool closing = false;  // aborting: waiting for the kernel to let go
  std::unique_ptr<SendBuffer> send;  // non-null while a send is in flight
  std::vector<uint8_t> held;         // input that arrived after reading was paused
};


class Proactor {
 public:
  Proactor(LoopDispatcher& d, unsigned index);
  ~Proactor();
  bool ready() const noexcept { return ready_; }
  void loop();

 private:
  using Id = ConnectionTable<Conn>::Id;

  io_uring_sqe* get_sqe();
  void arm_accept();
  void arm_wake();
  void arm_recv(Id id, Conn& c);
  void cancel_recv(Id id, Conn& c);
  void start_send(Id id, Conn& c);
  void recycle(uint16_t bid);

  void on_cqe(const io_uring_cqe& cqe);
  void on_accept(const io_uring_cqe& cqe);
  void on_recv(Id id, const io_uring_cqe& cqe);
  void on_send(Id id, const io_uring_cqe& cqe);
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
  io_uring ring_{};
  bool ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  uint8_t* buffers_ = nullptr;
  bool accept_armed_ = false;
  bool wake_armed_ = false;
  bool draining_ = false;
  Clock::time_point accept_resume_at_{};
  uint64_t wake_value_ = 0;
  unsigned overflow_seen_ = 0;
  Clock::time_point now_;
  ConnectionTable<Conn> conns_;
  TimerWheel wheel_;
  TurnQueue queued_;  // connections something happened to this turn
  std::vector<std::unique_ptr<SendBuffer>> spare_sends_;
};

class UringDispatcher final : public LoopDispatcher {
 public:
  explicit UringDispatcher(const DispatchContext& context) : LoopDispatcher(context) {
    log_line("uring: %s, %u ring(s)",
             context.options.uring_sqpoll ? "io_uring with SQPOLL"
                                          : probe_io_uring().describe().c_str(),
             group.size());
  }

  void run() override {
    run_loops("uring", [this](unsigned i) {
      Proactor p(*this, i);
      if (p.ready()) {
        p.loop();
      } else {
        group.stop();  // a ring that cannot serve its listener share must not leave it hanging
      }
    });
  }
};

// Completions outstanding at once are bounded: each recv completion holds a
// provided buffer (and one more ends a recv), each connection has at most
// one send and one cancel, and accepts are one per connection. Sized for
// that, the CQ never overflows; should it anyway, the kernel keeps the
// completions (IORING_FEAT_NODROP, checked by the probe) and liburing flushes
// them on the next peek.
unsigned cq_entries_for(const ServerOptions& options) {
  const size_t connections = options.max_connections + ConnectionLimit::kMaxRefusing;
  const size_t want = 2 * kRecvBuffers + 4 * connections + 64;
  unsigned entries = 4096;
  while (entries < want && entries < 65536) entries <<= 1;
  return entries;
}

Proactor::Proactor(LoopDispatcher& d, unsigned index)
    : d_(d),
      options_(d.context.options),
      index_(index),
      listen_fd_(d.group.listener(index)),
      wake_fd_(d.group.wake_fd(index)),
      now_(Clock::now()),
      wheel_(make_loop_timer_wheel(now_)) {
  const UringSupport& support = probe_io_uring();
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  if (options_.uring_sqpoll) {
    p.flags |= IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 100;  // ms of idleness before the kernel thread sleeps
  } else {
    p.flags |= support.setup_flags;  // created here, on the thread that submits
  }
  p.cq_entries = cq_entries_for(options_);
  if (const int rc = io_uring_queue_init_params(kSqEntries, &ring_, &p); rc != 0) {
    log_line("uring proactor %u: io_uring_queue_init: %s", index, std::strerror(-rc));
    return;
  }
  io_uring_register_ring_fd(&ring_);  // saves an fd lookup per io_uring_enter; optional

  // The provided-buffer ring (liburing 2.3 has no io_uring_setup_buf_ring):
  // page-aligned ring memory, registered, then filled with every buffer.
  buf_ring_bytes_ = kRecvBuffers * sizeof(io_uring_buf);
  void* ring_mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // Populated now: the pool is a fixed cost of the ring, paid at start
  // rather than as page faults on the receive path.
  void* buffers = ::mmap(nullptr, size_t{kRecvBuffers} * kRecvBufferSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (ring_mem == MAP_FAILED || buffers == MAP_FAILED) {
    log_line("uring proactor %u: cannot map receive buffers", index);
    if (ring_mem != MAP_FAILED) ::munmap(ring_mem, buf_ring_bytes_);
    if (buffers != MAP_FAILED) ::munmap(buffers, size_t{kRecvBuffers} * kRecvBufferSize);
    io_uring_queue_exit(&ring_);
    return;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
  buffers_ = static_cast<uint8_t*>(buffers);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring_);
  reg.ring_entries = kRecvBuffers;
  reg.bgid = kBufferGroup;
  if (const int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc != 0) {
    log_line("uring proactor %u: io_uring_register_buf_ring: %s", index, std::strerror(-rc));
    io_uring_queue_exit(&ring_);
    ::munmap(buf_ring_, buf_ring_bytes_);
    ::munmap(buffers_, size_t{kRecvBuffers} * kRecvBufferSize);
    buf_ring_ = nullptr;
    return;
  }
  io_uring_buf_ring_init(buf_ring_);
  const int mask = io_uring_buf_ring_mask(kRecvBuffers);
  for (unsigned i = 0; i < kRecvBuffers; ++i) {
    io_uring_buf_ring_add(buf_ring_, buffers_ + size_t{i} * kRecvBufferSize, kRecvBufferSize,
                          static_cast<uint16_t>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring_, kRecvBuffers);
  ready_ = true;
}

Proactor::~Proactor() {
  if (!ready_) return;
  // Only reached with connections left if the loop failed: the ring's exit
  // cancels their operations before the sessions go.
  const std::vector<Id> left = conns_.ids();
  io_uring_queue_exit(&ring_);
  for (Id id : left) {
    ::close(conns_.find(id)->fd);
    conns_.remove(id);
  }
  ::munmap(buf_ring_, buf_ring_bytes_);
  ::munmap(buffers_, size_t{kRecvBuffers} * kRecvBufferSize);
}

io_uring_sqe* Proactor::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {  // the SQ is full: hand it to the kernel and retry
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
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
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, tag(id, kRecv));
  c.recv_armed = true;
}

void Proactor::cancel_recv(Id id, Conn& c) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_cancel64(sqe, tag(id, kRecv), 0);
  io_uring_sqe_set_data64(sqe, tag(id, kCancel));
  c.cancel_pending = true;
}

void Proactor::start_send(Id id, Conn& c) {
  if (spare_sends_.empty()) {
    c.send = std::make_unique<SendBuffer>();
  } else {
    c.send = std::move(spare_sends_.back());
    spare_sends_.pop_back();
  }
  // The iovec array is copied (the queue's own may move as the engine adds
  // output meanwhile); the bytes it points at stay put until on_written().
  const auto iov = c.session->pending_output();
  const size_t n = std::min(iov.size(), kMaxSendIov);
  std::copy_n(iov.begin(), n, c.send->iov);
  c.send->msg = msghdr{};
  c.send->msg.msg_iov = c.send->iov;
  c.send->msg.msg_iovlen = n;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_sendmsg(sqe, c.fd, &c.send->msg, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag(id, kSend));
}

void Proactor::recycle(uint16_t bid) {
  io_uring_buf_ring_add(buf_ring_, buffers_ + size_t{bid} * kRecvBufferSize, kRecvBufferSize, bid,
                        io_uring_buf_ring_mask(kRecvBuffers), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void Proactor::loop() {
  arm_wake();
  arm_accept();
  io_uring_cqe* cqes[kCqeBatch];
  while (true) {
    if (d_.group.stopping() && !draining_) begin_stop();
    if (draining_ && conns_.empty() && !accept_armed_) break;

    __kernel_timespec ts{};
    const auto next = wheel_.until_next(Clock::now());
    if (next) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*next).count();
      ts.tv_sec = ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
    }
    io_uring_cqe* first = nullptr;
    const int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, next ? &ts : nullptr, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
      log_line("uring proactor %u: io_uring_submit_and_wait_timeout: %s", index_,
               std::strerror(-rc));
      break;
    }
    now_ = Clock::now();
    while (const unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kCqeBatch)) {
      for (unsigned i = 0; i < n; ++i) on_cqe(*cqes[i]);
      io_uring_cq_advance(&ring_, n);
    }
    note_overflow();

    expire_timeouts(
        wheel_, conns_, now_, [this](Id id, Conn& c) { queued_.add(id, c); },
        [this](Id id, Conn& c) { abort(id, c); });
    queued_.drain(conns_, [this](Id id, Conn& c) { service(id, c); });
    if (!accept_armed_ && !draining_ && now_ >= accept_resume_at_) arm_accept();
    if (!wake_armed_ && !draining_) arm_wake();
  }
}

void Proactor::note_overflow() {
  const unsigned overflow = IO_URING_READ_ONCE(*ring_.cq.koverflow);
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
      on_send(id, cqe);
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
    ::close(cqe.res);  // accepted while the cancel was on its way
    return;
  }
  std::optional<NewConnection> nc = admit_connection(cqe.res, d_.limit, d_.context, &d_.thread_stats(index_));
  if (!nc) return;
  auto owned = std::make_unique<Conn>(std::move(*nc), options_, now_);
  Conn& c = *owned;
  const Id id = conns_.add(std::move(owned));
  c.timer.key = id;
  schedule_timeout(c, wheel_);
  arm_recv(id, c);
}

void Proactor::on_recv(Id id, const io_uring_cqe& cqe) {
  Conn* c = conns_.find(id);
  if (c != nullptr && !(cqe.flags & IORING_CQE_F_MORE)) c->recv_armed = false;
  if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    const auto bid = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    const uint8_t* data = buffers_ + size_t{bid} * kRecvBufferSize;
    const size_t size = static_cast<size_t>(cqe.res);
    if (c == nullptr || c->closing || c->lingering) {
      // discarded
    } else if (!c->session->wants_read()) {
      c->held.insert(c->held.end(), data, data + size);  // the cancel is on its way
    } else {
      c->session->on_data({data, size});
      c->deadlines.on_input(now_, c->session->handshake_done());
    }
    recycle(bid);  // the session kept no pointer into it
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

void Proactor::on_send(Id id, const io_uring_cqe& cqe) {
  Conn* c = conns_.find(id);
  if (c == nullptr) return;
  spare_sends_.push_back(std::move(c->send));
  if (cqe.res < 0) {
    abort(id, *c);  // EPIPE, ECONNRESET: the peer is gone
    return;
  }
  if (!c->closing) {
    c->session->on_written(static_cast<size_t>(cqe.res));
    c->deadlines.on_write(now_, cqe.res > 0, c->session->wants_write());
  }
  queued_.add(id, *c);
}

// Once per turn for each connection something happened to.
void Proactor::service(Id id, Conn& c) {
  if (c.closing) {
    finish_if_released(id, c);
    return;
  }
  Session& s = *c.session;
  if (!c.lingering) {
    if (!c.held.empty() && s.wants_read()) {
      std::vector<uint8_t> held;
      held.swap(c.held);
      s.on_data(held);
      c.deadlines.on_input(now_, c.session->handshake_done());
    }
    if (!c.send && s.wants_write()) {
      start_send(id, c);
      c.deadlines.on_write(now_, false, true);
    }
    if (!c.send && s.wants_close()) {
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
  if (!c.send && !s.wants_write()) s.trim();
  schedule_timeout(c, wheel_);
}

void Proactor::end_cleanly(Id id, Conn& c) {
  if (!begin_linger(c, wheel_, now_)) {
    abort(id, c);
  } else {
    queued_.add(id, c);  // re-arms the recv if it was paused
  }
}

// Closes without further ado. The socket is shut down so that the kernel
// completes the connection's recv and send at once; the connection (and the
// output a send may still read) is freed when they have completed — maybe
// right here: `c` must not be used after this call.
void Proactor::abort(Id id, Conn& c) {
  if (!c.closing) {
    c.closing = true;
    wheel_.disarm(c.timer);
    if (c.recv_armed || c.send || c.cancel_pending) {
      ::shutdown(c.fd, SHUT_RDWR);
      if (c.recv_armed && !c.cancel_pending) cancel_recv(id, c);
    }
  }
  finish_if_released(id, c);
}

void Proactor::finish_if_released(Id id, Conn& c) {
  if (!c.closing || c.recv_armed || c.send || c.cancel_pending) return;
  // No operation on this fd is in the kernel or still in the SQ (the flags
  // are set when an SQE is prepared), so its number may be reused now.
  ::close(c.fd);
  conns_.remove(id);
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

std::unique_ptr<Dispatcher> make_uring_dispatcher(const DispatchContext& context) {
  return std::make_unique<UringDispatcher>(context);
}

}  // namespace h2lab::server
